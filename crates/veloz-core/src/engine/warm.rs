//! Warming the memory a batch of commands will touch, before applying them: for callers that
//! hold many commands at once (recovery replaying the journal, a standby following it).
//!
//! With a large book, applying a command waits on a chain of cache misses, one after the
//! other: a cancel reads the order index entry, then the order's node, then its neighbours in
//! the level and its client-order-id entry; a new order probes the client-order-id table and
//! the order index. [`Engine::warm`] reads those places for a whole batch first, in three
//! rounds whose reads do not depend on one another within a round, so that the misses of a
//! batch overlap instead of queuing; applying the batch then finds them in the cache.
//!
//! Invariant: it only reads (through [`std::hint::black_box`], so the reads happen), never
//! changes state: events, state hashes and snapshots are the same with or without it. A
//! guess that misses (a new order's id, when an earlier command of the batch is rejected)
//! only costs a useless read.

use std::hint::black_box;

use super::Engine;
use crate::book::NIL;
use crate::types::{Command, OrderId, OrderRef};

impl Engine {
    /// Read what applying `batch`, in order, will read (see the module docs).
    pub fn warm(&self, batch: &[Command]) {
        // Round 1: where the probes start (the index entry of each order named by id, the
        // client-order-id entry of each new order and of each order named by client id),
        // and the index entry a new order will take.
        let mut next_id = self.order_seq;
        for cmd in batch {
            match cmd {
                Command::New(o) => {
                    if let Some(b) = self.book_of(o.symbol) {
                        black_box(self.client_ids.probe(b, o.account, o.client_order_id));
                    }
                    next_id += 1;
                    let id = ((self.shard as u64) << 48) | next_id;
                    black_box(self.order_index.probe(id));
                }
                Command::Cancel(c) => self.warm_ref(c.account, c.symbol, c.order_id),
                Command::Replace(r) => self.warm_ref(r.account, r.symbol, r.order_id),
                Command::MassCancel(_) | Command::Admin(_) => {}
            }
        }
        // Round 2: the nodes of the orders named (their index entries are in the cache now).
        for cmd in batch {
            if let Some(slot) = self.named_slot(cmd) {
                black_box(self.orders.get(slot).level);
            }
        }
        // Round 3: what taking them out of their level touches: the neighbours, the level,
        // the client-order-id entry.
        for cmd in batch {
            if let Some(slot) = self.named_slot(cmd) {
                let n = self.orders.get(slot);
                if n.prev != NIL {
                    black_box(self.orders.get(n.prev).next);
                }
                if n.next != NIL {
                    black_box(self.orders.get(n.next).prev);
                }
                black_box(self.levels.get(n.level).count);
                black_box(self.client_ids.probe(n.book, n.account, n.client_order_id));
            }
        }
    }

    /// Round 1 for a cancel or replace naming `raw`.
    fn warm_ref(&self, account: u32, symbol: u32, raw: OrderId) {
        match OrderRef::from_raw(raw) {
            OrderRef::Id(id) => {
                black_box(self.order_index.probe(id));
            }
            OrderRef::ClientId(c) => {
                if let Some(b) = self.book_of(symbol) {
                    black_box(self.client_ids.probe(b, account, c));
                }
            }
        }
    }

    /// The slot of the resting order a cancel or replace names, if any.
    fn named_slot(&self, cmd: &Command) -> Option<u32> {
        let (account, symbol, raw) = match cmd {
            Command::Cancel(c) => (c.account, c.symbol, c.order_id),
            Command::Replace(r) => (r.account, r.symbol, r.order_id),
            _ => return None,
        };
        match OrderRef::from_raw(raw) {
            OrderRef::Id(id) => self.order_index.get(id),
            OrderRef::ClientId(c) => {
                let b = self.book_of(symbol)?;
                self.client_ids.find(&self.orders, b, account, c)
            }
        }
    }
}
