//! The invariant check of an [`Engine`]: [`Engine::validate`] and [`InvariantError`].
//!
//! Contract: `validate` walks every book and checks the invariants listed in
//! [`crate::book`] (level totals and counts, price order, order links, levels and prices),
//! that every resting order is indexed by id and by client order id, that no book is crossed,
//! that no order rests for a disabled account (`admin`: the kill switch cancelled them all
//! and refuses new ones), that the order count agrees across the ladders, the index, the
//! slab and the client-id map, and the report streams' invariants (`streams`: counters > 0,
//! each retained window no longer than the retention and numbered consecutively up to its
//! account's counter). It returns the first violation, naming the book (`*` for engine-wide
//! ones). Tests and debug tools call it; the event path never does.

use super::Engine;
use crate::book::NIL;
use crate::types::*;

/// An internal invariant that does not hold; names the book and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated in {symbol}: {what}")]
pub struct InvariantError {
    pub symbol: String,
    pub what: String,
}

impl Engine {
    /// Check every internal invariant; the first violation is returned, naming the book.
    pub fn validate(&self) -> Result<(), InvariantError> {
        let mut reachable = 0usize;
        for (b, book) in self.books.iter().enumerate() {
            let fail = |what: String| InvariantError {
                symbol: book.instrument.symbol.clone(),
                what,
            };
            for side in [Side::Buy, Side::Sell] {
                let ladder = book.ladder(side);
                let mut prev: Option<Price> = None;
                for (price, l) in ladder.iter_best_first() {
                    if let Some(p) = prev {
                        if !ladder.better(p, price) {
                            return Err(fail(format!(
                                "{side:?} levels out of order: {p} before {price}"
                            )));
                        }
                    }
                    prev = Some(price);
                    let level = self.levels.get(l);
                    if level.price != price {
                        return Err(fail(format!(
                            "level slot {l} has price {} but is filed at {price}",
                            level.price
                        )));
                    }
                    let (mut sum, mut count, mut slot, mut back) = (0u64, 0u32, level.head, NIL);
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        if n.leaves == 0 || n.price != price || n.level != l || n.prev != back {
                            return Err(fail(format!(
                                "order {} at {price}: leaves {}, price {}, level {} (want {l}), prev {} (want {back})",
                                n.id, n.leaves, n.price, n.level, n.prev
                            )));
                        }
                        if n.book as usize != b || n.side != side {
                            return Err(fail(format!(
                                "order {} filed in the wrong book or side",
                                n.id
                            )));
                        }
                        if self.order_index.get(n.id) != Some(slot) {
                            return Err(fail(format!(
                                "order {} is not indexed at slot {slot}",
                                n.id
                            )));
                        }
                        let found = self.client_ids.find(
                            &self.orders,
                            n.book,
                            n.account,
                            n.client_order_id,
                        );
                        if found != Some(slot) {
                            return Err(fail(format!(
                                "order {} client id {} of account {} is not indexed",
                                n.id, n.client_order_id, n.account
                            )));
                        }
                        if !self.disabled.is_empty() && self.disabled.contains(&n.account) {
                            return Err(fail(format!(
                                "order {} rests for disabled account {}",
                                n.id, n.account
                            )));
                        }
                        sum += n.leaves;
                        count += 1;
                        back = slot;
                        slot = n.next;
                    }
                    if level.tail != back
                        || sum != level.total
                        || count != level.count
                        || count == 0
                    {
                        return Err(fail(format!(
                            "level {price}: total {} count {} tail {} but orders sum {sum} count {count} last {back}",
                            level.total, level.count, level.tail
                        )));
                    }
                    reachable += count as usize;
                }
            }
            if let (Some((bid, _)), Some((ask, _))) = (book.bids.best(), book.asks.best()) {
                if bid >= ask {
                    return Err(fail(format!("book crossed: bid {bid} >= ask {ask}")));
                }
            }
        }
        let fail = |what: String| InvariantError {
            symbol: "*".into(),
            what,
        };
        if reachable != self.order_index.len() || reachable != self.orders.live() {
            return Err(fail(format!(
                "{reachable} orders in books, {} indexed, {} slots live",
                self.order_index.len(),
                self.orders.live()
            )));
        }
        if self.client_ids.len() != reachable {
            return Err(fail(format!(
                "{} client ids indexed for {reachable} resting orders",
                self.client_ids.len()
            )));
        }
        self.streams.check().map_err(fail)?;
        self.validate_ledger().map_err(fail)?;
        Ok(())
    }
}
