//! The `veloz` command line: one subcommand per job, each in its own module.
//!
//! `anyhow` is used here, at the binary's edge, and nowhere below.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

pub mod report;
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
    /// Generate a seeded exchange-core workload, time it through the matching core and
    /// print a summary (throughput, latency percentiles, trades, rejects, state hash).
    Workload(workload::WorkloadArgs),
    /// Summarise HdrHistogram interval logs: percentile table (text or --json), two runs
    /// side by side (--compare A B), percentile-distribution chart (--plot OUT.svg|OUT.png).
    Report(report::ReportArgs),
    /// The demo that `make run` runs: for now the matching core alone on embedded defaults
    /// (`veloz workload` for one symbol and for 100); it becomes the full engine demo when
    /// the runtime lands.
    Demo,
}

/// Parse the command line, run the subcommand, map errors to a non-zero exit.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
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
        Command::Workload(args) => workload::run_workload(&args),
        Command::Demo => workload::run_demo(),
        Command::Report(args) => report::run_report(&args),
    }
}
