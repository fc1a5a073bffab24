//! `veloz demo`: the engine on embedded defaults, driven, stopped, replayed, reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::demo::{run, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Orders per second offered by the load generator (open loop).
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Seconds of measured load (after 1 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Client connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Skip the loopback echo floor measured after the engine run.
    #[arg(long)]
    pub no_baseline: bool,
    /// Directory for the data, logs, report and plot (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run_demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    // The load generator runs in this process: its threads log through the same writer.
    crate::logging::init(&veloz_config::LogConfig::default(), None)?;
    run(&DemoOptions {
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        connections: args.connections,
        baseline: !args.no_baseline,
        dir: args.dir.clone(),
    })?;
    Ok(ExitCode::SUCCESS)
}
