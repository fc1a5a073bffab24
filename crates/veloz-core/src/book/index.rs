//! Order id -> order slot, for point lookups on the event path.
//!
//! Contract: [`OrderIndex`] answers `get`, `insert` and `remove` by order id and is never
//! iterated, so its layout cannot leak into event order. Id 0 is never an order id (it marks
//! an empty entry); an id is inserted at most once while present. The probing scheme, the
//! load limit and growth are `linear`'s, shared with the client-order-id table.

use super::linear::{Entry, Linear};
use crate::types::OrderId;

/// Order id -> slot: open addressing with linear probing (`linear`), for point lookups
/// only (never iterated).
///
/// Order ids are engine-assigned and sequential, so the home position is a Fibonacci hash of
/// the id (one multiply spreads consecutive ids evenly). Id 0 marks an empty entry (engine
/// ids never are 0).
#[derive(Debug)]
pub struct OrderIndex {
    /// `(order id, slot)`; id 0 = empty.
    table: Linear<(OrderId, u32)>,
}

impl Entry for (OrderId, u32) {
    const EMPTY: Self = (0, 0);

    #[inline]
    fn hash(&self) -> u64 {
        fib(self.0)
    }
}

#[inline]
fn fib(id: OrderId) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl OrderIndex {
    /// A table with room for `n` orders before it grows.
    pub fn with_capacity(n: usize) -> OrderIndex {
        OrderIndex {
            table: Linear::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of order `id`.
    #[inline]
    pub fn get(&self, id: OrderId) -> Option<u32> {
        if id == 0 {
            return None;
        }
        self.table.find(fib(id), |e| e.0 == id).map(|e| e.1)
    }

    /// The entry where a probe for `id` starts (to read it early: `Engine::warm`).
    #[inline]
    pub fn probe(&self, id: OrderId) -> (OrderId, u32) {
        self.table.probe(fib(id))
    }

    /// Index order `id` (not 0, not present) at `slot`.
    #[inline]
    pub fn insert(&mut self, id: OrderId, slot: u32) {
        debug_assert!(id != 0);
        self.table.insert((id, slot));
    }

    /// Remove order `id`; returns its slot.
    #[inline]
    pub fn remove(&mut self, id: OrderId) -> Option<u32> {
        if id == 0 {
            return None;
        }
        self.table.remove(fib(id), |e| e.0 == id).map(|e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order index against a map, with the id patterns an engine produces (sequential,
    /// survivors of all ages) and growth.
    #[test]
    fn order_index_matches_a_map() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let mut index = OrderIndex::with_capacity(4);
        let mut model: BTreeMap<OrderId, u32> = BTreeMap::new();
        let shard = 3u64 << 48;
        let mut next = 0u64;
        for step in 0..200_000u32 {
            if rng.random_range(0..100) < 52 || model.is_empty() {
                next += 1;
                index.insert(shard | next, step);
                model.insert(shard | next, step);
            } else {
                // Mostly recent orders leave; a few old ones too.
                let id = if rng.random_range(0..10) == 0 {
                    *model.keys().next().unwrap()
                } else {
                    let hi = next.min(model.len() as u64 * 2);
                    shard | (next - rng.random_range(0..hi))
                };
                assert_eq!(index.remove(id), model.remove(&id), "remove {id:#x}");
            }
            assert_eq!(index.len(), model.len());
            if step % 1_000 == 0 {
                for (&id, &slot) in &model {
                    assert_eq!(index.get(id), Some(slot));
                }
                assert_eq!(index.get(shard | (next + 1)), None);
                assert_eq!(index.get(0), None, "0 is never an order id");
            }
        }
    }
}
