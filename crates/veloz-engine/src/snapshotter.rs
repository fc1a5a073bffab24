//! Periodic snapshots of a shard's engine, written by a helper thread from a shadow engine
//! that follows the shard's journal: the shard's order loop does no snapshot work at all.
//!
//! ```text
//!  shard core                         helper thread `veloz-snap-N` (the helper cores)
//!  append, apply, release acks        every 5 ms: read the journal's durable watermark,
//!  (nothing else)                     JournalFollower::advance to it, apply each record to
//!        │  journal segments            the shadow (replay::apply_record, recovery's code);
//!        └──────── page cache ───────► when due: snapshot::encode(shadow), write, prune
//! ```
//!
//! At start (in [`crate::journal::ShardJournal::enable_snapshots`], after recovery and before
//! the shard serves) the recovered engine is serialized once on the starting thread and the
//! helper loads it back as its shadow at the journal's last sequence. From then on the helper
//! keeps the shadow in step with the journal by itself: it reads the segment files through
//! [`Storage`] (for real files the same page cache the writer maps), never past the durable
//! watermark ([`veloz_journal::follow`]). The shard only appends; there is no hook on its path.
//!
//! Invariants:
//! - A snapshot describes exactly the journal up to its sequence: the shadow is the recovered
//!   engine plus every record after it, applied in order by the code recovery uses, and each
//!   checkpoint record on the way is checked against the shadow's state hash. A bad record, a
//!   missing segment or a checkpoint that disagrees stops the helper (logged, counted in
//!   [`SnapshotStats::failures`]); it never writes a snapshot after that. A file that cannot
//!   be listed or opened (an I/O error) is retried every second, the shadow intact.
//! - A snapshot only covers durable records (the follower reads no further).
//! - Triggers: `[snapshot] every_records` snapshots land exactly every N sequence numbers
//!   after the recovered journal end (the helper applies up to the boundary and stops there);
//!   `every_ms` snapshots are taken at whatever sequence is durable once that many
//!   milliseconds of wall-clock time have passed since the last one, if records were journaled
//!   meanwhile.
//! - Errors (a write, a prune, a bad record) are logged with `tracing` and counted; none ever
//!   reaches the shard. A failed write is retried at the next trigger.
//!
//! Costs, all off the shard's core: a second engine per shard (memory as large as the
//! shard's own: about 130-160 bytes per resting order, ~150 MB per million, estimated from the
//! structures: a 72-byte order node, its order-id index slot and client-id map entry), the
//! matching work of every command a second time, and per snapshot one state-hash walk and one
//! serialization pass (~0.26 s + 0.28 s per million resting orders) plus the file write. The
//! shard pays once at start-up, before it serves: one serialization of the recovered engine.
//!
//! Known limits: the helper's CPU must come from a core the shard does not use. On the 2-vCPU
//! development host it shares one with the load generator, and the order path's p99.9 there
//! was 1.3-2.8x that of runs without snapshots (docs/BENCHMARKS.md, "Snapshots"), which is why
//! `[snapshot]` stays off by default. The time trigger uses the helper's wall clock, not the
//! journal's timestamps.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use veloz_config::SnapshotConfig;
use veloz_core::{Engine, Seq};
use veloz_journal::follow::{FollowError, JournalFollower};
use veloz_journal::replay::apply_record;
use veloz_journal::{snapshot, DurableWatermark, JournalError, RetentionMode, Storage};

/// How often the helper looks at the watermark when it has caught up.
const POLL: Duration = Duration::from_millis(5);
/// Records applied per step at most, so that a stop is seen promptly while catching up.
const STEP: u64 = 1 << 16;
/// After a journal file could not be read, the helper tries again this much later.
const RETRY: Duration = Duration::from_secs(1);

/// What the helper did, for the shard's metrics (read once per metrics interval).
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Snapshots written.
    pub written: AtomicU64,
    /// Errors: a snapshot not written or not pruned, or the shadow stopped (a journal record
    /// it cannot read, a checkpoint that disagrees).
    pub failures: AtomicU64,
    /// Sequence of the newest snapshot written (0: none yet).
    pub last_seq: AtomicU64,
    /// The last record applied to the shadow.
    pub shadow_seq: AtomicU64,
}

/// The shard's handle on its snapshot helper thread.
#[derive(Debug)]
pub struct Snapshotter {
    shard: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<SnapshotStats>,
}

/// Everything the helper thread owns.
struct Helper<S: Storage> {
    storage: S,
    watermark: DurableWatermark,
    shard: u16,
    every_records: u64,
    every: Option<Duration>,
    keep: usize,
    retention: RetentionMode,
    stop: Arc<AtomicBool>,
    stats: Arc<SnapshotStats>,
}

impl Snapshotter {
    /// Start the helper for `shard`'s snapshots in `storage`, whose journal's progress is
    /// `watermark`, with `engine` the state recovered up to `last_seq` (the journal's end).
    /// Serializes `engine` once, here, for the helper's shadow. `None` if `config` disables
    /// snapshots or the thread cannot start (logged).
    pub fn start<S: Storage>(
        config: &SnapshotConfig,
        retention: RetentionMode,
        storage: S,
        watermark: DurableWatermark,
        engine: &Engine,
        last_seq: Seq,
    ) -> Option<Snapshotter> {
        if !config.enabled() {
            return None;
        }
        let shard = engine.shard();
        let mut body = Vec::new();
        snapshot::encode_body(engine, &mut body);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SnapshotStats::default());
        stats.shadow_seq.store(last_seq, Ordering::Relaxed);
        let helper = Helper {
            storage,
            watermark,
            shard,
            every_records: config.every_records,
            every: (config.every_ms > 0).then(|| Duration::from_millis(config.every_ms)),
            keep: config.keep,
            retention,
            stop: Arc::clone(&stop),
            stats: Arc::clone(&stats),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("veloz-snap-{shard}"))
            .spawn(move || helper.run(body, last_seq));
        match spawned {
            Ok(thread) => Some(Snapshotter {
                shard,
                stop,
                thread: Some(thread),
                stats,
            }),
            Err(e) => {
                tracing::warn!(target: "veloz::journal", shard, "cannot start the snapshot thread, no snapshots: {e}");
                None
            }
        }
    }

    /// What the helper did so far.
    pub fn stats(&self) -> &SnapshotStats {
        &self.stats
    }

    /// Stop the helper and wait for it (a snapshot being written is finished first).
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            if t.join().is_err() {
                tracing::warn!(target: "veloz::journal", shard = self.shard, "the snapshot thread panicked");
            }
        }
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<S: Storage> Helper<S> {
    fn run(self, body: Vec<u8>, start_seq: Seq) {
        let shard = self.shard;
        let mut shadow = match Engine::read_snapshot(&body[snapshot::SNAP_HEADER_LEN..]) {
            Ok(e) => e,
            Err(e) => {
                self.failed(format!(
                    "the recovered engine does not load back ({e}), no snapshots"
                ));
                return;
            }
        };
        drop(body);
        let mut follower = JournalFollower::new(self.storage.clone(), shard, start_seq);
        let mut scratch = Vec::with_capacity(64);
        let mut file = Vec::new();
        let mut last_snapshot = start_seq;
        let mut last_at = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            let durable = self.watermark.durable_seq();
            let mut target = durable.min(follower.last_seq() + STEP);
            if self.every_records > 0 {
                target = target.min(last_snapshot + self.every_records);
            }
            if target > follower.last_seq() {
                let applied =
                    follower.advance(target, |rec| apply_record(&mut shadow, rec, &mut scratch));
                self.stats
                    .shadow_seq
                    .store(follower.last_seq(), Ordering::Relaxed);
                match applied {
                    Ok(_) => {}
                    // Reading failed (a file could not be listed or opened): the shadow is
                    // intact at its last record; try again.
                    Err(e @ FollowError::Journal(JournalError::Io { .. })) => {
                        self.failed(format!(
                            "cannot read the journal after sequence {}: {e}; retrying in {} ms",
                            follower.last_seq(),
                            RETRY.as_millis()
                        ));
                        std::thread::park_timeout(RETRY);
                        continue;
                    }
                    Err(e) => {
                        self.failed(format!(
                            "the snapshot shadow stopped after sequence {}: {e}; no more snapshots until a restart",
                            follower.last_seq()
                        ));
                        return;
                    }
                }
            }
            let seq = follower.last_seq();
            let by_count = self.every_records > 0 && seq - last_snapshot >= self.every_records;
            let by_time = self
                .every
                .is_some_and(|every| seq > last_snapshot && last_at.elapsed() >= every);
            if by_count || by_time {
                self.write(&shadow, seq, &mut file);
                last_snapshot = seq;
                last_at = Instant::now();
            } else if seq >= durable {
                std::thread::park_timeout(POLL);
            }
        }
    }

    /// Encode the shadow at `seq`, write it durably, prune the old ones.
    fn write(&self, shadow: &Engine, seq: Seq, file: &mut Vec<u8>) {
        let shard = self.shard;
        let began = Instant::now();
        let hash = snapshot::encode(shadow, seq, file);
        let encode_ms = began.elapsed().as_secs_f64() * 1e3;
        let name = match snapshot::write(&self.storage, seq, file) {
            Ok(name) => name,
            Err(e) => {
                self.failed(format!("cannot write the snapshot at sequence {seq}: {e}"));
                return;
            }
        };
        let write_ms = began.elapsed().as_secs_f64() * 1e3 - encode_ms;
        self.stats.written.fetch_add(1, Ordering::Relaxed);
        self.stats.last_seq.store(seq, Ordering::Relaxed);
        let (orders, bytes) = (shadow.resting_orders(), file.len());
        tracing::info!(
            target: "veloz::journal",
            shard,
            snapshot = %self.storage.display_name(&name),
            sequence = seq,
            orders,
            bytes,
            encode_ms,
            write_ms,
            "wrote snapshot {name} at sequence {seq}: {orders} resting orders, {bytes} bytes, state hash {hash:016x}, encoded in {encode_ms:.1} ms and written in {write_ms:.1} ms by the helper"
        );
        match snapshot::prune(&self.storage, self.keep) {
            Ok(removed) if !removed.is_empty() => {
                tracing::debug!(target: "veloz::journal", shard, "removed old snapshots {removed:?}")
            }
            Ok(_) => {}
            Err(e) => self.failed(format!("cannot remove old snapshots: {e}")),
        }
        // Segments wholly before the oldest kept snapshot: archived or deleted as
        // `[retention]` says (recovery never needs them).
        match veloz_journal::archive::retain(&self.storage, shard, self.retention) {
            Ok(Some((point, out))) if out.retired() > 0 => tracing::info!(
                target: "veloz::journal",
                shard,
                "retention: {} segment(s) before the snapshot at sequence {point} {}",
                out.retired(),
                self.retention.done()
            ),
            Ok(_) => {}
            Err(e) => self.failed(format!("retention: {e}")),
        }
    }

    /// Log and count an error of the helper.
    fn failed(&self, why: String) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "veloz::journal", shard = self.shard, "snapshot: {why}");
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
