//! The price ladder of one side of a book: a directly indexed window of prices near the
//! touch plus a sorted vector of the levels worse than it.
//!
//! Contract: a [`Ladder`] maps price -> level slot for one side; it stores slots, not levels
//! (the caller owns them in a [`LevelPool`](super::LevelPool)). Iteration
//! ([`Ladder::iter_best_first`]) is best first, in price order. See [`Ladder`] for the layout,
//! the placement and growth of the window and its invariants.

use super::NIL;
use crate::types::{Price, Side};

/// Ticks a ladder's window covers when first used; it doubles (up to [`MAX_WINDOW`]) while
/// more levels lie outside it than inside.
pub const MIN_WINDOW: usize = 1 << 10;
/// Largest window: 1 MiB of slots and 32 KiB of bits per side.
pub const MAX_WINDOW: usize = 1 << 18;

/// The levels of one side of a book.
///
/// Layout: a *window* of `window_len` consecutive prices (in ticks, from `base`), each with
/// its level slot (or [`NIL`]) and an occupancy bit, plus a summary bit per 64-bit word of
/// occupancy; and `far`, the levels worse than the window, sorted worst to best. So:
/// - find, insert and remove at a price in the window are O(1) (one index);
/// - the best level is cached; after its removal the next one is found by scanning the
///   occupancy bits (a few words, the summary skips empty stretches);
/// - levels worse than the window (far from the touch) take a binary search and a shift.
///
/// Invariants: every level whose price is in the window is in the window, every other level
/// is in `far` and worse than every window price; `far` is non-empty only if the window holds
/// a level. The window is placed (on first use, when an insert lands beyond its better edge,
/// when it empties while `far` does not, and when it grows) so that the best price sits a
/// quarter of the window from its better edge; each placement re-files every level, O(levels
/// + window / 64), and is rare unless prices jump by more than a quarter window at a time.
#[derive(Debug)]
pub struct Ladder {
    side: Side,
    tick: Price,
    /// Tick index (price / tick) of window position 0.
    base: i64,
    window_len: usize,
    slots: Vec<u32>,
    bits: Vec<u64>,
    summary: Vec<u64>,
    /// Levels in the window.
    in_window: usize,
    /// Window position of the best level in the window (when `in_window > 0`).
    best_pos: usize,
    /// Levels worse than the window, `(price, level slot)`, worst first.
    far: Vec<(Price, u32)>,
    /// Reused while re-filing levels.
    scratch: Vec<(Price, u32)>,
}

impl Ladder {
    /// An empty side; prices are multiples of `tick` (> 0). Allocates on first insert.
    pub fn new(side: Side, tick: Price) -> Ladder {
        assert!(tick > 0, "tick must be positive");
        Ladder {
            side,
            tick,
            base: 0,
            window_len: 0,
            slots: Vec::new(),
            bits: Vec::new(),
            summary: Vec::new(),
            in_window: 0,
            best_pos: 0,
            far: Vec::new(),
            scratch: Vec::new(),
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

    #[inline]
    fn ticks(&self, price: Price) -> i64 {
        if self.tick == 1 {
            price
        } else {
            price / self.tick
        }
    }

    /// Window position of `price`, if inside the window.
    #[inline]
    fn pos(&self, price: Price) -> Option<usize> {
        // Exact when inside; any overflow lands far outside `window_len`.
        let d = self.ticks(price).wrapping_sub(self.base) as u64;
        if d < self.window_len as u64 {
            Some(d as usize)
        } else {
            None
        }
    }

    #[inline]
    fn price_at(&self, pos: usize) -> Price {
        (self.base + pos as i64) * self.tick
    }

    /// The best level: `(price, level slot)`.
    #[inline]
    pub fn best(&self) -> Option<(Price, u32)> {
        if self.in_window > 0 {
            Some((self.price_at(self.best_pos), self.slots[self.best_pos]))
        } else {
            self.far.last().copied()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.in_window == 0 && self.far.is_empty()
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.in_window + self.far.len()
    }

    /// Position of `price` in `far`: `Ok` if present, `Err(insert index)` if not.
    fn far_position(&self, price: Price) -> Result<usize, usize> {
        let side = self.side;
        self.far.binary_search_by(|&(p, _)| match side {
            Side::Buy => p.cmp(&price),
            Side::Sell => price.cmp(&p),
        })
    }

    /// The level slot at `price`, if any.
    #[inline]
    pub fn find(&self, price: Price) -> Option<u32> {
        match self.pos(price) {
            Some(pos) => Some(self.slots[pos]).filter(|&s| s != NIL),
            None => self.far_position(price).ok().map(|i| self.far[i].1),
        }
    }

    /// The level slot at `price`, created with `make` if absent.
    #[inline(always)]
    pub fn find_or_insert(&mut self, price: Price, make: impl FnOnce() -> u32) -> u32 {
        if let Some(pos) = self.pos(price) {
            let slot = self.slots[pos];
            if slot != NIL {
                return slot;
            }
        }
        self.find_or_insert_slow(price, make)
    }

    /// [`Ladder::find_or_insert`] past its fast path (an existing level in the window).
    #[inline(never)]
    fn find_or_insert_slow(&mut self, price: Price, make: impl FnOnce() -> u32) -> u32 {
        if let Some(pos) = self.pos(price) {
            let slot = make();
            self.set(pos, slot);
            return slot;
        }
        if self.in_window == 0 || self.beyond_better_edge(price) {
            // First level, or the market moved past the window: place it at this price.
            let slot = make();
            self.place(
                self.window_len.max(MIN_WINDOW),
                self.ticks(price),
                Some((price, slot)),
            );
            return slot;
        }
        match self.far_position(price) {
            Ok(i) => self.far[i].1,
            Err(i) => {
                let slot = make();
                self.far.insert(i, (price, slot));
                if self.far.len() > self.in_window && self.window_len < MAX_WINDOW {
                    let anchor = self.base + self.best_pos as i64;
                    self.place(self.window_len * 2, anchor, None);
                }
                slot
            }
        }
    }

    /// Remove the level at `price` (which must exist).
    #[inline]
    pub fn remove(&mut self, price: Price) {
        match self.pos(price) {
            Some(pos) => {
                if self.slots[pos] == NIL {
                    return;
                }
                self.clear(pos);
                if self.in_window == 0 {
                    if let Some(&(p, _)) = self.far.last() {
                        let anchor = self.ticks(p);
                        self.place(self.window_len, anchor, None);
                    }
                } else if pos == self.best_pos {
                    self.best_pos = self
                        .next_worse(pos)
                        .expect("a non-empty window has a best level");
                }
            }
            None => {
                if let Ok(i) = self.far_position(price) {
                    self.far.remove(i);
                }
            }
        }
    }

    /// `true` if `price` (outside the window) is better than every window price.
    #[inline]
    fn beyond_better_edge(&self, price: Price) -> bool {
        match self.side {
            Side::Buy => self.ticks(price) >= self.base + self.window_len as i64,
            Side::Sell => self.ticks(price) < self.base,
        }
    }

    #[inline]
    fn set(&mut self, pos: usize, slot: u32) {
        self.slots[pos] = slot;
        let w = pos >> 6;
        self.bits[w] |= 1 << (pos & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
        if self.in_window == 0 || self.better_pos(pos, self.best_pos) {
            self.best_pos = pos;
        }
        self.in_window += 1;
    }

    #[inline]
    fn clear(&mut self, pos: usize) {
        self.slots[pos] = NIL;
        let w = pos >> 6;
        self.bits[w] &= !(1 << (pos & 63));
        if self.bits[w] == 0 {
            self.summary[w >> 6] &= !(1 << (w & 63));
        }
        self.in_window -= 1;
    }

    #[inline]
    fn better_pos(&self, a: usize, b: usize) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// The occupied window position next worse than `pos`.
    #[inline]
    fn next_worse(&self, pos: usize) -> Option<usize> {
        match self.side {
            Side::Buy => self.prev_set(pos),
            Side::Sell => self.next_set(pos),
        }
    }

    /// Highest occupied position below `pos`.
    fn prev_set(&self, pos: usize) -> Option<usize> {
        let w = pos >> 6;
        let m = self.bits[w] & ((1u64 << (pos & 63)) - 1);
        if m != 0 {
            return Some((w << 6) + 63 - m.leading_zeros() as usize);
        }
        // Words below `w` with bits, via the summary.
        let mut sw = w >> 6;
        let mut sm = self.summary[sw] & ((1u64 << (w & 63)) - 1);
        loop {
            if sm != 0 {
                let word = (sw << 6) + 63 - sm.leading_zeros() as usize;
                return Some((word << 6) + 63 - self.bits[word].leading_zeros() as usize);
            }
            if sw == 0 {
                return None;
            }
            sw -= 1;
            sm = self.summary[sw];
        }
    }

    /// Lowest occupied position above `pos`.
    fn next_set(&self, pos: usize) -> Option<usize> {
        let w = pos >> 6;
        let shift = (pos & 63) + 1;
        let m = if shift == 64 {
            0
        } else {
            self.bits[w] & (!0u64 << shift)
        };
        if m != 0 {
            return Some((w << 6) + m.trailing_zeros() as usize);
        }
        let mut sw = w >> 6;
        let shift = (w & 63) + 1;
        let mut sm = if shift == 64 {
            0
        } else {
            self.summary[sw] & (!0u64 << shift)
        };
        loop {
            if sm != 0 {
                let word = (sw << 6) + sm.trailing_zeros() as usize;
                return Some((word << 6) + self.bits[word].trailing_zeros() as usize);
            }
            sw += 1;
            if sw == self.summary.len() {
                return None;
            }
            sm = self.summary[sw];
        }
    }

    /// Re-file every level (and `extra`, a new one) into a window of `len` positions placed
    /// so that tick index `anchor` sits a quarter of the window from its better edge.
    fn place(&mut self, len: usize, anchor: i64, extra: Option<(Price, u32)>) {
        let mut all = std::mem::take(&mut self.scratch);
        all.clear();
        all.extend(self.iter_best_first());
        if let Some(e) = extra {
            let at = all.partition_point(|&(p, _)| self.better(p, e.0));
            all.insert(at, e);
        }
        let len = len.next_power_of_two().clamp(MIN_WINDOW, MAX_WINDOW);
        let quarter = (len / 4) as i64;
        let base = match self.side {
            Side::Buy => anchor.saturating_sub(len as i64 - quarter),
            Side::Sell => anchor.saturating_sub(quarter),
        };
        self.base = base.min(i64::MAX / self.tick - len as i64);
        self.window_len = len;
        self.slots.clear();
        self.slots.resize(len, NIL);
        self.bits.clear();
        self.bits.resize(len / 64, 0);
        self.summary.clear();
        self.summary.resize(len.div_ceil(64 * 64), 0);
        self.in_window = 0;
        self.far.clear();
        // Best first: window levels, then the worse ones in reverse into `far`.
        for &(price, slot) in &all {
            match self.pos(price) {
                Some(pos) => self.set(pos, slot),
                None => self.far.push((price, slot)),
            }
        }
        self.far.reverse();
        debug_assert!(match self.far.last() {
            Some(&(p, _)) => self.in_window > 0 && !self.beyond_better_edge(p),
            None => true,
        });
        self.scratch = all;
    }

    /// Levels from best to worst.
    pub fn iter_best_first(&self) -> BestFirst<'_> {
        BestFirst {
            ladder: self,
            next_pos: (self.in_window > 0).then_some(self.best_pos),
            far: self.far.len(),
        }
    }
}

/// Iterator over a ladder's levels, best first: the window, then `far` from its best end.
#[derive(Debug)]
pub struct BestFirst<'a> {
    ladder: &'a Ladder,
    next_pos: Option<usize>,
    far: usize,
}

impl Iterator for BestFirst<'_> {
    type Item = (Price, u32);

    fn next(&mut self) -> Option<(Price, u32)> {
        let l = self.ladder;
        if let Some(pos) = self.next_pos {
            self.next_pos = l.next_worse(pos);
            return Some((l.price_at(pos), l.slots[pos]));
        }
        if self.far == 0 {
            return None;
        }
        self.far -= 1;
        Some(l.far[self.far])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::book::LevelPool;

    #[test]
    fn ladder_keeps_best_last_for_both_sides() {
        let mut levels = LevelPool::default();
        let mut bids = Ladder::new(Side::Buy, 1);
        let mut asks = Ladder::new(Side::Sell, 1);
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

    /// The window, its placement and growth, and `far` against an ordered model, over
    /// prices that cluster, drift, jump far away and come back.
    #[test]
    fn ladder_matches_an_ordered_model() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;
        for (side, tick) in [
            (Side::Buy, 1),
            (Side::Sell, 1),
            (Side::Buy, 5),
            (Side::Sell, 7),
        ] {
            let mut rng = rand_pcg::Pcg64::seed_from_u64(tick as u64 * 10 + side as u64);
            let mut ladder = Ladder::new(side, tick);
            let mut model: BTreeMap<Price, u32> = BTreeMap::new();
            let mut next = 0u32;
            let mut center: i64 = 100_000;
            for step in 0..40_000 {
                if step % 5_000 == 0 {
                    // A jump: the market moves by more than any window.
                    center = rng.random_range(1_000..2_000_000);
                }
                let spread = if rng.random_range(0..10) == 0 {
                    600_000
                } else {
                    300
                };
                let ticks = (center + rng.random_range(-spread..=spread)).max(1);
                let price = ticks * tick;
                if rng.random_range(0..3) > 0 || model.is_empty() {
                    let slot = ladder.find_or_insert(price, || {
                        next += 1;
                        next
                    });
                    assert_eq!(
                        *model.entry(price).or_insert(slot),
                        slot,
                        "find_or_insert {price}"
                    );
                } else {
                    // Remove an existing level: near the best half of the time.
                    let keys: Vec<Price> = model.keys().copied().collect();
                    let i = rng.random_range(0..keys.len());
                    let p = if rng.random::<bool>() {
                        match side {
                            Side::Buy => keys[keys.len() - 1 - i.min(3).min(keys.len() - 1)],
                            Side::Sell => keys[i.min(3).min(keys.len() - 1)],
                        }
                    } else {
                        keys[i]
                    };
                    ladder.remove(p);
                    model.remove(&p);
                }
                let want: Vec<(Price, u32)> = match side {
                    Side::Buy => model.iter().rev().map(|(&p, &s)| (p, s)).collect(),
                    Side::Sell => model.iter().map(|(&p, &s)| (p, s)).collect(),
                };
                assert_eq!(ladder.best(), want.first().copied(), "best at step {step}");
                assert_eq!(ladder.len(), want.len());
                if step % 97 == 0 {
                    let got: Vec<(Price, u32)> = ladder.iter_best_first().collect();
                    assert_eq!(got, want, "levels at step {step}");
                    for &(p, s) in want.iter().take(20) {
                        assert_eq!(ladder.find(p), Some(s));
                        assert_eq!(ladder.find(p + tick), model.get(&(p + tick)).copied());
                    }
                }
            }
        }
    }
}
