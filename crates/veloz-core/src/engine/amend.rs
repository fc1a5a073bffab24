//! Cancel, replace and mass cancel: the commands that act on resting orders.
//!
//! Contract: a cancel or replace names an order by id, and is rejected unless that order
//! rests in the named instrument and belongs to the sending account (`owned_order`).
//! A replace keeps priority only for the same price and a lower quantity; otherwise the order
//! moves to the back of its new level and, if the new price crosses, trades first as an
//! incoming order (a post-only order that would cross is rejected, unchanged); a replace in a
//! halted instrument or of a disabled account is rejected before the order is looked up
//! (`admin`), while cancels and mass cancels never are. Mass cancel
//! walks the books in ascending instrument id (or the one named), bids then asks, best
//! level first and each level head first, so its events come in a deterministic order.

use super::{crosses, Engine, Stop, Taker};
use crate::book::NIL;
use crate::types::*;

impl Engine {
    /// The slot of `order_id`, or why not: the instrument is unknown, the order does not
    /// rest (in that instrument) or is owned by another account.
    #[inline(always)]
    fn owned_order(
        &self,
        account: AccountId,
        symbol: SymbolId,
        order_id: OrderId,
    ) -> Result<u32, RejectReason> {
        let b = self.book_of(symbol).ok_or(RejectReason::UnknownSymbol)?;
        let slot = self
            .order_index
            .get(order_id)
            .ok_or(RejectReason::UnknownOrder)?;
        let n = self.orders.get(slot);
        if n.book != b {
            return Err(RejectReason::UnknownOrder);
        }
        if n.account != account {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok(slot)
    }

    /// The engine id of the order a cancel or replace names ([`OrderRef::raw`]): its id, or
    /// the account's resting order in `symbol` entered with the client order id (0 when
    /// there is none: then `owned_order` says `UnknownOrder`). Another account's client
    /// order ids are never looked at, so this cannot reach another account's order.
    #[inline]
    fn named_order(&self, account: AccountId, symbol: SymbolId, raw: OrderId) -> OrderId {
        match OrderRef::from_raw(raw) {
            OrderRef::Id(id) => id,
            OrderRef::ClientId(c) => self.order_by_client_id(symbol, account, c).unwrap_or(0),
        }
    }

    pub(super) fn cancel(&mut self, c: &CancelOrder, out: &mut Vec<Event>) {
        let order_id = self.named_order(c.account, c.symbol, c.order_id);
        match self.owned_order(c.account, c.symbol, order_id) {
            Err(reason) => out.push(Event::Rejected {
                account: c.account,
                client_order_id: c.client_order_id,
                symbol: c.symbol,
                order_id,
                reason,
            }),
            Ok(slot) => {
                let n = self.remove(slot);
                self.risk_released(n.book, n.account, n.side, n.price, n.leaves);
                out.push(Event::Cancelled {
                    order_id: n.id,
                    account: n.account,
                    client_order_id: c.client_order_id,
                    symbol: c.symbol,
                    side: n.side,
                    qty: n.leaves,
                    reason: CancelReason::Requested,
                });
            }
        }
    }

    pub(super) fn replace(&mut self, seq: Seq, r: &ReplaceOrder, out: &mut Vec<Event>) {
        let order_id = self.named_order(r.account, r.symbol, r.order_id);
        let reject = |reason| Event::Rejected {
            account: r.account,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            order_id,
            reason,
        };
        if let Some(b) = self.book_of(r.symbol) {
            if let Err(reason) = self.may_enter(b, r.account) {
                out.push(reject(reason));
                return;
            }
        }
        let slot = match self.owned_order(r.account, r.symbol, order_id) {
            Ok(s) => s,
            Err(reason) => {
                out.push(reject(reason));
                return;
            }
        };
        let n = *self.orders.get(slot);
        let b = n.book;
        let book = &self.books[b as usize];
        if let Err(reason) = book.check_qty(r.qty) {
            out.push(reject(reason));
            return;
        }
        if r.price != n.price {
            if let Err(reason) = book.check_price(r.price) {
                out.push(reject(reason));
                return;
            }
        }
        if r.price == n.price && r.qty == n.leaves {
            out.push(reject(RejectReason::NoChange));
            return;
        }
        if n.post_only {
            if let Some((best, _)) = book.ladder(n.side.opposite()).best() {
                if crosses(n.side, r.price, best) {
                    out.push(reject(RejectReason::PostOnlyWouldCross));
                    return;
                }
            }
        }
        if let Err(reason) = self.risk_check_replace(b, &n, r.price, r.qty) {
            out.push(reject(reason));
            return;
        }
        self.risk_replaced(b, &n, r.price, r.qty);
        let replaced = |kept_priority| Event::Replaced {
            order_id: n.id,
            account: n.account,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            side: n.side,
            price: r.price,
            qty: r.qty,
            kept_priority,
        };
        if r.price == n.price && r.qty < n.leaves {
            let level = n.level;
            self.orders.get_mut(slot).leaves = r.qty;
            self.levels.get_mut(level).total -= n.leaves - r.qty;
            out.push(replaced(true));
            return;
        }
        // Loses priority: out of its level, trade if it crosses, rest the remainder at the back.
        self.unlink(&n);
        out.push(replaced(false));
        // Most replaces do not cross: skip the matching loop for them.
        let (remaining, stop) = match self.books[b as usize].ladder(n.side.opposite()).best() {
            Some((best, _)) if crosses(n.side, r.price, best) => {
                let mut taker = Taker {
                    order_id: n.id,
                    account: n.account,
                    client_order_id: n.client_order_id,
                    side: n.side,
                    limit: r.price,
                    remaining: r.qty,
                    stp: n.stp,
                };
                let stop = self.match_taker(b, &mut taker, out);
                (taker.remaining, stop)
            }
            _ => (r.qty, Stop::Done),
        };
        if remaining > 0 && stop == Stop::Done {
            let mut node = n;
            node.price = r.price;
            node.leaves = remaining;
            node.priority_seq = seq;
            self.link(b, slot, &mut node);
            *self.orders.get_mut(slot) = node;
            return;
        }
        // Filled, or its rest cancelled by self-trade prevention: it leaves the book.
        self.orders.free(slot);
        self.order_index.remove(n.id);
        self.client_ids.remove(slot, &n);
        if remaining > 0 {
            self.risk_released(b, n.account, n.side, r.price, remaining);
            out.push(Event::Cancelled {
                order_id: n.id,
                account: n.account,
                client_order_id: n.client_order_id,
                symbol: r.symbol,
                side: n.side,
                qty: remaining,
                reason: CancelReason::SelfTrade,
            });
        }
    }

    pub(super) fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
        if !matches!(
            m.reason,
            CancelReason::MassCancel | CancelReason::CancelOnDisconnect
        ) {
            out.push(Event::Rejected {
                account: m.account,
                client_order_id: m.client_order_id,
                symbol: m.symbol.unwrap_or(0),
                order_id: 0,
                reason: RejectReason::InvalidOrderType,
            });
            return;
        }
        let range = match m.symbol {
            Some(symbol) => match self.book_of(symbol) {
                Some(b) => b..b + 1,
                None => {
                    out.push(Event::Rejected {
                        account: m.account,
                        client_order_id: m.client_order_id,
                        symbol,
                        order_id: 0,
                        reason: RejectReason::UnknownSymbol,
                    });
                    return;
                }
            },
            None => 0..self.books.len() as u32,
        };
        let count = self.cancel_account_orders(range, m.account, m.reason, out);
        out.push(Event::MassCancelled {
            account: m.account,
            client_order_id: m.client_order_id,
            symbol: m.symbol,
            count,
        });
    }

    /// Cancel every resting order of `account` in books `range`, ascending, bids then asks,
    /// best level first and each level head first, reporting each with `reason` (and the
    /// order's own client order id). Returns how many. Shared by mass cancel and the kill
    /// switch (`admin`).
    pub(super) fn cancel_account_orders(
        &mut self,
        range: std::ops::Range<u32>,
        account: AccountId,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) -> u32 {
        let mut count = 0u32;
        let mut victims = Vec::new();
        for b in range {
            for side in [Side::Buy, Side::Sell] {
                victims.clear();
                for (_, level) in self.books[b as usize].ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        if n.account == account {
                            victims.push(slot);
                        }
                        slot = n.next;
                    }
                }
                for &slot in &victims {
                    let n = self.remove(slot);
                    self.risk_released(b, n.account, n.side, n.price, n.leaves);
                    out.push(Event::Cancelled {
                        order_id: n.id,
                        account: n.account,
                        client_order_id: n.client_order_id,
                        symbol: self.books[b as usize].instrument.id,
                        side: n.side,
                        qty: n.leaves,
                        reason,
                    });
                    count += 1;
                }
            }
        }
        count
    }
}
