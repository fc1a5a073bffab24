//! The comparison of the engine's top levels with each orderbook row, and the re-syncs the
//! crate docs allow (quirk 2, and hidden changes at the level of the message).
//!
//! Contract: a level is re-synced only when its price was not visible in the previous row,
//! or it is the message's level and the message named an uncertain order or an unknown id;
//! quantity is added as a synthetic order at the back, or removed from the level's uncertain
//! orders, oldest first. Any other difference, or removing quantity from a certain order, is
//! counted as unexplained and fails.

use super::*;

/// Why a level is re-synced from the row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resync {
    /// Quirk 2: the price was not visible in the previous row.
    Quirk2,
    /// The message named an uncertain order or an unknown id at this level.
    Hidden,
    /// Nothing explains it (counted as a failure, re-synced so the replay goes on).
    Unexplained,
}

impl<'a> Replay<'a> {
    /// Compare the engine's top levels with row `i`; re-sync the documented differences.
    pub(super) fn compare_and_resync(&mut self, i: usize, m: &Msg, focus: Option<Price>) {
        let rows = self.rows;
        let row = &rows[i];
        let ctx = m.to_string();
        self.counts.rows_compared += 1;
        let mut exact = true;
        // (side, price, quantity, why), removals first so an added order never crosses.
        let mut removals = Vec::new();
        let mut additions = Vec::new();
        for side in [Side::Sell, Side::Buy] {
            let want = row.side(side);
            let got: Vec<(Price, Qty)> = self
                .engine
                .depth(SYMBOL, side, self.levels)
                .iter()
                .map(|l| (l.price, l.qty))
                .collect();
            if got == want {
                continue;
            }
            exact = false;
            // Every engine level at or better than the row's deepest (all of them when the
            // row shows fewer than N levels) must equal the row.
            let deepest = want
                .last()
                .filter(|_| want.len() == self.levels)
                .map(|l| l.0);
            let engine: Vec<(Price, Qty)> = self
                .engine
                .depth(SYMBOL, side, usize::MAX)
                .iter()
                .map(|l| (l.price, l.qty))
                .filter(|l| deepest.is_none_or(|d| !better(side, d, l.0)))
                .collect();
            let mut prices: Vec<Price> = engine.iter().chain(want).map(|l| l.0).collect();
            prices.sort_unstable();
            prices.dedup();
            for p in prices {
                let qty_at =
                    |levels: &[(Price, Qty)]| levels.iter().find(|l| l.0 == p).map_or(0, |l| l.1);
                let (e, w) = (qty_at(&engine), qty_at(want));
                if e == w {
                    continue;
                }
                let new_here = m.kind == 1 && m.side == side && m.price == p;
                let why = if !self.visible[side as usize].contains_key(&p) && !new_here {
                    Resync::Quirk2
                } else if m.side == side && focus == Some(p) {
                    Resync::Hidden
                } else {
                    self.fail(format!(
                        "after {ctx}: {side:?} level {p}: engine {e}, NASDAQ {w} \
                         (engine top {got:?}, row {want:?})"
                    ));
                    Resync::Unexplained
                };
                if e > w {
                    removals.push((side, p, e - w, why));
                } else {
                    additions.push((side, p, w - e, why));
                }
            }
        }
        let (mut quirk2, mut hidden) = (false, false);
        for &(side, price, qty, why) in &removals {
            self.remove_uncertain(&ctx, side, price, qty, why);
            match why {
                Resync::Quirk2 => self.counts.quirk2_levels_reduced += 1,
                Resync::Hidden => self.counts.hidden_levels_reduced += 1,
                Resync::Unexplained => {}
            }
            quirk2 |= why == Resync::Quirk2;
            hidden |= why == Resync::Hidden;
        }
        for &(side, price, qty, why) in &additions {
            self.add_synthetic(&ctx, side, price, qty, i);
            match why {
                Resync::Quirk2 => self.counts.quirk2_levels_added += 1,
                Resync::Hidden => self.counts.hidden_levels_added += 1,
                Resync::Unexplained => {}
            }
            quirk2 |= why == Resync::Quirk2;
            hidden |= why == Resync::Hidden;
        }
        self.counts.rows_exact += usize::from(exact);
        self.counts.rows_quirk2 += usize::from(quirk2);
        self.counts.rows_hidden += usize::from(hidden);
        for side in [Side::Sell, Side::Buy] {
            let want = row.side(side);
            if !exact {
                let got: Vec<(Price, Qty)> = self
                    .engine
                    .depth(SYMBOL, side, self.levels)
                    .iter()
                    .map(|l| (l.price, l.qty))
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "{}: after {ctx}: {side:?} side still differs after the re-sync; \
                     differences so far:\n{}",
                    self.name,
                    self.failures.join("\n")
                );
            }
            let old = std::mem::take(&mut self.visible[side as usize]);
            self.visible[side as usize] = want
                .iter()
                .map(|l| (l.0, old.get(&l.0).copied().unwrap_or(i)))
                .collect();
        }
    }

    /// Remove `qty` at a level from its uncertain orders, oldest first.
    fn remove_uncertain(&mut self, ctx: &str, side: Side, price: Price, qty: Qty, why: Resync) {
        let mut rest = qty;
        for pass in 0..2 {
            for id in self.engine.queue(SYMBOL, side, price) {
                if rest == 0 {
                    return;
                }
                if pass == 0 && !self.uncertain(id) {
                    continue;
                }
                let take = rest.min(self.leaves(id));
                if let Some(lobster) = self.meta[&id].lobster {
                    self.resynced_away.insert(lobster);
                }
                self.reduce(ctx, id, take);
                rest -= take;
            }
            if rest > 0 && pass == 0 && why != Resync::Unexplained {
                self.fail(format!(
                    "after {ctx}: {side:?} level {price} holds {rest} more than NASDAQ in \
                     orders whose every event is in the file"
                ));
            }
        }
    }
}
