//! The WebSocket JSON feed of a real `veloz serve`, driven by an ordinary client library:
//! Python's `websockets` (PyPI, pinned in scripts/dev/ensure-flatc.sh, in the tools venv)
//! runs tests/fixtures/feed_ws_client.py, which knows nothing of Veloz but the documented
//! JSON (docs/market-data.md, "WebSocket feed").
//!
//! - hello, a bad request answered with an error (the connection stays), ping/pong;
//! - subscribe to AAPL's l2 and trades: snapshots, then after a few orders (sent here over
//!   the order-entry protocol) the client's book equals the engine's book by construction
//!   (the orders' resting quantities) and it saw the trade, every number in sequence;
//! - a gap: the client throws away one update on purpose, sees the gap by the next number,
//!   asks for a snapshot and its book equals the engine's again.
//!
//! Python: `$VELOZ_PYTHON`, else `.tools/venv/bin/python` (`make tools`); without it, or
//! without `websockets` in it, the test fails and says so. Engine tests hold
//! `common::serial()`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(10);

/// The WebSocket feed's host:port (the engine prints it with the market-data line, before
/// it listens for orders).
fn ws_addr(engine: &EngineProcess) -> String {
    assert!(
        !engine.ws.is_empty(),
        "the engine printed no WebSocket feed address: {:?}",
        engine.stdout_lines
    );
    engine.ws.clone()
}

/// Send a GTC limit order of AAPL (id 1, price scale 4) and wait for its acceptance
/// (skipping the reports of earlier orders that traded as makers).
fn order(c: &mut Client, coid: u64, side: Side, price: i64, qty: u64) {
    c.send(&limit(1, coid, side, price, qty)).unwrap();
    loop {
        let r = c.next_report(WAIT).unwrap();
        if r.client_order_id == coid {
            assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");
            return;
        }
    }
}

/// The Python client, line by line.
struct Script {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Script {
    fn start(url: &str) -> Script {
        let py = python("the websockets package (make tools)");
        let check = Process::new(&py)
            .args(["-c", "import websockets"])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{} lacks the websockets package: run `make tools` ({})",
            py.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Process::new(py)
            .arg(repo().join("tests/fixtures/feed_ws_client.py"))
            .args([url, "AAPL"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Script { child, lines }
    }

    fn tell(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    fn next(&mut self, what: &str) -> Value {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => serde_json::from_str(&line).unwrap(),
            Err(_) => {
                let status = self.child.try_wait().unwrap();
                panic!("the Python client said nothing about {what} (exit: {status:?}; its stderr is above)")
            }
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_websockets_client_subscribes_follows_updates_and_heals_a_gap() {
    let _serial = serial();
    let dir = TempDir::new("feed-ws");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let url = format!("ws://{}/ws", ws_addr(&engine));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    // A bid before the client comes: it is in the snapshot.
    order(&mut alice, 1, Side::Buy, 1_885_000, 5);

    let mut script = Script::start(&url);
    let ready = script.next("its subscription");
    assert_eq!(ready["event"], "ready", "{ready}");
    assert_eq!(
        ready["book"],
        json!({"bids": [["188.5000", 5, 1]], "asks": []})
    );
    assert_eq!(ready["l2_seq"], 1);
    assert_eq!(ready["trades_seq"], 0);

    // Updates: a bid, an ask, and a sell that trades 2 against the best bid.
    order(&mut alice, 2, Side::Buy, 1_890_000, 3);
    order(&mut bob, 3, Side::Sell, 1_910_000, 4);
    order(&mut bob, 4, Side::Sell, 1_890_000, 2);
    script.tell(json!({
        "expect": {
            "bids": [["189.0000", 1, 1], ["188.5000", 5, 1]],
            "asks": [["191.0000", 4, 1]],
        },
        "trades": 1,
    }));
    let got = script.next("the updates");
    assert_eq!(got["event"], "matched", "{got}");
    assert_eq!(got["gaps"], 0);
    let trade = &got["trades"][0];
    assert_eq!(
        (
            &trade["price"],
            &trade["qty"],
            &trade["aggressor"],
            &trade["seq"]
        ),
        (&json!("189.0000"), &json!(2), &json!("sell"), &json!(1)),
        "{got}"
    );

    // A gap: the client drops the next update; two orders, two updates, so the second
    // one's number shows the gap; a snapshot heals it.
    script.tell(json!({
        "expect": {
            "bids": [["189.0000", 1, 1], ["188.5000", 5, 1], ["188.0000", 7, 1]],
            "asks": [["191.0000", 4, 1], ["192.0000", 6, 1]],
        },
        "trades": 1,
        "drop": true,
    }));
    order(&mut alice, 5, Side::Buy, 1_880_000, 7);
    order(&mut bob, 6, Side::Sell, 1_920_000, 6);
    let got = script.next("the gap");
    assert_eq!(got["event"], "matched", "{got}");
    assert_eq!(got["gaps"], 1, "the client saw the gap it made: {got}");

    // And after the healing snapshot, updates apply again.
    order(&mut alice, 7, Side::Buy, 1_880_000, 1);
    script.tell(json!({
        "expect": {
            "bids": [["189.0000", 1, 1], ["188.5000", 5, 1], ["188.0000", 8, 2]],
            "asks": [["191.0000", 4, 1], ["192.0000", 6, 1]],
        },
        "trades": 1,
    }));
    let got = script.next("updates after the snapshot");
    assert_eq!(got["event"], "matched", "{got}");
    assert_eq!(got["gaps"], 1);

    script.tell(json!({"quit": true}));
    let status = script.child.wait().unwrap();
    assert!(status.success(), "the Python client failed: {status}");
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
