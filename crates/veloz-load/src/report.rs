//! What `veloz load` reports: one [`RunResult`] per measured peer (Veloz, and the echo
//! baseline with `--baseline`), their ratios, and the run's settings, as JSON (serde) or a
//! readable table. Latencies are round trips in microseconds from each request's intended
//! send time to its first answer (see the module docs of [`super`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use veloz_report::grouped;

use super::conn::Counters;

/// Round-trip percentiles in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
    pub mean: f64,
    /// Latencies recorded.
    pub count: u64,
}

impl Percentiles {
    /// From a histogram of nanoseconds (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Percentiles {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            p99_99: us(h.value_at_quantile(0.9999)),
            max: us(h.max()),
            mean: h.mean() / 1_000.0,
            count: h.len(),
        }
    }

    fn values(&self) -> [f64; 6] {
        [
            self.p50,
            self.p90,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.max,
        ]
    }
}

/// Commands of the measured window by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixCounts {
    pub gtc: u64,
    pub ioc: u64,
    pub cancel: u64,
    #[serde(rename = "move")]
    pub moves: u64,
}

/// The measured window against one peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The address measured.
    pub target: String,
    /// Requests intended inside the window and sent.
    pub sent: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those, still unanswered when the drain gave up.
    pub unanswered: u64,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    pub sent_per_s: f64,
    pub answered_per_s: f64,
    pub latency_us: Percentiles,
    /// How late the load queued the requests after their intended send times, us: when it
    /// is a large part of `latency_us`, the load's core, not the peer, bounds the figures.
    #[serde(default)]
    pub send_lag_us: Percentiles,
    pub mix: MixCounts,
    /// Requests that traded (a fill as the taker).
    pub trading: u64,
    /// `trading / answered`.
    pub trading_ratio: f64,
    /// Rejected requests (answered with a reject).
    pub rejected: u64,
    /// `rejected / answered`.
    pub reject_ratio: f64,
    /// Rejected requests by reason name.
    pub rejects: BTreeMap<String, u64>,
}

impl RunResult {
    pub(crate) fn new(
        target: String,
        counters: &Counters,
        hist: &Histogram<u64>,
        duration_s: f64,
    ) -> RunResult {
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let share = |n: u64| {
            if counters.answered > 0 {
                n as f64 / counters.answered as f64
            } else {
                0.0
            }
        };
        let rejected = counters.rejects.values().sum();
        RunResult {
            target,
            sent: counters.sent,
            answered: counters.answered,
            unanswered: counters.unanswered,
            duration_s,
            sent_per_s: per_s(counters.sent),
            answered_per_s: per_s(counters.answered),
            latency_us: Percentiles::of(hist),
            send_lag_us: Percentiles::default(),
            mix: MixCounts {
                gtc: counters.gtc,
                ioc: counters.ioc,
                cancel: counters.cancels,
                moves: counters.moves,
            },
            trading: counters.trading,
            trading_ratio: share(counters.trading),
            rejected,
            reject_ratio: share(rejected),
            rejects: counters
                .rejects
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// Veloz's percentiles divided by the echo baseline's (`None` where the baseline is 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub p99_99: Option<f64>,
    pub max: Option<f64>,
}

impl Ratios {
    pub fn of(veloz: &Percentiles, floor: &Percentiles) -> Ratios {
        let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Ratios {
            p50: r(veloz.p50, floor.p50),
            p90: r(veloz.p90, floor.p90),
            p99: r(veloz.p99, floor.p99),
            p99_9: r(veloz.p99_9, floor.p99_9),
            p99_99: r(veloz.p99_99, floor.p99_99),
            max: r(veloz.max, floor.max),
        }
    }

    fn values(&self) -> [Option<f64>; 6] {
        [
            self.p50,
            self.p90,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.max,
        ]
    }
}

/// What the measured window cost the engine (`--engine-pid`), from `/proc` (see
/// [`super::cpu`]): CPU time (user plus system) between the window's start and end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineCpu {
    pub pid: u32,
    /// Seconds between the two samples.
    pub window_s: f64,
    /// Requests of the window (`veloz.sent`): the orders the CPU is divided by.
    pub orders: u64,
    /// The whole process, milliseconds.
    pub process_ms: f64,
    /// Its shard threads (`veloz-shard-*`), milliseconds.
    pub shard_ms: f64,
    pub shard_threads: usize,
    /// `process_ms` per 1,000 orders.
    pub process_ms_per_1000_orders: f64,
    /// `shard_ms` per 1,000 orders.
    pub shard_ms_per_1000_orders: f64,
    /// `process_ms` over the window: the cores the engine kept busy.
    pub cores_busy: f64,
    /// Resolution of each sample, milliseconds (one clock tick).
    pub resolution_ms: f64,
}

impl EngineCpu {
    /// From ticks spent by the process and its shards over `window_s`, for `orders`.
    pub fn new(
        pid: u32,
        ticks: (u64, u64),
        shard_threads: usize,
        ticks_per_s: u64,
        window_s: f64,
        orders: u64,
    ) -> EngineCpu {
        let ms = |t: u64| t as f64 * 1_000.0 / ticks_per_s.max(1) as f64;
        let per_1000 = |v: f64| {
            if orders > 0 {
                v * 1_000.0 / orders as f64
            } else {
                0.0
            }
        };
        let (process_ms, shard_ms) = (ms(ticks.0), ms(ticks.1));
        EngineCpu {
            pid,
            window_s,
            orders,
            process_ms,
            shard_ms,
            shard_threads,
            process_ms_per_1000_orders: per_1000(process_ms),
            shard_ms_per_1000_orders: per_1000(shard_ms),
            cores_busy: if window_s > 0.0 {
                process_ms / 1_000.0 / window_s
            } else {
                0.0
            },
            resolution_ms: ms(1),
        }
    }
}

/// Everything one `veloz load` run reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// `open_loop` or `closed_loop`.
    pub mode: String,
    /// `binary` or `fix` (FIX 4.4 sessions).
    #[serde(default)]
    pub protocol: String,
    /// Open loop: orders per second over all connections.
    pub rate: Option<u64>,
    /// Open loop: most requests in flight per connection.
    pub window: Option<usize>,
    /// Closed loop: requests in flight per connection.
    pub pipeline: Option<usize>,
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub seed: u64,
    /// Cores of the load threads (one thread per core).
    pub load_cores: Vec<usize>,
    pub online_cores: Vec<usize>,
    /// Cores of the echo baseline's threads.
    pub baseline_cores: Option<Vec<usize>>,
    /// Symbols traded.
    pub instruments: Vec<String>,
    pub veloz: RunResult,
    pub baseline: Option<RunResult>,
    pub ratio_to_baseline: Option<Ratios>,
    /// The engine's CPU over the window (`--engine-pid`).
    pub engine_cpu: Option<EngineCpu>,
    /// Interval log of the Veloz run, and how many intervals it holds.
    pub hlog: Option<String>,
    pub hlog_intervals: Option<usize>,
    /// Interval log of the baseline run.
    pub hlog_baseline: Option<String>,
    /// What a reader must know to read the figures (shared cores, unanswered requests).
    pub notes: Vec<String>,
}

impl LoadReport {
    /// The report as a readable table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let what = match (self.rate, self.pipeline) {
            (Some(rate), _) => format!(
                "open loop at {} orders/s (window {} per connection)",
                grouped(rate),
                self.window.unwrap_or(0)
            ),
            (None, Some(k)) => format!("closed loop, {k} in flight per connection"),
            _ => self.mode.clone(),
        };
        let _ = writeln!(
            s,
            "veloz load: {what} over {}{} connection(s) to {}, {:.1} s measured after {:.1} s warm-up, seed {}",
            self.connections,
            if self.protocol == "fix" { " FIX 4.4" } else { "" },
            self.veloz.target, self.duration_s, self.warmup_s, self.seed
        );
        let _ = writeln!(
            s,
            "  load threads on cores {:?} (online {:?}){}; instruments {}",
            self.load_cores,
            self.online_cores,
            self.baseline_cores
                .as_ref()
                .map(|c| format!(", echo baseline on cores {c:?}"))
                .unwrap_or_default(),
            self.instruments.join(" ")
        );
        let _ = writeln!(
            s,
            "\n  {:<14} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   round trip, us",
            "", "sent/s", "answered/s", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        let row = |s: &mut String, name: &str, r: &RunResult| {
            let _ = write!(
                s,
                "  {:<14} {:>12.0} {:>12.0}",
                name, r.sent_per_s, r.answered_per_s
            );
            for v in r.latency_us.values() {
                let _ = write!(s, " {v:>8.1}");
            }
            s.push('\n');
        };
        row(&mut s, "veloz", &self.veloz);
        if let Some(b) = &self.baseline {
            row(&mut s, "echo baseline", b);
        }
        if let Some(ratio) = &self.ratio_to_baseline {
            let _ = write!(s, "  {:<14} {:>12} {:>12}", "veloz / echo", "", "");
            for v in ratio.values() {
                match v {
                    Some(v) => {
                        let _ = write!(s, " {:>7.2}x", v);
                    }
                    None => {
                        let _ = write!(s, " {:>8}", "-");
                    }
                }
            }
            s.push('\n');
        }
        s.push('\n');
        let v = &self.veloz;
        let pct = |n: u64| {
            if v.sent > 0 {
                n as f64 * 100.0 / v.sent as f64
            } else {
                0.0
            }
        };
        let _ = writeln!(
            s,
            "  veloz: sent {}, answered {}, unanswered {}; mix GTC {:.1} %, IOC {:.1} %, cancel {:.1} %, move {:.1} %; {:.1} % of requests traded",
            grouped(v.sent),
            grouped(v.answered),
            grouped(v.unanswered),
            pct(v.mix.gtc),
            pct(v.mix.ioc),
            pct(v.mix.cancel),
            pct(v.mix.moves),
            v.trading_ratio * 100.0
        );
        let reasons = if v.rejects.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = v.rejects.iter().map(|(k, n)| format!("{k} {n}")).collect();
            format!(": {}", list.join(", "))
        };
        let lag = &v.send_lag_us;
        if lag.count > 0 {
            let _ = writeln!(
                s,
                "  load send lag (intended to queued), us: p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
                lag.p50, lag.p99, lag.p99_9, lag.max
            );
        }
        let _ = writeln!(
            s,
            "  rejects {} ({:.3} %){reasons}",
            grouped(v.rejected),
            v.reject_ratio * 100.0
        );
        if let Some(c) = &self.engine_cpu {
            let _ = writeln!(
                s,
                "  engine CPU (pid {}): {:.3} ms per 1,000 orders ({:.0} ms over {:.2} s, {:.2} cores busy); shard threads ({}) {:.3} ms per 1,000 orders",
                c.pid,
                c.process_ms_per_1000_orders,
                c.process_ms,
                c.window_s,
                c.cores_busy,
                c.shard_threads,
                c.shard_ms_per_1000_orders
            );
        }
        if let Some(path) = &self.hlog {
            let _ = write!(
                s,
                "  interval log {path} ({} intervals of 1 s, ns)",
                self.hlog_intervals.unwrap_or(0)
            );
            if let Some(b) = &self.hlog_baseline {
                let _ = write!(s, "; baseline {b}");
            }
            s.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(s, "  note: {note}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_ratios_and_text() {
        let mut h = super::super::conn::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1_000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p99_9 && p.p99_9 <= p.max);
        assert!((p.p50 - 5_000.0).abs() < 10.0, "{p:?}");
        let half = Percentiles {
            p50: p.p50 / 2.0,
            ..Percentiles::default()
        };
        let r = Ratios::of(&p, &half);
        assert!((r.p50.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(r.p90, None);
        let report = LoadReport {
            mode: "open_loop".into(),
            rate: Some(100_000),
            veloz: RunResult {
                latency_us: p,
                ..RunResult::default()
            },
            ratio_to_baseline: Some(r),
            engine_cpu: Some(EngineCpu::new(7, (250, 200), 1, 100, 5.0, 500_000)),
            ..LoadReport::default()
        };
        let cpu = report.engine_cpu.as_ref().unwrap();
        assert_eq!((cpu.process_ms, cpu.shard_ms), (2_500.0, 2_000.0));
        assert!(
            (cpu.process_ms_per_1000_orders - 5.0).abs() < 1e-9,
            "{cpu:?}"
        );
        assert!((cpu.shard_ms_per_1000_orders - 4.0).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.cores_busy - 0.5).abs() < 1e-9, "{cpu:?}");
        assert_eq!(cpu.resolution_ms, 10.0);
        let text = report.to_text();
        assert!(text.contains("open loop at 100,000 orders/s"), "{text}");
        assert!(
            text.contains("engine CPU (pid 7): 5.000 ms per 1,000 orders"),
            "{text}"
        );
        assert!(text.contains("2.00x"), "{text}");
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"p99_9\""), "{json}");
        let back: LoadReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }
}
