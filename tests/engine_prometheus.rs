//! A real Prometheus server scrapes a real engine: the per-shard counters sum to what was
//! sent, `histogram_quantile` over the latency buckets lands in the bucket that holds the
//! engine's own p99 (read from its HdrHistogram interval log), the alerting rules
//! (`ops/prometheus/veloz-rules.yml`) load and evaluate, and every query of the Grafana
//! dashboard (`ops/grafana/veloz.json`) succeeds against the live data.
//!
//! Needs the `prometheus` binary (`make tools` installs the Debian package); without it the
//! test says so and skips. Both processes listen on 127.0.0.1 only and are stopped on every
//! path out (Prometheus by a drop guard).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use veloz_core::Side;
use veloz_engine::exposition::BUCKETS_NS;
use veloz_load::client::Client;
use veloz_wire::ExecType;

/// Prometheus scrapes and evaluates rules this often.
const SCRAPE: &str = "250ms";
/// Trade rounds sent: two new orders and one trade each.
const ROUNDS: u64 = 40;
/// Orders sent off the instrument's tick (rejected `price_off_tick`).
const OFF_TICK: u64 = 5;

/// `name` on `$PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// One HTTP/1.0 GET to `addr`: (status code, body); `None` when nothing answers.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Percent-encoding of a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `prometheus` process, killed when dropped.
struct Prometheus {
    child: Child,
    /// Its HTTP address (127.0.0.1:PORT).
    addr: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- prometheus log (last lines, newest first)\n{}",
                tail.join("\n")
            );
        }
    }
}

impl Prometheus {
    /// Start `bin` scraping `target` (job `veloz`) with the repository's alerting rules; wait
    /// until it is ready. A port taken between choosing and binding it is retried.
    fn start(bin: &Path, dir: &Path, target: &str) -> Prometheus {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus/veloz-rules.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {SCRAPE}\n  scrape_timeout: 200ms\n  evaluation_interval: {SCRAPE}\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: veloz\n    static_configs:\n      - targets: [{target:?}]\n"
            ),
        )
        .unwrap();
        let mut why = String::new();
        for attempt in 0..3 {
            // A free port: bind port 0, read it, release it.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let child = Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("tsdb-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let mut prom = Prometheus { child, addr, log };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = prom.child.try_wait() {
                    why = format!(
                        "prometheus exited ({status}):\n{}",
                        std::fs::read_to_string(&prom.log).unwrap_or_default()
                    );
                    break;
                }
                if http_get(&prom.addr, "/-/ready").is_some_and(|(code, _)| code == 200) {
                    return prom;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if why.is_empty() {
                why = format!("prometheus on {} not ready within 20 s", prom.addr);
            }
        }
        panic!("{why}");
    }

    /// `GET /api/v1/PATH`: its `data`, after checking `status` is `success`.
    fn api(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(&self.addr, &format!("/api/v1/{path}"))
            .unwrap_or_else(|| panic!("prometheus {} does not answer /api/v1/{path}", self.addr));
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/v1/{path}: {e}: {body}"));
        assert!(
            code == 200 && json["status"] == "success",
            "/api/v1/{path}: HTTP {code}: {body}"
        );
        json["data"].clone()
    }

    /// An instant query: its result (a vector, or for a range selector a matrix).
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let data = self.api(&format!("query?query={}", encode(promql)));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of an instant query returning one series; `None` when empty.
    fn scalar(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        assert!(result.len() <= 1, "{promql}: {result:?}");
        let v = result.first()?["value"][1].as_str()?;
        Some(v.parse().unwrap_or_else(|_| panic!("{promql}: value {v}")))
    }

    /// Poll `promql` until `ok` holds for its value (deadline: 15 s); returns the value.
    fn wait_for(&self, promql: &str, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.scalar(promql);
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{promql}` is still {v:?} after 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One scrape of the engine's metrics socket (HTTP).
fn scrape(addr: &str) -> String {
    let (code, body) = http_get(addr, "/metrics").expect("the engine's metrics answer");
    assert_eq!(code, 200);
    body
}

/// Sum of every series of `name` whose labels include `filter`, from exposition text.
fn total(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `histogram_quantile(q, ...)` as Prometheus computes it, over buckets (upper bound, cumulative
/// count) in ascending order ending with +Inf.
fn interpolate(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let count = buckets.last().unwrap().1;
    let rank = q * count;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank {
            if le.is_infinite() {
                return lo;
            }
            return lo + (le - lo) * (rank - below) / (n - below);
        }
        (lo, below) = (le, n);
    }
    unreachable!("the +Inf bucket holds every value")
}

/// The engine's latency buckets of `name`, summed over the shards, from exposition text.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = BUCKETS_NS
        .iter()
        .map(|&ns| (ns as f64 / 1e9, 0.0))
        .chain([(f64::INFINITY, 0.0)])
        .collect();
    for (le, n) in &mut out {
        let label = if le.is_infinite() {
            "le=\"+Inf\"".to_string()
        } else {
            format!("le=\"{le}\"")
        };
        *n = total(text, &format!("{name}_bucket"), &label);
    }
    out
}

#[test]
fn a_prometheus_server_aggregates_the_shards_and_runs_the_dashboard_and_rules() {
    let Some(bin) = on_path("prometheus") else {
        eprintln!(
            "SKIPPED: no `prometheus` binary on PATH (`make tools` installs the Debian package \
             prometheus); the Prometheus end-to-end test did not run"
        );
        return;
    };
    let _serial = serial();
    let began = Instant::now();
    let dir = TempDir::new("prometheus");
    let engine = EngineProcess::start(&test_config(dir.path(), "group", ""));
    let prom = Prometheus::start(&bin, dir.path(), &engine.metrics);

    // A first scrape before any order, so every counter's first sample in a rate window is 0.
    prom.wait_for(
        "sum(veloz_commands_total{job=\"veloz\"})",
        "the first scrape",
        |v| v == 0.0,
    );

    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for i in 0..ROUNDS {
        let coid = 10 * i;
        c.send(&limit(3, coid, Side::Sell, 4_200_000, 2)).unwrap();
        assert_eq!(
            c.next_report(Duration::from_secs(10)).unwrap().exec_type,
            ExecType::Accepted
        );
        c.send(&limit(3, coid + 1, Side::Buy, 4_200_000, 2))
            .unwrap();
        // Accepted, then both fills (maker and taker are on this session).
        for _ in 0..3 {
            c.next_report(Duration::from_secs(10)).unwrap();
        }
    }
    for i in 0..OFF_TICK {
        // Tick 100: 4_200_050 is off it.
        c.send(&limit(3, 100_000 + i, Side::Buy, 4_200_050, 1))
            .unwrap();
        let r = c.next_report(Duration::from_secs(10)).unwrap();
        assert_eq!(r.exec_type, ExecType::Rejected, "{r:?}");
    }
    let new_orders = 2 * ROUNDS + OFF_TICK;

    // The engine's own view once its shards have reported every order (counted by the shard
    // of its instrument) and every ack (by the shard of the session); any scrape that starts
    // after `counted` sees all of them.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(&engine.metrics);
        if total(&text, "veloz_commands_total", "type=\"new\"") == new_orders as f64
            && total(&text, "veloz_ingress_to_ack_seconds_count", "") == new_orders as f64
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the engine never counted {new_orders} orders and acks:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let counted = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let acks = new_orders as f64;

    // Wait for two scrapes after that: the raw samples of `up` carry their scrape times.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let after = prom
            .query("up{job=\"veloz\"}[10s]")
            .first()
            .and_then(|s| s["values"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|v| v[0].as_f64().is_some_and(|t| t > counted) && v[1] == "1")
            .count();
        if after >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than two successful scrapes of {} after the orders",
            engine.metrics
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Counters summed over the shards are what was sent.
    let sum = |q: &str| prom.scalar(q).unwrap_or_else(|| panic!("`{q}` is empty"));
    assert_eq!(
        sum("sum(veloz_commands_total{job=\"veloz\",type=\"new\"})"),
        new_orders as f64
    );
    assert_eq!(sum("sum(veloz_trades_total)"), ROUNDS as f64);
    assert_eq!(
        sum("sum(veloz_rejects_total{reason=\"price_off_tick\"})"),
        OFF_TICK as f64
    );
    assert_eq!(sum("sum(veloz_ingress_to_ack_seconds_count)"), acks);
    assert_eq!(
        sum("sum(veloz_ingress_to_ack_seconds_bucket{le=\"+Inf\"})"),
        acks
    );
    assert_eq!(
        sum("count(veloz_shard_intervals_total)"),
        total(&text, "veloz_shards", ""),
        "one heartbeat per shard"
    );
    assert!(
        prom.query("veloz_commands_total{shard=\"all\"}").is_empty(),
        "no merged series to count twice"
    );

    // The engine's own p99 of ingress to ack, from its interval log (every shard, every
    // interval), and the bucket that holds it: the first whose bound is at or above the
    // lowest value of the p99's HDR bin (how the exposition fills its buckets).
    let hlog = engine.data.join("reports/ingress_to_ack.hlog");
    let mut merged = veloz_engine::metrics::new_histogram();
    for interval in veloz_report::hdrlog::read_log(&hlog).unwrap() {
        merged.add(&interval.histogram).unwrap();
    }
    assert_eq!(merged.len() as f64, acks, "the interval log has every ack");
    let p99_ns = merged.value_at_quantile(0.99);
    let p99_low = merged.lowest_equivalent(p99_ns);
    let (lo, hi) = match BUCKETS_NS.iter().position(|&b| p99_low <= b) {
        Some(0) => (0.0, BUCKETS_NS[0] as f64 / 1e9),
        Some(i) => (BUCKETS_NS[i - 1] as f64 / 1e9, BUCKETS_NS[i] as f64 / 1e9),
        // Past the last bound: histogram_quantile answers the last bound.
        None => {
            let last = *BUCKETS_NS.last().unwrap() as f64 / 1e9;
            (last, last)
        }
    };
    let expected = interpolate(0.99, &buckets(&text, "veloz_ingress_to_ack_seconds"));
    for promql in [
        // Over the cumulative buckets, and over their rate across the whole run.
        "histogram_quantile(0.99, sum by (le) (veloz_ingress_to_ack_seconds_bucket{job=\"veloz\"}))",
        "histogram_quantile(0.99, sum by (le) (rate(veloz_ingress_to_ack_seconds_bucket{job=\"veloz\"}[5m])))",
    ] {
        let q = sum(promql);
        assert!(
            lo <= q && q <= hi,
            "{promql} = {q} s, outside the bucket ({lo}, {hi}] that holds the engine's p99 \
             {p99_ns} ns"
        );
        assert!(
            (q - expected).abs() <= expected * 1e-9,
            "{promql} = {q} s, the engine's buckets give {expected} s"
        );
    }

    // The alerting rules loaded and evaluate without error against the live series.
    let in_file = std::fs::read_to_string(repo().join("ops/prometheus/veloz-rules.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count();
    assert!(in_file >= 6, "{in_file} alerting rules in the file");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = prom.api("rules?type=alert")["groups"].clone();
        let rules: Vec<serde_json::Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(rules.len(), in_file, "alerting rules loaded: {groups}");
        let bad: Vec<_> = rules.iter().filter(|r| r["health"] != "ok").collect();
        if bad.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not evaluated cleanly: {bad:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every query of the dashboard, with its variables set as Grafana would: success, and
    // data (the panels all have something to show after this run).
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/grafana/veloz.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard["panels"], &mut exprs);
    assert!(
        exprs.len() >= 20,
        "{} queries in the dashboard",
        exprs.len()
    );
    for expr in &exprs {
        let promql = expr
            .replace("$__rate_interval", "5m")
            .replace("$job", "veloz")
            .replace("$instance", ".*");
        assert!(
            !promql.contains('$'),
            "unknown dashboard variable in {expr}"
        );
        let result = prom.query(&promql);
        assert!(!result.is_empty(), "dashboard query has no data: {promql}");
    }
    // Its variables: `label_values(SELECTOR, LABEL)`, as Grafana asks the label API.
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(def) = var["definition"].as_str() else {
            continue;
        };
        let args = def
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable query {def}"));
        let (selector, label) = args.rsplit_once(',').unwrap();
        let selector = selector.replace("$job", "veloz");
        let values = prom.api(&format!(
            "label/{}/values?match[]={}",
            label.trim(),
            encode(&selector)
        ));
        let values: Vec<&str> = values
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let want = if label.trim() == "job" {
            "veloz"
        } else {
            engine.metrics.as_str()
        };
        assert!(values.contains(&want), "{def}: {values:?}");
    }

    drop(prom);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    eprintln!(
        "prometheus end to end: {} shard(s), p99 {p99_ns} ns in ({lo}, {hi}] s, {} dashboard \
         queries, {:.1} s",
        total(&text, "veloz_shards", ""),
        exprs.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Every `targets[].expr` under `v` (rows nest their panels).
fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("expr", Some(e)) => out.push(e.to_string()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        _ => {}
    }
}
