//! Money over the binary protocol, end to end over real loopback TCP against a real
//! `veloz serve` with a funded configuration (docs/protocol.md, "Balances and risk"):
//! deposits through the operator interface, then an order refused for short funds
//! (`insufficient_funds`, 16), one refused by the account's `max_order_qty`
//! (`order_qty_limit`, 17), and balance reports before and after a trade whose amounts
//! (holds, fees, settlement) are computed by hand below; the same balances through the
//! Python client, and over FIX 4.4 a CollateralInquiry (BB) answered by one
//! CollateralReport (BA) per asset, read by a real QuickFIX initiator that validates them
//! against `schemas/fix44-veloz.xml`.
//!
//! Run it as `flock /tmp/veloz-e2e.lock cargo test --test protocol_money`.

mod common;
// Shared with tests/fix_quickfix.rs, which uses all of it.
#[allow(dead_code)]
#[path = "fix/harness.rs"]
mod harness;

use std::process::Command as Process;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use veloz_core::{RejectReason, Side};
use veloz_load::client::{Balances, Client};
use veloz_wire::{ExecType, ExecutionReport};

const T: Duration = Duration::from_secs(10);
const TOKEN: &str = "op-token-for-money-tests";
const BTCUSD: u32 = 1;
const ETHUSD: u32 = 2;
const FEE_ACCOUNT: u32 = 900;

/// The test config (any free ports, durability none) with money: USD (cents), BTC
/// (satoshis), ETH; BTCUSD prices in whole USD per BTC, one quantity unit 0.01 BTC, so
/// `price * qty` is the notional in cents (`quote_unit` 1) and a unit is 10^6 satoshis;
/// fees 10 bps maker, 20 bps taker; alice (1) may not send an order above 100.
fn money_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = test_config(dir, "none", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let hash = format!("{:x}", Sha256::digest(TOKEN.as_bytes()));
    let extra: toml::Table = format!(
        r#"
[admin]
token_sha256 = "{hash}"

[[assets]]
id = 1
name = "USD"
scale = 2

[[assets]]
id = 2
name = "BTC"
scale = 8

[[assets]]
id = 3
name = "ETH"
scale = 8

[risk]
fee_account = {FEE_ACCOUNT}

[[risk.accounts]]
account = 1
max_order_qty = 100

[[instruments]]
id = {BTCUSD}
symbol = "BTCUSD"
price_scale = 0
tick_size = 1
lot_size = 1
min_qty = 1
max_qty = 1_000_000
price_band_bps = 1_000
reference_price = 60_000
base = "BTC"
quote = "USD"
base_unit = 1_000_000
quote_unit = 1
maker_fee_bps = 10
taker_fee_bps = 20

[[instruments]]
id = {ETHUSD}
symbol = "ETHUSD"
price_scale = 0
tick_size = 1
lot_size = 1
min_qty = 1
max_qty = 1_000_000
price_band_bps = 1_000
reference_price = 3_000
base = "ETH"
quote = "USD"
base_unit = 1_000_000
quote_unit = 1
maker_fee_bps = 10
taker_fee_bps = 20
"#
    )
    .parse()
    .unwrap();
    doc.remove("instruments");
    doc.remove("admin");
    for (k, v) in extra {
        doc.insert(k, v);
    }
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    let (code, out, err) = veloz(&["config", "--config", path.to_str().unwrap()]);
    assert_eq!(
        code,
        Some(0),
        "veloz config refused the money config:\n{out}{err}"
    );
    path
}

fn deposit(ops: &str, account: u32, asset: &str, amount: u64, symbol: &str) {
    let path =
        format!("/admin/deposit?account={account}&asset={asset}&amount={amount}&symbol={symbol}");
    let (code, body) = admin_http(ops, "POST", &path, Some(TOKEN));
    assert_eq!(code, 200, "{path}: {body}");
}

/// (available, held) of every asset, in id order: USD, BTC, ETH.
fn amounts(b: &Balances) -> Vec<(&str, u64, u64)> {
    b.assets
        .iter()
        .map(|a| (a.name.as_str(), a.available, a.held))
        .collect()
}

/// Each shard's slices summed per asset must give the totals.
fn slices_add_up(b: &Balances, shards: u16) {
    for a in &b.assets {
        let (mut available, mut held) = (0, 0);
        for s in b.slices.iter().filter(|s| s.asset == a.asset) {
            assert!(s.shard < shards, "slice of shard {} of {shards}", s.shard);
            assert!(
                s.available != 0 || s.held != 0,
                "only non-zero slices: {s:?}"
            );
            available += s.available;
            held += s.held;
        }
        assert_eq!(
            (available, held),
            (a.available, a.held),
            "{}: {b:?}",
            a.name
        );
    }
}

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

fn rejected(c: &mut Client, coid: u64) -> RejectReason {
    let r = report(c);
    assert_eq!(
        (r.exec_type, r.client_order_id),
        (ExecType::Rejected, coid),
        "{r:?}"
    );
    r.reject_reason.unwrap()
}

#[test]
fn funds_limits_and_balances_before_and_after_a_trade() {
    let _serial = serial();
    let dir = TempDir::new("protocol-money");
    let config = money_config(dir.path());
    let mut engine = EngineProcess::start(&config);
    let (addr, ops) = (engine.addr.clone(), engine.metrics.clone());

    // Alice: 50,000.00 USD where BTCUSD trades, 1,000.00 where ETHUSD does (the same shard
    // on a one-core host: the totals are the same either way). Bob: 1 BTC.
    deposit(&ops, 1, "USD", 5_000_000, "BTCUSD");
    deposit(&ops, 1, "USD", 100_000, "ETHUSD");
    deposit(&ops, 2, "BTC", 100_000_000, "BTCUSD");

    let (mut alice, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    let shards = alice.streams();

    let before = alice.balances(1, true, T).unwrap();
    assert_eq!(
        (before.request_id, before.account, before.reject_reason),
        (1, 1, None)
    );
    assert_eq!(
        amounts(&before),
        [("USD", 5_100_000, 0), ("BTC", 0, 0), ("ETH", 0, 0)]
    );
    assert_eq!(
        before.assets.iter().map(|a| a.scale).collect::<Vec<_>>(),
        [2, 8, 8]
    );
    slices_add_up(&before, shards);
    let plain = alice.balances(2, false, T).unwrap();
    assert!(plain.slices.is_empty(), "slices only when asked: {plain:?}");
    assert_eq!(amounts(&plain), amounts(&before));

    // 90 at 60,000 holds 90 * (60,000 + ceil(60,000 * 20 / 10^4)) = 90 * 60,120 = 5,410,800
    // cents: more than alice has anywhere.
    alice
        .send(&limit(BTCUSD, 10, Side::Buy, 60_000, 90))
        .unwrap();
    assert_eq!(rejected(&mut alice, 10), RejectReason::InsufficientFunds);
    assert_eq!(RejectReason::InsufficientFunds.code(), 16);
    // 101 is above alice's max_order_qty (checked before her funds).
    alice
        .send(&limit(BTCUSD, 11, Side::Buy, 60_000, 101))
        .unwrap();
    assert_eq!(rejected(&mut alice, 11), RejectReason::OrderQtyLimit);
    // Bob may send anything up to his balance: 2 BTC is short.
    bob.send(&limit(BTCUSD, 20, Side::Sell, 60_000, 200))
        .unwrap();
    assert_eq!(rejected(&mut bob, 20), RejectReason::InsufficientFunds);
    let unchanged = alice.balances(3, false, T).unwrap();
    assert_eq!(
        amounts(&unchanged),
        amounts(&before),
        "rejects move no money"
    );

    // Bob rests 50 (0.5 BTC) at 60,000: it holds 50 * 10^6 satoshis.
    bob.send(&limit(BTCUSD, 21, Side::Sell, 60_000, 50))
        .unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);
    let b = bob.balances(4, false, T).unwrap();
    assert_eq!(
        amounts(&b),
        [
            ("USD", 0, 0),
            ("BTC", 50_000_000, 50_000_000),
            ("ETH", 0, 0)
        ]
    );

    // Alice takes 30 with a limit of 60,010: it holds 30 * (60,010 + ceil(120.02)) =
    // 30 * 60,131 = 1,803,930, trades 30 at 60,000 = 1,800,000 notional, pays the taker
    // fee ceil(1,800,000 * 20 / 10^4) = 3,600 and gets 30 * 10^6 satoshis back. Bob (maker)
    // gets 1,800,000 less ceil(1,800,000 * 10 / 10^4) = 1,800; the fee account 5,400.
    alice
        .send(&limit(BTCUSD, 12, Side::Buy, 60_010, 30))
        .unwrap();
    let accepted = report(&mut alice);
    assert_eq!(accepted.exec_type, ExecType::Accepted);
    let fill = report(&mut alice);
    assert_eq!(
        (fill.exec_type, fill.last_qty, fill.last_price),
        (ExecType::Filled, 30, 60_000)
    );
    let maker = report(&mut bob);
    assert_eq!(
        (maker.exec_type, maker.leaves_qty),
        (ExecType::PartiallyFilled, 20)
    );
    // And a resting bid of 10 at 59,000: holds 10 * (59,000 + 118) = 591,180.
    alice
        .send(&limit(BTCUSD, 13, Side::Buy, 59_000, 10))
        .unwrap();
    assert_eq!(report(&mut alice).exec_type, ExecType::Accepted);

    let after = alice.balances(5, true, T).unwrap();
    // 5,100,000 - 1,800,000 - 3,600 - 591,180 = 2,705,220 available.
    assert_eq!(
        amounts(&after),
        [
            ("USD", 2_705_220, 591_180),
            ("BTC", 30_000_000, 0),
            ("ETH", 0, 0)
        ]
    );
    slices_add_up(&after, shards);
    let b = bob.balances(6, true, T).unwrap();
    assert_eq!(
        amounts(&b),
        [
            ("USD", 1_798_200, 0),
            ("BTC", 50_000_000, 20_000_000),
            ("ETH", 0, 0)
        ]
    );
    slices_add_up(&b, shards);

    // The operator's view agrees, and the fee account got both fees.
    let (code, body) = admin_http(
        &ops,
        "GET",
        &format!("/admin/balances?account={FEE_ACCOUNT}"),
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{body}");
    let fees: serde_json::Value = serde_json::from_str(&body).unwrap();
    let usd = &fees["total"][0];
    assert_eq!(
        (&usd["asset"], &usd["available"], &usd["held"]),
        (&"USD".into(), &5_400.into(), &0.into()),
        "fee account: {fees}"
    );
    let (code, body) = admin_http(&ops, "GET", "/admin/balances?account=1", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let admin: serde_json::Value = serde_json::from_str(&body).unwrap();
    for a in &after.assets {
        let t = admin["total"]
            .as_array()
            .and_then(|v| v.iter().find(|t| t["id"] == a.asset));
        let (available, held) = t.map_or((0, 0), |t| {
            (
                t["available"].as_u64().unwrap(),
                t["held"].as_u64().unwrap(),
            )
        });
        assert_eq!(
            (available, held),
            (a.available, a.held),
            "{}: {admin}",
            a.name
        );
    }

    // The Python client asks the same over its own connection.
    let py = python("flatbuffers");
    let script = r#"
import json, sys
from veloz_client import Session
with Session.connect("127.0.0.1", int(sys.argv[1]), account_id=1, token="demo-alice") as s:
    r = s.balances(by_shard=True)
    usd = r.of("USD")
    print(json.dumps({"account": r.account_id, "usd": [usd.available, usd.held],
                      "usd_units": str(usd.available_units),
                      "btc": [r.of("BTC").available, r.of("BTC").held],
                      "slices": sum(x.available for x in r.slices if x.asset_id == 1)}))
"#;
    let port = addr.rsplit(':').next().unwrap();
    let out = Process::new(&py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .args(["-c", script, port])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"account": 1, "usd": [2_705_220, 591_180], "usd_units": "27052.20",
            "btc": [30_000_000, 0], "slices": 2_705_220})
    );

    // And its command line: one JSON line per message, amounts also as exact decimals.
    let out = Process::new(&py)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", repo().join("clients/python/src"))
        .env("VELOZ_TOKEN", ALICE.1)
        .args([
            "-m",
            "veloz_client",
            "--connect",
            &addr,
            "--account",
            "1",
            "balances",
        ])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "veloz-client balances: {stdout}");
    let report: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "BalanceReport")
        .unwrap_or_else(|| panic!("no BalanceReport in {stdout}"));
    let usd = &report["balances"][0];
    assert_eq!(
        (&usd["name"], &usd["available_units"], &usd["held_units"]),
        (&"USD".into(), &"27052.20".into(), &"5911.80".into()),
        "{report}"
    );

    alice.logout().unwrap();
    bob.logout().unwrap();
    engine.collect();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}

#[test]
fn an_engine_without_money_answers_an_empty_balance_list() {
    let _serial = serial();
    let dir = TempDir::new("protocol-no-money");
    let config = test_config(dir.path(), "none", "");
    let engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let b = alice.balances(7, true, T).unwrap();
    assert_eq!((b.request_id, b.account, b.reject_reason), (7, 1, None));
    assert!(b.assets.is_empty() && b.slices.is_empty(), "{b:?}");
    alice.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}

#[test]
fn a_fix_collateral_inquiry_gets_one_report_per_asset() {
    use harness::{Initiator, SENDER};
    let _serial = serial();
    let dir = TempDir::new("protocol-money-fix");
    let config = money_config(dir.path());
    let mut engine = EngineProcess::start(&config);
    let ops = engine.metrics.clone();
    deposit(&ops, 1, "USD", 5_000_000, "BTCUSD");
    deposit(&ops, 1, "USD", 100_000, "ETHUSD");
    deposit(&ops, 1, "BTC", 7, "BTCUSD");
    let fix = engine.fix_addr();
    let work = dir.path().join("initiator");
    std::fs::create_dir_all(&work).unwrap();
    let mut ini = Initiator::start(work);
    ini.connect(&fix, None);

    ini.send("BB", &[(909, "inq-1"), (263, "0"), (1, "1")]);
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = ini.app("BA", "a CollateralReport", |e| e.f(909) == "inq-1");
        got.push(
            [15, 7930, 7931, 911, 912, 910, 1]
                .map(|t| e.f(t).to_string())
                .join(" "),
        );
        assert!(e.f(908).starts_with('C'), "CollRptID: {}", e.0);
    }
    assert_eq!(
        got,
        [
            "USD 51000.00 0.00 3 N 3 1",
            "BTC 0.00000007 0.00000000 3 N 3 1",
            "ETH 0.00000000 0.00000000 3 Y 3 1",
        ],
        "{}",
        ini.context()
    );

    // Another account's balances, or a subscription: refused with a BusinessMessageReject.
    ini.send("BB", &[(909, "inq-2"), (1, "2")]);
    let j = ini.app("j", "a BusinessMessageReject", |_| true);
    assert_eq!((j.f(372), j.f(380)), ("BB", "0"), "{}", j.0);
    assert!(j.f(58).contains("Account (1)"), "{}", j.0);
    ini.send("BB", &[(909, "inq-3"), (263, "1")]);
    let j = ini.app("j", "a BusinessMessageReject", |_| true);
    assert!(
        j.f(58).contains("SubscriptionRequestType (263) 1"),
        "{}",
        j.0
    );
    assert!(
        !ini.all.iter().any(|e| e.is("admin_out", "3")),
        "QuickFIX rejected a message of the engine: {SENDER}\n{}",
        ini.context()
    );
    ini.disconnect();
    engine.collect();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit; stderr:\n{}", stderr.join("\n"));
}
