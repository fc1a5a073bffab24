//! The new-order path of [`Engine`]: validation, price-time matching, resting the rest, and
//! the level bookkeeping every path shares.
//!
//! Contract: [`Engine::apply`] of a `New` command lands here. Validation runs in the order
//! the engine's module docs give and rejects before anything changes; a FOK order is checked
//! against what could fill (`fills_within`, self-trade prevention and a budget order's
//! budget included) before anything trades. Matching walks the opposite ladder best first and each level's FIFO head first,
//! trading at the resting price. Linking and unlinking keep every level's `total` and
//! `count` equal to its orders' and remove a level from its ladder when it empties; removing
//! an order also drops it from the order index and the client-id map.

use super::{crosses, Engine, Stop, Taker};
use crate::book::{OrderNode, NIL};
use crate::types::*;

/// The budget of a budget order: a market fill-or-kill order with a positive `price`
/// (exchange-core's FOK_BUDGET), in price units times quantity units.
pub(crate) fn budget(o: &NewOrder) -> Option<u128> {
    (o.kind == OrderKind::Market && o.tif == TimeInForce::Fok && o.price > 0)
        .then_some(o.price as u128)
}

impl Engine {
    pub(super) fn new_order(
        &mut self,
        seq: Seq,
        ts: Timestamp,
        o: &NewOrder,
        out: &mut Vec<Event>,
    ) {
        let reject = |reason| Event::Rejected {
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            order_id: 0,
            reason,
        };
        let Some(b) = self.book_of(o.symbol) else {
            out.push(reject(RejectReason::UnknownSymbol));
            return;
        };
        if let Err(r) = self.may_enter(b, o.account) {
            out.push(reject(r));
            return;
        }
        let book = &self.books[b as usize];
        let market = o.kind == OrderKind::Market;
        if (market && (o.tif == TimeInForce::Gtc || o.post_only))
            || (o.post_only && o.tif != TimeInForce::Gtc)
        {
            out.push(reject(RejectReason::InvalidOrderType));
            return;
        }
        if let Err(r) = book.check_qty(o.qty) {
            out.push(reject(r));
            return;
        }
        if !market {
            if let Err(r) = book.check_price(o.price) {
                out.push(reject(r));
                return;
            }
        }
        if self
            .client_ids
            .find(&self.orders, b, o.account, o.client_order_id)
            .is_some()
        {
            out.push(reject(RejectReason::DuplicateClientOrderId));
            return;
        }
        let opposite_best = book.ladder(o.side.opposite()).best().map(|l| l.0);
        if o.post_only {
            if let Some(best) = opposite_best {
                if crosses(o.side, o.price, best) {
                    out.push(reject(RejectReason::PostOnlyWouldCross));
                    return;
                }
            }
        }

        // The worst price this order may trade at; `None` for a market order facing an
        // empty book.
        let limit = if market {
            opposite_best.map(|best| book.instrument.market_limit(best, o.side == Side::Buy))
        } else {
            Some(o.price)
        };

        if let Err(r) = self.risk_check_new(b, o, limit, ts) {
            out.push(reject(r));
            return;
        }

        let order_id = self.next_order_id();
        out.push(Event::Accepted {
            order_id,
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            side: o.side,
            price: o.price,
            qty: o.qty,
        });

        let Some(limit) = limit else {
            out.push(self.cancelled_taker(o, order_id, o.qty, CancelReason::NoLiquidity));
            return;
        };
        self.risk_accepted(b, o, limit, ts);
        let mut taker = Taker {
            order_id,
            account: o.account,
            client_order_id: o.client_order_id,
            side: o.side,
            limit,
            remaining: o.qty,
            stp: o.stp,
        };
        if o.tif == TimeInForce::Fok && !self.fills_within(b, &taker, budget(o)) {
            self.risk_released(b, o.account, o.side, limit, o.qty);
            out.push(self.cancelled_taker(o, order_id, o.qty, CancelReason::FillOrKill));
            return;
        }
        let stop = self.match_taker(b, &mut taker, out);
        if taker.remaining == 0 {
            return;
        }
        let reason = if stop == Stop::SelfTrade {
            Some(CancelReason::SelfTrade)
        } else if market {
            Some(
                if self.books[b as usize].ladder(o.side.opposite()).is_empty() {
                    CancelReason::ImmediateOrCancel
                } else {
                    CancelReason::ProtectionBand
                },
            )
        } else if o.tif != TimeInForce::Gtc {
            Some(CancelReason::ImmediateOrCancel)
        } else {
            None
        };
        match reason {
            Some(r) => {
                self.risk_released(b, o.account, o.side, limit, taker.remaining);
                out.push(self.cancelled_taker(o, order_id, taker.remaining, r));
            }
            None => {
                let node = OrderNode {
                    id: order_id,
                    client_order_id: o.client_order_id,
                    price: o.price,
                    leaves: taker.remaining,
                    priority_seq: seq,
                    entry_ts: ts,
                    account: o.account,
                    book: b,
                    level: NIL,
                    prev: NIL,
                    next: NIL,
                    side: o.side,
                    stp: o.stp,
                    post_only: o.post_only,
                };
                self.rest(b, node);
            }
        }
    }

    fn cancelled_taker(
        &self,
        o: &NewOrder,
        order_id: OrderId,
        qty: Qty,
        reason: CancelReason,
    ) -> Event {
        Event::Cancelled {
            order_id,
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            side: o.side,
            qty,
            reason,
        }
    }

    /// Put a new node at the back of its price level and index it.
    pub(super) fn rest(&mut self, b: u32, mut node: OrderNode) {
        let slot = self.orders.alloc(node);
        self.link(b, slot, &mut node);
        *self.orders.get_mut(slot) = node;
        self.order_index.insert(node.id, slot);
        self.client_ids.insert(&self.orders, slot);
    }

    /// Link `node`, which will be stored in `slot`, at the back of the level at its price
    /// (creating the level): sets its `level`, `prev` and `next` and links the old tail to it.
    /// The caller writes `node` into its slot; working on a copy saves re-reading the slot.
    #[inline(always)]
    pub(super) fn link(&mut self, b: u32, slot: u32, node: &mut OrderNode) {
        let price = node.price;
        let levels = &mut self.levels;
        let l = self.books[b as usize]
            .ladder_mut(node.side)
            .find_or_insert(price, || levels.alloc(price));
        let level = self.levels.get_mut(l);
        let tail = level.tail;
        node.level = l;
        node.prev = tail;
        node.next = NIL;
        level.total += node.leaves;
        level.count += 1;
        level.tail = slot;
        if tail == NIL {
            level.head = slot;
        } else {
            self.orders.get_mut(tail).next = slot;
        }
    }

    /// Unlink the order whose current node is `n` from its level, removing the level if it
    /// empties. The node stays allocated and indexed (its own links are left stale).
    #[inline(always)]
    pub(super) fn unlink(&mut self, n: &OrderNode) {
        if n.prev != NIL {
            self.orders.get_mut(n.prev).next = n.next;
        }
        if n.next != NIL {
            self.orders.get_mut(n.next).prev = n.prev;
        }
        let level = self.levels.get_mut(n.level);
        if n.prev == NIL {
            level.head = n.next;
        }
        if n.next == NIL {
            level.tail = n.prev;
        }
        level.total -= n.leaves;
        level.count -= 1;
        if level.count == 0 {
            self.books[n.book as usize]
                .ladder_mut(n.side)
                .remove(n.price);
            self.levels.free(n.level);
        }
    }

    /// Take a resting order out of the book entirely.
    pub(super) fn remove(&mut self, slot: u32) -> OrderNode {
        let node = *self.orders.get(slot);
        self.remove_node(slot, &node);
        node
    }

    /// [`Engine::remove`] of the order in `slot` whose current node is `node`.
    #[inline]
    fn remove_node(&mut self, slot: u32, node: &OrderNode) {
        self.unlink(node);
        self.orders.free(slot);
        self.order_index.remove(node.id);
        self.client_ids.remove(slot, node);
    }

    /// Whether the whole of `taker` could trade at once, as matching would see it
    /// (self-trade prevention included), and, for a budget order, within its budget: the
    /// fills' `price * qty` summed at most `budget` for a buy, at least `budget` for a sell.
    fn fills_within(&self, b: u32, taker: &Taker, budget: Option<u128>) -> bool {
        let ladder = self.books[b as usize].ladder(taker.side.opposite());
        let (mut left, mut cost) = (taker.remaining, 0u128);
        let within = |cost: u128| match budget {
            None => true,
            Some(budget) if taker.side == Side::Buy => cost <= budget,
            Some(budget) => cost >= budget,
        };
        for (price, level) in ladder.iter_best_first() {
            if !crosses(taker.side, taker.limit, price) {
                break;
            }
            let mut slot = self.levels.get(level).head;
            while slot != NIL {
                let n = self.orders.get(slot);
                if n.account == taker.account && taker.stp != SelfTradePrevention::Allow {
                    if taker.stp != SelfTradePrevention::CancelResting {
                        return false;
                    }
                } else {
                    let take = left.min(n.leaves);
                    left -= take;
                    cost += price as u128 * take as u128;
                    if left == 0 {
                        return within(cost);
                    }
                }
                slot = n.next;
            }
        }
        false
    }

    /// Match `taker` against the opposite side of book `b`.
    pub(super) fn match_taker(&mut self, b: u32, taker: &mut Taker, out: &mut Vec<Event>) -> Stop {
        let maker_side = taker.side.opposite();
        let symbol = self.books[b as usize].instrument.id;
        while taker.remaining > 0 {
            let Some((price, level)) = self.books[b as usize].ladder(maker_side).best() else {
                break;
            };
            if !crosses(taker.side, taker.limit, price) {
                break;
            }
            let slot = self.levels.get(level).head;
            let maker = *self.orders.get(slot);
            if maker.account == taker.account && taker.stp != SelfTradePrevention::Allow {
                let cancel_resting = matches!(
                    taker.stp,
                    SelfTradePrevention::CancelResting | SelfTradePrevention::CancelBoth
                );
                if cancel_resting {
                    self.remove_node(slot, &maker);
                    let (side, price, leaves) = (maker.side, maker.price, maker.leaves);
                    self.risk_released(b, maker.account, side, price, leaves);
                    out.push(Event::Cancelled {
                        order_id: maker.id,
                        account: maker.account,
                        client_order_id: maker.client_order_id,
                        symbol,
                        side: maker.side,
                        qty: maker.leaves,
                        reason: CancelReason::SelfTrade,
                    });
                }
                if taker.stp == SelfTradePrevention::CancelResting {
                    continue;
                }
                return Stop::SelfTrade;
            }
            let qty = taker.remaining.min(maker.leaves);
            taker.remaining -= qty;
            let maker_leaves = maker.leaves - qty;
            if maker_leaves == 0 {
                self.remove_node(slot, &maker);
            } else {
                self.orders.get_mut(slot).leaves = maker_leaves;
                self.levels.get_mut(level).total -= qty;
            }
            self.books[b as usize].last_trade_price = price;
            let (maker_done, taker_done) = (maker_leaves == 0, taker.remaining == 0);
            let (account, limit) = (taker.account, taker.limit);
            self.risk_settle(
                b, &maker, account, limit, price, qty, maker_done, taker_done,
            );
            let trade_id = self.next_trade_id();
            out.push(Event::Trade {
                trade_id,
                symbol,
                price,
                qty,
                aggressor: taker.side,
                maker: Fill {
                    order_id: maker.id,
                    account: maker.account,
                    client_order_id: maker.client_order_id,
                    leaves_qty: maker_leaves,
                },
                taker: Fill {
                    order_id: taker.order_id,
                    account: taker.account,
                    client_order_id: taker.client_order_id,
                    leaves_qty: taker.remaining,
                },
            });
        }
        Stop::Done
    }
}
