//! Latency reports the control thread writes while the engine runs and at shutdown.
//!
//! - One HdrHistogram interval log per latency metric, `REPORTS/<metric>.hlog` (values in
//!   ns, the standard format HdrHistogram's own tools and `veloz report` read), one line per
//!   shard (tag `shardN`) and snapshot interval; flushed on every line, so the files can be
//!   read while the engine runs.
//! - At shutdown, `REPORTS/latency-report.txt` (also printed on stdout): per metric a
//!   percentile table with a column per shard and one for all shards merged, then
//!   throughput, trades and rejects by reason.
//!
//! A log that cannot be written is reported once on stderr and then left alone: reports
//! never stop the engine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use veloz_core::RejectReason;
use veloz_report::hdrlog::IntervalLog;
use veloz_report::summary::{render_report, Report, Summary};

use super::metrics::{Latency, ShardSnapshot, COMMAND_TYPES};
use super::totals::Totals;

/// File name of the shutdown report.
pub const REPORT_FILE: &str = "latency-report.txt";

/// The report writers of one engine run.
#[derive(Debug)]
pub struct Reports {
    dir: PathBuf,
    /// One log per [`Latency`]; `None` after a write failed.
    logs: Vec<Option<IntervalLog>>,
}

impl Reports {
    /// Create `dir` and one interval log per metric, starting at `start`.
    pub fn create(dir: &Path, start: SystemTime) -> std::io::Result<Reports> {
        std::fs::create_dir_all(dir)?;
        let mut logs = Vec::new();
        for metric in Latency::ALL {
            let path = dir.join(format!("{}.hlog", metric.name()));
            let comment = format!(
                "veloz {}: {} (ns); tag = shard",
                metric.name(),
                metric.help()
            );
            let log = IntervalLog::create_with_comments(&path, start, &[&comment])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            logs.push(Some(log));
        }
        Ok(Reports {
            dir: dir.to_path_buf(),
            logs,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Log one shard's interval.
    pub fn interval(&mut self, snap: &ShardSnapshot) {
        let tag = format!("shard{}", snap.shard);
        let start = Duration::from_nanos(snap.start_ns);
        let duration = Duration::from_nanos(snap.end_ns.saturating_sub(snap.start_ns));
        for (i, slot) in self.logs.iter_mut().enumerate() {
            let Some(log) = slot else { continue };
            if let Err(e) = log.write_interval(Some(&tag), start, duration, &snap.intervals[i]) {
                tracing::warn!(
                    target: "veloz::control",
                    "latency log {} stops: {e}",
                    log.path().display()
                );
                *slot = None;
            }
        }
    }

    /// Write and print the shutdown report.
    pub fn finish(&mut self, control: &Totals) {
        let text = render_shutdown(control, &self.dir);
        print!("{text}");
        let path = self.dir.join(REPORT_FILE);
        if let Err(e) = std::fs::write(&path, &text) {
            tracing::warn!(target: "veloz::control", "cannot write {}: {e}", path.display());
        }
    }
}

/// The readable report: percentile tables, throughput, trades, rejects.
pub fn render_shutdown(control: &Totals, dir: &Path) -> String {
    let elapsed = control.started.elapsed();
    let merged = control.merged();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "veloz latency report ({} shards, {:.1} s)",
        control.shards.len(),
        elapsed.as_secs_f64()
    );
    for metric in Latency::ALL {
        let mut summaries: Vec<Summary> = control
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Summary::from_histogram(
                    metric.name(),
                    Some(&format!("shard{i}")),
                    &s.latencies[metric as usize],
                    s.counters.intervals as usize,
                    elapsed,
                )
            })
            .collect();
        summaries.push(Summary::from_histogram(
            metric.name(),
            Some("all"),
            &merged[metric as usize],
            control
                .shards
                .iter()
                .map(|s| s.counters.intervals as usize)
                .sum(),
            elapsed,
        ));
        let report = Report {
            files: vec![dir
                .join(format!("{}.hlog", metric.name()))
                .display()
                .to_string()],
            summaries,
        };
        let _ = writeln!(out, "\n== {}: {}", metric.name(), metric.help());
        out.push_str(&render_report(&report));
    }
    let _ = writeln!(out, "\n== commands");
    let mut total = 0u64;
    for (i, s) in control.shards.iter().enumerate() {
        let c = &s.counters;
        let sum: u64 = c.commands.iter().sum();
        total += sum;
        let kinds: Vec<String> = COMMAND_TYPES
            .iter()
            .zip(c.commands)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "shard{i}: {sum} commands ({}), {} trades, {} sessions accepted, {} slow consumers",
            kinds.join(", "),
            c.trades,
            c.sessions_accepted,
            c.slow_consumers
        );
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "all: {total} commands, {:.0} commands/s over the run",
        total as f64 / secs
    );
    let _ = writeln!(out, "\n== rejects");
    let mut any = false;
    for (r, reason) in RejectReason::ALL.iter().enumerate() {
        let n: u64 = control.shards.iter().map(|s| s.counters.rejects[r]).sum();
        if n > 0 {
            any = true;
            let _ = writeln!(out, "{:<28} {n}", reason.name());
        }
    }
    if !any {
        let _ = writeln!(out, "none");
    }
    let _ = writeln!(
        out,
        "\ninterval logs: {} (read them with `veloz report`)",
        dir.display()
    );
    out
}
