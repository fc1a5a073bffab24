//! `veloz workload` and `veloz demo`: generate a seeded exchange-core workload (see
//! [`veloz_core::workload`]), time it through a fresh matching [`Engine`] and print a summary.
//!
//! Two timed passes over the same stream, each into a fresh engine with the prefill applied
//! untimed:
//! 1. throughput: one `std::time::Instant` around the whole loop;
//! 2. latency: every command timed with `minstant` (TSC) into an HDR histogram; the event
//!    counts are taken in this pass too, outside the timed interval.
//!
//! Both passes must end in the state hash the generator saw (the stream is deterministic);
//! a mismatch is an error, not a warning.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use veloz_config::Config;
use veloz_core::workload::{
    generate, synthetic_instruments, timestamp_of, Workload, WorkloadConfig, DEFAULT_SEED,
};
use veloz_core::{CancelReason, Command, Engine, Event, RejectReason, TimeInForce};
use veloz_report::grouped;

/// Arguments of `veloz workload`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkloadArgs {
    /// Seed of the generator (the same seed gives the same commands).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Measured commands, after the prefill that builds the books up.
    #[arg(long, default_value_t = 10_000_000)]
    pub commands: usize,
    /// Symbols: 1 is exchange-core's single-symbol workload (1,000 resting orders, 2,000
    /// accounts); more is the many-symbol variant (Pareto-weighted symbols, 1,000 resting
    /// orders and 2,000 accounts per symbol on average). With --config, the first N
    /// instruments of the file (default: all of them).
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Take the instruments (tick, lot, quantity limits, band) from this configuration;
    /// without it, synthetic instruments with tick 1, lot 1 and no band are used.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `veloz workload`.
pub fn run_workload(args: &WorkloadArgs) -> anyhow::Result<ExitCode> {
    let instruments = match &args.config {
        Some(path) => {
            let config = Config::load(path)?;
            let mut all = config.instruments();
            if let Some(n) = args.symbols {
                if n == 0 || n > all.len() {
                    bail!(
                        "--symbols {n}: {} has {} instruments",
                        path.display(),
                        all.len()
                    );
                }
                all.truncate(n);
            }
            all
        }
        None => {
            let n = args.symbols.unwrap_or(1);
            if n == 0 {
                bail!("--symbols must be at least 1");
            }
            synthetic_instruments(n)
        }
    };
    let config = if instruments.len() == 1 {
        WorkloadConfig::single_symbol(args.seed, args.commands)
    } else {
        WorkloadConfig::many_symbols(args.seed, args.commands, instruments.len())
    };
    run(&config, &instruments)?;
    Ok(ExitCode::SUCCESS)
}

/// Latency histograms by kind of command, and of the commands that traded.
const KINDS: [&str; 5] = ["GTC", "IOC", "cancel", "move", "trading"];

/// What the latency pass counted.
#[derive(Default)]
struct Counts {
    accepted: u64,
    replaced: u64,
    trades: u64,
    trading_commands: u64,
    /// Indexed by [`CancelReason::code`].
    cancels: [u64; 16],
    rejects: std::collections::BTreeMap<RejectReason, u64>,
    /// Per-command latency by [`KINDS`].
    by_kind: Vec<Histogram<u64>>,
}

const CANCEL_REASONS: [CancelReason; 9] = [
    CancelReason::Requested,
    CancelReason::ImmediateOrCancel,
    CancelReason::FillOrKill,
    CancelReason::SelfTrade,
    CancelReason::MassCancel,
    CancelReason::ProtectionBand,
    CancelReason::NoLiquidity,
    CancelReason::CancelOnDisconnect,
    CancelReason::AccountDisabled,
];

fn run(config: &WorkloadConfig, instruments: &[veloz_core::Instrument]) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let w = generate(config, instruments);
    let gen_time = t.elapsed();
    let n = w.commands.len();
    let s = &w.stats;
    let pct = |x: u64| x as f64 * 100.0 / n.max(1) as f64;
    println!(
        "workload: exchange-core mix over {} symbol(s), seed {}, {} accounts, target {} resting orders",
        w.instruments.len(),
        config.seed,
        config.accounts,
        config.resting_orders
    );
    println!(
        "  generated     {} commands after a prefill of {} in {:.2} s (untimed below)",
        grouped(n as u64),
        grouped(w.prefill.len() as u64),
        gen_time.as_secs_f64()
    );
    println!(
        "  mix           GTC {:.1} %, IOC {:.1} %, cancel {:.1} %, move {:.1} %; {:.1} % of commands trade",
        pct(s.gtc),
        pct(s.ioc),
        pct(s.cancels),
        pct(s.moves),
        s.trade_ratio() * 100.0
    );

    // Pass 1: throughput.
    let (elapsed, hash1) = time_throughput(&w);
    // Pass 2: per-command latency, and the counts.
    let (hist, counts, hash2) = time_latency(&w)?;
    let overhead = timer_overhead()?;
    if hash1 != s.state_hash || hash2 != s.state_hash {
        bail!(
            "state hash differs between generation ({:#018x}) and replay ({hash1:#018x}, {hash2:#018x})",
            s.state_hash
        );
    }

    println!("  commands      {}", grouped(n as u64));
    println!("  accepted      {} new orders", grouped(counts.accepted));
    println!("  replaced      {} orders", grouped(counts.replaced));
    println!(
        "  trades        {} in {} commands ({:.2} %)",
        grouped(counts.trades),
        grouped(counts.trading_commands),
        pct(counts.trading_commands)
    );
    let cancels: u64 = counts.cancels.iter().sum();
    let by_reason: Vec<String> = CANCEL_REASONS
        .iter()
        .filter(|r| counts.cancels[r.code() as usize] > 0)
        .map(|r| {
            format!(
                "{} {}",
                r.name(),
                grouped(counts.cancels[r.code() as usize])
            )
        })
        .collect();
    println!(
        "  cancels       {} ({})",
        grouped(cancels),
        by_reason.join(", ")
    );
    let rejects: u64 = counts.rejects.values().sum();
    if rejects == 0 {
        println!("  rejects       0");
    } else {
        let by_reason: Vec<String> = counts
            .rejects
            .iter()
            .map(|(r, c)| format!("{} {}", r.name(), grouped(*c)))
            .collect();
        println!(
            "  rejects       {} ({})",
            grouped(rejects),
            by_reason.join(", ")
        );
    }
    println!(
        "  resting       {} orders at the end, in {} price levels",
        grouped(s.resting_at_end as u64),
        grouped(s.levels_at_end as u64)
    );
    let secs = elapsed.as_secs_f64();
    println!(
        "  throughput    {:.1} M commands/s on one core ({} commands in {:.3} s; {:.1} ns/command)",
        n as f64 / secs / 1e6,
        grouped(n as u64),
        secs,
        secs * 1e9 / n.max(1) as f64
    );
    println!(
        "  latency       ns/command p50 {} p99 {} p99.9 {} p99.99 {} max {} (minstant per command; \
         includes the timer's own cost, p50 {} ns for two back-to-back reads)",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.value_at_quantile(0.9999),
        hist.max(),
        overhead
    );
    let by_kind: Vec<String> = KINDS
        .iter()
        .zip(&counts.by_kind)
        .filter(|(_, h)| !h.is_empty())
        .map(|(k, h)| {
            format!(
                "{k} {}/{}/{}",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.9999)
            )
        })
        .collect();
    println!("  by command    p50/p99/p99.99 ns: {}", by_kind.join(", "));
    println!(
        "  state hash    {:#018x} (generation and both passes agree)",
        s.state_hash
    );
    Ok(())
}

/// Apply `w.commands` to a prefilled engine with one clock around the loop.
fn time_throughput(w: &Workload) -> (Duration, u64) {
    let mut engine = w.prefilled_engine();
    let mut out = Vec::with_capacity(256);
    let first = w.first_command_seq();
    let start = std::time::Instant::now();
    for (i, cmd) in w.commands.iter().enumerate() {
        let seq = first + i as u64;
        out.clear();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
    }
    let elapsed = start.elapsed();
    std::hint::black_box(&out);
    (elapsed, engine.state_hash())
}

/// Apply `w.commands` to a prefilled engine, timing each command; count the events.
fn time_latency(w: &Workload) -> anyhow::Result<(Histogram<u64>, Counts, u64)> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .context("creating the latency histogram")?;
    let mut counts = Counts::default();
    for _ in KINDS {
        counts.by_kind.push(hist.clone());
    }
    let mut engine: Engine = w.prefilled_engine();
    let mut out = Vec::with_capacity(256);
    let first = w.first_command_seq();
    for (i, cmd) in w.commands.iter().enumerate() {
        let seq = first + i as u64;
        out.clear();
        let t0 = minstant::Instant::now();
        engine.apply(seq, timestamp_of(seq), cmd, &mut out);
        let t1 = minstant::Instant::now();
        let ns = t1.duration_since(t0).as_nanos() as u64;
        hist.saturating_record(ns);
        let kind = match cmd {
            Command::New(o) if o.tif == TimeInForce::Gtc => 0,
            Command::New(_) => 1,
            Command::Cancel(_) | Command::MassCancel(_) | Command::Admin(_) => 2,
            Command::Replace(_) => 3,
        };
        counts.by_kind[kind].saturating_record(ns);
        let mut traded = false;
        for e in &out {
            match e {
                Event::Accepted { .. } => counts.accepted += 1,
                Event::Replaced { .. } => counts.replaced += 1,
                Event::Trade { .. } => {
                    counts.trades += 1;
                    traded = true;
                }
                Event::Cancelled { reason, .. } => counts.cancels[reason.code() as usize] += 1,
                Event::Rejected { reason, .. } => *counts.rejects.entry(*reason).or_default() += 1,
                Event::MassCancelled { .. } | Event::Admin { .. } => {}
            }
        }
        counts.trading_commands += traded as u64;
        if traded {
            counts.by_kind[4].saturating_record(ns);
        }
    }
    Ok((hist, counts, engine.state_hash()))
}

/// Median cost of two back-to-back `minstant` reads, in nanoseconds.
fn timer_overhead() -> anyhow::Result<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3)
        .context("creating the timer histogram")?;
    for _ in 0..1_000_000 {
        let t0 = minstant::Instant::now();
        let t1 = minstant::Instant::now();
        hist.saturating_record(t1.duration_since(t0).as_nanos() as u64);
    }
    Ok(hist.value_at_quantile(0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_replays_to_the_generated_hash() {
        let w = generate(
            &WorkloadConfig::single_symbol(9, 5_000),
            &synthetic_instruments(1),
        );
        let (_, h1) = time_throughput(&w);
        let (hist, counts, h2) = time_latency(&w).unwrap();
        assert_eq!((h1, h2), (w.stats.state_hash, w.stats.state_hash));
        assert_eq!(hist.len(), 5_000);
        assert!(counts.rejects.is_empty());
        assert_eq!(counts.trades, w.stats.trades);
    }
}
