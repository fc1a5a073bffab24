//! A shard's journal as the shard loop uses it: recovery through the engine at start,
//! append before apply, the durable watermark for releasing acknowledgements, and the
//! clean-shutdown checkpoint.
//!
//! Recovery and offline replay share [`apply_record`]: replaying the journal *is* the
//! recovery path. A checkpoint record met during replay must carry the state hash the engine
//! has at that point; a difference means the journal and the engine disagree, and recovery
//! refuses to continue.
#![forbid(unsafe_code)]

use std::path::Path;

use crate::core::{Engine, Event, Seq, Timestamp};
use crate::journal::writer::Writer;
use crate::journal::{
    self, Checkpoint, CheckpointReason, JournalConfig, JournalError, MmapStorage, OpenOptions,
    Record, RecordBody,
};

/// Recovery failures beyond the journal's own errors.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot open the journal directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("checkpoint at sequence {seq} records state hash {recorded:016x}, but replaying the journal up to it gives {replayed:016x}")]
    CheckpointMismatch {
        seq: Seq,
        recorded: u64,
        replayed: u64,
    },
}

/// Apply one journal record to `engine`; its events replace what `scratch` held (a
/// checkpoint leaves it empty). Returns
/// the mismatch if the record is a checkpoint whose hash differs from the engine's.
pub fn apply_record(
    engine: &mut Engine,
    rec: &Record,
    scratch: &mut Vec<Event>,
) -> Result<(), RecoverError> {
    scratch.clear();
    match rec.body {
        RecordBody::Command(cmd) => {
            engine.apply(rec.seq, rec.ts, &cmd, scratch);
            Ok(())
        }
        RecordBody::Checkpoint(c) => {
            let replayed = engine.state_hash();
            if replayed == c.state_hash {
                Ok(())
            } else {
                Err(RecoverError::CheckpointMismatch {
                    seq: rec.seq,
                    recorded: c.state_hash,
                    replayed,
                })
            }
        }
    }
}

/// What recovery did, for the start-up log.
#[derive(Debug)]
pub struct Recovered {
    pub commands: u64,
    /// Last sequence number in the journal (0 when empty).
    pub last_seq: Seq,
    pub warnings: Vec<String>,
}

/// The shard's journal writer (`None` once closed at shutdown).
pub struct ShardJournal {
    writer: Option<Writer<MmapStorage>>,
}

impl ShardJournal {
    /// Open `data_dir/shard-N/`, replaying every record into `engine`. With `repair`, a
    /// corruption in the middle of the journal is cut off (what is cut is kept aside and
    /// reported as a warning) instead of refusing to start.
    pub fn recover(
        data_dir: &Path,
        config: &JournalConfig,
        shard: u16,
        repair: bool,
        engine: &mut Engine,
    ) -> Result<(ShardJournal, Recovered), RecoverError> {
        let storage =
            MmapStorage::for_shard(data_dir, shard).map_err(|source| RecoverError::Dir {
                dir: journal::shard_dir(data_dir, shard).display().to_string(),
                source,
            })?;
        let mut scratch = Vec::with_capacity(64);
        let mut commands = 0u64;
        let mut mismatch = None;
        let (writer, report) =
            journal::open_with(storage, shard, config, OpenOptions { repair }, |rec| {
                if mismatch.is_some() {
                    return;
                }
                if matches!(rec.body, RecordBody::Command(_)) {
                    commands += 1;
                }
                if let Err(e) = apply_record(engine, rec, &mut scratch) {
                    mismatch = Some(e);
                }
            })?;
        if let Some(e) = mismatch {
            return Err(e);
        }
        Ok((
            ShardJournal {
                writer: Some(writer),
            },
            Recovered {
                commands,
                last_seq: report.last_seq.unwrap_or(0),
                warnings: report.warnings.iter().map(|w| w.to_string()).collect(),
            },
        ))
    }

    /// Append a command before it is applied; returns its sequence number.
    #[inline]
    pub fn append(
        &mut self,
        ts: Timestamp,
        cmd: &crate::core::Command,
    ) -> Result<Seq, JournalError> {
        match &mut self.writer {
            Some(w) => w.append_command(ts, cmd),
            None => Err(JournalError::Poisoned(
                "the journal was closed at shutdown".into(),
            )),
        }
    }

    /// Highest sequence number whose record is durable (with `durability = "none"`: written).
    #[inline]
    pub fn durable_seq(&self) -> Seq {
        self.writer.as_ref().map_or(Seq::MAX, |w| w.durable_seq())
    }

    /// The writer's counters (records and bytes appended since it opened).
    pub fn stats(&self) -> crate::journal::writer::WriterStats {
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
        Ok(seq)
    }
}
