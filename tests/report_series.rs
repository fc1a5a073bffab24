//! `veloz report` never mixes series: logs laid out as the engine and the load generator
//! write them (written here with `IntervalLog`, fixed values, no clock) stay one table per
//! source and a column per tag; a load log and its echo baseline stay two series unless
//! `--compare` sets them side by side; the chart's latency axis turns log when the curves
//! span decades; the note naming the plot has its own line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use resvg::usvg::roxmltree;
use veloz_report::IntervalLog;

/// The engine's metrics, in its order (`crates/veloz-engine/src/metrics.rs`).
const METRICS: [&str; 5] = [
    "ingress_to_ack",
    "matching",
    "journal_append",
    "commit_wait",
    "ring_hop",
];

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report_series-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// `n` values of `ns` nanoseconds (exact at 3 significant digits when below 2048).
fn values(ns: u64, n: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid");
    h.record_n(ns, n).expect("in range");
    h
}

/// Write `lines` (tag, histogram), each a one-second interval from `i` s, to `path` with
/// `description` as the writer's comment.
fn write_log(path: &Path, description: &str, lines: &[(Option<&str>, u64, Histogram<u64>)]) {
    let mut log = IntervalLog::create_with_comments(
        path,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        &[description],
    )
    .expect("create");
    for (tag, second, h) in lines {
        log.write_interval(
            *tag,
            Duration::from_secs(*second),
            Duration::from_secs(1),
            h,
        )
        .expect("write");
    }
}

/// The engine's comment for a metric file (`crates/veloz-engine/src/reports.rs`).
fn engine_description(metric: &str) -> String {
    format!("veloz {metric}: what {metric} measures (ns); tag = shard")
}

/// The load generator's first comment (`crates/veloz-load/src/measure.rs`).
fn load_description(peer: &str) -> String {
    format!(
        "veloz load against 127.0.0.1:9000 ({peer}): round trip from intended send time to first answer, nanoseconds"
    )
}

/// Run `veloz` and return (stdout, stderr); fail when it fails.
fn veloz(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veloz"))
        .args(args)
        .output()
        .expect("run veloz");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "veloz {args:?} failed: {err}");
    (String::from_utf8(out.stdout).expect("utf-8"), err)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The cells of the row whose first cell is `label`, in the text after `from`.
fn row<'a>(text: &'a str, from: &str, label: &str) -> Vec<&'a str> {
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} in {text}"));
    let line = text[at..]
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("row {label:?} after {from:?} in {text}"));
    line[label.len()..].split_whitespace().collect()
}

/// An engine run's five metric files with two shards; metric k, shard s holds
/// `10 * (k + 1) + s` values of `100 * (k + 1)` ns over 3 intervals (one per second).
fn engine_run(d: &Path) -> Vec<PathBuf> {
    METRICS
        .iter()
        .enumerate()
        .map(|(k, metric)| {
            let path = d.join(format!("{metric}.hlog"));
            let mut lines = Vec::new();
            for second in 0..3u64 {
                for shard in 0..2u64 {
                    let total = 10 * (k as u64 + 1) + shard;
                    // 3 intervals whose counts add up to `total`.
                    let n = total / 3 + u64::from(second < total % 3);
                    let tag = if shard == 0 { "shard0" } else { "shard1" };
                    lines.push((Some(tag), second, values(100 * (k as u64 + 1), n)));
                }
            }
            write_log(&path, &engine_description(metric), &lines);
            path
        })
        .collect()
}

#[test]
fn five_engine_metrics_stay_five_tables_with_their_own_counts() {
    let d = dir("engine");
    let files = engine_run(&d);
    let mut args = vec!["report"];
    args.extend(files.iter().map(|p| s(p)));
    let (text, _) = veloz(&args);
    assert!(
        text.contains("10 series from 5 different sources: one table per source"),
        "{text}"
    );
    assert_eq!(text.matches("\n== ").count(), 5, "{text}");
    for (k, (metric, path)) in METRICS.iter().zip(&files).enumerate() {
        let heading = format!("\n== {}\n", path.display());
        assert!(text.contains(&heading), "{heading:?} in {text}");
        assert_eq!(
            row(&text, &heading, "latency (us)"),
            ["shard0", "shard1"],
            "{metric}"
        );
        let want = [10 * (k + 1), 10 * (k + 1) + 1].map(|c| c.to_string());
        assert_eq!(row(&text, &heading, "count"), want, "{metric}");
        assert_eq!(row(&text, &heading, "intervals"), ["3", "3"], "{metric}");
        let p50 = format!("0.{}00", k + 1);
        assert_eq!(row(&text, &heading, "  p50"), [&p50, &p50], "{metric}");
    }
    // The old sum of the five metrics per shard (10 + 20 + ... + 50 = 150) is nowhere.
    assert!(
        !text.contains(" 150\n") && !text.contains(" 155\n"),
        "{text}"
    );

    // JSON: one summary per series, each with its own files, count and intervals.
    args.push("--json");
    let v: serde_json::Value = serde_json::from_str(&veloz(&args).0).expect("valid JSON");
    let summaries = v["summaries"].as_array().expect("summaries");
    assert_eq!(summaries.len(), 10);
    for (i, sm) in summaries.iter().enumerate() {
        let (k, shard) = (i / 2, i % 2);
        assert_eq!(sm["source"], files[k].display().to_string());
        assert_eq!(sm["tag"], format!("shard{shard}"));
        assert_eq!(sm["count"], 10 * (k + 1) + shard);
        assert_eq!(sm["intervals"], 3);
    }

    // --tag picks one shard of every metric, still one table per metric.
    let (one, _) = veloz(&["report", s(&files[0]), s(&files[1]), "--tag", "shard1"]);
    let first = format!("\n== {}\n", files[0].display());
    assert_eq!(row(&one, &first, "count"), ["11"], "{one}");
    assert_eq!(row(&one, &first, "latency (us)"), ["shard1"], "{one}");
}

#[test]
fn five_tags_in_one_file_stay_five_columns() {
    // A writer that tags by metric within one file per shard: still never summed.
    let d = dir("tags");
    let path = d.join("shard0.hlog");
    let lines: Vec<(Option<&str>, u64, Histogram<u64>)> = METRICS
        .iter()
        .enumerate()
        .flat_map(|(k, m)| {
            (0..2u64).map(move |sec| (Some(*m), sec, values(1_000, (k as u64 + 1) * 2)))
        })
        .collect();
    write_log(&path, "per-shard metrics", &lines);
    let (text, _) = veloz(&["report", s(&path)]);
    assert!(!text.contains("=="), "one source, one table: {text}");
    assert_eq!(row(&text, "files:", "latency (us)"), METRICS);
    assert_eq!(row(&text, "files:", "count"), ["4", "8", "12", "16", "20"]);
    assert_eq!(row(&text, "files:", "intervals"), ["2"; 5]);
}

#[test]
fn load_log_and_its_baseline_stay_two_series() {
    let d = dir("baseline");
    let (rtt, base) = (d.join("load.hlog"), d.join("load.baseline.hlog"));
    write_log(
        &rtt,
        &load_description("veloz"),
        &[(None, 0, values(1_600, 100)), (None, 1, values(1_600, 100))],
    );
    write_log(
        &base,
        &load_description("echo baseline"),
        &[(None, 0, values(400, 30))],
    );
    let (text, _) = veloz(&["report", s(&rtt), s(&base)]);
    assert!(text.contains("2 series from 2 different sources"), "{text}");
    let (ha, hb) = (
        format!("\n== {}\n", rtt.display()),
        format!("\n== {}\n", base.display()),
    );
    assert_eq!(row(&text, &ha, "count"), ["200"], "{text}");
    assert_eq!(row(&text, &ha, "intervals"), ["2"], "{text}");
    assert_eq!(row(&text, &ha, "  p50"), ["1.600"], "{text}");
    assert_eq!(row(&text, &hb, "count"), ["30"], "{text}");
    assert_eq!(row(&text, &hb, "  p50"), ["0.400"], "{text}");
    assert!(!text.contains(" 230\n"), "never summed: {text}");

    // Renamed to the same file name, their descriptions still tell them apart.
    let (a, b) = (d.join("a"), d.join("b"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&b).expect("dir");
    let (ra, rb) = (a.join("rtt.hlog"), b.join("rtt.hlog"));
    std::fs::copy(&rtt, &ra).expect("copy");
    std::fs::copy(&base, &rb).expect("copy");
    let (text, _) = veloz(&["report", s(&ra), s(&rb)]);
    assert!(text.contains("2 series from 2 different sources"), "{text}");
    assert_eq!(
        row(&text, &format!("\n== {}\n", rb.display()), "count"),
        ["30"]
    );

    // The same metric from the same writer split over two files is one series, merged.
    let rc = b.join("load.hlog");
    write_log(
        &rc,
        &load_description("veloz"),
        &[(None, 2, values(1_600, 50))],
    );
    let (text, _) = veloz(&["report", s(&rtt), s(&rc)]);
    assert!(!text.contains("=="), "{text}");
    assert_eq!(row(&text, "files:", "count"), ["250"], "{text}");
    assert_eq!(row(&text, "files:", "intervals"), ["3"], "{text}");
}

#[test]
fn compare_sets_the_load_beside_its_baseline() {
    let d = dir("compare");
    let (rtt, base) = (d.join("load.hlog"), d.join("load.baseline.hlog"));
    write_log(
        &rtt,
        &load_description("veloz"),
        &[(None, 0, values(1_600, 100))],
    );
    write_log(
        &base,
        &load_description("echo baseline"),
        &[(None, 0, values(400, 50))],
    );
    let (text, _) = veloz(&["report", "--compare", s(&rtt), s(&base)]);
    assert!(
        text.starts_with(&format!("A: {}\nB: {}\n", rtt.display(), base.display())),
        "{text}"
    );
    assert_eq!(row(&text, "\n", "(untagged) (us)"), ["A", "B", "B/A"]);
    assert_eq!(row(&text, "\n", "  p50"), ["1.600", "0.400", "0.250"]);
    assert_eq!(row(&text, "\n", "count"), ["100", "50", "0.500"]);
    let svg = d.join("cmp.svg");
    veloz(&["report", "--compare", s(&rtt), s(&base), "--plot", s(&svg)]);
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(text.contains(&format!(">A: {}</text>", rtt.display())));
    assert!(text.contains(&format!(">B: {}</text>", base.display())));
}

/// The y tick labels of an SVG chart with their y positions, and its y scale.
fn y_ticks(svg: &str) -> (String, Vec<(String, f64)>, usize) {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let group = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("y-ticks"))
        .expect("y tick group");
    let ticks = group
        .children()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let y: f64 = n.attribute("y").expect("y").parse().expect("number");
            (n.text().unwrap_or_default().to_owned(), y)
        })
        .collect();
    let curves = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("class") == Some("series"))
        .count();
    (
        group.attribute("data-scale").expect("scale").to_owned(),
        ticks,
        curves,
    )
}

#[test]
fn plot_axis_is_log_when_the_curves_span_decades() {
    let d = dir("plot");
    let (rtt, base) = (d.join("load.hlog"), d.join("load.baseline.hlog"));
    // The round trip: 2 µs body, a 5 ms tail from the 99th percentile; the floor at 1 µs.
    let mut tail = values(2_000, 990);
    tail.record_n(5_000_000, 10).expect("in range");
    write_log(&rtt, &load_description("veloz"), &[(None, 0, tail)]);
    write_log(
        &base,
        &load_description("echo baseline"),
        &[(None, 0, values(1_000, 100))],
    );
    let svg = d.join("both.svg");
    veloz(&["report", s(&rtt), s(&base), "--plot", s(&svg)]);
    let text = std::fs::read_to_string(&svg).expect("svg written");
    let (scale, ticks, curves) = y_ticks(&text);
    assert_eq!(scale, "log");
    assert_eq!(curves, 2);
    assert!(text.contains(">Latency (log scale)</text>"), "{text}");
    assert!(text.contains(">load</text>") && text.contains(">load.baseline</text>"));
    let labels: Vec<&str> = ticks.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(labels, ["1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]);
    // Decades equally spaced, upwards.
    let gaps: Vec<f64> = ticks.windows(2).map(|w| w[0].1 - w[1].1).collect();
    assert!(
        gaps.iter().all(|g| (g - gaps[0]).abs() < 0.02 && *g > 0.0),
        "{gaps:?}"
    );
    for tick in ["0%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(text.contains(&format!(">{tick}</text>")), "x tick {tick}");
    }

    // One curve alone within two decades: linear from 0, unit in the title.
    let narrow = d.join("narrow.svg");
    veloz(&["report", s(&base), "--plot", s(&narrow)]);
    let text = std::fs::read_to_string(&narrow).expect("svg written");
    let (scale, ticks, curves) = y_ticks(&text);
    assert_eq!((scale.as_str(), curves), ("linear", 1));
    assert_eq!(ticks.first().map(|t| t.0.as_str()), Some("0"));
    assert!(text.contains(">Latency (µs)</text>"));
    assert!(
        text.contains(">load.baseline</text>"),
        "legend names the source"
    );
}

#[test]
fn the_plot_note_has_its_own_line() {
    let d = dir("newline");
    let (a, b) = (d.join("a.hlog"), d.join("b.hlog"));
    write_log(&a, "a", &[(Some("rtt"), 0, values(1_000, 10))]);
    write_log(&b, "b", &[(Some("rtt"), 0, values(1_000, 10))]);
    let svg = d.join("p.svg");
    // Both streams into one file, as `veloz report ... > out 2>&1` does.
    let out_path = d.join("out.txt");
    let out = File::create(&out_path).expect("create");
    let status = Command::new(env!("CARGO_BIN_EXE_veloz"))
        .args(["report", "--compare", s(&a), s(&b), "--plot", s(&svg)])
        .stdout(Stdio::from(out.try_clone().expect("clone")))
        .stderr(Stdio::from(out))
        .status()
        .expect("run veloz");
    assert!(status.success());
    let text = std::fs::read_to_string(&out_path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some(format!("plot written to {}", svg.display()).as_str()),
        "{text}"
    );
    assert_eq!(text.matches("plot written to").count(), 1, "{text}");
    // The line before it is the comparison's last row, whole.
    assert_eq!(
        lines[lines.len() - 2]
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["throughput", "(/s)", "10.0", "10.0", "1.000"],
        "{text}"
    );
}
