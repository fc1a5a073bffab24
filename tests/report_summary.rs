//! Percentile tables, JSON, comparisons and charts of interval logs, through the library
//! and through `veloz report` itself. All inputs are fixed values: no clock in assertions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use resvg::usvg::roxmltree;
use veloz_report::{
    compare, read_log_file, render_comparison, render_report, render_svg, summarize, IntervalLog,
    Series, Summary,
};

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report_summary-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// 1..=1000 ns, each once: exactly representable at 3 significant digits.
fn one_to_thousand() -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("valid");
    for v in 1..=1000 {
        h.record(v).expect("auto-resizing");
    }
    h
}

/// 990 values of 100 ns and 10 of 1000 ns: a tail from the 99th percentile up.
fn tailed(scale: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("valid");
    h.record_n(100 * scale, 990).expect("auto-resizing");
    h.record_n(1000 * scale, 10).expect("auto-resizing");
    h
}

/// Write `intervals` (one second each, from 0 s) to `path`.
fn write_log(path: &Path, tag: Option<&str>, intervals: &[Histogram<u64>]) {
    let mut log =
        IntervalLog::create(path, UNIX_EPOCH + Duration::from_secs(1_700_000_000)).expect("create");
    for (i, h) in intervals.iter().enumerate() {
        log.write_interval(
            tag,
            Duration::from_secs(i as u64),
            Duration::from_secs(1),
            h,
        )
        .expect("write");
    }
}

#[test]
fn table_numbers_match_known_values() {
    let s = Summary::from_histogram("x", None, &one_to_thousand(), 1, Duration::from_secs(2));
    assert_eq!(s.count, 1000);
    assert_eq!(s.min_ns, 1);
    assert_eq!(s.p50_ns, 500);
    assert_eq!(s.p90_ns, 900);
    assert_eq!(s.p99_ns, 990);
    assert_eq!(s.p99_9_ns, 999);
    assert_eq!(s.p99_99_ns, 1000);
    assert_eq!(s.max_ns, 1000);
    assert_eq!(s.mean_ns, 500.5);
    assert_eq!(s.covered_s, 2.0);
    assert_eq!(s.throughput_per_s, Some(500.0));

    let t = Summary::from_histogram("x", None, &tailed(1), 1, Duration::from_secs(1));
    assert_eq!(
        (
            t.p50_ns,
            t.p90_ns,
            t.p99_ns,
            t.p99_9_ns,
            t.p99_99_ns,
            t.max_ns
        ),
        (100, 100, 100, 1000, 1000, 1000)
    );
    assert_eq!(t.mean_ns, 109.0);
}

#[test]
fn intervals_merge_and_throughput_uses_covered_time() {
    let d = dir("merge");
    let path = d.join("run.hlog");
    // Three one-second intervals, 1000 values each.
    write_log(
        &path,
        Some("rtt"),
        &[one_to_thousand(), one_to_thousand(), one_to_thousand()],
    );
    let file = read_log_file(&path).expect("read");
    let report = summarize(&[file], None).expect("summary");
    assert_eq!(report.summaries.len(), 1);
    let s = &report.summaries[0];
    assert_eq!(s.tag.as_deref(), Some("rtt"));
    assert_eq!((s.count, s.intervals), (3000, 3));
    assert_eq!(s.covered_s, 3.0);
    assert_eq!(s.throughput_per_s, Some(1000.0));
    assert_eq!((s.p50_ns, s.p99_ns, s.max_ns), (500, 990, 1000));

    let text = render_report(&report);
    let expected = format!(
        "files: {}\n\
         latency (us)        rtt\n  \
         p50             0.500\n  \
         p90             0.900\n  \
         p99             0.990\n  \
         p99.9           0.999\n  \
         p99.99          1.000\n  \
         max             1.000\n  \
         mean            0.500\n\
         count              3000\n\
         intervals             3\n\
         covered (s)       3.000\n\
         throughput (/s)  1000.0\n",
        path.display()
    );
    assert_eq!(text, expected);
}

#[test]
fn json_output_has_the_expected_fields() {
    let d = dir("json");
    let path = d.join("run.hlog");
    write_log(&path, Some("rtt"), &[tailed(1000)]);
    let out = veloz(&["report", "--json", path.to_str().expect("utf-8 path")]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["files"][0], path.display().to_string());
    let s = &v["summaries"][0];
    assert_eq!(s["tag"], "rtt");
    assert_eq!(s["count"], 1000);
    assert_eq!(s["intervals"], 1);
    assert_eq!(s["covered_s"], 1.0);
    assert_eq!(s["throughput_per_s"], 1000.0);
    // 100 µs and 1 ms at 3 significant digits: highest equivalent values of their buckets.
    let hist = tailed(1000);
    assert_eq!(s["p50_ns"], hist.highest_equivalent(100_000));
    assert_eq!(s["p99_ns"], hist.highest_equivalent(100_000));
    assert_eq!(s["p99_9_ns"], hist.highest_equivalent(1_000_000));
    assert_eq!(s["max_ns"], hist.highest_equivalent(1_000_000));
    for k in ["source", "min_ns", "mean_ns", "p90_ns", "p99_99_ns"] {
        assert!(s.get(k).is_some(), "field {k} missing in {s}");
    }
}

#[test]
fn compare_computes_b_over_a() {
    let d = dir("compare");
    let (a, b) = (d.join("a.hlog"), d.join("b.hlog"));
    write_log(&a, None, &[tailed(1)]);
    write_log(&b, None, &[tailed(2), tailed(2)]);
    let ra = summarize(&[read_log_file(&a).expect("a")], None).expect("a");
    let rb = summarize(&[read_log_file(&b).expect("b")], None).expect("b");
    let cmp = compare(&ra, &rb);
    assert_eq!(cmp.comparisons.len(), 1);
    let r = &cmp.comparisons[0].ratios;
    assert_eq!(r.p50, Some(2.0));
    assert_eq!(r.p99, Some(2.0));
    assert_eq!(r.p99_9, Some(2.0));
    assert_eq!(r.max, Some(2.0));
    assert_eq!(r.mean, Some(2.0));
    assert_eq!(r.count, Some(2.0));
    assert_eq!(r.throughput, Some(1.0));
    let text = render_comparison(&cmp);
    assert!(
        text.contains("\n  p50             0.100   0.200  2.000\n"),
        "{text}"
    );
    assert!(
        text.contains("\ncount              1000    2000  2.000\n"),
        "{text}"
    );

    // The same through the command line, text and JSON.
    let args = [
        "report",
        "--compare",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
    ];
    assert_eq!(veloz(&args), text);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v: serde_json::Value = serde_json::from_str(&veloz(&json_args)).expect("valid JSON");
    assert_eq!(v["comparisons"][0]["ratios"]["p99_9"], 2.0);
    assert_eq!(v["comparisons"][0]["a"]["count"], 1000);
    assert_eq!(v["comparisons"][0]["b"]["count"], 2000);
}

#[test]
fn compare_needs_exactly_two_files() {
    let d = dir("compare_args");
    let a = d.join("a.hlog");
    write_log(&a, None, &[tailed(1)]);
    let out = Command::new(env!("CARGO_BIN_EXE_veloz"))
        .args(["report", "--compare", a.to_str().expect("utf-8")])
        .output()
        .expect("run veloz");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exactly two files"), "{err}");
}

/// Check the SVG is well-formed XML and return its `<polyline class="series">` count.
fn polylines(svg: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("class") == Some("series"))
        .inspect(|n| {
            let pts = n.attribute("points").expect("points");
            for p in pts.split(' ') {
                let (x, y) = p.split_once(',').expect("x,y");
                assert!(x.parse::<f64>().is_ok() && y.parse::<f64>().is_ok(), "{p}");
            }
        })
        .count()
}

#[test]
fn svg_is_well_formed_with_one_curve_per_run() {
    let (a, b, c) = (tailed(1), tailed(3), one_to_thousand());
    let series = [
        Series {
            label: "A: a.hlog",
            histogram: &a,
        },
        Series {
            label: "B: b.hlog",
            histogram: &b,
        },
        Series {
            label: "C <&>",
            histogram: &c,
        },
    ];
    let svg = render_svg("Latency by percentile distribution", &series);
    assert_eq!(polylines(&svg), 3);
    for tick in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"] {
        assert!(svg.contains(&format!(">{tick}</text>")), "tick {tick}");
    }
    assert!(svg.contains(">A: a.hlog</text>") && svg.contains(">C &lt;&amp;&gt;</text>"));
    // Deterministic: the same input gives the same bytes.
    assert_eq!(
        svg,
        render_svg("Latency by percentile distribution", &series)
    );
}

#[test]
fn cli_writes_svg_and_png_plots() {
    let d = dir("plot");
    let (a, b) = (d.join("a.hlog"), d.join("b.hlog"));
    write_log(&a, Some("rtt"), &[tailed(1)]);
    write_log(&b, Some("rtt"), &[tailed(2)]);
    let svg = d.join("cmp.svg");
    veloz(&[
        "report",
        "--compare",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
        "--plot",
        svg.to_str().expect("utf-8"),
    ]);
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert_eq!(polylines(&text), 2);
    assert!(text.contains(&format!(">A: {}</text>", a.display())));

    let png = d.join("one.png");
    let out = Command::new(env!("CARGO_BIN_EXE_veloz"))
        .args([
            "report",
            a.to_str().expect("utf-8"),
            "--plot",
            png.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run veloz");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let bytes = std::fs::read(&png).expect("png written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(&bytes[16..24], &[0, 0, 0x03, 0xc0, 0, 0, 0x02, 0x58]);
    } else {
        // Only a host without any font may refuse, and it must say so.
        assert!(err.contains("no system fonts"), "{err}");
    }
}

/// Run the `veloz` binary and return its stdout; fail with its stderr.
fn veloz(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_veloz"))
        .args(args)
        .output()
        .expect("run veloz");
    assert!(
        out.status.success(),
        "veloz {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
