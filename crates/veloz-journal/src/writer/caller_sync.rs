//! Group commit run by the writer's caller (`sync_driver = "caller"`): the shard loop, which
//! owns an io_uring, asks [`Writer::sync_due`] every pass, runs the [`SyncJob`] it gets
//! asynchronously (`IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` over [`SyncJob::target`]),
//! or blocking ([`SyncJob::run_blocking`]: backends without a descriptor, tests, no ring),
//! and hands the outcome to [`Writer::sync_completed`]. The helper thread then only arms
//! pages (`sync_thread`, `HelperRole::ArmOnly`).
//!
//! A job is due under the rules the sync thread follows (`sync_thread`): whole pages up to
//! the writer's page mark as soon as there are any (the caller polls, so no batch wake-up or
//! period is needed); the partial page being filled only when no whole page waits and
//! records have waited `group_max_wait_us` (measured from the first `sync_due` call that saw
//! them, and again from the completion of the last job); every older segment to its end
//! (the records it held when the next was activated) before the next one, one job per
//! segment; at most [`MAX_JOB_LEN`] bytes per job (a longer range takes several, and only
//! the last moves the watermark).
//!
//! Invariants:
//! - At most one job is in flight: `sync_due` answers `None` until the job it returned is
//!   handed back to `sync_completed`; a job from elsewhere (not the one in flight) is ignored.
//! - The durable watermark moves only in `sync_completed` (and the final sync at close),
//!   over exactly what a successful job covered: its range, which starts where the segment
//!   was synced up to, so every byte before it (headers included) is synced and every older
//!   segment was synced to its end first. It never passes an unsynced byte.
//! - A job owns its segment's sync handle (which holds the file, and for the mmap backend
//!   the mapping): the descriptor of [`SyncJob::target`] stays open, and names the same file,
//!   for as long as the job lives, even when the writer rolled to a new segment and the
//!   preparer unmapped the old one, or the writer was closed. The caller must keep the job
//!   until the completion of the operation it submitted arrives.
//! - A failed job marks the journal unavailable, as a failed sync of the sync thread does
//!   (`CALLER_SYNC_FAILING` in the shared `failed` bits; the same `JournalError::Sync`
//!   message); `sync_due` offers the retry [`RETRY_EVERY`] after it saw the failure. A range
//!   whose sync failed is "suspect" (a failed writeback may have left its pages marked
//!   clean): every job that overlaps it first writes the overlap again through the file
//!   ([`RangeSync::rewrite_range`], blocking: the one case where `sync_due` waits for IO),
//!   until jobs that succeeded cover it. The first successful job clears the failure.
//! - At close (and drop) the writer syncs everything written, blocking, as the sync thread
//!   does at stop, from where the segments are synced up to (so an in-flight job's range is
//!   synced again, and its completion, if it still arrives, is dropped with the writer);
//!   while failing it does not, and `close` returns the failure.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use veloz_core::Seq;

use super::shared::{pack, unpack, Shared, CALLER_SYNC_FAILING};
use super::{Writer, RETRY_EVERY};
use crate::backend::{RangeSync, Storage};
use crate::error::JournalError;

/// The most one job covers: `IORING_OP_FSYNC` takes a 32-bit length, and a bounded job keeps
/// a retry's rewrite bounded too. A multiple of the page size.
pub(super) const MAX_JOB_LEN: usize = 1 << 30;

/// One sync for the caller to run: a byte range of one segment file. Hand it back to
/// [`Writer::sync_completed`] with the outcome; keep it until then (it keeps the file open).
pub struct SyncJob {
    id: u64,
    gen: u64,
    handle: Arc<dyn RangeSync>,
    file: Arc<str>,
    offset: usize,
    len: usize,
    /// The durable watermark once it succeeds (`None`: a leading part of a longer range).
    covers: Option<Seq>,
    /// Syncs the writer's partial page (which the sync write-protects).
    partial: bool,
}

impl std::fmt::Debug for SyncJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncJob")
            .field("id", &self.id)
            .field("file", &self.file)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("covers", &self.covers)
            .field("fd", &self.handle.raw_fd())
            .finish()
    }
}

impl SyncJob {
    /// The file descriptor to sync and the byte range, `(fd, offset, len)`, for
    /// `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` (`off` = offset, `len` = len, never 0),
    /// when the storage backend has one ([`crate::MmapStorage`]); on a shared mapping that
    /// is the same as this job's `msync` (see `MmapSync::sync_range`). `None` for the memory
    /// and fault backends: use [`SyncJob::run_blocking`]. The descriptor is valid while the
    /// job lives.
    pub fn target(&self) -> Option<(RawFd, u64, u32)> {
        let fd = self.handle.raw_fd()?;
        Some((fd, self.offset as u64, self.len as u32))
    }

    /// Run the sync here, blocking (`msync(MS_SYNC)` of the range for the mmap backend):
    /// for backends without a descriptor, tests, and callers without a ring.
    pub fn run_blocking(&self) -> io::Result<()> {
        self.handle.sync_range(self.offset, self.len)
    }

    /// The segment file, as messages name it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The byte range of the file it syncs: `(offset, len)`.
    pub fn range(&self) -> (u64, u64) {
        (self.offset as u64, self.len as u64)
    }

    /// The durable watermark once it succeeds; `None` when it syncs the leading part of a
    /// range longer than one job.
    pub fn durable_after(&self) -> Option<Seq> {
        self.covers
    }
}

/// A segment as caller-driven group commit tracks it.
struct CallerSeg {
    gen: u64,
    handle: Arc<dyn RangeSync>,
    file: Arc<str>,
    /// Synced up to here.
    synced: usize,
    /// Where its records ended when the next segment was activated, and the last of them.
    sealed: Option<(usize, Seq)>,
}

/// The writer's state for caller-driven group commit.
pub(super) struct CallerSync {
    /// Segments not yet synced to their end, oldest first; the last is the writer's.
    segs: VecDeque<CallerSeg>,
    durable: Seq,
    max_wait: Duration,
    /// Since when records have waited (as `sync_due` saw it).
    pending_since: Option<Instant>,
    in_flight: Option<u64>,
    next_id: u64,
    /// Why the last sync failed, while failing.
    failure: Option<String>,
    /// While failing: no retry before this (set by the first `sync_due` after the failure).
    retry_at: Option<Instant>,
    /// Bytes a failed sync may have left marked clean: segment `gen`, from its `synced` up to
    /// `end`; rewritten before they are synced again.
    suspect: Option<(u64, usize)>,
}

impl CallerSync {
    pub(super) fn new(durable: Seq, max_wait: Duration) -> CallerSync {
        CallerSync {
            segs: VecDeque::new(),
            durable,
            max_wait,
            pending_since: None,
            in_flight: None,
            next_id: 0,
            failure: None,
            retry_at: None,
            suspect: None,
        }
    }

    /// The writer appends to segment `gen` from now on (synced up to `synced`); the one before
    /// it, if any, ended at `sealed` (its end offset and last record).
    pub(super) fn add_segment<Y: RangeSync>(
        &mut self,
        gen: u64,
        handle: Y,
        file: String,
        synced: usize,
        sealed: Option<(usize, Seq)>,
    ) {
        if let (Some(s), Some(last)) = (sealed, self.segs.back_mut()) {
            last.sealed = Some(s);
        }
        self.segs.push_back(CallerSeg {
            gen,
            handle: Arc::new(handle),
            file: file.into(),
            synced,
            sealed: None,
        });
    }

    /// Why the last caller-driven sync failed, while it is failing.
    pub(super) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn advance(&mut self, seq: Seq, shared: &Shared) {
        if seq > self.durable {
            self.durable = seq;
            shared.durable.store(seq, Ordering::Release);
        }
    }

    fn fail(&mut self, shared: &Shared, why: String) {
        self.failure = Some(why);
        self.retry_at = None;
        shared.set_failed(CALLER_SYNC_FAILING);
    }

    /// Write the suspect part of `front[from..to)` again (a failed sync may have left it
    /// marked clean).
    fn rewrite_suspect(&self, front: &CallerSeg, from: usize, to: usize) -> io::Result<()> {
        match self.suspect {
            Some((gen, end)) if gen == front.gen && from < end => {
                front.handle.rewrite_range(from, to.min(end) - from)
            }
            _ => Ok(()),
        }
    }

    /// The next job, if one is due (see the module docs); `written`, `pos`, `mark_seq` and
    /// `mark_pos` are the writer's progress (positions packed).
    fn next_job(
        &mut self,
        now: Instant,
        (written, pos): (Seq, u64),
        (mark_seq, mark_pos): (Seq, u64),
        shared: &Shared,
    ) -> Option<SyncJob> {
        loop {
            let partial = mark_seq <= self.durable
                && self
                    .pending_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= self.max_wait);
            let (seq, at) = if partial {
                (written.max(mark_seq), pos)
            } else {
                (mark_seq, mark_pos)
            };
            if seq <= self.durable {
                return None;
            }
            let (gen, offset) = unpack(at);
            let front = self.segs.front()?;
            let older = front.gen < gen;
            let (to, covers) = if older {
                front.sealed.unwrap_or((front.synced, self.durable))
            } else if front.gen == gen {
                (offset, seq)
            } else {
                return None;
            };
            if to <= front.synced {
                // Synced up to there already: the watermark moves without a job.
                if older {
                    self.segs.pop_front();
                }
                self.advance(covers, shared);
                continue;
            }
            let from = front.synced;
            let (to, covers) = if to - from > MAX_JOB_LEN {
                (from + MAX_JOB_LEN, None)
            } else {
                (to, Some(covers))
            };
            if let Err(source) = self.rewrite_suspect(front, from, to) {
                let e = JournalError::Sync {
                    file: front.file.to_string(),
                    durable_seq: self.durable,
                    source,
                };
                self.fail(shared, e.to_string());
                return None;
            }
            let (seg_gen, handle, file) = (
                front.gen,
                Arc::clone(&front.handle),
                Arc::clone(&front.file),
            );
            self.next_id += 1;
            self.in_flight = Some(self.next_id);
            return Some(SyncJob {
                id: self.next_id,
                gen: seg_gen,
                handle,
                file,
                offset: from,
                len: to - from,
                covers,
                partial: partial && !older,
            });
        }
    }

    /// Take the outcome of the job in flight; `Some(page)` when the helper should arm the
    /// writer's page again (a partial sync write-protected it).
    fn completed(&mut self, job: &SyncJob, result: io::Result<()>, shared: &Shared) -> Option<u64> {
        if self.in_flight != Some(job.id) {
            return None;
        }
        self.in_flight = None;
        self.pending_since = None;
        let end = job.offset + job.len;
        if let Err(source) = result {
            let e = JournalError::Sync {
                file: job.file.to_string(),
                durable_seq: self.durable,
                source,
            };
            self.suspect = Some(match self.suspect {
                Some((gen, upto)) if gen == job.gen => (gen, upto.max(end)),
                _ => (job.gen, end),
            });
            self.fail(shared, e.to_string());
            return None;
        }
        let mut sealed_last = None;
        if let Some(front) = self.segs.front_mut().filter(|s| s.gen == job.gen) {
            front.synced = front.synced.max(end);
            if let Some((sealed_end, last)) = front.sealed {
                if front.synced >= sealed_end {
                    sealed_last = Some(last);
                }
            }
        }
        if let Some(last) = sealed_last {
            self.segs.pop_front();
            self.advance(last, shared);
        }
        if let Some(seq) = job.covers {
            self.advance(seq, shared);
        }
        if let Some((gen, upto)) = self.suspect {
            let still = self.segs.iter().any(|s| s.gen == gen && s.synced < upto);
            if !still {
                self.suspect = None;
            }
        }
        if self.failure.take().is_some() {
            self.retry_at = None;
            shared.clear_failed(CALLER_SYNC_FAILING);
        }
        job.partial.then(|| pack(job.gen, end))
    }

    /// Sync everything up to the writer's position `pos` (`written`: its last record),
    /// blocking: the final sync at close.
    fn sync_all(&mut self, written: Seq, pos: u64, shared: &Shared) -> Result<(), JournalError> {
        let (gen, offset) = unpack(pos);
        while let Some(front) = self.segs.front() {
            let older = front.gen < gen;
            let to = if older {
                front.sealed.map_or(front.synced, |(end, _)| end)
            } else if front.gen == gen {
                offset
            } else {
                break;
            };
            if to > front.synced {
                let from = front.synced;
                let synced = self
                    .rewrite_suspect(front, from, to)
                    .and_then(|()| front.handle.sync_range(from, to - from));
                if let Err(source) = synced {
                    let e = JournalError::Sync {
                        file: front.file.to_string(),
                        durable_seq: self.durable,
                        source,
                    };
                    self.fail(shared, e.to_string());
                    return Err(e);
                }
            }
            if !older {
                if let Some(front) = self.segs.front_mut() {
                    front.synced = front.synced.max(to);
                }
                break;
            }
            let last = front.sealed.map(|(_, last)| last);
            self.segs.pop_front();
            if let Some(last) = last {
                self.advance(last, shared);
            }
        }
        self.suspect = None;
        self.advance(written, shared);
        Ok(())
    }
}

impl<S: Storage> Writer<S> {
    /// With `durability = "group"` and `sync_driver = "caller"`: the next sync to run, when
    /// records wait to be made durable under the sync thread's rules (the `writer` module
    /// docs, "Who syncs") and no job is in flight; `None` otherwise, and always in the other
    /// modes.
    /// Never blocks, except for a retry after a failed sync, which first writes the range
    /// again through the file ([`RangeSync::rewrite_range`], a `pwrite` of at most
    /// [`SyncJob`]'s length). Reads the clock once; [`Writer::sync_due_at`] takes it.
    pub fn sync_due(&mut self) -> Option<SyncJob> {
        // No clock read in the other modes.
        self.caller.as_ref()?;
        self.sync_due_at(Instant::now())
    }

    /// [`Writer::sync_due`] at time `now` (monotonic, never going back): the partial page
    /// waits `group_max_wait_us` and a failed sync [`RETRY_EVERY`] by this clock.
    pub fn sync_due_at(&mut self, now: Instant) -> Option<SyncJob> {
        let written = self.next_seq - 1;
        let c = self.caller.as_mut()?;
        if c.in_flight.is_some() {
            return None;
        }
        if written > c.durable {
            c.pending_since.get_or_insert(now);
        } else {
            c.pending_since = None;
        }
        if c.failure.is_some() && now < *c.retry_at.get_or_insert(now + RETRY_EVERY) {
            return None;
        }
        // The writer's own stores (this thread): no ordering needed.
        let pos = self.shared.pos.load(Ordering::Relaxed);
        let mark_seq = self.shared.mark_seq.load(Ordering::Relaxed);
        let mark_pos = self.shared.mark_pos.load(Ordering::Relaxed);
        c.next_job(now, (written, pos), (mark_seq, mark_pos), &self.shared)
    }

    /// The outcome of `job` (from [`Writer::sync_due`]): on success the durable watermark
    /// advances over exactly what it covered; on failure the journal becomes unavailable
    /// (appends refused with the `JournalError::Sync` message the sync thread gives) until a
    /// retry succeeds. A job that is not the one in flight is ignored.
    pub fn sync_completed(&mut self, job: SyncJob, result: io::Result<()>) {
        let Some(c) = self.caller.as_mut() else {
            return;
        };
        if let Some(page) = c.completed(&job, result, &self.shared) {
            self.shared.rearm.store(page, Ordering::Release);
            if let Some(t) = &self.sync_thread {
                t.thread().unpark();
            }
        }
    }

    /// Caller mode: run one due sync here, blocking (for [`Writer::wait_durable`]); whether
    /// one ran.
    pub(super) fn run_due_sync(&mut self) -> bool {
        match self.sync_due() {
            Some(job) => {
                let result = job.run_blocking();
                self.sync_completed(job, result);
                true
            }
            None => false,
        }
    }

    /// Caller mode, at close: sync everything written (blocking), unless failing.
    pub(super) fn final_caller_sync(&mut self) {
        let written = self.next_seq - 1;
        let pos = self.shared.pos.load(Ordering::Relaxed);
        if let Some(c) = self.caller.as_mut() {
            if c.failure.is_none() {
                // A failure is kept in the shared state, where shutdown finds it.
                let _ = c.sync_all(written, pos, &self.shared);
            }
        }
    }
}

#[cfg(test)]
#[path = "caller_sync_tests.rs"]
mod tests;
