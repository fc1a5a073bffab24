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

/// Records per batch of [`Batched`]: enough commands for their cache misses to overlap, few
/// enough that what the first round reads is still cached when the batch is applied
/// (docs/BENCHMARKS.md, "Restart time": 8 to 64 measured alike, twice the rate of one by one;
/// the smallest keeps records applied soonest after they are read).
pub const WARM_BATCH: usize = 8;

/// [`apply_record`] over a stream of records, in batches of [`WARM_BATCH`], each warmed first
/// ([`Engine::warm`]: the places the batch will read are read ahead, so that their cache
/// misses overlap). The engine ends in the same state, and a checkpoint is checked against
/// the same state, as applying the records one by one: only when they are applied changes.
/// After [`Batched::push`] the engine may lag the records pushed by up to a batch;
/// [`Batched::flush`] brings it level. After an error nothing more is applied. A caller that
/// looks at each record as it is applied (the audit) passes a hook ([`Batched::push_with`]).
#[derive(Debug, Default)]
pub struct Batched {
    records: Vec<Record>,
    commands: Vec<veloz_core::Command>,
    scratch: Vec<Event>,
}

/// What a hook of [`Batched::push_with`] sees of each record.
#[derive(Debug)]
pub enum Step<'a> {
    /// The record is next: `engine` holds the state after every record before it.
    Before { engine: &'a Engine, rec: &'a Record },
    /// The record was applied, giving `events` (none for a checkpoint).
    After {
        rec: &'a Record,
        events: &'a [Event],
    },
}

impl Batched {
    pub fn new() -> Batched {
        Batched {
            records: Vec::with_capacity(WARM_BATCH),
            commands: Vec::with_capacity(WARM_BATCH),
            scratch: Vec::with_capacity(64),
        }
    }

    /// Queue `rec`; a full batch is warmed and applied.
    pub fn push(&mut self, engine: &mut Engine, rec: &Record) -> Result<(), RecoverError> {
        self.push_with(engine, rec, &mut |_| Ok(()), |e| e)
    }

    /// Warm and apply what is queued, in order; stops at the first checkpoint mismatch (the
    /// records after it are dropped, not applied).
    pub fn flush(&mut self, engine: &mut Engine) -> Result<(), RecoverError> {
        self.flush_with(engine, &mut |_| Ok(()), |e| e)
    }

    /// [`Batched::push`], calling `hook` before and after each record is applied; `lift`
    /// turns a replay error into the hook's error type. The first error (the hook's or the
    /// replay's) stops the batch: nothing after it is applied.
    pub fn push_with<E>(
        &mut self,
        engine: &mut Engine,
        rec: &Record,
        hook: &mut impl FnMut(Step<'_>) -> Result<(), E>,
        lift: impl Fn(RecoverError) -> E,
    ) -> Result<(), E> {
        self.records.push(*rec);
        if self.records.len() >= WARM_BATCH {
            self.flush_with(engine, hook, lift)
        } else {
            Ok(())
        }
    }

    /// [`Batched::flush`] with `hook` (see [`Batched::push_with`]).
    pub fn flush_with<E>(
        &mut self,
        engine: &mut Engine,
        hook: &mut impl FnMut(Step<'_>) -> Result<(), E>,
        lift: impl Fn(RecoverError) -> E,
    ) -> Result<(), E> {
        self.commands.clear();
        self.commands
            .extend(self.records.iter().filter_map(|r| match r.body {
                RecordBody::Command(c) => Some(c),
                RecordBody::Checkpoint(_) => None,
            }));
        engine.warm(&self.commands);
        let mut result = Ok(());
        for rec in &self.records {
            result = hook(Step::Before { engine, rec })
                .and_then(|()| apply_record(engine, rec, &mut self.scratch).map_err(&lift))
                .and_then(|()| {
                    hook(Step::After {
                        rec,
                        events: &self.scratch,
                    })
                });
            if result.is_err() {
                break;
            }
        }
        self.records.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{Checkpoint, CheckpointReason};
    use veloz_core::workload::{generate, synthetic_instruments, timestamp_of, WorkloadConfig};

    /// A seeded stream of every command kind over ten books (trades, cancels, moves), with a
    /// periodic checkpoint every 997 records carrying the hash one-by-one replay has there.
    fn records() -> (Vec<Record>, Vec<veloz_core::Instrument>) {
        let instruments = synthetic_instruments(10);
        let wl = generate(&WorkloadConfig::many_symbols(7, 30_000, 10), &instruments);
        let mut engine = wl.engine();
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        for cmd in wl.prefill.iter().chain(&wl.commands) {
            let seq = out.len() as Seq + 1;
            let body = if seq.is_multiple_of(997) {
                RecordBody::Checkpoint(Checkpoint {
                    state_hash: engine.state_hash(),
                    reason: CheckpointReason::Periodic,
                })
            } else {
                RecordBody::Command(*cmd)
            };
            let rec = Record {
                seq,
                ts: timestamp_of(seq),
                body,
            };
            apply_record(&mut engine, &rec, &mut scratch).unwrap();
            out.push(rec);
        }
        (out, instruments)
    }

    /// Batched replay reaches the state one-by-one replay does, passes the same checkpoints,
    /// and stops at a wrong one having applied exactly the records before it.
    #[test]
    fn batched_replay_matches_one_by_one() {
        let (mut recs, instruments) = records();
        let one_by_one = |recs: &[Record]| {
            let mut e = Engine::new(0, &instruments);
            let mut scratch = Vec::new();
            for r in recs {
                apply_record(&mut e, r, &mut scratch).unwrap();
            }
            e.state_hash()
        };
        let mut batched = Batched::new();
        let mut engine = Engine::new(0, &instruments);
        for r in &recs {
            batched.push(&mut engine, r).unwrap();
        }
        batched.flush(&mut engine).unwrap();
        assert_eq!(engine.state_hash(), one_by_one(&recs));
        assert!(recs.len() > 30_000 && engine.resting_orders() > 0);

        // With a hook: each record's events, and the state before every 1000th record, are
        // those of one-by-one replay.
        let (mut expected, mut hashes) = (Vec::new(), Vec::new());
        let mut e = Engine::new(0, &instruments);
        let mut scratch = Vec::new();
        for r in &recs {
            if r.seq % 1000 == 0 {
                hashes.push(e.state_hash());
            }
            apply_record(&mut e, r, &mut scratch).unwrap();
            expected.push(scratch.clone());
        }
        let (mut got, mut got_hashes) = (Vec::new(), Vec::new());
        let mut hook = |step: Step<'_>| -> Result<(), RecoverError> {
            match step {
                Step::Before { engine, rec } if rec.seq % 1000 == 0 => {
                    got_hashes.push(engine.state_hash())
                }
                Step::Before { .. } => {}
                Step::After { events, .. } => got.push(events.to_vec()),
            }
            Ok(())
        };
        let mut engine = Engine::new(0, &instruments);
        let mut batched = Batched::new();
        for r in &recs {
            batched.push_with(&mut engine, r, &mut hook, |e| e).unwrap();
        }
        batched.flush_with(&mut engine, &mut hook, |e| e).unwrap();
        assert!(got == expected && got_hashes == hashes && hashes.len() > 30);

        // A wrong checkpoint mid-batch: the error names it, the records after it stay out.
        let at = 997 * 20 - 1;
        let RecordBody::Checkpoint(c) = &mut recs[at].body else {
            panic!("record {at} is a checkpoint");
        };
        c.state_hash ^= 1;
        let mut engine = Engine::new(0, &instruments);
        let mut batched = Batched::new();
        let err = recs
            .iter()
            .find_map(|r| batched.push(&mut engine, r).err())
            .expect("the wrong checkpoint is refused");
        assert!(
            matches!(err, RecoverError::CheckpointMismatch { seq, .. } if seq == recs[at].seq),
            "{err}"
        );
        assert_eq!(engine.state_hash(), one_by_one(&recs[..at]));
    }
}
