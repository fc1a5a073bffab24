//! The Python client (the veloz_client package in clients/python, run as
//! `python -m veloz_client` from the source tree) resumes its report streams against a real
//! `veloz serve` over loopback TCP: alice rests an order with `--state FILE` and logs out,
//! bob fills it while she is away, and `resume` prints the fill she missed (the next
//! stream_seq on her stream) and one StreamResumed per stream; a second `resume` resends
//! nothing.
//!
//! Python: `$VELOZ_PYTHON`, else `.tools/venv/bin/python` under the crate root (`make tools`
//! creates it, with the `flatbuffers` package at the pinned version); without either the
//! test fails and says so.
//!
//! The test holds `common::serial()` so busy-polling engines never run side by side.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(10);
const PRICE: i64 = 1_900_000;

/// What one run of the Python client did.
struct Run {
    code: Option<i32>,
    /// Every stdout line, parsed (the client prints one JSON object per line).
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|m| m["type"] == kind).collect()
    }

    fn context(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(Value::to_string).collect();
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            lines.join("\n"),
            self.stderr
        )
    }
}

/// `python -m veloz_client --connect ADDR --account A --token T --state STATE ARGS...`
fn client(addr: &str, account: (u32, &str), state: &Path, args: &[&str]) -> Run {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/python/src");
    let py = python("flatbuffers");
    let out = Command::new(&py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", &src)
        .args(["-m", "veloz_client"])
        .args(["--connect", addr, "--account", &account.0.to_string()])
        .args(["--token", account.1, "--state"])
        .arg(state)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let lines = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nstderr:\n{stderr}"))
        })
        .collect();
    Run {
        code: out.status.code(),
        lines,
        stderr,
    }
}

fn read_state(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("state file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("state file is not JSON ({e}): {text}"))
}

#[test]
fn python_client_resumes_the_reports_it_missed() {
    let _serial = serial();
    let dir = TempDir::new("python-resume");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let state = dir.path().join("alice-state.json");

    // Alice rests a sell (no state file yet: no resend asked for) and logs out.
    let placed = client(
        &engine.addr,
        ALICE,
        &state,
        &[
            "order", "--symbol", "1", "--side", "sell", "--price", "190.00", "--qty", "10",
            "--coid", "7",
        ],
    );
    assert_eq!(placed.code, Some(0), "{}", placed.context());
    let ack = placed.of_type("LogonAck");
    assert_eq!(ack.len(), 1, "{}", placed.context());
    let streams = ack[0]["streams"].as_u64().expect("LogonAck.streams") as usize;
    assert!(streams >= 1, "{}", placed.context());
    assert!(
        placed.of_type("StreamResumed").is_empty(),
        "{}",
        placed.context()
    );
    let reports = placed.of_type("ExecutionReport");
    assert_eq!(
        reports.len(),
        1,
        "a resting order: Accepted only\n{}",
        placed.context()
    );
    let accepted = reports[0];
    assert_eq!(accepted["exec_type"], "Accepted", "{}", placed.context());
    assert_eq!(accepted["client_order_id"], 7);
    assert_eq!(accepted["leaves_qty"], 10);
    let order_id = accepted["order_id"].as_u64().expect("order_id");
    let stream = accepted["stream"].as_u64().expect("stream") as usize;
    let seq = accepted["stream_seq"].as_u64().expect("stream_seq");
    assert!(stream < streams, "{}", placed.context());
    assert_eq!(seq, 1, "a fresh engine's first report of the account");
    assert_eq!(placed.of_type("Logout").len(), 1, "{}", placed.context());
    assert!(!placed.stderr.contains("warning"), "{}", placed.context());
    let mut last = vec![0u64; streams];
    last[stream] = seq;
    assert_eq!(read_state(&state), json!({"account": 1, "last": last}));

    // Bob fills it while alice is not connected (Rust test client).
    let (mut bob, _) = Client::logon(engine.addr.as_str(), BOB.0, BOB.1).expect("bob logs on");
    bob.send(&limit(1, 9, Side::Buy, PRICE, 10)).unwrap();
    let r = bob.next_report(WAIT).unwrap();
    assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");
    let r = bob.next_report(WAIT).unwrap();
    assert_eq!(r.exec_type, ExecType::Filled, "{r:?}");
    assert_eq!((r.last_qty, r.last_price), (10, PRICE));
    bob.logout().unwrap();
    drop(bob);

    // Alice resumes: the fill she missed, then one StreamResumed per stream, all complete.
    let resumed = client(&engine.addr, ALICE, &state, &["resume"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.context());
    assert_eq!(
        resumed.lines[0]["type"],
        "LogonAck",
        "{}",
        resumed.context()
    );
    assert_eq!(
        resumed.lines.last().unwrap()["type"],
        "Logout",
        "{}",
        resumed.context()
    );
    let reports = resumed.of_type("ExecutionReport");
    assert_eq!(reports.len(), 1, "{}", resumed.context());
    let fill = reports[0];
    assert_eq!(fill["exec_type"], "Filled", "{}", resumed.context());
    assert_eq!(fill["order_id"], order_id);
    assert_eq!(fill["client_order_id"], 7);
    assert_eq!(fill["last_qty"], 10);
    // Prices are exact decimal strings in quote units: 1_900_000 at price_scale 4.
    assert_eq!(fill["last_price"], "190.00");
    assert_eq!(fill["leaves_qty"], 0);
    assert_eq!(fill["stream"], stream);
    assert_eq!(fill["stream_seq"], seq + 1, "{}", resumed.context());
    let done = resumed.of_type("StreamResumed");
    assert_eq!(done.len(), streams, "{}", resumed.context());
    for s in 0..streams {
        let r: Vec<&&Value> = done.iter().filter(|m| m["stream"] == s).collect();
        assert_eq!(r.len(), 1, "stream {s}\n{}", resumed.context());
        let r = r[0];
        assert!(r.get("missing").is_none(), "{}", resumed.context());
        if s == stream {
            assert_eq!(r["after"], seq, "{}", resumed.context());
            assert_eq!(r["last"], seq + 1, "{}", resumed.context());
            assert_eq!(r["resent"], 1, "{}", resumed.context());
        } else {
            assert_eq!(r["after"], 0, "{}", resumed.context());
            assert_eq!(r["last"], 0, "{}", resumed.context());
            assert_eq!(r["resent"], 0, "{}", resumed.context());
        }
    }
    // The resent fill comes before its stream's StreamResumed.
    let at = |pred: &dyn Fn(&Value) -> bool| resumed.lines.iter().position(pred).unwrap();
    assert!(
        at(&|m| m["type"] == "ExecutionReport")
            < at(&|m| m["type"] == "StreamResumed" && m["stream"] == stream),
        "{}",
        resumed.context()
    );
    assert!(!resumed.stderr.contains("warning"), "{}", resumed.context());
    last[stream] = seq + 1;
    assert_eq!(read_state(&state), json!({"account": 1, "last": last}));

    // Again: nothing left to resend.
    let again = client(&engine.addr, ALICE, &state, &["resume"]);
    assert_eq!(again.code, Some(0), "{}", again.context());
    assert!(
        again.of_type("ExecutionReport").is_empty(),
        "{}",
        again.context()
    );
    let done = again.of_type("StreamResumed");
    assert_eq!(done.len(), streams, "{}", again.context());
    for r in done {
        let s = r["stream"].as_u64().expect("stream") as usize;
        assert_eq!(r["resent"], 0, "{}", again.context());
        assert_eq!(r["after"], last[s], "{}", again.context());
        assert_eq!(r["last"], last[s], "{}", again.context());
        assert!(r.get("missing").is_none(), "{}", again.context());
    }
    assert!(!again.stderr.contains("warning"), "{}", again.context());
    assert_eq!(read_state(&state), json!({"account": 1, "last": last}));

    // Another account's state file is refused before connecting, and left as it was.
    let wrong = client(&engine.addr, BOB, &state, &["resume"]);
    assert_eq!(wrong.code, Some(2), "{}", wrong.context());
    assert!(wrong.lines.is_empty(), "{}", wrong.context());
    assert!(
        wrong.stderr.contains("for account 1, not account 2"),
        "{}",
        wrong.context()
    );
    assert_eq!(read_state(&state), json!({"account": 1, "last": last}));

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}
