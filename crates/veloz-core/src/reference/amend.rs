//! The naive twin's cancel, replace and mass cancel: the semantics of `engine::amend`,
//! written plainly.

use super::{best_first, crosses, RefOrder, ReferenceEngine};
use crate::types::*;

impl ReferenceEngine {
    /// The order named by a cancel/replace, or why not.
    fn lookup(
        &self,
        account: AccountId,
        symbol: SymbolId,
        id: OrderId,
    ) -> Result<RefOrder, RejectReason> {
        let book = self.books.get(&symbol).ok_or(RejectReason::UnknownSymbol)?;
        let o = book.find(id).ok_or(RejectReason::UnknownOrder)?;
        if o.account != account {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok(o)
    }

    /// The order id a cancel/replace names: its `order_id`, or with 0 the id of the
    /// account's resting order in `symbol` entered with `orig` (0 when none).
    fn named(&self, account: AccountId, symbol: SymbolId, raw: OrderId) -> OrderId {
        let orig = match OrderRef::from_raw(raw) {
            OrderRef::Id(id) => return id,
            OrderRef::ClientId(c) => c,
        };
        self.books
            .get(&symbol)
            .and_then(|b| {
                b.all_orders()
                    .find(|o| o.account == account && o.client_order_id == orig)
                    .map(|o| o.id)
            })
            .unwrap_or(0)
    }

    pub(super) fn cancel(&mut self, c: &CancelOrder, out: &mut Vec<Event>) {
        let order_id = self.named(c.account, c.symbol, c.order_id);
        match self.lookup(c.account, c.symbol, order_id) {
            Err(reason) => out.push(Event::Rejected {
                account: c.account,
                client_order_id: c.client_order_id,
                symbol: c.symbol,
                order_id,
                reason,
            }),
            Ok(o) => {
                self.books.get_mut(&c.symbol).expect("known").take(o.id);
                out.push(Event::Cancelled {
                    order_id: o.id,
                    account: o.account,
                    client_order_id: c.client_order_id,
                    symbol: c.symbol,
                    side: o.side,
                    qty: o.leaves,
                    reason: CancelReason::Requested,
                });
            }
        }
    }

    pub(super) fn replace(&mut self, seq: Seq, r: &ReplaceOrder, out: &mut Vec<Event>) {
        let order_id = self.named(r.account, r.symbol, r.order_id);
        let reject = |reason| Event::Rejected {
            account: r.account,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            order_id,
            reason,
        };
        if let Err(reason) = self.may_enter(r.symbol, r.account) {
            return out.push(reject(reason));
        }
        let o = match self.lookup(r.account, r.symbol, order_id) {
            Ok(o) => o,
            Err(reason) => return out.push(reject(reason)),
        };
        let book = &self.books[&r.symbol];
        if let Err(reason) = book.instrument.check_qty(r.qty) {
            return out.push(reject(reason));
        }
        if r.price != o.price {
            if let Err(reason) = book.instrument.check_price(r.price, book.reference()) {
                return out.push(reject(reason));
            }
        }
        if r.price == o.price && r.qty == o.leaves {
            return out.push(reject(RejectReason::NoChange));
        }
        if o.post_only
            && book
                .best(o.side.opposite())
                .is_some_and(|best| crosses(o.side, r.price, best))
        {
            return out.push(reject(RejectReason::PostOnlyWouldCross));
        }
        if let Err(reason) = self.risk_check_replace(r.symbol, &o, r.price, r.qty) {
            return out.push(reject(reason));
        }
        let keep = r.price == o.price && r.qty < o.leaves;
        out.push(Event::Replaced {
            order_id: o.id,
            account: o.account,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            side: o.side,
            price: r.price,
            qty: r.qty,
            kept_priority: keep,
        });
        let book = self.books.get_mut(&r.symbol).expect("known");
        if keep {
            let queue = book.side_mut(o.side).get_mut(&o.price).expect("level");
            queue
                .iter_mut()
                .find(|x| x.id == o.id)
                .expect("order")
                .leaves = r.qty;
            return;
        }
        book.take(o.id);
        let moved = RefOrder {
            price: r.price,
            leaves: r.qty,
            priority_seq: seq,
            ..o
        };
        let (left, self_traded) = self.match_order(r.symbol, moved.clone(), r.price, out);
        if left == 0 {
            return;
        }
        if self_traded {
            out.push(Event::Cancelled {
                order_id: o.id,
                account: o.account,
                client_order_id: o.client_order_id,
                symbol: r.symbol,
                side: o.side,
                qty: left,
                reason: CancelReason::SelfTrade,
            });
        } else {
            self.books
                .get_mut(&r.symbol)
                .expect("known")
                .push_back(RefOrder {
                    leaves: left,
                    ..moved
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
        let symbols: Vec<SymbolId> = match m.symbol {
            Some(s) if !self.books.contains_key(&s) => {
                return out.push(Event::Rejected {
                    account: m.account,
                    client_order_id: m.client_order_id,
                    symbol: s,
                    order_id: 0,
                    reason: RejectReason::UnknownSymbol,
                })
            }
            Some(s) => vec![s],
            None => self.books.keys().copied().collect(),
        };
        let count = self.cancel_account(&symbols, m.account, m.reason, out);
        out.push(Event::MassCancelled {
            account: m.account,
            client_order_id: m.client_order_id,
            symbol: m.symbol,
            count,
        });
    }

    /// Cancel every resting order of `account` in `symbols` (in that order), bids then
    /// asks, best first, reporting each with `reason`; returns how many.
    pub(super) fn cancel_account(
        &mut self,
        symbols: &[SymbolId],
        account: AccountId,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) -> u32 {
        let mut count = 0;
        for &s in symbols {
            let book = self.books.get_mut(&s).expect("known");
            for side in [Side::Buy, Side::Sell] {
                let victims: Vec<RefOrder> = best_first(book.side(side), side)
                    .flat_map(|(_, q)| q.iter())
                    .filter(|o| o.account == account)
                    .cloned()
                    .collect();
                for o in victims {
                    book.take(o.id);
                    out.push(Event::Cancelled {
                        order_id: o.id,
                        account: o.account,
                        client_order_id: o.client_order_id,
                        symbol: s,
                        side: o.side,
                        qty: o.leaves,
                        reason,
                    });
                    count += 1;
                }
            }
        }
        count
    }
}
