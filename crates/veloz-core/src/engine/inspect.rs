//! Read-only views of an [`Engine`]: depth, queues, order leaves, last trade price and the
//! state hash.
//!
//! Contract: nothing here changes state or allocates on the event path; every walk is over
//! ladders (best first) and level FIFOs (head first), never a hash map, so
//! [`Engine::state_hash`] is the same for the same state on every run and equal to the naive
//! twin's (see [`crate::hash`] for the walk).

use super::{Book, Engine};
use crate::book::NIL;
use crate::hash::StateHasher;
use crate::types::*;

/// One side's level summary for depth queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    pub price: Price,
    pub qty: Qty,
    pub orders: u32,
}

impl Engine {
    fn book(&self, symbol: SymbolId) -> Option<&Book> {
        self.book_of(symbol).map(|b| &self.books[b as usize])
    }

    /// Best price and its total open quantity on `side` of `symbol`.
    pub fn best(&self, symbol: SymbolId, side: Side) -> Option<LevelView> {
        self.depth(symbol, side, 1).into_iter().next()
    }

    /// Up to `n` levels of `side` of `symbol`, best first.
    pub fn depth(&self, symbol: SymbolId, side: Side, n: usize) -> Vec<LevelView> {
        let Some(book) = self.book(symbol) else {
            return Vec::new();
        };
        book.ladder(side)
            .iter_best_first()
            .take(n)
            .map(|(price, l)| {
                let level = self.levels.get(l);
                LevelView {
                    price,
                    qty: level.total,
                    orders: level.count,
                }
            })
            .collect()
    }

    /// Order ids at `price` on `side` of `symbol`, in time priority (head first).
    pub fn queue(&self, symbol: SymbolId, side: Side, price: Price) -> Vec<OrderId> {
        let mut ids = Vec::new();
        if let Some(level) = self.book(symbol).and_then(|b| b.ladder(side).find(price)) {
            let mut slot = self.levels.get(level).head;
            while slot != NIL {
                let n = self.orders.get(slot);
                ids.push(n.id);
                slot = n.next;
            }
        }
        ids
    }

    /// Open quantity of a resting order.
    pub fn order_leaves(&self, order_id: OrderId) -> Option<Qty> {
        self.order_index
            .get(order_id)
            .map(|s| self.orders.get(s).leaves)
    }

    /// Last trade price of `symbol` (0 before the first trade).
    pub fn last_trade_price(&self, symbol: SymbolId) -> Option<Price> {
        self.book(symbol).map(|b| b.last_trade_price)
    }

    /// The stable hash of the whole state (see [`crate::hash`] for the walk).
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.u64(self.order_seq);
        h.u64(self.trade_seq);
        for book in &self.books {
            h.u32(book.instrument.id);
            h.i64(book.reference());
            for side in [Side::Buy, Side::Sell] {
                h.u8(side as u8);
                for (price, l) in book.ladder(side).iter_best_first() {
                    let level = self.levels.get(l);
                    h.i64(price);
                    h.u64(level.total);
                    h.u32(level.count);
                    let mut slot = level.head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        h.u64(n.id);
                        h.u32(n.account);
                        h.u64(n.client_order_id);
                        h.u64(n.leaves);
                        h.u8(n.stp as u8);
                        h.u8(n.post_only as u8);
                        h.u64(n.priority_seq);
                        h.u64(n.entry_ts);
                        slot = n.next;
                    }
                }
            }
        }
        h.admin(self.halted_instruments(), self.disabled_accounts());
        if let Some(l) = &self.ledger {
            let rows: Vec<(usize, Vec<_>)> =
                l.sorted().into_iter().map(|s| (s, l.dense(s))).collect();
            h.ledger(rows.iter().map(|(s, row)| {
                let a = &l.accounts[*s];
                (a.id, a.window_sec, a.window_notional, row.as_slice())
            }));
        }
        h.finish()
    }
}
