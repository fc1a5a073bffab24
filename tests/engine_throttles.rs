//! The gateway's throttles over a real engine process on loopback (issue 11, part 4):
//! - a session over its order rate gets `Throttled` (104) rejects with its client order
//!   ids, stays logged on, and is served again once its bucket refills;
//! - a wrong-token flood against one account backs the account off: it costs the engine
//!   little CPU and a handful of log lines, other accounts log on meanwhile, and the flooded
//!   account logs on again once its back-off is over;
//! - connections from one address that have not logged on are bounded: the extra ones are
//!   closed at once, the first ones still log on.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use veloz_core::{RejectReason, Side};
use veloz_load::client::{Client, ClientError, Received};
use veloz_wire::{ExecType, FrameEncoder, LogoutReason};

const WAIT: Duration = Duration::from_secs(10);
const WRONG_TOKEN: &str = "wrong-token-0b7e";

/// Scrape the metrics socket: the sum of every series of `name`.
fn metric(addr: &str, name: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: veloz\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `veloz_rejects_total{reason="throttled"}` summed over the shards.
fn throttled_total(addr: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: veloz\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with("veloz_rejects_total{") && l.contains("reason=\"throttled\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Wait until the metric reaches `want` (shards publish every `interval_ms`).
fn metric_reaches(addr: &str, name: &str, want: f64) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = metric(addr, name);
        if v >= want || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The engine's CPU time so far, in clock ticks (utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_s() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn start(dir: &Path, gateway: &str) -> EngineProcess {
    EngineProcess::start(&test_config(dir, "none", gateway))
}

/// The same with shards that park as soon as they are idle (`spin_us = 0`), so that the
/// engine's CPU time is the work it did, not its busy-polling.
fn start_parking(dir: &Path, gateway: &str) -> EngineProcess {
    let config = test_config(dir, "none", gateway);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("spin_us = 500\n"), "{text}");
    std::fs::write(&config, text.replace("spin_us = 500\n", "spin_us = 0\n")).unwrap();
    EngineProcess::start(&config)
}

#[test]
fn a_session_over_its_rate_is_throttled_and_served_again_after_a_pause() {
    let _serial = serial();
    let dir = TempDir::new("throttle-rate");
    let engine = start(dir.path(), "order_rate_per_s = 100\norder_burst = 10");
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    // 200 orders in one write: the engine reads them within a few microseconds.
    let mut enc = FrameEncoder::new();
    let mut batch = Vec::new();
    for coid in 1..=200 {
        batch.extend_from_slice(enc.command(&limit(1, coid, Side::Buy, 1_800_000, 1)));
    }
    alice.send_raw(&batch).unwrap();
    let (mut accepted, mut throttled) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let r = alice.next_report(WAIT).unwrap();
        match r.exec_type {
            ExecType::Accepted => accepted.push(r.client_order_id),
            ExecType::Rejected => {
                assert_eq!(r.reject_reason, Some(RejectReason::Throttled), "{r:?}");
                assert_eq!(r.stream_seq, 0, "a gateway reject is in no stream");
                throttled.push(r.client_order_id);
            }
            other => panic!("unexpected {other:?}: {r:?}"),
        }
    }
    eprintln!(
        "200 orders at once, 100/s burst 10: {} accepted, {} throttled",
        accepted.len(),
        throttled.len()
    );
    assert!((10..=12).contains(&accepted.len()), "accepted {accepted:?}");
    // The first orders pass, the rest are throttled, each answered with its own id.
    assert_eq!(accepted, (1..=accepted.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        throttled,
        (accepted.len() as u64 + 1..=200).collect::<Vec<_>>()
    );
    // The session is still logged on; after a pause the bucket has refilled.
    std::thread::sleep(Duration::from_millis(150));
    for coid in 1_001..=1_005 {
        alice
            .send(&limit(1, coid, Side::Buy, 1_800_000, 1))
            .unwrap();
        let r = alice.next_report(WAIT).unwrap();
        assert_eq!((r.exec_type, r.client_order_id), (ExecType::Accepted, coid));
    }
    let want = throttled.len() as f64;
    let deadline = Instant::now() + WAIT;
    let mut counted = throttled_total(&engine.metrics);
    while counted < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        counted = throttled_total(&engine.metrics);
    }
    assert_eq!(counted, want, "veloz_rejects_total{{reason=\"throttled\"}}");
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

/// One logon attempt on a fresh connection: the engine's answer (a Logout reason), or
/// `None` when it closed without one.
fn attempt(addr: &str, frame: &[u8]) -> Option<LogoutReason> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(frame);
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("logon attempt: {e}"),
    }
    let mut dec = veloz_wire::FrameDecoder::new(1 << 20);
    dec.read_buf()[..got.len()].copy_from_slice(&got);
    dec.commit(got.len());
    let frame = dec.next_frame().ok()??;
    match veloz_wire::decode_engine(frame).ok()? {
        veloz_wire::EngineMessage::Logout(l) => Some(l.reason),
        other => panic!("unexpected answer to a wrong-token logon: {other:?}"),
    }
}

fn refused(addr: &str, account: (u32, &str)) {
    match Client::logon(addr, account.0, account.1) {
        Err(ClientError::LogonRefused { reason, .. }) => {
            assert_eq!(reason, LogoutReason::AuthenticationFailed)
        }
        Err(e) => panic!("logon of {}: {e}", account.0),
        Ok(_) => panic!("account {} logged on during its back-off", account.0),
    }
}

#[test]
fn a_wrong_token_flood_is_cheap_quiet_and_locks_out_only_its_account() {
    let _serial = serial();
    let dir = TempDir::new("throttle-flood");
    let mut engine = start_parking(
        dir.path(),
        "logon_failures_before_backoff = 5\naddress_logon_failures_before_backoff = 1000\n\
         logon_backoff_initial_ms = 100\nlogon_backoff_max_ms = 1000",
    );
    let pid = engine.child.id();
    let frame = FrameEncoder::new().logon(ALICE.0, WRONG_TOKEN).to_vec();
    // For scale: what the idle engine (parking shards) costs in a second.
    let idle_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let idle = (cpu_ticks(pid) - idle_before) as f64 / clock_ticks_per_s() as f64;
    const N: usize = 10_000;
    // The floor: what N connections that send nothing cost it (accept, end of stream,
    // close): the network path's share, which depends on the path (io_uring or std) and the
    // host, not on how logons are refused.
    let floor = {
        let cpu_before = cpu_ticks(pid);
        let began = Instant::now();
        for _ in 0..N {
            let mut s = TcpStream::connect(&engine.addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let _ = s.read_to_end(&mut Vec::new());
        }
        let cpu = (cpu_ticks(pid) - cpu_before) as f64 / clock_ticks_per_s() as f64;
        cpu - idle * began.elapsed().as_secs_f64()
    };
    engine.collect();
    let lines_before = engine.stderr_lines.len();
    let cpu_before = cpu_ticks(pid);
    let began = Instant::now();
    let (mut answered, mut closed) = (0, 0);
    for _ in 0..N {
        match attempt(&engine.addr, &frame) {
            Some(LogoutReason::AuthenticationFailed) => answered += 1,
            None => closed += 1,
            Some(other) => panic!("refused with {other:?}"),
        }
    }
    let took = began.elapsed();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / clock_ticks_per_s() as f64;
    engine.collect();
    let lines: Vec<String> = engine.stderr_lines[lines_before..].to_vec();
    eprintln!(
        "{N} wrong-token logons in {:.2} s ({answered} answered AuthenticationFailed, {closed} \
         closed): engine CPU {cpu:.2} s (idle: {idle:.2} s per s; {N} bare connections: \
         {floor:.2} s over idle), {} log lines:\n{}",
        took.as_secs_f64(),
        lines.len(),
        lines.join("\n")
    );
    // What the flood cost: the CPU over what the engine spends idle in the same time, and
    // over what the same number of bare connections cost: refusing a logon (reading it,
    // the back-off check, the Logout) must stay a few microseconds, never a token check
    // per attempt (a hash would be tens of microseconds each: 10,000 of them, a second).
    let flood = cpu - idle * took.as_secs_f64();
    assert!(
        flood - floor < 0.5,
        "the flood cost the engine {flood:.2} s of CPU ({cpu:.2} s in all, idle {idle:.2} s per \
         s), {:.2} s more than {N} bare connections ({floor:.2} s)",
        flood - floor
    );
    assert!(lines.len() < 10, "{} log lines", lines.len());
    // Every attempt but the first few was refused without checking the token.
    let backed_off = metric_reaches(
        &engine.metrics,
        "veloz_logons_backed_off_total",
        (N - 100) as f64,
    );
    assert!(backed_off as usize >= N - 100, "{backed_off} backed off");

    // Past every back-off, one more failure re-arms alice's (at its cap, 1 s): now even
    // her right token is refused, while bob, from the same address, logs on.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        attempt(&engine.addr, &frame),
        Some(LogoutReason::AuthenticationFailed)
    );
    refused(&engine.addr, ALICE);
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    bob.send(&limit(1, 1, Side::Buy, 1_800_000, 1)).unwrap();
    assert_eq!(bob.next_report(WAIT).unwrap().exec_type, ExecType::Accepted);
    // Once her back-off is over, alice logs on.
    std::thread::sleep(Duration::from_millis(1_100));
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    alice.send(&limit(1, 2, Side::Buy, 1_800_000, 1)).unwrap();
    assert_eq!(
        alice.next_report(WAIT).unwrap().exec_type,
        ExecType::Accepted
    );
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    assert!(!stderr.iter().any(|l| l.contains(WRONG_TOKEN)));
}

#[test]
fn connections_not_logged_on_are_bounded_per_address() {
    let _serial = serial();
    let dir = TempDir::new("throttle-pending");
    let engine = start(dir.path(), "max_pending_logons_per_ip = 4");
    let mut first: Vec<Client> = (0..4)
        .map(|_| Client::connect(&engine.addr).unwrap())
        .collect();
    // Let the engine take them before the extra ones arrive.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let mut s = TcpStream::connect(&engine.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let began = Instant::now();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "closed without an answer"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "an extra connection was not closed at once"
        );
    }
    let closed = metric_reaches(
        &engine.metrics,
        "veloz_connections_over_pending_limit_total",
        3.0,
    );
    assert_eq!(closed, 3.0);
    // The first ones still log on; then there is room again.
    let mut enc = FrameEncoder::new();
    for (i, c) in first.iter_mut().enumerate() {
        let account = if i % 2 == 0 { ALICE } else { BOB };
        c.send_raw(enc.logon(account.0, account.1)).unwrap();
        match c.recv_within(WAIT, "LogonAck").unwrap() {
            Received::LogonAck { .. } => {}
            other => panic!("connection {i}: {other:?}"),
        }
    }
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    alice.send(&limit(1, 1, Side::Buy, 1_800_000, 1)).unwrap();
    assert_eq!(
        alice.next_report(WAIT).unwrap().exec_type,
        ExecType::Accepted
    );
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
