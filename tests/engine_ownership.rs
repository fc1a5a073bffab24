//! Exclusive ownership: one engine per data directory (the data-directory lock) and one
//! process per gateway and metrics address (no SO_REUSEPORT group another process could
//! join). Real `veloz serve` processes on loopback, temporary data directories.
//!
//! Each test holds `common::serial()`; the second engines here are refused before their
//! shards start, so two engines never busy-poll side by side for long.

mod common;

use std::path::Path;
use std::process::{Command as Process, Output};
use std::time::{Duration, Instant};

use common::*;
use veloz_core::*;
use veloz_load::client::Client;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(10);

/// Log on, send one order, expect it acknowledged; returns the order id.
fn order_answered(addr: &str, coid: u64) -> OrderId {
    let (mut client, _) = Client::logon(addr, ALICE.0, ALICE.1).unwrap();
    let inst = &veloz_config::Config::default().instruments()[0];
    client
        .send(&limit(inst.id, coid, Side::Buy, inst.reference_price, 1))
        .unwrap();
    let ack = client.next_report(WAIT).unwrap();
    assert_eq!(
        (ack.exec_type, ack.client_order_id),
        (ExecType::Accepted, coid),
        "{ack:?}"
    );
    let _ = client.logout();
    ack.order_id
}

/// Cancel `order_id` (resting from [`order_answered`]), expect it cancelled.
fn cancelled(addr: &str, coid: u64, order_id: OrderId) {
    let (mut client, _) = Client::logon(addr, ALICE.0, ALICE.1).unwrap();
    let inst = &veloz_config::Config::default().instruments()[0];
    client.send(&cancel(inst.id, coid, order_id)).unwrap();
    let report = client.next_report(WAIT).unwrap();
    assert_eq!(
        (report.exec_type, report.order_id),
        (ExecType::Cancelled, order_id),
        "{report:?}"
    );
    let _ = client.logout();
}

/// Run `veloz serve` to its end (it is expected to be refused), at most `limit`.
fn serve_refused(config: &Path, extra: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Process::new(veloz_bin())
        .args(["serve", "--config"])
        .arg(config)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn veloz");
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the second engine was not refused within {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().unwrap(), elapsed)
}

/// A test config whose gateway and metrics addresses are replaced.
fn config_with_addresses(dir: &Path, gateway: &str, metrics: &str) -> std::path::PathBuf {
    let path = test_config(dir, "none", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replacen(
            "[gateway]\nlisten = \"127.0.0.1:0\"",
            &format!("[gateway]\nlisten = {gateway:?}"),
            1,
        )
        .replacen(
            "[metrics]\nlisten = \"127.0.0.1:0\"",
            &format!("[metrics]\nlisten = {metrics:?}"),
            1,
        );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_second_engine_on_the_same_data_directory_is_refused_and_the_first_keeps_serving() {
    let _serial = serial();
    let dir = TempDir::new("own-data");
    let config = test_config(dir.path(), "none", "");
    let first = EngineProcess::start(&config);
    let pid = first.child.id();
    let mut resting = vec![order_answered(&first.addr, 1)];

    // Same config (same data directory), any free ports: the lock refuses it, at once and
    // before it touches the journals (so also with --repair-journal).
    for extra in [&[][..], &["--repair-journal"][..]] {
        let (out, took) = serve_refused(&config, extra, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        let data = first.data.display().to_string();
        assert!(
            stderr.contains(&format!(
                "data directory {data} is in use by another veloz process (pid {pid}, lock {data}/engine.lock): stop it first"
            )),
            "{extra:?}: {stderr}"
        );
        assert!(
            !stderr.contains("recovered"),
            "refused only after recovery: {stderr}"
        );
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    // The first engine still serves.
    resting.push(order_answered(&first.addr, 2));
    let (code, _, stderr) = first.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    // Stopped: the lock file stays, and the next start takes it over; the journal holds
    // both acknowledged orders (each can be cancelled after the restart).
    assert!(dir.path().join("data/engine.lock").is_file());
    let again = EngineProcess::start(&config);
    for (coid, order_id) in (10..).zip(resting) {
        cancelled(&again.addr, coid, order_id);
    }
    let (code, _, stderr) = again.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn a_second_engine_on_the_same_gateway_or_metrics_address_is_refused() {
    let _serial = serial();
    let dir = TempDir::new("own-port");
    let first = EngineProcess::start(&test_config(dir.path(), "none", ""));
    order_answered(&first.addr, 1);

    for (what, gateway, metrics) in [
        ("gateway", first.addr.as_str(), "127.0.0.1:0"),
        ("metrics", "127.0.0.1:0", first.metrics.as_str()),
    ] {
        // Another data directory: only the address is shared.
        let other = TempDir::new("own-port-2");
        let config = config_with_addresses(other.path(), gateway, metrics);
        let (out, _) = serve_refused(&config, &[], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        let addr = if what == "gateway" { gateway } else { metrics };
        assert!(
            stderr.contains(&format!(
                "{what} address {addr} is in use by another process (another veloz engine, or another server): stop it first, or configure another address"
            )),
            "{what}: {stderr}"
        );
        // Refused before its shards started (nothing listened, nothing recovered).
        assert!(!stderr.contains("recovered"), "{what}: {stderr}");
    }

    // Every new session still reaches the first engine.
    for coid in 2..12 {
        order_answered(&first.addr, coid);
    }
    let (code, _, stderr) = first.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn a_restart_after_sigkill_is_not_blocked_by_the_stale_lock_file() {
    let _serial = serial();
    let dir = TempDir::new("own-kill");
    let config = test_config(dir.path(), "none", "");
    let first = EngineProcess::start(&config);
    let pid = first.child.id();
    let order_id = order_answered(&first.addr, 1);
    let lock = dir.path().join("data/engine.lock");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        pid.to_string()
    );
    first.kill9();
    // The file names a dead process; the kernel released its lock with it.
    assert!(lock.is_file());
    let second = EngineProcess::start(&config);
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        second.child.id().to_string()
    );
    // The acknowledged order survived the crash and the restart.
    cancelled(&second.addr, 2, order_id);
    let (code, _, stderr) = second.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
