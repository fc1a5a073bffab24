//! Scale-out over several engines (docs/scale-out.md): two real `veloz serve` processes on
//! this machine, engine `eq-a` owning AAPL and AMZN and engine `eq-b` MSFT and NVDA, each
//! with its own config and data directory, and clients routing by instrument through an
//! engine map ([`veloz_load::router`]).
//!
//! Holds `common::serial()` throughout; each engine gets one shard on its own core where the
//! machine has two, and the order stream is lockstep (each order waits for its reports), a
//! few hundred orders at well under 1,000 a second.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use veloz_core::*;
use veloz_load::router::{EngineMap, RouteError, Router};
use veloz_load::Credential;
use veloz_wire::{ExecType, ExecutionReport};

const WAIT: Duration = Duration::from_secs(10);
const A: &str = "eq-a";
const B: &str = "eq-b";
const A_OWNS: [&str; 2] = ["AAPL", "AMZN"];
const B_OWNS: [&str; 2] = ["MSFT", "NVDA"];
/// Crossing pairs per instrument: 4 instruments x 2 orders x 60 = 480 orders.
const ROUNDS: u64 = 60;
const ADMIN_TOKEN: &str = "op-token-for-scale-out";

/// `test_config`'s text with only the `configured` instruments, one shard on `core`, and the
/// operator interface on with [`ADMIN_TOKEN`] when `admin`.
fn engine_config(dir: &Path, configured: &[&str], core: usize, admin: bool) -> PathBuf {
    let path = test_config(dir, "none", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    // Tables in order; drop the [[instruments]] tables of symbols this engine does not own.
    for table in split_tables(&text) {
        let foreign = table.starts_with("[[instruments]]")
            && !configured
                .iter()
                .any(|s| table.contains(&format!("symbol = {s:?}\n")));
        if !foreign {
            out.push_str(&table);
        }
    }
    let mut out = out.replacen("[engine]\n", &format!("[engine]\ncores = [{core}]\n"), 1);
    if admin {
        let off = "[admin]\ntoken_sha256 = \"\"";
        assert!(out.contains(off), "the test config has admin off");
        let hash = format!("{:x}", Sha256::digest(ADMIN_TOKEN.as_bytes()));
        out = out.replacen(off, &format!("[admin]\ntoken_sha256 = \"{hash}\""), 1);
    }
    std::fs::write(&path, out).unwrap();
    let config = veloz_config::Config::load(&path).unwrap();
    let symbols: Vec<_> = config.instruments().into_iter().map(|i| i.symbol).collect();
    assert_eq!(symbols, configured, "the config of {}", path.display());
    path
}

/// An engine map of two engines named [`A`] and [`B`].
fn map_text(a_addr: &str, a_owns: &[&str], b_addr: &str, b_owns: &[&str]) -> String {
    format!(
        "[[engines]]\nname = {A:?}\naddresses = [{a_addr:?}]\ninstruments = {a_owns:?}\n\n\
         [[engines]]\nname = {B:?}\naddresses = [{b_addr:?}]\ninstruments = {b_owns:?}\n"
    )
}

/// `POST /admin/{action}?symbol={symbol}` on an engine's metrics socket; the outcome of its
/// one shard.
fn operator(metrics: &str, action: &str, symbol: &str) -> String {
    let mut s = TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST /admin/{action}?symbol={symbol} HTTP/1.0\r\nHost: veloz\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["shards"][0]["outcome"].as_str().unwrap().to_string()
}

/// Each table of a TOML text with the lines up to the next table header.
fn split_tables(text: &str) -> Vec<String> {
    let mut tables: Vec<String> = vec![String::new()];
    for line in text.lines() {
        if line.starts_with('[') {
            tables.push(String::new());
        }
        let last = tables.last_mut().unwrap();
        last.push_str(line);
        last.push('\n');
    }
    tables
}

fn reference_prices() -> BTreeMap<String, Price> {
    veloz_config::Config::default()
        .instruments()
        .into_iter()
        .map(|i| (i.symbol, i.reference_price))
        .collect()
}

/// The next report on `router`'s session to `engine`, checked to be about `symbol` (by that
/// engine's id for it) and `coid`.
fn report(
    router: &mut Router,
    engine: &str,
    symbol: &str,
    coid: u64,
    exec_type: ExecType,
) -> ExecutionReport<'static> {
    let r = router.client(engine).unwrap().next_report(WAIT).unwrap();
    let on = r.symbol.and_then(|id| router.symbol_on(engine, id));
    assert_eq!(
        (r.exec_type, r.client_order_id, on),
        (exec_type, coid, Some(symbol)),
        "account {} on {engine}: {r:?}",
        router.account()
    );
    r
}

/// The instrument ids of the commands in `data`'s journals (`veloz journal dump`).
fn journaled_symbols(data: &Path) -> BTreeSet<u64> {
    let (code, out, err) = veloz(&["journal", "dump", "--data", data.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["record"]["type"] == "command")
        .filter_map(|l| l["record"]["command"]["symbol"].as_u64())
        .collect()
}

/// Trades per symbol on `data`'s trade tape (`veloz journal trades`).
fn trades_by_symbol(data: &Path, config: &Path) -> BTreeMap<String, usize> {
    let (code, out, err) = veloz(&[
        "journal",
        "trades",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "symbol").unwrap();
    let mut by = BTreeMap::new();
    for row in lines {
        *by.entry(row.split(',').nth(column).unwrap().to_string())
            .or_default() += 1;
    }
    by
}

#[test]
fn two_engines_each_own_half_the_instruments_and_clients_route_between_them() {
    let _serial = serial();
    let online = veloz_config::preflight::online_cores().unwrap();
    let dir_a = TempDir::new("scale-out-a");
    let dir_b = TempDir::new("scale-out-b");
    let config_a = engine_config(dir_a.path(), &A_OWNS, online[0], false);
    let config_b = engine_config(dir_b.path(), &B_OWNS, *online.last().unwrap(), false);
    let engine_a = EngineProcess::start(&config_a);
    let engine_b = EngineProcess::start(&config_b);
    assert_ne!(engine_a.data, engine_b.data);

    // The routing record, as a client reads it.
    let map_path = dir_a.path().join("engines.toml");
    std::fs::write(
        &map_path,
        map_text(&engine_a.addr, &A_OWNS, &engine_b.addr, &B_OWNS),
    )
    .unwrap();
    let map = EngineMap::load(&map_path).unwrap();
    let mut alice = Router::new(map.clone(), Credential::new(ALICE.0, ALICE.1));
    let mut bob = Router::new(map, Credential::new(BOB.0, BOB.1));

    // Alice rests a sell, Bob takes it: every instrument, ROUNDS times, instruments taken in
    // turn so both engines trade all along.
    let prices = reference_prices();
    let symbols: Vec<&str> = A_OWNS.iter().chain(&B_OWNS).copied().collect();
    let mut acks: BTreeMap<String, u64> = BTreeMap::new();
    let mut fills: BTreeMap<String, u64> = BTreeMap::new();
    let mut coid = 0;
    for round in 0..ROUNDS {
        for &symbol in &symbols {
            coid += 1;
            // Ticks of 100 around the reference, inside the 10 % band.
            let price = prices[symbol] + (round as i64 % 5 - 2) * 100;
            let sell = Command::New(NewOrder::limit(0, 0, coid, Side::Sell, price, 5));
            let engine = alice.send(symbol, &sell).unwrap().to_string();
            assert_eq!(engine, if A_OWNS.contains(&symbol) { A } else { B });
            let resting = report(&mut alice, &engine, symbol, coid, ExecType::Accepted);
            let buy = Command::New(NewOrder::limit(0, 0, coid, Side::Buy, price, 5));
            assert_eq!(bob.send(symbol, &buy).unwrap(), engine);
            report(&mut bob, &engine, symbol, coid, ExecType::Accepted);
            let taker = report(&mut bob, &engine, symbol, coid, ExecType::Filled);
            let maker = report(&mut alice, &engine, symbol, coid, ExecType::Filled);
            assert_eq!(
                (
                    maker.order_id,
                    maker.trade_id,
                    maker.last_price,
                    maker.last_qty
                ),
                (resting.order_id, taker.trade_id, price, 5)
            );
            *acks.entry(engine.clone()).or_default() += 2;
            *fills.entry(engine).or_default() += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let per_engine = ROUNDS * 2 * 2;
    assert_eq!(
        acks,
        BTreeMap::from([(A.into(), per_engine), (B.into(), per_engine)])
    );
    assert_eq!(
        fills,
        BTreeMap::from([(A.into(), per_engine / 2), (B.into(), per_engine / 2)])
    );
    // Each engine numbers only its own instruments.
    assert_eq!(alice.id_on(A, "MSFT"), None);
    assert_eq!(alice.id_on(B, "AAPL"), None);

    // An instrument neither owns: refused by the router, naming it; nothing is sent.
    let tsla = Command::New(NewOrder::limit(0, 0, 9_001, Side::Buy, 1_000_000, 1));
    let e = alice.send("TSLA", &tsla).unwrap_err();
    assert!(
        matches!(&e, RouteError::Unowned { symbol } if symbol == "TSLA"),
        "{e}"
    );
    assert!(e.to_string().contains("instrument TSLA"), "{e}");

    // A misrouted order (MSFT's id on eq-b, sent to eq-a by hand): eq-a rejects it as an
    // unknown instrument, names it in the report, and carries on.
    let msft_on_b = alice.id_on(B, "MSFT").unwrap();
    let misrouted = Command::New(NewOrder::limit(
        0,
        msft_on_b,
        9_002,
        Side::Buy,
        4_200_000,
        1,
    ));
    alice.client(A).unwrap().send(&misrouted).unwrap();
    let r = alice.client(A).unwrap().next_report(WAIT).unwrap();
    assert_eq!(
        (
            r.exec_type,
            r.client_order_id,
            r.symbol,
            r.reject_reason,
            r.reason_text
        ),
        (
            ExecType::Rejected,
            9_002,
            Some(msft_on_b),
            Some(RejectReason::UnknownSymbol),
            "unknown_symbol"
        ),
        "{r:?}"
    );

    // One resting order per engine, then a mass cancel sent to each engine: each answers.
    for (symbol, coid) in [("AAPL", 9_003), ("NVDA", 9_004)] {
        let sell = Command::New(NewOrder::limit(0, 0, coid, Side::Sell, prices[symbol], 1));
        let engine = alice.send(symbol, &sell).unwrap().to_string();
        report(&mut alice, &engine, symbol, coid, ExecType::Accepted);
    }
    assert_eq!(alice.mass_cancel_everywhere(9_005).unwrap(), [A, B]);
    for (engine, symbol) in [(A, "AAPL"), (B, "NVDA")] {
        let mut seen = Vec::new();
        while !seen.contains(&ExecType::MassCancelled) {
            let r = alice.client(engine).unwrap().next_report(WAIT).unwrap();
            if r.exec_type == ExecType::Cancelled {
                assert_eq!(
                    r.symbol.and_then(|id| alice.symbol_on(engine, id)),
                    Some(symbol)
                );
            }
            seen.push(r.exec_type);
        }
        assert!(seen.contains(&ExecType::Cancelled), "{engine}: {seen:?}");
    }

    drop(alice);
    drop(bob);
    let (code_a, _, err_a) = engine_a.stop();
    let (code_b, _, err_b) = engine_b.stop();
    assert_eq!((code_a, code_b), (0, 0), "{err_a:?}\n{err_b:?}");

    // Each journal holds its own instruments only, and replays to the state it stopped in.
    for (dir, config, owned) in [(&dir_a, &config_a, &A_OWNS), (&dir_b, &config_b, &B_OWNS)] {
        let data = dir.path().join("data");
        let own: BTreeSet<u64> = veloz_config::Config::load(config)
            .unwrap()
            .instruments()
            .into_iter()
            .map(|i| i.id as u64)
            .collect();
        assert_eq!(journaled_symbols(&data), own, "{}", data.display());
        let trades = trades_by_symbol(&data, config);
        let expected: BTreeMap<String, usize> = owned
            .iter()
            .map(|s| (s.to_string(), ROUNDS as usize))
            .collect();
        assert_eq!(trades, expected, "{}", data.display());
        let (code, out, err) = replay_verify(&data, config);
        assert_eq!(code, Some(0), "{out}{err}");
    }
}

/// docs/scale-out.md, "Moving an instrument": NVDA moves from eq-a to eq-b. eq-b has had
/// NVDA in its configuration (halted) from the start of its data directory, because an
/// engine's instrument set is fixed for the life of its data directory. Halt on eq-a, drain
/// it there, change the map, resume on eq-b; a client still on the old map is refused by
/// eq-a with `instrument_halted`, and both engines restart with the same configurations.
#[test]
fn an_instrument_moves_between_engines_by_halt_drain_map_resume() {
    let _serial = serial();
    let online = veloz_config::preflight::online_cores().unwrap();
    let dir_a = TempDir::new("scale-move-a");
    let dir_b = TempDir::new("scale-move-b");
    let config_a = engine_config(dir_a.path(), &["AAPL", "AMZN", "NVDA"], online[0], true);
    let config_b = engine_config(
        dir_b.path(),
        &["MSFT", "NVDA"],
        *online.last().unwrap(),
        true,
    );
    let engine_a = EngineProcess::start(&config_a);
    let engine_b = EngineProcess::start(&config_b);
    // Before the first order: NVDA is eq-a's; eq-b holds it halted.
    assert_eq!(operator(&engine_b.metrics, "halt", "NVDA"), "applied");
    let map_v1 = EngineMap::from_toml(&map_text(
        &engine_a.addr,
        &["AAPL", "AMZN", "NVDA"],
        &engine_b.addr,
        &["MSFT"],
    ))
    .unwrap();
    let alice_cred = Credential::new(ALICE.0, ALICE.1);
    let bob_cred = Credential::new(BOB.0, BOB.1);
    let mut alice = Router::new(map_v1.clone(), alice_cred.clone());
    let mut bob = Router::new(map_v1, bob_cred.clone());
    let nvda = reference_prices()["NVDA"];
    let new = |coid, side, qty| Command::New(NewOrder::limit(0, 0, coid, side, nvda, qty));

    // Trading on eq-a: 10 resting, 4 taken.
    assert_eq!(alice.send("NVDA", &new(1, Side::Sell, 10)).unwrap(), A);
    report(&mut alice, A, "NVDA", 1, ExecType::Accepted);
    assert_eq!(bob.send("NVDA", &new(2, Side::Buy, 4)).unwrap(), A);
    report(&mut bob, A, "NVDA", 2, ExecType::Accepted);
    report(&mut bob, A, "NVDA", 2, ExecType::Filled);
    report(&mut alice, A, "NVDA", 1, ExecType::PartiallyFilled);

    // 1. Stop trading it on eq-a: new orders are refused, cancels still work.
    assert_eq!(operator(&engine_a.metrics, "halt", "NVDA"), "applied");
    bob.send("NVDA", &new(3, Side::Buy, 1)).unwrap();
    let r = report(&mut bob, A, "NVDA", 3, ExecType::Rejected);
    assert_eq!(r.reject_reason, Some(RejectReason::InstrumentHalted));
    // 2. Drain: the members cancel what rests there (here a mass cancel narrowed to NVDA);
    // the offline replay of the live data directory shows an empty book.
    let cancel = Command::MassCancel(MassCancel::requested(0, 4, None));
    assert_eq!(alice.send("NVDA", &cancel).unwrap(), A);
    let r = report(&mut alice, A, "NVDA", 1, ExecType::Cancelled);
    assert_eq!(r.qty, 6);
    report(&mut alice, A, "NVDA", 4, ExecType::MassCancelled);
    let (code, out, err) = veloz(&[
        "replay",
        "--data",
        engine_a.data.to_str().unwrap(),
        "--config",
        config_a.to_str().unwrap(),
        "--symbol",
        "NVDA",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("NVDA (id 4): 5 commands, 1 trades\n    bids -\n    asks -"),
        "{out}"
    );
    // 3. The new map gives NVDA to eq-b; 4. resume it there.
    let map_v2 =
        EngineMap::from_toml(&map_text(&engine_a.addr, &A_OWNS, &engine_b.addr, &B_OWNS)).unwrap();
    assert_eq!(operator(&engine_b.metrics, "resume", "NVDA"), "applied");
    // Clients that read the new map trade NVDA on eq-b.
    let mut alice_v2 = Router::new(map_v2.clone(), alice_cred);
    let mut bob_v2 = Router::new(map_v2, bob_cred);
    assert_eq!(alice_v2.send("NVDA", &new(5, Side::Sell, 3)).unwrap(), B);
    report(&mut alice_v2, B, "NVDA", 5, ExecType::Accepted);
    assert_eq!(bob_v2.send("NVDA", &new(6, Side::Buy, 3)).unwrap(), B);
    report(&mut bob_v2, B, "NVDA", 6, ExecType::Accepted);
    report(&mut bob_v2, B, "NVDA", 6, ExecType::Filled);
    report(&mut alice_v2, B, "NVDA", 5, ExecType::Filled);
    // A client still on the old map reaches eq-a, which refuses and says why.
    alice.send("NVDA", &new(7, Side::Buy, 1)).unwrap();
    let r = report(&mut alice, A, "NVDA", 7, ExecType::Rejected);
    assert_eq!(r.reason_text, "instrument_halted");
    drop((alice, bob, alice_v2, bob_v2));

    // Both restart with the configurations they had; eq-a keeps NVDA halted.
    let (code_a, _, err_a) = engine_a.stop();
    let (code_b, _, err_b) = engine_b.stop();
    assert_eq!((code_a, code_b), (0, 0), "{err_a:?}\n{err_b:?}");
    let engine_a = EngineProcess::start(&config_a);
    let engine_b = EngineProcess::start(&config_b);
    let map_v2 =
        EngineMap::from_toml(&map_text(&engine_a.addr, &A_OWNS, &engine_b.addr, &B_OWNS)).unwrap();
    let mut alice = Router::new(map_v2, Credential::new(ALICE.0, ALICE.1));
    let nvda_on_a = {
        alice.client(A).unwrap();
        alice.id_on(A, "NVDA").unwrap()
    };
    let stale = Command::New(NewOrder::limit(0, nvda_on_a, 8, Side::Buy, nvda, 1));
    alice.client(A).unwrap().send(&stale).unwrap();
    let r = alice.client(A).unwrap().next_report(WAIT).unwrap();
    assert_eq!(
        (r.exec_type, r.reject_reason),
        (ExecType::Rejected, Some(RejectReason::InstrumentHalted)),
        "{r:?}"
    );
    assert_eq!(alice.send("NVDA", &new(9, Side::Sell, 1)).unwrap(), B);
    report(&mut alice, B, "NVDA", 9, ExecType::Accepted);
    drop(alice);
    let (code_a, _, _) = engine_a.stop();
    let (code_b, _, _) = engine_b.stop();
    assert_eq!((code_a, code_b), (0, 0));
    for (dir, config, nvda_trades) in [(&dir_a, &config_a, 1), (&dir_b, &config_b, 1)] {
        let data = dir.path().join("data");
        assert_eq!(
            trades_by_symbol(&data, config).get("NVDA"),
            Some(&nvda_trades),
            "{}",
            data.display()
        );
        let (code, out, err) = replay_verify(&data, config);
        assert_eq!(code, Some(0), "{out}{err}");
    }

    // Why eq-b had NVDA from the start: an engine's instrument set is fixed for the life of
    // its data directory. With AAPL added, eq-b refuses to start.
    let grown = engine_config(
        dir_b.path(),
        &["AAPL", "MSFT", "NVDA"],
        *online.last().unwrap(),
        true,
    );
    let (why, stderr) = match EngineProcess::try_start(&grown) {
        Ok(_) => panic!("eq-b started with an instrument added to its data directory"),
        Err(refused) => refused,
    };
    let stderr = stderr.join("\n");
    assert!(
        stderr.contains("records state hash") && stderr.contains("but replaying the journal"),
        "{why}\n{stderr}"
    );
}

/// One engine down stops only its own instruments: with eq-b killed (SIGKILL), eq-a trades
/// on and a client logging on now is refused for NVDA only, naming eq-b; eq-b restarts
/// alone from its journal with its resting order.
#[test]
fn one_engine_down_stops_only_its_instruments() {
    let _serial = serial();
    let online = veloz_config::preflight::online_cores().unwrap();
    let dir_a = TempDir::new("scale-down-a");
    let dir_b = TempDir::new("scale-down-b");
    let config_a = engine_config(dir_a.path(), &A_OWNS, online[0], false);
    let config_b = engine_config(dir_b.path(), &B_OWNS, *online.last().unwrap(), false);
    let engine_a = EngineProcess::start(&config_a);
    let engine_b = EngineProcess::start(&config_b);
    let map = |b_addr: &str| {
        EngineMap::from_toml(&map_text(&engine_a.addr, &A_OWNS, b_addr, &B_OWNS)).unwrap()
    };
    let alice_cred = Credential::new(ALICE.0, ALICE.1);
    let prices = reference_prices();
    let order = |coid, side, symbol: &str| {
        Command::New(NewOrder::limit(0, 0, coid, side, prices[symbol], 2))
    };
    let mut alice = Router::new(map(&engine_b.addr), alice_cred.clone());
    alice.send("AAPL", &order(1, Side::Sell, "AAPL")).unwrap();
    report(&mut alice, A, "AAPL", 1, ExecType::Accepted);
    alice.send("NVDA", &order(2, Side::Sell, "NVDA")).unwrap();
    report(&mut alice, B, "NVDA", 2, ExecType::Accepted);

    let b_addr = engine_b.addr.clone();
    engine_b.kill9();
    // eq-a trades on, for a client that was connected and for one that logs on now.
    let mut bob = Router::new(map(&b_addr), bob_credential());
    bob.send("AAPL", &order(3, Side::Buy, "AAPL")).unwrap();
    report(&mut bob, A, "AAPL", 3, ExecType::Accepted);
    report(&mut bob, A, "AAPL", 3, ExecType::Filled);
    report(&mut alice, A, "AAPL", 1, ExecType::Filled);
    let e = bob.send("NVDA", &order(4, Side::Buy, "NVDA")).unwrap_err();
    assert!(
        matches!(&e, RouteError::Logon { engine, .. } if engine == B),
        "{e}"
    );
    let says = format!("engine eq-b at {b_addr}: logon of account 2 failed");
    assert!(e.to_string().starts_with(&says), "{e}");

    // eq-b comes back alone (a new port here: the test's engines listen on any free one),
    // its resting NVDA order recovered from its journal.
    let engine_b = EngineProcess::start(&config_b);
    let mut bob = Router::new(map(&engine_b.addr), bob_credential());
    bob.send("NVDA", &order(5, Side::Buy, "NVDA")).unwrap();
    report(&mut bob, B, "NVDA", 5, ExecType::Accepted);
    let fill = report(&mut bob, B, "NVDA", 5, ExecType::Filled);
    assert_eq!(fill.last_qty, 2);
    drop((alice, bob));
    let (code_a, _, _) = engine_a.stop();
    let (code_b, _, _) = engine_b.stop();
    assert_eq!((code_a, code_b), (0, 0));
    for (dir, config) in [(&dir_a, &config_a), (&dir_b, &config_b)] {
        let data = dir.path().join("data");
        let (code, out, err) = replay_verify(&data, config);
        assert_eq!(code, Some(0), "{out}{err}");
    }
}

fn bob_credential() -> Credential {
    Credential::new(BOB.0, BOB.1)
}
