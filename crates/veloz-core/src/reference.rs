//! The naive twin of [`crate::Engine`]: obviously correct, slow.
//!
//! Each side of a book is a `BTreeMap<Price, VecDeque<order>>`; every lookup is a linear
//! scan; fill-or-kill is decided by running the order on a clone of the engine and looking
//! at what is left. It implements the semantics documented on [`crate::engine`]
//! independently of the fast engine's data structures, and property tests run the same
//! command streams through both and compare every event and the state hash. The operator's
//! controls (halt, kill switch) are in `reference/admin.rs`; cancel, replace and mass cancel
//! in `reference/amend.rs`; money (balances from totals, holds recomputed from the resting
//! orders) in `reference/risk.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::hash::StateHasher;
use super::instrument::Instrument;
use super::types::*;

#[derive(Clone, Debug)]
struct RefOrder {
    id: OrderId,
    account: AccountId,
    client_order_id: ClientOrderId,
    side: Side,
    price: Price,
    leaves: Qty,
    priority_seq: Seq,
    entry_ts: Timestamp,
    stp: SelfTradePrevention,
    post_only: bool,
}

#[derive(Clone, Debug)]
struct RefBook {
    instrument: Instrument,
    bids: BTreeMap<Price, VecDeque<RefOrder>>,
    asks: BTreeMap<Price, VecDeque<RefOrder>>,
    last_trade_price: Price,
    halted: bool,
}

impl RefBook {
    fn side(&self, side: Side) -> &BTreeMap<Price, VecDeque<RefOrder>> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Price, VecDeque<RefOrder>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn best(&self, side: Side) -> Option<Price> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }

    fn reference(&self) -> Price {
        if self.last_trade_price > 0 {
            self.last_trade_price
        } else {
            self.instrument.reference_price
        }
    }

    fn all_orders(&self) -> impl Iterator<Item = &RefOrder> {
        self.bids
            .values()
            .chain(self.asks.values())
            .flat_map(|q| q.iter())
    }

    fn find(&self, order_id: OrderId) -> Option<RefOrder> {
        self.all_orders().find(|o| o.id == order_id).cloned()
    }

    /// Remove an order by id wherever it is; drop its level if empty.
    fn take(&mut self, order_id: OrderId) -> Option<RefOrder> {
        let o = self.find(order_id)?;
        let levels = self.side_mut(o.side);
        let queue = levels.get_mut(&o.price)?;
        let pos = queue.iter().position(|x| x.id == order_id)?;
        let taken = queue.remove(pos);
        if queue.is_empty() {
            levels.remove(&o.price);
        }
        taken
    }

    fn push_back(&mut self, o: RefOrder) {
        self.side_mut(o.side)
            .entry(o.price)
            .or_default()
            .push_back(o);
    }
}

/// The naive reference matching engine.
#[derive(Clone, Debug)]
pub struct ReferenceEngine {
    shard: u16,
    books: BTreeMap<SymbolId, RefBook>,
    order_seq: u64,
    trade_seq: u64,
    disabled: BTreeSet<AccountId>,
    /// Totals per account and asset (`reference/risk.rs`), when built with money rules.
    ledger: Option<risk::RefLedger>,
}

mod admin;
mod amend;
mod risk;

fn crosses(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

impl ReferenceEngine {
    pub fn new(shard: u16, instruments: &[Instrument]) -> ReferenceEngine {
        ReferenceEngine {
            shard,
            books: instruments
                .iter()
                .map(|i| {
                    (
                        i.id,
                        RefBook {
                            instrument: i.clone(),
                            bids: BTreeMap::new(),
                            asks: BTreeMap::new(),
                            last_trade_price: 0,
                            halted: false,
                        },
                    )
                })
                .collect(),
            order_seq: 0,
            trade_seq: 0,
            disabled: BTreeSet::new(),
            ledger: None,
        }
    }

    pub fn apply(&mut self, seq: Seq, ts: Timestamp, cmd: &Command, out: &mut Vec<Event>) {
        match cmd {
            Command::New(o) => self.new_order(seq, ts, o, out),
            Command::Cancel(c) => self.cancel(c, out),
            Command::Replace(r) => self.replace(seq, r, out),
            Command::MassCancel(m) => self.mass_cancel(m, out),
            Command::Admin(a) => self.admin(a, out),
        }
    }

    fn new_order(&mut self, seq: Seq, ts: Timestamp, o: &NewOrder, out: &mut Vec<Event>) {
        let reject = |reason| Event::Rejected {
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            order_id: 0,
            reason,
        };
        let Some(book) = self.books.get(&o.symbol) else {
            return out.push(reject(RejectReason::UnknownSymbol));
        };
        if let Err(r) = self.may_enter(o.symbol, o.account) {
            return out.push(reject(r));
        }
        let market = o.kind == OrderKind::Market;
        let bad_type = if market {
            o.tif == TimeInForce::Gtc || o.post_only
        } else {
            o.post_only && o.tif != TimeInForce::Gtc
        };
        if bad_type {
            return out.push(reject(RejectReason::InvalidOrderType));
        }
        if let Err(r) = book.instrument.check_qty(o.qty) {
            return out.push(reject(r));
        }
        if !market {
            if let Err(r) = book.instrument.check_price(o.price, book.reference()) {
                return out.push(reject(r));
            }
        }
        if book
            .all_orders()
            .any(|x| x.account == o.account && x.client_order_id == o.client_order_id)
        {
            return out.push(reject(RejectReason::DuplicateClientOrderId));
        }
        let opposite = book.best(o.side.opposite());
        if o.post_only && opposite.is_some_and(|best| crosses(o.side, o.price, best)) {
            return out.push(reject(RejectReason::PostOnlyWouldCross));
        }
        let risk_limit = if market {
            opposite.map(|best| book.instrument.market_limit(best, o.side == Side::Buy))
        } else {
            Some(o.price)
        };
        if let Err(r) = self.risk_check_new(o, risk_limit, ts) {
            return out.push(reject(r));
        }
        let book = &self.books[&o.symbol];
        self.order_seq += 1;
        let id = ((self.shard as u64) << 48) | self.order_seq;
        out.push(Event::Accepted {
            order_id: id,
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            side: o.side,
            price: o.price,
            qty: o.qty,
        });
        let cancel = |qty, reason| Event::Cancelled {
            order_id: id,
            account: o.account,
            client_order_id: o.client_order_id,
            symbol: o.symbol,
            side: o.side,
            qty,
            reason,
        };
        let limit = if market {
            match opposite {
                None => return out.push(cancel(o.qty, CancelReason::NoLiquidity)),
                Some(best) => book.instrument.market_limit(best, o.side == Side::Buy),
            }
        } else {
            o.price
        };
        self.risk_accepted(o, limit, ts);
        let incoming = RefOrder {
            id,
            account: o.account,
            client_order_id: o.client_order_id,
            side: o.side,
            price: o.price,
            leaves: o.qty,
            priority_seq: seq,
            entry_ts: ts,
            stp: o.stp,
            post_only: o.post_only,
        };
        if o.tif == TimeInForce::Fok {
            let mut trial = self.clone();
            let mut scratch = Vec::new();
            let (left, self_traded) =
                trial.match_order(o.symbol, incoming.clone(), limit, &mut scratch);
            // A budget order (a market FOK with a positive price): the fills' price * qty,
            // summed, at most the budget for a buy, at least it for a sell.
            let cost: u128 = scratch
                .iter()
                .map(|e| match e {
                    Event::Trade { price, qty, .. } => *price as u128 * *qty as u128,
                    _ => 0,
                })
                .sum();
            let over_budget = market
                && o.price > 0
                && match o.side {
                    Side::Buy => cost > o.price as u128,
                    Side::Sell => cost < o.price as u128,
                };
            if left > 0 || self_traded || over_budget {
                return out.push(cancel(o.qty, CancelReason::FillOrKill));
            }
        }
        let (left, self_traded) = self.match_order(o.symbol, incoming.clone(), limit, out);
        if left == 0 {
            return;
        }
        let book = self.books.get_mut(&o.symbol).expect("checked above");
        if self_traded {
            out.push(cancel(left, CancelReason::SelfTrade));
        } else if market {
            let reason = if book.side(o.side.opposite()).is_empty() {
                CancelReason::ImmediateOrCancel
            } else {
                CancelReason::ProtectionBand
            };
            out.push(cancel(left, reason));
        } else if o.tif != TimeInForce::Gtc {
            out.push(cancel(left, CancelReason::ImmediateOrCancel));
        } else {
            book.push_back(RefOrder {
                leaves: left,
                ..incoming
            });
        }
    }

    /// Match `taker` (not in the book) against the opposite side up to `limit`. Returns the
    /// quantity left and whether self-trade prevention stopped it.
    fn match_order(
        &mut self,
        symbol: SymbolId,
        taker: RefOrder,
        limit: Price,
        out: &mut Vec<Event>,
    ) -> (Qty, bool) {
        let mut left = taker.leaves;
        let maker_side = taker.side.opposite();
        loop {
            if left == 0 {
                return (0, false);
            }
            let book = self.books.get_mut(&symbol).expect("known symbol");
            let Some(price) = book.best(maker_side) else {
                return (left, false);
            };
            if !crosses(taker.side, limit, price) {
                return (left, false);
            }
            let maker = book.side(maker_side)[&price][0].clone();
            if maker.account == taker.account && taker.stp != SelfTradePrevention::Allow {
                if matches!(
                    taker.stp,
                    SelfTradePrevention::CancelResting | SelfTradePrevention::CancelBoth
                ) {
                    book.take(maker.id);
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
                return (left, true);
            }
            let qty = left.min(maker.leaves);
            left -= qty;
            let maker_left = maker.leaves - qty;
            if maker_left == 0 {
                book.take(maker.id);
            } else {
                book.side_mut(maker_side).get_mut(&price).expect("level")[0].leaves = maker_left;
            }
            book.last_trade_price = price;
            self.risk_settle(symbol, maker_side, maker.account, taker.account, price, qty);
            self.trade_seq += 1;
            out.push(Event::Trade {
                trade_id: ((self.shard as u64) << 48) | self.trade_seq,
                symbol,
                price,
                qty,
                aggressor: taker.side,
                maker: Fill {
                    order_id: maker.id,
                    account: maker.account,
                    client_order_id: maker.client_order_id,
                    leaves_qty: maker_left,
                },
                taker: Fill {
                    order_id: taker.id,
                    account: taker.account,
                    client_order_id: taker.client_order_id,
                    leaves_qty: left,
                },
            });
        }
    }

    /// The same canonical walk as [`crate::Engine::state_hash`].
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.u64(self.order_seq);
        h.u64(self.trade_seq);
        for (id, book) in &self.books {
            h.u32(*id);
            h.i64(book.reference());
            for side in [Side::Buy, Side::Sell] {
                h.u8(side as u8);
                for (price, queue) in best_first(book.side(side), side) {
                    h.i64(*price);
                    h.u64(queue.iter().map(|o| o.leaves).sum());
                    h.u32(queue.len() as u32);
                    for o in queue {
                        h.u64(o.id);
                        h.u32(o.account);
                        h.u64(o.client_order_id);
                        h.u64(o.leaves);
                        h.u8(o.stp as u8);
                        h.u8(o.post_only as u8);
                        h.u64(o.priority_seq);
                        h.u64(o.entry_ts);
                    }
                }
            }
        }
        let halted = self
            .books
            .iter()
            .filter(|(_, b)| b.halted)
            .map(|(&id, _)| id);
        h.admin(halted, self.disabled.iter().copied());
        self.hash_ledger(&mut h);
        h.finish()
    }
}

/// Levels of one side, best price first.
fn best_first(
    levels: &BTreeMap<Price, VecDeque<RefOrder>>,
    side: Side,
) -> Box<dyn Iterator<Item = (&Price, &VecDeque<RefOrder>)> + '_> {
    match side {
        Side::Buy => Box::new(levels.iter().rev()),
        Side::Sell => Box::new(levels.iter()),
    }
}
