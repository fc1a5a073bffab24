//! `veloz load`: drive a running engine and report round-trip latency and throughput
//! (see [`veloz_load`] for how latency is measured).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use veloz_config::Config;
use veloz_core::workload::DEFAULT_SEED;
use veloz_load::subscribers::{SubscriberConfig, Subscribers};
use veloz_load::{Credential, FixTarget, LoadConfig, Mode, Protocol};

/// Open loop at this many orders per second when neither --rate nor --closed-loop is given.
const DEFAULT_RATE: u64 = 10_000;
/// Requests in flight per connection in closed loop when --pipeline is not given.
const DEFAULT_PIPELINE: usize = 64;

/// `--protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// The binary protocol on --connect.
    Binary,
    /// FIX 4.4 sessions on --fix-connect (docs/fix.md); --connect still serves one binary
    /// logon that reads the instruments.
    Fix,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The engine's address, HOST:PORT (what `veloz serve` printed after "listening on").
    #[arg(long, value_name = "ADDR")]
    pub connect: String,
    /// The order-entry protocol of the load's sessions.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Binary)]
    pub protocol: ProtocolArg,
    /// --protocol fix: the FIX acceptor's HOST:PORT (what `veloz serve` printed after
    /// "FIX 4.4 order entry on").
    #[arg(long, value_name = "ADDR")]
    pub fix_connect: Option<String>,
    /// --protocol fix: TargetCompID (56), the engine's fix.comp_id.
    #[arg(long, value_name = "ID", default_value = veloz_load::DEFAULT_TARGET_COMP_ID)]
    pub fix_target_comp_id: String,
    /// TCP connections (sessions), dealt round-robin over the load threads.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Cores of the load threads, one pinned busy-polling thread per core (e.g. `1`,
    /// `2-3`). Default: the last online core.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// Open loop: total orders per second over all connections (default 10000).
    #[arg(long, conflicts_with = "closed_loop")]
    pub rate: Option<u64>,
    /// Open loop: most requests in flight per connection (default 128; a request due while
    /// the window is full waits, and the wait counts in its latency).
    #[arg(long, value_name = "N", conflicts_with = "closed_loop")]
    pub window: Option<usize>,
    /// Closed loop: keep --pipeline requests in flight per connection, for maximum
    /// throughput.
    #[arg(long)]
    pub closed_loop: bool,
    /// Closed loop: requests in flight per connection (default 64).
    #[arg(long, value_name = "K", requires = "closed_loop")]
    pub pipeline: Option<usize>,
    /// Seconds measured, after the warm-up.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measured window (not counted).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub warmup: f64,
    /// Seed of the workload.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Only these instruments (symbols or ids, comma-separated). Default: every instrument
    /// the engine announces.
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    pub symbols: Vec<String>,
    /// Log on as this account (repeatable; connection i uses the (i mod n)-th). Default: the
    /// demo accounts 1 and 2. Prefer --accounts FILE: a command line is visible to others.
    #[arg(long = "account", value_name = "ID:TOKEN")]
    pub account: Vec<String>,
    /// Accounts from a file of ID:TOKEN lines (# comments allowed).
    #[arg(long = "accounts", value_name = "FILE", conflicts_with = "account")]
    pub accounts_file: Option<PathBuf>,
    /// The engine's configuration, for reference prices and price bands (default: the
    /// embedded one, as `veloz serve` uses without --config).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Resting orders to hold over all connections (default: 1000 per instrument).
    #[arg(long, value_name = "N")]
    pub resting: Option<usize>,
    /// Spread of GTC order prices around the mid, in ticks (default 150: about 6 % of
    /// requests trade).
    #[arg(long, value_name = "TICKS")]
    pub deviation_ticks: Option<i64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write an HdrHistogram interval log (one interval per second, values in ns).
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// Also measure a busy-polled echo server (same framing, client, rate and connections)
    /// and report Veloz's percentiles as ratios to that floor.
    #[arg(long)]
    pub baseline: bool,
    /// Cores of the echo server (default: every online core but the load cores, or all).
    #[arg(long, value_name = "LIST", requires = "baseline")]
    pub baseline_cores: Option<String>,
    /// Market-data fan-out: open this many WebSocket subscribers (l2, trades, ticker of
    /// every instrument) on the feed at --ws for the whole run, and report their feed
    /// latency (update receive time minus the command's engine timestamp).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "ws")]
    pub ws_subscribers: usize,
    /// Channels each WebSocket subscriber watches, of one instrument (dealt round-robin
    /// over the instruments traded).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "l2,trades,ticker"
    )]
    pub ws_channels: Vec<String>,
    /// The WebSocket feed's HOST:PORT (what `veloz serve` printed after "ws://").
    #[arg(long, value_name = "ADDR")]
    pub ws: Option<String>,
    /// Market-data fan-out: this many binary subscribers (every channel of every
    /// instrument) on the feed at --feed.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "feed")]
    pub feed_subscribers: usize,
    /// The binary feed's HOST:PORT (what `veloz serve` printed after "market data on").
    #[arg(long, value_name = "ADDR")]
    pub feed: Option<String>,
    /// Core of the subscriber threads (default: not pinned).
    #[arg(long, value_name = "CORE")]
    pub subscriber_core: Option<usize>,
    /// The engine's process id (on this host): report its CPU time over the measured
    /// window, per 1,000 orders (from /proc/PID/stat; its shard threads apart).
    #[arg(long, value_name = "PID")]
    pub engine_pid: Option<u32>,
}

fn seconds(option: &str, s: f64) -> anyhow::Result<Duration> {
    if !s.is_finite() || s < 0.0 {
        bail!("{option} {s}: expected a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

pub fn run_load(args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let online = veloz_load::online_cores()?;
    let cores = args
        .cores
        .as_deref()
        .map(|c| veloz_load::parse_cores("--cores", c, &online))
        .transpose()?;
    let baseline_cores = args
        .baseline_cores
        .as_deref()
        .map(|c| veloz_load::parse_cores("--baseline-cores", c, &online))
        .transpose()?;
    let mode = if args.closed_loop {
        Mode::Closed {
            pipeline: args.pipeline.unwrap_or(DEFAULT_PIPELINE),
        }
    } else {
        Mode::Open {
            rate: args.rate.unwrap_or(DEFAULT_RATE),
            window: args.window.unwrap_or(veloz_load::DEFAULT_WINDOW),
        }
    };
    let accounts = if let Some(path) = &args.accounts_file {
        Credential::read_file(path)?
    } else if args.account.is_empty() {
        Credential::demo()
    } else {
        args.account
            .iter()
            .map(|a| Credential::parse(a))
            .collect::<Result<_, _>>()?
    };
    let (protocol, target) = match (args.protocol, &args.fix_connect) {
        (ProtocolArg::Binary, _) => (Protocol::Binary, args.connect.clone()),
        (ProtocolArg::Fix, Some(fix)) => (
            Protocol::Fix(FixTarget {
                connect: fix.clone(),
                target_comp_id: args.fix_target_comp_id.clone(),
            }),
            format!("{fix} (FIX 4.4)"),
        ),
        (ProtocolArg::Fix, None) => bail!(
            "--protocol fix needs --fix-connect HOST:PORT (what `veloz serve` printed after \"FIX 4.4 order entry on\")"
        ),
    };
    let config = Config::load_or_default(args.config.as_deref())?;
    crate::logging::init(&config.log, None)?;
    let load_config = LoadConfig {
        connect: args.connect.clone(),
        connections: args.connections,
        cores,
        mode,
        duration: seconds("--duration", args.duration)?,
        warmup: seconds("--warmup", args.warmup)?,
        seed: args.seed,
        symbols: args.symbols.clone(),
        accounts,
        config,
        resting: args.resting,
        deviation_ticks: args.deviation_ticks,
        hlog: args.hlog.clone(),
        baseline: args.baseline,
        baseline_cores,
    };
    // Every socket of the run: connections (twice with the echo baseline, its server side
    // being in this process) and subscribers, opened before the run raises the limit itself.
    let sockets = args.connections * if args.baseline { 2 } else { 1 }
        + args.ws_subscribers
        + args.feed_subscribers;
    veloz_load::raise_fd_limit(sockets as u64 + veloz_load::FD_SPARE)?;
    let subscriber_config = SubscriberConfig {
        ws: args
            .ws
            .clone()
            .filter(|_| args.ws_subscribers > 0)
            .map(|a| (a, args.ws_subscribers)),
        binary: args
            .feed
            .clone()
            .filter(|_| args.feed_subscribers > 0)
            .map(|a| (a, args.feed_subscribers)),
        core: args.subscriber_core,
        ws_symbols: if args.symbols.is_empty() {
            load_config
                .config
                .instruments
                .iter()
                .map(|i| i.symbol.clone())
                .collect()
        } else {
            args.symbols.clone()
        },
        ws_channels: args.ws_channels.clone(),
        binary_channels: Vec::new(),
    };
    let subscribers = if subscriber_config.ws.is_some() || subscriber_config.binary.is_some() {
        Some(Subscribers::start(&subscriber_config).map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    let report = veloz_load::run_protocol(&load_config, &protocol, args.engine_pid)
        .with_context(|| format!("load on {target}"))?;
    let feed_reports = match subscribers {
        Some(s) => s.stop().map_err(|e| anyhow::anyhow!(e))?,
        None => Vec::new(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialise the report")?
        );
    } else {
        print!("{}", report.to_text());
    }
    // On stderr with --json, so that stdout stays one JSON document.
    for r in &feed_reports {
        if args.json {
            eprintln!("{}", r.line());
        } else {
            println!("{}", r.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}
