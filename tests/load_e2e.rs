//! `veloz load` end to end: a real `veloz serve` process on loopback, driven by a real
//! `veloz load` process whose JSON report and interval log are checked.
//!
//! No timing thresholds here (this host is shared and noisy): the figures must be present,
//! consistent and ordered; performance goals live in the benchmarks.

mod common;

use std::path::Path;
use std::process::{Command as Process, Output};

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Run `veloz load` against `addr` at 2,000 orders/s for 2 s; `extra` arguments appended.
fn load(addr: &str, hlog: &Path, extra: &[&str]) -> Output {
    Process::new(veloz_bin())
        .args([
            "load",
            "--connect",
            addr,
            "--rate",
            "2000",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--json",
            "--hlog",
        ])
        .arg(hlog)
        .args(extra)
        .output()
        .expect("run veloz load")
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "veloz load failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v}", path.join(".")))
}

/// The checks every measured result must pass.
fn check_result(v: &Value, which: &str) {
    let sent = num(v, &[which, "sent"]);
    let answered = num(v, &[which, "answered"]);
    assert!(answered > 0.0, "{which}: nothing answered: {v}");
    assert_eq!(sent, answered, "{which}: sent {sent}, answered {answered}");
    assert_eq!(num(v, &[which, "unanswered"]), 0.0);
    let p: Vec<f64> = ["p50", "p90", "p99", "p99_9", "p99_99", "max"]
        .iter()
        .map(|k| num(v, &[which, "latency_us", k]))
        .collect();
    assert!(p[0] > 0.0, "{which}: p50 is 0");
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "{which}: percentiles out of order: {p:?}"
    );
    assert_eq!(num(v, &[which, "latency_us", "count"]), answered);
}

/// Intervals in an interval log, read back with the report module.
fn intervals(path: &Path) -> Vec<veloz_report::Interval> {
    assert!(path.exists(), "no interval log at {}", path.display());
    veloz_report::read_log(path).unwrap()
}

#[test]
fn open_loop_measures_the_engine_and_writes_an_interval_log() {
    let _serial = serial();
    let dir = TempDir::new("load-open");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let hlog = dir.path().join("run.hlog");
    let v = report(&load(&engine.addr, &hlog, &[]));

    assert_eq!(v["mode"], "open_loop");
    assert_eq!(num(&v, &["rate"]), 2_000.0);
    check_result(&v, "veloz");
    let answered = num(&v, &["veloz", "answered"]);
    // The default workload is clean: rejects only from races (an order filled while a
    // cancel or move for it was in flight).
    let rejected = num(&v, &["veloz", "rejected"]);
    assert!(
        rejected < 0.05 * answered,
        "{rejected} rejects of {answered}: {}",
        v["veloz"]["rejects"]
    );
    for kind in ["gtc", "ioc", "cancel", "move"] {
        assert!(num(&v, &["veloz", "mix", kind]) > 0.0, "no {kind}: {v}");
    }
    assert!(num(&v, &["veloz", "trading"]) > 0.0, "nothing traded: {v}");
    assert_eq!(v["instruments"].as_array().unwrap().len(), 4);
    assert!(v["baseline"].is_null() && v["ratio_to_baseline"].is_null());

    let logged = intervals(&hlog);
    assert!(!logged.is_empty());
    assert_eq!(num(&v, &["hlog_intervals"]), logged.len() as f64);
    let in_log: u64 = logged.iter().map(|i| i.histogram.len()).sum();
    assert_eq!(in_log as f64, answered, "the log holds every latency");

    // A wrong token: a clear error naming the account, never the token.
    let out = load(
        &engine.addr,
        &dir.path().join("refused.hlog"),
        &["--account", "1:not-the-token"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("account 1"), "{stderr}");
    assert!(!stderr.contains("not-the-token"), "token printed: {stderr}");

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit: {}", stderr.join("\n"));
}

#[test]
fn baseline_measures_the_echo_floor_and_the_ratios() {
    let _serial = serial();
    let dir = TempDir::new("load-baseline");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let hlog = dir.path().join("run.hlog");
    let v = report(&load(&engine.addr, &hlog, &["--baseline"]));

    check_result(&v, "veloz");
    check_result(&v, "baseline");
    assert_ne!(v["veloz"]["target"], v["baseline"]["target"]);
    assert_eq!(num(&v, &["baseline", "rejected"]), 0.0);
    assert!(!v["baseline_cores"].as_array().unwrap().is_empty());
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        let ratio = num(&v, &["ratio_to_baseline", k]);
        let expected =
            num(&v, &["veloz", "latency_us", k]) / num(&v, &["baseline", "latency_us", k]);
        assert!(
            (ratio - expected).abs() <= 1e-9 * expected.max(1.0),
            "{k}: ratio {ratio}, expected {expected}"
        );
    }
    assert!(!intervals(&hlog).is_empty());
    let baseline_log = Path::new(v["hlog_baseline"].as_str().unwrap());
    assert_eq!(baseline_log, dir.path().join("run.baseline.hlog"));
    assert!(!intervals(baseline_log).is_empty());

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit: {}", stderr.join("\n"));
}

#[test]
fn closed_loop_keeps_the_pipeline_full() {
    let _serial = serial();
    let dir = TempDir::new("load-closed");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let out = Process::new(veloz_bin())
        .args([
            "load",
            "--connect",
            &engine.addr,
            "--closed-loop",
            "--pipeline",
            "16",
            "--connections",
            "3",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--symbols",
            "AAPL,MSFT",
            "--json",
        ])
        .output()
        .unwrap();
    let v = report(&out);
    assert_eq!(v["mode"], "closed_loop");
    assert_eq!(num(&v, &["pipeline"]), 16.0);
    assert_eq!(v["instruments"], serde_json::json!(["AAPL", "MSFT"]));
    check_result(&v, "veloz");
    assert!(v["hlog"].is_null());
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit: {}", stderr.join("\n"));
}

#[test]
fn many_sessions_on_one_thread_and_the_engine_cpu() {
    const SESSIONS: u32 = 200;
    let _serial = serial();
    let dir = TempDir::new("load-many");
    // One account per session, as a venue's members have (sessions of one account each get
    // every report of the account).
    let config = test_config(dir.path(), "none", "");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    let mut accounts = String::from("1:demo-alice\n2:demo-bob\n");
    for id in 3..=SESSIONS {
        let token = format!("session-{id}");
        let hash: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        toml.push_str(&format!(
            "\n[[accounts]]\nid = {id}\nname = \"s{id}\"\ntoken_sha256 = \"{hash}\"\n"
        ));
        accounts.push_str(&format!("{id}:{token}\n"));
    }
    std::fs::write(&config, toml).unwrap();
    let accounts_file = dir.path().join("accounts");
    std::fs::write(&accounts_file, accounts).unwrap();
    let engine = EngineProcess::start(&config);
    let pid = engine.child.id().to_string();
    // 200 sessions on one load thread (past the direct reads, through its epoll set) at
    // 10 orders/s each.
    let v = report(&load(
        &engine.addr,
        &dir.path().join("many.hlog"),
        &[
            "--connections",
            &SESSIONS.to_string(),
            "--accounts",
            accounts_file.to_str().unwrap(),
            "--engine-pid",
            &pid,
        ],
    ));
    assert!(
        !v["notes"].to_string().contains("connections share"),
        "{}",
        v["notes"]
    );
    assert_eq!(num(&v, &["connections"]), SESSIONS as f64);
    check_result(&v, "veloz");
    let cpu = &v["engine_cpu"];
    assert_eq!(num(cpu, &["pid"]), engine.child.id() as f64, "{cpu}");
    assert_eq!(num(cpu, &["orders"]), num(&v, &["veloz", "sent"]));
    assert!(
        num(cpu, &["shard_threads"]) >= 1.0,
        "no shard thread found: {cpu}"
    );
    let (process, shard) = (num(cpu, &["process_ms"]), num(cpu, &["shard_ms"]));
    assert!(process > 0.0 && shard <= process, "{cpu}");
    let per_1000 = process * 1_000.0 / num(cpu, &["orders"]);
    assert!(
        (num(cpu, &["process_ms_per_1000_orders"]) - per_1000).abs() < 1e-6 * per_1000.max(1.0),
        "{cpu}"
    );
    assert!(num(cpu, &["window_s"]) > 0.0, "{cpu}");

    // A process that is not there: refused before the run.
    let out = load(
        &engine.addr,
        &dir.path().join("nopid.hlog"),
        &["--engine-pid", "4294967295"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--engine-pid 4294967295"), "{stderr}");

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit: {}", stderr.join("\n"));
}

#[test]
fn fix_sessions_carry_the_same_flows() {
    let _serial = serial();
    let dir = TempDir::new("load-fix");
    let mut engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while engine.fix.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        engine.collect();
    }
    assert!(
        !engine.fix.is_empty(),
        "no FIX line: {:?}",
        engine.stdout_lines
    );
    let fix = engine.fix.clone();
    let hlog = dir.path().join("fix.hlog");
    let args = ["--protocol", "fix", "--fix-connect", &fix];
    let v = report(&load(&engine.addr, &hlog, &args));
    assert_eq!(
        (&v["mode"], &v["protocol"]),
        (&"open_loop".into(), &"fix".into())
    );
    assert_eq!(v["veloz"]["target"], fix.as_str());
    check_result(&v, "veloz");
    let answered = num(&v, &["veloz", "answered"]);
    let rejected = num(&v, &["veloz", "rejected"]);
    assert!(rejected < 0.05 * answered, "{}", v["veloz"]["rejects"]);
    for kind in ["gtc", "ioc", "cancel", "move"] {
        assert!(num(&v, &["veloz", "mix", kind]) > 0.0, "no {kind}: {v}");
    }
    assert!(num(&v, &["veloz", "trading"]) > 0.0, "nothing traded: {v}");
    assert_eq!(v["instruments"].as_array().unwrap().len(), 4);

    // Closed loop, a second run: the same CompIDs log on again (ResetSeqNumFlag), and the
    // engine's FIX store holds one file per CompID, not one per run.
    let out = Process::new(veloz_bin())
        .args([
            "load",
            "--connect",
            &engine.addr,
            "--closed-loop",
            "--pipeline",
            "16",
        ])
        .args(["--duration", "1", "--warmup", "0.2", "--json"])
        .args(args)
        .output()
        .unwrap();
    let v = report(&out);
    assert_eq!(v["mode"], "closed_loop");
    check_result(&v, "veloz");
    let mut stores: Vec<String> = std::fs::read_dir(dir.path().join("data").join("fix"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stores.sort();
    assert_eq!(stores, ["LOAD-1-0.log", "LOAD-2-1.log"]);

    // --protocol fix without its address: a clear error.
    let out = load(&engine.addr, &hlog, &["--protocol", "fix"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--fix-connect"),
        "{stderr}"
    );

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "engine exit: {}", stderr.join("\n"));
}
