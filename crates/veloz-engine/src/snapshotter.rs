//! Periodic snapshots of a shard's engine, without the shard waiting for the disk.
//!
//! The shard serializes its engine into a reusable buffer on its own core (one pass over the
//! resting orders, ~56 bytes each: see [`veloz_journal::snapshot::encode_body`]) when a trigger
//! fires (`[snapshot] every_records` records or `every_ms` milliseconds since the last one),
//! and hands the bytes to a helper thread off the shard's core. The helper waits until the
//! journal is durable up to the snapshot's sequence (a snapshot must never describe state the
//! journal could lose), loads the body back to compute the state hash and check it
//! ([`veloz_journal::snapshot::seal_from_body`]: the hash walk is as long as the
//! serialization, so it is kept off the shard), writes the file (temp, fsync, rename, directory fsync), removes all
//! but the `keep` newest, and hands the buffer back. While a snapshot is being written no new
//! one is started (the trigger stays armed until the buffer is back).
//!
//! Known limit: serializing is a stop-the-shard pass, linear in the resting orders: measured
//! at about 0.26 s for 1M resting orders (56 MB; `snapshot_of_a_million_resting_orders` in
//! veloz-core), far beyond the order path's p99.9. For large books the design to move to is
//! incremental: copy the order slab (a flat `Vec` of plain nodes, one `memcpy`, ~10 ms per
//! 1M at memory bandwidth) and the level and ladder arrays on the shard, and let the helper
//! walk the copy; or copy-on-write pages of the slab while the shard goes on.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use veloz_config::SnapshotConfig;
use veloz_core::{Engine, Seq, Timestamp};
use veloz_journal::{snapshot, DurableWatermark, Storage};

/// One snapshot on its way to disk.
struct Job {
    seq: Seq,
    bytes: Vec<u8>,
    orders: usize,
    encode_us: u64,
}

/// The shard's side of periodic snapshots.
pub struct Snapshotter {
    shard: u16,
    every_records: u64,
    every_ns: u64,
    last_seq: Seq,
    last_ts: Timestamp,
    /// The buffer, when no snapshot is being written.
    buf: Option<Vec<u8>>,
    to_helper: Option<SyncSender<Job>>,
    from_helper: Receiver<Vec<u8>>,
    /// Snapshots handed to the helper.
    pub taken: u64,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("shard", &self.shard)
            .field("every_records", &self.every_records)
            .field("every_ns", &self.every_ns)
            .field("last_seq", &self.last_seq)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Snapshotter {
    /// Start the helper thread for `shard`'s snapshots in `storage`, whose journal's progress
    /// is `watermark` and whose last record is `last_seq`. `None` if `config` disables them or
    /// the thread cannot start (logged).
    pub fn start<S: Storage>(
        config: &SnapshotConfig,
        storage: S,
        watermark: DurableWatermark,
        shard: u16,
        last_seq: Seq,
    ) -> Option<Snapshotter> {
        if !config.enabled() {
            return None;
        }
        let (to_helper, jobs) = mpsc::sync_channel::<Job>(1);
        let (back, from_helper) = mpsc::channel::<Vec<u8>>();
        let keep = config.keep;
        let spawned = std::thread::Builder::new()
            .name(format!("veloz-snap-{shard}"))
            .spawn(move || helper(storage, watermark, shard, keep, jobs, back));
        if let Err(e) = spawned {
            tracing::warn!(target: "veloz::journal", shard, "cannot start the snapshot thread, no snapshots: {e}");
            return None;
        }
        Some(Snapshotter {
            shard,
            every_records: config.every_records,
            every_ns: config.every_ms.saturating_mul(1_000_000),
            last_seq,
            last_ts: 0,
            buf: Some(Vec::new()),
            to_helper: Some(to_helper),
            from_helper,
            taken: 0,
        })
    }

    /// After record `seq` (journaled at `ts`) was applied to `engine`: take a snapshot if one
    /// is due and none is being written. Cheap when none is due (two compares).
    #[inline]
    pub fn after_apply(&mut self, engine: &Engine, seq: Seq, ts: Timestamp) {
        if self.last_ts == 0 {
            self.last_ts = ts;
        }
        let by_count = self.every_records > 0 && seq - self.last_seq >= self.every_records;
        let by_time = self.every_ns > 0 && ts.saturating_sub(self.last_ts) >= self.every_ns;
        if by_count || by_time {
            self.take(engine, seq, ts);
        }
    }

    #[cold]
    fn take(&mut self, engine: &Engine, seq: Seq, ts: Timestamp) {
        if self.buf.is_none() {
            match self.from_helper.try_recv() {
                Ok(buf) => self.buf = Some(buf),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.to_helper = None;
                    self.every_records = 0;
                    self.every_ns = 0;
                    return;
                }
            }
        }
        let (Some(mut bytes), Some(tx)) = (self.buf.take(), self.to_helper.as_ref()) else {
            return;
        };
        let began = std::time::Instant::now();
        snapshot::encode_body(engine, &mut bytes);
        let encode_us = began.elapsed().as_micros() as u64;
        let job = Job {
            seq,
            bytes,
            orders: engine.resting_orders(),
            encode_us,
        };
        if let Err(mpsc::TrySendError::Full(job) | mpsc::TrySendError::Disconnected(job)) =
            tx.try_send(job)
        {
            self.buf = Some(job.bytes);
            return;
        }
        self.taken += 1;
        self.last_seq = seq;
        self.last_ts = ts;
    }

    /// Let the helper finish the snapshot it holds and stop (at shutdown, after the journal
    /// is closed and so durable).
    pub fn finish(&mut self) {
        self.to_helper = None;
        // The helper hands the buffer back when it is done, then ends.
        let _ = self.from_helper.recv_timeout(Duration::from_secs(30));
    }
}

/// The helper thread: wait for durability, write, prune, hand the buffer back.
fn helper<S: Storage>(
    storage: S,
    watermark: DurableWatermark,
    shard: u16,
    keep: usize,
    jobs: Receiver<Job>,
    back: mpsc::Sender<Vec<u8>>,
) {
    while let Ok(mut job) = jobs.recv() {
        // The state hash and CRCs are computed here, off the shard's core, from the body
        // loaded back (which also checks it).
        if let Err(why) = snapshot::seal_from_body(&mut job.bytes, job.seq) {
            tracing::warn!(target: "veloz::journal", shard, "snapshot at sequence {} does not load back, not written: {why}", job.seq);
            if back.send(job.bytes).is_err() {
                return;
            }
            continue;
        }
        let mut durable = true;
        while watermark.durable_seq() < job.seq {
            if watermark.failed() {
                durable = false;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if durable {
            let began = std::time::Instant::now();
            match snapshot::write(&storage, job.seq, &job.bytes) {
                Ok(name) => {
                    let write_ms = began.elapsed().as_secs_f64() * 1e3;
                    tracing::info!(
                        target: "veloz::journal",
                        shard,
                        snapshot = %storage.display_name(&name),
                        sequence = job.seq,
                        orders = job.orders,
                        bytes = job.bytes.len(),
                        encode_us = job.encode_us,
                        write_ms,
                        "wrote snapshot {name} at sequence {}: {} resting orders, {} bytes, serialized on the shard in {} us, written in {write_ms:.1} ms",
                        job.seq, job.orders, job.bytes.len(), job.encode_us
                    );
                    match snapshot::prune(&storage, keep) {
                        Ok(removed) if !removed.is_empty() => tracing::debug!(
                            target: "veloz::journal", shard, "removed old snapshots {removed:?}"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(
                            target: "veloz::journal", shard, "cannot remove old snapshots: {e}"
                        ),
                    }
                }
                Err(e) => tracing::warn!(
                    target: "veloz::journal",
                    shard,
                    "cannot write snapshot at sequence {}: {e}",
                    job.seq
                ),
            }
        }
        if back.send(job.bytes).is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
