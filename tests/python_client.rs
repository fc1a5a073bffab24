//! The Python client package (clients/python, `veloz_client`) against a real `veloz serve`
//! over loopback TCP:
//!
//! - its command line (`python -m veloz_client`, run from the source tree): a crossing order
//!   that partially fills exits 0; replace, cancel by client order id, market order, mass
//!   cancel, order status and open orders do what they say; a price off the tick is refused
//!   before anything is sent; a bad token, a reject or an unreachable engine exit non-zero
//!   naming the reason, and the token is never printed; `--help` is complete;
//! - its session API from a Python script: the same requests, prices as exact `Decimal`s, a
//!   Trade frame (encoded here by the Rust library) decoded with the instrument's price, and
//!   heartbeats sent by the session while the script sleeps past the engine's idle timeout;
//! - `pip install` of the package into a fresh venv, offline, from the wheels `make tools`
//!   keeps in .tools/wheels (flatbuffers, and setuptools for the build);
//! - the package's own unit tests (clients/python/tests: prices, frames, stream positions).
//!
//! Python: `$VELOZ_PYTHON`, else `.tools/venv/bin/python` under the crate root (`make tools`
//! creates it, with the `flatbuffers` package at the pinned version); without either the
//! test fails and says so. Engine tests hold `common::serial()`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use veloz_core::Side;
use veloz_wire::{FrameEncoder, TradePrint};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The package's source, put on PYTHONPATH.
fn src() -> PathBuf {
    root().join("clients/python/src")
}

/// What one run of the command line did.
struct Run {
    code: Option<i32>,
    /// Every stdout line, parsed (one JSON object per message received).
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|m| m["type"] == kind).collect()
    }

    fn reports(&self, exec_type: &str) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|m| m["type"] == "ExecutionReport" && m["exec_type"] == exec_type)
            .collect()
    }

    fn context(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run_python(args: &[&str], token: Option<&str>) -> Run {
    let py = python("flatbuffers");
    let mut cmd = Command::new(&py);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", src())
        .env_remove("VELOZ_TOKEN")
        .args(["-m", "veloz_client"])
        .args(args);
    if let Some(token) = token {
        cmd.env("VELOZ_TOKEN", token);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let lines = if args.contains(&"--help") {
        Vec::new()
    } else {
        stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nstderr:\n{stderr}"))
            })
            .collect()
    };
    Run {
        code: out.status.code(),
        lines,
        stdout,
        stderr,
    }
}

/// `python -m veloz_client --connect ADDR --account A ARGS...`, the token in VELOZ_TOKEN.
fn cli(addr: &str, account: (u32, &str), args: &[&str]) -> Run {
    let id = account.0.to_string();
    let mut all = vec!["--connect", addr, "--account", &id];
    all.extend_from_slice(args);
    run_python(&all, Some(account.1))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn command_line_orders_queries_and_errors() {
    let _serial = serial();
    let dir = TempDir::new("python-client-cli");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let addr = engine.addr.as_str();

    // Alice rests a sell: 10 AAPL at 190.00 (price_scale 4, tick 0.01).
    let rest = cli(
        addr,
        ALICE,
        &[
            "order", "--symbol", "AAPL", "--side", "sell", "--price", "190.00", "--qty", "10",
            "--coid", "7",
        ],
    );
    assert_eq!(rest.code, Some(0), "{}", rest.context());
    let ack = rest.of_type("LogonAck");
    assert_eq!(ack.len(), 1, "{}", rest.context());
    let streams = u64_of(&ack[0]["streams"]);
    let aapl = &ack[0]["instruments"][0];
    assert_eq!(
        (&aapl["symbol"], &aapl["price_scale"], &aapl["tick"]),
        (&Value::from("AAPL"), &Value::from(4), &Value::from("0.01")),
        "{}",
        rest.context()
    );
    let accepted = rest.reports("Accepted");
    assert_eq!(accepted.len(), 1, "{}", rest.context());
    assert_eq!(accepted[0]["price"], "190.00");
    assert_eq!(accepted[0]["client_order_id"], 7);
    assert_eq!(rest.of_type("Logout").len(), 1, "{}", rest.context());

    // Bob crosses it with 15: 10 trade, his order partially fills and rests; exit 0.
    let cross = cli(
        addr,
        BOB,
        &[
            "order", "--symbol", "1", "--side", "buy", "--price", "190.00", "--qty", "15",
        ],
    );
    assert_eq!(
        cross.code,
        Some(0),
        "a partial fill is a success\n{}",
        cross.context()
    );
    let partial = cross.reports("PartiallyFilled");
    assert_eq!(partial.len(), 1, "{}", cross.context());
    assert_eq!(partial[0]["last_qty"], 10);
    assert_eq!(partial[0]["last_price"], "190.00");
    assert_eq!(partial[0]["leaves_qty"], 5);
    assert_eq!(partial[0]["liquidity"], "Taker");
    let bob_order = u64_of(&partial[0]["order_id"]);
    assert!(
        cross.stderr.contains("filled 10, 5 resting"),
        "{}",
        cross.context()
    );

    // Alice's order is filled: its status cannot be shown (exit 1, naming why).
    let gone = cli(
        addr,
        ALICE,
        &["status", "--symbol", "AAPL", "--orig-coid", "7"],
    );
    assert_eq!(gone.code, Some(1), "{}", gone.context());
    assert_eq!(
        gone.of_type("OrderStatus")[0]["reject_reason"],
        "UnknownOrder"
    );
    assert!(gone.stderr.contains("UnknownOrder"), "{}", gone.context());
    // Her maker fill came while she was away; a second session sees only new reports.
    assert!(gone.reports("Filled").is_empty(), "{}", gone.context());

    // Bob's rest, by engine id: 5 at 190.00.
    let bob_id = bob_order.to_string();
    let status = cli(
        addr,
        BOB,
        &["status", "--symbol", "AAPL", "--order-id", &bob_id],
    );
    assert_eq!(status.code, Some(0), "{}", status.context());
    let st = status.of_type("OrderStatus");
    assert_eq!(st.len(), 1, "{}", status.context());
    assert_eq!(
        (&st[0]["leaves_qty"], &st[0]["price"], &st[0]["side"]),
        (&Value::from(5), &Value::from("190.00"), &Value::from("Buy")),
        "{}",
        status.context()
    );

    // Replace it: 3 at 189.50.
    let replaced = cli(
        addr,
        BOB,
        &[
            "replace",
            "--symbol",
            "AAPL",
            "--order-id",
            &bob_id,
            "--price",
            "189.50",
            "--qty",
            "3",
        ],
    );
    assert_eq!(replaced.code, Some(0), "{}", replaced.context());
    let r = replaced.reports("Replaced");
    assert_eq!(r.len(), 1, "{}", replaced.context());
    assert_eq!(
        (&r[0]["price"], &r[0]["leaves_qty"], &r[0]["order_id"]),
        (
            &Value::from("189.50"),
            &Value::from(3),
            &Value::from(bob_order)
        ),
        "{}",
        replaced.context()
    );

    // A second order, cancelled by the client order id it was entered with.
    let second = cli(
        addr,
        BOB,
        &[
            "order", "--symbol", "AAPL", "--side", "buy", "--price", "189.00", "--qty", "2",
            "--coid", "42",
        ],
    );
    assert_eq!(second.code, Some(0), "{}", second.context());
    let second_id = &second.reports("Accepted")[0]["order_id"];
    let cancel = cli(
        addr,
        BOB,
        &["cancel", "--symbol", "AAPL", "--orig-coid", "42"],
    );
    assert_eq!(cancel.code, Some(0), "{}", cancel.context());
    let c = cancel.reports("Cancelled");
    assert_eq!(c.len(), 1, "{}", cancel.context());
    assert_eq!(
        (&c[0]["order_id"], &c[0]["qty"]),
        (second_id, &Value::from(2))
    );
    // Again: nothing rests under that id any more; a reject exits 1 naming its reason.
    let again = cli(
        addr,
        BOB,
        &["cancel", "--symbol", "AAPL", "--orig-coid", "42"],
    );
    assert_eq!(again.code, Some(1), "{}", again.context());
    assert_eq!(
        again.reports("Rejected")[0]["reject_reason"],
        "UnknownOrder"
    );
    assert!(
        again.stderr.contains("rejected: UnknownOrder"),
        "{}",
        again.context()
    );

    // Open orders: only the replaced one.
    let open = cli(addr, BOB, &["open-orders"]);
    assert_eq!(open.code, Some(0), "{}", open.context());
    let orders = open.of_type("OrderStatus");
    assert_eq!(orders.len(), 1, "{}", open.context());
    assert_eq!(
        (
            &orders[0]["order_id"],
            &orders[0]["price"],
            &orders[0]["leaves_qty"]
        ),
        (
            &Value::from(bob_order),
            &Value::from("189.50"),
            &Value::from(3)
        ),
        "{}",
        open.context()
    );
    let ends = open.of_type("OpenOrdersEnd");
    assert_eq!(ends.last().unwrap()["next_after_order_id"], 0);

    // A market sell by alice takes 1 of bob's bid at its price.
    let market = cli(
        addr,
        ALICE,
        &[
            "order", "--symbol", "AAPL", "--side", "sell", "--type", "market", "--qty", "1",
        ],
    );
    assert_eq!(market.code, Some(0), "{}", market.context());
    let fill = market.reports("Filled");
    assert_eq!(fill.len(), 1, "{}", market.context());
    assert_eq!(
        (&fill[0]["last_price"], &fill[0]["last_qty"]),
        (&Value::from("189.50"), &Value::from(1)),
        "{}",
        market.context()
    );
    assert_eq!(market.reports("Accepted")[0]["price"], "0.00");

    // Mass cancel over every symbol: bob's AAPL rest (2) and an MSFT order.
    let msft = cli(
        addr,
        BOB,
        &[
            "order", "--symbol", "MSFT", "--side", "buy", "--price", "419.00", "--qty", "1",
        ],
    );
    assert_eq!(msft.code, Some(0), "{}", msft.context());
    let mass = cli(addr, BOB, &["mass-cancel"]);
    assert_eq!(mass.code, Some(0), "{}", mass.context());
    let cancelled = mass.reports("Cancelled");
    assert_eq!(cancelled.len(), 2, "{}", mass.context());
    assert!(cancelled.iter().all(|r| r["cancel_reason"] == "MassCancel"));
    let done = mass.reports("MassCancelled");
    assert_eq!(done.len() as u64, streams, "{}", mass.context());
    let count: u64 = done.iter().map(|r| u64_of(&r["mass_cancel_count"])).sum();
    assert_eq!(count, 2, "{}", mass.context());
    assert!(
        mass.stderr.contains("2 orders cancelled"),
        "{}",
        mass.context()
    );

    // A price off the tick is refused before anything is sent (exit 2).
    let off = cli(
        addr,
        ALICE,
        &[
            "order", "--symbol", "AAPL", "--side", "buy", "--price", "190.005", "--qty", "1",
        ],
    );
    assert_eq!(off.code, Some(2), "{}", off.context());
    assert!(
        off.stderr.contains("price 190.005 is off tick for AAPL")
            && off.stderr.contains("tick 0.01"),
        "{}",
        off.context()
    );
    assert!(
        off.of_type("ExecutionReport").is_empty(),
        "{}",
        off.context()
    );

    // Balances: this engine runs without money, so the report lists none.
    let balances = cli(addr, ALICE, &["balances", "--by-shard"]);
    assert_eq!(balances.code, Some(0), "{}", balances.context());
    let report = balances.of_type("BalanceReport");
    assert_eq!(report.len(), 1, "{}", balances.context());
    assert_eq!(report[0]["balances"], Value::Array(vec![]));
    assert!(
        balances.stderr.contains("without money"),
        "{}",
        balances.context()
    );

    // A bad token: exit 1 naming the refusal; the token appears nowhere.
    let token = "not-the-token-31337";
    let refused = cli(addr, (1, token), &["open-orders"]);
    assert_eq!(refused.code, Some(1), "{}", refused.context());
    assert_eq!(refused.lines.len(), 1, "{}", refused.context());
    assert_eq!(refused.lines[0]["reason"], "AuthenticationFailed");
    assert!(
        refused.stderr.contains("refused: AuthenticationFailed"),
        "{}",
        refused.context()
    );
    assert!(
        !refused.stdout.contains(token) && !refused.stderr.contains(token),
        "{}",
        refused.context()
    );
    // The same with --token on the command line.
    let refused = run_python(
        &[
            "--connect",
            addr,
            "--account",
            "1",
            "--token",
            token,
            "open-orders",
        ],
        None,
    );
    assert_eq!(refused.code, Some(1), "{}", refused.context());
    assert!(
        !refused.stdout.contains(token) && !refused.stderr.contains(token),
        "{}",
        refused.context()
    );

    // No engine at the address: exit 1 naming the connection error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let unreachable = cli(&closed, ALICE, &["open-orders"]);
    assert_eq!(unreachable.code, Some(1), "{}", unreachable.context());
    assert!(
        unreachable
            .stderr
            .contains(&format!("cannot connect to {closed}")),
        "{}",
        unreachable.context()
    );

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}

#[test]
fn command_line_help_is_complete() {
    let top = run_python(&["--help"], None);
    assert_eq!(top.code, Some(0), "{}", top.context());
    for needle in [
        "order",
        "cancel",
        "replace",
        "mass-cancel",
        "status",
        "open-orders",
        "balances",
        "resume",
        "Exit status:",
        "VELOZ_TOKEN",
        "price_scale",
    ] {
        assert!(top.stdout.contains(needle), "{needle}: {}", top.context());
    }
    assert!(
        top.stdout
            .trim_end()
            .ends_with("docs/protocol.md in the Veloz repository."),
        "{}",
        top.context()
    );
    for cmd in [
        "order",
        "cancel",
        "replace",
        "mass-cancel",
        "status",
        "open-orders",
        "balances",
        "session",
        "resume",
        "watch",
    ] {
        let help = run_python(&["--account", "1", cmd, "--help"], None);
        assert_eq!(help.code, Some(0), "{cmd}: {}", help.context());
        assert!(help.stdout.contains("usage:"), "{cmd}: {}", help.context());
    }
    let order = run_python(&["--account", "1", "order", "--help"], None);
    for needle in ["--type", "--tif", "--post-only", "--stp", "market"] {
        assert!(
            order.stdout.contains(needle),
            "{needle}: {}",
            order.context()
        );
    }
}

const SCRIPT: &str = r#"
import json, sys, time
from decimal import Decimal
from veloz_client import (ExecType, ExecutionReport, LogoutReason, PriceError, RejectReason,
                          RequestRejected, Session, Side, Trade)
from veloz_client import codec

host, port = sys.argv[1].rsplit(":", 1)
trade_frame = bytes.fromhex(sys.argv[2])
idle_s = float(sys.argv[3])

alice = Session.connect(host, int(port), 1, "demo-alice")
bob = Session.connect(host, int(port), 2, "demo-bob", cancel_on_disconnect=False)
aapl = alice.instrument("AAPL")
assert (aapl.id, aapl.price_scale, aapl.tick) == (1, 4, Decimal("0.01")), aapl

rest = alice.new_order("AAPL", "sell", 10, Decimal("190.01"))
assert rest.resting and rest.leaves_qty == 10, rest
assert rest.reports[0].exec_type == ExecType.Accepted and rest.reports[0].price == Decimal("190.01")

taker = bob.new_order(1, Side.Buy, 4, "190.01", tif="ioc")
assert not taker.resting and taker.filled_qty == 4, taker
fill = taker.fills[0]
assert isinstance(fill.last_price, Decimal) and fill.last_price == Decimal("190.01"), fill

maker = alice.wait_for(lambda m: isinstance(m, ExecutionReport) and m.order_id == rest.order_id
                       and m.exec_type == ExecType.PartiallyFilled, "alice's maker fill")
assert maker.last_price == Decimal("190.01") and maker.leaves_qty == 6, maker
assert maker.trade_id == fill.trade_id

# The engine does not publish Trade prints on order-entry sessions yet: a frame encoded by
# the Rust library for this very trade, decoded with the instruments of the LogonAck.
trade = codec.decode(trade_frame, alice.instruments)
assert isinstance(trade, Trade), trade
assert trade.price == fill.last_price == Decimal("190.01") and str(trade.price) == "190.01", trade
assert (trade.symbol, trade.qty, trade.aggressor_side) == ("AAPL", 4, Side.Buy), trade

try:
    alice.new_order("AAPL", "buy", 1, Decimal("190.015"))
    raise AssertionError("an off-tick price was sent")
except PriceError as e:
    assert "190.015" in str(e) and "0.01" in str(e), e

# Idle past the engine's idle timeout: the session's heartbeats keep it logged on.
time.sleep(idle_s)

rep = alice.replace("AAPL", price=Decimal("190.02"), qty=5,
                    orig_client_order_id=rest.client_order_id)
assert rep.reports[0].exec_type == ExecType.Replaced and rep.leaves_qty == 5, rep
st = alice.order_status("AAPL", orig_client_order_id=rest.client_order_id)
assert st.reject_reason is None and st.price == Decimal("190.02") and st.leaves_qty == 5, st
assert [o.order_id for o in alice.open_orders()] == [rest.order_id]

market = bob.new_order("AAPL", "buy", 2)
assert [f.last_price for f in market.fills] == [Decimal("190.02")], market

cancelled = alice.cancel("AAPL", orig_client_order_id=rest.client_order_id)
assert cancelled.exec_type == ExecType.Cancelled and cancelled.qty == 3, cancelled
try:
    alice.cancel("AAPL", rest.order_id)
    raise AssertionError("a second cancel was not rejected")
except RequestRejected as e:
    assert e.reason == RejectReason.UnknownOrder and "UnknownOrder" in str(e), e

alice.new_order("MSFT", "sell", 1, "421.00")
mass = alice.mass_cancel()
assert mass.count == 1 and len(mass.done) == alice.streams, mass
assert alice.open_orders() == []

bye = alice.logout()
assert bye is not None and bye.reason == LogoutReason.Requested, bye
bob.logout()
print(json.dumps({"order_id": rest.order_id, "trade_id": fill.trade_id,
                  "trade_price": str(trade.price), "streams": alice.streams}))
"#;

#[test]
fn session_api_from_a_script() {
    let _serial = serial();
    let dir = TempDir::new("python-client-api");
    let config = test_config(dir.path(), "none", "");
    // Short heartbeat and idle timeout: the script sleeps past it.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("heartbeat_ms = 1000", "heartbeat_ms = 200")
        .replace("idle_timeout_ms = 30000", "idle_timeout_ms = 1000");
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start(&config);

    // The trade the script makes: 4 AAPL at 190.01 (1_900_100 at price_scale 4), bought
    // by the taker.
    let mut enc = FrameEncoder::new();
    let frame: String = enc
        .trade(&TradePrint {
            symbol: 1,
            trade_id: 1,
            price: 1_900_100,
            qty: 4,
            aggressor: Side::Buy,
            timestamp_ns: 1_700_000_000_000_000_000,
        })
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let py = python("flatbuffers");
    let out = Command::new(&py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", src())
        .args(["-c", SCRIPT, &engine.addr, &frame, "2.5"])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "script failed ({}):\n{stdout}{stderr}\nengine:\n{}",
        out.status,
        engine.stderr_lines.join("\n")
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("the script's JSON line");
    assert_eq!(result["trade_price"], "190.01");
    assert_eq!(
        result["streams"],
        result["streams"].as_u64().filter(|s| *s >= 1).unwrap()
    );
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}

/// The package's own unit tests (prices, frames, stream positions; no engine needed).
#[test]
fn package_unit_tests_pass() {
    let py = python("flatbuffers");
    let out = Command::new(&py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", src())
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root().join("clients/python/tests"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "unit tests failed:\n{stderr}");
    assert!(stderr.contains("\nOK"), "{stderr}");
}

/// Copy the package's source, without build outputs, so the install leaves the tree as it was.
fn copy_source(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "build" || name == "__pycache__" || name.ends_with(".egg-info") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_source(&path, &to.join(&*name));
        } else {
            std::fs::copy(&path, to.join(&*name)).unwrap();
        }
    }
}

#[test]
fn pip_installs_the_package_into_a_fresh_venv_offline() {
    let wheels = root().join(".tools/wheels");
    assert!(
        wheels
            .join("flatbuffers-25.12.19-py2.py3-none-any.whl")
            .exists()
            && wheels.join("setuptools-84.2.1-py3-none-any.whl").exists(),
        "the wheels for an offline install are missing from {}: run `make tools`",
        wheels.display()
    );
    let dir = TempDir::new("python-client-pip");
    let source = dir.path().join("python");
    copy_source(&root().join("clients/python"), &source);
    let venv = dir.path().join("venv");
    let run = |cmd: &mut Command, what: &str| -> String {
        let out = cmd
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PIP_FIND_LINKS")
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    run(
        Command::new(python("venv"))
            .arg("-m")
            .arg("venv")
            .arg(&venv),
        "python -m venv",
    );
    let vpy = venv.join("bin/python");
    // With build isolation: pip takes setuptools from the wheels as well (nothing from PyPI).
    run(
        Command::new(&vpy)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(["--no-index", "--find-links"])
            .arg(&wheels)
            .arg(&source),
        "pip install --no-index",
    );
    let where_ = run(
        Command::new(&vpy).args([
            "-c",
            "import veloz_client, veloz_client.generated as g; \
             print(veloz_client.__file__); print(g.Payload.Trade)",
        ]),
        "import veloz_client",
    );
    let mut lines = where_.lines();
    let file = lines.next().unwrap();
    assert!(
        Path::new(file).starts_with(&venv),
        "imported from {file}, not the venv"
    );
    assert_eq!(lines.next(), Some("10"));
    let help = run(
        Command::new(venv.join("bin/veloz-client")).arg("--help"),
        "veloz-client --help",
    );
    assert!(help.contains("Exit status:"), "{help}");
    let help = run(
        Command::new(&vpy).args(["-m", "veloz_client", "order", "--help"]),
        "python -m veloz_client order --help",
    );
    assert!(help.contains("--post-only"), "{help}");
}
