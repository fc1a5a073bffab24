//! `[journal]` configuration: segment size and durability.
//!
//! Every field has a default (`#[serde(default)]`), unknown keys are refused, and
//! [`JournalConfig::validate`] checks what serde cannot. A test pins the defaults.

use serde::{Deserialize, Serialize};

use super::format::{MAX_RECORD_LEN, SEGMENT_HEADER_LEN};

/// Segment sizes are multiples of this (the page size on the hosts Veloz runs on).
pub const SEGMENT_ALIGN: u64 = 4096;
/// Largest accepted segment size (offsets inside a segment must stay below 2^40).
pub const MAX_SEGMENT_SIZE: u64 = 64 << 30;

/// When a journaled record counts as durable (see `docs/journal-format.md`, "Writing and
/// durability").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Page cache only: a record survives a process crash as soon as it is copied into the
    /// mapping, not a power loss. Acknowledgements go out at once.
    None,
    /// Group commit: a sync thread flushes each batch's range to disk; acknowledgements are
    /// released only when their range is durable.
    Group,
    /// Replicated: the local journal is written and synced as with `Group`, and every record
    /// is also published to the shard's NATS JetStream stream (`[replication]`);
    /// acknowledgements are released only when JetStream has acknowledged the batch holding
    /// their record (see `docs/replication.md`). The replication thread advances the
    /// watermark through [`crate::ReplicaProgress`].
    Replicated,
}

impl Durability {
    /// Whether the local journal runs group-commit syncs (`Group` and `Replicated`).
    pub fn syncs_locally(self) -> bool {
        matches!(self, Durability::Group | Durability::Replicated)
    }
}

/// Who runs group-commit syncs (`durability = "group"`; ignored with `"none"`). See the
/// writer's module docs, "Who syncs".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncDriver {
    /// A helper thread per shard syncs written ranges and advances the durable watermark
    /// (woken every `group_max_wait_us`, or by the writer after `group_max_batch` records;
    /// `SCHED_FIFO` when `sync_realtime`). The default.
    #[default]
    Thread,
    /// The writer's caller (the shard loop, which owns an io_uring) runs each sync itself,
    /// asynchronously: it asks [`Writer::sync_due`](crate::Writer::sync_due) every pass,
    /// submits the job (`IORING_OP_FSYNC`, datasync, with its range) and hands the outcome
    /// to [`Writer::sync_completed`](crate::Writer::sync_completed). The helper thread only
    /// arms pages, under the normal scheduler (`sync_realtime` and `group_max_batch` do not
    /// apply).
    Caller,
}

/// Who runs the journal's helpers: the preparer (spares, renames, the chain head) and the
/// helper "sync" thread (arming pages ahead of the writer, and group commit with
/// [`SyncDriver::Thread`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelperDriver {
    /// A thread each, per shard. The default, and the only choice of a running engine.
    #[default]
    Threads,
    /// No threads: the writer's caller runs their passes with
    /// [`Writer::step_helpers`](crate::Writer::step_helpers), by its own clock, and nothing
    /// else moves them (a rollover that finds no spare runs the preparer itself). For
    /// deterministic simulation (`crates/veloz-engine/tests/fault_sim.rs`): the caller
    /// decides when a spare is reserved, a segment renamed, a page armed or a thread-driven
    /// group-commit sync made, so that one seed always takes the same path.
    Stepped {
        /// The caller's clock when the writer opens: the helpers' time starts there and
        /// moves only with `step_helpers`.
        clock: std::time::Instant,
    },
}

/// The journal of each shard (`[journal]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// Size of each preallocated segment file in bytes; a multiple of 4096, at least 4096,
    /// at most 64 GiB. Default 256 MiB.
    pub segment_size: u64,
    /// `"none"` (page cache) or `"group"` (group commit). Default `"group"`.
    pub durability: Durability,
    /// Group commit: the writer wakes the sync thread as soon as this many records are waiting
    /// to be synced. At least 1. Default 4096.
    pub group_max_batch: u32,
    /// Group commit: the longest a written record waits before a sync covering it starts (the
    /// sync thread's polling period while idle), in microseconds. 10..=1_000_000. Default 200.
    pub group_max_wait_us: u64,
    /// Group commit: run each shard's sync thread at the lowest real-time priority
    /// (`SCHED_FIFO` 1), so that acknowledgements do not wait for a core behind busy-polling
    /// threads. Needs `CAP_SYS_NICE` (root) or an `RLIMIT_RTPRIO` of at least 1; without it
    /// the thread runs normally and the start-up log says why. Default `true`.
    pub sync_realtime: bool,
    /// Group commit: when the shard's network runs on its own io_uring, submit the syncs on
    /// that ring from the shard loop (no sync thread; the helper thread only arms pages).
    /// `false`: a sync thread per shard, as on std sockets. Default `false`: measured inside
    /// the engine, acknowledgements wait far longer on the ring than with the sync thread
    /// (docs/BENCHMARKS.md, "Journal sync on the ring"). The engine turns this into
    /// [`JournalConfig::sync_driver`].
    pub sync_on_ring: bool,
    /// A periodic checkpoint record (the state hash after every command before it) after
    /// every this many records; 0: none (the default). Recovery, `veloz replay --verify` and a
    /// standby (`durability = "replicated"`) compare their state with each, so a divergence
    /// is caught within this many records. Each costs the shard one walk of its books
    /// (proportional to the resting orders). 0 or 1000..=100000000.
    pub checkpoint_every_records: u64,
    /// Who runs the syncs: set by whoever opens the writer (the engine picks
    /// [`SyncDriver::Caller`] when its shard has a ring and `sync_on_ring`), never read from a
    /// file: a caller that does not drive syncs would hold every acknowledgement.
    #[serde(skip)]
    pub sync_driver: SyncDriver,
    /// Who runs the preparer and the helper thread's work: set by whoever opens the writer
    /// (threads, except in the fault simulation), never read from a file: nothing would run
    /// them.
    #[serde(skip)]
    pub helpers: HelperDriver,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            segment_size: 256 << 20,
            durability: Durability::Group,
            group_max_batch: 4096,
            group_max_wait_us: 200,
            sync_realtime: true,
            sync_on_ring: false,
            checkpoint_every_records: 0,
            sync_driver: SyncDriver::Thread,
            helpers: HelperDriver::Threads,
        }
    }
}

/// A configuration value out of range; names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal.{field} = {value} is invalid: {why}")]
pub struct JournalConfigError {
    pub field: &'static str,
    pub value: u64,
    pub why: &'static str,
}

impl JournalConfig {
    /// Whether group commit's syncs run on the shard's ring: group durability,
    /// `sync_on_ring`, and a shard whose network runs on io_uring (`ring`).
    pub fn syncs_on_ring(&self, ring: bool) -> bool {
        ring && self.sync_on_ring && self.durability == Durability::Group
    }

    /// Check ranges serde cannot express.
    pub fn validate(&self) -> Result<(), JournalConfigError> {
        let err = |field, value, why| Err(JournalConfigError { field, value, why });
        if self.segment_size < SEGMENT_ALIGN
            || self.segment_size < (SEGMENT_HEADER_LEN + MAX_RECORD_LEN) as u64
        {
            return err(
                "segment_size",
                self.segment_size,
                "must be at least 4096 bytes",
            );
        }
        if !self.segment_size.is_multiple_of(SEGMENT_ALIGN) {
            return err(
                "segment_size",
                self.segment_size,
                "must be a multiple of 4096",
            );
        }
        if self.segment_size > MAX_SEGMENT_SIZE {
            return err("segment_size", self.segment_size, "must be at most 64 GiB");
        }
        if self.group_max_batch == 0 {
            return err("group_max_batch", 0, "must be at least 1");
        }
        if !(10..=1_000_000).contains(&self.group_max_wait_us) {
            return err(
                "group_max_wait_us",
                self.group_max_wait_us,
                "must be between 10 and 1000000",
            );
        }
        let every = self.checkpoint_every_records;
        if every != 0 && !(1_000..=100_000_000).contains(&every) {
            return err(
                "checkpoint_every_records",
                every,
                "must be 0 (none) or between 1000 and 100000000",
            );
        }
        Ok(())
    }

    /// The same configuration with `durability = "none"` (tests, tools).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same configuration with another segment size (tests, tools).
    pub fn with_segment_size(mut self, segment_size: u64) -> Self {
        self.segment_size = segment_size;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pinned() {
        let d = JournalConfig::default();
        assert_eq!(d.segment_size, 268_435_456);
        assert_eq!(d.durability, Durability::Group);
        assert_eq!(d.group_max_batch, 4096);
        assert_eq!(d.group_max_wait_us, 200);
        assert!(d.sync_realtime);
        assert!(!d.sync_on_ring);
        assert_eq!(d.sync_driver, SyncDriver::Thread);
        d.validate().unwrap();
        // An empty section is the default.
        let parsed: JournalConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, d);
    }

    #[test]
    fn parses_and_refuses_unknown_fields() {
        let c: JournalConfig =
            toml::from_str("segment_size = 65536\ndurability = \"none\"\ngroup_max_batch = 10\n")
                .unwrap();
        assert_eq!(c.segment_size, 65536);
        assert_eq!(c.durability, Durability::None);
        assert_eq!(c.group_max_batch, 10);
        assert_eq!(c.group_max_wait_us, 200);
        let c: JournalConfig = toml::from_str("sync_on_ring = true\n").unwrap();
        assert!(c.sync_on_ring);
        // Who drives the syncs is the opener's choice, never the file's.
        let e = toml::from_str::<JournalConfig>("sync_driver = \"caller\"").unwrap_err();
        assert!(e.to_string().contains("unknown field `sync_driver`"), "{e}");
        let e = toml::from_str::<JournalConfig>("segment_sise = 1").unwrap_err();
        assert!(
            e.to_string().contains("unknown field `segment_sise`"),
            "{e}"
        );
        let e = toml::from_str::<JournalConfig>("durability = \"fsync\"").unwrap_err();
        assert!(e.to_string().contains("unknown variant `fsync`"), "{e}");
    }

    #[test]
    fn validate_names_field_and_value() {
        let c = JournalConfig::default().with_segment_size(5000);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "journal.segment_size = 5000 is invalid: must be a multiple of 4096"
        );
        let c = JournalConfig::default().with_segment_size(0);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "journal.segment_size = 0 is invalid: must be at least 4096 bytes"
        );
        let c = JournalConfig {
            group_max_wait_us: 5,
            ..JournalConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "journal.group_max_wait_us = 5 is invalid: must be between 10 and 1000000"
        );
        let c = JournalConfig {
            group_max_batch: 0,
            ..JournalConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
