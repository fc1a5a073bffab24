//! The operator interface over real loopback HTTP against a real `veloz serve`: halt and
//! resume an instrument, the kill switch of an account, listing sessions and disconnecting
//! one; every command is journaled, so replay reproduces the state (hash) and a restart
//! keeps an instrument halted.

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use veloz_core::{CancelReason, RejectReason, Side};
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport, LogoutReason};

const T: Duration = Duration::from_secs(10);
const TOKEN: &str = "op-token-for-tests";
const AAPL: u32 = 1;
const AMZN: u32 = 2;
const MSFT: u32 = 3;

fn admin(addr: &str, method: &str, path: &str) -> serde_json::Value {
    let (code, body) = admin_http(addr, method, path, Some(TOKEN));
    assert_eq!(code, 200, "{method} {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

fn config_with_admin(dir: &std::path::Path) -> std::path::PathBuf {
    let config = test_config(dir, "group", "");
    let hash = format!("{:x}", Sha256::digest(TOKEN.as_bytes()));
    let text = std::fs::read_to_string(&config).unwrap();
    let off = "[admin]\ntoken_sha256 = \"\"";
    assert!(text.contains(off), "the default config has admin off");
    let text = text.replacen(off, &format!("[admin]\ntoken_sha256 = \"{hash}\""), 1);
    std::fs::write(&config, text).unwrap();
    config
}

fn price(symbol: u32) -> i64 {
    let c = veloz_config::Config::default();
    let i = c
        .instruments()
        .into_iter()
        .find(|i| i.id == symbol)
        .unwrap();
    i.reference_price - 10 * i.tick_size
}

#[test]
fn halt_kill_switch_sessions_and_disconnect_then_replay_and_restart_agree() {
    let _serial = serial();
    let dir = TempDir::new("admin");
    let config = config_with_admin(dir.path());
    let engine = EngineProcess::start(&config);
    let (addr, ops) = (engine.addr.clone(), engine.metrics.clone());
    let (mut alice, alice_id) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&addr, BOB.0, BOB.1).unwrap();

    // No token, a wrong one: refused, nothing changes.
    assert_eq!(
        admin_http(&ops, "POST", "/admin/halt?symbol=AAPL", None).0,
        401
    );
    assert_eq!(
        admin_http(&ops, "POST", "/admin/halt?symbol=AAPL", Some("nope")).0,
        401
    );

    // Halt: new orders rejected, a resting order can still be cancelled.
    alice
        .send(&limit(AAPL, 1, Side::Buy, price(AAPL), 1))
        .unwrap();
    let resting = report(&mut alice);
    let halted = admin(&ops, "POST", "/admin/halt?symbol=AAPL");
    assert_eq!(halted["shards"][0]["outcome"], "applied", "{halted}");
    alice
        .send(&limit(AAPL, 2, Side::Buy, price(AAPL), 1))
        .unwrap();
    let r = report(&mut alice);
    assert_eq!(
        (r.exec_type, r.reject_reason),
        (ExecType::Rejected, Some(RejectReason::InstrumentHalted))
    );
    alice.send(&cancel(AAPL, 3, resting.order_id)).unwrap();
    assert_eq!(report(&mut alice).exec_type, ExecType::Cancelled);
    alice
        .send(&limit(AMZN, 4, Side::Buy, price(AMZN), 1))
        .unwrap();
    assert_eq!(
        report(&mut alice).exec_type,
        ExecType::Accepted,
        "other instruments trade"
    );
    let again = admin(&ops, "POST", "/admin/halt?symbol=1");
    assert_ne!(again["shards"][0]["outcome"], "applied", "{again}");
    admin(&ops, "POST", "/admin/resume?symbol=AAPL");
    alice
        .send(&limit(AAPL, 5, Side::Buy, price(AAPL), 1))
        .unwrap();
    assert_eq!(report(&mut alice).exec_type, ExecType::Accepted);

    // Kill switch: Bob's orders everywhere are cancelled, new ones refused until enabled.
    let mut bobs = Vec::new();
    for (coid, symbol) in [(10, AAPL), (11, AMZN), (12, MSFT), (13, MSFT)] {
        bob.send(&limit(symbol, coid, Side::Buy, price(symbol), 1))
            .unwrap();
        bobs.push(report(&mut bob).order_id);
    }
    let killed = admin(&ops, "POST", "/admin/disable?account=2");
    let cancelled: u64 = killed["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cancelled"].as_u64().unwrap())
        .sum();
    assert_eq!(cancelled, 4, "{killed}");
    let mut gone: Vec<u64> = (0..4)
        .map(|_| {
            let r = report(&mut bob);
            assert_eq!(
                r.cancel_reason,
                Some(CancelReason::AccountDisabled),
                "{r:?}"
            );
            r.order_id
        })
        .collect();
    gone.sort_unstable();
    bobs.sort_unstable();
    assert_eq!(gone, bobs);
    bob.send(&limit(AMZN, 14, Side::Buy, price(AMZN), 1))
        .unwrap();
    assert_eq!(
        report(&mut bob).reject_reason,
        Some(RejectReason::AccountDisabled)
    );
    admin(&ops, "POST", "/admin/enable?account=2");
    bob.send(&limit(AMZN, 15, Side::Buy, price(AMZN), 1))
        .unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);

    // Sessions (through scripts/admin.sh too), and one disconnected.
    let script = |token: &str, args: &[&str]| {
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/admin.sh"))
            .arg("--metrics")
            .arg(&ops)
            .args(args)
            .env("VELOZ_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    let listed = script(TOKEN, &["sessions"]);
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let from_script: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        from_script["sessions"].as_array().unwrap().len() >= 2,
        "{from_script}"
    );
    let refused = script("not-the-token-xyz", &["halt", "AAPL"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("401") && !err.contains("xyz"), "{err}");
    let sessions = admin(&ops, "GET", "/admin/sessions");
    let list = sessions["sessions"].as_array().unwrap();
    let me = list
        .iter()
        .find(|s| s["session"] == alice_id)
        .unwrap_or_else(|| panic!("alice's session {alice_id} listed: {sessions}"));
    assert_eq!(
        (me["account"].as_u64(), me["state"].as_str()),
        (Some(1), Some("active"))
    );
    assert_eq!(me["protocol"].as_str(), Some("binary"), "{me}");
    assert!(me.get("comp_id").is_none(), "{me}");
    admin(
        &ops,
        "POST",
        &format!("/admin/disconnect?session={alice_id}"),
    );
    loop {
        match alice.recv_within(T, "the operator's Logout").unwrap() {
            Received::Logout { reason, .. } => {
                assert_eq!(reason, LogoutReason::OperatorDisconnect);
                break;
            }
            Received::Heartbeat => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        admin_http(
            &ops,
            "POST",
            &format!("/admin/disconnect?session={alice_id}"),
            Some(TOKEN)
        )
        .0,
        404
    );

    // MSFT halted across the restart: the journal holds it.
    admin(&ops, "POST", "/admin/halt?symbol=MSFT");
    bob.logout().unwrap();
    let data = engine.data.clone();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let (rc, out, err) = replay_verify(&data, &config);
    assert_eq!(rc, Some(0), "replay --verify: {out}\n{err}");

    let engine = EngineProcess::start(&config);
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    bob.send(&limit(MSFT, 16, Side::Buy, price(MSFT), 1))
        .unwrap();
    assert_eq!(
        report(&mut bob).reject_reason,
        Some(RejectReason::InstrumentHalted)
    );
    bob.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}
