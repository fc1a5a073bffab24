//! Replaying journal records through the matching engine: the one code path recovery and
//! offline replay (`veloz replay`, the audit) share. Replaying the journal *is* recovery.
//!
//! A checkpoint record met during replay must carry the state hash the engine has at that
//! point; a difference means the journal and the engine disagree, and replay refuses to
//! continue.

use veloz_core::{Engine, Event, Seq};

use crate::{JournalError, Record, RecordBody};

/// Recovery failures beyond the journal's own errors.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot open the journal directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("snapshot {file} covers sequence {seq} but the journal ends at sequence {last_seq}: refusing to start from state the journal does not hold (move the snapshot aside to replay the journal alone)")]
    SnapshotBeyondJournal {
        file: String,
        seq: Seq,
        last_seq: Seq,
    },
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
