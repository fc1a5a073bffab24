//! The `veloz` command line: one subcommand per job, each in its own module.
//!
//! `anyhow` is used here, at the binary's edge, and nowhere below.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use veloz_config::Config;

pub mod demo;
pub mod journal;
pub mod load;
pub mod replay;
pub mod report;
pub mod serve;
pub mod snapshot;
pub mod workload;

/// Veloz: a thread-per-core, shared-nothing trading engine.
#[derive(Debug, Parser)]
#[command(name = "veloz", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the effective configuration (the embedded default, or --config) as TOML.
    Config {
        /// Configuration file (TOML); the embedded default when absent.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the engine: pinned shards, gateway, journals; stops cleanly on SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Rebuild a data directory's shards offline from their journals (the recovery path)
    /// and print each book, or verify the state hashes (--verify).
    Replay(replay::ReplayArgs),
    /// Take a snapshot of each shard of a stopped engine's data directory (under its lock):
    /// rebuilt from the newest snapshot and the journal after it, written as
    /// `shard-N/snapshot-{seq}.vsn`.
    Snapshot(snapshot::SnapshotArgs),
    /// Inspect journals: `dump` (records as JSON lines) or `trades` (the trade tape, CSV);
    /// `archive` applies retention offline (segments before the oldest snapshot, zstd).
    Journal(journal::JournalArgs),
    /// Generate a seeded exchange-core workload, time it through the matching core and
    /// print a summary (throughput, latency percentiles, trades, rejects, state hash).
    Workload(workload::WorkloadArgs),
    /// Summarise HdrHistogram interval logs: percentile table (text or --json), two runs
    /// side by side (--compare A B), percentile-distribution chart (--plot OUT.svg|OUT.png).
    Report(report::ReportArgs),
    /// Drive a running engine with exchange-core's workload (open loop at a fixed rate, or
    /// closed loop for throughput) and report round-trip latency, optionally against an echo
    /// baseline measured in the same run.
    Load(Box<load::LoadArgs>),
    /// The demo that `make run` runs: the engine on embedded defaults in a temporary
    /// directory, driven by the load generator (with the loopback echo floor), stopped
    /// cleanly, its journals replayed and verified, then the latency reports and plot.
    Demo(demo::DemoArgs),
}

/// Parse the command line, run the subcommand, map errors to a non-zero exit.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    // What the log writer still holds goes out before the process ends.
    crate::logging::flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("veloz: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config { config } => {
            let config = Config::load_or_default(config.as_deref())?;
            print!("{}", config.to_toml_string());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::run_serve(&args),
        Command::Replay(args) => replay::run_replay(&args),
        Command::Journal(args) => journal::run_journal(&args),
        Command::Snapshot(args) => snapshot::run_snapshot(&args),
        Command::Workload(args) => workload::run_workload(&args),
        Command::Load(args) => load::run_load(&args),
        Command::Demo(args) => demo::run_demo(&args),
        Command::Report(args) => report::run_report(&args),
    }
}
