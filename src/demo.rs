//! `veloz demo` (what `make run` runs): the whole engine on embedded defaults, measured from
//! outside and from inside, then audited.
//!
//! 1. writes the embedded configuration with a temporary data directory and free ports;
//! 2. starts `veloz serve` as a child process: one shard per online core, journals on
//!    (`durability = "none"`: page cache, survives a process crash);
//! 3. drives it with the load generator (open loop, exchange-core's mix) and, in the same
//!    run, measures the host's busy-polled loopback echo floor with the same client;
//! 4. stops the engine with SIGTERM (clean shutdown: drain, checkpoint, marker);
//! 5. replays every journal offline and checks each shard's state hash against the one the
//!    live engine recorded;
//! 6. prints the client-side and engine-side latency reports and where the interval logs,
//!    the report and the percentile plot were written.
//!
//! Nothing is left running: the engine is stopped (killed if it will not stop) on every
//! path out of [`run`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use crate::audit::{self, ReplayOptions, Verdict};
use veloz_config::Config;
use veloz_journal::Durability;
use veloz_load::{Credential, LoadConfig, Mode, DEFAULT_WINDOW};
use veloz_report::{read_log, write_plot, Series};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Orders per second offered (open loop, all connections together).
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    /// Measure the echo floor too (doubles the run time).
    pub baseline: bool,
    /// Where everything goes; a fresh temporary directory when `None`.
    pub dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rate: 20_000,
            duration: Duration::from_secs(10),
            connections: 4,
            baseline: true,
            dir: None,
        }
    }
}

/// The engine child process; killed on drop unless it was stopped.
struct EngineChild {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Drop for EngineChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl EngineChild {
    /// Wait for a stdout line starting with `prefix`; returns the rest.
    fn line(&mut self, prefix: &str, within: Duration, log: &Path) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.stdout.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the engine exited ({status}) before printing {prefix:?}; its log: {}",
                    log.display()
                );
            }
        }
        bail!(
            "no {prefix:?} line from the engine within {within:?}; its log: {}",
            log.display()
        )
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(mut self, within: Duration) -> anyhow::Result<Vec<String>> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("sending SIGTERM to the engine")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the engine stopped with {status}");
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("the engine did not stop within {within:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut lines = Vec::new();
        while let Ok(l) = self.stdout.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
        Ok(lines)
    }
}

fn merged(path: &Path) -> anyhow::Result<Histogram<u64>> {
    let mut h = veloz_engine::metrics::new_histogram();
    for interval in read_log(path).with_context(|| format!("reading {}", path.display()))? {
        h.add(&interval.histogram).context("merging intervals")?;
    }
    Ok(h)
}

/// Run the demo; prints as it goes. Fails if any step fails, including verification.
pub fn run(options: &DemoOptions) -> anyhow::Result<()> {
    let dir = match &options.dir {
        Some(d) => d.clone(),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos();
            std::env::temp_dir().join(format!("veloz-demo-{}-{nanos}", std::process::id()))
        }
    };
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = Config::default();
    config.engine.data_dir = data.clone();
    config.gateway.listen = "127.0.0.1:0".into();
    config.metrics.listen = "127.0.0.1:0".into();
    config.journal.durability = Durability::None;
    let config_path = dir.join("veloz.toml");
    std::fs::write(&config_path, config.to_toml_string())?;
    let online = veloz_load::online_cores()?;
    println!(
        "veloz demo: {} online core(s) -> {} shard(s); everything goes to {}",
        online.len(),
        online.len(),
        dir.display()
    );

    let log_path = dir.join("engine.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(std::env::current_exe().context("locating the veloz binary")?)
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting veloz serve")?;
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut engine = EngineChild { child, stdout: rx };
    let addr = engine.line("veloz: listening on ", Duration::from_secs(60), &log_path)?;
    let metrics = engine.line("veloz: metrics on ", Duration::from_secs(5), &log_path)?;
    println!(
        "engine: orders on {addr}, metrics on {metrics} (log {})",
        log_path.display()
    );

    let hlog = dir.join("load-rtt.hlog");
    let load_config = LoadConfig {
        connect: addr.clone(),
        connections: options.connections,
        cores: None,
        mode: Mode::Open {
            rate: options.rate,
            window: DEFAULT_WINDOW,
        },
        duration: options.duration,
        warmup: Duration::from_secs(1),
        seed: 1,
        symbols: Vec::new(),
        accounts: Credential::demo(),
        config: config.clone(),
        resting: None,
        deviation_ticks: None,
        hlog: Some(hlog.clone()),
        baseline: options.baseline,
        baseline_cores: None,
    };
    println!(
        "load: {} orders/s open loop over {} connections for {:?}{} ...",
        options.rate,
        options.connections,
        options.duration,
        if options.baseline {
            ", then the echo floor"
        } else {
            ""
        }
    );
    let report = veloz_load::run(&load_config)?;
    println!("\n{}", report.to_text());

    let engine_out = engine.stop(Duration::from_secs(60))?;
    println!("engine stopped cleanly:");
    for l in engine_out
        .iter()
        .filter(|l| l.contains("clean shutdown at sequence"))
    {
        println!("  {l}");
    }

    // The journals rebuild exactly the state the live engine recorded.
    let shards = audit::replay(&data, &config, &ReplayOptions::default(), |_, _| {})?;
    let mut verified = true;
    println!("\noffline replay of the journals:");
    for s in &shards {
        match audit::verify(&data, s, None) {
            Verdict::Match(_) => println!(
                "  shard {}: {} commands, {} trades, state hash {} = live engine's",
                s.shard, s.commands, s.trades, s.state_hash
            ),
            other => {
                verified = false;
                println!("  shard {}: NOT VERIFIED: {other:?}", s.shard);
            }
        }
    }

    let reports_dir = data.join("reports");
    let report_file = reports_dir.join(veloz_engine::reports::REPORT_FILE);
    let engine_report = std::fs::read_to_string(&report_file).unwrap_or_default();
    println!("\n{engine_report}");

    let veloz_rtt = merged(&hlog)?;
    let engine_ack = merged(&reports_dir.join("ingress_to_ack.hlog"))?;
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
    let floor;
    if let Some(path) = &report.hlog_baseline {
        floor = merged(Path::new(path))?;
        series.push(Series {
            label: "loopback echo floor",
            histogram: &floor,
        });
    }
    let plot = dir.join("latency.svg");
    write_plot(&plot, "Veloz demo: latency by percentile", &series)?;
    println!("written:");
    println!("  load interval log      {}", hlog.display());
    if let Some(b) = &report.hlog_baseline {
        println!("  echo floor log         {b}");
    }
    println!("  engine interval logs   {}/*.hlog", reports_dir.display());
    println!("  engine latency report  {}", report_file.display());
    println!("  percentile plot        {}", plot.display());
    println!("  journals               {}/shard-*/", data.display());
    println!(
        "read them again with: veloz report {} {}/ingress_to_ack.hlog",
        hlog.display(),
        reports_dir.display()
    );
    if !verified {
        bail!("the offline replay did not verify against the live engine's state");
    }
    Ok(())
}
