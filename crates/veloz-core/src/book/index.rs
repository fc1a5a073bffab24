//! Order id -> order slot, for point lookups on the event path.
//!
//! Contract: [`OrderIndex`] answers `get`, `insert` and `remove` by order id and is never
//! iterated, so its layout cannot leak into event order. Id 0 is never an order id (it marks
//! an empty entry); an id is inserted at most once while present. See [`OrderIndex`] for the
//! probing scheme, the load limit and growth.

use crate::types::OrderId;

/// Order id -> slot: open addressing with linear probing, for point lookups only (never
/// iterated).
///
/// Order ids are engine-assigned and sequential, so the home position is a Fibonacci hash of
/// the id (one multiply spreads consecutive ids evenly). The table keeps at most half its
/// entries full and doubles when that would be exceeded (the only allocation); removal
/// shifts the following entries of the probe run back (no tombstones), so probe runs stay
/// as short as the load allows. Id 0 marks an empty entry (engine ids never are 0).
#[derive(Debug)]
pub struct OrderIndex {
    /// `(order id, slot)`; id 0 = empty.
    entries: Vec<(OrderId, u32)>,
    /// log2 of the table size.
    bits: u32,
    len: usize,
}

impl OrderIndex {
    /// A table with room for `n` orders before it grows.
    pub fn with_capacity(n: usize) -> OrderIndex {
        let size = (n.max(8) * 2).next_power_of_two();
        OrderIndex {
            entries: vec![(0, 0); size],
            bits: size.trailing_zeros(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, id: OrderId) -> usize {
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The slot of order `id`.
    #[inline]
    pub fn get(&self, id: OrderId) -> Option<u32> {
        if id == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            let (k, v) = self.entries[i];
            if k == id {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The entry where a probe for `id` starts (to read it early: `Engine::warm`).
    #[inline]
    pub fn probe(&self, id: OrderId) -> (OrderId, u32) {
        self.entries[self.home(id)]
    }

    /// Index order `id` (not 0, not present) at `slot`.
    #[inline]
    pub fn insert(&mut self, id: OrderId, slot: u32) {
        debug_assert!(id != 0);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(id);
        while self.entries[i].0 != 0 {
            debug_assert!(self.entries[i].0 != id, "order {id} indexed twice");
            i = (i + 1) & mask;
        }
        self.entries[i] = (id, slot);
        self.len += 1;
    }

    /// Remove order `id`; returns its slot.
    #[inline]
    pub fn remove(&mut self, id: OrderId) -> Option<u32> {
        if id == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            let (k, _) = self.entries[i];
            if k == id {
                break;
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        let slot = self.entries[i].1;
        // Backward shift: move later members of the run into the hole while their home
        // position allows it.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let (k, _) = self.entries[j];
            if k == 0 {
                break;
            }
            let home = self.home(k);
            // `k` may move to `hole` iff `hole` lies cyclically in [home, j).
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = self.entries[j];
                hole = j;
            }
        }
        self.entries[hole] = (0, 0);
        self.len -= 1;
        Some(slot)
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.entries = vec![(0, 0); old.len() * 2];
        self.bits += 1;
        self.len = 0;
        for (k, v) in old {
            if k != 0 {
                self.insert(k, v);
            }
        }
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
