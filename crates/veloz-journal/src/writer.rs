//! The journal writer: appends records to the active segment and hands everything slow to
//! two helper threads.
//!
//! ```text
//!  shard core (Writer::append_*)        preparer thread               helper ("sync") thread
//!  build the record + CRC, copy it      creates next.spare at full    group: every max_wait (or
//!  into the mapping,                    size, blocks allocated, pages when the writer wakes it
//!  publish (gen, end offset) and seq    populated (read, not written) after max_batch records)
//!  ──────────────────────────────────►  and its first 32 MiB armed;   msync the written range,
//!  segment full: write the header into  renames an activated spare    advance the durable
//!  the ready spare, carry on            to {first_seq:020}.vlj,       watermark; both modes:
//!                                       prepares the next; unmaps     keep 32 MiB ahead of the
//!                                       retired segments              writer armed writable
//! ```
//!
//! Invariants:
//! - Sequence numbers are consecutive; [`Writer::append_record`] returns the one it assigned.
//! - The appending thread never waits for IO: it copies into memory that was mapped in
//!   advance and armed writable by the helper thread (no page fault in steady state), and
//!   only stores two atomics per record (plus, in group mode, one
//!   `unpark` per `group_max_batch` records). The one exception is a rollover that finds no
//!   spare ready yet (the preparer fell behind); it waits and counts it in
//!   [`WriterStats::spare_waits`].
//! - The durable watermark ([`Writer::durable_seq`], [`DurableWatermark`]) only covers records
//!   whose bytes (and their segment's header) were synced, in order (by the sync thread, or
//!   by the caller's [`SyncJob`]s with [`SyncDriver::Caller`]). Group commit syncs whole
//!   pages (the writer publishes the last record before its current page at each page
//!   boundary); the page being filled is synced only after records waited in it for
//!   `group_max_wait_us`, or at close, because a sync write-protects its pages and a fault on
//!   the page being written would wait on the filesystem journal's commit. With `durability =
//!   "none"` it equals the last written record.
//! - The writer never skips a record. A failed reservation (no spare at a rollover), write
//!   (the failed range is zeroed before the next try), sync or arming makes the journal
//!   *unavailable*: appends are refused with [`JournalError::Unavailable`] and take no
//!   sequence number, records written before stay written (and become durable once a sync
//!   succeeds), and the helpers (for caller-driven syncs, [`Writer::sync_due`]) retry every
//!   [`RETRY_EVERY`]; [`Writer::unavailable`] says
//!   whether (and why) it is unavailable now and picks up a spare reserved since. Other
//!   errors (a failed rename, a lost helper thread) stop the writer for good.
//! - The record write is not atomic: a crash can leave a partial record, which recovery
//!   recognizes by its length or CRC and truncates.
//!
//! Who syncs (`sync_driver`, [`SyncDriver`]; group commit only):
//! - `"thread"` (the default): the helper thread syncs and advances the watermark, as drawn
//!   above (`sync_thread`).
//! - `"caller"`: the writer's caller (the shard loop, which owns an io_uring) runs the
//!   syncs, asynchronously, and the helper thread only arms pages (bounded steps, normal
//!   scheduler, parked between passes). Each pass the caller asks [`Writer::sync_due`];
//!   a [`SyncJob`] names a file descriptor and a byte range ([`SyncJob::target`]) to submit
//!   as `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` (on Linux the same durability as the
//!   thread's `msync(MS_SYNC)` of that range: mm/msync.c runs `vfs_fsync_range(file, start,
//!   end, 1)`, as io_uring's fsync does), or to run blocking ([`SyncJob::run_blocking`],
//!   for backends without a descriptor); the outcome goes to [`Writer::sync_completed`],
//!   which advances the watermark over exactly what the job covered or makes the journal
//!   unavailable. Jobs follow the sync thread's rules: whole pages up to the writer's mark,
//!   the partial page after `group_max_wait_us`, older segments to their end first, a retry
//!   [`RETRY_EVERY`] after a failure, rewriting the failed range first. One job at a time;
//!   a job holds its segment's file open until it is dropped, so its descriptor stays valid
//!   across a rollover (the caller keeps the job until its completion arrives). At close the
//!   writer syncs what is left itself, blocking. Contract and invariants: `caller_sync`.
//!
//! Who runs the helpers (`helpers`, [`HelperDriver`]): a thread each (the default), or,
//! for deterministic simulation, the caller, pass by pass ([`Writer::step_helpers`]).
//!
//! Parts (one file each, in `writer/`): this file holds [`Writer`], the appending side;
//! `availability` the "journal unavailable" state (refusing, healing, waiting for a spare);
//! `shared` the atomics it shares with the helper thread and [`DurableWatermark`] handles;
//! `preparer` the preparer; `sync_thread` the helper ("sync") thread: group commit and
//! arming pages ahead of the writer; `caller_sync` group commit run by the caller
//! ([`SyncJob`]); `stepped` the helpers run by the caller; `stop` closing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use veloz_core::{Command, Seq, Timestamp};

use super::backend::{SegmentFile, Storage};
use super::chain::Newest;
use super::config::{Durability, HelperDriver, JournalConfig, SyncDriver};
use super::error::JournalError;
use super::format::{
    encode_record_header, finish_record, link_tail_start, segment_link, RecordType, SegmentHeader,
    LINK_TAIL_LEN, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::layout::{segment_name, SPARE_NAME};
use super::payload::{encode_checkpoint, encode_command, Checkpoint};

mod availability;
mod caller_sync;
mod preparer;
mod replica;
mod scheduling;
mod shared;
mod stepped;
mod stop;
mod sync_thread;

use caller_sync::CallerSync;
pub use caller_sync::SyncJob;
use preparer::{PrepMsg, Preparer, SpareResult};
pub use replica::ReplicaProgress;
pub use scheduling::SyncScheduling;
pub use shared::DurableWatermark;
use shared::{pack, Shared, NO_REARM};
use stepped::Stepped;
use sync_thread::{Helper, HelperRole, SyncMsg, SyncSeg, ARM_STEP, ARM_WINDOW};

/// While the journal is unavailable, the preparer retries reserving a spare, and the helper
/// a failed sync or arming, this often.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Page size for group commit's whole-page syncs (the smallest page size of Veloz's hosts).
const PAGE: usize = 4096;

/// Records up to this length are built in a stack buffer and copied into the mapping at once;
/// longer ones are written as header then payload.
const SMALL_RECORD: usize = 128;

/// Counters of a writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records appended by this writer.
    pub records: u64,
    /// Bytes appended (headers included).
    pub bytes: u64,
    /// Segments this writer activated.
    pub segments_activated: u64,
    /// Rollovers that had to wait for the preparer.
    pub spare_waits: u64,
}

struct Active<G> {
    segment: G,
    name: String,
    first_seq: Seq,
    offset: usize,
    size: usize,
}

/// Where a recovered journal continues.
pub(crate) struct ResumeAt<G> {
    pub segment: G,
    pub name: String,
    pub first_seq: Seq,
    pub offset: usize,
}

pub(super) type SyncOf<S> = <<S as Storage>::Segment as SegmentFile>::Sync;

/// Appends records to one shard's journal. Create it with [`super::recovery::open`].
pub struct Writer<S: Storage> {
    storage: S,
    shard: u16,
    group: bool,
    /// `durability = "replicated"`: acknowledge up to the replicated watermark.
    replicated: bool,
    max_batch: u64,
    active: Option<Active<S::Segment>>,
    next_seq: Seq,
    gen: u64,
    shared: Arc<Shared>,
    spare: Option<S::Segment>,
    spare_rx: Receiver<SpareResult<S>>,
    prep_tx: Sender<PrepMsg<S::Segment>>,
    prep_thread: Option<JoinHandle<()>>,
    sync_tx: Option<Sender<SyncMsg<SyncOf<S>>>>,
    sync_thread: Option<JoinHandle<()>>,
    next_kick: Seq,
    /// The newest segment, as the chain head names it (changes at rollover only).
    newest: Option<Newest>,
    poisoned: Option<String>,
    /// A record write that failed: (offset, length, why); zeroed before the next append.
    write_failed: Option<(usize, usize, String)>,
    /// A rollover was refused for want of a spare (the preparer is retrying).
    spare_refused: bool,
    stats: WriterStats,
    sync_scheduling: SyncScheduling,
    /// Group commit run by the caller ([`SyncDriver::Caller`]): its state.
    caller: Option<CallerSync>,
    /// The helpers' state machines when the caller steps them ([`HelperDriver::Stepped`]).
    stepped: Option<Box<Stepped<S>>>,
    closed: bool,
}

/// Where the writer stands, not its buffers.
impl<S: Storage> std::fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("shard", &self.shard)
            .field("group", &self.group)
            .field("caller_syncs", &self.caller.is_some())
            .field(
                "segment",
                &self.active.as_ref().map(|a| (&a.name, a.offset)),
            )
            .field("next_seq", &self.next_seq)
            .field("poisoned", &self.poisoned)
            .field("stats", &self.stats)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Writer<S> {
    /// Start writing at `next_seq`, in `resume`'s segment if given (else in a new one at the
    /// first append). Records before `next_seq` are taken as durable (recovery synced them).
    pub(crate) fn start(
        storage: S,
        shard: u16,
        config: &JournalConfig,
        resume: Option<ResumeAt<S::Segment>>,
        newest: Option<Newest>,
        next_seq: Seq,
    ) -> Result<Writer<S>, JournalError> {
        config.validate()?;
        let group = config.durability.syncs_locally();
        let replicated = config.durability == Durability::Replicated;
        let caller_syncs = group && config.sync_driver == SyncDriver::Caller;
        let last = next_seq - 1;
        let shared = Arc::new(Shared {
            written: AtomicU64::new(last),
            durable: AtomicU64::new(last),
            pos: AtomicU64::new(pack(0, resume.as_ref().map_or(0, |r| r.offset))),
            mark_pos: AtomicU64::new(pack(0, resume.as_ref().map_or(0, |r| r.offset))),
            mark_seq: AtomicU64::new(last),
            stop: AtomicBool::new(false),
            failed: AtomicU8::new(0),
            failure: Mutex::new(None),
            reserve_failed: AtomicBool::new(false),
            reserve_failure: Mutex::new(None),
            rearm: AtomicU64::new(NO_REARM),
            replicated: AtomicU64::new(last),
        });
        let spawn_err = |e| JournalError::io("start a thread for", storage.display_name(""), e);

        let (spare_tx, spare_rx) = mpsc::sync_channel::<SpareResult<S>>(1);
        let (prep_tx, prep_rx) = mpsc::channel();
        let (stepped, now) = match config.helpers {
            HelperDriver::Threads => (false, Instant::now()),
            HelperDriver::Stepped { clock } => (true, clock),
        };
        let prep = Preparer::new(
            storage.clone(),
            shard,
            config.segment_size,
            newest,
            Arc::clone(&shared),
            prep_rx,
            spare_tx,
        );
        let (prep, prep_thread) = if stepped {
            (Some(prep), None)
        } else {
            let t = thread::Builder::new()
                .name(format!("veloz-jprep-{shard}"))
                .spawn(move || prep.run())
                .map_err(spawn_err)?;
            (None, Some(t))
        };

        let active = resume.map(|r| Active {
            size: r.segment.len(),
            segment: r.segment,
            name: r.name,
            first_seq: r.first_seq,
            offset: r.offset,
        });
        let mut writer = Writer {
            storage: storage.clone(),
            shard,
            group,
            replicated,
            max_batch: config.group_max_batch as u64,
            active,
            next_seq,
            gen: 0,
            shared: Arc::clone(&shared),
            spare: None,
            spare_rx,
            prep_tx,
            prep_thread,
            sync_tx: None,
            sync_thread: None,
            // Caller mode: nothing to wake (the caller polls `sync_due`).
            next_kick: if caller_syncs {
                Seq::MAX
            } else {
                last + config.group_max_batch as u64
            },
            newest,
            poisoned: None,
            write_failed: None,
            spare_refused: false,
            stats: WriterStats::default(),
            sync_scheduling: SyncScheduling::Normal { why: None },
            caller: caller_syncs
                .then(|| CallerSync::new(last, Duration::from_micros(config.group_max_wait_us))),
            stepped: None,
            closed: false,
        };
        {
            let mut segs = VecDeque::new();
            if let (Some(a), Some(c)) = (&writer.active, &mut writer.caller) {
                let file = storage.display_name(&a.name);
                c.add_segment(0, a.segment.sync_handle(), file, a.offset, None);
            }
            if let Some(a) = &writer.active {
                segs.push_back(SyncSeg {
                    gen: 0,
                    handle: a.segment.sync_handle(),
                    file: storage.display_name(&a.name),
                    synced: a.offset,
                    end: None,
                });
            }
            let (sync_tx, sync_rx) = mpsc::channel();
            // Group: the sync batching period (caller mode: the arming period, in steps as
            // bounded as the sync thread's). None: only arming pages, every millisecond.
            let (poll, role) = if !group {
                let step = ARM_WINDOW;
                (Duration::from_millis(1), HelperRole::ArmOnly { step })
            } else if caller_syncs {
                let step = ARM_STEP;
                let poll = Duration::from_micros(config.group_max_wait_us);
                (poll, HelperRole::ArmOnly { step })
            } else {
                let poll = Duration::from_micros(config.group_max_wait_us);
                (poll, HelperRole::GroupSync)
            };
            let helper = Helper::new(shared, sync_rx, segs, poll, role, now);
            writer.sync_tx = Some(sync_tx);
            if let Some(prep) = prep {
                writer.stepped = Some(Box::new(Stepped { prep, helper, now }));
            } else {
                let t = thread::Builder::new()
                    .name(format!("veloz-jsync-{shard}"))
                    .spawn(move || helper.run())
                    .map_err(spawn_err)?;
                if role == HelperRole::GroupSync && config.sync_realtime {
                    writer.sync_scheduling = scheduling::make_realtime(&t);
                }
                writer.sync_thread = Some(t);
            }
        }
        // A new journal's first append needs the first spare: have it ready (on a full disk
        // the journal starts unavailable and the preparer keeps trying). A resumed journal
        // appends into its segment and takes the spare at the rollover, so a restart does not
        // wait for a whole segment to be reserved (up to seconds on a busy host:
        // docs/BENCHMARKS.md, "Restart time").
        if writer.active.is_none() {
            match writer.wait_spare() {
                Ok(spare) => writer.spare = Some(spare),
                Err(e) if e.is_unavailable() => writer.spare_refused = true,
                Err(e) => return Err(e),
            }
        }
        writer.stats.spare_waits = 0;
        Ok(writer)
    }

    /// How the sync thread is scheduled (for the start-up log; see [`SyncScheduling`]). With
    /// caller-driven syncs the helper only arms pages and runs normally.
    pub fn sync_scheduling(&self) -> &SyncScheduling {
        &self.sync_scheduling
    }

    /// The shard this journal belongs to.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// The last sequence number written (0 if none yet).
    pub fn written_seq(&self) -> Seq {
        self.next_seq - 1
    }

    /// The durable watermark: acknowledge records up to here (see [`DurableWatermark`]).
    #[inline]
    pub fn durable_seq(&self) -> Seq {
        if self.replicated {
            self.shared.replicated.load(Ordering::Acquire)
        } else if self.group {
            self.shared.durable.load(Ordering::Acquire)
        } else {
            self.next_seq - 1
        }
    }

    /// A handle other tasks can poll for the durable watermark.
    pub fn watermark(&self) -> DurableWatermark {
        DurableWatermark {
            shared: Arc::clone(&self.shared),
            group: self.group,
            replicated: self.replicated,
        }
    }

    pub fn durability(&self) -> Durability {
        if self.replicated {
            Durability::Replicated
        } else if self.group {
            Durability::Group
        } else {
            Durability::None
        }
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The file being written (as shown) and the offset where the next record goes.
    pub fn position(&self) -> Option<(String, usize)> {
        self.active
            .as_ref()
            .map(|a| (self.storage.display_name(&a.name), a.offset))
    }

    /// Append a command; returns its sequence number.
    #[inline]
    pub fn append_command(&mut self, ts: Timestamp, cmd: &Command) -> Result<Seq, JournalError> {
        self.append_record(RecordType::Command, ts, &encode_command(cmd))
    }

    /// Append a checkpoint (state hash after every command before it); returns its sequence
    /// number.
    pub fn append_checkpoint(
        &mut self,
        ts: Timestamp,
        checkpoint: &Checkpoint,
    ) -> Result<Seq, JournalError> {
        self.append_record(RecordType::Checkpoint, ts, &encode_checkpoint(checkpoint))
    }

    /// Append a record of type `rtype` with `payload` (which the caller encoded for that type);
    /// returns its sequence number. Never waits for IO (see the module docs).
    #[inline]
    pub fn append_record(
        &mut self,
        rtype: RecordType,
        ts: Timestamp,
        payload: &[u8],
    ) -> Result<Seq, JournalError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(JournalError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        if self.poisoned.is_some() {
            return Err(self.failure());
        }
        if self.write_failed.is_some() || self.shared.is_failing(Ordering::Relaxed) {
            if let Some(why) = self.unavailable() {
                return Err(self.refuse(why));
            }
        }
        let len = RECORD_HEADER_LEN + payload.len();
        if !matches!(&self.active, Some(a) if a.offset + len <= a.size) {
            self.roll(ts)?;
        }
        let seq = self.next_seq;
        let Some(a) = self.active.as_mut() else {
            return Err(self.poison("no active segment after a rollover".to_string()));
        };
        let off = a.offset;
        let res = if len <= SMALL_RECORD {
            // Build the record in one small buffer: one CRC pass, one copy into the mapping.
            let mut buf = [0u8; SMALL_RECORD];
            buf[RECORD_HEADER_LEN..len].copy_from_slice(payload);
            finish_record(&mut buf[..len], seq, ts, rtype.code());
            a.segment.write_at(off, &buf[..len])
        } else {
            let header = encode_record_header(seq, ts, rtype.code(), payload);
            a.segment
                .write_at(off, &header)
                .and_then(|()| a.segment.write_at(off + RECORD_HEADER_LEN, payload))
        };
        if let Err(source) = res {
            let file = self.storage.display_name(&a.name);
            let why = JournalError::Write {
                file,
                offset: off as u64,
                seq,
                source,
            }
            .to_string();
            self.write_failed = Some((off, len, why.clone()));
            return Err(self.refuse(why));
        }
        a.offset = off + len;
        let end = a.offset;
        self.next_seq = seq + 1;
        self.stats.records += 1;
        self.stats.bytes += len as u64;
        if self.group && end / PAGE != off / PAGE {
            // This record reached a new page: the pages before it are complete.
            let (mark_seq, mark_off) = if end % PAGE == 0 {
                (seq, end)
            } else {
                (seq - 1, end - end % PAGE)
            };
            self.shared
                .mark_pos
                .store(pack(self.gen, mark_off), Ordering::Release);
            self.shared.mark_seq.store(mark_seq, Ordering::Release);
        }
        self.shared
            .pos
            .store(pack(self.gen, end), Ordering::Release);
        self.shared.written.store(seq, Ordering::Release);
        if self.group && seq >= self.next_kick {
            self.kick(seq);
        }
        Ok(seq)
    }

    /// Wake the sync thread if a full batch is waiting.
    #[cold]
    fn kick(&mut self, seq: Seq) {
        let durable = self.shared.durable.load(Ordering::Acquire);
        if seq - durable >= self.max_batch {
            if let Some(t) = &self.sync_thread {
                t.thread().unpark();
            }
            self.next_kick = seq + self.max_batch;
        } else {
            self.next_kick = durable + self.max_batch;
        }
    }

    /// Switch to the prepared spare: write its header, hand the old segment to the helpers.
    #[cold]
    #[inline(never)]
    fn roll(&mut self, ts: Timestamp) -> Result<(), JournalError> {
        let mut segment = match self.spare.take() {
            Some(s) => s,
            None => match self.wait_spare() {
                Ok(s) => s,
                Err(e) => {
                    self.spare_refused |= e.is_unavailable();
                    return Err(e);
                }
            },
        };
        self.spare_refused = false;
        let first_seq = self.next_seq;
        let name = segment_name(first_seq);
        // The chain: the new segment names the link of the one it follows.
        let prev_link = match &self.active {
            Some(a) => match link_of(&a.segment, a.offset) {
                Ok(l) => Some(l),
                Err(source) => {
                    let file = self.storage.display_name(&a.name);
                    return Err(self.poison_with(JournalError::io("read back", file, source)));
                }
            },
            None => None,
        };
        let header = SegmentHeader::new(self.shard, first_seq, ts)
            .continuing(prev_link)
            .encode();
        let newest = Newest {
            first_seq,
            header_crc: SegmentHeader::stored_crc(&header),
        };
        if let Err(source) = segment.write_at(0, &header) {
            let file = self.storage.display_name(SPARE_NAME);
            return Err(self.poison_with(JournalError::Write {
                file,
                offset: 0,
                seq: first_seq,
                source,
            }));
        }
        self.gen += 1;
        let sealed_end = self.active.as_ref().map(|a| a.offset);
        let file = self.storage.display_name(&name);
        if let Some(c) = &mut self.caller {
            let sealed = sealed_end.map(|end| (end, first_seq - 1));
            c.add_segment(self.gen, segment.sync_handle(), file.clone(), 0, sealed);
        }
        if let Some(tx) = &self.sync_tx {
            // A send fails only if the sync thread is gone, which it reports itself.
            let _ = tx.send(SyncMsg::Roll {
                gen: self.gen,
                handle: segment.sync_handle(),
                file,
                sealed_end,
            });
            // Everything before this segment may be synced to its end.
            self.shared
                .mark_pos
                .store(pack(self.gen, 0), Ordering::Release);
            self.shared.mark_seq.store(first_seq - 1, Ordering::Release);
        }
        let size = segment.len();
        let header_sync = segment.sync_handle();
        let new = Active {
            segment,
            name: name.clone(),
            first_seq,
            offset: SEGMENT_HEADER_LEN,
            size,
        };
        let old = self.active.replace(new);
        self.newest = Some(newest);
        let _ = self.prep_tx.send(PrepMsg::Activated {
            to: name,
            retired: old.map(|a| a.segment),
            sealed_end: sealed_end.unwrap_or(0),
            header: header_sync,
            newest,
        });
        self.stats.segments_activated += 1;
        Ok(())
    }

    /// Block until the next segment is prepared (mapped and prefaulted), so that the next
    /// rollover cannot wait. Not for the hot path: for start-up, or before a timed section.
    pub fn wait_spare_ready(&mut self) -> Result<(), JournalError> {
        if self.spare.is_none() {
            let waits = self.stats.spare_waits;
            let spare = self.wait_spare()?;
            self.stats.spare_waits = waits;
            self.spare = Some(spare);
        }
        Ok(())
    }

    fn poison(&mut self, why: String) -> JournalError {
        self.poisoned = Some(why.clone());
        JournalError::Poisoned(why)
    }

    fn poison_with(&mut self, e: JournalError) -> JournalError {
        self.poisoned = Some(e.to_string());
        e
    }

    /// The error to return while the writer cannot go on: poisoned for good, or the
    /// helper's failure while it retries (unavailable).
    #[cold]
    fn failure(&mut self) -> JournalError {
        if let Some(p) = &self.poisoned {
            return JournalError::Poisoned(p.clone());
        }
        let why = self
            .failing_why()
            .unwrap_or_else(|| "the journal sync thread failed".to_string());
        self.refuse(why)
    }

    /// Why syncs (or arming) fail now: a failed caller-driven sync first, else the helper
    /// thread's last failure.
    fn failing_why(&self) -> Option<String> {
        match self.caller.as_ref().and_then(|c| c.failure()) {
            Some(why) => Some(why.to_string()),
            None => Shared::why(&self.shared.failure),
        }
    }

    /// Wait (sleeping, not on a hot path) until `seq` is durable or `timeout` passes; returns
    /// whether it became durable. Fails if a sync failed. With caller-driven syncs it runs
    /// due jobs itself, blocking, while none is in flight (with one in flight it can only
    /// wait for `timeout`: the caller hands completions back).
    pub fn wait_durable(&mut self, seq: Seq, timeout: Duration) -> Result<bool, JournalError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.durable_seq() >= seq {
                return Ok(true);
            }
            if self.shared.is_failing(Ordering::Acquire) {
                return Err(self.failure());
            }
            if self.caller.is_some() && self.run_due_sync() {
                continue;
            }
            if self.step_helpers_again() {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if let Some(t) = &self.sync_thread {
                t.thread().unpark();
            }
            thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The link of a segment whose records end at `end` (read back from its mapping: once per
/// rollover, never per record).
fn link_of<G: SegmentFile>(segment: &G, end: usize) -> std::io::Result<u32> {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    segment.read_at(0, &mut header)?;
    let from = link_tail_start(end);
    let mut tail = [0u8; LINK_TAIL_LEN];
    let tail = &mut tail[..end - from];
    segment.read_at(from, tail)?;
    Ok(segment_link(&header, tail))
}

impl<S: Storage> Drop for Writer<S> {
    fn drop(&mut self) {
        let _ = self.shutdown(false);
    }
}

#[cfg(test)]
mod tests;
