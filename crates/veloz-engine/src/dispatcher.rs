//! The dispatcher: decides which sessions hear about each event, holds the deliveries until
//! the journal has made their command durable, then releases them: the ones for sessions on
//! this shard are returned to the caller (the gateway writes them), the others are sent to
//! the ring of the session's shard.
//!
//! Invariants:
//! - every event goes to the session that sent the command; a trade also goes to the
//!   maker's owner, a cancel or replace of someone else's order also to the order's owner
//!   (both sides of a trade hear about it);
//! - the order-owner map holds exactly the open orders placed through this shard's
//!   sequencer: an order enters at `Accepted` and leaves when it is filled or cancelled;
//!   it is only looked up, never iterated;
//! - deliveries are released in sequence order and only once the durable watermark
//!   covers their sequence number (with `durability = "none"` that is at once);
//! - the command's ingress time rides on its first delivery to its own session (for the
//!   ingress-to-ack latency), and on no other;
//! - a command from another shard is answered with a `Done` to that shard after all its
//!   deliveries (so that shard knows nothing of it is in flight any more);
//! - per destination ring, messages leave in the order they were sent: when a ring is
//!   full, they wait in that destination's overflow queue, and later messages queue
//!   behind them. The shard never waits for a ring.

use std::collections::VecDeque;

use rtrb::Producer;
use rustc_hash::FxHashMap;

use veloz_core::{Event, OrderId, Seq};

use super::mesh::{Delivery, Part, SessionRef, ShardMsg};
use super::metrics::{Latency, ShardMetrics};
use super::sequencer::Sequenced;

/// Deliveries the hold queue has room for before it grows.
const HELD_CAPACITY: usize = 4096;

/// Something waiting for its command to be durable.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// A report for a session.
    Report(Delivery),
    /// The command from a session on `shard` is fully answered.
    Done { shard: u16 },
}

/// One held entry [`Dispatcher::release`] let go.
#[derive(Debug)]
pub enum Released {
    /// A delivery for a session on this shard: the caller hands it to the gateway.
    Local(Delivery),
    /// A delivery or `Done` that went to another shard's ring (or its overflow queue).
    Sent,
}

/// A shard's dispatcher.
#[derive(Debug)]
pub struct Dispatcher {
    shard: usize,
    /// Which session placed each open order.
    owners: FxHashMap<OrderId, SessionRef>,
    /// (sequence, ns when it was appended, what) in sequence order.
    held: VecDeque<(Seq, u64, Held)>,
    /// `rings[j]`: producer to shard `j` (`None` for this shard itself).
    rings: Vec<Option<Producer<ShardMsg>>>,
    /// Per destination shard: messages waiting for room in its ring, in order.
    overflow: Vec<VecDeque<ShardMsg>>,
    /// Sequence number of the last entry released (the commit wait is recorded once per
    /// command).
    last_released: Seq,
}

impl Dispatcher {
    /// The dispatcher of `shard`, sending over `rings` (`rings[shard]` is `None`).
    pub fn new(shard: usize, rings: Vec<Option<Producer<ShardMsg>>>) -> Dispatcher {
        Dispatcher {
            shard,
            owners: FxHashMap::default(),
            held: VecDeque::with_capacity(HELD_CAPACITY),
            overflow: rings.iter().map(|_| VecDeque::new()).collect(),
            rings,
            last_released: 0,
        }
    }

    /// Hold the deliveries of one sequenced command until it is durable.
    pub fn hold(&mut self, s: &Sequenced<'_>, metrics: &mut ShardMetrics) {
        // Taken by the first delivery to the command's own session.
        let mut ingress = s.ingress;
        for event in s.events {
            self.route_event(s, &mut ingress, event, metrics);
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

    /// Decide who hears about `event` and keep the order-owner map current.
    fn route_event(
        &mut self,
        s: &Sequenced<'_>,
        ingress: &mut u64,
        event: &Event,
        metrics: &mut ShardMetrics,
    ) {
        let origin = s.origin;
        let mut origin_part = Part::All;
        match *event {
            Event::Accepted { order_id, .. } => {
                self.owners.insert(order_id, origin);
            }
            Event::Trade { maker, taker, .. } => {
                metrics.counters.trades += 1;
                let maker_session = self
                    .owners
                    .get(&maker.order_id)
                    .copied()
                    .unwrap_or(SessionRef::NONE);
                if maker.leaves_qty == 0 {
                    self.owners.remove(&maker.order_id);
                }
                if taker.leaves_qty == 0 {
                    self.owners.remove(&taker.order_id);
                }
                self.hold_delivery(s, maker_session, Part::Maker, 0, event, metrics);
                origin_part = Part::Taker;
            }
            Event::Cancelled { order_id, .. } => {
                let owner = self.owners.remove(&order_id).unwrap_or(SessionRef::NONE);
                if owner != origin && owner != SessionRef::NONE {
                    self.hold_delivery(s, owner, Part::All, 0, event, metrics);
                }
            }
            Event::Replaced { order_id, .. } => {
                let owner = self
                    .owners
                    .get(&order_id)
                    .copied()
                    .unwrap_or(SessionRef::NONE);
                if owner != origin && owner != SessionRef::NONE {
                    self.hold_delivery(s, owner, Part::All, 0, event, metrics);
                }
            }
            Event::Rejected { reason, .. } => metrics.counters.reject(reason),
            Event::MassCancelled { .. } => {}
        }
        if origin == SessionRef::NONE {
            metrics.counters.undeliverable_reports += 1;
            return;
        }
        let ingress = std::mem::take(ingress);
        self.hold_delivery(s, origin, origin_part, ingress, event, metrics);
    }

    #[inline]
    fn hold_delivery(
        &mut self,
        s: &Sequenced<'_>,
        to: SessionRef,
        part: Part,
        ingress: u64,
        event: &Event,
        metrics: &mut ShardMetrics,
    ) {
        if to == SessionRef::NONE {
            metrics.counters.undeliverable_reports += 1;
            return;
        }
        self.held.push_back((
            s.seq,
            s.appended_ns,
            Held::Report(Delivery {
                to,
                seq: s.seq,
                ts: s.ts,
                part,
                ingress,
                event: *event,
            }),
        ));
    }

    /// Release the oldest held entry if the `durable` sequence number covers it: a delivery
    /// for another shard's session, or a `Done`, is sent to that shard's ring; a delivery
    /// for a session on this shard is returned. `None` when nothing (more) is releasable.
    /// `now_ns` (ns since the epoch) dates the commit wait.
    #[inline]
    pub fn release(
        &mut self,
        durable: Seq,
        now_ns: u64,
        metrics: &mut ShardMetrics,
    ) -> Option<Released> {
        let &(seq, appended_ns, held) = self.held.front()?;
        if seq > durable {
            return None;
        }
        self.held.pop_front();
        if seq != self.last_released {
            self.last_released = seq;
            metrics.record(Latency::CommitWait, now_ns.saturating_sub(appended_ns));
        }
        Some(match held {
            Held::Report(d) if d.to.shard as usize == self.shard => Released::Local(d),
            Held::Report(d) => {
                self.send(d.to.shard as usize, ShardMsg::Deliver(d), metrics);
                Released::Sent
            }
            Held::Done { shard } => {
                self.send(shard as usize, ShardMsg::Done, metrics);
                Released::Sent
            }
        })
    }

    /// Send to shard `dest`'s ring, in order behind anything already waiting for it.
    pub fn send(&mut self, dest: usize, msg: ShardMsg, metrics: &mut ShardMetrics) {
        if !self.overflow[dest].is_empty() {
            self.overflow[dest].push_back(msg);
        } else if let Err(rtrb::PushError::Full(msg)) = self.ring(dest).push(msg) {
            metrics.counters.ring_full += 1;
            self.overflow[dest].push_back(msg);
        }
    }

    /// Push to shard `dest`'s ring now, whatever waits in its overflow; gives the message
    /// back when the ring is full (the caller decides where it waits).
    // The message is handed back by value: boxing it would allocate on the order path.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn try_send(&mut self, dest: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        self.ring(dest)
            .push(msg)
            .map_err(|rtrb::PushError::Full(m)| m)
    }

    /// Move waiting messages into their rings as far as there is room, in order.
    pub fn flush_overflow(&mut self) -> usize {
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

    /// Give up what is held (shutdown while the journal is unavailable: its records may
    /// never become durable): reports are dropped, never released (counted as
    /// undeliverable), `Done`s are sent so that the other shards stop waiting. Returns how
    /// many reports were dropped.
    pub fn abandon_held(&mut self, metrics: &mut ShardMetrics) -> u64 {
        let mut dropped = 0;
        while let Some((_, _, held)) = self.held.pop_front() {
            match held {
                Held::Report(_) => dropped += 1,
                Held::Done { shard } => self.send(shard as usize, ShardMsg::Done, metrics),
            }
        }
        metrics.counters.undeliverable_reports += dropped;
        dropped
    }

    /// Nothing held and nothing waiting for ring room.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.overflow.iter().all(|q| q.is_empty())
    }

    /// Deliveries and `Done`s held for durability.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Messages waiting for room in shard `dest`'s ring.
    pub fn overflowing(&self, dest: usize) -> usize {
        self.overflow[dest].len()
    }

    /// The session that placed `order_id`, while it is open.
    pub fn owner(&self, order_id: OrderId) -> Option<SessionRef> {
        self.owners.get(&order_id).copied()
    }

    /// Open orders this shard knows the owner of.
    pub fn open_orders(&self) -> usize {
        self.owners.len()
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
