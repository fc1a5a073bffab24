//! The monitoring files under `ops/`: the alerting rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), and every metric the rules and the Grafana dashboard
//! name is one the engine exports. No engine runs here (tests/engine_prometheus.rs runs both
//! files against a live Prometheus scraping a live engine).

use std::path::{Path, PathBuf};
use std::process::Command;

use hdrhistogram::Histogram;
use veloz_engine::exposition::{render, ShardView};
use veloz_engine::metrics::{new_histogram, Counters};

fn ops(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(rel)
}

/// `promtool ARGS` (in `dir`) must succeed.
fn promtool(dir: &Path, args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is missing: run `make tools` (installs the Debian package prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = ops("prometheus");
    promtool(&dir, &["check", "rules", "veloz-rules.yml"]);
    promtool(&dir, &["test", "rules", "veloz-rules.test.yml"]);
}

/// Every `veloz_...` name in `text` (metric names; `_bucket` and the like included).
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("veloz_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let before = start.checked_sub(1).map(|b| bytes[b]);
        // Not the tail of a longer word, nor a file name (veloz-rules.yml has a '-').
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            names.push(text[start..end].to_string());
        }
        i = end;
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_dashboard_and_rules_name_only_metrics_the_engine_exports() {
    let counters = Counters::default();
    let latencies: [Histogram<u64>; 5] = std::array::from_fn(|_| new_histogram());
    let views = [ShardView {
        shard: 0,
        counters: &counters,
        latencies: &latencies,
    }];
    let exported = render(&views, 0.0, 0) + &veloz_engine::replication::metrics::exported(1);
    // Series names, and the family names of the TYPE lines (a histogram's base name).
    let series: Vec<&str> = exported
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(family) => family.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();

    let dashboard = std::fs::read_to_string(ops("grafana/veloz.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert_eq!(json["uid"], "veloz-engine");
    let rules = std::fs::read_to_string(ops("prometheus/veloz-rules.yml")).unwrap();
    for (file, text) in [("ops/grafana/veloz.json", &dashboard), ("rules", &rules)] {
        let names = metric_names(text);
        assert!(names.len() >= 5, "{file}: {names:?}");
        for name in names {
            assert!(
                series.contains(&name.as_str()),
                "{file} names {name}, which the engine does not export"
            );
        }
    }

    // Each panel that queries has a unique id, a Prometheus data source and its queries.
    let mut ids = Vec::new();
    let panels = json["panels"].as_array().expect("panels");
    for p in panels {
        ids.push(p["id"].as_u64().expect("panel id"));
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{title}");
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids are unique");
}
