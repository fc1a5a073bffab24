//! Open addressing with linear probing: the scheme [`super::OrderIndex`] and
//! [`super::ClientIds`] share.
//!
//! Contract: a table of `Copy` entries, one of which ([`Entry::EMPTY`]) marks a free place;
//! each entry's home place comes from the top bits of its [`Entry::hash`]. At most half the
//! places are full (it doubles when an insert would pass that: the only allocation), and a
//! removal shifts the following entries of the probe run back (no tombstones), so probe runs
//! stay as short as the load allows. Point lookups only: never iterated, so its layout cannot
//! leak into event order.

/// An entry of a [`Linear`] table.
pub(super) trait Entry: Copy + PartialEq {
    /// The free place.
    const EMPTY: Self;
    /// Where the entry lives: the top bits choose its home place.
    fn hash(&self) -> u64;
}

/// A linear-probing table of `E` (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct Linear<E> {
    entries: Vec<E>,
    /// log2 of the table size.
    bits: u32,
    len: usize,
}

impl<E: Entry> Linear<E> {
    /// A table with room for `n` entries before it grows.
    pub(super) fn with_capacity(n: usize) -> Linear<E> {
        let size = (n.max(8) * 2).next_power_of_two();
        Linear {
            entries: vec![E::EMPTY; size],
            bits: size.trailing_zeros(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The entry where a probe for `hash` starts (to read it early, or to look at it).
    #[inline]
    pub(super) fn probe(&self, hash: u64) -> E {
        self.entries[self.home(hash)]
    }

    /// The first entry of `hash`'s probe run that `is` accepts.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut is: impl FnMut(&E) -> bool) -> Option<E> {
        self.position(hash, &mut is).map(|i| self.entries[i])
    }

    #[inline]
    fn position(&self, hash: u64, is: &mut impl FnMut(&E) -> bool) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let e = &self.entries[i];
            if *e == E::EMPTY {
                return None;
            }
            if is(e) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Add `e` (not [`Entry::EMPTY`]); the caller knows it is not there yet.
    #[inline]
    pub(super) fn insert(&mut self, e: E) {
        debug_assert!(e != E::EMPTY);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(e.hash());
        while self.entries[i] != E::EMPTY {
            debug_assert!(self.entries[i] != e, "an entry inserted twice");
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
        self.len += 1;
    }

    /// Remove the first entry of `hash`'s probe run that `is` accepts; returns it.
    #[inline]
    pub(super) fn remove(&mut self, hash: u64, mut is: impl FnMut(&E) -> bool) -> Option<E> {
        let i = self.position(hash, &mut is)?;
        let removed = self.entries[i];
        let mask = self.mask();
        // Backward shift: move later members of the run into the hole while their home
        // position allows it.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == E::EMPTY {
                break;
            }
            let home = self.home(e.hash());
            // `e` may move to `hole` iff `hole` lies cyclically in [home, j).
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = E::EMPTY;
        self.len -= 1;
        Some(removed)
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.entries = vec![E::EMPTY; old.len() * 2];
        self.bits += 1;
        self.len = 0;
        for e in old {
            if e != E::EMPTY {
                self.insert(e);
            }
        }
    }
}
