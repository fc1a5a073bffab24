//! `veloz demo` (what `make run` runs), shortened: it states its configuration, measures the
//! host, runs the main phase and the group-commit phase, verifies each replay against the
//! live state, writes its reports and plot, and ends with one verdict per figure.
//!
//! SLOW verdicts do not fail the demo (this is a debug build: every SLOW must name it); a
//! replay that does not verify does (`demo::verdict`'s unit tests cover that judgement and
//! `demo::run` turns it into an error, hence a non-zero exit).

mod common;

use veloz::demo::expect::Figure;

#[test]
fn demo_runs_end_to_end_states_its_setup_and_judges_every_figure() {
    let _serial = common::serial();
    let dir = common::TempDir::new("demo");
    let out = std::process::Command::new(common::veloz_bin())
        .args([
            "demo",
            "--duration",
            "2",
            "--group-duration",
            "1",
            "--rate",
            "2000",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let starting = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(prefix))
            .collect()
    };

    // The configuration, stated before anything runs.
    for prefix in [
        "config: build",
        "config: durability",
        "config: shards",
        "config: control thread",
        "config: load generator",
        "config: rate",
    ] {
        assert_eq!(starting(prefix).len(), 1, "{prefix:?}:\n{stdout}");
    }
    let durability = starting("config: durability")[0];
    assert!(
        durability.contains("\"none\"") && durability.contains("\"group\""),
        "{durability}"
    );
    assert!(starting("config: build")[0].contains("debug"));
    assert!(starting("config: rate")[0].contains("2000 orders/s open loop over 4 connections"));
    let first_engine_line = lines
        .iter()
        .position(|l| l.starts_with("== main phase"))
        .unwrap_or_else(|| panic!("no main phase:\n{stdout}"));
    let last_config_line = lines
        .iter()
        .rposition(|l| l.starts_with("config: ") || l.starts_with("host: load average"))
        .unwrap();
    assert!(last_config_line < first_engine_line, "stated up front");

    // The host, measured before the engine starts.
    for prefix in [
        "host: load average",
        "host: CPU steal ",
        "host: runnable threads",
        "host: core sharing",
    ] {
        let found = starting(prefix);
        assert_eq!(found.len(), 1, "{prefix:?}:\n{stdout}");
        assert!(
            found[0].ends_with(": quiet")
                || found[0].ends_with(": BUSY")
                || prefix == "host: core sharing"
                || found[0].contains("unknown"),
            "{}",
            found[0]
        );
    }

    // Both phases ran, every journal of each verified.
    assert!(starting("== group-commit phase").len() == 1, "{stdout}");
    let shards = veloz_config::preflight::online_cores().unwrap().len();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("= live engine's"))
            .count(),
        2 * shards,
        "every shard's replay must match the live engine, in both phases:\n{stdout}"
    );
    for needle in [
        "veloz latency report",
        "== ingress_to_ack",
        "round trip, us",
        "percentile plot",
        "group commit, engine commit_wait over the measured window",
        "group commit, journal over the engine's run",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }

    // The feed was served and watched: the page's address, updates on both feeds.
    assert_eq!(starting("   market data on ").len(), 2, "{stdout}");
    assert!(starting("   market data on ")[0].contains("book page http://127.0.0.1:"));
    // The FIX acceptor's port, per phase.
    let fix = starting("   FIX 4.4 order entry on 127.0.0.1:");
    assert_eq!(fix.len(), 2, "{stdout}");
    assert!(fix[0].contains("(TargetCompID VELOZ)"), "{}", fix[0]);
    for kind in ["binary", "websocket"] {
        let line = stdout
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("{kind} subscribers: 1 connected, 0 cut off"))
            })
            .unwrap_or_else(|| panic!("no {kind} subscriber line:\n{stdout}"));
        let updates: u64 = line
            .split("; ")
            .nth(1)
            .and_then(|p| p.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(updates > 100, "{line}");
    }

    // One verdict per figure, each OK or SLOW (SLOW naming the debug build), replay OK.
    let verdicts = starting("verdict: ");
    assert_eq!(verdicts.len(), Figure::ALL.len(), "{stdout}");
    for (line, figure) in verdicts.iter().zip(Figure::ALL) {
        assert!(
            line.starts_with(&format!("verdict: {}", figure.name())),
            "{line}"
        );
        let ok = line.ends_with("): OK");
        let slow = line.contains("): SLOW: ");
        assert!(ok || slow, "{line}");
        if slow {
            assert!(line.contains("debug build"), "{line}");
        }
    }
    assert!(verdicts[verdicts.len() - 1].ends_with("): OK"));

    let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..svg.len().min(80)]
    );
    assert!(dir.path().join("data/reports/latency-report.txt").exists());
    assert!(dir.path().join("load-rtt.hlog").exists());
    assert!(dir
        .path()
        .join("group/data/reports/commit_wait.hlog")
        .exists());
}

#[test]
fn a_demo_that_cannot_run_exits_non_zero() {
    let dir = common::TempDir::new("demo-bad");
    let (code, stdout, stderr) = common::veloz(&[
        "demo",
        "--cores",
        "4095",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("4095"), "{stderr}");
    assert!(!stdout.contains("verdict: "), "{stdout}");
}
