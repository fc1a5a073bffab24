//! `[snapshot]`: when a shard writes a snapshot of its state (`docs/journal-format.md`,
//! "Snapshots"), so that a restart replays only the journal after the newest one.

use serde::{Deserialize, Serialize};

/// `[snapshot]`: how often each shard snapshots its engine, and how many snapshots it keeps.
///
/// A snapshot is taken when either trigger fires (0 disables that trigger; both 0 disables
/// snapshots). Each shard's snapshot helper thread (`veloz_engine::snapshotter`, on the helper
/// cores) keeps a shadow copy of the engine that follows the journal up to its durable
/// watermark, and writes the snapshot from that copy; the shard's order loop does no snapshot
/// work, so snapshots do not stall it (docs/BENCHMARKS.md, "Snapshots"). What they cost instead:
/// a second engine per shard in memory (as large as the shard's own: about 130-160 bytes per
/// resting order, ~150 MB per million, estimated from its structures), the matching work of
/// every command a second time on the helper's core, and per snapshot one state-hash walk and
/// one serialization (~0.5 s per million resting orders) plus the file write. Where no core is
/// spare (`cores = []`, a shard on every core), the helper shares the shards' cores like the
/// journal's own helper threads. Journal segments are never deleted by the snapshot helper.
///
/// Off by default. The shard no longer pauses, but on the 2-vCPU development host (no isolated
/// cores, other builds running) the order path's p99.9 with the helper running was 1.3-2.8x
/// that of runs without it (medians; a snapshot of a 200k-order book every 2 s, or the helper
/// only following the journal), not within the 10 % target (docs/BENCHMARKS.md, "Snapshots"):
/// there the helper's CPU competes with the load generator and the shard for the two cores.
/// Turn them on (e.g. `every_ms = 60000`) where a helper core is spare, or where restart time
/// matters more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Take a snapshot after this many journal records since the last one (0: never by count):
    /// exactly every N sequence numbers after the journal end found at start-up.
    pub every_records: u64,
    /// Take a snapshot when this many milliseconds (wall clock, on the helper thread) have passed
    /// since the last one and records were journaled meanwhile (0: never by time).
    pub every_ms: u64,
    /// Snapshots kept per shard, newest first (at least 1 is always kept).
    pub keep: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            every_records: 0,
            every_ms: 0,
            keep: 2,
        }
    }
}

impl SnapshotConfig {
    /// `true` if either trigger is set.
    pub fn enabled(&self) -> bool {
        self.every_records > 0 || self.every_ms > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the defaults (also pinned as part of `Config::default()` in the crate's tests).
    #[test]
    fn defaults_are_pinned() {
        let c = SnapshotConfig::default();
        assert_eq!((c.every_records, c.every_ms, c.keep), (0, 0, 2));
        assert!(
            !c.enabled(),
            "off by default (docs/BENCHMARKS.md, \"Snapshots\")"
        );
        let on: SnapshotConfig = toml::from_str("every_records = 1000").unwrap();
        assert!(on.enabled());
        let by_time: SnapshotConfig = toml::from_str("every_ms = 5000").unwrap();
        assert!(by_time.enabled());
        assert!(toml::from_str::<SnapshotConfig>("archive = true").is_err());
    }
}
