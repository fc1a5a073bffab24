//! Rendering the engine's counters and latency histograms in the Prometheus text exposition
//! format (version 0.0.4), so `curl`, `nc` and a Prometheus server all read it.
//!
//! Conventions (checked by `promtool check metrics` in the tests): counters end in
//! `_total`; every shard series has a `shard` label (`shard="0"`, ...) and there is no merged
//! series: Prometheus sums shards (and engines) itself, e.g. `sum(veloz_commands_total)`.
//! Latencies are histograms in seconds, `veloz_<metric>_seconds_bucket{shard,le}`, `_sum` and
//! `_count`, with the fixed bounds [`BUCKETS_NS`] (the same for every metric, so
//! `histogram_quantile(0.99, sum by (le) (rate(veloz_<metric>_seconds_bucket[1m])))` works
//! across shards and engines), plus a `veloz_<metric>_max_seconds` gauge per shard.
//!
//! A bucket's count is read from the shard's cumulative HDR histogram: every HDR bin whose
//! lowest value is at most the bound, as `Histogram::count_between(0, bound)` counts. It is
//! exact at the bound within HDR's precision (3 significant digits: a bin is at most 0.1% of
//! its value wide; below 2048 ns bins are 1 ns). `_sum` is the HDR mean times the count, to the
//! same precision. Nothing secret is ever rendered: accounts appear nowhere, tokens never
//! reach this module.

use std::fmt::Write;

use hdrhistogram::Histogram;

use veloz_core::RejectReason;

use super::metrics::{Counters, Latency, COMMAND_TYPES};

/// A plain per-shard series: name, help, Prometheus type, and how to read it.
type CounterSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Counters) -> u64,
);

/// Upper bounds (`le`, inclusive) of the latency histograms' buckets, in ns: 100 ns to 1 s,
/// 1-2-5 per decade. Matching sits in the sub-microsecond decade, the hops and acks in
/// microseconds, group commit (a disk sync) in the hundreds of microseconds to
/// milliseconds; a value over 1 s is an outage and lands in `+Inf` (its size in
/// `_max_seconds`). 22 bounds + `+Inf` per shard and metric.
pub const BUCKETS_NS: [u64; 22] = [
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
];

/// One shard's cumulative state as the control thread holds it.
#[derive(Debug)]
pub struct ShardView<'a> {
    pub shard: u16,
    pub counters: &'a Counters,
    /// Cumulative latencies, by [`Latency`] index.
    pub latencies: &'a [Histogram<u64>; 5],
}

/// Render every metric, per shard; `log_dropped` is the process's count of log events
/// dropped by the non-blocking writer ([`crate::logging::dropped`]).
///
/// `_merged` (every shard's latencies added up, which the shutdown report prints) is not
/// rendered: a merged series would count every command twice in a Prometheus `sum`.
pub fn render(shards: &[ShardView<'_>], uptime_s: f64, log_dropped: u64) -> String {
    let mut out = String::with_capacity(16 * 1024);
    gauge(
        &mut out,
        "veloz_up",
        "1 while the engine serves",
        &[("", 1.0)],
    );
    gauge(
        &mut out,
        "veloz_uptime_seconds",
        "Seconds since the engine started",
        &[("", uptime_s)],
    );
    gauge(
        &mut out,
        "veloz_shards",
        "Shards (pinned executors) serving",
        &[("", shards.len() as f64)],
    );
    header(
        &mut out,
        "veloz_log_dropped_total",
        "Log events dropped because the log writer's queue was full (stderr not read fast enough)",
        "counter",
    );
    let _ = writeln!(out, "veloz_log_dropped_total {log_dropped}");

    header(
        &mut out,
        "veloz_commands_total",
        "Commands sequenced and journaled, by type",
        "counter",
    );
    for s in shards {
        for (i, kind) in COMMAND_TYPES.iter().enumerate() {
            let _ = writeln!(
                out,
                "veloz_commands_total{{shard=\"{}\",type=\"{kind}\"}} {}",
                s.shard, s.counters.commands[i]
            );
        }
    }
    header(
        &mut out,
        "veloz_rejects_total",
        "Requests rejected, by reason",
        "counter",
    );
    for s in shards {
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "veloz_rejects_total{{shard=\"{}\",reason=\"{}\"}} {}",
                s.shard,
                reason.name(),
                s.counters.rejects[i]
            );
        }
    }
    let simple: [CounterSeries; 25] = [
        ("veloz_trades_total", "Trades executed", "counter", |c| {
            c.trades
        }),
        (
            "veloz_sessions_accepted_total",
            "Client connections accepted",
            "counter",
            |c| c.sessions_accepted,
        ),
        (
            "veloz_sessions_open",
            "Client connections open now",
            "gauge",
            |c| c.sessions_open,
        ),
        (
            "veloz_logons_refused_total",
            "Logons refused (unknown account, wrong token, or a logon back-off)",
            "counter",
            |c| c.logons_refused,
        ),
        (
            "veloz_logons_backed_off_total",
            "Logons refused during a logon back-off of their account or address, token not checked (also in veloz_logons_refused_total)",
            "counter",
            |c| c.logons_backed_off,
        ),
        (
            "veloz_connections_backed_off_total",
            "Connections closed at accept, unread: their address is in logon back-off",
            "counter",
            |c| c.connections_backed_off,
        ),
        (
            "veloz_connections_over_pending_limit_total",
            "Connections closed at accept, unread: too many from their address not logged on yet (gateway.max_pending_logons_per_ip)",
            "counter",
            |c| c.connections_over_pending_limit,
        ),
        (
            "veloz_received_bytes_total",
            "Bytes read from client sockets",
            "counter",
            |c| c.bytes_in,
        ),
        (
            "veloz_sent_bytes_total",
            "Bytes written to client sockets",
            "counter",
            |c| c.bytes_out,
        ),
        (
            "veloz_ring_full_total",
            "Pushes that found a shard-to-shard ring full (backpressure)",
            "counter",
            |c| c.ring_full,
        ),
        (
            "veloz_slow_consumer_disconnects_total",
            "Sessions disconnected for not reading their reports",
            "counter",
            |c| c.slow_consumers,
        ),
        (
            "veloz_reports_resent_total",
            "Reports resent from the accounts' streams at logon",
            "counter",
            |c| c.reports_resent,
        ),
        (
            "veloz_journal_records_total",
            "Records appended to the journal",
            "counter",
            |c| c.journal_records,
        ),
        (
            "veloz_journal_written_bytes_total",
            "Bytes appended to the journal",
            "counter",
            |c| c.journal_bytes,
        ),
        (
            "veloz_journal_syncs_total",
            "Journal syncs completed (group commit)",
            "counter",
            |c| c.journal_syncs,
        ),
        (
            "veloz_journal_available",
            "1 while the shard's journal takes commands, 0 while it is unavailable (disk full, write or sync error) and commands are rejected (docs/operations.md)",
            "gauge",
            |c| 1 - c.journal_unavailable.min(1),
        ),
        (
            "veloz_journal_unavailable_total",
            "Times the shard's journal became unavailable",
            "counter",
            |c| c.journal_unavailable_episodes,
        ),
        (
            "veloz_snapshots_written_total",
            "Snapshots written by the shard's snapshot helper thread",
            "counter",
            |c| c.snapshots_written,
        ),
        (
            "veloz_snapshot_failures_total",
            "Snapshot helper errors: a snapshot not written or pruned, or its shadow engine stopped (logged; docs/operations.md)",
            "counter",
            |c| c.snapshot_failures,
        ),
        (
            "veloz_shard_intervals_total",
            "Metrics intervals the shard has closed, one every metrics.interval_ms while its event loop runs (the shard's heartbeat: flat while the engine is up means the shard is stalled)",
            "counter",
            |c| c.intervals,
        ),
        (
            "veloz_network_io_uring",
            "1 while the shard's sockets run on its own io_uring, 0 on std sockets (gateway.network; the start-up log says why)",
            "gauge",
            |c| c.net_uring,
        ),
        (
            "veloz_journal_sync_io_uring",
            "1 while the shard's group-commit data syncs run on its own io_uring (no sync thread), 0 otherwise",
            "gauge",
            |c| c.sync_uring,
        ),
        (
            "veloz_io_uring_enters_total",
            "io_uring_enter calls of the shard's ring (submissions, waits for completions)",
            "counter",
            |c| c.uring_enters,
        ),
        (
            "veloz_io_uring_completions_total",
            "Completions reaped from the shard's ring (accepts, receives, sends, syncs)",
            "counter",
            |c| c.uring_completions,
        ),
        (
            "veloz_io_uring_recv_no_buffers_total",
            "Receives that found every provided buffer of the shard's ring taken (re-armed; nothing is lost)",
            "counter",
            |c| c.uring_no_buffers,
        ),
    ];
    for (name, help, kind, get) in simple {
        header(&mut out, name, help, kind);
        for s in shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, get(s.counters));
        }
    }

    for metric in Latency::ALL {
        let name = format!("veloz_{}_seconds", metric.name());
        header(&mut out, &name, metric.help(), "histogram");
        for s in shards {
            histogram(&mut out, &name, s.shard, &s.latencies[metric as usize]);
        }
        let max = format!("veloz_{}_max_seconds", metric.name());
        header(&mut out, &max, &format!("Largest value of {name}"), "gauge");
        for s in shards {
            let _ = writeln!(
                out,
                "{max}{{shard=\"{}\"}} {}",
                s.shard,
                secs(s.latencies[metric as usize].max())
            );
        }
    }
    out
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, values: &[(&str, f64)]) {
    header(out, name, help, "gauge");
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// Cumulative counts of `h` at each of [`BUCKETS_NS`]: the values of every HDR bin whose
/// lowest value is at most the bound. One pass over the recorded bins.
pub fn bucket_counts(h: &Histogram<u64>) -> [u64; BUCKETS_NS.len()] {
    let mut counts = [0u64; BUCKETS_NS.len()];
    for v in h.iter_recorded() {
        let low = h.lowest_equivalent(v.value_iterated_to());
        if let Some(i) = BUCKETS_NS.iter().position(|&bound| low <= bound) {
            counts[i] += v.count_at_value();
        }
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    counts
}

fn histogram(out: &mut String, name: &str, shard: u16, h: &Histogram<u64>) {
    for (bound, count) in BUCKETS_NS.iter().zip(bucket_counts(h)) {
        let _ = writeln!(
            out,
            "{name}_bucket{{shard=\"{shard}\",le=\"{}\"}} {count}",
            secs(*bound)
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{shard=\"{shard}\",le=\"+Inf\"}} {}",
        h.len()
    );
    let sum = h.mean() * h.len() as f64;
    let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {}", sum / 1e9);
    let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {}", h.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    /// The value of the series `name{labels}` exactly.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    #[test]
    fn renders_counters_and_histograms_per_shard_only() {
        let mut counters = Counters {
            commands: [5, 1, 2, 0, 0],
            trades: 3,
            intervals: 9,
            ..Default::default()
        };
        counters.reject(RejectReason::UnknownOrder);
        let mut lat: [Histogram<u64>; 5] = std::array::from_fn(|_| new_histogram());
        for v in 1..=1000u64 {
            lat[Latency::IngressToAck as usize]
                .record(v * 1_000)
                .unwrap();
        }
        let other = Counters::default();
        let empty: [Histogram<u64>; 5] = std::array::from_fn(|_| new_histogram());
        let views = [
            ShardView {
                shard: 0,
                counters: &counters,
                latencies: &lat,
            },
            ShardView {
                shard: 1,
                counters: &other,
                latencies: &empty,
            },
        ];
        let text = render(&views, 1.5, 7);
        for line in [
            "veloz_up 1",
            "veloz_shards 2",
            "# TYPE veloz_log_dropped_total counter",
            "veloz_log_dropped_total 7",
            "# TYPE veloz_commands_total counter",
            "veloz_commands_total{shard=\"0\",type=\"new\"} 5",
            "veloz_commands_total{shard=\"0\",type=\"replace\"} 2",
            "veloz_commands_total{shard=\"1\",type=\"new\"} 0",
            "veloz_trades_total{shard=\"0\"} 3",
            "veloz_rejects_total{shard=\"0\",reason=\"unknown_order\"} 1",
            "veloz_rejects_total{shard=\"0\",reason=\"price_off_tick\"} 0",
            "# TYPE veloz_shard_intervals_total counter",
            "veloz_shard_intervals_total{shard=\"0\"} 9",
            "# TYPE veloz_ingress_to_ack_seconds histogram",
            "veloz_ingress_to_ack_seconds_count{shard=\"0\"} 1000",
            "veloz_ingress_to_ack_seconds_bucket{shard=\"0\",le=\"+Inf\"} 1000",
            "veloz_ingress_to_ack_seconds_bucket{shard=\"1\",le=\"+Inf\"} 0",
            "veloz_matching_seconds_bucket{shard=\"0\",le=\"0.0000001\"} 0",
            "veloz_matching_seconds_count{shard=\"1\"} 0",
            "veloz_ingress_to_ack_max_seconds{shard=\"1\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(
            !text.contains("shard=\"all\"") && !text.contains("quantile="),
            "no merged series, no summaries:\n{text}"
        );
        // 1, 2, ..., 1000 us: the bucket at N us holds exactly N values (le is inclusive).
        let bucket = |le: &str| {
            value(
                &text,
                &format!("veloz_ingress_to_ack_seconds_bucket{{shard=\"0\",le=\"{le}\"}}"),
            )
        };
        for (le, want) in [
            ("0.0000005", 0.0),
            ("0.000001", 1.0),
            ("0.000002", 2.0),
            ("0.000005", 5.0),
            ("0.00001", 10.0),
            ("0.00005", 50.0),
            ("0.0001", 100.0),
            ("0.0005", 500.0),
            ("0.001", 1000.0),
            ("1", 1000.0),
        ] {
            assert_eq!(bucket(le), want, "le={le}");
        }
        let sum = value(&text, "veloz_ingress_to_ack_seconds_sum{shard=\"0\"}");
        assert!((sum - 0.5005).abs() < 0.5005e-3, "{sum}");
        let max = value(&text, "veloz_ingress_to_ack_max_seconds{shard=\"0\"}");
        assert!((max - 0.001).abs() < 1e-6, "{max}");
        // Every series line has a HELP and TYPE before it.
        for name in text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
        {
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "no TYPE for {name}"
            );
        }
    }

    #[test]
    fn bucket_counts_are_cumulative_and_split_at_the_bounds() {
        let mut h = new_histogram();
        // At a bound (counted in it), one HDR bin above it (not), and past the last bound.
        for (ns, n) in [
            (100, 1),
            (101, 2),
            (50_000, 3),
            (50_100, 4),
            (1_000_000_000, 5),
            (2_000_000_000, 6),
        ] {
            h.record_n(ns, n).unwrap();
        }
        let counts = bucket_counts(&h);
        let at = |bound: u64| counts[BUCKETS_NS.iter().position(|&b| b == bound).unwrap()];
        assert_eq!(at(100), 1);
        assert_eq!(at(200), 3);
        assert_eq!(at(20_000), 3);
        assert_eq!(at(50_000), 6);
        assert_eq!(at(100_000), 10);
        assert_eq!(at(500_000_000), 10);
        assert_eq!(at(1_000_000_000), 15);
        assert_eq!(h.len(), 21, "the 2 s values only in +Inf");
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(bucket_counts(&new_histogram()), [0; BUCKETS_NS.len()]);
        // The buckets are the same as HdrHistogram's own count up to each bound.
        for (bound, count) in BUCKETS_NS.iter().zip(counts) {
            assert_eq!(count, h.count_between(0, *bound), "bound {bound}");
        }
    }
}
