//! The engine as the demo runs it: a `veloz serve` child process, its metrics socket, and the
//! interval logs it leaves behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use veloz_report::read_log_file;

/// The engine child process; killed on drop unless it was stopped.
pub struct EngineChild {
    child: Child,
    stdout: mpsc::Receiver<String>,
    log: std::path::PathBuf,
    /// Where it takes orders.
    pub orders: String,
    /// Its metrics socket.
    pub metrics: String,
    /// The market-data line: binary feed, WebSocket feed and book page addresses.
    pub market_data: String,
    /// The FIX 4.4 acceptor's line (`HOST:PORT (TargetCompID VELOZ)`), empty when off.
    pub fix: String,
}

impl std::fmt::Debug for EngineChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineChild")
            .field("pid", &self.child.id())
            .field("orders", &self.orders)
            .finish()
    }
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
    /// Start `veloz serve --config CONFIG` (this same binary), its stderr to `log`, and wait
    /// for its listening lines.
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<EngineChild> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(std::env::current_exe().context("locating the veloz binary")?)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
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
        let mut engine = EngineChild {
            child,
            stdout: rx,
            log: log.to_path_buf(),
            orders: String::new(),
            metrics: String::new(),
            market_data: String::new(),
            fix: String::new(),
        };
        // Printed before the listening line.
        engine.market_data = engine.line("veloz: market data on ", Duration::from_secs(60))?;
        // The demo's config keeps FIX on (printed before the listening line).
        engine.fix = engine.line("veloz: FIX 4.4 order entry on ", Duration::from_secs(60))?;
        engine.orders = engine.line("veloz: listening on ", Duration::from_secs(5))?;
        engine.metrics = engine.line("veloz: metrics on ", Duration::from_secs(5))?;
        Ok(engine)
    }

    /// The binary feed's and the WebSocket feed's `HOST:PORT`, from the market-data line
    /// (`ADDR (binary), ws://HOST:PORT/ws (websocket), book page http://HOST:PORT/`).
    pub fn feed_addrs(&self) -> anyhow::Result<(String, String)> {
        let line = &self.market_data;
        let binary = line.split(' ').next().unwrap_or("").to_string();
        let ws = line
            .split("ws://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_string();
        if binary.is_empty() || ws.is_empty() {
            bail!("cannot read the feed addresses from the engine's line {line:?}");
        }
        Ok((binary, ws))
    }

    /// Wait for a stdout line starting with `prefix`; returns the rest.
    fn line(&mut self, prefix: &str, within: Duration) -> anyhow::Result<String> {
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
                    self.log.display()
                );
            }
        }
        bail!(
            "no {prefix:?} line from the engine within {within:?}; its log: {}",
            self.log.display()
        )
    }

    /// The metrics socket's text (Prometheus exposition format).
    pub fn scrape(&self) -> anyhow::Result<String> {
        let mut conn = TcpStream::connect(&self.metrics)
            .with_context(|| format!("connecting to the metrics socket {}", self.metrics))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        conn.read_to_string(&mut text)
            .with_context(|| format!("reading the metrics from {}", self.metrics))?;
        Ok(text)
    }

    /// SIGTERM and wait for a clean exit; returns the stdout lines printed meanwhile.
    pub fn stop(mut self, within: Duration) -> anyhow::Result<Vec<String>> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("sending SIGTERM to the engine")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "the engine stopped with {status}; its log: {}",
                        self.log.display()
                    );
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

/// The sum over shards of counter `name` in exposition text (`name{shard="0"} 12`).
pub fn counter_total(text: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<u64>().ok()?;
        *found.get_or_insert(0) += value;
    }
    found
}

/// Every interval of the log at `path`, merged.
pub fn merged(path: &Path) -> anyhow::Result<Histogram<u64>> {
    within(path, None)
}

/// The intervals of the log at `path` that overlap `window` (since the Unix epoch), merged;
/// all of them when `window` is `None`.
pub fn within(path: &Path, window: Option<(Duration, Duration)>) -> anyhow::Result<Histogram<u64>> {
    let log = read_log_file(path).with_context(|| format!("reading {}", path.display()))?;
    let start = log.start_time.unwrap_or_default();
    let mut h = veloz_engine::metrics::new_histogram();
    for interval in &log.intervals {
        let from = start + interval.start;
        let to = from + interval.duration;
        if window.is_none_or(|(a, b)| overlaps((from, to), (a, b))) {
            h.add(&interval.histogram).context("merging intervals")?;
        }
    }
    Ok(h)
}

/// The measured window of a load generator's log: its StartTime to its last interval's end.
pub fn window_of(path: &Path) -> anyhow::Result<Option<(Duration, Duration)>> {
    let log = read_log_file(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(start), Some(last)) = (log.start_time, log.intervals.last()) else {
        return Ok(None);
    };
    let first = log.intervals.first().map_or(Duration::ZERO, |i| i.start);
    Ok(Some((start + first, start + last.start + last.duration)))
}

/// Whether two half-open spans share any time.
pub fn overlaps(a: (Duration, Duration), b: (Duration, Duration)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_over_shards() {
        let text = "# HELP veloz_journal_syncs_total Journal syncs completed (group commit)
# TYPE veloz_journal_syncs_total counter
veloz_journal_syncs_total{shard=\"0\"} 120
veloz_journal_syncs_total{shard=\"1\"} 80
veloz_journal_syncs_totally_other{shard=\"0\"} 5
veloz_journal_records_total{shard=\"0\"} 9000
";
        assert_eq!(counter_total(text, "veloz_journal_syncs_total"), Some(200));
        assert_eq!(
            counter_total(text, "veloz_journal_records_total"),
            Some(9000)
        );
        assert_eq!(counter_total(text, "veloz_missing_total"), None);
        assert_eq!(counter_total("veloz_x 7\n", "veloz_x"), Some(7));
    }

    #[test]
    fn spans_overlap_only_when_they_share_time() {
        let s = Duration::from_secs;
        assert!(overlaps((s(0), s(2)), (s(1), s(3))));
        assert!(overlaps((s(1), s(3)), (s(0), s(10))));
        assert!(
            !overlaps((s(0), s(1)), (s(1), s(2))),
            "touching is not sharing"
        );
        assert!(!overlaps((s(5), s(6)), (s(1), s(2))));
    }
}
