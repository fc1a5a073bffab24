//! A session's balance requests, gathered over the shards.
//!
//! Balances are per-shard slices: each shard's engine keeps the balances of the accounts
//! trading its instruments, so a balance request goes to every shard (in order with the
//! session's commands to it) and each shard answers with its non-zero slices of the
//! account's balances, then a `BalanceEnd` ([`crate::queries`]). The session's gateway sums
//! them here and writes one `BalanceReport` when the last shard has answered.
//!
//! Invariants:
//! - every shard answers a session's queries in the order it received them, so the answers
//!   of shard `s` belong to the oldest gather that shard `s` has not ended yet, and gathers
//!   complete in the order they were asked (a gather's requests reach every shard before the
//!   next gather's do);
//! - a session has at most [`MAX_PENDING`] balance requests in flight; one more is refused
//!   `Throttled` at once (the state lives in the session and goes with it);
//! - the report lists every configured asset ascending by id (zeros included), amounts
//!   summed over the shards; a sum that would pass `u64::MAX` is shown as `u64::MAX` (an
//!   asset's supply over all shards above 2^64 - 1 smallest units).

use std::collections::VecDeque;

use veloz_core::{AccountId, Asset};
use veloz_wire::{AssetBalance, BalanceReport, ShardBalance};

/// Balance requests one session may have in flight.
pub const MAX_PENDING: usize = 16;

/// The configured assets, ascending by id (empty: the engine runs without money): the money
/// rules' own list ([`veloz_config::Config::risk`]).
pub fn assets(config: &veloz_config::Config) -> Vec<Asset> {
    let mut v = config.risk().map(|r| r.assets).unwrap_or_default();
    v.sort_unstable_by_key(|a| a.id);
    v
}

/// One balance request waiting for its shards.
#[derive(Debug)]
pub struct Gather {
    pub request_id: u64,
    by_shard: bool,
    /// Per shard: its `BalanceEnd` arrived.
    ended: Vec<bool>,
    /// Non-zero slices so far, in arrival order.
    slices: Vec<ShardBalance>,
}

impl Gather {
    /// The report of this request for `account`, over `assets`.
    pub fn report<'a>(mut self, account: AccountId, assets: &'a [Asset]) -> BalanceReport<'a> {
        let balances = assets
            .iter()
            .map(|a| {
                let (mut available, mut held) = (0u64, 0u64);
                for s in self.slices.iter().filter(|s| s.asset == a.id) {
                    available = available.saturating_add(s.available);
                    held = held.saturating_add(s.held);
                }
                AssetBalance {
                    asset: a.id,
                    name: &a.name,
                    scale: a.scale,
                    available,
                    held,
                }
            })
            .collect();
        let slices = if self.by_shard {
            self.slices.sort_unstable_by_key(|s| (s.shard, s.asset));
            self.slices
        } else {
            Vec::new()
        };
        BalanceReport {
            request_id: self.request_id,
            account,
            reject_reason: None,
            balances,
            slices,
        }
    }
}

/// A session's balance requests in flight, oldest first.
#[derive(Debug, Default)]
pub struct Gathers {
    pending: VecDeque<Gather>,
}

impl Gathers {
    /// A request about to go to `shards` shards; `false` (nothing started) when
    /// [`MAX_PENDING`] are in flight already.
    pub fn start(&mut self, request_id: u64, by_shard: bool, shards: usize) -> bool {
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        self.pending.push_back(Gather {
            request_id,
            by_shard,
            ended: vec![false; shards],
            slices: Vec::new(),
        });
        true
    }

    /// The oldest request shard `shard` has not ended.
    fn open_for(&mut self, shard: u16) -> Option<&mut Gather> {
        self.pending
            .iter_mut()
            .find(|g| g.ended.get(shard as usize) == Some(&false))
    }

    /// A slice from its shard.
    pub fn slice(&mut self, slice: ShardBalance) {
        if let Some(g) = self.open_for(slice.shard) {
            g.slices.push(slice);
        }
    }

    /// Shard `shard` has answered; returns the oldest request when every shard has.
    pub fn end(&mut self, shard: u16) -> Option<Gather> {
        let g = self.open_for(shard)?;
        g.ended[shard as usize] = true;
        if (self.pending.front()).is_some_and(|g| g.ended.iter().all(|&e| e)) {
            return self.pending.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veloz_core::AssetId;

    fn slice(shard: u16, asset: AssetId, available: u64, held: u64) -> ShardBalance {
        ShardBalance {
            shard,
            asset,
            available,
            held,
        }
    }

    fn assets() -> Vec<Asset> {
        [(1, "USD", 2), (2, "BTC", 8)]
            .into_iter()
            .map(|(id, name, scale)| Asset {
                id,
                name: name.into(),
                scale,
            })
            .collect()
    }

    #[test]
    fn slices_are_summed_per_asset_when_every_shard_has_answered() {
        let assets = assets();
        let mut g = Gathers::default();
        assert!(g.start(7, true, 2));
        g.slice(slice(1, 1, 500, 20));
        assert!(g.end(1).is_none(), "shard 0 has not answered");
        g.slice(slice(0, 1, 1_000, 0));
        g.slice(slice(0, 2, u64::MAX, 0));
        let done = g.end(0).expect("both shards answered");
        let r = done.report(9, &assets);
        assert_eq!((r.request_id, r.account, r.reject_reason), (7, 9, None));
        let got: Vec<_> = r
            .balances
            .iter()
            .map(|b| (b.asset, b.name, b.scale, b.available, b.held))
            .collect();
        assert_eq!(
            got,
            vec![(1, "USD", 2, 1_500, 20), (2, "BTC", 8, u64::MAX, 0)]
        );
        assert_eq!(
            r.slices,
            vec![
                slice(0, 1, 1_000, 0),
                slice(0, 2, u64::MAX, 0),
                slice(1, 1, 500, 20)
            ]
        );
    }

    #[test]
    fn answers_go_to_the_oldest_request_their_shard_has_not_ended() {
        let assets = assets();
        let mut g = Gathers::default();
        g.start(1, false, 2);
        g.start(2, false, 2);
        // Shard 1 answers both before shard 0 answers the first.
        g.slice(slice(1, 1, 10, 0));
        assert!(g.end(1).is_none());
        g.slice(slice(1, 1, 30, 0));
        assert!(g.end(1).is_none());
        assert!(g.end(0).map(|d| d.report(3, &assets).balances[0].available) == Some(10));
        g.slice(slice(0, 2, 5, 1));
        let second = g.end(0).expect("second complete").report(3, &assets);
        assert_eq!(second.request_id, 2);
        assert!(second.slices.is_empty(), "not asked by shard");
        assert_eq!(
            (second.balances[0].available, second.balances[1].held),
            (30, 1)
        );
    }

    #[test]
    fn at_most_max_pending_requests_wait() {
        let mut g = Gathers::default();
        for i in 0..MAX_PENDING {
            assert!(g.start(i as u64, false, 1));
        }
        assert!(!g.start(99, false, 1));
        assert!(g.end(0).is_some());
        assert!(g.start(99, false, 1));
    }

    #[test]
    fn without_money_the_report_is_empty() {
        let mut g = Gathers::default();
        g.start(4, false, 3);
        for s in 0..3 {
            let done = g.end(s);
            assert_eq!(done.is_some(), s == 2);
            if let Some(d) = done {
                let r = d.report(5, &[]);
                assert!(r.balances.is_empty() && r.slices.is_empty());
            }
        }
    }
}
