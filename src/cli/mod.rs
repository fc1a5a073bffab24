//! The `veloz` command line: one subcommand per job, each in its own module.
//!
//! `anyhow` is used here, at the binary's edge, and nowhere below.
//!
//! **A closed stdout ends a command as it ends a Unix filter.** `veloz journal dump | head`
//! closes the pipe while the dump still writes: the process is then ended by the default
//! action of SIGPIPE (no message; a shell reports status 141), for every subcommand, not with
//! an error line. Writes through [`stdout()`] end it there; `println!` anywhere in the process
//! (the report, workload and load subcommands, the engine's `listening on` line) panics on the
//! closed pipe, and the panic hook installed by [`main`] ends it the same way.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use veloz_config::Config;

pub mod demo;
pub mod feed;
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
    /// Subscribe to a running engine's binary market-data feed and print it (or --record
    /// the frames, --read a recording); --books keeps the books and prints their hashes.
    Feed(feed::FeedArgs),
}

/// Parse the command line, run the subcommand, map errors to a non-zero exit.
pub fn main() -> ExitCode {
    end_quietly_when_println_finds_stdout_closed();
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
            let mut out = stdout();
            write!(out, "{}", config.to_toml_string())?;
            out.flush()?;
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
        Command::Feed(args) => feed::run_feed(&args),
    }
}

/// Standard output for a subcommand's results, buffered by the caller as it needs; a reader
/// that went away ends the process quietly ([`stdout_closed`]) instead of returning an error.
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

/// See [`stdout()`].
#[derive(Debug)]
pub struct Stdout(std::io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(end_if_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(end_if_closed)
    }
}

fn end_if_closed(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        stdout_closed();
    }
    e
}

/// The reader of stdout is gone: what the log writer holds goes out on stderr, then the
/// process ends by SIGPIPE's default action, as `cat` or `grep` would (the Rust runtime
/// ignores SIGPIPE, which is why the write failed instead; signal-hook restores the default
/// action and raises it, without unsafe code here).
pub fn stdout_closed() -> ! {
    crate::logging::flush();
    let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    // Only if the signal could not be raised: the status a shell shows for it.
    std::process::exit(128 + signal_hook::consts::SIGPIPE)
}

/// `println!` panics with "failed printing to stdout: Broken pipe (os error 32)" when the
/// reader is gone; that panic ends the process by [`stdout_closed`], any other goes to the
/// default hook.
fn end_quietly_when_println_finds_stdout_closed() {
    let closed = format!(
        "failed printing to stdout: {}",
        std::io::Error::from_raw_os_error(nix::errno::Errno::EPIPE as i32)
    );
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if message == Some(closed.as_str()) {
            stdout_closed();
        }
        default(info);
    }));
}
