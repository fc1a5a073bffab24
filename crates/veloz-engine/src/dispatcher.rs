//! The dispatcher: decides which sessions hear about each report, holds the reports until
//! the journal has made their command durable, then releases them: the ones for sessions on
//! this shard are handed to the caller (the gateway writes them), the others are sent to
//! the ring of the session's shard. It also serves resend requests from the engine's
//! retained reports.
//!
//! Invariants:
//! - every report belongs to its account's stream on this shard, numbered gap-free by the
//!   matching core ([`veloz_core::Assigned`]); a report goes to every session of its
//!   account that is subscribed here (a session subscribes on every shard at logon,
//!   [`Subscription`]), and to nobody when none is: it then waits in the stream
//!   (the engine's retained window) for the account's next logon with a resend request.
//!   Nothing is dropped for want of a session;
//! - a subscriber never gets a report at or below the position it said it had seen, nor
//!   one twice: a resend covers exactly the released reports after its position, and
//!   later reports reach it by release;
//! - the subscriber map is only looked up, never iterated, on the order path;
//! - reports are released in sequence order and only once the durable watermark covers
//!   their sequence number (with `durability = "none"` that is at once); everything with a
//!   sequence number below the oldest held entry is released;
//! - the command's ingress time rides on its first report to its own session (for the
//!   ingress-to-ack latency), and on no other;
//! - a command from another shard is answered with a `Done` to that shard after all its
//!   deliveries (so that shard knows nothing of it is in flight any more);
//! - per destination ring, messages leave in the order they were sent: when a ring is
//!   full, they wait in that destination's overflow queue, and later messages queue
//!   behind them (also [`Dispatcher::try_send`]). The shard never waits for a ring.

use std::collections::VecDeque;

use rtrb::Producer;
use rustc_hash::FxHashMap;

use veloz_core::{AccountId, Engine, Seq};
use veloz_wire::StreamResumed;

use super::mesh::{Answer, AnswerKind, Delivery, Resumed, SessionRef, ShardMsg, Subscription};
use super::metrics::{Latency, ShardMetrics};
use super::sequencer::Sequenced;

/// Deliveries the hold queue has room for before it grows.
const HELD_CAPACITY: usize = 4096;

/// Something waiting for its command to be durable.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// A report of `account`'s stream (its `to` is filled in per subscriber at release);
    /// `origin` is the session that sent the command (it alone gets the ingress time).
    Report {
        account: AccountId,
        origin: SessionRef,
        report: Delivery,
    },
    /// The command from a session on `shard` is fully answered.
    Done { shard: u16 },
    /// An answer to a query, held behind the reports of the commands before it.
    Answer(Answer),
}

/// A session subscribed to an account's stream here, and the last position it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Subscriber {
    session: SessionRef,
    /// Reports at or below this were resent or were seen before (never sent again).
    seen: u64,
}

/// A shard's dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    shard: usize,
    /// The sessions subscribed to each account's stream on this shard.
    subscribers: FxHashMap<AccountId, Vec<Subscriber>>,
    /// (sequence, ns when it was appended, what) in sequence order.
    held: VecDeque<(Seq, u64, Held)>,
    /// The rings to the other shards and their overflow queues.
    outbox: Outbox,
    /// Sequence number of the last entry released (the commit wait is recorded once per
    /// command).
    last_released: Seq,
    /// Answers for sessions on this shard just released, for the caller to write before
    /// anything released after them ([`Dispatcher::release`] stops after one).
    local_answers: Vec<Answer>,
}

impl Dispatcher {
    /// The dispatcher of `shard`, sending over `rings` (`rings[shard]` is `None`).
    pub fn new(shard: usize, rings: Vec<Option<Producer<ShardMsg>>>) -> Dispatcher {
        Dispatcher {
            shard,
            subscribers: FxHashMap::default(),
            held: VecDeque::with_capacity(HELD_CAPACITY),
            outbox: Outbox {
                shard,
                overflow: rings.iter().map(|_| VecDeque::new()).collect(),
                rings,
            },
            last_released: 0,
            local_answers: Vec::new(),
        }
    }

    /// Hold the answers to a query of session `to` behind everything held so far (the
    /// reports of every command sequenced before it; `last_seq` is the last one), then, for
    /// a session on another shard, its `Done`.
    pub fn hold_answers(
        &mut self,
        last_seq: Seq,
        now_ns: u64,
        to: SessionRef,
        answers: impl IntoIterator<Item = AnswerKind>,
    ) {
        for kind in answers {
            self.held
                .push_back((last_seq, now_ns, Held::Answer(Answer { to, kind })));
        }
        if to.shard as usize != self.shard {
            self.held
                .push_back((last_seq, now_ns, Held::Done { shard: to.shard }));
        }
    }

    /// Answers for this shard's sessions released by the last [`Dispatcher::release`], in
    /// order.
    pub fn take_local_answers(&mut self) -> std::vec::Drain<'_, Answer> {
        self.local_answers.drain(..)
    }

    /// Hold the reports of one sequenced command until it is durable.
    pub fn hold(&mut self, s: &Sequenced<'_>, metrics: &mut ShardMetrics) {
        // Taken by the first report: always the command's own account's (Accepted or
        // Rejected, a cancel's or replace's own report).
        let mut ingress = s.ingress;
        for event in s.events {
            match event {
                veloz_core::Event::Trade { .. } => metrics.counters.trades += 1,
                veloz_core::Event::Rejected { reason, .. } => metrics.counters.reject(*reason),
                _ => {}
            }
        }
        for a in s.assigned {
            let report = Delivery {
                to: SessionRef::NONE,
                seq: s.seq,
                ts: s.ts,
                part: a.part,
                ingress: std::mem::take(&mut ingress),
                stream: self.shard as u16,
                stream_seq: a.stream_seq,
                event: s.events[a.event_index as usize],
            };
            self.held.push_back((
                s.seq,
                s.appended_ns,
                Held::Report {
                    account: a.account,
                    origin: s.origin,
                    report,
                },
            ));
        }
        if s.origin.shard as usize != self.shard && s.origin != SessionRef::NONE {
            self.held.push_back((
                s.seq,
                s.appended_ns,
                Held::Done {
                    shard: s.origin.shard,
                },
            ));
        }
    }

    /// Release every held entry the `durable` sequence number covers, in order: a report
    /// goes to each subscriber of its account (`local` for a session on this shard, its
    /// shard's ring otherwise), a `Done` to its shard's ring, an answer to its session's
    /// ring or, for a session here, to [`Dispatcher::take_local_answers`] (and the release
    /// stops there, so that the caller writes it before anything later). Returns how many
    /// entries were released. `now_ns` (ns since the epoch) dates the commit wait.
    pub fn release(
        &mut self,
        durable: Seq,
        now_ns: u64,
        metrics: &mut ShardMetrics,
        mut local: impl FnMut(&Delivery, &mut ShardMetrics),
    ) -> usize {
        let mut released = 0;
        while let Some(&(seq, appended_ns, held)) = self.held.front() {
            if seq > durable {
                break;
            }
            self.held.pop_front();
            released += 1;
            if seq != self.last_released {
                self.last_released = seq;
                metrics.record(Latency::CommitWait, now_ns.saturating_sub(appended_ns));
            }
            match held {
                Held::Report {
                    account,
                    origin,
                    report,
                } => {
                    let Some(subs) = self.subscribers.get(&account) else {
                        continue;
                    };
                    for sub in subs {
                        if report.stream_seq <= sub.seen {
                            continue;
                        }
                        let mut d = report;
                        d.to = sub.session;
                        if sub.session != origin {
                            d.ingress = 0;
                        }
                        self.outbox.deliver(d, metrics, &mut local);
                    }
                }
                Held::Done { shard } => self.outbox.send(shard as usize, ShardMsg::Done, metrics),
                Held::Answer(a) if a.to.shard as usize == self.shard => {
                    self.local_answers.push(a);
                    break;
                }
                Held::Answer(a) => {
                    self.outbox
                        .send(a.to.shard as usize, ShardMsg::Answer(a), metrics)
                }
            }
        }
        released
    }

    /// A session subscribes to its account's stream here: first, when it asked for a
    /// resend, every released report after its position that `engine` still retains, then
    /// a [`Resumed`] (returned when the session is on this shard, for the caller to hand
    /// to the gateway after the resent reports); from then on every report released.
    /// Reports still held reach it at their release.
    pub fn subscribe(
        &mut self,
        sub: Subscription,
        engine: &Engine,
        metrics: &mut ShardMetrics,
        mut local: impl FnMut(&Delivery, &mut ShardMetrics),
    ) -> Option<Resumed> {
        let account = sub.account;
        // Everything below the oldest held entry has been released.
        let released_below = self.held.front().map_or(Seq::MAX, |h| h.0);
        let unreleased = self
            .held
            .iter()
            .filter(|(_, _, h)| matches!(h, Held::Report { account: a, .. } if *a == account))
            .count() as u64;
        let last = engine.stream_last(account) - unreleased;
        let mut local_resumed = None;
        let seen = match sub.resume_after {
            None => last,
            Some(after) => {
                // u64::MAX: from the stream's end as it is now (nothing resent), and the
                // Resumed says where that is (a FIX CompID's first logon records it).
                let after = if after == u64::MAX { last } else { after };
                let mut resent = 0;
                let retained: Vec<_> = engine
                    .stream_retained_after(account, after)
                    .take_while(|r| r.seq < released_below)
                    .copied()
                    .collect();
                for r in retained {
                    let d = Delivery {
                        to: sub.session,
                        seq: r.seq,
                        ts: r.ts,
                        part: r.part,
                        ingress: 0,
                        stream: self.shard as u16,
                        stream_seq: r.stream_seq,
                        event: r.event,
                    };
                    self.outbox.deliver(d, metrics, &mut local);
                    resent += 1;
                }
                metrics.counters.reports_resent += resent;
                let info = StreamResumed {
                    stream: self.shard as u16,
                    after,
                    last,
                    resent,
                    first_retained: engine.stream_first_retained(account).unwrap_or(0),
                };
                let msg = Resumed {
                    to: sub.session,
                    info,
                };
                if sub.session.shard as usize == self.shard {
                    local_resumed = Some(msg);
                } else {
                    self.send(sub.session.shard as usize, ShardMsg::Resumed(msg), metrics);
                }
                last.max(after)
            }
        };
        let subs = self.subscribers.entry(account).or_default();
        subs.retain(|s| s.session != sub.session);
        subs.push(Subscriber {
            session: sub.session,
            seen,
        });
        local_resumed
    }

    /// A session ended: it gets nothing more from here. Returns whether it was
    /// subscribed.
    pub fn unsubscribe(&mut self, session: SessionRef, account: AccountId) -> bool {
        let Some(subs) = self.subscribers.get_mut(&account) else {
            return false;
        };
        let Some(gone) = subs.iter().position(|s| s.session == session) else {
            return false;
        };
        subs.swap_remove(gone);
        if subs.is_empty() {
            self.subscribers.remove(&account);
        }
        true
    }

    /// Sessions subscribed to `account`'s stream here.
    pub fn subscribers(&self, account: AccountId) -> usize {
        self.subscribers.get(&account).map_or(0, Vec::len)
    }

    /// Send to shard `dest`'s ring, in order behind anything already waiting for it.
    pub fn send(&mut self, dest: usize, msg: ShardMsg, metrics: &mut ShardMetrics) {
        self.outbox.send(dest, msg, metrics);
    }

    /// Push to shard `dest`'s ring now unless something waits in its overflow (order per
    /// ring is kept); gives the message back when it cannot go now (the caller decides
    /// where it waits).
    // The message is handed back by value: boxing it would allocate on the order path.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn try_send(&mut self, dest: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.outbox.try_send(dest, msg)
    }

    /// Move waiting messages into their rings as far as there is room, in order.
    pub fn flush_overflow(&mut self) -> usize {
        self.outbox.flush()
    }

    /// Give up what is held (shutdown while the journal is unavailable: its records may
    /// never become durable): reports are not released (their commands were never
    /// acknowledged; whatever of them the journal kept is in the stream after a restart),
    /// `Done`s are sent so that the other shards stop waiting. Returns how many reports
    /// were held back.
    pub fn abandon_held(&mut self, metrics: &mut ShardMetrics) -> u64 {
        let mut dropped = 0;
        while let Some((_, _, held)) = self.held.pop_front() {
            match held {
                Held::Report { .. } | Held::Answer(_) => dropped += 1,
                Held::Done { shard } => self.send(shard as usize, ShardMsg::Done, metrics),
            }
        }
        dropped
    }

    /// Nothing held and nothing waiting for ring room.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty()
            && self.local_answers.is_empty()
            && self.outbox.overflow.iter().all(|q| q.is_empty())
    }

    /// Deliveries and `Done`s held for durability.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Messages waiting for room in shard `dest`'s ring.
    pub fn overflowing(&self, dest: usize) -> usize {
        self.outbox.overflow[dest].len()
    }
}

/// The rings from one shard to the others, with an overflow queue per ring: a message
/// waits behind everything sent to the same shard before it, and the shard never waits for
/// a ring.
#[derive(Debug)]
struct Outbox {
    shard: usize,
    /// `rings[j]`: producer to shard `j` (`None` for this shard itself).
    rings: Vec<Option<Producer<ShardMsg>>>,
    /// Per destination shard: messages waiting for room in its ring, in order.
    overflow: Vec<VecDeque<ShardMsg>>,
}

impl Outbox {
    /// A report for a session here goes to `local`, one for another shard's to its ring.
    #[inline]
    fn deliver(
        &mut self,
        d: Delivery,
        metrics: &mut ShardMetrics,
        local: &mut impl FnMut(&Delivery, &mut ShardMetrics),
    ) {
        if d.to.shard as usize == self.shard {
            local(&d, metrics);
        } else {
            self.send(d.to.shard as usize, ShardMsg::Deliver(d), metrics);
        }
    }

    fn send(&mut self, dest: usize, msg: ShardMsg, metrics: &mut ShardMetrics) {
        if !self.overflow[dest].is_empty() {
            self.overflow[dest].push_back(msg);
        } else if let Err(rtrb::PushError::Full(msg)) = self.ring(dest).push(msg) {
            metrics.counters.ring_full += 1;
            self.overflow[dest].push_back(msg);
        }
    }

    #[allow(clippy::result_large_err)]
    #[inline]
    fn try_send(&mut self, dest: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        if !self.overflow[dest].is_empty() {
            return Err(msg);
        }
        self.ring(dest)
            .push(msg)
            .map_err(|rtrb::PushError::Full(m)| m)
    }

    fn flush(&mut self) -> usize {
        let mut work = 0;
        for dest in 0..self.overflow.len() {
            while let Some(&msg) = self.overflow[dest].front() {
                let Some(ring) = self.rings[dest].as_mut() else {
                    break;
                };
                if ring.push(msg).is_err() {
                    break;
                }
                self.overflow[dest].pop_front();
                work += 1;
            }
        }
        work
    }

    fn ring(&mut self, dest: usize) -> &mut Producer<ShardMsg> {
        self.rings[dest]
            .as_mut()
            .unwrap_or_else(|| panic!("shard {} has no ring to shard {dest}", self.shard))
    }
}

#[cfg(test)]
#[path = "dispatcher_tests.rs"]
mod tests;
