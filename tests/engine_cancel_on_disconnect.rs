//! Cancel-on-disconnect over real loopback TCP against a real `veloz serve`: when an
//! account's last session goes (a closed socket, a heartbeat timeout), its resting orders
//! are cancelled on every shard, journaled like any cancel; the reports wait in the
//! account's stream for its next logon; and replaying the journal reproduces the state.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use veloz_core::{CancelReason, Side};
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport, FrameEncoder, Logon};

const T: Duration = Duration::from_secs(10);

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

/// Log on with an explicit cancel-on-disconnect choice (`None`: the account's default).
fn logon(addr: &str, who: (u32, &str), cod: Option<bool>) -> Client {
    logon_full(addr, who, cod, None).0
}

/// Log on with every option; returns the client and the account's stream count.
fn logon_full(
    addr: &str,
    who: (u32, &str),
    cod: Option<bool>,
    resume_after: Option<Vec<u64>>,
) -> (Client, usize) {
    let mut c = Client::connect(addr).unwrap();
    let frame = FrameEncoder::new()
        .logon_with(&Logon {
            cancel_on_disconnect: cod,
            resume_after,
            ..Logon::new(who.0, who.1)
        })
        .to_vec();
    c.send_raw(&frame).unwrap();
    match c.recv_within(T, "LogonAck").unwrap() {
        Received::LogonAck { streams, .. } => (c, streams as usize),
        other => panic!("logon: {other:?}"),
    }
}

/// One resting buy per instrument, far from the market: (symbol, order id).
fn rest_everywhere(c: &mut Client, coid0: u64) -> Vec<(u32, u64)> {
    let config = veloz_config::Config::default();
    config
        .instruments()
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let price = inst.reference_price - 50 * inst.tick_size;
            c.send(&limit(inst.id, coid0 + i as u64, Side::Buy, price, 1))
                .unwrap();
            let r = report(c);
            assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");
            (inst.id, r.order_id)
        })
        .collect()
}

/// Every report of `who`'s streams after their start, through a resuming logon (with
/// cancel-on-disconnect off, so that looking cancels nothing); then logs out.
fn whole_stream(addr: &str, who: (u32, &str)) -> Vec<ExecutionReport<'static>> {
    // An empty resume vector: every stream from its start.
    let (mut c, streams) = logon_full(addr, who, Some(false), Some(Vec::new()));
    let mut reports = Vec::new();
    let mut resumed = 0;
    while resumed < streams {
        match c.recv_within(T, "resend").unwrap() {
            Received::Report(r) => reports.push(r),
            Received::StreamResumed(_) => resumed += 1,
            other => panic!("{other:?}"),
        }
    }
    c.logout().unwrap();
    reports
}

/// The orders of `who` cancelled by cancel-on-disconnect, and the MassCancelled count per
/// stream, from its whole stream.
fn cod_cancels(reports: &[ExecutionReport<'_>]) -> (Vec<u64>, BTreeMap<u16, u32>) {
    let mut cancelled: Vec<u64> = reports
        .iter()
        .filter(|r| r.cancel_reason == Some(CancelReason::CancelOnDisconnect))
        .map(|r| r.order_id)
        .collect();
    cancelled.sort_unstable();
    let done = reports
        .iter()
        .filter(|r| r.exec_type == ExecType::MassCancelled && r.client_order_id == 0)
        .map(|r| (r.stream, r.mass_cancel_count))
        .collect();
    (cancelled, done)
}

fn ids(orders: &[(u32, u64)]) -> Vec<u64> {
    let mut v: Vec<u64> = orders.iter().map(|o| o.1).collect();
    v.sort_unstable();
    v
}

/// Wait until `pred` holds for alice's cancel-on-disconnect reports (the cancel follows
/// the disconnect asynchronously).
fn wait_for_cancels(addr: &str, want: &[u64]) -> Vec<ExecutionReport<'static>> {
    let deadline = Instant::now() + T;
    loop {
        let all = whole_stream(addr, ALICE);
        if cod_cancels(&all).0 == want || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_closed_socket_cancels_the_last_sessions_orders_and_replay_agrees() {
    let _serial = serial();
    let dir = TempDir::new("cod-close");
    let config = test_config(dir.path(), "group", "");
    let engine = EngineProcess::start(&config);
    let addr = engine.addr.clone();

    // Two sessions with cancel-on-disconnect: the first one's end cancels nothing.
    let mut one = logon(&addr, ALICE, Some(true));
    let mut two = logon(&addr, ALICE, Some(true));
    let orders = rest_everywhere(&mut one, 100);
    for _ in &orders {
        report(&mut two); // the mirrored Accepted
    }
    drop(one);
    std::thread::sleep(Duration::from_millis(300));
    let config_v = veloz_config::Config::default();
    let first = &config_v.instruments()[0];
    two.send(&limit(
        first.id,
        900,
        Side::Buy,
        first.reference_price - 60 * first.tick_size,
        1,
    ))
    .unwrap();
    let r = report(&mut two);
    assert_eq!(
        (r.exec_type, r.client_order_id),
        (ExecType::Accepted, 900),
        "with a session left nothing is cancelled: {r:?}"
    );
    // A monitor without cancel-on-disconnect neither holds the cancel up nor triggers it:
    // when the last protected session's socket closes without a Logout, everything is
    // cancelled, and the monitor sees it live.
    let (mut monitor, shards) = logon_full(&addr, ALICE, Some(false), None);
    drop(two);
    let mut want = ids(&orders);
    want.push(r.order_id);
    want.sort_unstable();
    let mut seen = Vec::new();
    let mut mass_cancelled = 0;
    while mass_cancelled < shards {
        let r = report(&mut monitor);
        match r.exec_type {
            ExecType::Cancelled => seen.push(r.order_id),
            ExecType::MassCancelled => mass_cancelled += 1,
            other => panic!("the monitor got {other:?}: {r:?}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, want, "the monitor sees every cancel live");
    monitor.logout().unwrap();
    let all = wait_for_cancels(&addr, &want);
    let (cancelled, done) = cod_cancels(&all);
    assert_eq!(cancelled, want, "every resting order cancelled once");
    let total: u32 = done.values().sum();
    assert_eq!(
        total as usize,
        want.len(),
        "MassCancelled per shard: {done:?}"
    );
    // The book agrees: Bob's sell at alice's price rests instead of trading.
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    bob.send(&limit(
        first.id,
        5,
        Side::Sell,
        first.reference_price - 50 * first.tick_size,
        1,
    ))
    .unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);
    assert!(
        bob.next_report(Duration::from_millis(300)).is_err(),
        "nothing left to trade with"
    );
    bob.logout().unwrap();

    let data = engine.data.clone();
    let (code, stdout, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    // The cancels were journaled: the offline replay verifies the live state hashes.
    let (rc, out, err) = replay_verify(&data, &config);
    assert_eq!(
        rc,
        Some(0),
        "replay --verify: {out}\n{err}\nengine: {stdout:?}"
    );
}

#[test]
fn a_heartbeat_timeout_cancels_and_the_account_default_applies() {
    let _serial = serial();
    let dir = TempDir::new("cod-timeout");
    let config = test_config(dir.path(), "none", "");
    // A short heartbeat; Alice's account turns cancel-on-disconnect on, Bob's stays off.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replacen("heartbeat_ms = 1000", "heartbeat_ms = 100", 1)
        .replacen("idle_timeout_ms = 30000", "idle_timeout_ms = 400", 1);
    let alice = text.find("name = \"alice\"").expect("alice in the config");
    let at = alice
        + text[alice..]
            .find("cancel_on_disconnect = false")
            .expect("the account's cancel_on_disconnect");
    let text = format!(
        "{}cancel_on_disconnect = true{}",
        &text[..at],
        &text[at + "cancel_on_disconnect = false".len()..]
    );
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start(&config);
    let addr = engine.addr.clone();

    // Alice logs on with the account default and goes silent: the engine times her out.
    let mut silent = logon(&addr, ALICE, None);
    let orders = rest_everywhere(&mut silent, 200);
    let deadline = Instant::now() + T;
    loop {
        match silent.recv_within(T, "the engine's Logout") {
            Ok(Received::Logout { reason, .. }) => {
                assert_eq!(reason, veloz_wire::LogoutReason::HeartbeatTimeout);
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "no heartbeat timeout"),
            Err(e) => panic!("{e}"),
        }
    }
    let all = wait_for_cancels(&addr, &ids(&orders));
    assert_eq!(cod_cancels(&all).0, ids(&orders));

    // A Logon that turns it off for its session keeps the orders when it goes.
    let mut keep = logon(&addr, ALICE, Some(false));
    let kept = rest_everywhere(&mut keep, 300);
    keep.logout().unwrap();
    drop(keep);
    // Bob (default off) also keeps his.
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();
    let bobs = rest_everywhere(&mut bob, 400);
    drop(bob);
    std::thread::sleep(Duration::from_millis(500));
    let (cancelled, _) = cod_cancels(&whole_stream(&addr, ALICE));
    assert_eq!(
        cancelled,
        ids(&orders),
        "orders of an opted-out session stay"
    );
    let (bob_cancelled, _) = cod_cancels(&whole_stream(&addr, BOB));
    assert!(
        bob_cancelled.is_empty(),
        "bob's orders stay: {bob_cancelled:?}"
    );
    assert_eq!((kept.len(), bobs.len()), (orders.len(), orders.len()));

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
