//! `veloz demo` (what `make run` runs): the whole engine on embedded defaults, measured from
//! outside and from inside, audited, and judged against what this configuration should give.
//!
//! 1. states its configuration: build, durability of each phase, shard, control and load
//!    cores (and which of them share a core), rate, durations, connections;
//! 2. measures the host before it starts anything ([`host`]): load average against the
//!    online cores, CPU steal and runnable threads over a second;
//! 3. main phase: writes the embedded configuration with a temporary data directory and free
//!    ports, `durability = "none"` (page cache: survives a process crash, not a power cut),
//!    starts `veloz serve` as a child process (one shard per online core unless `--cores`),
//!    drives it with the load generator (open loop, exchange-core's mix), measures the
//!    busy-polled loopback echo floor with the same client, stops it with SIGTERM and replays
//!    every journal against the state hash the live engine recorded;
//! 4. group phase: the same, shorter, with `durability = "group"` (what an operator runs:
//!    reports wait for the journal's fdatasync), and the engine's commit-wait and sync
//!    figures;
//! 5. prints the reports, where the logs and the plot were written, then one verdict line
//!    per figure ([`verdict`]) against the ranges of [`expect`].
//!
//! SLOW verdicts are judgements: the demo exits 0. It fails (non-zero) when a step fails or a
//! replay does not verify. Nothing is left running: each engine is stopped (killed if it will
//! not stop) on every path out of [`run`].

pub mod engine;
pub mod expect;
pub mod host;
mod plan;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use crate::audit::{self, ReplayOptions, Verdict};
use engine::EngineChild;
use plan::{print_host, Plan};
use veloz_config::Config;
use veloz_journal::Durability;
use veloz_load::subscribers::{SubscriberConfig, Subscribers};
use veloz_load::{Credential, LoadConfig, LoadReport, Mode, DEFAULT_WINDOW};
use veloz_report::{write_plot, Series};
use verdict::{Figures, ShardReplay};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Orders per second offered (open loop, all connections together), both phases.
    pub rate: u64,
    /// Measured time of the main phase (`durability = "none"`).
    pub duration: Duration,
    /// Measured time of the group-commit phase; zero skips it.
    pub group_duration: Duration,
    pub connections: usize,
    /// Measure the echo floor too (doubles the main phase).
    pub baseline: bool,
    /// Shard cores; empty: every online core (the embedded default).
    pub cores: Vec<usize>,
    /// Where everything goes; a fresh temporary directory when `None`.
    pub dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rate: 20_000,
            duration: Duration::from_secs(10),
            group_duration: Duration::from_secs(3),
            connections: 4,
            baseline: true,
            cores: Vec::new(),
            dir: None,
        }
    }
}

/// Warm-up before each phase's measured window.
pub(crate) const WARMUP: Duration = Duration::from_secs(1);

/// One engine run: started, driven, stopped, replayed.
#[derive(Debug)]
struct Phase {
    config: Config,
    data: PathBuf,
    hlog: PathBuf,
    report: LoadReport,
    /// The metrics socket's text just before the stop.
    metrics: String,
    stopped: Vec<String>,
    replay: Vec<ShardReplay>,
    replay_lines: Vec<String>,
    /// CPU steal while the load ran.
    steal_pct: Option<f64>,
    /// What the market-data subscribers watching the phase saw.
    feed_lines: Vec<String>,
}

/// Run one phase in `dir` (created): `veloz.toml`, `engine.log`, `data/`, `load-rtt.hlog`.
fn run_phase(
    dir: &Path,
    label: &'static str,
    durability: Durability,
    duration: Duration,
    baseline: bool,
    options: &DemoOptions,
    plan: &Plan,
) -> anyhow::Result<Phase> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join("data");
    let mut config = Config::default();
    config.engine.data_dir = data.clone();
    config.engine.cores = options.cores.clone();
    config.gateway.listen = "127.0.0.1:0".into();
    config.metrics.listen = "127.0.0.1:0".into();
    config.feed.listen = "127.0.0.1:0".into();
    config.feed.ws_listen = "127.0.0.1:0".into();
    config.fix.enabled = true;
    config.fix.listen = "127.0.0.1:0".into();
    config.journal.durability = durability;
    let config_path = dir.join("veloz.toml");
    std::fs::write(&config_path, config.to_toml_string())?;
    let log_path = dir.join("engine.log");
    let engine = EngineChild::start(&config_path, &log_path)?;
    println!(
        "\n== {} phase (durability = \"{label}\"): orders on {}, metrics on {} (log {})",
        if durability == Durability::None {
            "main"
        } else {
            "group-commit"
        },
        engine.orders,
        engine.metrics,
        log_path.display()
    );
    println!("   market data on {}", engine.market_data);
    if !engine.fix.is_empty() {
        println!("   FIX 4.4 order entry on {} (docs/fix.md)", engine.fix);
    }
    let hlog = dir.join("load-rtt.hlog");
    let load_config = LoadConfig {
        connect: engine.orders.clone(),
        connections: options.connections,
        cores: Some(plan.setup.load_cores.clone()),
        mode: Mode::Open {
            rate: options.rate,
            window: DEFAULT_WINDOW,
        },
        duration,
        warmup: WARMUP,
        seed: 1,
        symbols: Vec::new(),
        accounts: Credential::demo(),
        config: config.clone(),
        resting: None,
        deviation_ticks: None,
        hlog: Some(hlog.clone()),
        baseline,
        baseline_cores: Some(plan.floor_cores.clone()),
    };
    // One subscriber on each market-data feed watches the phase: trades and the top of
    // book of every instrument, what a ticker screen shows (the full book of every
    // instrument would cost the 2-core layout's shared cores enough to move the figures).
    let (binary, ws) = engine.feed_addrs()?;
    let subscribers = Subscribers::start(&SubscriberConfig {
        ws: Some((ws, 1)),
        binary: Some((binary, 1)),
        core: None,
        ws_symbols: Vec::new(),
        ws_channels: vec!["trades".into(), "ticker".into()],
        binary_channels: vec![veloz_md::Channel::Trades, veloz_md::Channel::Top],
    })
    .map_err(|e| anyhow::anyhow!("market-data subscribers: {e}"))?;
    let before = host::sample_stat()?;
    let report = veloz_load::run(&load_config)?;
    let feed_lines = subscribers
        .stop()
        .map_err(|e| anyhow::anyhow!("market-data subscribers: {e}"))?
        .iter()
        .map(|r| r.line())
        .collect();
    let steal_pct = host::steal_pct(before.cpu, host::sample_stat()?.cpu);
    let metrics = engine.scrape().unwrap_or_default();
    let stopped = engine.stop(Duration::from_secs(60))?;

    // The journals rebuild exactly the state the live engine recorded.
    let shards = audit::replay(&data, &config, &ReplayOptions::default(), |_, _| {})?;
    let mut replay = Vec::new();
    let mut replay_lines = Vec::new();
    for s in &shards {
        let failure = match audit::verify(&data, s, None) {
            Verdict::Match(_) => {
                replay_lines.push(format!(
                    "  shard {}: {} commands, {} trades, state hash {} = live engine's",
                    s.shard, s.commands, s.trades, s.state_hash
                ));
                None
            }
            other => {
                replay_lines.push(format!("  shard {}: NOT VERIFIED: {other:?}", s.shard));
                Some(format!("{other:?}"))
            }
        };
        replay.push(ShardReplay {
            phase: label,
            shard: s.shard,
            failure,
        });
    }
    Ok(Phase {
        config,
        data,
        hlog,
        report,
        metrics,
        stopped,
        replay,
        replay_lines,
        steal_pct,
        feed_lines,
    })
}

impl Phase {
    fn reports_dir(&self) -> PathBuf {
        self.config
            .metrics
            .reports_dir
            .clone()
            .unwrap_or_else(|| self.data.join("reports"))
    }

    /// The engine's `metric` over the load's measured window.
    fn engine_window(&self, metric: &str) -> anyhow::Result<Histogram<u64>> {
        let window = engine::window_of(&self.hlog)?;
        engine::within(&self.reports_dir().join(format!("{metric}.hlog")), window)
    }

    fn print_stop_and_replay(&self) {
        println!("market data, one subscriber per feed:");
        for l in &self.feed_lines {
            println!("  {l}");
        }
        println!("engine stopped cleanly:");
        for l in self
            .stopped
            .iter()
            .filter(|l| l.contains("clean shutdown at sequence"))
        {
            println!("  {l}");
        }
        println!("offline replay of the journals:");
        for l in &self.replay_lines {
            println!("{l}");
        }
    }
}

/// Remove the `shard-*` journal directories under `data`; returns the bytes their files took.
fn remove_journals(data: &Path) -> anyhow::Result<u64> {
    let mut freed = 0;
    for entry in std::fs::read_dir(data).with_context(|| format!("listing {}", data.display()))? {
        let path = entry?.path();
        let is_journal = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("shard-"));
        if !is_journal || !path.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&path)? {
            freed += file?.metadata().map_or(0, |m| m.len());
        }
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(freed)
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

/// (p50, p99) in us, `None` for an empty histogram.
fn p50_p99(h: &Histogram<u64>) -> Option<(f64, f64)> {
    (!h.is_empty()).then(|| (us(h, 0.5), us(h, 0.99)))
}

/// Run the demo; prints as it goes. Fails if any step fails, including verification.
pub fn run(options: &DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = match &options.dir {
        Some(d) => d.clone(),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos();
            std::env::temp_dir().join(format!("veloz-demo-{}-{nanos}", std::process::id()))
        }
    };
    let plan = Plan::new(options)?;
    plan.print(options, &dir);
    let mut host = host::measure(plan.online.len(), Duration::from_secs(1), 11)?;
    print_host(&host, &plan);

    let main = run_phase(
        &dir,
        "none",
        Durability::None,
        options.duration,
        options.baseline,
        options,
        &plan,
    )?;
    host.run_steal_pct = main.steal_pct;
    println!("\n{}", main.report.to_text());
    if let Some(steal) = main.steal_pct {
        println!("host: during the main phase, CPU steal {steal:.1} %");
    }
    main.print_stop_and_replay();
    let main_reports = main.reports_dir();
    let report_file = main_reports.join(veloz_engine::reports::REPORT_FILE);
    println!(
        "\n{}",
        std::fs::read_to_string(&report_file).unwrap_or_default()
    );

    let group = if options.group_duration.is_zero() {
        None
    } else {
        let g = run_phase(
            &dir.join("group"),
            "group",
            Durability::Group,
            options.group_duration,
            false,
            options,
            &plan,
        )?;
        let commit = g.engine_window("commit_wait")?;
        let rtt = &g.report.veloz.latency_us;
        let none = &main.report.veloz.latency_us;
        println!(
            "group commit, client round trip, us: p50 {:.1}, p99 {:.1}, p99.9 {:.1} (durability none: p50 {:.1}, p99 {:.1}, p99.9 {:.1}); {} of {} answered",
            rtt.p50, rtt.p99, rtt.p99_9, none.p50, none.p99, none.p99_9, g.report.veloz.answered, g.report.veloz.sent
        );
        println!(
            "group commit, engine commit_wait over the measured window, us: p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1} ({} commands)",
            us(&commit, 0.5),
            us(&commit, 0.99),
            us(&commit, 0.999),
            commit.max() as f64 / 1_000.0,
            commit.len()
        );
        let syncs = engine::counter_total(&g.metrics, "veloz_journal_syncs_total");
        let records = engine::counter_total(&g.metrics, "veloz_journal_records_total");
        if let (Some(syncs), Some(records)) = (syncs, records) {
            println!(
                "group commit, journal over the engine's run: {syncs} syncs for {records} records ({:.0} records per sync)",
                records as f64 / syncs.max(1) as f64
            );
        }
        g.print_stop_and_replay();
        if g.replay.iter().all(|r| r.failure.is_none()) {
            // Each shard reserves whole journal segments: keep one phase's on disk, not two.
            let freed = remove_journals(&g.data)?;
            println!(
                "group phase journals verified and removed ({} MiB); its logs and reports stay",
                freed >> 20
            );
        }
        Some((g, commit))
    };

    let veloz_rtt = engine::merged(&main.hlog)?;
    let engine_ack = engine::merged(&main_reports.join("ingress_to_ack.hlog"))?;
    let mut series = vec![
        Series {
            label: "veloz round trip (client)",
            histogram: &veloz_rtt,
        },
        Series {
            label: "ingress to ack (inside the engine)",
            histogram: &engine_ack,
        },
    ];
    let floor = match &main.report.hlog_baseline {
        Some(path) => Some(engine::merged(Path::new(path))?),
        None => None,
    };
    if let Some(floor) = &floor {
        series.push(Series {
            label: "loopback echo floor",
            histogram: floor,
        });
    }
    let group_rtt = match &group {
        Some((g, _)) => Some(engine::merged(&g.hlog)?),
        None => None,
    };
    if let Some(h) = &group_rtt {
        series.push(Series {
            label: "veloz round trip, durability group",
            histogram: h,
        });
    }
    let plot = dir.join("latency.svg");
    write_plot(&plot, "Veloz demo: latency by percentile", &series)?;
    println!("\nwritten:");
    println!("  load interval log      {}", main.hlog.display());
    if let Some(b) = &main.report.hlog_baseline {
        println!("  echo floor log         {b}");
    }
    println!("  engine interval logs   {}/*.hlog", main_reports.display());
    println!("  engine latency report  {}", report_file.display());
    if group.is_some() {
        println!(
            "  group phase            {}/ (same files)",
            dir.join("group").display()
        );
    }
    println!("  percentile plot        {}", plot.display());
    println!("  journals               {}/shard-*/", main.data.display());
    println!(
        "read them again with: veloz report {} {}/ingress_to_ack.hlog",
        main.hlog.display(),
        main_reports.display()
    );

    let mut replay = main.replay.clone();
    let mut commit_wait_us = None;
    if let Some((g, commit)) = &group {
        replay.extend(g.replay.iter().cloned());
        commit_wait_us = p50_p99(commit);
    }
    let figures = Figures {
        client_p50_us: main.report.veloz.latency_us.p50,
        client_p99_us: main.report.veloz.latency_us.p99,
        floor_us: main
            .report
            .baseline
            .as_ref()
            .map(|b| (b.latency_us.p50, b.latency_us.p99)),
        engine_us: p50_p99(&main.engine_window("ingress_to_ack")?),
        commit_wait_us,
        replay,
    };
    let judgements = verdict::judge(&plan.setup, &host, &figures);
    println!(
        "\nveloz demo: verdicts ({}; ranges in docs/BENCHMARKS.md, \"Expected ranges for `veloz demo`\")",
        match plan.setup.layout() {
            expect::Layout::Shared => "the load generator shares a shard's core",
            expect::Layout::Dedicated => "the load generator has its own core",
        }
    );
    for j in &judgements {
        println!("{}", j.line());
    }
    println!(
        "veloz demo: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if verdict::any_failed(&judgements) {
        bail!("the offline replay did not verify against the live engine's state");
    }
    Ok(())
}
