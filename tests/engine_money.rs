//! Money over real processes (issue 17): a funded `veloz serve`, deposits and withdrawals
//! through the admin endpoints, orders through the binary protocol.
//! 1. An order the account cannot pay for is rejected `insufficient_funds`; a trade settles
//!    with its fees to the fee account, to the unit; a withdrawal of more than is available
//!    (held funds included) is refused; `veloz replay` and `veloz journal dump` agree.
//! 2. SIGKILL during a load with deposits streaming in: the restarted engine's balances are
//!    what `veloz replay` prints for the same data directory, and every acknowledged
//!    deposit is in them.
//! 3. With two shards a deposit goes to the one shard it names, never to both.
//!
//! Accounts: alice (1) and bob (2) of the default config; fees go to account 900. Assets:
//! USD (id 1, scale 4: the default instruments' price units), AAPL (2) and AMZN (3) shares.
//! AAPL (shard 0 of 2) and AMZN (shard 1 of 2) are funded, maker 10 bps, taker 20 bps.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use veloz_core::{AccountId, RejectReason, Side};
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport};

const T: Duration = Duration::from_secs(10);
const TOKEN: &str = "op-token-for-money";
const AAPL: u32 = 1;
const AMZN: u32 = 2;
const FEES: AccountId = 900;
const USD: u64 = 1;
const AAPL_SHARES: u64 = 2;

/// The test config with money on, over `cores` (`"[0]"`: one shard), durability
/// `durability`, and the admin token on.
fn funded_config(dir: &Path, cores: &str, durability: &str) -> PathBuf {
    let config = test_config(dir, durability, "");
    let text = std::fs::read_to_string(&config).unwrap();
    let off = "[admin]\ntoken_sha256 = \"\"";
    assert!(text.contains(off), "the default config has admin off");
    let hash = format!("{:x}", Sha256::digest(TOKEN.as_bytes()));
    let mut text = text
        .replacen(off, &format!("[admin]\ntoken_sha256 = \"{hash}\""), 1)
        .replacen("[engine]\n", &format!("[engine]\ncores = {cores}\n"), 1);
    for symbol in ["AAPL", "AMZN"] {
        let line = format!("symbol = \"{symbol}\"\n");
        assert!(text.contains(&line));
        text = text.replacen(
            &line,
            &format!(
                "{line}base = \"{symbol}\"\nquote = \"USD\"\nmaker_fee_bps = 10\n\
                 taker_fee_bps = 20\n"
            ),
            1,
        );
    }
    text.push_str(
        "\n[[assets]]\nid = 1\nname = \"USD\"\nscale = 4\n\
         [[assets]]\nid = 2\nname = \"AAPL\"\n\
         [[assets]]\nid = 3\nname = \"AMZN\"\n\
         [risk]\nfee_account = 900\n",
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// `POST /admin/{what}?...` that must be applied: its answer.
fn apply(ops: &str, what: &str, query: &str) -> serde_json::Value {
    let (code, body) = admin_http(ops, "POST", &format!("/admin/{what}?{query}"), Some(TOKEN));
    assert_eq!(code, 200, "{what} {query}: {body}");
    let v = json(&body);
    assert_eq!(v["outcome"], "applied", "{v}");
    v
}

/// `GET /admin/balances?account=A`.
fn balances(ops: &str, account: AccountId) -> serde_json::Value {
    let (code, body) = admin_http(
        ops,
        "GET",
        &format!("/admin/balances?account={account}"),
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{body}");
    json(&body)
}

/// (available, held) of asset `id` on the `i`-th shard of a balances answer.
fn on_shard(v: &serde_json::Value, i: usize, id: u64) -> (u64, u64) {
    let list = v["shards"][i]["balances"].as_array().unwrap();
    let b = list.iter().find(|b| b["id"] == id).unwrap();
    (
        b["available"].as_u64().unwrap(),
        b["held"].as_u64().unwrap(),
    )
}

/// The next report of `c` for which `want` holds (earlier ones skipped).
fn until(c: &mut Client, want: impl Fn(&ExecutionReport<'_>) -> bool) -> ExecutionReport<'static> {
    loop {
        let r = c.next_report(T).unwrap();
        if want(&r) {
            return r;
        }
    }
}

/// `veloz replay --json` of `data`: per shard, its `money` object.
fn replay_money(data: &Path, config: &Path) -> Vec<serde_json::Value> {
    let (code, out, err) = veloz(&[
        "replay",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v = json(&out);
    (v.as_array().unwrap().iter())
        .map(|s| {
            // Every snapshot met on the way matched the replayed state.
            assert_eq!(s["shard"]["snapshot_mismatch"], false, "{s}");
            s["shard"]["money"].clone()
        })
        .collect()
}

/// In a replayed shard's money: (available, held) of `account` in asset `id` (zeros when it
/// has no entry).
fn replayed(money: &serde_json::Value, account: AccountId, id: u64) -> (u64, u64) {
    let accounts = money["accounts"].as_array().unwrap();
    let Some(a) = accounts.iter().find(|a| a["account"] == account) else {
        return (0, 0);
    };
    let b = (a["balances"].as_array().unwrap().iter())
        .find(|b| b[1] == id)
        .unwrap();
    (b[2].as_u64().unwrap(), b[3].as_u64().unwrap())
}

fn supply(money: &serde_json::Value, id: u64) -> u64 {
    (money["supply"].as_array().unwrap().iter())
        .find(|s| s["id"] == id)
        .map_or(0, |s| s["amount"].as_u64().unwrap())
}

#[test]
fn funds_are_held_settled_with_fees_and_withdrawn_only_when_available() {
    let _serial = serial();
    let dir = TempDir::new("money");
    let config = funded_config(dir.path(), "[0]", "group");
    let engine = EngineProcess::start(&config);
    let (addr, ops) = (engine.addr.clone(), engine.metrics.clone());

    // One shard: no need to name it. Alice has 5,000 USD, bob 100 AAPL shares.
    let d = apply(&ops, "deposit", "account=1&asset=USD&amount=50000000");
    assert_eq!(
        d,
        serde_json::json!({"action": "deposit", "account": 1, "asset": "USD", "asset_id": 1,
            "amount": 50_000_000, "shard": 0, "outcome": "applied"})
    );
    apply(&ops, "deposit", "account=2&asset=AAPL&amount=100");
    let (mut alice, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();

    // 30 at 190.0000 holds 30 * (1_900_000 + 20 bps) = 57_114_000 > 50_000_000.
    alice
        .send(&limit(AAPL, 1, Side::Buy, 1_900_000, 30))
        .unwrap();
    let r = alice.next_report(T).unwrap();
    assert_eq!(
        (r.exec_type, r.reject_reason),
        (ExecType::Rejected, Some(RejectReason::InsufficientFunds))
    );
    assert_eq!(RejectReason::InsufficientFunds.code(), 16);
    assert_eq!(RejectReason::InsufficientFunds.name(), "insufficient_funds");
    // 20 fits: it holds 20 * 1_903_800 = 38_076_000.
    alice
        .send(&limit(AAPL, 2, Side::Buy, 1_900_000, 20))
        .unwrap();
    assert_eq!(alice.next_report(T).unwrap().exec_type, ExecType::Accepted);
    let v = balances(&ops, 1);
    assert_eq!(on_shard(&v, 0, USD), (11_924_000, 38_076_000), "{v}");
    // Bob sells 15 into it: 15 at 1_900_000 is 28_500_000; alice (maker) pays 10 bps =
    // 28_500, bob (taker) 20 bps = 57_000.
    bob.send(&limit(AAPL, 1, Side::Sell, 1_900_000, 15))
        .unwrap();
    let fill = until(&mut bob, |r| r.exec_type == ExecType::Filled);
    assert_eq!((fill.last_qty, fill.last_price), (15, 1_900_000));
    let fill = until(&mut alice, |r| r.exec_type == ExecType::PartiallyFilled);
    assert_eq!(fill.leaves_qty, 5);

    // Alice: 15 * 1_903_800 released, 28_528_500 paid; 5 * 1_903_800 still held.
    let v = balances(&ops, 1);
    assert_eq!(on_shard(&v, 0, USD), (11_952_500, 9_519_000), "{v}");
    assert_eq!(on_shard(&v, 0, AAPL_SHARES), (15, 0), "{v}");
    assert_eq!(
        v["total"][0],
        serde_json::json!({"asset": "USD", "id": 1, "available": 11_952_500u64, "held": 9_519_000u64})
    );
    let v = balances(&ops, 2);
    assert_eq!(on_shard(&v, 0, USD), (28_443_000, 0), "{v}");
    assert_eq!(on_shard(&v, 0, AAPL_SHARES), (85, 0), "{v}");
    let v = balances(&ops, FEES);
    assert_eq!(on_shard(&v, 0, USD), (85_500, 0), "{v}");

    // More than available is refused even though available + held would cover it.
    let (code, body) = admin_http(
        &ops,
        "POST",
        "/admin/withdraw?account=1&asset=USD&amount=12000000",
        Some(TOKEN),
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(json(&body)["outcome"], "insufficient_funds");
    apply(&ops, "withdraw", "account=1&asset=1&amount=11952500");
    // The fee account takes its fees out (through the script).
    let script = repo().join("scripts/admin.sh");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&script)
            .args(["--metrics", &ops])
            .args(args)
            .env("VELOZ_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text, err)
    };
    let (code, out, err) = run(&["withdraw", "900", "USD", "85500"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json(&out)["outcome"], "applied");
    let (code, _, err) = run(&["withdraw", "900", "USD", "1"]);
    assert_eq!(code, Some(1), "refused: {err}");
    assert!(err.contains("insufficient_funds"), "{err}");
    let (code, out, err) = run(&["balances", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(on_shard(&json(&out), 0, USD), (0, 9_519_000));
    let (code, _, err) = run(&["deposit", "1", "USD"]);
    assert_eq!(code, Some(2), "{err}");

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    // The replay ends where the engine did: same balances, supply = deposits - withdrawals.
    let data = dir.path().join("data");
    let money = replay_money(&data, &config);
    assert_eq!(replayed(&money[0], 1, USD), (0, 9_519_000));
    assert_eq!(replayed(&money[0], 1, AAPL_SHARES), (15, 0));
    assert_eq!(replayed(&money[0], 2, USD), (28_443_000, 0));
    assert_eq!(replayed(&money[0], FEES, USD), (0, 0));
    assert_eq!(supply(&money[0], USD), 50_000_000 - 11_952_500 - 85_500);
    assert_eq!(supply(&money[0], AAPL_SHARES), 100);
    let (code, text, err) = veloz(&[
        "replay",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("    supply: USD 37962000, AAPL 100, AMZN 0"),
        "{text}"
    );
    assert!(
        text.contains("    account 1: USD 0 available 9519000 held, AAPL 15 available 0 held"),
        "{text}"
    );
    // The journal shows each deposit and withdrawal readably.
    let (code, dump, err) = veloz(&["journal", "dump", "--data", data.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let moves: Vec<serde_json::Value> = (dump.lines().map(json))
        .filter_map(|l| {
            let c = &l["record"]["command"];
            c["asset"].is_u64().then(|| c.clone())
        })
        .collect();
    let seen: Vec<(String, u64, u64, u64)> = (moves.iter())
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["account"].as_u64().unwrap(),
                c["asset"].as_u64().unwrap(),
                c["amount"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("deposit", 1, 1, 50_000_000),
        ("deposit", 2, 2, 100),
        ("withdraw", 1, 1, 12_000_000),
        ("withdraw", 1, 1, 11_952_500),
        ("withdraw", 900, 1, 85_500),
        ("withdraw", 900, 1, 1),
    ]
    .map(|(a, b, c, d)| (a.to_string(), b, c, d));
    assert_eq!(seen, want);
}

/// Deposits `1000 + k` USD units to alice, alternately on shard 0 and (by symbol) shard 1,
/// until `stop` or the engine is gone: per shard, the acknowledged amounts and the one in
/// flight when it ended.
fn depositor(ops: String, stop: Arc<AtomicBool>) -> [(Vec<u64>, Option<u64>); 2] {
    let mut out: [(Vec<u64>, Option<u64>); 2] = Default::default();
    let mut k = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let (shard, target) = if k.is_multiple_of(2) {
            (0, "shard=0")
        } else {
            (1, "symbol=AMZN")
        };
        let amount = 1_000 + k;
        let path = format!("/admin/deposit?account=1&asset=USD&amount={amount}&{target}");
        out[shard].1 = Some(amount);
        let answer = std::panic::catch_unwind(|| {
            let mut s = TcpStream::connect(&ops).ok()?;
            s.set_read_timeout(Some(T)).ok()?;
            write!(
                s,
                "POST {path} HTTP/1.0\r\nHost: veloz\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            )
            .ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            Some(text)
        })
        .ok()
        .flatten();
        match answer {
            Some(text) if text.starts_with("HTTP/1.0 200") => {
                assert!(text.contains(&format!("\"shard\":{shard}")), "{text}");
                out[shard].0.push(amount);
                out[shard].1 = None;
            }
            // No answer: the engine is gone; this one may or may not be in.
            _ => break,
        }
        k += 1;
    }
    out
}

/// Alice sells, bob buys, on both funded instruments near their reference prices, until
/// the engine is gone or `stop`.
fn trader(addr: String, account: (AccountId, &'static str), stop: Arc<AtomicBool>) {
    let Ok((mut c, _)) = Client::logon(&addr, account.0, account.1) else {
        return;
    };
    let side = if account.0 == 1 {
        Side::Sell
    } else {
        Side::Buy
    };
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let (symbol, reference) = if i.is_multiple_of(2) {
            (AAPL, 1_900_000)
        } else {
            (AMZN, 2_200_000)
        };
        let offset = ((i * 7) % 5) as i64 - 2;
        let cmd = limit(symbol, i + 1, side, reference + offset * 100, 1 + i % 3);
        if c.send(&cmd).is_err() {
            return;
        }
        i += 1;
        loop {
            match c.recv(Duration::from_micros(if i.is_multiple_of(16) {
                2_000
            } else {
                0
            })) {
                Ok(Some(Received::Report(_))) | Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

#[test]
fn sigkill_with_deposits_streaming_recovers_the_replayed_balances() {
    let _serial = serial();
    let dir = TempDir::new("money-crash");
    let config = funded_config(dir.path(), "[0, 1]", "none");
    // Snapshots as the load goes: the restart starts from one (its money section) and
    // replays the rest; the offline replay checks each one's hash on the way.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nevery_records = 0\n"));
    let text = text.replacen("\nevery_records = 0\n", "\nevery_records = 2000\n", 1);
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start(&config);
    let (addr, ops) = (engine.addr.clone(), engine.metrics.clone());
    // AAPL trades on shard 0, AMZN on shard 1: each shard gets its own slice.
    for query in [
        "account=1&asset=AAPL&amount=1000000&symbol=AAPL",
        "account=1&asset=AMZN&amount=1000000&symbol=AMZN",
        "account=2&asset=USD&amount=1000000000000000&shard=0",
        "account=2&asset=USD&amount=1000000000000000&shard=1",
    ] {
        apply(&ops, "deposit", query);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let traders: Vec<_> = [ALICE, BOB]
        .into_iter()
        .map(|acc| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || trader(addr, acc, stop))
        })
        .collect();
    let deposits = {
        let (ops, stop) = (ops.clone(), stop.clone());
        std::thread::spawn(move || depositor(ops, stop))
    };
    std::thread::sleep(Duration::from_millis(1_500));
    let stderr = engine.kill9();
    stop.store(true, Ordering::SeqCst);
    for t in traders {
        t.join().unwrap();
    }
    let deposits = deposits.join().unwrap();
    assert!(
        deposits.iter().all(|(acked, _)| acked.len() >= 3),
        "few deposits acknowledged: {deposits:?}\n{}",
        stderr.join("\n")
    );

    eprintln!(
        "deposits acknowledged per shard: {:?}, in flight at the kill: {:?}",
        deposits.iter().map(|d| d.0.len()).collect::<Vec<_>>(),
        deposits.iter().map(|d| d.1).collect::<Vec<_>>()
    );
    // Offline first: what the journals say.
    let data = dir.path().join("data");
    let money = replay_money(&data, &config);
    assert_eq!(money.len(), 2);
    for (shard, (acked, in_flight)) in deposits.iter().enumerate() {
        // Every acknowledged deposit is in the supply; the one in flight may be.
        let acked_sum: u64 = acked.iter().sum();
        let got = supply(&money[shard], USD) - 1_000_000_000_000_000;
        assert!(
            got == acked_sum || Some(got - acked_sum) == *in_flight,
            "shard {shard}: supply holds {got} of deposits, {acked_sum} acknowledged, \
             {in_flight:?} in flight"
        );
    }
    // The restarted engine recovers exactly that (from a snapshot and the journal after it).
    let mut engine = EngineProcess::start(&config);
    engine.collect();
    assert!(
        engine
            .stderr_lines
            .iter()
            .any(|l| l.contains("loaded snapshot")),
        "no snapshot loaded:\n{}",
        engine.stderr_lines.join("\n")
    );
    for account in [1, 2, FEES] {
        let live = balances(&engine.metrics, account);
        for shard in 0..2 {
            assert_eq!(live["shards"][shard]["shard"], shard);
            for id in [USD, AAPL_SHARES, 3] {
                assert_eq!(
                    on_shard(&live, shard, id),
                    replayed(&money[shard], account, id),
                    "account {account} shard {shard} asset {id}: {live}"
                );
            }
        }
    }
    // Trades happened and paid fees on both shards.
    let fees = balances(&engine.metrics, FEES);
    for shard in 0..2 {
        assert!(on_shard(&fees, shard, USD).0 > 0, "{fees}");
    }
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn with_two_shards_a_deposit_goes_to_the_one_it_names() {
    let _serial = serial();
    let dir = TempDir::new("money-shards");
    let config = funded_config(dir.path(), "[0, 1]", "group");
    let engine = EngineProcess::start(&config);
    let ops = engine.metrics.clone();
    // Naming no shard is refused: nothing journaled anywhere.
    let (code, body) = admin_http(
        &ops,
        "POST",
        "/admin/deposit?account=1&asset=USD&amount=5",
        Some(TOKEN),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("&shard=N"), "{body}");
    let (code, body) = admin_http(
        &ops,
        "POST",
        "/admin/deposit?account=1&asset=USD&amount=5&shard=2",
        Some(TOKEN),
    );
    assert_eq!(code, 404, "{body}");
    let d = apply(&ops, "deposit", "account=1&asset=USD&amount=700&shard=1");
    assert_eq!(d["shard"], 1);
    let d = apply(&ops, "deposit", "account=1&asset=USD&amount=30&symbol=AAPL");
    assert_eq!(d["shard"], 0);
    let v = balances(&ops, 1);
    assert_eq!(on_shard(&v, 0, USD), (30, 0), "{v}");
    assert_eq!(on_shard(&v, 1, USD), (700, 0), "{v}");
    assert_eq!(v["total"][0]["available"], 730, "{v}");
    // Moving money between shards: withdraw on one, deposit on the other.
    apply(&ops, "withdraw", "account=1&asset=USD&amount=200&shard=1");
    apply(&ops, "deposit", "account=1&asset=USD&amount=200&shard=0");
    let v = balances(&ops, 1);
    assert_eq!(on_shard(&v, 0, USD), (230, 0), "{v}");
    assert_eq!(on_shard(&v, 1, USD), (500, 0), "{v}");
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let money = replay_money(&dir.path().join("data"), &config);
    assert_eq!(supply(&money[0], USD), 230);
    assert_eq!(supply(&money[1], USD), 500);
}
