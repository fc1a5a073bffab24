//! (book, account, client order id) of each resting order -> its slot, for the duplicate
//! check on entry and for cancels and replaces that name an order by its client order id.
//!
//! Contract: [`ClientIds`] holds the slot of every resting order exactly once, under the key
//! its node in the [`OrderPool`] carries; it answers point lookups and is never iterated, so
//! its layout cannot leak into event order. The caller inserts a slot after writing its node,
//! and removes it with the node it held (the slot may be free by then).
//!
//! Layout: open addressing with linear probing (`linear`, as [`super::OrderIndex`]): each entry is
//! `(tag, slot)`, 8 bytes, where the tag is the high 32 bits of the key's hash (its top bits
//! are the entry's home position) and the key itself lives in the order node. A lookup by key
//! reads a node only when a tag matches (1 in 2^32 otherwise); a removal knows its slot and
//! compares slots only, so it never reads a node; either touches one cache line in the usual
//! case (at most half the entries are full; removal shifts the following entries of the probe
//! run back, no tombstones). With a million resting orders the table is 16 MB, against about
//! 52 MB and two cache misses per probe (tags, then the 24-byte entry) for the hash map from
//! the key to the order id it replaces (docs/BENCHMARKS.md, "Restart time").
//!
//! Known limit (as for the map before it): the hash is fixed, not keyed, so a client that
//! picks client order ids colliding in it lengthens its own probe runs; per-account order
//! limits bound how many it can keep resting.

use super::linear::{Entry, Linear};
use super::pool::{OrderNode, OrderPool};
use super::NIL;
use crate::types::{AccountId, ClientOrderId};

/// Client order ids of resting orders: see the module docs.
#[derive(Debug, Clone)]
pub struct ClientIds {
    /// `(tag, slot)`; slot [`NIL`] = empty.
    table: Linear<(u32, u32)>,
}

impl Entry for (u32, u32) {
    const EMPTY: Self = (0, NIL);

    /// The tag in the top bits: its top bits choose the home place.
    #[inline]
    fn hash(&self) -> u64 {
        (self.0 as u64) << 32
    }
}

/// The high 32 bits of a folded multiply of the key's two halves (each half offset by a
/// constant, so that no half is zero): every key bit reaches them.
#[inline]
fn tag(book: u32, account: AccountId, client_order_id: ClientOrderId) -> u32 {
    let a = ((book as u64) << 32 | account as u64) ^ 0x9E37_79B9_7F4A_7C15;
    let b = client_order_id ^ 0xD6E8_FEB8_6659_FD93;
    let p = (a as u128).wrapping_mul(b as u128);
    (((p >> 64) as u64 ^ p as u64) >> 32) as u32
}

#[inline]
fn tag_of(n: &OrderNode) -> u32 {
    tag(n.book, n.account, n.client_order_id)
}

impl Default for ClientIds {
    fn default() -> Self {
        ClientIds::with_capacity(0)
    }
}

impl ClientIds {
    /// A table with room for `n` orders before it grows.
    pub fn with_capacity(n: usize) -> ClientIds {
        ClientIds {
            table: Linear::with_capacity(n),
        }
    }

    /// Resting orders indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of the resting order of `account` in `book` entered with `client_order_id`.
    #[inline]
    pub fn find(
        &self,
        pool: &OrderPool,
        book: u32,
        account: AccountId,
        client_order_id: ClientOrderId,
    ) -> Option<u32> {
        let t = tag(book, account, client_order_id);
        let is = |&(k, slot): &(u32, u32)| {
            k == t && {
                let n = pool.get(slot);
                n.client_order_id == client_order_id && n.account == account && n.book == book
            }
        };
        self.table.find((t as u64) << 32, is).map(|e| e.1)
    }

    /// The entry where a probe for this key starts (to read it early: `Engine::warm`).
    #[inline]
    pub fn probe(&self, book: u32, account: AccountId, client_order_id: ClientOrderId) -> u64 {
        let (t, s) = self
            .table
            .probe((tag(book, account, client_order_id) as u64) << 32);
        (t as u64) << 32 | s as u64
    }

    /// Index the order in `slot`, whose node is written already; its key must not be
    /// indexed (the caller checked with [`ClientIds::find`]).
    #[inline]
    pub fn insert(&mut self, pool: &OrderPool, slot: u32) {
        debug_assert!(slot != NIL);
        self.table.insert((tag_of(pool.get(slot)), slot));
    }

    /// Forget the order that was in `slot`, whose node was `node`; whether it was indexed.
    #[inline]
    pub fn remove(&mut self, slot: u32, node: &OrderNode) -> bool {
        let hash = (tag_of(node) as u64) << 32;
        self.table.remove(hash, |e| e.1 == slot).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{SelfTradePrevention, Side};

    fn node(book: u32, account: AccountId, client_order_id: ClientOrderId) -> OrderNode {
        OrderNode {
            id: client_order_id + 1000,
            client_order_id,
            price: 100,
            leaves: 1,
            priority_seq: 1,
            entry_ts: 0,
            account,
            book,
            level: 0,
            prev: u32::MAX,
            next: u32::MAX,
            side: Side::Buy,
            stp: SelfTradePrevention::Allow,
            post_only: false,
        }
    }

    /// Keys differ in any of their three parts; a freed slot reused by another order is
    /// found under the new key only; growth rehashes from the nodes.
    #[test]
    fn finds_by_the_whole_key_and_removes_by_slot() {
        let mut pool = OrderPool::with_capacity(4);
        let mut ids = ClientIds::with_capacity(2);
        let mut slots = Vec::new();
        for (b, a, c) in [(0, 1, 7), (1, 1, 7), (0, 2, 7), (0, 1, 8)] {
            let s = pool.alloc(node(b, a, c));
            ids.insert(&pool, s);
            slots.push(s);
        }
        // Grow well past the first capacity.
        for c in 100..5000 {
            let s = pool.alloc(node(3, 9, c));
            ids.insert(&pool, s);
        }
        assert_eq!(ids.len(), 4 + 4900);
        assert_eq!(ids.find(&pool, 0, 1, 7), Some(slots[0]));
        assert_eq!(ids.find(&pool, 1, 1, 7), Some(slots[1]));
        assert_eq!(ids.find(&pool, 0, 2, 7), Some(slots[2]));
        assert_eq!(ids.find(&pool, 0, 1, 8), Some(slots[3]));
        assert_eq!(
            ids.find(&pool, 3, 9, 4999)
                .map(|s| pool.get(s).client_order_id),
            Some(4999)
        );
        assert_eq!(ids.find(&pool, 2, 1, 7), None);

        let gone = *pool.get(slots[0]);
        pool.free(slots[0]);
        assert!(ids.remove(slots[0], &gone));
        assert!(!ids.remove(slots[0], &gone), "removed once");
        let reused = pool.alloc(node(0, 1, 9));
        assert_eq!(reused, slots[0], "the slab reuses the freed slot");
        ids.insert(&pool, reused);
        assert_eq!(ids.find(&pool, 0, 1, 7), None);
        assert_eq!(ids.find(&pool, 0, 1, 9), Some(reused));
        assert_eq!(ids.len(), 4 + 4900);
    }

    /// The table against a map, over churn with growth: random keys (few accounts and books,
    /// client order ids both sequential and random), removals of recent and old orders,
    /// slots reused by the slab.
    #[test]
    fn client_ids_match_a_map() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let mut pool = OrderPool::with_capacity(4);
        let mut ids = ClientIds::with_capacity(4);
        let mut model: BTreeMap<(u32, AccountId, ClientOrderId), u32> = BTreeMap::new();
        let mut live: Vec<u32> = Vec::new();
        let mut next = 0u64;
        for step in 0..100_000u32 {
            if rng.random_range(0..100) < 55 || live.is_empty() {
                next += 1;
                let c = if rng.random_bool(0.5) {
                    next
                } else {
                    rng.random()
                };
                let key = (rng.random_range(0..3), rng.random_range(1..4), c);
                if model.contains_key(&key) {
                    assert!(ids.find(&pool, key.0, key.1, key.2).is_some());
                    continue;
                }
                assert_eq!(ids.find(&pool, key.0, key.1, key.2), None);
                let s = pool.alloc(node(key.0, key.1, key.2));
                ids.insert(&pool, s);
                model.insert(key, s);
                live.push(s);
            } else {
                let at = if rng.random_range(0..10) == 0 {
                    0
                } else {
                    live.len() - 1 - rng.random_range(0..live.len().min(50))
                };
                let s = live.swap_remove(at);
                let n = *pool.get(s);
                pool.free(s);
                assert!(ids.remove(s, &n));
                model.remove(&(n.book, n.account, n.client_order_id));
            }
            assert_eq!(ids.len(), model.len());
            if step % 5_000 == 0 {
                for (&(b, a, c), &s) in &model {
                    assert_eq!(ids.find(&pool, b, a, c), Some(s));
                }
            }
        }
    }
}
