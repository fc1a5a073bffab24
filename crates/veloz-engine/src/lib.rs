//! The runtime: pinned shards, the ring mesh, the gateway and the control thread (see
//! `../shared/ARCHITECTURE.md`).
//!
//! [`serve`] runs `veloz serve`:
//! 1. preflight: cores from sysfs (on the main thread), locked memory, io_uring;
//! 2. the data directory locked for this process ([`veloz_journal::DataDirLock`]: a second
//!    engine on it is refused, naming the holder's pid); routing checked against and
//!    recorded in it;
//! 3. the gateway and metrics addresses bound by this process alone (no SO_REUSEPORT: an
//!    address another process holds is refused, [`io::BindError`]);
//! 4. one glommio executor per shard, pinned (`Placement::Fixed`), each recovering its
//!    journal before the gateway socket listens (shard 0 listens, every shard accepts from
//!    that one socket); the control thread pinned to its core;
//! 5. on SIGINT/SIGTERM: drain, answer, sync, checkpoint; then the clean-shutdown marker
//!    `DATA/shutdown.json` with every shard's last sequence and state hash; the data
//!    directory lock is released last, when `serve` returns.
//!
//! At the next start each shard's recovered (sequence, state hash) is compared with that
//! marker, and a mismatch stops the engine with an error naming the shard: the state after
//! a restart must equal the state at shutdown.
//!
//! The runtime's components, each owning its state and handing its results on by value
//! (the shard loop only calls them in order):
//!
//! | module | what |
//! |---|---|
//! | [`shard`] | the shard loop: recovery, the busy-poll pass over the components, shutdown |
//! | [`gateway`] | client sessions: framing, logon, heartbeats and timers, outbound buffers |
//! | [`sequencer`] | sequence number and timestamp, journal append, engine apply |
//! | [`dispatcher`] | report streams: subscribers per account, holding reports until durable, releasing them in order, resend |
//! | [`mesh`] | the SPSC rings between shards and to the control thread, and their messages |
//! | [`io`] | everything that touches the OS: sockets, parking, CPU affinity, the clock |
//! | [`queries`] | order status, open-order pages and balance slices, answered from the shard's engine in order with the commands |
//! | [`journal`] | a shard's journal: recovery through the engine, append, checkpoint |
//! | [`snapshotter`] | periodic snapshots: a helper thread's shadow engine follows the durable journal and writes them; no work on the shard |
//! | [`shared`] | what the shards share: config, routing, accounts, start-up and shutdown atomics |
//! | [`auth`] | logon token checks |
//! | [`control`] | the control thread: readiness, metrics socket, reports, operator requests |
//! | [`admin`] | the operator interface: `/admin/...` requests checked, sent to the shards, answered |
//! | [`replication`] | `durability = "replicated"`: becoming primary or following as a standby, then replication to NATS JetStream while serving |
//! | [`logging`] | the non-blocking log writer: a bounded queue, one writer thread, drops counted |
//! | [`metrics`], [`totals`], [`exposition`], [`metrics_server`], [`reports`] | what shards measure, merged, served and written |
//!
//! Pure pieces (routing, auth, preflight, mesh types) forbid unsafe; nothing here needs it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod control;
pub mod dispatcher;
pub mod exposition;
pub mod feed;
pub mod gateway;
pub mod io;
pub mod journal;
pub mod journal_state;
pub mod logging;
pub mod mesh;
pub mod metrics;
pub mod metrics_server;
pub mod notify;
pub mod queries;
pub mod replication;
pub mod reports;
pub mod sequencer;
pub mod shard;
pub mod shared;
pub mod snapshotter;
pub mod totals;

#[cfg(test)]
mod testkit;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use serde::{Deserialize, Serialize};

use veloz_config::{preflight, routing, Config};
use veloz_core::Seq;

pub use shard::ShardOutcome;

/// File name of the clean-shutdown marker inside the data directory.
pub const SHUTDOWN_MARKER: &str = "shutdown.json";

/// The shard executors' glommio preemption timer: longer than any start-up delay (see
/// where the executors are built in [`serve`]).
const SHARD_PREEMPT_TIMER: Duration = Duration::from_secs(3600);

/// Everything that can stop `veloz serve`, each naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    #[error(transparent)]
    Routing(#[from] routing::RoutingError),
    #[error(transparent)]
    DataDir(#[from] veloz_journal::LockError),
    #[error(transparent)]
    Bind(#[from] io::BindError),
    #[error(transparent)]
    Shard(#[from] shard::ShardError),
    #[error("shard {shard} on core {core}: cannot start its executor: {detail}")]
    Executor {
        shard: usize,
        core: usize,
        detail: String,
    },
    #[error("shard {shard}: recovered sequence {recovered_seq} with state hash {recovered:016x}, but the clean shutdown recorded sequence {marker_seq} with {marker:016x} ({path})")]
    StateMismatch {
        shard: usize,
        recovered_seq: Seq,
        recovered: u64,
        marker_seq: Seq,
        marker: u64,
        path: String,
    },
    #[error("cannot write {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signals(String),
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Replication(#[from] veloz_replica::ReplicaError),
    #[error("--standby needs journal.durability = \"replicated\" (a standby follows the primary's JetStream streams); this config has {0:?}")]
    StandbyWithout(String),
    #[error("stopped, but not cleanly: shard(s) {shards:?} stopped without the clean-shutdown checkpoint (journal unavailable), so no clean-shutdown marker was written; the next start recovers from the journals")]
    Unclean { shards: Vec<usize> },
}

/// The clean-shutdown marker: each shard's last sequence and state hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownMarker {
    pub shards: Vec<MarkerShard>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerShard {
    pub shard: usize,
    pub last_seq: Seq,
    /// Hex, as printed in logs.
    pub state_hash: String,
}

impl ShutdownMarker {
    /// Read the marker of `data_dir`, if there is one.
    pub fn read(data_dir: &Path) -> Option<ShutdownMarker> {
        let text = std::fs::read_to_string(data_dir.join(SHUTDOWN_MARKER)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write(&self, data_dir: &Path) -> Result<(), ServeError> {
        let path = data_dir.join(SHUTDOWN_MARKER);
        let tmp = data_dir.join("shutdown.json.tmp");
        let io = |e: std::io::Error| ServeError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::write(
            &tmp,
            serde_json::to_string_pretty(self).expect("serialises"),
        )
        .map_err(io)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// Options of `veloz serve` beyond the config file.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Overrides `engine.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Cut a journal at a mid-journal corruption (kept aside, reported) instead of
    /// refusing to start.
    pub repair: bool,
    /// Follow the primary's streams as a hot standby until its lease expires, then serve
    /// (`durability = "replicated"` only).
    pub standby: bool,
}

/// One start-up line with what the configuration sets (never an account's token hash).
fn log_config_summary(config: &Config) {
    let symbols: Vec<&str> = config
        .instruments
        .iter()
        .map(|i| i.symbol.as_str())
        .collect();
    let accounts: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    let j = &config.journal;
    let durability = format!("{:?}", j.durability).to_lowercase();
    let segment_mib = j.segment_size >> 20;
    tracing::info!(
        target: "veloz::engine",
        instruments = symbols.len(),
        accounts = accounts.len(),
        gateway = %config.gateway.listen,
        metrics = %config.metrics.listen,
        durability = %durability,
        segment_mib,
        log_filter = %config.log.filter,
        "config: {} instrument(s) {symbols:?}, {} account(s) {accounts:?}, gateway {}, metrics {}, journal durability {durability} in {segment_mib} MiB segments, log filter {:?}",
        symbols.len(),
        accounts.len(),
        config.gateway.listen,
        config.metrics.listen,
        config.log.filter,
    );
}

/// Bind the market-data servers, give each shard its ring to the feed thread and start it
/// on the control core; `None` when `[feed] enabled = false`. Prints the feeds' addresses
/// on stdout (scripts, tests and the demo read them).
#[allow(clippy::type_complexity)]
fn feed_thread(
    shared: &Arc<shared::Shared>,
    links: &mut [mesh::ShardLinks],
) -> Result<Option<(std::thread::JoinHandle<()>, Arc<AtomicBool>)>, ServeError> {
    let config = &shared.config.feed;
    if !config.enabled {
        tracing::info!(target: "veloz::feed", "market data is off ([feed] enabled = false)");
        return Ok(None);
    }
    let bind_error = |what: &str, addr: &str, e: std::io::Error| ServeError::Io {
        path: format!("{what} address {addr}"),
        detail: e.to_string(),
    };
    let binary = feed::BinaryServer::bind(&config.listen, config)
        .map_err(|e| bind_error("feed.listen", &config.listen, e))?;
    let ws = feed::WsServer::bind(&config.ws_listen, config)
        .map_err(|e| bind_error("feed.ws_listen", &config.ws_listen, e))?;
    let (binary_addr, ws_addr) = (binary.local_addr(), ws.local_addr());
    let (producers, consumers) = feed::rings(links.len(), config.ring_slots);
    for (link, producer) in links.iter_mut().zip(producers) {
        link.feed = Some(producer);
    }
    let symbols = feed::FeedState::symbols_of(&shared.config, |id| {
        shared.routing.shard_of(id).unwrap_or(0)
    });
    let session = feed::unix_now_ns();
    let done = Arc::new(AtomicBool::new(false));
    let thread = feed::FeedThread {
        state: feed::FeedState::new(session, symbols, links.len(), config.recent_trades),
        rings: consumers,
        servers: vec![Box::new(binary), Box::new(ws)],
        stats: Arc::clone(&shared.feed_stats),
        done: Arc::clone(&done),
        // No spinning: the feed thread shares the control core, which on small hosts is a
        // shard's (and the load generator's) core too, where a spinning feed thread is one
        // more busy thread (docs/BENCHMARKS.md, "Market-data fan-out"). Parked, it wakes
        // within `park_max_us` of the next command.
        spin: Duration::ZERO,
        park_max: Duration::from_micros(shared.config.engine.park_max_us),
        batch: Duration::from_micros(config.batch_us),
    }
    .spawn(shared.control_core);
    println!("veloz: market data on {binary_addr} (binary), ws://{ws_addr}/ws (websocket), book page http://{ws_addr}/");
    tracing::info!(
        target: "veloz::feed",
        binary = %binary_addr,
        websocket = %ws_addr,
        session,
        "market data: binary feed on {binary_addr}, WebSocket feed on ws://{ws_addr}/ws, book page http://{ws_addr}/ (feed session {session})"
    );
    Ok(Some((thread, done)))
}

/// Run the engine until SIGINT/SIGTERM; returns each shard's final report.
pub fn serve(config: Config, options: ServeOptions) -> Result<Vec<ShardOutcome>, ServeError> {
    let online = preflight::online_cores()?;
    let (cores, control_core) =
        preflight::plan_cores(&config.engine.cores, config.engine.control_core, &online)?;
    for warning in [
        preflight::check_memlock(cores.len())?,
        preflight::check_io_uring(Path::new("/proc"))?,
    ]
    .into_iter()
    .flatten()
    {
        tracing::warn!(target: "veloz::engine", "{warning}");
    }

    let network = io::choose_network(config.gateway.network, veloz_uring::probe)
        .map_err(ServeError::Network)?;
    if let Some(why) = &network.fallback {
        tracing::warn!(target: "veloz::engine", "{why}");
    }
    tracing::info!(
        target: "veloz::engine",
        network = if network.uring { "io_uring" } else { "std" },
        "network: {}",
        network.describe
    );
    let sync = if config.journal.syncs_on_ring(network.uring) {
        "io_uring: each shard submits its group-commit data syncs on its own ring, no sync thread"
    } else if config.journal.durability.syncs_locally() {
        "a sync thread per shard runs group commit"
    } else {
        "none (durability = \"none\": acknowledged once written)"
    };
    tracing::info!(target: "veloz::engine", "journal sync: {sync}");

    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| config.engine.data_dir.clone());
    // Before anything reads or writes the data directory (recovery, --repair-journal, the
    // routing map, the shutdown marker), and held until this function returns.
    let _data_lock = veloz_journal::DataDirLock::acquire(&data_dir)?;
    let routing = routing::Routing::from_config(&config, cores.len())?;
    routing.check_and_record(&data_dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| ServeError::Signals(e.to_string()))?;
    }
    // Replicated: become the primary first (a standby follows here until the lease is free).
    let mut leader = None;
    if config.journal.durability == veloz_journal::Durability::Replicated {
        let lead = replication::Lead {
            config: &config,
            data_dir: &data_dir,
            routing: &routing,
            shards: cores.len(),
            standby: options.standby,
            stop: &stop,
        };
        match replication::lead(lead)? {
            Some(l) => leader = Some(l),
            None => return Ok(Vec::new()),
        }
    } else if options.standby {
        let d = format!("{:?}", config.journal.durability).to_lowercase();
        return Err(ServeError::StandbyWithout(d));
    }
    let marker = ShutdownMarker::read(&data_dir);
    // Bound here so that an address another process holds stops the start with a clear
    // error; the gateway listens once the shards have recovered.
    let gateway = io::BoundSocket::bind("gateway", &config.gateway.listen)?;
    let metrics = match leader.as_mut().and_then(|l| l.metrics.take()) {
        Some(listener) => listener,
        None => io::Listener::bind("metrics", &config.metrics.listen)?.into_std(),
    };
    let reports_dir = config
        .metrics
        .reports_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("reports"));
    let reports =
        reports::Reports::create(&reports_dir, std::time::SystemTime::now()).map_err(|e| {
            ServeError::Io {
                path: reports_dir.display().to_string(),
                detail: e.to_string(),
            }
        })?;
    // From here on the engine runs: a crash must not look like a clean shutdown.
    let _ = std::fs::remove_file(data_dir.join(SHUTDOWN_MARKER));

    let n = cores.len();
    let mut shared = shared::Shared::new(
        config,
        routing,
        data_dir.clone(),
        cores.clone(),
        preflight::spare_cores(&online, &cores),
        stop,
    );
    shared.repair = options.repair;
    shared.net_uring = network.uring;
    shared.control_core = control_core;
    shared.offer_gateway(gateway);
    let publisher = match leader {
        Some(l) => {
            let epoch = l.epoch();
            let p = l.start(&data_dir, &shared.config)?;
            let rc = &shared.config.replication;
            println!(
                "veloz: primary of engine {} (lease epoch {epoch}), replicating {n} shard(s) to {}",
                rc.engine,
                rc.shown_urls()
            );
            shared.replica = Some(p.attacher());
            Some(p)
        }
        None => None,
    };
    if shared.config.fix.enabled {
        let listener = io::Listener::bind("fix", &shared.config.fix.listen)?;
        let port = listener.port().map_err(|e| ServeError::Io {
            path: format!("fix.listen address {}", shared.config.fix.listen),
            detail: e.to_string(),
        })?;
        let host = shared
            .config
            .fix
            .listen
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        shared.fix_addr = Some(format!("{host}:{port}"));
        let fix = gateway::fix::FixShared::new(&shared.config, &data_dir, n);
        shared.fix = Some(Arc::new(fix));
        shared.fix_listener = Some(listener);
    }
    let shared = Arc::new(shared);
    let (mut links, control_links) = mesh::build(n, shared.config.engine.ring_slots);
    let feed = feed_thread(&shared, &mut links)?;
    tracing::info!(
        target: "veloz::engine",
        shards = n,
        cores = ?cores,
        control_core,
        data_dir = %data_dir.display(),
        "starting {n} shard(s) on cores {cores:?}, control on core {control_core}, data in {}",
        data_dir.display()
    );
    log_config_summary(&shared.config);
    let control_done = Arc::new(AtomicBool::new(false));
    let control = control::spawn(
        Arc::clone(&shared),
        control_links,
        control_core,
        marker,
        metrics,
        reports,
        Arc::clone(&control_done),
    );

    let mut handles = Vec::with_capacity(n);
    for (links, &core) in links.into_iter().zip(&cores) {
        let for_shard = Arc::clone(&shared);
        let index = links.shard;
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("veloz-shard-{index}"))
            // The shard task never yields and uses none of glommio's IO or timers, so the
            // preemption timer has nothing to preempt. A short one hangs the executor: when
            // it fires before the executor's first pass over its task queues (the thread
            // was descheduled between arming it and running: common at start-up on a busy
            // host), glommio 0.9 skips the queue, finds no IO and parks in io_uring with no
            // timeout, and the shard never starts recovery. Seen with 1 ms about once in 100
            // starts, with 50 us once in 5; an hour leaves no such window.
            .preempt_timer(SHARD_PREEMPT_TIMER)
            .spawn(move || async move { shard::run(for_shard, links).await });
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Stop the shards already started (they wait for this one at recovery).
                shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
                for h in handles {
                    let _ = h.join();
                }
                if let Some((thread, done)) = feed {
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = thread.join();
                }
                control_done.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = control.join();
                return Err(ServeError::Executor {
                    shard: index,
                    core,
                    detail: e.to_string(),
                });
            }
        }
    }
    let mut reports = Vec::with_capacity(n);
    let mut first_error = None;
    for (index, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => {
                shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
                first_error.get_or_insert(ServeError::Shard(e));
            }
            Err(e) => {
                shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
                first_error.get_or_insert(ServeError::Executor {
                    shard: index,
                    core: cores[index],
                    detail: e.to_string(),
                });
            }
        }
    }
    if let Some((thread, done)) = feed {
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        if thread.join().is_err() {
            tracing::error!(target: "veloz::feed", "the feed thread panicked");
        }
    }
    if let Some(p) = publisher {
        // Every record the shards journaled (the clean-shutdown checkpoints too) reaches
        // the streams before the lease is given up.
        p.finish(Duration::from_secs(10));
    }
    control_done.store(true, std::sync::atomic::Ordering::SeqCst);
    let control_result = control.join().expect("control thread does not panic");
    if let Some(e) = first_error {
        return Err(e);
    }
    control_result?;
    let unclean: Vec<usize> = reports
        .iter()
        .filter(|r| !r.checkpointed)
        .map(|r| r.shard)
        .collect();
    if !unclean.is_empty() {
        return Err(ServeError::Unclean { shards: unclean });
    }
    ShutdownMarker {
        shards: reports
            .iter()
            .map(|r| MarkerShard {
                shard: r.shard,
                last_seq: r.last_seq,
                state_hash: format!("{:016x}", r.state_hash),
            })
            .collect(),
    }
    .write(&data_dir)?;
    Ok(reports)
}
