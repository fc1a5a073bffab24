//! Order and level slabs, and the intrusive FIFO of orders at one price.
//!
//! [`OrderPool`] holds [`OrderNode`]s and [`LevelPool`] holds [`Level`]s, each a `Vec`
//! addressed by `u32` slot with a free list: freed slots are reused before the vector grows,
//! so nothing allocates once the pools have grown to the working-set size. A slot stays valid
//! from `alloc` to `free`; the pools never move or compact entries.
//!
//! A level's orders form a doubly linked FIFO through the nodes' `prev`/`next` slots
//! ([`NIL`] ends it), oldest at `head`. [`push_back`] and [`unlink`] keep the level's
//! `total` (sum of the orders' `leaves`) and `count` in step with the list.

use super::NIL;
use crate::types::{
    AccountId, ClientOrderId, OrderId, Price, Qty, SelfTradePrevention, Seq, Side, Timestamp,
};

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
#[derive(Debug, Default)]
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
#[derive(Debug, Default)]
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

/// Append order `slot` to the tail of `level` (the caller has set the node's `level`).
#[inline(always)]
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
#[inline(always)]
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
