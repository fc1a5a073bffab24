//! The demo's judgement of its own figures: a pure function of the configuration it ran, the
//! host it measured and the figures it got.
//!
//! Each figure of [`Figure::ALL`] gets one [`Judgement`]: `OK` inside the expected range of
//! [`super::expect`] for the run's [`Layout`], `SLOW` above it with the likely cause named, `NOT
//! MEASURED` when the run skipped what the figure needs, `FAILED` for a replay that did not
//! verify. SLOW is a judgement about the host and the build, not an error: only FAILED makes
//! the demo exit non-zero ([`any_failed`]).
//!
//! Causes, in the order they are named: a busy host (each reading above [`BUSY`]), then a
//! debug build; shared cores are named beside a busy host (with the load generator on a
//! shard's core, every other runnable thread takes time from a shard). With none of these,
//! a SLOW figure says it is not explained by the host.

use super::expect::{expected, Figure, Layout, Range, Unit, BUSY};
use super::host::Host;

/// What the demo ran, as far as the verdicts care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// `cfg!(debug_assertions)` of the binary (the engine is the same binary).
    pub debug_build: bool,
    pub shard_cores: Vec<usize>,
    pub control_core: usize,
    pub load_cores: Vec<usize>,
}

impl Setup {
    pub fn layout(&self) -> Layout {
        if self.shared_load_cores().is_empty() {
            Layout::Dedicated
        } else {
            Layout::Shared
        }
    }

    /// Load cores a shard busy-polls too.
    pub fn shared_load_cores(&self) -> Vec<usize> {
        self.load_cores
            .iter()
            .copied()
            .filter(|c| self.shard_cores.contains(c))
            .collect()
    }

    /// Whether the control thread sits on a shard's core.
    pub fn control_shares_a_shard_core(&self) -> bool {
        self.shard_cores.contains(&self.control_core)
    }
}

/// The offline replay of one shard's journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardReplay {
    /// `none` or `group`.
    pub phase: &'static str,
    pub shard: usize,
    /// `None`: the replayed state hash matches the live engine's; else what differed.
    pub failure: Option<String>,
}

/// What the demo measured; `None` where the run did not measure it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Client round trip of the main phase, us.
    pub client_p50_us: f64,
    pub client_p99_us: f64,
    /// The echo floor of the same run (p50, p99), us.
    pub floor_us: Option<(f64, f64)>,
    /// The engine's ingress_to_ack over the main phase's window (p50, p99), us.
    pub engine_us: Option<(f64, f64)>,
    /// The engine's commit_wait over the group phase's window (p50, p99), us.
    pub commit_wait_us: Option<(f64, f64)>,
    pub replay: Vec<ShardReplay>,
}

/// The verdict on one figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    Ok,
    Slow { cause: String },
    NotMeasured { why: String },
    Failed { why: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub figure: Figure,
    /// The figure as measured, with its unit, or what was checked.
    pub value: String,
    /// The expected range for the run's layout, in words.
    pub expected: String,
    pub mark: Mark,
}

impl Judgement {
    /// The line the demo prints.
    pub fn line(&self) -> String {
        let verdict = match &self.mark {
            Mark::Ok => "OK".to_string(),
            Mark::Slow { cause } => format!("SLOW: {cause}"),
            Mark::NotMeasured { why } => format!("NOT MEASURED: {why}"),
            Mark::Failed { why } => format!("FAILED: {why}"),
        };
        format!(
            "verdict: {:<40} {} ({}): {verdict}",
            self.figure.name(),
            self.value,
            self.expected
        )
    }
}

/// True when a verdict is FAILED: the demo then exits non-zero.
pub fn any_failed(judgements: &[Judgement]) -> bool {
    judgements
        .iter()
        .any(|j| matches!(j.mark, Mark::Failed { .. }))
}

/// Why the host is busy, one phrase per reading above [`BUSY`]; empty when quiet.
pub fn busy_readings(host: &Host) -> Vec<String> {
    let cores = host.online_cores.max(1) as f64;
    let mut out = Vec::new();
    if host.load.one > BUSY.load_per_core * cores {
        out.push(format!(
            "load average {:.2} on {} cores",
            host.load.one, host.online_cores
        ));
    }
    if let Some(steal) = host.worst_steal_pct().filter(|s| *s > BUSY.steal_pct) {
        out.push(format!("CPU steal {steal:.1} %"));
    }
    if host.runnable > BUSY.runnable_per_core * cores {
        out.push(format!(
            "{:.1} runnable threads besides the demo",
            host.runnable
        ));
    }
    out
}

/// The likely cause of a figure above its range.
fn cause(setup: &Setup, host: &Host) -> String {
    let mut causes = Vec::new();
    let busy = busy_readings(host);
    if !busy.is_empty() {
        causes.push(format!("busy host ({})", busy.join(", ")));
        let shared = setup.shared_load_cores();
        if !shared.is_empty() {
            causes.push(format!(
                "shared cores (the load generator busy-polls shard core {}, so every other runnable thread takes time from a shard)",
                join(&shared)
            ));
        }
    }
    if setup.debug_build {
        causes.push("debug build (unoptimized: `make run` runs the release build)".to_string());
    }
    if causes.is_empty() {
        format!(
            "not explained by the host (quiet: load average {:.2} on {} cores, steal {}, {:.1} runnable threads; release build): see the engine log and the interval logs",
            host.load.one,
            host.online_cores,
            host.worst_steal_pct()
                .map_or("unknown".to_string(), |s| format!("{s:.1} %")),
            host.runnable
        )
    } else {
        causes.join("; ")
    }
}

fn join(cores: &[usize]) -> String {
    cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio if value < 10.0 => format!("{value:.2}x"),
        Unit::Ratio => format!("{value:.0}x"),
        Unit::Micros if value < 100.0 => format!("{value:.1} us"),
        Unit::Micros => format!("{value:.0} us"),
    }
}

fn range_text(range: Range, unit: Unit, layout: Layout) -> String {
    let layout = match layout {
        Layout::Shared => "shared cores",
        Layout::Dedicated => "dedicated load core",
    };
    let space = if unit == Unit::Ratio { "" } else { " " };
    format!(
        "expected {}-{}{space}{} with {layout}",
        range.lo,
        range.hi,
        unit.symbol()
    )
}

/// Judge every figure of [`Figure::ALL`], in that order.
pub fn judge(setup: &Setup, host: &Host, figures: &Figures) -> Vec<Judgement> {
    let layout = setup.layout();
    let ratio = |v: f64, floor: f64| (floor > 0.0).then(|| v / floor);
    Figure::ALL
        .iter()
        .map(|&figure| {
            let measured: Result<f64, String> = match figure {
                Figure::ClientP50 | Figure::ClientP99 => {
                    let (veloz, floor) = match (figure, figures.floor_us) {
                        (_, None) => (0.0, None),
                        (Figure::ClientP50, Some((p50, _))) => (figures.client_p50_us, Some(p50)),
                        (_, Some((_, p99))) => (figures.client_p99_us, Some(p99)),
                    };
                    match floor {
                        None => Err("no echo floor in this run (--no-baseline)".into()),
                        Some(f) => ratio(veloz, f).ok_or_else(|| "the echo floor is 0".into()),
                    }
                }
                Figure::EngineP50 | Figure::EngineP99 => figures
                    .engine_us
                    .map(|(p50, p99)| {
                        if figure == Figure::EngineP50 {
                            p50
                        } else {
                            p99
                        }
                    })
                    .ok_or_else(|| "no engine interval in the measured window".into()),
                Figure::CommitWaitP50 | Figure::CommitWaitP99 => figures
                    .commit_wait_us
                    .map(|(p50, p99)| {
                        if figure == Figure::CommitWaitP50 {
                            p50
                        } else {
                            p99
                        }
                    })
                    .ok_or_else(|| "no group phase in this run (--group-duration 0)".into()),
                Figure::Replay => return replay(&figures.replay),
            };
            let (range, unit) = expected(figure, layout).expect("every figure but replay");
            let expected = range_text(range, unit, layout);
            match measured {
                Err(why) => Judgement {
                    figure,
                    value: "-".into(),
                    expected,
                    mark: Mark::NotMeasured { why },
                },
                Ok(v) => Judgement {
                    figure,
                    value: show(v, unit),
                    expected,
                    mark: if v <= range.hi {
                        Mark::Ok
                    } else {
                        Mark::Slow {
                            cause: cause(setup, host),
                        }
                    },
                },
            }
        })
        .collect()
}

fn replay(shards: &[ShardReplay]) -> Judgement {
    let failed: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            s.failure
                .as_ref()
                .map(|f| format!("{} shard {}: {f}", s.phase, s.shard))
        })
        .collect();
    let mark = if shards.is_empty() {
        Mark::Failed {
            why: "no journal was replayed".into(),
        }
    } else if failed.is_empty() {
        Mark::Ok
    } else {
        Mark::Failed {
            why: failed.join("; "),
        }
    };
    Judgement {
        figure: Figure::Replay,
        value: format!(
            "{} of {} shard journals match",
            shards.len() - failed.len(),
            shards.len()
        ),
        expected: "expected every one".into(),
        mark,
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
