//! A primary/standby pair of real `veloz serve` processes for the replication tests, and
//! clients that trade through a failover.
//!
//! - [`node_config`]: the test config (`tests/common`'s) with `durability = "replicated"`,
//!   a fixed gateway port (clients list both nodes' addresses before either listens) and a
//!   `[replication]` table pointing at the test cluster.
//! - [`Node`]: one `veloz serve` process; its stdout and stderr lines are collected by
//!   threads; SIGKILL, SIGSTOP/SIGCONT and waits for a line or the exit. Dropped: killed.
//! - [`trade`]: a client that sends orders to whichever node answers (`Client::logon_any`)
//!   and, after a disconnect, logs on again resuming after the last report of each stream,
//!   as a member would; it keeps every report (duplicates of a resend removed).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veloz_config::Config;
use veloz_core::*;
use veloz_load::client::{Client, Received};
use veloz_wire::ExecutionReport;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Config of node `name` under `dir` (data in `dir/name/data`), gateway on `port`, each of
/// `edits` (text, replacement) applied once.
pub fn node_config(
    dir: &Path,
    name: &str,
    urls: &str,
    engine: &str,
    port: u16,
    lease_ms: u64,
    edits: &[(&str, &str)],
) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let path = crate::common::test_config(&home, "replicated", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[gateway]\nlisten = \"127.0.0.1:0\"",
        &format!("[gateway]\nlisten = \"127.0.0.1:{port}\""),
        1,
    );
    let urls: Vec<String> = urls.split(',').map(|u| format!("{u:?}")).collect();
    let mut text = format!(
        "{text}\n[replication]\nurls = [{}]\nengine = {engine:?}\nnode = {name:?}\nlease_ms = {lease_ms}\n",
        urls.join(", ")
    );
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} is not in the test config");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// One `veloz serve` process.
pub struct Node {
    pub name: String,
    child: Child,
    pub config: PathBuf,
    pub data: PathBuf,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    exit: Option<i32>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Node {
    /// Start `veloz serve --config CONFIG [--standby]`.
    pub fn start(name: &str, config: &Path, standby: bool) -> Node {
        let mut cmd = Process::new(crate::common::veloz_bin());
        cmd.args(["serve", "--config"]).arg(config);
        if standby {
            cmd.arg("--standby");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn veloz");
        let (out, err) = (Arc::default(), Arc::default());
        collect(child.stdout.take().unwrap(), Arc::clone(&out));
        collect(child.stderr.take().unwrap(), Arc::clone(&err));
        let data = config.parent().unwrap().join("data");
        Node {
            name: name.to_string(),
            child,
            config: config.to_path_buf(),
            data,
            out,
            err,
            exit: None,
        }
    }

    /// Everything printed so far (stdout, then stderr).
    pub fn lines(&self) -> String {
        let out = self.out.lock().unwrap().join("\n");
        let err = self.err.lock().unwrap().join("\n");
        format!(
            "--- {} stdout\n{out}\n--- {} stderr\n{err}",
            self.name, self.name
        )
    }

    /// The first line (stdout or stderr) starting with `prefix`, waiting up to `limit`.
    pub fn wait_line(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            for lines in [&self.out, &self.err] {
                if let Some(l) = lines.lock().unwrap().iter().find(|l| l.starts_with(prefix)) {
                    return Some(l.clone());
                }
            }
            if Instant::now() >= deadline || self.exited().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Like [`Node::wait_line`], panicking with everything the node printed.
    pub fn expect_line(&mut self, prefix: &str, limit: Duration) -> String {
        self.wait_line(prefix, limit).unwrap_or_else(|| {
            panic!(
                "{}: no line {prefix:?} within {limit:?}\n{}",
                self.name,
                self.lines()
            )
        })
    }

    /// The value after `prefix` on a stdout line, e.g. an address.
    pub fn printed(&mut self, prefix: &str, limit: Duration) -> String {
        let line = self.expect_line(prefix, limit);
        line[prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }

    pub fn exited(&mut self) -> Option<i32> {
        if self.exit.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s.code().unwrap_or(-1));
            }
        }
        self.exit
    }

    /// Wait up to `limit` for the process to exit; its status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(c) = self.exited() {
                return Some(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn signal(&self, sig: &str) {
        let ok = Process::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.child.id());
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigstop(&self) {
        self.signal("-STOP");
    }

    pub fn sigcont(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM and wait for the clean stop.
    pub fn stop(&mut self, limit: Duration) -> Option<i32> {
        self.signal("-TERM");
        self.wait_exit(limit)
    }

    /// One series of the node's metrics endpoint (`metrics_addr`), if present.
    pub fn metric(metrics_addr: &str, series: &str) -> Option<f64> {
        crate::common::metric(&crate::common::scrape(metrics_addr), series)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reports a client received, by (stream, stream sequence): resends collapse.
pub type Seen = BTreeMap<(u16, u64), ExecutionReport<'static>>;

/// What a trading client did.
#[derive(Debug, Default)]
pub struct Traded {
    pub seen: Seen,
    pub logons: Vec<usize>,
    pub sent: u64,
}

/// Trade on every instrument against `addrs` (whichever node answers) until `stop`;
/// after a disconnect, log on again resuming after the last report of each stream.
pub fn trade(
    addrs: Vec<String>,
    account: (AccountId, &'static str),
    stop: Arc<AtomicBool>,
) -> Traded {
    let instruments = Config::default().instruments();
    let side = if account.0 == 1 {
        Side::Sell
    } else {
        Side::Buy
    };
    let mut t = Traded::default();
    let mut i: u64 = 0;
    'session: while !stop.load(Ordering::SeqCst) {
        let resume: Option<Vec<u64>> = if t.seen.is_empty() {
            None
        } else {
            let streams = t
                .seen
                .keys()
                .map(|(s, _)| *s as usize + 1)
                .max()
                .unwrap_or(0);
            let mut last = vec![0u64; streams];
            for (stream, seq) in t.seen.keys() {
                last[*stream as usize] = last[*stream as usize].max(*seq);
            }
            Some(last)
        };
        let logon = Client::logon_any(
            &addrs,
            account.0,
            account.1,
            resume.as_deref(),
            Duration::from_secs(20),
        );
        let Ok((mut c, _, index)) = logon else {
            continue;
        };
        t.logons.push(index);
        while !stop.load(Ordering::SeqCst) {
            let inst = &instruments[(i % instruments.len() as u64) as usize];
            let offset = ((i * 7) % 5) as i64 - 2;
            let cmd = crate::common::limit(
                inst.id,
                1_000_000 * t.logons.len() as u64 + i,
                side,
                inst.reference_price + offset * inst.tick_size,
                1 + i % 3,
            );
            if c.send(&cmd).is_err() {
                continue 'session;
            }
            t.sent += 1;
            i += 1;
            // Pace the load (a few thousand orders a second): the cluster shares the cores.
            let wait = if i.is_multiple_of(8) { 2_000 } else { 0 };
            loop {
                match c.recv(Duration::from_micros(wait)) {
                    Ok(Some(Received::Report(r))) => {
                        t.seen.insert((r.stream, r.stream_seq), r);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => continue 'session,
                }
            }
        }
        // Stopping: take what is still on its way.
        while let Ok(Some(m)) = c.recv(Duration::from_millis(300)) {
            if let Received::Report(r) = m {
                t.seen.insert((r.stream, r.stream_seq), r);
            }
        }
    }
    t
}

/// Gaps in each stream a client saw (a resend fills them: there should be none).
pub fn gaps(seen: &Seen) -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    let mut last: BTreeMap<u16, u64> = BTreeMap::new();
    for (stream, seq) in seen.keys() {
        let prev = last.insert(*stream, *seq).unwrap_or(0);
        if *seq != prev + 1 {
            out.push((*stream, prev + 1));
        }
    }
    out
}
