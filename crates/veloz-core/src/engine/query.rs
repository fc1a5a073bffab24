//! Order queries for members: one order by engine id or by the client order id it was
//! entered with, and an account's open orders in pages.
//!
//! Contract: read-only; the result depends only on the engine's state (walks are over
//! ladders best first and level FIFOs head first, never a hash map), so the same state
//! answers the same way on every run. Isolation: a query names its account, and an order
//! of another account is never described (by id: `NotOrderOwner`; by client order id:
//! another account's ids are not even looked at).
//!
//! Cost: by id or client id, one or two point lookups. Open orders walk every resting order
//! of the engine's books (or of one book), like a mass cancel: O(resting orders) per page.

use super::Engine;
use crate::book::NIL;
use crate::types::*;

/// A resting order as a query reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: OrderId,
    pub account: AccountId,
    /// The client order id it was entered with.
    pub client_order_id: ClientOrderId,
    pub symbol: SymbolId,
    pub side: Side,
    pub price: Price,
    /// Open quantity.
    pub leaves_qty: Qty,
    /// Engine time of the command that entered it.
    pub entered_ns: Timestamp,
}

/// One page of an account's open orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOrdersPage {
    /// Ascending by order id, all above the page's `after`.
    pub orders: Vec<OrderView>,
    /// More open orders follow the last one (ask again with `after` = its id).
    pub more: bool,
}

impl Engine {
    /// The account's resting order in `symbol` entered with `client_order_id`.
    pub fn order_by_client_id(
        &self,
        symbol: SymbolId,
        account: AccountId,
        client_order_id: ClientOrderId,
    ) -> Option<OrderId> {
        let b = self.book_of(symbol)?;
        let slot = self
            .client_ids
            .find(&self.orders, b, account, client_order_id)?;
        Some(self.orders.get(slot).id)
    }

    /// `account`'s resting order `by` in `symbol`, or why it cannot be shown:
    /// `UnknownSymbol`, `UnknownOrder` (not resting: never existed, filled or cancelled, or
    /// in another instrument), `NotOrderOwner` (another account's order).
    pub fn order_status(
        &self,
        account: AccountId,
        symbol: SymbolId,
        by: OrderRef,
    ) -> Result<OrderView, RejectReason> {
        let b = self.book_of(symbol).ok_or(RejectReason::UnknownSymbol)?;
        let id = match by {
            OrderRef::Id(id) => id,
            OrderRef::ClientId(coid) => self
                .order_by_client_id(symbol, account, coid)
                .ok_or(RejectReason::UnknownOrder)?,
        };
        let slot = self.order_index.get(id).ok_or(RejectReason::UnknownOrder)?;
        let n = self.orders.get(slot);
        if n.book != b {
            return Err(RejectReason::UnknownOrder);
        }
        if n.account != account {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok(self.view(slot))
    }

    /// Up to `max` of `account`'s resting orders with an id above `after`, ascending by id,
    /// in `symbol` or in every instrument of the engine. `UnknownSymbol` for a symbol the
    /// engine does not have.
    pub fn open_orders(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        after: OrderId,
        max: usize,
    ) -> Result<OpenOrdersPage, RejectReason> {
        let range = match symbol {
            Some(s) => {
                let b = self.book_of(s).ok_or(RejectReason::UnknownSymbol)?;
                b..b + 1
            }
            None => 0..self.books.len() as u32,
        };
        let mut found = Vec::new();
        for b in range {
            for side in [Side::Buy, Side::Sell] {
                for (_, level) in self.books[b as usize].ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        if n.account == account && n.id > after {
                            found.push(slot);
                        }
                        slot = n.next;
                    }
                }
            }
        }
        found.sort_unstable_by_key(|&slot| self.orders.get(slot).id);
        let more = found.len() > max;
        found.truncate(max);
        Ok(OpenOrdersPage {
            orders: found.into_iter().map(|slot| self.view(slot)).collect(),
            more,
        })
    }

    fn view(&self, slot: u32) -> OrderView {
        let n = self.orders.get(slot);
        OrderView {
            order_id: n.id,
            account: n.account,
            client_order_id: n.client_order_id,
            symbol: self.books[n.book as usize].instrument.id,
            side: n.side,
            price: n.price,
            leaves_qty: n.leaves,
            entered_ns: n.entry_ts,
        }
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
