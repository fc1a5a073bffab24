//! The interval logs Veloz writes are the standard format: the `hdrhistogram` PyPI package
//! (module `hdrh`, a port of the Java `HistogramLogReader`) reads one back and computes the
//! same count, p99 and max as Veloz.
//!
//! Python: `$VELOZ_PYTHON`, else `.tools/venv/bin/python` under the crate root (`make tools`
//! creates it with `hdrhistogram` installed); without either the test fails and says so.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::python;
use hdrhistogram::Histogram;
use veloz_report::{read_log_file, summarize, IntervalLog};

const SCRIPT: &str = r#"
import sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 1000 * 1000 * 1000, 3))
n = 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    n += 1
    print("interval", h.get_tag(), h.get_start_time_stamp(), h.get_end_time_stamp(),
          h.get_total_count(), h.get_value_at_percentile(99.0), h.get_max_value())
reader.close()

reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 1000 * 1000 * 1000, 3))
total = HdrHistogram(1, 3600 * 1000 * 1000 * 1000, 3)
while reader.add_next_interval_histogram(total) is not None:
    pass
print("start", reader.get_start_time_sec())
print("merged", n, total.get_total_count(), total.get_value_at_percentile(99.0),
      total.get_value_at_percentile(50.0), total.get_max_value())
"#;

/// A deterministic histogram: `n` values from 1 µs to `spread` µs (xorshift64).
fn histogram(seed: u64, n: u64, spread: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid");
    let mut x = seed;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h.record(1_000 + x % (spread * 1_000)).expect("in range");
    }
    h
}

#[test]
fn python_hdrhistogram_reads_veloz_logs() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_python");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("rtt.hlog");
    // The last one auto-resizes (as the engine's do): its encoded range is its current one.
    let mut auto = Histogram::<u64>::new(3).expect("valid");
    auto.add(histogram(9, 1_000, 2)).expect("auto-resizing");
    let hists = [histogram(7, 50_000, 40), histogram(8, 30_000, 900), auto];
    let mut log = IntervalLog::create(&path, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .expect("create");
    for (i, h) in hists.iter().enumerate() {
        log.write_interval(
            Some("rtt"),
            Duration::from_secs(i as u64),
            Duration::from_secs(1),
            h,
        )
        .expect("write");
    }
    drop(log);

    let py = python("the hdrhistogram package");
    let out = Command::new(&py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed (is the hdrhistogram package installed? run `make tools`):\n{stderr}"
    );
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(' ').collect()).collect();

    // Per interval: tag, absolute start/end in ms, count, p99, max all as Veloz has them.
    for (i, h) in hists.iter().enumerate() {
        let l = &lines[i];
        let start_ms = (1_700_000_000 + i as u64) * 1000;
        assert_eq!(l[0], "interval", "{stdout}");
        assert_eq!(l[1], "rtt");
        assert_eq!(l[2].parse::<f64>().expect("start"), start_ms as f64);
        assert_eq!(l[3].parse::<f64>().expect("end"), (start_ms + 1000) as f64);
        assert_eq!(l[4].parse::<u64>().expect("count"), h.len(), "{stdout}");
        assert_eq!(
            l[5].parse::<u64>().expect("p99"),
            h.value_at_quantile(0.99),
            "{stdout}"
        );
        assert_eq!(
            l[6].parse::<u64>().expect("max"),
            h.highest_equivalent(h.max()),
            "{stdout}"
        );
    }

    // The whole log merged, against Veloz's own report of the same file.
    let report = summarize(&[read_log_file(&path).expect("read")], None).expect("summary");
    let s = &report.summaries[0];
    let start = &lines[hists.len()];
    assert_eq!(start[0], "start");
    assert_eq!(start[1].parse::<f64>().expect("start"), 1_700_000_000.0);
    let merged = &lines[hists.len() + 1];
    assert_eq!(merged[0], "merged");
    assert_eq!(merged[1].parse::<usize>().expect("n"), s.intervals);
    assert_eq!(merged[2].parse::<u64>().expect("count"), s.count);
    assert_eq!(merged[3].parse::<u64>().expect("p99"), s.p99_ns, "{stdout}");
    assert_eq!(merged[4].parse::<u64>().expect("p50"), s.p50_ns, "{stdout}");
    assert_eq!(merged[5].parse::<u64>().expect("max"), s.max_ns, "{stdout}");
}
