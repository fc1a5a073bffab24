//! Shared harness for tests that run `veloz serve` as a real process on loopback.
//!
//! Engine tests run one at a time (a process-wide lock): each engine busy-polls its cores,
//! and on a 2-core machine two of them would starve each other and the test runner.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use veloz_core::*;

static ENGINE_LOCK: Mutex<()> = Mutex::new(());

/// Hold this for the whole test.
pub fn serial() -> MutexGuard<'static, ()> {
    ENGINE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("veloz-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded default config with test settings: any free port, small journal segments,
/// the given durability and extra TOML appended.
pub fn test_config(dir: &Path, durability: &str, gateway_extra: &str) -> PathBuf {
    let base = veloz_config::Config::default();
    let mut text = String::new();
    text.push_str(&format!(
        "[engine]\ndata_dir = {:?}\nspin_us = 500\npark_max_us = 500\n\n",
        dir.join("data")
    ));
    text.push_str(&format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nheartbeat_ms = 1000\nidle_timeout_ms = 30000\n{gateway_extra}\n"
    ));
    text.push_str(&format!(
        "[journal]\nsegment_size = {}\ndurability = {durability:?}\n\n",
        4 << 20
    ));
    text.push_str("[metrics]\nlisten = \"127.0.0.1:0\"\ninterval_ms = 200\n\n");
    // The feed publishes in batches (a pass per millisecond while commands flow): the feed
    // tests check that batching still delivers every update, in order.
    text.push_str(
        "[feed]\nlisten = \"127.0.0.1:0\"\nws_listen = \"127.0.0.1:0\"\nbatch_us = 1000\n\n",
    );
    text.push_str("[fix]\nlisten = \"127.0.0.1:0\"\n\n");
    let mut rest = base.to_toml_string();
    // Drop the [engine]/[gateway]/[journal] tables of the default; keep instruments/accounts.
    for table in [
        "[engine]",
        "[gateway]",
        "[journal]",
        "[metrics]",
        "[feed]",
        "[fix]",
        "[replication]",
    ] {
        if let Some(start) = rest.find(table) {
            let end = rest[start + table.len()..]
                .find("\n[")
                .map_or(rest.len(), |e| start + table.len() + e + 1);
            rest.replace_range(start..end, "");
        }
    }
    text.push_str(&rest);
    let path = dir.join("veloz.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The repository's root (the root package's manifest directory).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a script or command run by a test printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything, for an assertion message.
    pub fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A running `veloz serve` process.
pub struct EngineProcess {
    pub child: Child,
    pub addr: String,
    /// The metrics socket's address.
    pub metrics: String,
    /// The binary market-data feed's address (empty when the feed is off).
    pub feed: String,
    /// The WebSocket feed's host:port (`ws://{ws}/ws`; the book page is `http://{ws}/`).
    pub ws: String,
    /// The FIX 4.4 acceptor's HOST:PORT (empty until the engine printed its line; see
    /// [`EngineProcess::collect`]).
    pub fix: String,
    pub config: PathBuf,
    pub data: PathBuf,
    /// Everything the engine printed on stderr so far (collected by a thread).
    stderr: mpsc::Receiver<String>,
    pub stderr_lines: Vec<String>,
    stdout: mpsc::Receiver<String>,
    pub stdout_lines: Vec<String>,
}

pub fn veloz_bin() -> &'static str {
    env!("CARGO_BIN_EXE_veloz")
}

/// Run `veloz ARGS` to completion: (exit code, stdout, stderr).
pub fn veloz(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(veloz_bin())
        .args(args)
        .output()
        .expect("run veloz");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

impl EngineProcess {
    /// Start the engine and wait for its "listening on" line.
    pub fn start(config: &Path) -> EngineProcess {
        EngineProcess::try_start(config).unwrap_or_else(|(e, lines)| {
            panic!("engine did not start: {e}\nstderr:\n{}", lines.join("\n"))
        })
    }

    pub fn try_start(config: &Path) -> Result<EngineProcess, (String, Vec<String>)> {
        EngineProcess::try_start_with(config, &[])
    }

    /// Start with extra `veloz serve` arguments.
    pub fn try_start_with(
        config: &Path,
        extra: &[&str],
    ) -> Result<EngineProcess, (String, Vec<String>)> {
        let text = std::fs::read_to_string(config).unwrap();
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data_dir = "))
            .map(|v| PathBuf::from(v.trim_matches('"')))
            .expect("data_dir in test config");
        let mut child = Process::new(veloz_bin())
            .args(["serve", "--config"])
            .arg(config)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn veloz");
        let stderr = pipe_lines(child.stderr.take().unwrap());
        let stdout = pipe_lines(child.stdout.take().unwrap());
        let mut engine = EngineProcess {
            child,
            addr: String::new(),
            metrics: String::new(),
            feed: String::new(),
            ws: String::new(),
            fix: String::new(),
            config: config.to_path_buf(),
            data,
            stderr,
            stderr_lines: Vec::new(),
            stdout,
            stdout_lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = engine.stdout.recv_timeout(Duration::from_millis(50)) {
                if let Some(addr) = line.strip_prefix("veloz: listening on ") {
                    engine.addr = addr.trim().to_string();
                } else if let Some(addr) = line.strip_prefix("veloz: metrics on ") {
                    engine.metrics = addr.trim().to_string();
                } else if let Some(rest) = line.strip_prefix("veloz: market data on ") {
                    // "ADDR (binary), ws://HOST:PORT/ws (websocket), book page ..."
                    engine.feed = rest.split(' ').next().unwrap_or("").to_string();
                    engine.ws = rest
                        .split("ws://")
                        .nth(1)
                        .and_then(|r| r.split('/').next())
                        .unwrap_or("")
                        .to_string();
                }
                engine.note_fix(&line);
                engine.stdout_lines.push(line);
                if !engine.addr.is_empty() && !engine.metrics.is_empty() {
                    return Ok(engine);
                }
                continue;
            }
            if let Ok(Some(status)) = engine.child.try_wait() {
                engine.collect();
                return Err((format!("exited with {status}"), engine.stderr_lines.clone()));
            }
        }
        engine.collect();
        let threads = thread_dump(engine.child.id());
        let _ = engine.child.kill();
        Err((
            format!("no 'listening on' line within 30 s; its threads:\n{threads}"),
            engine.stderr_lines.clone(),
        ))
    }

    /// Pull in what the engine printed so far.
    pub fn collect(&mut self) {
        while let Ok(l) = self.stderr.try_recv() {
            self.stderr_lines.push(l);
        }
        while let Ok(l) = self.stdout.try_recv() {
            self.note_fix(&l);
            self.stdout_lines.push(l);
        }
    }

    /// The FIX acceptor's HOST:PORT (printed before the "listening on" line `start` waits
    /// for); fails the test when the engine printed none.
    pub fn fix_addr(&mut self) -> String {
        self.collect();
        assert!(
            !self.fix.is_empty(),
            "engine printed no FIX address (no 'veloz: FIX 4.4 order entry on HOST:PORT' line); \
             stdout:\n{}",
            self.stdout_lines.join("\n")
        );
        self.fix.clone()
    }

    /// "veloz: FIX 4.4 order entry on HOST:PORT (TargetCompID ...)" to `self.fix`.
    fn note_fix(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("veloz: FIX 4.4 order entry on ") {
            self.fix = rest.split(' ').next().unwrap_or("").to_string();
        }
    }

    /// SIGTERM, then wait for exit (at most 30 s); returns the exit code.
    pub fn stop(mut self) -> (i32, Vec<String>, Vec<String>) {
        let status = Process::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.wait(Duration::from_secs(30));
        self.drain_pipes();
        (code, self.stdout_lines.clone(), self.stderr_lines.clone())
    }

    /// SIGKILL (no chance to clean up), then reap.
    pub fn kill9(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.drain_pipes();
        self.stderr_lines.clone()
    }

    fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.collect();
                panic!(
                    "engine did not stop within {limit:?}; stderr:\n{}",
                    self.stderr_lines.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn drain_pipes(&mut self) {
        // The reader threads end at EOF, which comes with the process exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.stderr.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => self.stderr_lines.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(_) if Instant::now() > deadline => break,
                Err(_) => {}
            }
        }
        while let Ok(l) = self.stdout.try_recv() {
            self.stdout_lines.push(l);
        }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Each thread of process `pid`: its name, state, kernel wait channel and kernel stack
/// (root reads the stack), for a test that gives up waiting on the engine.
fn thread_dump(pid: u32) -> String {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("({}: {e})", path.display()))
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(no /proc/{pid}/task)");
    };
    let mut out = String::new();
    for task in tasks.flatten() {
        let dir = task.path();
        let state = read(dir.join("stat"));
        let state = state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        out.push_str(&format!(
            "-- {} {} state {} wchan {}\n{}\n",
            task.file_name().to_string_lossy(),
            read(dir.join("comm")),
            state.unwrap_or("?"),
            read(dir.join("wchan")),
            read(dir.join("stack")),
        ));
    }
    out
}

fn pipe_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The Python of the project's venv (`make tools` creates `.tools/venv` with flatbuffers and
/// hdrhistogram), or `$VELOZ_PYTHON`; `needs` names what the test uses it for.
pub fn python(needs: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("VELOZ_PYTHON") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(
        local.exists(),
        "python with {needs} not found: set VELOZ_PYTHON or run `make tools` (creates {})",
        local.display()
    );
    local
}

/// `veloz replay --data DATA --config CONFIG --verify`: (exit code, stdout, stderr).
pub fn replay_verify(data: &Path, config: &Path) -> (Option<i32>, String, String) {
    veloz(&[
        "replay",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--config",
        config.to_str().expect("utf-8 path"),
        "--verify",
    ])
}

pub const ALICE: (AccountId, &str) = (1, "demo-alice");
pub const BOB: (AccountId, &str) = (2, "demo-bob");

/// A GTC limit order (account filled in by the engine from the session).
pub fn limit(symbol: SymbolId, coid: u64, side: Side, price: Price, qty: Qty) -> Command {
    Command::New(NewOrder::limit(0, symbol, coid, side, price, qty))
}

pub fn cancel(symbol: SymbolId, coid: u64, order_id: OrderId) -> Command {
    Command::Cancel(CancelOrder {
        account: 0,
        symbol,
        client_order_id: coid,
        order_id,
    })
}

/// One raw scrape of the metrics socket at `addr` (Prometheus text).
pub fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// An HTTP/1.0 request to the admin interface on the metrics socket at `addr`, with the
/// operator's bearer `token` if any: (status code, body).
pub fn admin_http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(s, "{method} {path} HTTP/1.0\r\nHost: veloz\r\n{auth}\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// The value of the series `series` (name with its labels, as printed) in `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Replay `data`'s journals offline through the matching core (the recovery path): every
/// account's execution reports, each keyed by `key`, and each shard's engine once replayed,
/// handed to `each` (its shard, the engine).
pub fn replay_reports<K: Eq + std::hash::Hash>(
    data: &Path,
    config: &Path,
    key: impl Fn(&veloz_wire::ExecutionReport<'_>) -> K,
    mut each: impl FnMut(usize, &Engine),
) -> std::collections::HashMap<AccountId, std::collections::HashSet<K>> {
    let cfg = veloz_config::Config::load(config).unwrap();
    let routing = veloz::audit::routing(data).unwrap();
    let mut reports: std::collections::HashMap<AccountId, std::collections::HashSet<K>> =
        std::collections::HashMap::new();
    for shard in 0..routing.shards {
        let mut engine = veloz::audit::engine_for(&cfg, &routing, shard);
        let mut events = Vec::new();
        veloz::audit::for_each_record(data, shard, None, |rec| {
            veloz_journal::replay::apply_record(&mut engine, rec, &mut events).unwrap();
            for e in &events {
                for (account, r) in veloz_wire::execution_reports(e, rec.seq, rec.ts) {
                    reports.entry(account).or_default().insert(key(&r));
                }
            }
            Ok(())
        })
        .unwrap();
        each(shard, &engine);
    }
    reports
}

/// (exec type, order id, client order id, trade id, last price, last qty, leaves, reasons)
pub type ReportKey = (
    veloz_wire::ExecType,
    OrderId,
    u64,
    u64,
    i64,
    u64,
    u64,
    Option<CancelReason>,
    Option<RejectReason>,
);

/// A report reduced to what must match exactly (the replay has no wall clock to compare).
pub fn report_key(r: &veloz_wire::ExecutionReport<'_>) -> ReportKey {
    (
        r.exec_type,
        r.order_id,
        r.client_order_id,
        r.trade_id,
        r.last_price,
        r.last_qty,
        r.leaves_qty,
        r.cancel_reason,
        r.reject_reason,
    )
}
