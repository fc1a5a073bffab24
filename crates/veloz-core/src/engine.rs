//! The matching engine of one shard: the books of its instruments, price-time priority.
//!
//! [`Engine::apply`] takes one [`Command`] with the sequence number and timestamp the shard
//! gave it, validates it, matches it and appends the resulting [`Event`]s to a caller-owned
//! vector (cleared by the caller; reusing it keeps the path allocation-free).
//!
//! Semantics (the naive twin in [`crate::reference`] implements the same, and property
//! tests compare both event by event):
//! - Validation order for a new order: instrument known; order type consistent (market
//!   orders must be IOC or FOK and not post-only; post-only must be GTC); quantity (min, max,
//!   lot); limit price (positive, tick, band around the reference price = last trade price,
//!   or the configured reference before the first trade); duplicate client order id among
//!   the account's resting orders in that instrument; post-only crossing.
//! - A new order is `Accepted` (and gets an order id), then trades against the opposite side
//!   in price-time priority at the resting orders' prices; the rest rests (GTC), or is
//!   cancelled (IOC, market: `ImmediateOrCancel`, `ProtectionBand` or `NoLiquidity`). A FOK
//!   order trades only if its whole quantity can trade at once, else it is cancelled with
//!   `FillOrKill` and nothing trades.
//! - Self-trade prevention follows the incoming order's mode; resting orders cancelled by it
//!   are reported with `SelfTrade`.
//! - Replace: same price and lower quantity keeps priority; otherwise the order moves to the
//!   back of its new level, and if the new price crosses it trades first as an incoming
//!   order. A post-only order whose new price would cross is rejected, unchanged.
//! - Order ids and trade ids are `(shard << 48) | n` with `n` counting from 1 per shard.
//!
//! Complexity: instrument lookup indexes a table (ids below 2^16; a hash probe above); order
//! lookup is a probe of [`OrderIndex`] (point lookup only; never iterated); level lookup is
//! one index into the ladder's price window (a binary search for levels far from the touch);
//! matching is O(levels + orders touched). Mass cancel walks the account's instrument books
//! in deterministic order.
//!
//! Hot path (measured with callgrind, `benches/matching.rs`): a replace that does not cross
//! skips the matching loop; instruments with tick 1 and no band, or lot 1, skip the modulo
//! checks (same answers as [`Instrument::check_price`] / [`Instrument::check_qty`]).

use rustc_hash::FxHashMap;

use super::book::{Ladder, LevelPool, OrderIndex, OrderNode, OrderPool, NIL};
use super::hash::StateHasher;
use super::instrument::Instrument;
use super::types::*;

/// An internal invariant that does not hold; names the book and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated in {symbol}: {what}")]
pub struct InvariantError {
    pub symbol: String,
    pub what: String,
}

/// One side's level summary for depth queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    pub price: Price,
    pub qty: Qty,
    pub orders: u32,
}

struct Book {
    instrument: Instrument,
    bids: Ladder,
    asks: Ladder,
    last_trade_price: Price,
    /// Tick 1 and no band: a price is valid iff positive.
    plain_price: bool,
    /// Lot 1: a quantity is valid iff inside `[min_qty, max_qty]` (and not 0).
    plain_qty: bool,
}

impl Book {
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// [`Instrument::check_price`] against the current reference, without its divisions
    /// when the instrument is plain.
    #[inline]
    fn check_price(&self, price: Price) -> Result<(), RejectReason> {
        if self.plain_price {
            if price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            return Ok(());
        }
        self.instrument.check_price(price, self.reference())
    }

    /// [`Instrument::check_qty`], without its division when the lot is 1.
    #[inline]
    fn check_qty(&self, qty: Qty) -> Result<(), RejectReason> {
        if self.plain_qty {
            if qty < self.instrument.min_qty || qty == 0 {
                return Err(RejectReason::QtyBelowMin);
            }
            if qty > self.instrument.max_qty {
                return Err(RejectReason::QtyAboveMax);
            }
            return Ok(());
        }
        self.instrument.check_qty(qty)
    }

    /// Reference price for the band: last trade, else the configured one (0 = none).
    fn reference(&self) -> Price {
        if self.last_trade_price > 0 {
            self.last_trade_price
        } else {
            self.instrument.reference_price
        }
    }
}

/// `true` if a `side` order at `limit` may trade with a resting order at `price`.
#[inline]
fn crosses(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// The taker during matching.
struct Taker {
    order_id: OrderId,
    account: AccountId,
    client_order_id: ClientOrderId,
    side: Side,
    limit: Price,
    remaining: Qty,
    stp: SelfTradePrevention,
}

/// How matching stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// Filled, or nothing more within the limit.
    Done,
    /// Self-trade prevention cancelled the rest of the taker.
    SelfTrade,
}

/// Instrument ids below this are found by indexing a table, larger ones by a hash lookup.
const DIRECT_SYMBOLS: SymbolId = 1 << 16;

/// The matching engine of one shard.
pub struct Engine {
    shard: u16,
    books: Vec<Book>,
    /// Instrument id -> index in `books` (point lookup), for ids from [`DIRECT_SYMBOLS`] up.
    book_index: FxHashMap<SymbolId, u32>,
    /// Instrument id -> index in `books` ([`NIL`] = none), for ids below [`DIRECT_SYMBOLS`].
    book_direct: Vec<u32>,
    orders: OrderPool,
    levels: LevelPool,
    /// Order id -> slot (point lookup).
    order_index: OrderIndex,
    /// (book, account, client order id) of resting orders -> order id (point lookup).
    client_ids: FxHashMap<(u32, AccountId, ClientOrderId), OrderId>,
    order_seq: u64,
    trade_seq: u64,
}

/// A summary: the books and order slabs are too large to print whole.
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shard", &self.shard)
            .field("instruments", &self.books.len())
            .field("resting_client_ids", &self.client_ids.len())
            .field("order_seq", &self.order_seq)
            .field("trade_seq", &self.trade_seq)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty engine for `instruments` (their ids must be distinct).
    pub fn new(shard: u16, instruments: &[Instrument]) -> Engine {
        let mut sorted = instruments.to_vec();
        sorted.sort_by_key(|i| i.id);
        let mut book_index = FxHashMap::default();
        let books: Vec<Book> = sorted
            .into_iter()
            .enumerate()
            .map(|(i, instrument)| {
                book_index.insert(instrument.id, i as u32);
                Book {
                    bids: Ladder::new(Side::Buy, instrument.tick_size),
                    asks: Ladder::new(Side::Sell, instrument.tick_size),
                    plain_price: instrument.tick_size == 1 && instrument.price_band_bps == 0,
                    plain_qty: instrument.lot_size == 1,
                    instrument,
                    last_trade_price: 0,
                }
            })
            .collect();
        let mut book_direct = Vec::new();
        for (b, book) in books.iter().enumerate() {
            let (id, b) = (book.instrument.id, b as u32);
            if id < DIRECT_SYMBOLS {
                if book_direct.len() <= id as usize {
                    book_direct.resize(id as usize + 1, NIL);
                }
                book_direct[id as usize] = b;
            }
        }
        Engine {
            shard,
            books,
            book_index,
            book_direct,
            orders: OrderPool::with_capacity(1 << 16),
            levels: LevelPool::default(),
            order_index: OrderIndex::with_capacity(1 << 10),
            client_ids: FxHashMap::with_capacity_and_hasher(1 << 16, Default::default()),
            order_seq: 0,
            trade_seq: 0,
        }
    }

    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The instruments of this engine, ascending by id.
    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.books.iter().map(|b| &b.instrument)
    }

    pub fn has_symbol(&self, symbol: SymbolId) -> bool {
        self.book_of(symbol).is_some()
    }

    /// Number of resting orders over all books.
    pub fn resting_orders(&self) -> usize {
        self.order_index.len()
    }

    /// Apply one command; append its events to `out`.
    pub fn apply(&mut self, seq: Seq, ts: Timestamp, cmd: &Command, out: &mut Vec<Event>) {
        match cmd {
            Command::New(o) => self.new_order(seq, ts, o, out),
            Command::Cancel(c) => self.cancel(c, out),
            Command::Replace(r) => self.replace(seq, r, out),
            Command::MassCancel(m) => self.mass_cancel(m, out),
        }
    }

    /// Index in `books` of instrument `symbol`.
    #[inline]
    fn book_of(&self, symbol: SymbolId) -> Option<u32> {
        if symbol < DIRECT_SYMBOLS {
            match self.book_direct.get(symbol as usize) {
                Some(&b) if b != NIL => Some(b),
                _ => None,
            }
        } else {
            self.book_index.get(&symbol).copied()
        }
    }

    fn next_order_id(&mut self) -> OrderId {
        self.order_seq += 1;
        ((self.shard as u64) << 48) | self.order_seq
    }

    fn next_trade_id(&mut self) -> TradeId {
        self.trade_seq += 1;
        ((self.shard as u64) << 48) | self.trade_seq
    }

    fn new_order(&mut self, seq: Seq, ts: Timestamp, o: &NewOrder, out: &mut Vec<Event>) {
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
            .contains_key(&(b, o.account, o.client_order_id))
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
        let mut taker = Taker {
            order_id,
            account: o.account,
            client_order_id: o.client_order_id,
            side: o.side,
            limit,
            remaining: o.qty,
            stp: o.stp,
        };
        if o.tif == TimeInForce::Fok && self.fillable(b, &taker) < o.qty {
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
            Some(r) => out.push(self.cancelled_taker(o, order_id, taker.remaining, r)),
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
    fn rest(&mut self, b: u32, mut node: OrderNode) {
        let slot = self.orders.alloc(node);
        self.link(b, slot, &mut node);
        *self.orders.get_mut(slot) = node;
        self.order_index.insert(node.id, slot);
        self.client_ids
            .insert((b, node.account, node.client_order_id), node.id);
    }

    /// Link `node`, which will be stored in `slot`, at the back of the level at its price
    /// (creating the level): sets its `level`, `prev` and `next` and links the old tail to it.
    /// The caller writes `node` into its slot; working on a copy saves re-reading the slot.
    #[inline(always)]
    fn link(&mut self, b: u32, slot: u32, node: &mut OrderNode) {
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
    fn unlink(&mut self, n: &OrderNode) {
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
    fn remove(&mut self, slot: u32) -> OrderNode {
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
        self.client_ids
            .remove(&(node.book, node.account, node.client_order_id));
    }

    /// How much of `taker` could trade at once, as matching would see it (self-trade
    /// prevention included).
    fn fillable(&self, b: u32, taker: &Taker) -> Qty {
        let ladder = self.books[b as usize].ladder(taker.side.opposite());
        let mut total: Qty = 0;
        for (price, level) in ladder.iter_best_first() {
            if !crosses(taker.side, taker.limit, price) {
                break;
            }
            let mut slot = self.levels.get(level).head;
            while slot != NIL {
                let n = self.orders.get(slot);
                if n.account == taker.account && taker.stp != SelfTradePrevention::Allow {
                    if taker.stp != SelfTradePrevention::CancelResting {
                        return total;
                    }
                } else {
                    total = total.saturating_add(n.leaves);
                    if total >= taker.remaining {
                        return total;
                    }
                }
                slot = n.next;
            }
        }
        total
    }

    /// Match `taker` against the opposite side of book `b`.
    fn match_taker(&mut self, b: u32, taker: &mut Taker, out: &mut Vec<Event>) -> Stop {
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

    /// Look up a resting order named by a cancel or replace; reject if unknown (or in another
    /// instrument) or owned by another account.
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

    fn cancel(&mut self, c: &CancelOrder, out: &mut Vec<Event>) {
        match self.owned_order(c.account, c.symbol, c.order_id) {
            Err(reason) => out.push(Event::Rejected {
                account: c.account,
                client_order_id: c.client_order_id,
                symbol: c.symbol,
                order_id: c.order_id,
                reason,
            }),
            Ok(slot) => {
                let n = self.remove(slot);
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

    fn replace(&mut self, seq: Seq, r: &ReplaceOrder, out: &mut Vec<Event>) {
        let reject = |reason| Event::Rejected {
            account: r.account,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            order_id: r.order_id,
            reason,
        };
        let slot = match self.owned_order(r.account, r.symbol, r.order_id) {
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
        self.client_ids.remove(&(b, n.account, n.client_order_id));
        if remaining > 0 {
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

    fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
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
        let mut count = 0u32;
        let mut victims = Vec::new();
        for b in range {
            for side in [Side::Buy, Side::Sell] {
                victims.clear();
                for (_, level) in self.books[b as usize].ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        if n.account == m.account {
                            victims.push(slot);
                        }
                        slot = n.next;
                    }
                }
                for &slot in &victims {
                    let n = self.remove(slot);
                    out.push(Event::Cancelled {
                        order_id: n.id,
                        account: n.account,
                        client_order_id: n.client_order_id,
                        symbol: self.books[b as usize].instrument.id,
                        side: n.side,
                        qty: n.leaves,
                        reason: CancelReason::MassCancel,
                    });
                    count += 1;
                }
            }
        }
        out.push(Event::MassCancelled {
            account: m.account,
            client_order_id: m.client_order_id,
            symbol: m.symbol,
            count,
        });
    }

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
        h.finish()
    }

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
                        if self.client_ids.get(&(n.book, n.account, n.client_order_id))
                            != Some(&n.id)
                        {
                            return Err(fail(format!(
                                "order {} client id {} of account {} is not indexed",
                                n.id, n.client_order_id, n.account
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
        Ok(())
    }
}
