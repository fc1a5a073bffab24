//! `veloz serve` end to end: a real process, real loopback TCP, the default instruments
//! spread over every online core's shard.
//!
//! Each test holds `common::serial()` so busy-polling engines never run side by side.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use veloz_config::routing::Routing;
use veloz_core::*;
use veloz_load::client::{Client, ClientError, Received};
use veloz_wire::{ExecType, ExecutionReport, Liquidity, LogoutReason};

const WAIT: Duration = Duration::from_secs(10);

fn shards_online() -> usize {
    veloz_config::preflight::online_cores().unwrap().len()
}

/// Shard of a session, from its session id.
fn shard_of_session(id: u64) -> usize {
    (id >> 48) as usize
}

/// Log `account` on until it has a session on every shard (a connection lands on a shard
/// with the fewest sessions); returns one client per shard.
fn sessions_on_every_shard(addr: &str, account: (AccountId, &str)) -> Vec<Client> {
    let n = shards_online();
    let mut by_shard: BTreeMap<usize, Client> = BTreeMap::new();
    for _ in 0..200 {
        let (c, id) = Client::logon(addr, account.0, account.1).unwrap();
        by_shard.entry(shard_of_session(id)).or_insert(c);
        if by_shard.len() == n {
            return by_shard.into_values().collect();
        }
    }
    panic!(
        "200 connections did not reach all {n} shards: {:?}",
        by_shard.keys()
    );
}

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(WAIT).unwrap()
}

#[test]
fn cross_shard_orders_reach_both_sides_of_each_trade() {
    let _serial = serial();
    let dir = TempDir::new("e2e-cross");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let config = veloz_config::Config::default();
    let routing = Routing::from_config(&config, shards_online()).unwrap();
    let mut alices = sessions_on_every_shard(&engine.addr, ALICE);
    let mut bobs = sessions_on_every_shard(&engine.addr, BOB);
    let mut coid = 100;
    // For every (alice shard, bob shard, instrument): alice rests, bob crosses. Every
    // session of an account gets the account's whole stream: the other sessions of alice
    // and bob get the very same reports.
    for a in 0..alices.len() {
        for b in 0..bobs.len() {
            for inst in config.instruments() {
                coid += 1;
                let price = inst.reference_price;
                let alice = &mut alices[a];
                alice
                    .send(&limit(inst.id, coid, Side::Sell, price, 5))
                    .unwrap();
                let acc = report(alice);
                assert_eq!(
                    (acc.exec_type, acc.client_order_id),
                    (ExecType::Accepted, coid),
                    "{acc:?}"
                );
                let resting = acc.order_id;
                assert_eq!(
                    (resting >> 48) as usize,
                    routing.shard_of(inst.id).unwrap(),
                    "order ids carry the owning shard"
                );
                let bob = &mut bobs[b];
                bob.send(&limit(inst.id, coid + 10_000, Side::Buy, price, 5))
                    .unwrap();
                let bob_acc = report(bob);
                assert_eq!(bob_acc.exec_type, ExecType::Accepted, "{bob_acc:?}");
                let taker = report(bob);
                assert_eq!(
                    (
                        taker.exec_type,
                        taker.liquidity,
                        taker.last_qty,
                        taker.last_price,
                        taker.leaves_qty
                    ),
                    (ExecType::Filled, Liquidity::Taker, 5, price, 0),
                    "bob's fill for {} on shard {b}: {taker:?}",
                    inst.symbol
                );
                let maker = report(&mut alices[a]);
                assert_eq!(
                    (
                        maker.exec_type,
                        maker.liquidity,
                        maker.order_id,
                        maker.trade_id
                    ),
                    (ExecType::Filled, Liquidity::Maker, resting, taker.trade_id),
                    "alice's fill for {} on shard {a}: {maker:?}",
                    inst.symbol
                );
                assert_eq!(
                    maker.stream_seq,
                    acc.stream_seq + 1,
                    "alice's stream has a gap"
                );
                for (i, other) in alices.iter_mut().enumerate().filter(|(i, _)| *i != a) {
                    let got = [report(other), report(other)];
                    assert_eq!(got, [acc, maker], "alice's session {i} mirrors session {a}");
                }
                for (i, other) in bobs.iter_mut().enumerate().filter(|(i, _)| *i != b) {
                    let got = [report(other), report(other)];
                    assert_eq!(
                        got,
                        [bob_acc, taker],
                        "bob's session {i} mirrors session {b}"
                    );
                }
            }
        }
    }
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn authentication_authorisation_and_bad_input_leave_the_engine_serving() {
    let _serial = serial();
    let dir = TempDir::new("e2e-bad");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", "max_bad_messages = 3"));
    let addr = engine.addr.clone();

    // Wrong token, unknown account: refused with a reason, the token never echoed.
    for (account, token) in [(1, "demo-bob"), (99, "demo-alice")] {
        match Client::logon(&addr, account, token) {
            Err(ClientError::LogonRefused { reason, text, .. }) => {
                assert_eq!(reason, LogoutReason::AuthenticationFailed);
                assert!(!text.contains(token));
            }
            other => panic!(
                "logon {account} should be refused: {:?}",
                other.map(|c| c.1)
            ),
        }
    }
    // An order before logon: rejected with NotLoggedOn, and nothing reaches a book.
    let mut early = Client::connect(&addr).unwrap();
    early.send(&limit(1, 41, Side::Buy, 1_900_000, 1)).unwrap();
    let r = report(&mut early);
    assert_eq!(
        (r.exec_type, r.reject_reason, r.client_order_id),
        (ExecType::Rejected, Some(RejectReason::NotLoggedOn), 41)
    );

    let (mut alice, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    alice.send(&limit(1, 7, Side::Buy, 1_890_000, 3)).unwrap();
    let mine = report(&mut alice);
    assert_eq!(mine.exec_type, ExecType::Accepted);
    // Bob may not cancel or replace Alice's order.
    bob.send(&cancel(1, 8, mine.order_id)).unwrap();
    let r = report(&mut bob);
    assert_eq!(
        (r.exec_type, r.reject_reason),
        (ExecType::Rejected, Some(RejectReason::NotOrderOwner))
    );
    bob.send(&Command::Replace(ReplaceOrder {
        account: 0,
        symbol: 1,
        client_order_id: 9,
        order_id: mine.order_id,
        price: 1_880_000,
        qty: 3,
    }))
    .unwrap();
    let r = report(&mut bob);
    assert_eq!(r.reject_reason, Some(RejectReason::NotOrderOwner));
    // Unknown symbol, off-tick price: rejected with reasons, the session stays up.
    bob.send(&limit(77, 10, Side::Buy, 1_000, 1)).unwrap();
    let r = report(&mut bob);
    assert_eq!(
        (r.reject_reason, r.client_order_id, r.reason_text),
        (Some(RejectReason::UnknownSymbol), 10, "unknown_symbol")
    );
    bob.send(&limit(1, 11, Side::Buy, 1_890_050, 1)).unwrap();
    assert_eq!(
        report(&mut bob).reject_reason,
        Some(RejectReason::PriceOffTick)
    );

    // Malformed frames: a reject each, then a logout after max_bad_messages.
    let garbage = [12u8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let (mut mallory, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    for _ in 0..3 {
        mallory.send_raw(&garbage).unwrap();
        let r = report(&mut mallory);
        assert_eq!(
            r.reject_reason,
            Some(RejectReason::MalformedMessage),
            "{r:?}"
        );
    }
    // The one too many: answered like the others, then the logout.
    mallory.send_raw(&garbage).unwrap();
    let r = report(&mut mallory);
    assert_eq!(r.reject_reason, Some(RejectReason::MalformedMessage));
    match mallory.recv_within(WAIT, "logout").unwrap() {
        Received::Logout { reason, .. } => assert_eq!(reason, LogoutReason::ProtocolViolation),
        other => panic!("{other:?}"),
    }
    // An oversized frame: rejected as FrameTooLarge and logged out at once, before the body
    // is read.
    let (mut big, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    big.send_raw(&(1u32 << 30).to_le_bytes()).unwrap();
    let r = report(&mut big);
    assert_eq!(
        (r.exec_type, r.reject_reason),
        (ExecType::Rejected, Some(RejectReason::FrameTooLarge)),
        "{r:?}"
    );
    assert_eq!(r.reason_text, "frame_too_large", "{r:?}");
    match big.recv_within(WAIT, "logout").unwrap() {
        Received::Logout { reason, text } => {
            assert_eq!(reason, LogoutReason::ProtocolViolation);
            assert!(text.contains("1073741824"), "{text}");
        }
        other => panic!("{other:?}"),
    }

    // The engine still serves: alice cancels her order.
    alice.send(&cancel(1, 12, mine.order_id)).unwrap();
    let r = report(&mut alice);
    assert_eq!(
        (r.exec_type, r.cancel_reason, r.qty),
        (ExecType::Cancelled, Some(CancelReason::Requested), 3)
    );
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0);
    let all = stderr.join("\n");
    assert!(
        !all.contains("demo-alice") && !all.contains("demo-bob"),
        "a token reached the log:\n{all}"
    );
    // Only the valid commands reached the journals: 1 new + 2 rejected by the book (owner
    // checks) + 1 off-tick + 1 cancel = 5; unknown symbols and garbage never did. Each
    // shard's last sequence also counts its clean-shutdown checkpoint record.
    let stopped: Vec<u64> = stderr
        .iter()
        .filter_map(|l| l.split("stopped at sequence ").nth(1))
        .map(|rest| rest.split(',').next().unwrap().parse::<u64>().unwrap())
        .collect();
    assert_eq!(stopped.len(), shards_online(), "{all}");
    assert_eq!(
        stopped.iter().sum::<u64>() - stopped.len() as u64,
        5,
        "{all}"
    );
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_others_keep_trading() {
    let _serial = serial();
    let dir = TempDir::new("e2e-slow");
    let engine = EngineProcess::start(&test_config(
        dir.path(),
        "none",
        "outbound_limit_bytes = 65536",
    ));
    let addr = engine.addr.clone();
    let (mut slow, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let (mut fast, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    // The slow client floods orders and reads nothing; its reports pile up in the kernel
    // socket buffers, then in the engine's bounded outbound buffer.
    let writer = std::thread::spawn(move || {
        let mut sent = 0u64;
        for i in 0..400_000u64 {
            // Far from the market (and off the band's edge), so nothing trades.
            let cmd = limit(
                2,
                1_000_000 + i,
                Side::Buy,
                2_000_000 + 100 * (i % 50) as i64,
                1,
            );
            if slow.send(&cmd).is_err() {
                break;
            }
            sent += 1;
        }
        (slow, sent)
    });
    // Meanwhile the other client's orders are answered.
    for i in 0..200 {
        fast.send(&limit(3, i, Side::Sell, 4_300_000, 1)).unwrap();
        let r = report(&mut fast);
        assert_eq!(
            (r.exec_type, r.client_order_id),
            (ExecType::Accepted, i),
            "{r:?}"
        );
    }
    let (mut slow, sent) = writer.join().unwrap();
    assert!(
        sent < 400_000,
        "the slow client was never disconnected ({sent} orders sent)"
    );
    // Its connection is gone: whatever it still reads ends in a close or reset (a Logout
    // with the reason arrives only if it fit into the socket; it is not required).
    let end = loop {
        match slow.recv(Duration::from_secs(5)) {
            Ok(Some(Received::Logout { reason, .. })) => break Ok(reason),
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the slow client's connection is still open"),
            Err(e) => break Err(e),
        }
    };
    match end {
        Ok(reason) => assert_eq!(reason, LogoutReason::SlowConsumer),
        Err(ClientError::Closed { .. }) | Err(ClientError::Io { .. }) => {}
        Err(e) => panic!("unexpected end of the slow client's session: {e}"),
    }
    fast.send(&limit(3, 999, Side::Sell, 4_300_000, 1)).unwrap();
    assert_eq!(report(&mut fast).exec_type, ExecType::Accepted);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0);
    assert!(
        stderr.iter().any(|l| l.contains("slow consumer")),
        "{}",
        stderr.join("\n")
    );
}

#[test]
fn clean_restart_keeps_state_and_resting_orders() {
    let _serial = serial();
    let dir = TempDir::new("e2e-restart");
    let config = test_config(dir.path(), "group", "");
    let engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let mut resting = Vec::new();
    for (i, inst) in veloz_config::Config::default()
        .instruments()
        .iter()
        .enumerate()
    {
        alice
            .send(&limit(
                inst.id,
                i as u64,
                Side::Buy,
                inst.reference_price - 100,
                10,
            ))
            .unwrap();
        let r = report(&mut alice);
        assert_eq!(r.exec_type, ExecType::Accepted);
        resting.push((inst.id, r.order_id));
    }
    let (code, stdout, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let marker = veloz_engine::ShutdownMarker::read(&dir.path().join("data"))
        .expect("clean-shutdown marker");
    let hashes: Vec<String> = stdout
        .iter()
        .filter(|l| l.contains("clean shutdown at sequence"))
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        hashes,
        marker
            .shards
            .iter()
            .map(|s| s.state_hash.clone())
            .collect::<Vec<_>>()
    );

    // Restart: each shard recovers to the recorded state, then the old orders cancel.
    let mut engine = EngineProcess::start(&config);
    std::thread::sleep(Duration::from_millis(200));
    engine.collect();
    let matched = engine
        .stderr_lines
        .iter()
        .filter(|l| l.contains("state matches the clean shutdown"))
        .count();
    assert_eq!(
        matched,
        marker.shards.len(),
        "{}",
        engine.stderr_lines.join("\n")
    );
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for (i, (symbol, order_id)) in resting.iter().enumerate() {
        alice
            .send(&cancel(*symbol, 100 + i as u64, *order_id))
            .unwrap();
        let r = report(&mut alice);
        assert_eq!(
            (r.exec_type, r.order_id, r.qty),
            (ExecType::Cancelled, *order_id, 10),
            "{r:?}"
        );
    }
    let (code, _, _) = engine.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_restart_that_would_move_an_instrument_is_refused() {
    let _serial = serial();
    if shards_online() < 2 {
        return; // one shard owns everything: nothing can move
    }
    let dir = TempDir::new("e2e-reroute");
    let config = test_config(dir.path(), "none", "");
    let engine = EngineProcess::start(&config);
    assert_eq!(engine.stop().0, 0);
    // Pin AAPL (id 1, shard 0 by position) to shard 1.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "symbol = \"AAPL\"",
        "symbol = \"AAPL\"\nshard = 1",
        1,
    );
    std::fs::write(&config, text).unwrap();
    match EngineProcess::try_start(&config) {
        Ok(_) => panic!("a start that moves AAPL must be refused"),
        Err((_, stderr)) => {
            let all = stderr.join("\n");
            assert!(all.contains("instrument AAPL (id 1) is recorded on shard 0 but the config would route it to shard 1"), "{all}");
        }
    }
}

/// The Python client (flatc-generated code + the flatbuffers PyPI package) against the
/// engine: the protocol is usable from another language.
#[test]
fn python_client_logs_on_trades_and_cancels() {
    let _serial = serial();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = python("flatbuffers");
    let dir = TempDir::new("e2e-python");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&python)
            .arg(root.join("scripts/veloz_client.py"))
            .args([
                "--connect",
                &engine.addr,
                "--account",
                "1",
                "--token",
                "demo-alice",
            ])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status.code(),
            lines,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, lines, err) = run(&[
        "session", "--symbol", "1", "--price", "189.00", "--orders", "3",
    ]);
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.get("exec_type")
                .or(l.get("type"))
                .unwrap()
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "LogonAck",
            "Accepted",
            "Accepted",
            "Accepted",
            "Cancelled",
            "Cancelled",
            "Cancelled",
            "Logout"
        ]
    );
    assert_eq!(lines[0]["instruments"][0]["symbol"], "AAPL");
    // One resting order from Python, crossed by a Rust client: the Python side's reports.
    let (code, lines, err) = run(&[
        "order", "--symbol", "3", "--side", "sell", "--price", "420.00", "--qty", "4", "--coid",
        "77",
    ]);
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    assert_eq!(lines[1]["exec_type"], "Accepted");
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    bob.send(&limit(3, 1, Side::Buy, 4_200_000, 4)).unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);
    let fill = report(&mut bob);
    assert_eq!(
        (fill.exec_type, fill.last_qty, fill.last_price),
        (ExecType::Filled, 4, 4_200_000)
    );
    // A refused logon gives a Logout with its reason, and exit status 1.
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/veloz_client.py"))
        .args([
            "--connect",
            &engine.addr,
            "--account",
            "1",
            "--token",
            "wrong",
            "cancel",
            "--symbol",
            "1",
            "--order-id",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["reason"], "AuthenticationFailed");
    assert_eq!(engine.stop().0, 0);
}

#[test]
fn heartbeats_flow_and_silent_sessions_are_closed() {
    let _serial = serial();
    let dir = TempDir::new("e2e-heartbeat");
    let extra = "logon_timeout_ms = 400";
    let config = test_config(dir.path(), "none", extra);
    // Shorter heartbeat and idle timeout than the harness default.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("heartbeat_ms = 1000", "heartbeat_ms = 100")
        .replace("idle_timeout_ms = 30000", "idle_timeout_ms = 700");
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start(&config);
    // A connection that never logs on is logged out after logon_timeout_ms.
    let mut mute = Client::connect(&engine.addr).unwrap();
    match mute.recv_within(WAIT, "logout").unwrap() {
        Received::Logout { reason, text } => {
            assert_eq!(
                (reason, text.as_str()),
                (LogoutReason::ProtocolViolation, "no logon in time")
            )
        }
        other => panic!("{other:?}"),
    }
    // A logged-on client that stays silent receives heartbeats, then is logged out.
    let (mut silent, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    // A client that heartbeats keeps its session.
    let (mut alive, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    let mut heartbeats = 0;
    let reason = loop {
        alive.heartbeat().unwrap();
        match silent.recv(Duration::from_millis(100)).unwrap() {
            Some(Received::Heartbeat) => heartbeats += 1,
            Some(Received::Logout { reason, .. }) => break reason,
            Some(other) => panic!("{other:?}"),
            None => {}
        }
    };
    assert_eq!(reason, LogoutReason::HeartbeatTimeout);
    assert!(
        heartbeats >= 2,
        "only {heartbeats} heartbeats before the idle logout"
    );
    alive.send(&limit(1, 1, Side::Buy, 1_890_000, 1)).unwrap();
    assert_eq!(report(&mut alive).exec_type, ExecType::Accepted);
    assert_eq!(engine.stop().0, 0);
}

/// Rings of 2 slots: cross-shard bursts keep filling them. Every command is still answered
/// (backpressure pauses the session, nothing is dropped), the ring-full events are counted,
/// and SIGTERM still drains and stops cleanly.
#[test]
fn full_rings_pause_sessions_and_lose_nothing() {
    let _serial = serial();
    if shards_online() < 2 {
        return; // one shard: no ring to fill
    }
    let dir = TempDir::new("e2e-rings");
    let config = test_config(dir.path(), "none", "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[engine]\n",
        "[engine]\nring_slots = 2\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start(&config);
    let routing = Routing::from_config(&veloz_config::Config::default(), shards_online()).unwrap();
    let (mut c, session) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let home = shard_of_session(session);
    let inst = veloz_config::Config::default()
        .instruments()
        .into_iter()
        .find(|i| routing.shard_of(i.id) != Some(home))
        .unwrap();
    let mut coid = 0u64;
    for _burst in 0..15 {
        for _ in 0..200 {
            coid += 1;
            let price = inst.reference_price - inst.tick_size * (1 + (coid % 20) as i64);
            c.send(&limit(inst.id, coid, Side::Buy, price, 1)).unwrap();
        }
        for _ in 0..200 {
            let r = report(&mut c);
            assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");
        }
    }
    std::thread::sleep(Duration::from_millis(400));
    let metrics = {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(&engine.metrics).unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    let ring_full: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("veloz_ring_full_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(ring_full > 0.0, "the 2-slot rings never filled:\n{metrics}");
    // Another burst left unread, then SIGTERM: the engine drains and exits.
    for _ in 0..500 {
        coid += 1;
        c.send(&limit(
            inst.id,
            coid,
            Side::Buy,
            inst.reference_price - inst.tick_size,
            1,
        ))
        .unwrap();
    }
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
