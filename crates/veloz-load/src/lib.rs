//! `veloz load`: the load generator. It drives a running engine over TCP with exchange-core's
//! workload and measures round-trip latency and throughput from outside, the way a client
//! sees them; with `--baseline` it measures the host's own loopback floor in the same run.
//!
//! # How latency is measured
//! - Every request has an **intended send time**. Open loop (`--rate R`): the `i`-th request of
//!   the run is intended for `start + i / R`, whatever happened before, the requests taken in
//!   turn by the connections. Closed loop (`--closed-loop --pipeline K`): each connection keeps
//!   `K` requests in flight; a request is intended when its predecessor's answer made room.
//! - Its latency is the time from the intended send time to the arrival of the **first
//!   execution report carrying its `client_order_id`** (Accepted / Rejected for a new order,
//!   Cancelled / Rejected for a cancel, Replaced / Rejected for a replace; for the echo
//!   baseline, its own frame coming back). Arrival is stamped once per socket read, before the
//!   frames of that read are decoded.
//! - So there is no coordinated omission: when the sender falls behind (a stalled engine, a
//!   full window of `--window` requests in flight, at most 16,384), the schedule keeps running and the
//!   wait counts in the latency of every request sent late.
//! - Only requests intended inside the measured window (after `--warmup`, for `--duration`)
//!   count: in the percentiles, the throughput (`sent`, `answered`, per second of window) and
//!   the mix, trade and reject counts. Requests still unanswered after a drain of
//!   `driver::DRAIN_LIMIT_NS` (5 s) are reported as `unanswered`.
//! - Time comes from `minstant` (TSC, ~10 ns a read); histograms are HdrHistogram, 3
//!   significant digits, in nanoseconds; the interval log (`hlog`, written through
//!   [`veloz_report::IntervalLog`]) has one histogram per second of the window.
//!
//! # Threads and cores
//! One plain thread per load core (`--cores`, default: the last online core), pinned with
//! `core_affinity`; the connections are dealt round-robin over the threads. Each thread
//! busy-polls its non-blocking sockets: read and act on the answers, queue what is due, one
//! write per connection per pass. A pass costs what the traffic costs, not what the
//! connection count does (module `agenda`): past a few connections per thread the sockets with data
//! come from one epoll set, and the open-loop schedule is a heap of due times, so a thread
//! of a thousand sessions at 100 orders/s each never scans a thousand sockets per order.
//! Per connection a run holds one socket (two with `--baseline`) and a few kilobytes; the
//! soft file descriptor limit is raised to the hard one ([`raise_fd_limit`]). Answers are read by `skim` (bounds-checked reads of the
//! few fields a client needs, a tenth of the full verifier's cost); anything else goes
//! through the full decoders. Nothing assumes more cores than are online: on a small host
//! the load shares cores with the engine, and the report says so. With `--engine-pid` the
//! engine's CPU time over the measured window is read from `/proc` ([`cpu`]) and reported
//! per 1,000 orders. The threads log through
//! `tracing` (target `veloz::load`) and never print: the `veloz` binary's writer queues each
//! line and drops it (counted) rather than let a full stderr pipe stall a load thread.
//!
//! # Workload
//! exchange-core's mix (9 % GTC, 3 % IOC, 6 % cancel, 82 % move) with Pareto-weighted
//! symbols over the instruments the engine announces in its LogonAck, seeded; online: order
//! ids come from the engine's Accepted reports ([`flow`]). Prices are on each instrument's
//! tick, around its configured reference price (from `--config`, default the embedded
//! configuration) and inside [`BAND_USE_PCT`] % of its price band. Every connection starts
//! with a prefill (GTC orders up to its share of the resting target), and at the end the
//! first connection of each account mass-cancels the account's orders, so runs can follow
//! each other on one engine.
//!
//! # FIX 4.4 (`--protocol fix`)
//! The same flows over FIX sessions to the engine's acceptor ([`run_protocol`], module
//! `fix`): one binary logon reads the instruments first (FIX announces none); request ids
//! are ClOrdIDs, so their run nonce is 10 bits: the acceptor takes a ClOrdID below 2^62 as
//! the number it is (larger ones are text it maps, docs/fix.md).
//!
//! # Invariants
//! - tokens are never printed: errors name the address and the account id only;
//! - every thread sees the same start time, so the schedule is one schedule;
//! - request ids are unique per run and connection and carry a per-run nonce
//!   (`conn`), so the engine's duplicate-id check never fires across connections or runs.
#![forbid(unsafe_code)]

mod agenda;
pub mod client;
mod conn;
pub mod cpu;
mod driver;
pub mod echo;
mod fix;
pub mod flow;
mod hlog;
mod limits;
mod measure;
pub mod report;
pub mod router;
pub mod subscribers;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use veloz_config::{Config, ConfigError};
use veloz_core::{AccountId, Instrument, Price, SymbolId};
use veloz_wire::WireError;

pub use echo::EchoServer;
pub use fix::{FixTarget, Protocol, DEFAULT_TARGET_COMP_ID};
pub use limits::{raise_fd_limit, FD_SPARE};
pub use report::{EngineCpu, LoadReport, MixCounts, Percentiles, Ratios, RunResult};

use conn::Peer;
use measure::measure;

/// Prices stay within this share of each instrument's band around the reference price: a
/// connection's view of the last trade price lags the engine's.
pub const BAND_USE_PCT: u32 = 80;

/// Default spread of GTC placements around the mid, in ticks (see
/// [`veloz_core::workload::PriceModel::set_deviation`]). exchange-core's own,
/// `min(5 % of mid, 10_000)`, is about 1,000 ticks for the default instruments: a sparse book
/// where about 3 % of commands trade. Measured against the matching core (1 to 4
/// connections, 8,000 resting orders): 100 ticks, 7.3 % trade; 150, 6.0 %; 200, 5.3 %
/// (exchange-core's single-symbol shape); 50 or less cannot hold the book at its target
/// (15 % and more trade). 150 gives the 6 % of trading commands of exchange-core's benchmark
/// there. Online against `veloz serve` with the demo accounts about 4 % of requests trade:
/// account 2's `stp = cancel_resting` turns its self-crossings into cancels, and each
/// connection sees only its own fills (4.7 % with one account). Smaller spreads trade more
/// online but no longer hold the books at their target (cancels turn into GTC orders).
pub const DEFAULT_DEVIATION_TICKS: i64 = 150;

/// Most connections in one run (request ids hold the connection index in 12 bits).
pub const MAX_CONNECTIONS: usize = 4_096;

/// Requests in flight per connection in open loop, by default: a bound like a real client's
/// throttle. 128 requests of under 100 bytes stay within one 16 KiB read of the gateway's
/// per-session buffer, so a connection catching up after a stall never floods its session
/// (engines before commit 53fbc89 even dropped a session that had more than that unread).
pub const DEFAULT_WINDOW: usize = 128;

/// Open or closed loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A fixed total rate, orders per second over all connections, with at most `window`
    /// requests in flight per connection (a request due while the window is full waits, and
    /// the wait counts in its latency).
    Open { rate: u64, window: usize },
    /// `pipeline` requests in flight per connection, for maximum throughput.
    Closed { pipeline: usize },
}

/// An account and its logon token. The token is never printed (Debug redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub account: AccountId,
    token: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("account", &self.account)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Credential {
    pub fn new(account: AccountId, token: impl Into<String>) -> Credential {
        Credential {
            account,
            token: token.into(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The demo accounts of the default configuration: 1 `demo-alice`, 2 `demo-bob`.
    pub fn demo() -> Vec<Credential> {
        vec![
            Credential::new(1, "demo-alice"),
            Credential::new(2, "demo-bob"),
        ]
    }

    /// Parse `ID:TOKEN`. Errors show the id part only.
    pub fn parse(text: &str) -> Result<Credential, LoadError> {
        let (id, token) = text.split_once(':').ok_or(LoadError::BadAccount {
            shown: "<no ':'>".into(),
            why: "expected ID:TOKEN",
        })?;
        let account = id.trim().parse().map_err(|_| LoadError::BadAccount {
            shown: id.trim().to_string(),
            why: "the account id is not a number",
        })?;
        if token.is_empty() {
            return Err(LoadError::BadAccount {
                shown: id.trim().to_string(),
                why: "the token is empty",
            });
        }
        Ok(Credential::new(account, token))
    }

    /// Read `ID:TOKEN` lines (blank lines and `#` comments skipped).
    pub fn read_file(path: &Path) -> Result<Vec<Credential>, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::AccountsFile {
            path: path.display().to_string(),
            line: 0,
            why: e.to_string(),
        })?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(
                Credential::parse(line).map_err(|e| LoadError::AccountsFile {
                    path: path.display().to_string(),
                    line: i + 1,
                    why: e.to_string(),
                })?,
            );
        }
        if out.is_empty() {
            return Err(LoadError::AccountsFile {
                path: path.display().to_string(),
                line: 0,
                why: "no ID:TOKEN line".into(),
            });
        }
        Ok(out)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The engine's address, `HOST:PORT`.
    pub connect: String,
    pub connections: usize,
    /// Load cores; `None`: the last online core.
    pub cores: Option<Vec<usize>>,
    pub mode: Mode,
    pub duration: Duration,
    pub warmup: Duration,
    pub seed: u64,
    /// Instruments to trade (symbols or ids); empty: every one the engine announces.
    pub symbols: Vec<String>,
    /// Connection `i` logs on as `accounts[i % len]`.
    pub accounts: Vec<Credential>,
    /// Where reference prices and bands come from (the engine's configuration).
    pub config: Config,
    /// Resting orders to hold over all connections; `None`: 1,000 per instrument.
    pub resting: Option<usize>,
    /// Spread of GTC placements in ticks; `None`: [`DEFAULT_DEVIATION_TICKS`].
    pub deviation_ticks: Option<i64>,
    /// Interval log of the Veloz run (the baseline's goes beside it).
    pub hlog: Option<PathBuf>,
    pub baseline: bool,
    /// Echo server cores; `None`: every online core but the load cores (all when none is
    /// left).
    pub baseline_cores: Option<Vec<usize>>,
}

/// Everything that can stop a run, each naming the address, account or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{addr} (account {account}): {what}: {source}")]
    Io {
        addr: String,
        account: AccountId,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{addr} (account {account}): undecodable frame: {source}")]
    Wire {
        addr: String,
        account: AccountId,
        source: WireError,
    },
    #[error("{addr}: logon of account {account} refused: {reason} ({text})")]
    LogonRefused {
        addr: String,
        account: AccountId,
        reason: &'static str,
        text: String,
    },
    #[error("{addr}: no LogonAck for account {account} within {waited:?}")]
    LogonTimeout {
        addr: String,
        account: AccountId,
        waited: Duration,
    },
    #[error("{addr} (account {account}): the peer closed the connection during {during}")]
    Closed {
        addr: String,
        account: AccountId,
        during: &'static str,
    },
    #[error("{addr} (account {account}): the engine logged the session out: {reason} ({text})")]
    EngineLogout {
        addr: String,
        account: AccountId,
        reason: &'static str,
        text: String,
    },
    #[error("{addr} (account {account}): the prefill did not finish in time ({resting} orders resting, {in_flight} unanswered)")]
    PrefillTimeout {
        addr: String,
        account: AccountId,
        resting: usize,
        in_flight: usize,
    },
    #[error("cannot resolve {addr:?} to a socket address: {detail}")]
    Address { addr: String, detail: String },
    #[error("{option}: core {core} is not online (online cores: {online})")]
    NoSuchCore {
        option: &'static str,
        core: usize,
        online: String,
    },
    #[error("{option} {value:?}: expected a core list such as 1 or 0,2-3")]
    CoreList { option: &'static str, value: String },
    #[error("cannot read the online cores: {detail}")]
    OnlineCores { detail: String },
    #[error("cannot pin a load thread to core {core}")]
    Pin { core: usize },
    #[error("--account {shown}:...: {why}")]
    BadAccount { shown: String, why: &'static str },
    #[error("accounts file {path}, line {line}: {why}")]
    AccountsFile {
        path: String,
        line: usize,
        why: String,
    },
    #[error("{addr}: the engine does not list instrument {wanted:?} (it lists {available})")]
    UnknownSymbol {
        addr: String,
        wanted: String,
        available: String,
    },
    #[error("{addr} (account {account}): unreadable FIX message: {detail}")]
    Fix {
        addr: String,
        account: AccountId,
        detail: String,
    },
    #[error("{addr}: the engine announced no instruments")]
    NoInstruments { addr: String },
    #[error("invalid {option} {value}: {why}")]
    Invalid {
        option: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("{needed} file descriptors needed: {detail}")]
    FdLimit { needed: u64, detail: String },
    #[error("--engine-pid {pid}: {detail}")]
    EngineCpu { pid: u32, detail: String },
    #[error("cannot write the interval log {path}: {detail}")]
    Hlog { path: String, detail: String },
    #[error("echo baseline: {detail}")]
    Echo { detail: String },
    #[error("the other load threads did not reach {what} in time")]
    Barrier { what: &'static str },
    #[error("stopped because another load thread failed")]
    Aborted,
    #[error("cannot start load thread {thread}: {detail}")]
    Spawn { thread: usize, detail: String },
    #[error("load thread {thread} panicked")]
    Panicked { thread: usize },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The run's time base: nanoseconds since the run began, from the TSC.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: minstant::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            epoch: minstant::Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// Which announced instruments to trade, and what the configuration says about them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    /// Symbols or ids; empty: all.
    symbols: Vec<String>,
    /// By instrument id: (symbol, reference price, band in basis points).
    references: BTreeMap<SymbolId, (String, Price, u32)>,
}

impl Selection {
    fn new(symbols: &[String], config: &Config) -> Selection {
        Selection {
            symbols: symbols.to_vec(),
            references: config
                .instruments()
                .into_iter()
                .map(|i| (i.id, (i.symbol, i.reference_price, i.price_band_bps)))
                .collect(),
        }
    }

    /// The instruments to trade out of those `addr` announced, with the configured
    /// reference price and the narrowed band where the configuration knows the instrument
    /// (same id and symbol).
    pub fn select(
        &self,
        announced: &[Instrument],
        addr: SocketAddr,
    ) -> Result<Vec<Instrument>, LoadError> {
        if announced.is_empty() {
            return Err(LoadError::NoInstruments {
                addr: addr.to_string(),
            });
        }
        let mut chosen: Vec<Instrument> = if self.symbols.is_empty() {
            announced.to_vec()
        } else {
            let mut out: Vec<Instrument> = Vec::new();
            for wanted in &self.symbols {
                let found = announced
                    .iter()
                    .find(|i| i.symbol == *wanted || i.id.to_string() == *wanted)
                    .ok_or_else(|| LoadError::UnknownSymbol {
                        addr: addr.to_string(),
                        wanted: wanted.clone(),
                        available: announced
                            .iter()
                            .map(|i| format!("{} ({})", i.symbol, i.id))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                if !out.iter().any(|i| i.id == found.id) {
                    out.push(found.clone());
                }
            }
            out
        };
        for i in &mut chosen {
            if let Some((symbol, reference, band)) = self.references.get(&i.id) {
                if *symbol == i.symbol {
                    i.reference_price = *reference;
                    i.price_band_bps = band * BAND_USE_PCT / 100;
                }
            }
        }
        Ok(chosen)
    }
}

/// Parse a core list (`1`, `0,2-3`) for `option`, and check every core is online.
pub fn parse_cores(
    option: &'static str,
    text: &str,
    online: &[usize],
) -> Result<Vec<usize>, LoadError> {
    let cores = veloz_config::preflight::parse_cpu_list(text)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| LoadError::CoreList {
            option,
            value: text.to_string(),
        })?;
    check_cores(option, &cores, online)
}

fn check_cores(
    option: &'static str,
    cores: &[usize],
    online: &[usize],
) -> Result<Vec<usize>, LoadError> {
    let mut seen = BTreeSet::new();
    for &core in cores {
        if !online.contains(&core) {
            return Err(LoadError::NoSuchCore {
                option,
                core,
                online: format!("{online:?}"),
            });
        }
        seen.insert(core);
    }
    Ok(seen.into_iter().collect())
}

/// The online cores, read once from sysfs (a pinned thread would see only its own).
pub fn online_cores() -> Result<Vec<usize>, LoadError> {
    veloz_config::preflight::online_cores().map_err(|e| LoadError::OnlineCores {
        detail: e.to_string(),
    })
}

/// Where the echo baseline runs: every online core but the load cores, or all when no core
/// is left.
pub fn default_baseline_cores(online: &[usize], load: &[usize]) -> Vec<usize> {
    veloz_config::preflight::spare_cores(online, load)
}

fn validate(config: &LoadConfig) -> Result<(), LoadError> {
    let invalid = |option, value: String, why| Err(LoadError::Invalid { option, value, why });
    if config.connections == 0 || config.connections > MAX_CONNECTIONS {
        return invalid(
            "--connections",
            config.connections.to_string(),
            "must be 1 to 4096",
        );
    }
    match config.mode {
        Mode::Open { rate: 0, .. } => return invalid("--rate", "0".into(), "must be positive"),
        Mode::Open { window, .. } if window == 0 || window > conn::WINDOW => {
            return invalid("--window", window.to_string(), "must be 1 to 16384")
        }
        Mode::Closed { pipeline } if pipeline == 0 || pipeline > conn::WINDOW => {
            return invalid("--pipeline", pipeline.to_string(), "must be 1 to 16384")
        }
        _ => {}
    }
    if config.duration.is_zero() {
        return invalid("--duration", "0".into(), "must be positive");
    }
    if config.accounts.is_empty() {
        return invalid(
            "--account",
            "(none)".into(),
            "at least one account is needed",
        );
    }
    if config.deviation_ticks.is_some_and(|d| d < 1) {
        return invalid(
            "--deviation-ticks",
            format!("{:?}", config.deviation_ticks),
            "must be at least 1",
        );
    }
    Ok(())
}

fn resolve(addr: &str) -> Result<SocketAddr, LoadError> {
    addr.to_socket_addrs()
        .map_err(|e| LoadError::Address {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?
        .next()
        .ok_or_else(|| LoadError::Address {
            addr: addr.to_string(),
            detail: "no address".into(),
        })
}

/// Run the load (and the baseline with `config.baseline`) and report.
pub fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    run_with(config, None)
}

/// [`run`], and with `engine_pid` (the engine's process on this host) the engine's CPU over
/// the measured window ([`LoadReport::engine_cpu`]).
pub fn run_with(config: &LoadConfig, engine_pid: Option<u32>) -> Result<LoadReport, LoadError> {
    run_protocol(config, &Protocol::Binary, engine_pid)
}

/// [`run_with`] over `protocol`: with [`Protocol::Fix`] the load's sessions are FIX 4.4
/// sessions to [`FixTarget::connect`]; `config.connect` (binary) serves one logon that
/// reads the instruments.
pub fn run_protocol(
    config: &LoadConfig,
    protocol: &Protocol,
    engine_pid: Option<u32>,
) -> Result<LoadReport, LoadError> {
    validate(config)?;
    if config.baseline && *protocol != Protocol::Binary {
        return Err(LoadError::Invalid {
            option: "--baseline",
            value: "with --protocol fix".into(),
            why: "the echo baseline speaks the binary framing only",
        });
    }
    let online = online_cores()?;
    let load_cores = match &config.cores {
        Some(c) => check_cores("--cores", c, &online)?,
        None => vec![*online.last().ok_or(LoadError::OnlineCores {
            detail: "no online core".into(),
        })?],
    };
    let threads = load_cores.len().min(config.connections);
    let load_cores = load_cores[..threads].to_vec();
    let sockets = config.connections as u64 * if config.baseline { 2 } else { 1 };
    raise_fd_limit(sockets + FD_SPARE)?;
    if let Some(pid) = engine_pid {
        // Fail before the run, not after it, when the process is not there.
        cpu::sample(pid)?;
    }
    let addr = resolve(&config.connect)?;
    // Request ids carry this, so a run never reuses an id of an earlier run's live order.
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        & 0xFFF;
    let (peer, target, instruments, nonce) = match protocol {
        Protocol::Binary => (Peer::Engine, addr, Vec::new(), nonce),
        Protocol::Fix(fix) => {
            let first = &config.accounts[0];
            let (instruments, _) =
                fix::instruments(addr, first.account, first.token(), Duration::from_secs(5))?;
            // Below 2^62 a numeric ClOrdID is taken as the number (docs/fix.md); never 0 (the
            // mass cancel's is the base).
            (
                Peer::Fix,
                resolve(&fix.connect)?,
                instruments,
                (nonce & 0x3FF).max(1),
            )
        }
    };

    let veloz = measure(
        config,
        peer,
        target,
        &load_cores,
        instruments,
        config.hlog.as_deref(),
        nonce,
        engine_pid,
        protocol,
    )?;

    let mut notes = Vec::new();
    if target.ip().is_loopback() {
        notes.push(format!(
            "the engine runs on this host: the load threads busy-poll cores {load_cores:?} of the {} online; an engine on every online core (engine.cores empty, the default) shares them with the load, so both figures include that contention; pin the engine to the other cores for clean figures",
            online.len()
        ));
    }
    let (baseline, baseline_cores, hlog_baseline) = if config.baseline {
        let cores = match &config.baseline_cores {
            Some(c) => check_cores("--baseline-cores", c, &online)?,
            None => default_baseline_cores(&online, &load_cores),
        };
        if cores.iter().any(|c| load_cores.contains(c)) {
            notes.push(format!(
                "the echo baseline on cores {cores:?} shares cores with the load threads: its floor includes that contention"
            ));
        }
        let path = config.hlog.as_deref().map(hlog::baseline_path);
        let server = EchoServer::start(&cores)?;
        let measured = measure(
            config,
            Peer::Echo,
            server.addr(),
            &load_cores,
            veloz.instruments.clone(),
            path.as_deref(),
            nonce,
            None,
            protocol,
        );
        server.stop();
        (
            Some(measured?.result),
            Some(cores),
            path.map(|p| p.display().to_string()),
        )
    } else {
        (None, None, None)
    };
    let accounts = config
        .accounts
        .iter()
        .map(|c| c.account)
        .collect::<BTreeSet<_>>()
        .len();
    if config.connections > accounts {
        notes.push(format!(
            "{} connections share {accounts} account(s): the engine sends every report of an account to each of its sessions, so each connection also reads (and skips) the reports of its account's other sessions; give each connection its own account (--accounts FILE) to measure independent sessions",
            config.connections
        ));
    }
    if veloz.result.unanswered > 0 {
        notes.push(format!(
            "{} measured requests were still unanswered {} s after the window",
            veloz.result.unanswered,
            driver::DRAIN_LIMIT_NS / 1_000_000_000
        ));
    }
    let engine_cpu = veloz.engine_cpu.map(|(pid, before, after, window_s)| {
        EngineCpu::new(
            pid,
            (
                after.process_ticks.saturating_sub(before.process_ticks),
                after.shard_ticks.saturating_sub(before.shard_ticks),
            ),
            after.shard_threads,
            cpu::ticks_per_s(),
            window_s,
            veloz.result.sent,
        )
    });
    let ratio_to_baseline = baseline
        .as_ref()
        .map(|b| Ratios::of(&veloz.result.latency_us, &b.latency_us));
    let (rate, window, pipeline, mode) = match config.mode {
        Mode::Open { rate, window } => (Some(rate), Some(window), None, "open_loop"),
        Mode::Closed { pipeline } => (None, None, Some(pipeline), "closed_loop"),
    };
    Ok(LoadReport {
        mode: mode.into(),
        protocol: match protocol {
            Protocol::Binary => "binary".into(),
            Protocol::Fix(_) => "fix".into(),
        },
        rate,
        window,
        pipeline,
        connections: config.connections,
        duration_s: config.duration.as_secs_f64(),
        warmup_s: config.warmup.as_secs_f64(),
        seed: config.seed,
        load_cores,
        online_cores: online,
        baseline_cores,
        instruments: veloz.instruments.iter().map(|i| i.symbol.clone()).collect(),
        veloz: veloz.result,
        baseline,
        ratio_to_baseline,
        engine_cpu,
        hlog: config.hlog.as_ref().map(|p| p.display().to_string()),
        hlog_intervals: veloz.hlog_intervals,
        hlog_baseline,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_and_never_show_the_token() {
        let c = Credential::parse("7:s3cret:with:colons").unwrap();
        assert_eq!((c.account, c.token()), (7, "s3cret:with:colons"));
        assert!(!format!("{c:?}").contains("s3cret"));
        for bad in ["nocolon-s3cret", "x:s3cret", "7:"] {
            let e = Credential::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(Credential::demo().len(), 2);
    }

    #[test]
    fn cores_are_checked_against_the_online_ones() {
        let online = [0, 1];
        assert_eq!(parse_cores("--cores", "1", &online).unwrap(), vec![1]);
        assert_eq!(parse_cores("--cores", "0-1", &online).unwrap(), vec![0, 1]);
        let e = parse_cores("--cores", "2", &online)
            .unwrap_err()
            .to_string();
        assert!(e.contains("core 2 is not online"), "{e}");
        assert!(parse_cores("--cores", "x", &online).is_err());
        assert_eq!(default_baseline_cores(&online, &[1]), vec![0]);
        assert_eq!(default_baseline_cores(&[0], &[0]), vec![0]);
    }

    #[test]
    fn selection_takes_references_and_narrows_the_band() {
        let config = Config::default();
        let announced: Vec<Instrument> = config
            .instruments()
            .into_iter()
            .map(|i| Instrument {
                reference_price: 0,
                price_band_bps: 0,
                ..i
            })
            .collect();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let all = Selection::new(&[], &config)
            .select(&announced, addr)
            .unwrap();
        assert_eq!(all.len(), announced.len());
        assert!(all.iter().all(|i| i.reference_price > 0));
        assert_eq!(all[0].price_band_bps, 1_000 * BAND_USE_PCT / 100);
        let some = Selection::new(&["MSFT".into(), "1".into()], &config)
            .select(&announced, addr)
            .unwrap();
        assert_eq!(
            some.iter().map(|i| i.symbol.as_str()).collect::<Vec<_>>(),
            ["MSFT", "AAPL"]
        );
        let e = Selection::new(&["NOPE".into()], &config)
            .select(&announced, addr)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE") && e.contains("AAPL (1)"), "{e}");
    }
}
