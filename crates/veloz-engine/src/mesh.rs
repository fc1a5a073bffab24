//! The ring mesh: one rtrb SPSC ring for every ordered pair of shards, and one from each
//! shard to the control thread.
//!
//! Messages are fixed-size `Copy` values (no heap data), so a push is a copy into a
//! pre-allocated slot and nothing allocates per message. Receivers drain in batches.
//!
//! Routing is a pure function: a command goes to the shard that owns its instrument
//! ([`veloz_config::routing::Routing`]); a report goes to the shards of the sessions of its
//! account ([`SessionRef::shard`]), which every shard learns from [`ShardMsg::Subscribe`].

use rtrb::{Consumer, Producer, RingBuffer};

use veloz_core::{AccountId, AdminAction, Command, Event, Seq, Timestamp};
use veloz_wire::{OpenOrdersEnd, OrderStatus, Query, ShardBalance, StreamResumed};

/// Slots per shard-to-control ring.
pub const CONTROL_RING_CAPACITY: usize = 1 << 10;

/// A session anywhere in the engine: its shard, its slot there and the slot's generation
/// (a reused slot gets a new generation, so a stale reference never reaches a new session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub shard: u16,
    pub slot: u16,
    pub generation: u32,
}

impl SessionRef {
    /// No session: commands replayed from the journal, orders whose session is gone.
    pub const NONE: SessionRef = SessionRef {
        shard: u16::MAX,
        slot: u16::MAX,
        generation: 0,
    };

    /// Session id as shown to the client in its LogonAck.
    pub fn id(self) -> u64 {
        ((self.shard as u64) << 48) | ((self.slot as u64) << 32) | self.generation as u64
    }
}

/// Which of an event's execution reports a delivery carries (the matching core's: it
/// numbers each report in its account's stream).
pub use veloz_core::Part;

/// An event on its way to one session (over a ring, or held for durability first).
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    pub to: SessionRef,
    pub seq: Seq,
    pub ts: Timestamp,
    pub part: Part,
    /// Ingress time (ns since start) of the command when this is its first report to its
    /// session, else 0: the session's shard records ingress-to-ack.
    pub ingress: u64,
    /// The account's report stream (the shard that produced the report).
    pub stream: u16,
    /// The report's gap-free position in that stream; 0 for a gateway reject (in no
    /// stream).
    pub stream_seq: u64,
    pub event: Event,
}

impl Delivery {
    /// A report that needs no durability and is in no stream: a reject of a request that
    /// never reached the book (by the gateway, or refused by an unavailable journal).
    pub fn immediate(to: SessionRef, event: Event) -> Delivery {
        Delivery {
            to,
            seq: 0,
            ts: 0,
            part: Part::All,
            ingress: 0,
            stream: 0,
            stream_seq: 0,
            event,
        }
    }
}

/// A session's claim on its account's report stream on every shard, sent to each shard
/// when the session logs on (before any of its commands, on the same rings) and withdrawn
/// when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub session: SessionRef,
    pub account: AccountId,
    /// Resend the stream's reports after this `stream_seq` first; `None`: no resend;
    /// `u64::MAX`: no resend, but a [`Resumed`] naming the stream's end.
    pub resume_after: Option<u64>,
}

/// A read-only request about an account's orders on its way to the shard that owns them
/// (never journaled; answered in order with the session's commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryMsg {
    /// The session that asked.
    pub from: SessionRef,
    /// Its account: only this account's orders are described.
    pub account: AccountId,
    pub query: Query,
}

/// One answer to a query, for session `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub to: SessionRef,
    pub kind: AnswerKind,
}

/// What an answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// An order's state (or why it cannot be shown), or one order of an open-orders page.
    Status(OrderStatus),
    /// The end of an open-orders page.
    End(OpenOrdersEnd),
    /// One shard's non-zero slice of one asset of the account's balance (a balance
    /// request goes to every shard; the session's gateway sums the slices).
    Balance {
        request_id: u64,
        slice: ShardBalance,
    },
    /// Shard `shard` has sent every slice of a balance request.
    BalanceEnd { request_id: u64, shard: u16 },
    /// A balance request refused before it reached a shard.
    BalanceRefused {
        request_id: u64,
        reason: veloz_core::RejectReason,
    },
}

/// A resend is complete on one stream (the shard that sent it): tells the session so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    pub to: SessionRef,
    pub info: StreamResumed,
}

/// A command on its way to the sequencer of the shard owning its instrument: where it came
/// from and when it was read travel with it.
#[derive(Clone, Copy, Debug)]
pub struct Inbound {
    /// The session that sent it ([`SessionRef::NONE`] for none).
    pub from: SessionRef,
    /// Nanoseconds since the process-wide epoch when the session read it (TSC reads agree
    /// across cores).
    pub ingress: u64,
    pub cmd: Command,
}

/// A message between shards.
#[derive(Clone, Copy, Debug)]
pub enum ShardMsg {
    /// A command for an instrument the receiving shard owns, from a session elsewhere.
    Command(Inbound),
    /// An event for a session on the receiving shard.
    Deliver(Delivery),
    /// A session (anywhere) logged on: send it its account's reports from now on.
    Subscribe(Subscription),
    /// A session (anywhere) ended: stop sending it reports.
    Unsubscribe {
        session: SessionRef,
        account: AccountId,
    },
    /// A resend to a session on the receiving shard is complete.
    Resumed(Resumed),
    /// A query for the receiving shard's orders, from a session elsewhere (answered, then
    /// a `Done`, like a command).
    Query(QueryMsg),
    /// An answer for a session on the receiving shard.
    Answer(Answer),
    /// A command this shard sent to the receiver's sender has been fully answered (all its
    /// deliveries are already pushed, to whichever rings they go).
    Done,
}

/// What the control thread asks a shard on the operator's behalf ([`crate::admin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminMsg {
    /// Journal and apply this operator command; reply [`ControlMsg::Admin`] `Acted`.
    Act {
        request_id: u64,
        action: AdminAction,
    },
    /// Reply with the shard's sessions.
    Sessions { request_id: u64 },
    /// Reply with the account's balances on this shard (`GET /admin/balances`).
    Balances { request_id: u64, account: AccountId },
    /// Log out the session with this id, if it is on this shard.
    Disconnect { request_id: u64, session: u64 },
}

/// Slots per control-to-shard ring (operator requests are rare).
pub const ADMIN_RING_CAPACITY: usize = 64;

/// What a shard tells the control thread.
#[derive(Debug)]
pub enum ControlMsg {
    /// A reply to an operator request ([`AdminMsg`]).
    Admin {
        request_id: u64,
        shard: u16,
        reply: crate::admin::ShardReply,
    },
    /// The interval's latencies and the cumulative counters (boxed: one allocation per
    /// interval, never per order).
    Snapshot(Box<super::metrics::ShardSnapshot>),
    /// Recovery done; `port` is where the shard listens.
    Ready {
        shard: u16,
        port: u16,
        last_seq: Seq,
        state_hash: u64,
    },
    /// The shard drained, synced and checkpointed its journal.
    Stopped {
        shard: u16,
        last_seq: Seq,
        state_hash: u64,
    },
}

/// One shard's ends of the mesh.
#[derive(Debug)]
pub struct ShardLinks {
    pub shard: usize,
    /// `to[j]`: producer to shard `j` (`None` for this shard itself).
    pub to: Vec<Option<Producer<ShardMsg>>>,
    /// `from[j]`: consumer from shard `j` (`None` for this shard itself).
    pub from: Vec<Option<Consumer<ShardMsg>>>,
    pub control: Producer<ControlMsg>,
    /// Operator requests from the control thread.
    pub admin: Consumer<AdminMsg>,
    /// The ring to the feed thread (`None`: market data is off).
    pub feed: Option<Producer<crate::feed::FeedItem>>,
}

/// The control thread's ends of the mesh.
#[derive(Debug)]
pub struct ControlLinks {
    /// `rx[i]`: what shard `i` reports.
    pub rx: Vec<Consumer<ControlMsg>>,
    /// `admin[i]`: operator requests to shard `i`.
    pub admin: Vec<Producer<AdminMsg>>,
}

/// Build the mesh for `n` shards with `slots` per shard-to-shard ring: the shards' links and
/// the control thread's consumers.
pub fn build(n: usize, slots: usize) -> (Vec<ShardLinks>, ControlLinks) {
    let mut to: Vec<Vec<Option<Producer<ShardMsg>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut from: Vec<Vec<Option<Consumer<ShardMsg>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    for (i, row) in to.iter_mut().enumerate() {
        for (j, slot) in row.iter_mut().enumerate() {
            if i != j {
                let (p, c) = RingBuffer::new(slots);
                *slot = Some(p);
                from[j][i] = Some(c);
            }
        }
    }
    let mut control = ControlLinks {
        rx: Vec::with_capacity(n),
        admin: Vec::with_capacity(n),
    };
    let links = to
        .into_iter()
        .zip(from)
        .enumerate()
        .map(|(shard, (to, from))| {
            let (p, c) = RingBuffer::new(CONTROL_RING_CAPACITY);
            control.rx.push(c);
            let (admin_p, admin_c) = RingBuffer::new(ADMIN_RING_CAPACITY);
            control.admin.push(admin_p);
            ShardLinks {
                shard,
                to,
                from,
                control: p,
                admin: admin_c,
                feed: None,
            }
        })
        .collect();
    (links, control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ordered_pair_has_its_own_ring() {
        let (mut links, control) = build(3, 16);
        assert_eq!((control.rx.len(), control.admin.len()), (3, 3));
        for (i, l) in links.iter().enumerate() {
            assert_eq!(l.shard, i);
            for j in 0..3 {
                assert_eq!(l.to[j].is_some(), i != j);
                assert_eq!(l.from[j].is_some(), i != j);
            }
        }
        // A message from 2 to 0 arrives on 0's ring from 2, and only there.
        let msg = ShardMsg::Command(Inbound {
            from: SessionRef::NONE,
            ingress: 7,
            cmd: Command::MassCancel(veloz_core::MassCancel {
                account: 1,
                client_order_id: 2,
                symbol: None,
                reason: veloz_core::CancelReason::MassCancel,
            }),
        });
        links[2].to[0].as_mut().unwrap().push(msg).unwrap();
        assert!(links[0].from[1].as_mut().unwrap().pop().is_err());
        match links[0].from[2].as_mut().unwrap().pop() {
            Ok(ShardMsg::Command(Inbound { ingress: 7, .. })) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            SessionRef {
                shard: 1,
                slot: 2,
                generation: 3
            }
            .id(),
            (1 << 48) | (2 << 32) | 3
        );
    }
}
