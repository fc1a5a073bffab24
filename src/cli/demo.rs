//! `veloz demo`: the engine on embedded defaults, driven, stopped, replayed, reported and
//! judged against the expected ranges of its configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use crate::demo::{run, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Orders per second offered by the load generator (open loop), both phases.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Seconds of measured load in the main phase (`durability = "none"`), after 1 s of
    /// warm-up.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of measured load in the group-commit phase (`durability = "group"`); 0 skips
    /// it.
    #[arg(long, default_value_t = 3)]
    pub group_duration: u64,
    /// Client connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Skip the loopback echo floor measured after the main phase (the client verdicts then
    /// read NOT MEASURED).
    #[arg(long)]
    pub no_baseline: bool,
    /// Shard cores, e.g. `0` or `0-2` (default: every online core, the embedded default).
    /// Leaving the last online core free gives the load generator its own core.
    #[arg(long)]
    pub cores: Option<String>,
    /// Directory for the data, logs, report and plot (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run_demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let cores = match &args.cores {
        None => Vec::new(),
        Some(text) => veloz_config::preflight::parse_cpu_list(text)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow!("--cores {text:?}: expected a core list such as 0 or 0-2"))?,
    };
    // The load generator runs in this process: its threads log through the same writer.
    crate::logging::init(&veloz_config::LogConfig::default(), None)?;
    run(&DemoOptions {
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        group_duration: Duration::from_secs(args.group_duration),
        connections: args.connections,
        baseline: !args.no_baseline,
        cores,
        dir: args.dir.clone(),
    })?;
    Ok(ExitCode::SUCCESS)
}
