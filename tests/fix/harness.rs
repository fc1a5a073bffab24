//! The QuickFIX initiator `tests/fix/initiator.py` as the test sees it: start it, send it
//! commands, wait for its events, check fields (used by `tests/fix_quickfix.rs`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::common::*;
use serde_json::{json, Value};
use veloz_core::Instrument;
use veloz_load::client::Client;

pub const WAIT: Duration = Duration::from_secs(10);
pub const SENDER: &str = "ALICE";
pub const ENGINE_COMP_ID: &str = "VELOZ";

/// One JSON event of the initiator: `{"event": ..., "type": ..., "fields": {...}}`.
#[derive(Clone, Debug)]
pub struct Event(pub Value);

impl Event {
    pub fn name(&self) -> &str {
        self.0["event"].as_str().unwrap_or("")
    }

    pub fn msg_type(&self) -> &str {
        self.0["type"].as_str().unwrap_or("")
    }

    /// Tag `tag`'s value ("" when absent).
    pub fn f(&self, tag: u32) -> &str {
        self.0["fields"][tag.to_string()].as_str().unwrap_or("")
    }

    pub fn has(&self, tag: u32) -> bool {
        !self.0["fields"][tag.to_string()].is_null()
    }

    pub fn is(&self, event: &str, msg_type: &str) -> bool {
        self.name() == event && self.msg_type() == msg_type
    }

    /// An application message from the engine of type `t`.
    pub fn app_in(&self, t: &str) -> bool {
        self.is("app_in", t)
    }

    pub fn seq(&self) -> u64 {
        self.f(34).parse().unwrap_or(0)
    }

    pub fn poss_dup(&self) -> bool {
        self.f(43) == "Y"
    }
}

/// `tests/fix/initiator.py` as a child process: commands in, events out.
pub struct Initiator {
    pub child: Child,
    pub stdin: ChildStdin,
    pub events: mpsc::Receiver<Event>,
    /// Events not yet taken by a `wait`, in arrival order.
    pub pending: VecDeque<Event>,
    /// Every event so far, for assertion messages.
    pub all: Vec<Event>,
    /// Fields that differed from what the test wanted (see [`expect_fields`]).
    pub mismatches: Vec<String>,
    pub work: PathBuf,
}

impl Initiator {
    pub fn start(work: PathBuf) -> Initiator {
        let python = python("quickfix");
        let probe = Command::new(&python)
            .args(["-c", "import quickfix"])
            .output()
            .expect("run the tools venv's python");
        assert!(
            probe.status.success(),
            "QuickFIX's Python binding is not installed in .tools/venv: run `make tools` \
             (scripts/dev/ensure-quickfix.sh builds quickfix 1.16.0 once, about 7 minutes)\n{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let dictionary = std::env::var_os("VELOZ_FIX_DICTIONARY")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("schemas/fix44-veloz.xml"));
        assert!(
            dictionary.exists(),
            "{} is missing: the FIX 4.4 subset dictionary the QuickFIX initiator validates \
             the engine's messages with",
            dictionary.display()
        );
        let (account, token) = ALICE;
        let mut child = Command::new(python)
            .arg(repo().join("tests/fix/initiator.py"))
            .arg(&work)
            .arg(&dictionary)
            .args([SENDER, ENGINE_COMP_ID, &account.to_string(), token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tests/fix/initiator.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "unparsed", "text": line}));
                if tx.send(Event(value)).is_err() {
                    break;
                }
            }
        });
        let mut ini = Initiator {
            child,
            stdin,
            events,
            pending: VecDeque::new(),
            all: Vec::new(),
            mismatches: Vec::new(),
            work,
        };
        ini.wait("the initiator's ready line", |e| e.name() == "ready");
        ini
    }

    pub fn cmd(&mut self, cmd: Value) {
        writeln!(self.stdin, "{cmd}").expect("write to the initiator");
        self.stdin.flush().unwrap();
    }

    /// Take the first pending or arriving event that satisfies `pred`; panic after `WAIT`.
    pub fn wait(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.try_wait(pred, WAIT)
            .unwrap_or_else(|| panic!("no {what} within {WAIT:?}\n{}", self.context()))
    }

    pub fn try_wait(&mut self, pred: impl Fn(&Event) -> bool, limit: Duration) -> Option<Event> {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.events.recv_timeout(left).ok()?;
            self.all.push(e.clone());
            assert!(
                e.name() != "error" && e.name() != "unparsed",
                "the initiator reported: {}\n{}",
                e.0,
                self.context()
            );
            if pred(&e) {
                return Some(e);
            }
            self.pending.push_back(e);
        }
    }

    /// Everything that arrives within `d`, left pending.
    pub fn settle(&mut self, d: Duration) {
        let _ = self.try_wait(|_| false, d);
    }

    /// Send an application message; `fields` in order, "$now" is the current time.
    pub fn send(&mut self, msg_type: &str, fields: &[(u32, &str)]) {
        let fields: Vec<Value> = fields.iter().map(|(t, v)| json!([t, v])).collect();
        self.cmd(json!({"cmd": "send", "type": msg_type, "fields": fields}));
        let sent = self.wait("the initiator's 'sent'", |e| e.name() == "sent");
        assert_eq!(
            sent.0["ok"],
            json!(true),
            "QuickFIX did not send the {msg_type}\n{}",
            self.context()
        );
    }

    /// The next ExecutionReport (or other app message of type `t`) for which `pred` holds.
    pub fn app(&mut self, t: &str, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.wait(what, |e| e.app_in(t) && pred(e))
    }

    /// Log on: a new SocketInitiator on the same store. Fails at once when QuickFIX logs
    /// out instead (e.g. the engine's Logon carries a MsgSeqNum lower than expected).
    pub fn connect(&mut self, addr: &str, next_target: Option<u64>) {
        // Session messages of earlier connections are in `all`; only new ones count here.
        self.pending.retain(|e| e.name() == "app_in");
        self.cmd(json!({"cmd": "connect", "addr": addr, "next_target": next_target}));
        self.wait("the initiator's 'started'", |e| e.name() == "started");
        let got = self.wait("logon (or QuickFIX's Logout)", |e| {
            e.name() == "logon" || e.is("admin_out", "5")
        });
        if got.name() != "logon" {
            panic!(
                "QuickFIX refused the engine's Logon and logged out: 58={:?}\n{}",
                got.f(58),
                self.context()
            );
        }
    }

    pub fn disconnect(&mut self) {
        self.cmd(json!({"cmd": "disconnect"}));
        self.wait("logout", |e| e.name() == "logout");
        self.wait("the initiator's 'stopped'", |e| e.name() == "stopped");
    }

    /// Application messages from the engine not taken by a `wait` yet.
    pub fn untaken_app(&self) -> Vec<&Event> {
        self.pending
            .iter()
            .filter(|e| e.name() == "app_in")
            .collect()
    }

    /// Every event, and the tail of QuickFIX's own event log (why it rejected something).
    pub fn context(&self) -> String {
        let mut s = String::new();
        if !self.mismatches.is_empty() {
            s.push_str("--- wrong fields so far:\n");
            for m in &self.mismatches {
                s.push_str(m);
                s.push('\n');
            }
        }
        s.push_str("--- initiator events:\n");
        for e in &self.all {
            s.push_str(&e.0.to_string());
            s.push('\n');
        }
        if let Ok(dir) = std::fs::read_dir(self.work.join("log")) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with("event.current.log") || name.ends_with("messages.current.log") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    s.push_str(&format!("--- QuickFIX {name} (last 40 lines):\n"));
                    for l in &lines[lines.len().saturating_sub(40)..] {
                        s.push_str(l);
                        s.push('\n');
                    }
                }
            }
        }
        s
    }
}

impl Drop for Initiator {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `units` (counts of 10^-price_scale) as a FIX decimal with `price_scale` decimals.
pub fn px(inst: &Instrument, units: i64) -> String {
    let scale = 10i64.pow(inst.price_scale as u32);
    let frac = units.rem_euclid(scale);
    format!(
        "{}.{frac:0width$}",
        units.div_euclid(scale),
        width = inst.price_scale as usize
    )
}

/// A FIX decimal without trailing zeros ("190.0100" and "190.01" compare equal).
pub fn dec(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

pub fn instrument(symbol: &str) -> Instrument {
    veloz_config::Config::default()
        .instruments()
        .into_iter()
        .find(|i| i.symbol == symbol)
        .unwrap_or_else(|| panic!("{symbol} is not in the default config"))
}

/// Check that tags of `e` equal the given values (prices compared as decimals). A mismatch
/// is recorded and the scenario goes on, so that one run shows every wrong field; the test
/// fails at its end (or at the first missing message) listing them.
#[track_caller]
pub fn expect_fields(ini: &mut Initiator, e: &Event, want: &[(u32, &str)]) {
    let at = std::panic::Location::caller();
    for (tag, value) in want {
        let got = e.f(*tag);
        if dec(got) != dec(value) {
            ini.mismatches.push(format!(
                "line {}: {tag}={got:?}, want {value:?}, in {}",
                at.line(),
                e.0
            ));
        }
    }
}

pub fn bob_report(bob: &mut Client) -> veloz_wire::ExecutionReport<'static> {
    bob.next_report(WAIT).expect("bob's report")
}
