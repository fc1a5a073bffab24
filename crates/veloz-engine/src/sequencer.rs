//! The sequencer: the only writer of a shard's book. It takes the commands for the shard's
//! instruments in arrival order, gives each the shard's next sequence number and a
//! timestamp, appends it to the journal and then applies it to the engine, and returns the
//! sequence number with the events the engine produced.
//!
//! Invariants:
//! - write-ahead: a command reaches the book only after its journal append succeeded; a
//!   failed append leaves the book as it was and is returned as an error: while the journal
//!   is unavailable ([`SequencerError::Unavailable`]) the command comes back to be rejected
//!   and takes no sequence number; any other failure stops the shard (recovery restores
//!   what was journaled);
//! - sequence numbers are the journal's: consecutive, one per command;
//! - the matching core reads no clock: sequence and timestamp go in with the command, so
//!   replaying the journal gives the same events;
//! - the durable watermark ([`Sequencer::durable_seq`]) only moves forward.
//!
//! Generic over the journal's [`Storage`] so that tests run it over `MemStorage` and
//! `FaultStorage`; production uses `MmapStorage` (monomorphised, no dynamic dispatch).

use std::collections::VecDeque;

use veloz_core::{AccountId, Assigned, ClientOrderId, Command, Engine, Event, Seq, Timestamp};
use veloz_journal::writer::WriterStats;
use veloz_journal::{JournalError, MmapStorage, Storage};

use super::io::Clock;
use super::journal::ShardJournal;
use super::mesh::{Inbound, QueryMsg, SessionRef};
use super::metrics::{Latency, ShardMetrics};

/// Commands the inbox holds before it grows.
const INBOX_CAPACITY: usize = 4096;

/// A command the journal could not take.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    #[error("shard {shard}: journal append of account {account}'s request {client_order_id} after sequence {after} failed: {source}")]
    Append {
        shard: usize,
        account: AccountId,
        client_order_id: ClientOrderId,
        /// The last sequence number that was journaled.
        after: Seq,
        source: JournalError,
    },
    /// The journal is unavailable (disk full, a write or sync error, being retried): the
    /// command was not journaled nor applied and comes back to be rejected.
    #[error("shard {shard}: journal unavailable, account {}'s request {} not sequenced: {why}", inbound.cmd.account(), inbound.cmd.client_order_id())]
    Unavailable {
        shard: usize,
        inbound: Inbound,
        why: String,
    },
}

/// What waits in the inbox: a command to sequence, or a query to answer at its place among
/// them (so a query sees every earlier command of its session applied).
#[derive(Debug)]
enum Input {
    Command(Inbound),
    Query(QueryMsg),
}

/// One command sequenced, journaled and applied.
#[derive(Debug)]
pub struct Sequenced<'a> {
    /// The session that sent the command ([`SessionRef::NONE`] for none).
    pub origin: SessionRef,
    /// When the session read it (ns since the epoch); travels to its first report.
    pub ingress: u64,
    pub seq: Seq,
    pub ts: Timestamp,
    /// When the append finished (ns since the epoch): the start of the commit wait.
    pub appended_ns: u64,
    /// What the engine produced, in order.
    pub events: &'a [Event],
    /// The reports of those events, each with its account and position in the account's
    /// stream, in order.
    pub assigned: &'a [Assigned],
}

/// A shard's sequencer: inbox, journal, engine.
#[derive(Debug)]
pub struct Sequencer<S: Storage = MmapStorage> {
    shard: usize,
    engine: Engine,
    journal: ShardJournal<S>,
    clock: Clock,
    /// Commands and queries in arrival order.
    inbox: VecDeque<Input>,
    events: Vec<Event>,
    last_seq: Seq,
    /// Latest durable sequence seen (to count durable-watermark advances).
    durable_seen: Seq,
}

impl<S: Storage> Sequencer<S> {
    /// A sequencer over a recovered `engine` and `journal` whose last record is `last_seq`.
    pub fn new(
        shard: usize,
        engine: Engine,
        journal: ShardJournal<S>,
        last_seq: Seq,
        clock: Clock,
    ) -> Sequencer<S> {
        Sequencer {
            shard,
            engine,
            journal,
            clock,
            inbox: VecDeque::with_capacity(INBOX_CAPACITY),
            events: Vec::with_capacity(64),
            last_seq,
            durable_seen: last_seq,
        }
    }

    /// Queue a command for this shard's instruments.
    #[inline]
    pub fn push(&mut self, inbound: Inbound) {
        self.inbox.push_back(Input::Command(inbound));
    }

    /// Queue a query, behind the commands already queued.
    pub fn push_query(&mut self, query: QueryMsg) {
        self.inbox.push_back(Input::Query(query));
    }

    /// Commands and queries waiting.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// The oldest queued entry when it is a query (every command queued before it has been
    /// sequenced): answer it now.
    pub fn take_query(&mut self) -> Option<QueryMsg> {
        match self.inbox.front() {
            Some(Input::Query(q)) => {
                let q = *q;
                self.inbox.pop_front();
                Some(q)
            }
            _ => None,
        }
    }

    /// Sequence the oldest queued command, if the oldest entry is one.
    #[inline]
    pub fn next(
        &mut self,
        metrics: &mut ShardMetrics,
    ) -> Option<Result<Sequenced<'_>, SequencerError>> {
        let Some(Input::Command(inbound)) = self.inbox.front() else {
            return None;
        };
        let inbound = *inbound;
        self.inbox.pop_front();
        Some(self.sequence(inbound, metrics))
    }

    /// Sequence, journal and apply one command.
    pub fn sequence(
        &mut self,
        inbound: Inbound,
        metrics: &mut ShardMetrics,
    ) -> Result<Sequenced<'_>, SequencerError> {
        let Inbound { from, ingress, cmd } = inbound;
        let t0 = self.clock.instant();
        let ts = self.clock.unix_ns(t0);
        let seq = match self.journal.append(ts, &cmd) {
            Ok(seq) => seq,
            Err(JournalError::Unavailable { why, .. }) => {
                return Err(SequencerError::Unavailable {
                    shard: self.shard,
                    inbound: Inbound { from, ingress, cmd },
                    why,
                })
            }
            Err(source) => {
                return Err(SequencerError::Append {
                    shard: self.shard,
                    account: cmd.account(),
                    client_order_id: cmd.client_order_id(),
                    after: self.last_seq,
                    source,
                })
            }
        };
        self.last_seq = seq;
        let t1 = self.clock.instant();
        self.events.clear();
        self.engine.apply(seq, ts, &cmd, &mut self.events);
        let t2 = self.clock.instant();
        if self.journal.checkpoint_due(seq) {
            // A failed append here fails the next command's append too, which reports it.
            if let Ok(at) = self
                .journal
                .append_periodic_checkpoint(ts, self.engine.state_hash())
            {
                self.last_seq = at;
            }
        }
        metrics.record(Latency::JournalAppend, (t1 - t0).as_nanos() as u64);
        metrics.record(Latency::Matching, (t2 - t1).as_nanos() as u64);
        metrics.counters.commands[match cmd {
            Command::New(_) => 0,
            Command::Cancel(_) => 1,
            Command::Replace(_) => 2,
            Command::MassCancel(_) => 3,
            Command::Admin(_) => 4,
        }] += 1;
        Ok(Sequenced {
            origin: from,
            ingress,
            seq,
            ts,
            appended_ns: self.clock.now_ns(),
            events: &self.events,
            assigned: self.engine.stream_assigned(),
        })
    }

    /// Highest sequence number whose record is durable; counts each advance as a journal
    /// sync.
    #[inline]
    pub fn durable_seq(&mut self, metrics: &mut ShardMetrics) -> Seq {
        let durable = self.journal.durable_seq();
        if durable > self.durable_seen && durable != Seq::MAX {
            self.durable_seen = durable;
            metrics.counters.journal_syncs += 1;
        }
        durable
    }

    /// Why the journal refuses appends now, or `None` while it takes them (cheap; also
    /// picks up what the journal's helpers repaired since).
    pub fn journal_unavailable(&mut self) -> Option<String> {
        self.journal.unavailable()
    }

    /// The journal's next sync to run on the shard's ring, if one is due (group commit on
    /// the ring only).
    pub fn sync_due(&mut self) -> Option<veloz_journal::SyncJob> {
        self.journal.sync_due()
    }

    /// [`Sequencer::sync_due`] by the caller's clock (`ShardJournal::sync_due_at`).
    pub fn sync_due_at(&mut self, now: std::time::Instant) -> Option<veloz_journal::SyncJob> {
        self.journal.sync_due_at(now)
    }

    /// Stepped journal helpers (the fault simulation): `ShardJournal::step_helpers`.
    pub fn step_journal_helpers(&mut self, now: std::time::Instant, passes: u32) -> u32 {
        self.journal.step_helpers(now, passes)
    }

    /// The outcome of a sync from [`Sequencer::sync_due`].
    pub fn sync_completed(&mut self, job: veloz_journal::SyncJob, result: std::io::Result<()>) {
        self.journal.sync_completed(job, result);
    }

    /// The last sequence number journaled.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// The engine (read-only: the dispatcher reads its retained reports for a resend).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine's state hash.
    pub fn state_hash(&self) -> u64 {
        self.engine.state_hash()
    }

    /// Snapshots written by the shard's snapshot helper and its failures (0, 0 when off).
    pub fn snapshot_counts(&self) -> (u64, u64) {
        self.journal.snapshot_stats().map_or((0, 0), |s| {
            (
                s.written.load(std::sync::atomic::Ordering::Relaxed),
                s.failures.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    /// The journal writer's counters.
    pub fn journal_stats(&self) -> WriterStats {
        self.journal.stats()
    }

    /// Write the clean-shutdown checkpoint (with the state hash) at wall-clock `ts` and close
    /// the journal; returns the checkpoint's sequence number.
    pub fn checkpoint_and_close(&mut self, ts: Timestamp) -> Result<Seq, JournalError> {
        let seq = self
            .journal
            .checkpoint_and_close(ts, self.engine.state_hash())?;
        self.last_seq = seq;
        Ok(seq)
    }
}

#[cfg(test)]
#[path = "sequencer_tests.rs"]
mod tests;
