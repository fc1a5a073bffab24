//! The engine's logs, from outside: a real `veloz serve` on loopback.
//!
//! - a stderr nobody reads (a pipe left unread, or a reader stopped with SIGSTOP) never
//!   stalls the shards: under floods of wrong-token logons and bad frames, orders keep
//!   being answered, and the log events that found the queue full are counted in
//!   `veloz_log_dropped_total`;
//! - `--log-format json` writes one JSON object per line with the level, target and fields,
//!   and no token, ever;
//! - a flood of refused logons makes a handful of summary lines, not one per logon.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use veloz_core::Side;
use veloz_load::client::{Client, ClientError};
use veloz_wire::{ExecType, LogoutReason};

/// A token no account has: it must never reach a log.
const WRONG_TOKEN: &str = "wrong-token-5c1e9a77";
/// An order's answer may take this long under the floods (generous: a stalled shard never
/// answers at all).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// A frame that does not decode (a reject each; `max_bad_messages` of them end the session).
const GARBAGE: [u8; 16] = [12, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// The test config with its `[log]` table replaced.
fn config_with_log(dir: &Path, log: &str) -> PathBuf {
    let path = test_config(dir, "none", "");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find("[log]\n")
        .expect("the default config has a [log] table");
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |e| start + 1 + e + 1);
    text.replace_range(start..end, &format!("[log]\n{log}\n"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One logon with the wrong token: refused with AuthenticationFailed.
fn refused_logon(addr: &str) {
    match Client::logon(addr, ALICE.0, WRONG_TOKEN) {
        Err(ClientError::LogonRefused { reason, .. }) => {
            assert_eq!(reason, LogoutReason::AuthenticationFailed)
        }
        Err(e) => panic!("wrong-token logon: {e}"),
        Ok(_) => panic!("a wrong token was accepted"),
    }
}

/// One connection sending garbage until the engine closes it.
fn bad_frames(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let burst: Vec<u8> = GARBAGE.repeat(11);
    let _ = s.write_all(&burst);
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

/// Scrape the metrics socket and read one unlabelled series.
fn metric(addr: &str, name: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: veloz\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Sum of an unlabelled-or-labelled counter over its series.
fn metric_sum(addr: &str, name: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: veloz\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How the engine's stderr is (not) read.
#[derive(Clone, Copy, Debug)]
enum StuckStderr {
    /// A pipe whose read end the test holds and never reads.
    Unread,
    /// A `cat` reads it, and is stopped with SIGSTOP once the engine is up.
    ReaderStopped,
}

/// `veloz serve` whose stdout is read (addresses, shutdown report) and whose stderr is
/// stuck as `how` says.
struct StuckEngine {
    child: Child,
    /// Held so that the pipe stays open (never read).
    _stderr: Option<std::process::ChildStderr>,
    reader: Option<Child>,
    addr: String,
    metrics: String,
}

impl StuckEngine {
    fn start(config: &Path, how: StuckStderr) -> StuckEngine {
        let mut child = Process::new(veloz_bin())
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn veloz");
        let stderr = child.stderr.take().unwrap();
        let (held, reader) = match how {
            StuckStderr::Unread => (Some(stderr), None),
            StuckStderr::ReaderStopped => {
                let cat = Process::new("cat")
                    .stdin(Stdio::from(stderr))
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("spawn cat");
                (None, Some(cat))
            }
        };
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut addr, mut metrics) = (String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while addr.is_empty() || metrics.is_empty() {
            assert!(Instant::now() < deadline, "the engine did not start");
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                if let Some(a) = line.strip_prefix("veloz: listening on ") {
                    addr = a.trim().to_string();
                } else if let Some(a) = line.strip_prefix("veloz: metrics on ") {
                    metrics = a.trim().to_string();
                }
            }
        }
        // Keep draining stdout (the shutdown report) in the background.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        if let Some(cat) = &reader {
            signal(cat.id(), "-STOP");
        }
        StuckEngine {
            child,
            _stderr: held,
            reader,
            addr,
            metrics,
        }
    }

    /// SIGTERM; the exit status within 30 s (stderr still stuck).
    fn stop(mut self) -> i32 {
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the engine did not stop within 30 s of SIGTERM with its stderr stuck"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(mut cat) = self.reader.take() {
            signal(cat.id(), "-CONT");
            let _ = cat.kill();
            let _ = cat.wait();
        }
        code
    }
}

impl Drop for StuckEngine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(cat) = &mut self.reader {
            signal(cat.id(), "-CONT");
            let _ = cat.kill();
            let _ = cat.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Process::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// Floods of wrong-token logons and bad frames at an engine whose stderr is stuck, with
/// every refused logon and bad frame logged (`debug`) and a small queue: orders keep being
/// answered, and the dropped log events are counted.
fn orders_are_answered_while_stderr_is_stuck(how: StuckStderr) {
    let dir = TempDir::new("logs-stuck");
    let config = config_with_log(
        dir.path(),
        "filter = \"info,veloz=debug\"\nqueue_lines = 64\nsummary_interval_ms = 1000",
    );
    let engine = StuckEngine::start(&config, how);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = [false, true]
        .into_iter()
        .map(|garbage| {
            let (addr, done) = (engine.addr.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut n = 0u64;
                let until = Instant::now() + Duration::from_secs(6);
                while !done.load(Ordering::SeqCst) && Instant::now() < until && n < 20_000 {
                    if garbage {
                        bad_frames(&addr);
                    } else {
                        refused_logon(&addr);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();

    let began = Instant::now();
    let mut answered = 0u64;
    let mut slowest = Duration::ZERO;
    while floods.iter().any(|f| !f.is_finished()) {
        let sent = Instant::now();
        alice
            .send(&limit(1, answered + 1, Side::Buy, 1_800_000, 1))
            .unwrap();
        let r = alice.next_report(ANSWER_WITHIN).unwrap_or_else(|e| {
            panic!(
                "order {} not answered within {ANSWER_WITHIN:?} under the floods ({how:?}): {e}",
                answered + 1
            )
        });
        assert_eq!(r.exec_type, ExecType::Accepted);
        slowest = slowest.max(sent.elapsed());
        answered += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::SeqCst);
    let counts: Vec<u64> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let dropped = metric(&engine.metrics, "veloz_log_dropped_total");
    // Shards publish their counters once per metrics interval: the last refusals show up
    // within a few intervals of the flood's end.
    let mut refused = metric_sum(&engine.metrics, "veloz_logons_refused_total");
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused < counts[0] as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        refused = metric_sum(&engine.metrics, "veloz_logons_refused_total");
    }
    eprintln!(
        "{how:?}: {} wrong-token logons and {} bad-frame connections (x11 frames) in {:.1} s; \
         {answered} orders answered meanwhile, slowest {slowest:?}; {dropped} log events dropped",
        counts[0],
        counts[1],
        began.elapsed().as_secs_f64()
    );
    assert!(answered >= 10, "only {answered} orders answered");
    assert!(
        refused >= counts[0] as f64,
        "{refused} refused of {}",
        counts[0]
    );
    assert!(
        dropped > 0.0,
        "no log event dropped: was stderr really stuck? ({how:?})"
    );
    // A last order after the floods, with stderr still stuck.
    alice
        .send(&limit(1, 1_000_000, Side::Buy, 1_800_000, 1))
        .unwrap();
    assert_eq!(
        alice.next_report(ANSWER_WITHIN).unwrap().exec_type,
        ExecType::Accepted
    );
    assert_eq!(engine.stop(), 0, "the engine's exit with its stderr stuck");
}

#[test]
fn an_unread_stderr_never_stalls_the_shards() {
    let _serial = serial();
    orders_are_answered_while_stderr_is_stuck(StuckStderr::Unread);
}

#[test]
fn a_stopped_stderr_reader_never_stalls_the_shards() {
    let _serial = serial();
    orders_are_answered_while_stderr_is_stuck(StuckStderr::ReaderStopped);
}

#[test]
fn json_lines_carry_level_target_and_fields_and_no_token() {
    let _serial = serial();
    let dir = TempDir::new("logs-json");
    let config = test_config(dir.path(), "none", "");
    let mut engine = EngineProcess::try_start_with(&config, &["--log-format", "json"])
        .unwrap_or_else(|(e, l)| panic!("{e}\n{}", l.join("\n")));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    alice.send(&limit(1, 1, Side::Buy, 1_800_000, 1)).unwrap();
    assert_eq!(
        alice.next_report(ANSWER_WITHIN).unwrap().exec_type,
        ExecType::Accepted
    );
    for _ in 0..3 {
        refused_logon(&engine.addr);
    }
    bad_frames(&engine.addr);
    engine.collect();
    let (code, stdout, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));

    let all = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    for token in [WRONG_TOKEN, ALICE.1, BOB.1] {
        assert!(
            !all.contains(token),
            "the token {token:?} reached the output:\n{all}"
        );
    }
    let events: Vec<serde_json::Value> = stderr
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for e in &events {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(e.get(field).is_some(), "no {field} in {e}");
        }
        assert!(
            e["target"].as_str().unwrap().starts_with("veloz::"),
            "target {e}"
        );
    }
    let find = |target: &str, words: &str| {
        events
            .iter()
            .find(|e| e["target"] == target && e["message"].as_str().unwrap().contains(words))
            .unwrap_or_else(|| {
                panic!(
                    "no {target} event with {words:?} in:\n{}",
                    stderr.join("\n")
                )
            })
    };
    let recovered = find("veloz::journal", "recovered");
    assert_eq!(recovered["level"], "INFO");
    assert!(recovered["shard"].is_u64() && recovered["commands"].is_u64());
    let refused = find("veloz::gateway", "logon refused");
    assert_eq!(refused["level"], "WARN");
    assert_eq!(refused["account"], ALICE.0);
    assert!(refused["shard"].is_u64() && refused["peer"].is_string());
    let bad = find("veloz::gateway", "bad frame");
    assert!(bad["session"].is_u64() && bad["error"].is_string(), "{bad}");
    let stopped = find("veloz::sequencer", "stopped at sequence");
    assert!(stopped["sequence"].is_u64() && stopped["state_hash"].is_string());
    find("veloz::engine", "config:");
    find("veloz::control", "listening on");
}

#[test]
fn a_flood_of_refused_logons_makes_a_handful_of_lines() {
    let _serial = serial();
    let dir = TempDir::new("logs-flood");
    let config = config_with_log(
        dir.path(),
        "filter = \"info\"\nqueue_lines = 4096\nsummary_interval_ms = 1000",
    );
    let engine = EngineProcess::start(&config);
    const N: usize = 10_000;
    let began = Instant::now();
    for i in 0..N {
        refused_logon(&engine.addr);
        if i == N / 2 {
            // A pause past the summary interval: the first half is summarised while the
            // engine runs, the second at its shutdown.
            std::thread::sleep(Duration::from_millis(1_500));
        }
    }
    let took = began.elapsed();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let lines: Vec<&str> = stderr
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("logon refused") || l.contains("refused logon"))
        .collect();
    let shown = lines.join("\n");
    // Every refused logon is accounted for: logged in full, or counted in a summary.
    let full = lines
        .iter()
        .filter(|l| l.contains("logon refused for account 1 from 127.0.0.1:"))
        .count();
    let summarised: u64 = lines
        .iter()
        .filter_map(|l| {
            let (_, rest) = l.split_once(": warning: ")?;
            let (count, words) = rest.split_once(' ')?;
            words.starts_with("more refused logon").then_some(())?;
            count.replace(',', "").parse::<u64>().ok()
        })
        .sum();
    eprintln!(
        "{N} wrong-token logons in {:.1} s: {} log lines ({full} in full, {summarised} summarised)\n{shown}",
        took.as_secs_f64(),
        lines.len()
    );
    assert_eq!(full as u64 + summarised, N as u64, "{shown}");
    // One full line per shard and burst, one summary per shard and second.
    let bound = 2 * shards() * (took.as_secs() as usize + 3);
    assert!(
        lines.len() <= bound,
        "{} lines for {N} refused logons (bound {bound}):\n{shown}",
        lines.len()
    );
    assert!(
        !stderr.iter().any(|l| l.contains(WRONG_TOKEN)),
        "the token reached the log"
    );
}

fn shards() -> usize {
    veloz_config::preflight::online_cores().unwrap().len()
}
