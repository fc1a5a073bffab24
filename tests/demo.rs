//! `veloz demo` (what `make run` runs), shortened: it starts the engine, drives it, stops it,
//! verifies the replay against the live state and writes its reports and plot.

mod common;

#[test]
fn demo_runs_end_to_end_and_verifies_its_replay() {
    let _serial = common::serial();
    let dir = common::TempDir::new("demo");
    let out = std::process::Command::new(common::veloz_bin())
        .args([
            "demo",
            "--duration",
            "2",
            "--rate",
            "2000",
            "--no-baseline",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let shards = veloz_config::preflight::online_cores().unwrap().len();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("= live engine's"))
            .count(),
        shards,
        "every shard's replay must match the live engine:\n{stdout}"
    );
    for needle in [
        "veloz latency report",
        "== ingress_to_ack",
        "round trip, us",
        "percentile plot",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..svg.len().min(80)]
    );
    assert!(dir.path().join("data/reports/latency-report.txt").exists());
    assert!(dir.path().join("load-rtt.hlog").exists());
}
