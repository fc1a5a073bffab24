//! `veloz serve`: run the engine until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use veloz_config::Config;
use veloz_engine::{serve, ServeOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); the embedded default when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (journals, routing map, shutdown marker); overrides engine.data_dir.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Override gateway.listen (e.g. 127.0.0.1:0 for any free port).
    #[arg(long)]
    pub listen: Option<String>,
    /// A journal with corruption in its middle is cut there (the cut bytes are kept in a
    /// `.dropped` file and reported) instead of refusing to start. Use only after reading
    /// the refusal's message: records after the corruption are not replayed.
    #[arg(long)]
    pub repair_journal: bool,
}

pub fn run_serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load_or_default(args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        config.gateway.listen = listen.clone();
    }
    let reports = serve(
        config,
        ServeOptions {
            data_dir: args.data.clone(),
            repair: args.repair_journal,
        },
    )?;
    for r in &reports {
        println!(
            "veloz: shard {} clean shutdown at sequence {}, state hash {:016x}",
            r.shard, r.last_seq, r.state_hash
        );
    }
    Ok(ExitCode::SUCCESS)
}
