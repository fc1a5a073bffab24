//! `[snapshot]`: when a shard writes a snapshot of its state (`docs/journal-format.md`,
//! "Snapshots"), so that a restart replays only the journal after the newest one.

use serde::{Deserialize, Serialize};

/// `[snapshot]`: how often each shard snapshots its engine, and how many snapshots it keeps.
///
/// A snapshot is taken when either trigger fires (0 disables that trigger; both 0 disables
/// snapshots). The shard serializes its engine on its own core (about 56 bytes per resting
/// order) and a helper thread writes and fsyncs the file once the journal is durable up to its
/// sequence. Journal segments are never deleted because of a snapshot.
///
/// Off by default: serializing stalls the shard's order loop for about 0.26 s per million
/// resting orders (docs/BENCHMARKS.md, "Snapshots"), far beyond the order path's latency
/// budget, until the shard hands the helper a copy instead of serializing itself. Turn it on
/// where restart time matters more than that pause, or for small books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Take a snapshot after this many journal records since the last one (0: never by count).
    pub every_records: u64,
    /// Take a snapshot when this many milliseconds have passed since the last one and records
    /// were journaled meanwhile (0: never by time).
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
            "off by default (the shard's serialization pause)"
        );
        let on: SnapshotConfig = toml::from_str("every_records = 1000").unwrap();
        assert!(on.enabled());
        let by_time: SnapshotConfig = toml::from_str("every_ms = 5000").unwrap();
        assert!(by_time.enabled());
        assert!(toml::from_str::<SnapshotConfig>("archive = true").is_err());
    }
}
