//! Rendering the engine's counters and latency summaries in the Prometheus text exposition
//! format (version 0.0.4), so `curl`, `nc` and a Prometheus server all read it.
//!
//! Conventions (checked by `promtool check metrics` in the tests): counters end in
//! `_total`; latencies are summaries in seconds (`veloz_<metric>_seconds` with quantiles 0.5,
//! 0.9, 0.99, 0.999, 0.9999, `_sum` and `_count`) plus a `veloz_<metric>_max_seconds` gauge;
//! every series has a `shard` label, `shard="all"` being the merge of every shard. Nothing
//! secret is ever rendered: accounts appear nowhere, tokens never reach this module.

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

/// Quantiles rendered for every latency summary.
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 0.9999];

/// One shard's cumulative state as the control thread holds it.
#[derive(Debug)]
pub struct ShardView<'a> {
    pub shard: u16,
    pub counters: &'a Counters,
    /// Cumulative latencies, by [`Latency`] index.
    pub latencies: &'a [Histogram<u64>; 5],
}

/// Render every metric: per shard, then merged (`shard="all"`); `log_dropped` is the
/// process's count of log events dropped by the non-blocking writer
/// ([`crate::logging::dropped`]).
pub fn render(
    shards: &[ShardView<'_>],
    merged: &[Histogram<u64>; 5],
    uptime_s: f64,
    log_dropped: u64,
) -> String {
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
    let simple: [CounterSeries; 19] = [
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
    ];
    for (name, help, kind, get) in simple {
        header(&mut out, name, help, kind);
        for s in shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, get(s.counters));
        }
    }

    for metric in Latency::ALL {
        let name = format!("veloz_{}_seconds", metric.name());
        header(&mut out, &name, metric.help(), "summary");
        for s in shards {
            summary(
                &mut out,
                &name,
                &s.shard.to_string(),
                &s.latencies[metric as usize],
            );
        }
        summary(&mut out, &name, "all", &merged[metric as usize]);
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
        let _ = writeln!(
            out,
            "{max}{{shard=\"all\"}} {}",
            secs(merged[metric as usize].max())
        );
    }
    out
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, values: &[(&str, f64)]) {
    header(out, name, help, "gauge");
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

fn summary(out: &mut String, name: &str, shard: &str, h: &Histogram<u64>) {
    for q in QUANTILES {
        let v = if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        };
        let _ = writeln!(
            out,
            "{name}{{shard=\"{shard}\",quantile=\"{q}\"}} {}",
            secs(v)
        );
    }
    let sum = h.mean() * h.len() as f64;
    let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {}", sum / 1e9);
    let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {}", h.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn renders_counters_and_summaries_per_shard_and_merged() {
        let mut counters = Counters {
            commands: [5, 1, 2, 0, 0],
            trades: 3,
            ..Default::default()
        };
        counters.reject(RejectReason::UnknownOrder);
        let mut lat: [Histogram<u64>; 5] = std::array::from_fn(|_| new_histogram());
        for v in 1..=1000u64 {
            lat[Latency::IngressToAck as usize]
                .record(v * 1_000)
                .unwrap();
        }
        let views = [ShardView {
            shard: 0,
            counters: &counters,
            latencies: &lat,
        }];
        let text = render(&views, &lat, 1.5, 7);
        for line in [
            "veloz_up 1",
            "veloz_shards 1",
            "# TYPE veloz_log_dropped_total counter",
            "veloz_log_dropped_total 7",
            "# TYPE veloz_commands_total counter",
            "veloz_commands_total{shard=\"0\",type=\"new\"} 5",
            "veloz_commands_total{shard=\"0\",type=\"replace\"} 2",
            "veloz_trades_total{shard=\"0\"} 3",
            "veloz_rejects_total{shard=\"0\",reason=\"unknown_order\"} 1",
            "veloz_rejects_total{shard=\"0\",reason=\"price_off_tick\"} 0",
            "# TYPE veloz_ingress_to_ack_seconds summary",
            "veloz_ingress_to_ack_seconds_count{shard=\"0\"} 1000",
            "veloz_ingress_to_ack_seconds_count{shard=\"all\"} 1000",
            "veloz_matching_seconds{shard=\"all\",quantile=\"0.99\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        // p50 of 1..=1000 us is 500 us (within HDR's 3 significant digits).
        let p50 = text
            .lines()
            .find(|l| l.starts_with("veloz_ingress_to_ack_seconds{shard=\"0\",quantile=\"0.5\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!((p50 - 0.0005).abs() < 0.000001, "{p50}");
        // Every series line has a HELP and TYPE before it.
        for name in text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
        {
            let base = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "no TYPE for {name}"
            );
        }
    }
}
