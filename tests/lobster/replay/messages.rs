//! What each message type does to the engine: new orders (type 1), partial cancels and
//! deletes (types 2 and 3), executions (type 4, with the head-of-queue check and the sweep
//! ledger), and size changes on ids the file never placed.
//!
//! Contract: each handler returns the price of the level it touched when that level may be
//! re-synced for a hidden change (see the crate docs, quirk 2), and counts or fails every
//! difference it meets; a difference on a certain order is always a failure.

use super::*;

impl<'a> Replay<'a> {
    pub(super) fn same_sweep(&self, m: &Msg, next: Option<&Msg>) -> bool {
        next.is_some_and(|n| n.kind == 4 && n.time == m.time && n.side == m.side)
    }

    /// The live engine order of a file-placed LOBSTER id (or one already executed in the
    /// current sweep by an earlier row's IOC).
    fn known(&mut self, m: &Msg) -> Option<OrderId> {
        let &id = self.by_lobster.get(&m.id)?;
        if self.leaves(id) > 0 || self.credit.get(&id).is_some_and(|&c| c > 0) {
            let meta = self.meta[&id];
            assert!(
                meta.side == m.side && meta.price == m.price,
                "{}: {m}: the file placed this order as {:?} @ {}",
                self.name,
                meta.side,
                meta.price
            );
            Some(id)
        } else {
            assert!(
                self.resynced_away.contains(&m.id),
                "{}: {m}: the file names an order that it executed or deleted in full before \
                 (and no re-sync touched it)",
                self.name
            );
            self.counts.named_after_resync += 1;
            None
        }
    }

    pub(super) fn on_new(&mut self, i: usize, m: &Msg) {
        assert!(
            m.id > 0 && m.id < u64::from(SYNTHETIC_ACCOUNTS),
            "{}: {m}: id out of the account range",
            self.name
        );
        assert!(
            !self.by_lobster.contains_key(&m.id),
            "{}: {m}: the id was placed before",
            self.name
        );
        let meta = Meta {
            lobster: Some(m.id),
            account: m.id as AccountId,
            placed: i,
            side: m.side,
            price: m.price,
        };
        let id = self.rest(&m.to_string(), meta, m.id, m.size);
        self.by_lobster.insert(m.id, id);
    }

    /// A size change of `m.size` at a level for an id the engine does not hold: taken from
    /// the synthetic orders there, head first.
    fn on_unknown(&mut self, m: &Msg) -> Option<Price> {
        self.counts.unknown_id_events += 1;
        let ctx = m.to_string();
        let mut rest = m.size;
        for id in self.engine.queue(SYMBOL, m.side, m.price) {
            if rest == 0 {
                break;
            }
            if self.meta[&id].lobster.is_none() {
                let take = rest.min(self.leaves(id));
                self.reduce(&ctx, id, take);
                rest -= take;
            }
        }
        if rest > 0 {
            self.counts.unknown_id_short += 1;
        }
        Some(m.price)
    }

    pub(super) fn on_cancel(&mut self, m: &Msg) -> Option<Price> {
        let Some(id) = self.known(m) else {
            return self.on_unknown(m);
        };
        let ctx = m.to_string();
        let leaves = self.leaves(id);
        let stale = self.uncertain(id);
        let size_ok = if m.kind == 2 {
            m.size < leaves
        } else {
            m.size == leaves
        };
        if !size_ok {
            if stale {
                self.counts.stale_size_differs += 1;
            } else {
                let d = self.describe(id);
                self.fail(format!("{ctx}: size does not fit {d}"));
            }
        }
        let take = if m.kind == 2 {
            m.size.min(leaves)
        } else {
            leaves
        };
        self.reduce(&ctx, id, take);
        (stale || !size_ok).then_some(m.price)
    }

    /// Do later rows of the sweep of row `i`, at the same price, execute all of the
    /// file-placed engine order `id`?
    fn consumed_later_in_sweep(&self, i: usize, id: OrderId) -> bool {
        let Some(lobster) = self.meta[&id].lobster else {
            return false;
        };
        let m = &self.msgs[i];
        let (mut j, mut executed) = (i, 0);
        while self.same_sweep(&self.msgs[j], self.msgs.get(j + 1)) {
            j += 1;
            let n = &self.msgs[j];
            if n.id == lobster && n.price == m.price {
                executed += n.size;
            }
        }
        executed > 0 && executed >= self.leaves(id)
    }

    /// Move a resting order to the back of its level (cancel, and the same order again).
    fn requeue(&mut self, ctx: &str, id: OrderId) {
        let meta = self.meta[&id];
        let leaves = self.leaves(id);
        self.reduce(ctx, id, leaves);
        let new_id = match meta.lobster {
            Some(lobster) => {
                let new_id = self.rest(ctx, meta, lobster, leaves);
                self.by_lobster.insert(lobster, new_id);
                new_id
            }
            None => self.add_synthetic(ctx, meta.side, meta.price, leaves, meta.placed),
        };
        if let Some(c) = self.credit.remove(&id) {
            self.credit.insert(new_id, c);
        }
        self.counts.requeued_orders += 1;
    }

    pub(super) fn on_execution(&mut self, i: usize, m: &Msg) -> Option<Price> {
        let Some(x) = self.known(m) else {
            return self.on_unknown(m);
        };
        let ctx = m.to_string();
        self.counts.head_checks += 1;
        let in_sweep = (i > 0 && self.same_sweep(&self.msgs[i - 1], Some(m)))
            || self.same_sweep(m, self.msgs.get(i + 1));
        if in_sweep {
            self.counts.sweep_rows += 1;
        }
        let stale = self.uncertain(x);
        let mut focus = stale.then_some(m.price);
        let pre_filled = self.credit.get(&x).copied().unwrap_or(0).max(0) as Qty;
        let queue = self.engine.queue(SYMBOL, m.side, m.price);
        let hit = queue.first() == Some(&x);
        if hit {
            self.counts.head_hits += 1;
        } else if pre_filled > 0 {
            // Quirk 3: an earlier row of this sweep already executed it.
            self.counts.head_sweep_reordered += 1;
        } else {
            let pos = queue.iter().position(|&o| o == x).unwrap_or_else(|| {
                panic!("{}: {ctx}: engine order {x} is not in its queue", self.name)
            });
            // Orders ahead that this sweep does not execute in full.
            let blocking: Vec<OrderId> = queue[..pos]
                .iter()
                .copied()
                .filter(|&o| !self.consumed_later_in_sweep(i, o))
                .collect();
            if blocking.is_empty() {
                // Quirk 3: the sweep lists its fills at this price out of queue order.
                self.counts.head_sweep_reordered += 1;
            } else if blocking.iter().all(|&o| self.uncertain(o)) {
                // Quirks 1/2: NASDAQ executed X, so these were not ahead of it (gone, or
                // behind it): they go behind X with their quantity, which the row confirms.
                self.counts.head_behind_uncertain += 1;
                for &o in &blocking {
                    self.requeue(&ctx, o);
                }
            } else {
                let who: Vec<String> = blocking.iter().map(|&o| self.describe(o)).collect();
                let d = self.describe(x);
                self.fail(format!(
                    "{ctx}: head-of-queue miss: {d} has certain orders ahead: [{}]",
                    who.join("; ")
                ));
                for &o in &blocking {
                    self.requeue(&ctx, o);
                }
            }
        }
        let available = self.leaves(x) + pre_filled;
        let qty = if m.size <= available {
            m.size
        } else {
            if stale {
                self.counts.stale_size_differs += 1;
            } else {
                let d = self.describe(x);
                self.fail(format!("{ctx}: executes more than {d}"));
            }
            focus = Some(m.price);
            available
        };
        if qty == 0 {
            return focus;
        }
        let fills = self.execute(&ctx, m.side, m.price, qty);
        if hit && pre_filled == 0 && fills.first().map(|f| f.0) != Some(x) {
            let d = self.describe(x);
            self.fail(format!(
                "{ctx}: {d} is at the head but the IOC traded with {fills:?}"
            ));
        }
        *self.credit.entry(x).or_insert(0) -= qty as i64;
        for (maker, q) in fills {
            *self.credit.entry(maker).or_insert(0) += q as i64;
        }
        self.credit.retain(|_, c| *c != 0);
        focus
    }
}
