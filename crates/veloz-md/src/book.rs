//! The public books: [`L3Book`] (every resting order, in queue order) and [`L2Book`] (a
//! total and an order count per price level), their snapshots and canonical hashes.
//!
//! The feed's builder keeps an `L3Book` per instrument as the mirror of the engine's book; a
//! subscriber rebuilds the same from a snapshot and the messages after it. The hashes walk
//! the same way on both sides and on the engine ([`engine_l3_hash`], [`engine_l2_hash`]):
//! bids then asks, best level first, each level's price, total and count, then (L3 only)
//! each order head first with its open quantity. Equal hashes mean equal books.
//!
//! Orders are found by id in a hash map (point lookups only, never iterated); levels live
//! in ordered maps and keep their queue in arrival order, so every walk is deterministic.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use veloz_core::{Engine, OrderId, Price, Qty, Side, StateHasher, SymbolId};

use crate::message::Quote;

/// A message that does not fit the book it is applied to: a feed bug or a subscriber that
/// applied messages out of order. Each names the order and the values involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("symbol {symbol}: order {order_id} added twice")]
    Duplicate { symbol: SymbolId, order_id: OrderId },
    #[error("symbol {symbol}: order {order_id} is not in the book")]
    Unknown { symbol: SymbolId, order_id: OrderId },
    #[error("symbol {symbol}: order {order_id} has {open} open, cannot {what} {qty}")]
    Quantity {
        symbol: SymbolId,
        order_id: OrderId,
        open: Qty,
        what: &'static str,
        qty: Qty,
    },
}

#[derive(Clone, Copy, Debug)]
struct Resting {
    side: Side,
    price: Price,
    qty: Qty,
    /// Position in its level's queue (larger = later).
    arrival: u64,
}

#[derive(Clone, Debug, Default)]
struct Level {
    qty: Qty,
    /// arrival -> order id, head first.
    queue: BTreeMap<u64, OrderId>,
}

/// One instrument's book, order by order.
#[derive(Clone, Debug)]
pub struct L3Book {
    symbol: SymbolId,
    orders: FxHashMap<OrderId, Resting>,
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    next_arrival: u64,
}

/// One level of an [`L3Snapshot`]: its price and its orders head first (id, open quantity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L3Level {
    pub price: Price,
    pub orders: Vec<(OrderId, Qty)>,
}

/// A whole L3 book at a point of its L3 sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L3Snapshot {
    pub symbol: SymbolId,
    /// The last L3 message this snapshot includes (0: none yet).
    pub seq: u64,
    /// Bids best (highest) first, then asks best (lowest) first.
    pub bids: Vec<L3Level>,
    pub asks: Vec<L3Level>,
}

/// One level of an [`L2Snapshot`] or [`L2Book`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Level {
    pub price: Price,
    pub qty: Qty,
    pub orders: u32,
}

/// A whole L2 book at a point of its L2 sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Snapshot {
    pub symbol: SymbolId,
    /// The last L2 message this snapshot includes (0: none yet).
    pub seq: u64,
    pub bids: Vec<L2Level>,
    pub asks: Vec<L2Level>,
}

fn best_first<V>(
    side: Side,
    map: &BTreeMap<Price, V>,
) -> Box<dyn Iterator<Item = (&Price, &V)> + '_> {
    match side {
        Side::Buy => Box::new(map.iter().rev()),
        Side::Sell => Box::new(map.iter()),
    }
}

impl L3Book {
    pub fn new(symbol: SymbolId) -> L3Book {
        L3Book {
            symbol,
            orders: FxHashMap::default(),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            next_arrival: 0,
        }
    }

    /// The book of `snapshot`.
    pub fn from_snapshot(snapshot: &L3Snapshot) -> Result<L3Book, BookError> {
        let mut book = L3Book::new(snapshot.symbol);
        for (side, levels) in [(Side::Buy, &snapshot.bids), (Side::Sell, &snapshot.asks)] {
            for level in levels {
                for &(order_id, qty) in &level.orders {
                    book.add(order_id, side, level.price, qty)?;
                }
            }
        }
        Ok(book)
    }

    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// Resting orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    fn side(&mut self, side: Side) -> &mut BTreeMap<Price, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn levels(&self, side: Side) -> &BTreeMap<Price, Level> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// `order_id` rests at the back of `price` on `side` with `qty` open.
    pub fn add(
        &mut self,
        order_id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
    ) -> Result<(), BookError> {
        let symbol = self.symbol;
        if qty == 0 {
            return Err(BookError::Quantity {
                symbol,
                order_id,
                open: 0,
                what: "add",
                qty,
            });
        }
        if self.orders.contains_key(&order_id) {
            return Err(BookError::Duplicate { symbol, order_id });
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.orders.insert(
            order_id,
            Resting {
                side,
                price,
                qty,
                arrival,
            },
        );
        let level = self.side(side).entry(price).or_default();
        level.qty += qty;
        level.queue.insert(arrival, order_id);
        Ok(())
    }

    /// Side and price of a resting order.
    pub fn order(&self, order_id: OrderId) -> Option<(Side, Price, Qty)> {
        self.orders.get(&order_id).map(|r| (r.side, r.price, r.qty))
    }

    /// Take `order_id` out of the book; returns its side, price and open quantity.
    pub fn remove(&mut self, order_id: OrderId) -> Result<(Side, Price, Qty), BookError> {
        let symbol = self.symbol;
        let r = self
            .orders
            .remove(&order_id)
            .ok_or(BookError::Unknown { symbol, order_id })?;
        let levels = self.side(r.side);
        let level = levels
            .get_mut(&r.price)
            .expect("a resting order's level exists");
        level.qty -= r.qty;
        level.queue.remove(&r.arrival);
        if level.queue.is_empty() {
            levels.remove(&r.price);
        }
        Ok((r.side, r.price, r.qty))
    }

    /// Lower `order_id`'s open quantity to `qty` in place (it keeps its place).
    pub fn reduce(&mut self, order_id: OrderId, qty: Qty) -> Result<(Side, Price), BookError> {
        let symbol = self.symbol;
        let r = self
            .orders
            .get_mut(&order_id)
            .ok_or(BookError::Unknown { symbol, order_id })?;
        if qty == 0 || qty > r.qty {
            return Err(BookError::Quantity {
                symbol,
                order_id,
                open: r.qty,
                what: "reduce to",
                qty,
            });
        }
        let (side, price, less) = (r.side, r.price, r.qty - qty);
        r.qty = qty;
        self.side(side).get_mut(&price).expect("level exists").qty -= less;
        Ok((side, price))
    }

    /// `order_id` traded `qty`: returns its side, price and what stays open (0: it left).
    pub fn execute(
        &mut self,
        order_id: OrderId,
        qty: Qty,
    ) -> Result<(Side, Price, Qty), BookError> {
        let symbol = self.symbol;
        let &Resting {
            side,
            price,
            qty: open,
            ..
        } = self
            .orders
            .get(&order_id)
            .ok_or(BookError::Unknown { symbol, order_id })?;
        if qty == 0 || qty > open {
            return Err(BookError::Quantity {
                symbol,
                order_id,
                open,
                what: "execute",
                qty,
            });
        }
        if qty == open {
            self.remove(order_id)?;
            return Ok((side, price, 0));
        }
        self.reduce(order_id, open - qty)?;
        Ok((side, price, open - qty))
    }

    /// The level at `price` on `side`: total open quantity and order count (0, 0 when empty).
    pub fn level(&self, side: Side, price: Price) -> (Qty, u32) {
        self.levels(side)
            .get(&price)
            .map_or((0, 0), |l| (l.qty, l.queue.len() as u32))
    }

    /// The best level of `side`.
    pub fn best(&self, side: Side) -> Option<Quote> {
        best_first(side, self.levels(side))
            .next()
            .map(|(&price, l)| Quote { price, qty: l.qty })
    }

    /// Up to `n` levels of `side`, best first.
    pub fn depth(&self, side: Side, n: usize) -> Vec<L2Level> {
        best_first(side, self.levels(side))
            .take(n)
            .map(|(&price, l)| L2Level {
                price,
                qty: l.qty,
                orders: l.queue.len() as u32,
            })
            .collect()
    }

    /// The whole book, as of L3 message `seq`.
    pub fn snapshot(&self, seq: u64) -> L3Snapshot {
        let levels = |side| {
            best_first(side, self.levels(side))
                .map(|(&price, l)| L3Level {
                    price,
                    orders: l
                        .queue
                        .values()
                        .map(|id| (*id, self.orders[id].qty))
                        .collect(),
                })
                .collect()
        };
        L3Snapshot {
            symbol: self.symbol,
            seq,
            bids: levels(Side::Buy),
            asks: levels(Side::Sell),
        }
    }

    /// The L2 view of the whole book, as of L2 message `seq`.
    pub fn l2_snapshot(&self, seq: u64) -> L2Snapshot {
        L2Snapshot {
            symbol: self.symbol,
            seq,
            bids: self.depth(Side::Buy, usize::MAX),
            asks: self.depth(Side::Sell, usize::MAX),
        }
    }

    /// The canonical L3 hash (see the module doc).
    pub fn hash(&self) -> u64 {
        let mut h = Walk::new(self.symbol);
        for side in [Side::Buy, Side::Sell] {
            h.side(side);
            for (&price, l) in best_first(side, self.levels(side)) {
                h.level(price, l.qty, l.queue.len() as u32);
                for id in l.queue.values() {
                    h.order(*id, self.orders[id].qty);
                }
            }
        }
        h.finish()
    }

    /// The canonical L2 hash of this book (equal to [`L2Book::hash`] of the same levels).
    pub fn l2_hash(&self) -> u64 {
        let mut h = Walk::new(self.symbol);
        for side in [Side::Buy, Side::Sell] {
            h.side(side);
            for (&price, l) in best_first(side, self.levels(side)) {
                h.level(price, l.qty, l.queue.len() as u32);
            }
        }
        h.finish()
    }
}

/// One instrument's book by price level.
#[derive(Clone, Debug)]
pub struct L2Book {
    symbol: SymbolId,
    bids: BTreeMap<Price, (Qty, u32)>,
    asks: BTreeMap<Price, (Qty, u32)>,
}

impl L2Book {
    pub fn new(symbol: SymbolId) -> L2Book {
        L2Book {
            symbol,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }

    pub fn from_snapshot(snapshot: &L2Snapshot) -> L2Book {
        let mut book = L2Book::new(snapshot.symbol);
        for (side, levels) in [(Side::Buy, &snapshot.bids), (Side::Sell, &snapshot.asks)] {
            for l in levels {
                book.set(side, l.price, l.qty, l.orders);
            }
        }
        book
    }

    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// The level at `price` is now `qty` in `orders` orders (0: gone).
    pub fn set(&mut self, side: Side, price: Price, qty: Qty, orders: u32) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if qty == 0 {
            levels.remove(&price);
        } else {
            levels.insert(price, (qty, orders));
        }
    }

    fn levels(&self, side: Side) -> &BTreeMap<Price, (Qty, u32)> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    pub fn best(&self, side: Side) -> Option<Quote> {
        best_first(side, self.levels(side))
            .next()
            .map(|(&price, &(qty, _))| Quote { price, qty })
    }

    /// Up to `n` levels of `side`, best first.
    pub fn depth(&self, side: Side, n: usize) -> Vec<L2Level> {
        best_first(side, self.levels(side))
            .take(n)
            .map(|(&price, &(qty, orders))| L2Level { price, qty, orders })
            .collect()
    }

    /// The canonical L2 hash.
    pub fn hash(&self) -> u64 {
        let mut h = Walk::new(self.symbol);
        for side in [Side::Buy, Side::Sell] {
            h.side(side);
            for (&price, &(qty, orders)) in best_first(side, self.levels(side)) {
                h.level(price, qty, orders);
            }
        }
        h.finish()
    }
}

/// The L3 hash of `symbol`'s book in `engine` (the engine's own view, for checking a feed).
pub fn engine_l3_hash(engine: &Engine, symbol: SymbolId) -> u64 {
    engine_hash(engine, symbol, true)
}

/// The L2 hash of `symbol`'s book in `engine`.
pub fn engine_l2_hash(engine: &Engine, symbol: SymbolId) -> u64 {
    engine_hash(engine, symbol, false)
}

fn engine_hash(engine: &Engine, symbol: SymbolId, orders: bool) -> u64 {
    let mut h = Walk::new(symbol);
    for side in [Side::Buy, Side::Sell] {
        h.side(side);
        for level in engine.depth(symbol, side, usize::MAX) {
            h.level(level.price, level.qty, level.orders);
            if orders {
                for id in engine.queue(symbol, side, level.price) {
                    h.order(id, engine.order_leaves(id).unwrap_or(0));
                }
            }
        }
    }
    h.finish()
}

/// The one walk every hash here takes.
struct Walk(StateHasher);

impl Walk {
    fn new(symbol: SymbolId) -> Walk {
        let mut h = StateHasher::new();
        h.u32(symbol);
        Walk(h)
    }

    fn side(&mut self, side: Side) {
        // A marker between the sides, so a level cannot pass for the other side's.
        self.0.u8(0xFF);
        self.0.u8(side as u8);
    }

    fn level(&mut self, price: Price, qty: Qty, orders: u32) {
        self.0.u8(1);
        self.0.i64(price);
        self.0.u64(qty);
        self.0.u32(orders);
    }

    fn order(&mut self, id: OrderId, qty: Qty) {
        self.0.u8(2);
        self.0.u64(id);
        self.0.u64(qty);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_totals_and_hashes_follow_adds_reductions_and_executions() {
        let mut b = L3Book::new(7);
        b.add(1, Side::Buy, 100, 10).unwrap();
        b.add(2, Side::Buy, 100, 5).unwrap();
        b.add(3, Side::Buy, 99, 7).unwrap();
        b.add(4, Side::Sell, 101, 3).unwrap();
        assert_eq!(b.level(Side::Buy, 100), (15, 2));
        assert_eq!(
            b.best(Side::Buy),
            Some(Quote {
                price: 100,
                qty: 15
            })
        );
        assert_eq!(b.best(Side::Sell), Some(Quote { price: 101, qty: 3 }));
        assert_eq!(b.execute(1, 4).unwrap(), (Side::Buy, 100, 6));
        assert_eq!(b.reduce(2, 1).unwrap(), (Side::Buy, 100));
        assert_eq!(b.level(Side::Buy, 100), (7, 2));
        let snap = b.snapshot(9);
        assert_eq!(
            snap.bids[0].orders,
            vec![(1, 6), (2, 1)],
            "head first, in place"
        );
        assert_eq!(L3Book::from_snapshot(&snap).unwrap().hash(), b.hash());
        assert_eq!(b.execute(4, 3).unwrap(), (Side::Sell, 101, 0));
        assert_eq!(
            b.best(Side::Sell),
            None,
            "the level left with its last order"
        );
        assert_eq!(b.remove(3).unwrap(), (Side::Buy, 99, 7));
        assert_eq!(b.level(Side::Buy, 99), (0, 0));
        assert_eq!(L2Book::from_snapshot(&b.l2_snapshot(1)).hash(), b.l2_hash());
        // Queue order is part of the L3 hash, not of the L2 hash.
        let mut other = L3Book::new(7);
        other.add(2, Side::Buy, 100, 1).unwrap();
        other.add(1, Side::Buy, 100, 6).unwrap();
        assert_ne!(other.hash(), b.hash());
        assert_eq!(other.l2_hash(), b.l2_hash());
    }

    #[test]
    fn messages_that_do_not_fit_are_named_errors() {
        let mut b = L3Book::new(3);
        b.add(1, Side::Sell, 50, 2).unwrap();
        assert_eq!(
            b.add(1, Side::Sell, 50, 2),
            Err(BookError::Duplicate {
                symbol: 3,
                order_id: 1
            })
        );
        assert_eq!(
            b.remove(9),
            Err(BookError::Unknown {
                symbol: 3,
                order_id: 9
            })
        );
        assert_eq!(
            b.execute(1, 3).unwrap_err().to_string(),
            "symbol 3: order 1 has 2 open, cannot execute 3"
        );
        assert!(b.reduce(1, 2).is_ok(), "reducing to the same is a no-op");
        assert!(b.reduce(1, 0).is_err());
    }
}
