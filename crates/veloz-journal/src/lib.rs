//! The journal: one append-only, memory-mapped, CRC-checked log per shard.
//!
//! Every command a shard sequences is appended here before the matching core applies it, so
//! the shard's state can be rebuilt exactly: after a crash, at a restart (recovery replays the
//! journal through the engine) and offline for an audit. The byte layout is specified in
//! `docs/journal-format.md`; this module follows it.
//!
//! | module | what |
//! |---|---|
//! | [`format`](mod@format) | segment header and record bytes, CRCs, named offsets |
//! | [`payload`] | commands and checkpoints to bytes and back |
//! | [`layout`] | file names in a shard directory, the ordered segment list |
//! | [`chain`] | the chain head (the newest segment) and the check of the journal's end |
//! | [`backend`] | storage trait: mmap (the only `unsafe`), in-memory, fault-injecting |
//! | [`writer`] | appending, segment rollover, group commit, the durable watermark |
//! | [`reader`] | reading records in order from any sequence number, verifying each |
//! | [`recovery`] | opening for writing: verify, truncate a torn tail, refuse or repair corruption |
//! | [`config`] | the `[journal]` settings |
//! | [`lock`] | the data-directory lock: one writing process per data directory |
//! | [`snapshot`] | snapshot files: a shard's whole state at a sequence, found, checked, pruned |
//! | [`archive`] | retention: segments before the oldest kept snapshot compressed (zstd) or deleted |
//! | [`follow`] | reading a live journal's durable records as they come (the snapshot helper's shadow) |
//!
//! Typical use by a shard:
//! ```no_run
//! use veloz_journal::{JournalConfig, MmapStorage, OpenOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let storage = MmapStorage::for_shard(std::path::Path::new("data"), 0)?;
//! let (mut writer, report) =
//!     veloz_journal::open_with(storage, 0, &JournalConfig::default(), OpenOptions::default(), |rec| {
//!         // engine.apply(rec.seq, rec.ts, &cmd, &mut events) for each command
//!         let _ = rec;
//!     })?;
//! for w in &report.warnings {
//!     eprintln!("warning: {w}");
//! }
//! # let (ts, cmd) = (0, veloz_core::Command::MassCancel(veloz_core::MassCancel::requested(1, 1, None)));
//! let seq = writer.append_command(ts, &cmd)?;
//! // ... apply, and release the acks for everything up to writer.durable_seq()
//! # let _ = seq;
//! writer.close()?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]

pub mod archive;
pub mod backend;
pub mod chain;
pub mod config;
pub mod error;
pub mod follow;
pub mod format;
pub mod layout;
pub mod lock;
pub mod payload;
pub mod reader;
pub mod recovery;
pub mod replay;
pub mod snapshot;
pub mod writer;

pub use archive::{apply_retention, RetentionMode, RetentionOutcome};
pub use backend::{
    fs_space, shard_dir, FaultMode, FaultPlan, FaultStorage, MemStorage, MmapStorage, RangeSync,
    SegmentFile, Storage,
};
pub use config::{Durability, HelperDriver, JournalConfig, JournalConfigError, SyncDriver};
pub use error::{ChainBreak, Corruption, Following, JournalError, JournalWarning, SeqOrNone};
pub use format::RecordType;
pub use lock::{DataDirLock, LockError, LOCK_FILE};
pub use payload::{Checkpoint, CheckpointReason, PayloadError, Record, RecordBody};
pub use reader::{EndPosition, JournalReader};
pub use recovery::{open, open_after_snapshot, open_with, OpenOptions, RecoveryOutcome};
pub use writer::{DurableWatermark, ReplicaProgress, SyncJob, SyncScheduling, Writer, WriterStats};
