//! A shard's journal as the shard loop uses it: recovery through the engine at start,
//! append before apply, the durable watermark for releasing acknowledgements, and the
//! clean-shutdown checkpoint.
//!
//! Recovery and offline replay share [`veloz_journal::replay::apply_record`]: replaying the
//! journal *is* the recovery path (recovery applies records in warmed batches,
//! [`veloz_journal::replay::Batched`]: the same states, reached faster on a large book).
//! Recovery first loads the newest valid snapshot
//! ([`veloz_journal::snapshot::load_newest`]; bad ones are skipped with a warning naming the
//! file) and reads the journal from the segment holding the record after its sequence
//! ([`veloz_journal::open_after_snapshot`]): older segments are not read (they may be
//! archived or deleted by retention), later ones are verified as always (CRC, sequence, chain,
//! chain head). Without a snapshot every record is read from the first segment.
//!
//! The journal is generic over its [`Storage`] backend: production uses [`MmapStorage`]
//! (monomorphised, no dynamic dispatch per append); tests use the in-memory and
//! fault-injecting backends of `veloz_journal`.
//!
//! Invariants: a command is appended before it is applied; after the clean-shutdown
//! checkpoint the journal is closed and every later append fails.

use std::path::Path;

use veloz_core::{Engine, Seq, Timestamp};
use veloz_journal::replay::{Batched, RecoverError};

use crate::snapshotter::{SnapshotStats, Snapshotter};
use veloz_config::SnapshotConfig;
use veloz_journal::snapshot;
use veloz_journal::writer::Writer;
use veloz_journal::{
    Checkpoint, CheckpointReason, JournalConfig, JournalError, MmapStorage, OpenOptions,
    RecordBody, RetentionMode, Storage, SyncScheduling,
};

/// What recovery did, for the start-up log.
#[derive(Debug)]
pub struct Recovered {
    /// Commands applied (after the snapshot, if one was loaded).
    pub commands: u64,
    /// Records applied after the snapshot (all records without one).
    pub replayed: u64,
    /// The snapshot loaded (the file as shown) and the sequence it covers.
    pub snapshot: Option<(String, Seq)>,
    /// Last sequence number in the journal (0 when empty).
    pub last_seq: Seq,
    pub warnings: Vec<String>,
}

/// The shard's journal writer (`None` once closed at shutdown).
#[derive(Debug)]
pub struct ShardJournal<S: Storage = MmapStorage> {
    writer: Option<Writer<S>>,
    /// The shard directory (for snapshots).
    storage: S,
    /// Periodic snapshots, once enabled.
    snapshots: Option<Snapshotter>,
    /// `checkpoint_every_records` (0: no periodic checkpoints).
    checkpoint_every: u64,
}

impl ShardJournal<MmapStorage> {
    /// Open `data_dir/shard-N/`, replaying every record into `engine`. With `repair`, a
    /// corruption in the middle of the journal is cut off (what is cut is kept aside and
    /// reported as a warning) instead of refusing to start.
    pub fn recover_dir(
        data_dir: &Path,
        config: &JournalConfig,
        shard: u16,
        repair: bool,
        engine: &mut Engine,
    ) -> Result<(ShardJournal, Recovered), RecoverError> {
        let storage =
            MmapStorage::for_shard(data_dir, shard).map_err(|source| RecoverError::Dir {
                dir: veloz_journal::shard_dir(data_dir, shard)
                    .display()
                    .to_string(),
                source,
            })?;
        ShardJournal::recover(storage, config, shard, repair, engine)
    }
}

impl<S: Storage> ShardJournal<S> {
    /// Open the journal in `storage`, replaying every record into `engine` (see
    /// [`ShardJournal::recover_dir`] for `repair`).
    pub fn recover(
        storage: S,
        config: &JournalConfig,
        shard: u16,
        repair: bool,
        engine: &mut Engine,
    ) -> Result<(ShardJournal<S>, Recovered), RecoverError> {
        let (loaded, skipped) = snapshot::load_newest(&storage, shard, engine, None);
        let mut warnings: Vec<String> = skipped.iter().map(|w| w.to_string()).collect();
        let mut from = 0;
        let snapshot = loaded.map(|l| {
            // The loaded engine keeps the report window the caller asked for, so that the
            // records replayed after the snapshot fill it for resend.
            let retention = engine.report_retention();
            *engine = l.engine;
            engine.set_report_retention(retention);
            from = l.header.seq;
            (l.file, l.header.seq)
        });
        let (mut commands, mut replayed) = (0u64, 0u64);
        let mut mismatch = None;
        let dir = storage.clone();
        // Applied in warmed batches (`Batched`): the same state, reached faster on a large
        // book; flushed below, before anything reads the engine.
        let mut batched = Batched::new();
        let visit = |rec: &veloz_journal::Record| {
            if mismatch.is_some() || rec.seq <= from {
                return;
            }
            replayed += 1;
            if matches!(rec.body, RecordBody::Command(_)) {
                commands += 1;
            }
            if let Err(e) = batched.push(engine, rec) {
                mismatch = Some(e);
            }
        };
        let options = OpenOptions { repair };
        let (writer, report) = match &snapshot {
            Some(_) => {
                veloz_journal::open_after_snapshot(storage, shard, config, options, from, visit)?
            }
            None => veloz_journal::open_with(storage, shard, config, options, visit)?,
        };
        if mismatch.is_none() {
            mismatch = batched.flush(engine).err();
        }
        if let Some(e) = mismatch {
            return Err(e);
        }
        let last_seq = report.last_seq.unwrap_or(0);
        if let Some((file, seq)) = &snapshot {
            if last_seq < *seq {
                return Err(RecoverError::SnapshotBeyondJournal {
                    file: file.clone(),
                    seq: *seq,
                    last_seq,
                });
            }
        }
        warnings.extend(report.warnings.iter().map(|w| w.to_string()));
        if let SyncScheduling::Normal { why: Some(_) } = writer.sync_scheduling() {
            warnings.push(format!("journal sync thread: {}", writer.sync_scheduling()));
        }
        Ok((
            ShardJournal {
                writer: Some(writer),
                storage: dir,
                snapshots: None,
                checkpoint_every: config.checkpoint_every_records,
            },
            Recovered {
                commands,
                replayed,
                snapshot,
                last_seq,
                warnings,
            },
        ))
    }

    /// Take snapshots as `config` says from now on: a helper thread keeps a shadow of
    /// `engine` (the state just recovered) in step with the durable journal and writes them
    /// (see [`Snapshotter`]); the shard's path gets no hook. Call once, after recovery and
    /// before serving (it serializes `engine` once), on the thread whose CPU mask the helper
    /// should inherit.
    pub fn enable_snapshots(
        &mut self,
        config: &SnapshotConfig,
        retention: RetentionMode,
        engine: &Engine,
    ) {
        let Some(writer) = &self.writer else {
            return;
        };
        let last = writer.next_seq().saturating_sub(1);
        self.snapshots = Snapshotter::start(
            config,
            retention,
            self.storage.clone(),
            writer.watermark(),
            engine,
            last,
        );
    }

    /// What the snapshot helper did (snapshots written, failures); `None` when off.
    pub fn snapshot_stats(&self) -> Option<&SnapshotStats> {
        self.snapshots.as_ref().map(|s| s.stats())
    }

    /// Append a command before it is applied; returns its sequence number.
    #[inline]
    pub fn append(
        &mut self,
        ts: Timestamp,
        cmd: &veloz_core::Command,
    ) -> Result<Seq, JournalError> {
        match &mut self.writer {
            Some(w) => w.append_command(ts, cmd),
            None => Err(JournalError::Poisoned(
                "the journal was closed at shutdown".into(),
            )),
        }
    }

    /// Whether a periodic checkpoint is due after record `seq` (`checkpoint_every_records`).
    #[inline]
    pub fn checkpoint_due(&self, seq: Seq) -> bool {
        self.checkpoint_every != 0 && seq.is_multiple_of(self.checkpoint_every)
    }

    /// Append a periodic checkpoint with `state_hash` (the state after every record before
    /// it); returns its sequence number.
    pub fn append_periodic_checkpoint(
        &mut self,
        ts: Timestamp,
        state_hash: u64,
    ) -> Result<Seq, JournalError> {
        let checkpoint = Checkpoint {
            state_hash,
            reason: CheckpointReason::Periodic,
        };
        match &mut self.writer {
            Some(w) => w.append_checkpoint(ts, &checkpoint),
            None => Err(JournalError::Poisoned("the journal is closed".into())),
        }
    }

    /// Append a record exactly as the primary journaled it (a standby following the
    /// primary's stream; see [`Writer::append_raw`]).
    pub fn append_raw(&mut self, raw: &[u8]) -> Result<Seq, JournalError> {
        match &mut self.writer {
            Some(w) => w.append_raw(raw),
            None => Err(JournalError::Poisoned("the journal is closed".into())),
        }
    }

    /// The handle replication advances (`durability = "replicated"`).
    pub fn replica_progress(&self) -> Option<veloz_journal::ReplicaProgress> {
        self.writer.as_ref().map(|w| w.replica_progress())
    }

    /// Close without a checkpoint, everything written made durable (a standby handing its
    /// journal to the shard that recovers it).
    pub fn close(mut self) -> Result<Seq, JournalError> {
        let closed = match self.writer.take() {
            Some(w) => w.close(),
            None => Ok(0),
        };
        if let Some(s) = &mut self.snapshots {
            s.finish();
        }
        closed
    }

    /// Why the journal refuses appends now (disk full, a write or sync error, being
    /// retried), or `None` while it takes them; see [`Writer::unavailable`].
    pub fn unavailable(&mut self) -> Option<String> {
        self.writer.as_mut().and_then(|w| w.unavailable())
    }

    /// Highest sequence number whose record is durable (with `durability = "none"`: written).
    #[inline]
    pub fn durable_seq(&self) -> Seq {
        self.writer.as_ref().map_or(Seq::MAX, |w| w.durable_seq())
    }

    /// Group commit driven by the shard ([`veloz_journal::SyncDriver::Caller`]): the next
    /// sync to run, when one is due and none is in flight.
    pub fn sync_due(&mut self) -> Option<veloz_journal::SyncJob> {
        self.writer.as_mut().and_then(|w| w.sync_due())
    }

    /// [`ShardJournal::sync_due`] at `now` (monotonic): a caller with its own clock (a
    /// simulation) decides when a partial page has waited long enough.
    pub fn sync_due_at(&mut self, now: std::time::Instant) -> Option<veloz_journal::SyncJob> {
        self.writer.as_mut().and_then(|w| w.sync_due_at(now))
    }

    /// Stepped journal helpers ([`veloz_journal::HelperDriver::Stepped`], the fault
    /// simulation): run up to `passes` passes of each at `now`; see
    /// [`veloz_journal::Writer::step_helpers`].
    pub fn step_helpers(&mut self, now: std::time::Instant, passes: u32) -> u32 {
        self.writer
            .as_mut()
            .map_or(0, |w| w.step_helpers(now, passes))
    }

    /// The outcome of a sync [`ShardJournal::sync_due`] handed out.
    pub fn sync_completed(&mut self, job: veloz_journal::SyncJob, result: std::io::Result<()>) {
        if let Some(w) = self.writer.as_mut() {
            w.sync_completed(job, result);
        }
    }

    /// The writer's counters (records and bytes appended since it opened).
    pub fn stats(&self) -> veloz_journal::writer::WriterStats {
        self.writer.as_ref().map(|w| w.stats()).unwrap_or_default()
    }

    /// Write the clean-shutdown checkpoint and make everything durable. Returns the
    /// checkpoint's sequence number (the journal's last).
    pub fn checkpoint_and_close(
        &mut self,
        ts: Timestamp,
        state_hash: u64,
    ) -> Result<Seq, JournalError> {
        let Some(mut writer) = self.writer.take() else {
            return Err(JournalError::Poisoned(
                "the journal was already closed".into(),
            ));
        };
        let seq = writer.append_checkpoint(
            ts,
            &Checkpoint {
                state_hash,
                reason: CheckpointReason::CleanShutdown,
            },
        )?;
        writer.close()?;
        if let Some(s) = &mut self.snapshots {
            s.finish();
        }
        Ok(seq)
    }
}
