//! What a shard measures, and the snapshots it sends to the control thread.
//!
//! Each shard owns a [`ShardMetrics`]: five HDR histograms (nanoseconds, 3 significant
//! digits, 1 ns .. 60 s) and plain counters. Recording takes no lock and allocates nothing:
//! a histogram `record` is an index computation and an add. Every
//! `metrics.interval_ms` the shard moves its interval histograms into a boxed
//! [`ShardSnapshot`] (the only allocation, once per interval) and sends it over its control
//! ring; the control thread merges snapshots and never reads shard memory.
//!
//! Latencies (all in ns, timestamps from `minstant`, whose TSC reads agree across cores):
//! - `ingress_to_ack`: from the session reading a command's frame to its first report being
//!   queued on the session (crossing shards if the instrument lives elsewhere);
//! - `matching`: `Engine::apply` of one command;
//! - `journal_append`: the journal append of one command;
//! - `commit_wait`: from the append to the release of the command's reports (group commit
//!   waiting for durability; near zero with `durability = "none"`);
//! - `ring_hop`: from the session reading a command to the owning shard draining it from
//!   the ring (cross-shard commands only).

use hdrhistogram::Histogram;

use veloz_core::RejectReason;

/// Highest value a histogram tracks: 60 s in ns (larger values are clamped to it).
pub const HIST_MAX_NS: u64 = 60_000_000_000;

/// The latency metrics, in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    IngressToAck = 0,
    Matching = 1,
    JournalAppend = 2,
    CommitWait = 3,
    RingHop = 4,
}

impl Latency {
    pub const ALL: [Latency; 5] = [
        Latency::IngressToAck,
        Latency::Matching,
        Latency::JournalAppend,
        Latency::CommitWait,
        Latency::RingHop,
    ];

    /// Metric name stem (Prometheus `veloz_<name>_seconds`, interval log `<name>.hlog`).
    pub fn name(self) -> &'static str {
        match self {
            Latency::IngressToAck => "ingress_to_ack",
            Latency::Matching => "matching",
            Latency::JournalAppend => "journal_append",
            Latency::CommitWait => "commit_wait",
            Latency::RingHop => "ring_hop",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Latency::IngressToAck => {
                "From reading a command's frame to queuing its first report on the session"
            }
            Latency::Matching => "Matching-core time per command",
            Latency::JournalAppend => "Journal append time per command",
            Latency::CommitWait => {
                "From journal append to release of the command's reports (group commit)"
            }
            Latency::RingHop => {
                "From reading a command to its owning shard draining it from the ring"
            }
        }
    }
}

/// A histogram for one latency metric.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static histogram bounds are valid")
}

/// Kinds of command, for the per-type counter.
pub const COMMAND_TYPES: [&str; 5] = ["new", "cancel", "replace", "mass_cancel", "admin"];

/// Cumulative counters of one shard (since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Commands sequenced, by [`COMMAND_TYPES`] index.
    pub commands: [u64; 5],
    pub trades: u64,
    /// Rejects, by position in [`RejectReason::ALL`].
    pub rejects: [u64; RejectReason::ALL.len()],
    pub sessions_accepted: u64,
    /// Sessions open now (a gauge).
    pub sessions_open: u64,
    /// Logons answered with AuthenticationFailed (a checked token, or a back-off).
    pub logons_refused: u64,
    /// Of those, refused during a back-off of the account or address, token not checked.
    pub logons_backed_off: u64,
    /// Connections closed at accept, unread: their address is backed off.
    pub connections_backed_off: u64,
    /// Connections closed at accept, unread: too many from their address not logged on.
    pub connections_over_pending_limit: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub ring_full: u64,
    pub slow_consumers: u64,
    /// Reports resent to sessions that logged on with a resend request.
    pub reports_resent: u64,
    pub journal_records: u64,
    pub journal_bytes: u64,
    pub journal_syncs: u64,
    /// 1 while the shard's journal is unavailable (refuses appends), else 0 (a gauge;
    /// rendered inverted as `veloz_journal_available`).
    pub journal_unavailable: u64,
    /// Times the journal became unavailable.
    pub journal_unavailable_episodes: u64,
    /// Snapshots the shard's snapshot helper wrote (`crate::snapshotter`).
    pub snapshots_written: u64,
    /// Errors of the snapshot helper (a snapshot not written or pruned, the shadow stopped).
    pub snapshot_failures: u64,
    /// Metrics intervals the shard has closed ([`ShardMetrics::snapshot`]): one every
    /// `metrics.interval_ms` while its event loop runs, so a count that stops moving while
    /// the engine serves is a stalled shard (its heartbeat, `veloz_shard_intervals_total`).
    pub intervals: u64,
    /// 1 while the shard's sockets run on its io_uring, 0 on std sockets (a gauge).
    pub net_uring: u64,
    /// 1 while the shard's group-commit syncs run on its io_uring, 0 otherwise (a gauge).
    pub sync_uring: u64,
    /// The shard ring's `io_uring_enter` calls, completions, and receives that ran out of
    /// provided buffers ([`veloz_uring::RingStats`]).
    pub uring_enters: u64,
    pub uring_completions: u64,
    pub uring_no_buffers: u64,
}

impl Counters {
    pub fn reject(&mut self, reason: RejectReason) {
        if let Some(i) = RejectReason::ALL.iter().position(|r| *r == reason) {
            self.rejects[i] += 1;
        }
    }
}

/// What a shard sends each interval.
#[derive(Debug)]
pub struct ShardSnapshot {
    pub shard: u16,
    /// Interval bounds, ns since the engine's start.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Latencies recorded during the interval, by [`Latency`] index.
    pub intervals: [Histogram<u64>; 5],
    /// Cumulative counters at the end of the interval.
    pub counters: Counters,
}

/// A shard's recorder.
#[derive(Debug)]
pub struct ShardMetrics {
    pub shard: u16,
    hist: [Histogram<u64>; 5],
    pub counters: Counters,
    interval_start_ns: u64,
}

impl ShardMetrics {
    pub fn new(shard: u16, now_ns: u64) -> ShardMetrics {
        ShardMetrics {
            shard,
            hist: std::array::from_fn(|_| new_histogram()),
            counters: Counters::default(),
            interval_start_ns: now_ns,
        }
    }

    /// Record one latency (clamped to the tracked range).
    #[inline]
    pub fn record(&mut self, metric: Latency, ns: u64) {
        self.hist[metric as usize].saturating_record(ns.max(1));
    }

    /// Take the interval's histograms (leaving empty ones) into a snapshot; counts the
    /// interval in [`Counters::intervals`].
    pub fn snapshot(&mut self, now_ns: u64) -> Box<ShardSnapshot> {
        self.counters.intervals += 1;
        let intervals = std::array::from_fn(|i| {
            let mut fresh = new_histogram();
            std::mem::swap(&mut fresh, &mut self.hist[i]);
            fresh
        });
        let snap = Box::new(ShardSnapshot {
            shard: self.shard,
            start_ns: self.interval_start_ns,
            end_ns: now_ns,
            intervals,
            counters: self.counters,
        });
        self.interval_start_ns = now_ns;
        snap
    }

    /// When the current interval started.
    pub fn interval_start_ns(&self) -> u64 {
        self.interval_start_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_carry_the_interval_and_reset_it() {
        let mut m = ShardMetrics::new(3, 100);
        m.record(Latency::Matching, 40);
        m.record(Latency::Matching, 60);
        m.record(Latency::RingHop, 0); // clamped to 1
        m.record(Latency::IngressToAck, u64::MAX); // clamped to the top
        m.counters.trades = 7;
        m.counters.reject(RejectReason::PriceOffTick);
        let s = m.snapshot(1_100);
        assert_eq!((s.shard, s.start_ns, s.end_ns), (3, 100, 1_100));
        assert_eq!(s.intervals[Latency::Matching as usize].len(), 2);
        assert_eq!(s.intervals[Latency::RingHop as usize].min(), 1);
        assert!(s.intervals[Latency::IngressToAck as usize].max() >= HIST_MAX_NS / 2);
        assert_eq!(s.counters.trades, 7);
        assert_eq!(s.counters.rejects[1], 1); // price_off_tick is second in ALL
        assert_eq!(s.counters.intervals, 1);
        let next = m.snapshot(2_100);
        assert_eq!(next.start_ns, 1_100);
        assert!(next.intervals.iter().all(|h| h.is_empty()));
        assert_eq!(next.counters.trades, 7, "counters are cumulative");
        assert_eq!(next.counters.intervals, 2, "each snapshot is one interval");
    }
}
