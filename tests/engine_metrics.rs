//! The control thread's outputs over a real engine process: the metrics socket (HTTP and
//! raw), `promtool check metrics` on what it serves, counters and per-shard latency
//! histograms that move under load, the HdrHistogram interval logs and the shutdown latency
//! report. (tests/engine_prometheus.rs has a real Prometheus server scrape it.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

/// One scrape: HTTP when `http`, else a raw connection that sends nothing.
fn scrape(addr: &str, http: bool) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if http {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: veloz\r\n\r\n")
            .unwrap();
    }
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    if http {
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
        body.to_string()
    } else {
        text
    }
}

/// Sum of every series of `name` (any labels), from exposition text.
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The largest value of every series of `name` (any labels), from exposition text.
fn series_max(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The buckets of the histogram series `name` (`..._bucket`) summed over every shard by
/// `le`, in ascending `le` order: what `sum by (le)` gives in Prometheus.
fn le_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for l in text.lines().filter(|l| l.starts_with(&format!("{name}{{"))) {
        let le = l.split("le=\"").nth(1).and_then(|r| r.split('"').next());
        let le: f64 = match le {
            Some("+Inf") => f64::INFINITY,
            Some(v) => v.parse().unwrap(),
            None => panic!("no le label: {l}"),
        };
        let n: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        match by_le.iter_mut().find(|(b, _)| *b == le) {
            Some(slot) => slot.1 += n,
            None => by_le.push((le, n)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_le
}

fn trade_round(c: &mut Client, coid: u64) {
    c.send(&limit(3, coid, Side::Sell, 4_200_000, 2)).unwrap();
    assert_eq!(
        c.next_report(Duration::from_secs(10)).unwrap().exec_type,
        ExecType::Accepted
    );
    c.send(&limit(3, coid + 1, Side::Buy, 4_200_000, 2))
        .unwrap();
    // Accepted, then the taker's fill (the maker's fill comes too: same session).
    for _ in 0..3 {
        c.next_report(Duration::from_secs(10)).unwrap();
    }
}

#[test]
fn metrics_socket_serves_valid_exposition_and_counters_move() {
    let _serial = serial();
    let dir = TempDir::new("metrics");
    let engine = EngineProcess::start(&test_config(dir.path(), "group", ""));
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for i in 0..50 {
        trade_round(&mut c, 10 * i);
    }
    // Snapshots come every 200 ms in the test config.
    std::thread::sleep(Duration::from_millis(500));
    let first = scrape(&engine.metrics, true);
    for i in 50..150 {
        trade_round(&mut c, 10 * i);
    }
    std::thread::sleep(Duration::from_millis(500));
    let second = scrape(&engine.metrics, true);
    let raw = scrape(&engine.metrics, false);

    // promtool (Debian package prometheus; `make tools` installs it) accepts the text.
    for text in [&first, &second, &raw] {
        let mut check = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect(
                "promtool is missing: run `make tools` (installs the Debian package prometheus)",
            );
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The counters moved between the scrapes, by what was sent.
    let commands = |t: &str| total(t, "veloz_commands_total");
    assert_eq!(commands(&first), 100.0, "{first}");
    assert_eq!(commands(&second), 300.0);
    assert_eq!(total(&first, "veloz_trades_total"), 50.0);
    assert_eq!(total(&second, "veloz_trades_total"), 150.0);
    // Latencies are histograms per shard, summed here as Prometheus would (`sum by (le)`):
    // every command acknowledged is counted, in `_count` and in the `+Inf` bucket.
    let acks = |t: &str| total(t, "veloz_ingress_to_ack_seconds_count");
    assert_eq!(acks(&first), 100.0);
    assert_eq!(acks(&second), 300.0);
    let buckets = le_buckets(&second, "veloz_ingress_to_ack_seconds_bucket");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 300.0)), "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "bounds ascend, counts are cumulative: {buckets:?}"
    );
    // The median's bucket is at or under the one holding the largest value, which counts
    // every ack.
    let p50_bound = buckets.iter().find(|(_, n)| *n >= 150.0).unwrap().0;
    let max = series_max(&second, "veloz_ingress_to_ack_max_seconds");
    let (max_bound, at_max) = *buckets.iter().find(|(le, _)| *le >= max).unwrap();
    assert!(
        max > 0.0 && p50_bound <= max_bound && at_max == 300.0,
        "max {max}, p50 bucket {p50_bound}: {buckets:?}"
    );
    assert!(
        !second.contains("shard=\"all\"") && !second.contains("quantile="),
        "no merged series or summaries (Prometheus aggregates the shards)"
    );
    // Each shard's heartbeat moved between the scrapes.
    assert!(
        total(&second, "veloz_shard_intervals_total")
            > total(&first, "veloz_shard_intervals_total")
    );
    assert_eq!(total(&second, "veloz_sessions_open"), 1.0);
    assert!(
        total(&second, "veloz_journal_written_bytes_total")
            > total(&first, "veloz_journal_written_bytes_total")
    );
    assert!(
        !second.contains("demo-alice"),
        "a token reached the metrics"
    );

    let (code, stdout, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    // The shutdown report: printed and written, one table per metric.
    let reports = dir.path().join("data/reports");
    let report = std::fs::read_to_string(reports.join("latency-report.txt")).unwrap();
    for needle in [
        "== ingress_to_ack",
        "== matching",
        "== journal_append",
        "== commit_wait",
        "== ring_hop",
        "all: 300 commands",
    ] {
        assert!(
            report.contains(needle),
            "{needle:?} missing from:\n{report}"
        );
        assert!(
            stdout.iter().any(|l| l.contains(needle)),
            "{needle:?} not printed"
        );
    }
    // Interval logs in the standard format, readable back, with every ack in them.
    let log = veloz_report::hdrlog::read_log(reports.join("ingress_to_ack.hlog")).unwrap();
    assert!(log.len() >= 2, "{} intervals", log.len());
    let count: u64 = log.iter().map(|i| i.histogram.len()).sum();
    assert_eq!(count, 300);
}
