//! `veloz serve`: run the engine until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use veloz_config::{Config, LogFormat};
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
    /// A journal with corruption in its middle, or a broken chain of segments, is cut there
    /// (the cut bytes are kept in `.dropped` files and reported), and one whose newest
    /// segments or chain head are missing is accepted as it ends (reported, the chain head
    /// rewritten), instead of refusing to start. Use only after reading the refusal's message:
    /// records after the cut, or in the missing segments, are not replayed.
    #[arg(long)]
    pub repair_journal: bool,
    /// Start as the hot standby of the engine named in `[replication]` (needs
    /// `journal.durability = "replicated"`): follow the primary's JetStream streams into this
    /// data directory, and take over (open the ports) when the primary's lease expires.
    #[arg(long)]
    pub standby: bool,
    /// Log format on stderr: `text` (readable lines) or `json` (one object per line);
    /// overrides log.format.
    #[arg(long, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{s:?} is not a log format: text or json")),
    }
}

pub fn run_serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load_or_default(args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        config.gateway.listen = listen.clone();
    }
    crate::logging::init(&config.log, args.log_format)?;
    let reports = serve(
        config,
        ServeOptions {
            data_dir: args.data.clone(),
            repair: args.repair_journal,
            standby: args.standby,
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
