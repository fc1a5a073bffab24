//! Storage of resting orders: an order slab with intrusive FIFO lists per price level, and a
//! price ladder per side.
//!
//! Layout:
//! - [`OrderPool`]: a slab of [`OrderNode`]s addressed by `u32` slot, with a free list. A
//!   resting order lives in one slot from the moment it rests until it leaves the book; its
//!   node links to its neighbours in the level FIFO (`prev`/`next`).
//! - [`LevelPool`]: a slab of [`Level`]s (price, open quantity, order count, head, tail).
//! - [`Ladder`]: one per side of a book: the levels of that side sorted from *worst to best*,
//!   as `(price, level slot)`, so the best level is the last element. Matching consumes and
//!   removes levels at the end (O(1)); a new level is inserted by binary search, and because
//!   activity clusters near the best price the shift is short.
//!
//! Invariants (checked by [`crate::core::Engine::validate`]):
//! - every level in a ladder has `count >= 1` and `total` = the sum of its orders' `leaves`;
//! - prices in a ladder are strictly increasing towards the best (bids ascend, asks descend);
//! - every order reachable from a level has `leaves > 0`, its `level` field names that level,
//!   and its `price` equals the level's price.
//!
//! Nothing here allocates once the pools have grown to the working-set size: freed slots are
//! reused before the vectors grow.
#![forbid(unsafe_code)]

use super::types::{
    AccountId, ClientOrderId, OrderId, Price, Qty, SelfTradePrevention, Seq, Side, Timestamp,
};

/// Slot index meaning "none" in intrusive links.
pub const NIL: u32 = u32::MAX;

/// A resting order.
#[derive(Clone, Copy, Debug)]
pub struct OrderNode {
    pub id: OrderId,
    pub client_order_id: ClientOrderId,
    pub price: Price,
    pub leaves: Qty,
    /// Sequence of the command that gave the order its current time priority.
    pub priority_seq: Seq,
    pub entry_ts: Timestamp,
    pub account: AccountId,
    /// Index of the book (dense instrument index) the order rests in.
    pub book: u32,
    pub level: u32,
    pub prev: u32,
    pub next: u32,
    pub side: Side,
    pub stp: SelfTradePrevention,
    pub post_only: bool,
}

/// A slab of order nodes with a free list.
#[derive(Default)]
pub struct OrderPool {
    nodes: Vec<OrderNode>,
    free: Vec<u32>,
}

impl OrderPool {
    pub fn with_capacity(n: usize) -> OrderPool {
        OrderPool {
            nodes: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
        }
    }

    pub fn alloc(&mut self, node: OrderNode) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    pub fn free(&mut self, slot: u32) {
        self.free.push(slot);
    }

    #[inline]
    pub fn get(&self, slot: u32) -> &OrderNode {
        &self.nodes[slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut OrderNode {
        &mut self.nodes[slot as usize]
    }

    /// Number of slots in use.
    pub fn live(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

/// One price level: a FIFO of orders at one price.
#[derive(Clone, Copy, Debug)]
pub struct Level {
    pub price: Price,
    pub total: Qty,
    pub count: u32,
    pub head: u32,
    pub tail: u32,
}

/// A slab of levels with a free list.
#[derive(Default)]
pub struct LevelPool {
    levels: Vec<Level>,
    free: Vec<u32>,
}

impl LevelPool {
    pub fn alloc(&mut self, price: Price) -> u32 {
        let level = Level {
            price,
            total: 0,
            count: 0,
            head: NIL,
            tail: NIL,
        };
        match self.free.pop() {
            Some(slot) => {
                self.levels[slot as usize] = level;
                slot
            }
            None => {
                self.levels.push(level);
                (self.levels.len() - 1) as u32
            }
        }
    }

    pub fn free(&mut self, slot: u32) {
        self.free.push(slot);
    }

    #[inline]
    pub fn get(&self, slot: u32) -> &Level {
        &self.levels[slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut Level {
        &mut self.levels[slot as usize]
    }
}

/// The levels of one side of a book, worst to best (best = last).
pub struct Ladder {
    side: Side,
    /// `(price, level slot)`, sorted so that the best price is last.
    levels: Vec<(Price, u32)>,
}

impl Ladder {
    pub fn new(side: Side) -> Ladder {
        Ladder {
            side,
            levels: Vec::with_capacity(256),
        }
    }

    /// `true` if `a` is a better price than `b` on this side.
    #[inline]
    pub fn better(&self, a: Price, b: Price) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// The best level: `(price, level slot)`.
    #[inline]
    pub fn best(&self) -> Option<(Price, u32)> {
        self.levels.last().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Position of `price`: `Ok(index)` if present, `Err(insert index)` if not. Searches from
    /// the best end first, where almost all activity is.
    #[inline]
    fn position(&self, price: Price) -> Result<usize, usize> {
        let n = self.levels.len();
        // Fast path: at or near the best price.
        for i in (n.saturating_sub(4)..n).rev() {
            let p = self.levels[i].0;
            if p == price {
                return Ok(i);
            }
            if self.better(price, p) {
                return Err(i + 1);
            }
        }
        let end = n.saturating_sub(4);
        // levels[..end] is ordered worst..best: "better" grows with the index.
        let side = self.side;
        self.levels[..end].binary_search_by(|&(p, _)| {
            if p == price {
                std::cmp::Ordering::Equal
            } else if match side {
                Side::Buy => p < price,
                Side::Sell => p > price,
            } {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
    }

    /// The level slot at `price`, if any.
    #[inline]
    pub fn find(&self, price: Price) -> Option<u32> {
        self.position(price).ok().map(|i| self.levels[i].1)
    }

    /// The level slot at `price`, created with `make` if absent.
    #[inline]
    pub fn find_or_insert(&mut self, price: Price, make: impl FnOnce() -> u32) -> u32 {
        match self.position(price) {
            Ok(i) => self.levels[i].1,
            Err(i) => {
                let slot = make();
                self.levels.insert(i, (price, slot));
                slot
            }
        }
    }

    /// Remove the level at `price` (which must exist).
    #[inline]
    pub fn remove(&mut self, price: Price) {
        if let Some(&(p, _)) = self.levels.last() {
            if p == price {
                self.levels.pop();
                return;
            }
        }
        if let Ok(i) = self.position(price) {
            self.levels.remove(i);
        }
    }

    /// Levels from best to worst.
    pub fn iter_best_first(&self) -> impl Iterator<Item = (Price, u32)> + '_ {
        self.levels.iter().rev().copied()
    }
}

/// Append order `slot` to the tail of `level` (the caller has set the node's `level`).
#[inline]
pub fn push_back(orders: &mut OrderPool, levels: &mut LevelPool, level_slot: u32, slot: u32) {
    let level = levels.get_mut(level_slot);
    let tail = level.tail;
    {
        let node = orders.get_mut(slot);
        node.prev = tail;
        node.next = NIL;
        level.total += node.leaves;
    }
    if tail == NIL {
        level.head = slot;
    } else {
        orders.get_mut(tail).next = slot;
    }
    level.tail = slot;
    level.count += 1;
}

/// Unlink order `slot` from its level, subtracting its leaves from the level total. Returns
/// `true` if the level is now empty (the caller removes it from the ladder and frees it).
#[inline]
pub fn unlink(orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) -> bool {
    let (prev, next, level_slot, leaves) = {
        let n = orders.get(slot);
        (n.prev, n.next, n.level, n.leaves)
    };
    if prev != NIL {
        orders.get_mut(prev).next = next;
    }
    if next != NIL {
        orders.get_mut(next).prev = prev;
    }
    let level = levels.get_mut(level_slot);
    if prev == NIL {
        level.head = next;
    }
    if next == NIL {
        level.tail = prev;
    }
    level.total -= leaves;
    level.count -= 1;
    level.count == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_keeps_best_last_for_both_sides() {
        let mut levels = LevelPool::default();
        let mut bids = Ladder::new(Side::Buy);
        let mut asks = Ladder::new(Side::Sell);
        for p in [100, 105, 95, 103, 99, 101, 97, 110, 90, 104] {
            bids.find_or_insert(p, || levels.alloc(p));
            asks.find_or_insert(p, || levels.alloc(p));
        }
        let b: Vec<Price> = bids.iter_best_first().map(|l| l.0).collect();
        let a: Vec<Price> = asks.iter_best_first().map(|l| l.0).collect();
        assert_eq!(b, [110, 105, 104, 103, 101, 100, 99, 97, 95, 90]);
        assert_eq!(a, [90, 95, 97, 99, 100, 101, 103, 104, 105, 110]);
        assert!(bids.find(97).is_some());
        assert!(bids.find(98).is_none());
        bids.remove(97);
        bids.remove(110);
        let b: Vec<Price> = bids.iter_best_first().map(|l| l.0).collect();
        assert_eq!(b, [105, 104, 103, 101, 100, 99, 95, 90]);
        // Inserting an existing price returns the same level.
        let s = asks.find(100).unwrap();
        assert_eq!(asks.find_or_insert(100, || unreachable!()), s);
    }

    #[test]
    fn fifo_links_survive_unlink_anywhere() {
        let mut orders = OrderPool::default();
        let mut levels = LevelPool::default();
        let l = levels.alloc(10);
        let mk = |id| OrderNode {
            id,
            client_order_id: id,
            price: 10,
            leaves: id,
            priority_seq: id,
            entry_ts: 0,
            account: 1,
            book: 0,
            level: l,
            prev: NIL,
            next: NIL,
            side: Side::Buy,
            stp: SelfTradePrevention::Allow,
            post_only: false,
        };
        let slots: Vec<u32> = (1..=4).map(|id| orders.alloc(mk(id))).collect();
        for &s in &slots {
            push_back(&mut orders, &mut levels, l, s);
        }
        assert_eq!(levels.get(l).total, 10);
        assert!(!unlink(&mut orders, &mut levels, slots[1]));
        assert!(!unlink(&mut orders, &mut levels, slots[0]));
        assert!(!unlink(&mut orders, &mut levels, slots[3]));
        let lv = *levels.get(l);
        assert_eq!(
            (lv.head, lv.tail, lv.count, lv.total),
            (slots[2], slots[2], 1, 3)
        );
        assert!(unlink(&mut orders, &mut levels, slots[2]));
        assert_eq!(levels.get(l).head, NIL);
    }
}
