//! One shard as a standby holds it: the engine and local journal recovered from disk, kept
//! in step with the shard's stream by applying each record through the replay code
//! ([`apply_record`], which checks the state hash at every checkpoint record) and appending
//! it, byte for byte, to the local journal.
//!
//! The stream is the truth. A local journal that ends in records the stream does not hold
//! (a primary that crashed or was fenced before they were replicated; no client was told of
//! them) or holds differently is a fork: [`ShardFollow::cut_fork`] moves the shard's
//! directory aside, named and logged, and the shard is rebuilt from the stream's start.
//!
//! A standby takes snapshots as `[snapshot]` says, as a primary does (a helper thread's
//! shadow engine follows its journal), so that its takeover replays only what follows the
//! newest one.

use std::path::{Path, PathBuf};

use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::{Engine, Event, Seq};
use veloz_journal::format::FORMAT_VERSION;
use veloz_journal::payload::decode_body;
use veloz_journal::replay::apply_record;
use veloz_journal::{Durability, MmapStorage, Record};
use veloz_replica::{batch, local, Cursor, Nats, ReplicaError, StreamEnd};

use crate::journal::ShardJournal;
use crate::ServeError;

/// What applying found.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Records applied (0: nothing new).
    Records(u64),
    /// The stream holds record `seq` differently from the local journal.
    Fork(Seq),
}

/// A shard followed from its stream.
pub struct ShardFollow {
    pub shard: u16,
    engine: Engine,
    journal: Option<ShardJournal>,
    storage: MmapStorage,
    /// Last record in the local journal (and applied to `engine`).
    pub last: Seq,
    pub cursor: Cursor,
    scratch: Vec<Event>,
    /// The local journal was changed (records appended or a fork cut): the clean-shutdown
    /// marker no longer describes it.
    pub changed: bool,
    data_dir: PathBuf,
    config: Config,
    routing: Routing,
}

impl std::fmt::Debug for ShardFollow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardFollow")
            .field("shard", &self.shard)
            .field("last", &self.last)
            .field("stream_next", &self.cursor.next)
            .finish_non_exhaustive()
    }
}

fn io_err(what: String, e: impl std::fmt::Display) -> ServeError {
    ServeError::Io {
        path: what,
        detail: e.to_string(),
    }
}

/// Build `shard`'s engine and recover it from the local journal (writer with local group
/// commit: a follower's durability is its own disk; the stream is the replicated copy).
fn recover(
    config: &Config,
    routing: &Routing,
    data_dir: &Path,
    shard: u16,
) -> Result<(Engine, ShardJournal, Seq), ServeError> {
    let mut engine = config.shard_engine(routing, shard as usize);
    engine.set_report_retention(config.gateway.resend_window);
    let journal_config = config.journal.clone().with_durability(Durability::Group);
    let (mut journal, recovered) =
        ShardJournal::recover_dir(data_dir, &journal_config, shard, false, &mut engine).map_err(
            |e| {
                ServeError::Shard(crate::shard::ShardError::Journal {
                    shard: shard as usize,
                    detail: e.to_string(),
                })
            },
        )?;
    // Snapshots as the primary takes them ([snapshot]): a takeover then replays only the
    // journal after the newest one.
    journal.enable_snapshots(&config.snapshot, config.retention.mode, &engine);
    Ok((engine, journal, recovered.last_seq))
}

impl ShardFollow {
    /// Recover the local journal and position the stream after its last record. `standby`:
    /// local records past the stream's end are a fork at once (another node leads; they
    /// can never be replicated).
    pub async fn open(
        config: &Config,
        routing: &Routing,
        data_dir: &Path,
        nats: &Nats,
        shard: u16,
        standby: bool,
    ) -> Result<ShardFollow, ServeError> {
        let (engine, journal, last) = recover(config, routing, data_dir, shard)?;
        let storage = MmapStorage::for_shard(data_dir, shard)
            .map_err(|e| io_err(format!("journal directory of shard {shard}"), e))?;
        let cursor = Cursor::new(nats.stream(shard).await?, 1);
        let mut f = ShardFollow {
            shard,
            engine,
            journal: Some(journal),
            storage,
            last,
            cursor,
            scratch: Vec::new(),
            changed: false,
            data_dir: data_dir.to_path_buf(),
            config: config.clone(),
            routing: routing.clone(),
        };
        let end = f.cursor.end().await?;
        let common = f.last.min(end.journal_seq);
        let forked = if common > 0 {
            let mine = local::record(&f.storage, shard, common)?;
            let theirs = f.cursor.record(common).await?;
            mine.as_deref() != Some(&theirs[..])
        } else {
            false
        };
        if forked {
            f.cut_fork(common, "differs from the stream's")?;
        } else if standby && f.last > end.journal_seq {
            let first = end.journal_seq + 1;
            f.cut_fork(first, "is not in the stream (never replicated)")?;
        }
        f.position(end).await?;
        Ok(f)
    }

    /// Point the cursor at the message holding the record after `last`.
    async fn position(&mut self, end: StreamEnd) -> Result<(), ServeError> {
        if self.last == 0 {
            let (first, _) = self.cursor.bounds().await?;
            self.cursor.next = first.max(1);
            if let Some(m) = self.cursor.get(self.cursor.next).await? {
                let span =
                    batch::span(&m.payload).map_err(|why| bad(&self.cursor, m.stream_seq, why))?;
                if let Some((a, _)) = span.filter(|(a, _)| *a > 1) {
                    return Err(ServeError::Replication(ReplicaError::Missing {
                        stream: self.cursor.name().to_string(),
                        seq: 1,
                        why: format!("it starts at record {a}: rebuild this node from a copy of the primary's data directory"),
                    }));
                }
            }
        } else if self.last >= end.journal_seq {
            self.cursor.next = end.stream_seq + 1;
        } else {
            self.cursor.next = self.cursor.locate(self.last + 1).await?;
        }
        Ok(())
    }

    /// Move the shard's local journal aside (kept, named in the log) and start it empty.
    pub fn cut_fork(&mut self, at: Seq, why: &str) -> Result<(), ServeError> {
        let shard = self.shard;
        if let Some(j) = self.journal.take() {
            drop(j);
        }
        let dir = veloz_journal::shard_dir(&self.data_dir, shard);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = self.data_dir.join(format!("shard-{shard}.forked-{secs}"));
        std::fs::rename(&dir, &aside).map_err(|e| {
            io_err(
                format!("{} (moving a forked journal aside)", dir.display()),
                e,
            )
        })?;
        tracing::warn!(
            target: "veloz::replica",
            shard,
            "shard {shard}: the local journal's record {at} {why}: its journal (to record {}) is kept in {} and the shard is rebuilt from its stream",
            self.last,
            aside.display()
        );
        let (engine, journal, last) = recover(&self.config, &self.routing, &self.data_dir, shard)?;
        self.engine = engine;
        self.journal = Some(journal);
        self.last = last;
        self.storage = MmapStorage::for_shard(&self.data_dir, shard)
            .map_err(|e| io_err(format!("journal directory of shard {shard}"), e))?;
        self.changed = true;
        Ok(())
    }

    /// Rebuild after [`Applied::Fork`]: cut, then read the stream from its start.
    pub async fn rebuild(&mut self, at: Seq) -> Result<(), ServeError> {
        self.cut_fork(at, "differs from the stream's")?;
        let end = self.cursor.end().await?;
        self.position(end).await
    }

    /// Apply up to `max_messages` new messages of the stream.
    pub async fn apply_new(&mut self, max_messages: usize) -> Result<Applied, ServeError> {
        let mut applied = 0;
        for _ in 0..max_messages {
            let Some(m) = self.cursor.next().await? else {
                break;
            };
            let recs =
                batch::records(&m.payload).map_err(|why| bad(&self.cursor, m.stream_seq, why))?;
            for r in recs {
                let seq = r.raw.seq;
                if seq <= self.last {
                    // Already here (a message holding records on both sides of the local end).
                    let mine = local::record(&self.storage, self.shard, seq)?;
                    if mine.as_deref() != Some(r.bytes) {
                        return Ok(Applied::Fork(seq));
                    }
                    continue;
                }
                if seq != self.last + 1 {
                    let why = format!("record {seq} follows record {} (a gap)", self.last);
                    return Err(bad(&self.cursor, m.stream_seq, why).into());
                }
                let journal = self.journal.as_mut().expect("open while following");
                journal.append_raw(r.bytes).map_err(|e| ServeError::Io {
                    path: format!("journal of shard {}", self.shard),
                    detail: e.to_string(),
                })?;
                let body = decode_body(FORMAT_VERSION, r.raw.rtype, r.raw.payload)
                    .map_err(|e| bad(&self.cursor, m.stream_seq, format!("record {seq}: {e}")))?;
                let rec = Record {
                    seq,
                    ts: r.raw.ts,
                    body,
                };
                apply_record(&mut self.engine, &rec, &mut self.scratch).map_err(|e| {
                    ServeError::Replication(ReplicaError::Journal {
                        shard: self.shard,
                        why: format!("the standby's state differs from the primary's: {e}"),
                    })
                })?;
                self.last = seq;
                self.changed = true;
                applied += 1;
            }
        }
        Ok(Applied::Records(applied))
    }

    /// The state hash of the followed engine.
    pub fn state_hash(&self) -> u64 {
        self.engine.state_hash()
    }

    /// Close the local journal (synced); the shard recovers it when it starts.
    pub fn close(mut self) -> Result<(), ServeError> {
        if let Some(j) = self.journal.take() {
            j.close().map_err(|e| ServeError::Io {
                path: format!("journal of shard {}", self.shard),
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }

    pub fn storage(&self) -> &MmapStorage {
        &self.storage
    }
}

fn bad(cursor: &Cursor, stream_seq: u64, why: String) -> ReplicaError {
    ReplicaError::BadMessage {
        stream: cursor.name().to_string(),
        stream_seq,
        why,
    }
}
