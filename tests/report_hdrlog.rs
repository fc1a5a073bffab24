//! Interval logs written by `veloz_report::IntervalLog` read back exactly, carry the
//! standard header lines, and are readable line by line while being written.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use veloz_report::{read_log, read_log_file, HdrLogError, IntervalLog};

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report_hdrlog-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// A deterministic histogram: `n` values spread over 1 µs .. ~`spread` µs.
fn histogram(seed: u64, n: u64, spread: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("valid");
    let mut x = seed;
    for _ in 0..n {
        // xorshift64: fixed sequence, no clock, no rand crate.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h.record(1_000 + x % (spread * 1_000))
            .expect("auto-resizing");
    }
    h
}

#[test]
fn round_trip_is_exact() {
    let path = dir("round_trip").join("run.hlog");
    let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let written: Vec<(Option<&str>, Duration, Duration, Histogram<u64>)> = vec![
        (
            Some("ingress_ack"),
            Duration::ZERO,
            Duration::from_secs(1),
            histogram(1, 10_000, 50),
        ),
        (
            Some("matching"),
            Duration::ZERO,
            Duration::from_secs(1),
            histogram(2, 5_000, 3),
        ),
        (
            Some("ingress_ack"),
            Duration::from_millis(1_000),
            Duration::from_millis(1_250),
            histogram(3, 20_000, 5_000),
        ),
        (
            None,
            Duration::from_millis(2_250),
            Duration::from_millis(1),
            {
                let mut h =
                    Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid");
                h.record_n(42, 7).expect("in range");
                h.record(3_599_999_999_999).expect("in range");
                h
            },
        ),
        (
            Some("empty"),
            Duration::from_secs(3),
            Duration::from_secs(1),
            Histogram::<u64>::new(3).expect("valid"),
        ),
    ];
    let mut log = IntervalLog::create(&path, start).expect("create");
    log.write_comment("metric set: test").expect("comment");
    for (tag, s, d, h) in &written {
        log.write_interval(*tag, *s, *d, h).expect("write");
    }
    drop(log);

    let file = read_log_file(&path).expect("read back");
    assert_eq!(
        file.start_time,
        Some(Duration::from_millis(1_700_000_000_123))
    );
    assert_eq!(file.intervals.len(), written.len());
    for (got, (tag, s, d, h)) in file.intervals.iter().zip(&written) {
        assert_eq!(got.tag.as_deref(), *tag);
        assert_eq!(got.start, *s);
        assert_eq!(got.duration, *d);
        assert_eq!(&got.histogram, h, "histogram of {tag:?} at {s:?}");
        assert_eq!(got.histogram.len(), h.len());
        assert_eq!(got.histogram.max(), h.max());
        assert_eq!(
            got.histogram.value_at_quantile(0.99),
            h.value_at_quantile(0.99)
        );
    }
}

#[test]
fn header_and_lines_follow_the_standard_layout() {
    let path = dir("layout").join("run.hlog");
    let mut log = IntervalLog::create(&path, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .expect("create");
    let mut h = Histogram::<u64>::new(3).expect("valid");
    h.record(2_500_000).expect("auto-resizing"); // 2.5 ms
    log.write_interval(
        Some("rtt"),
        Duration::from_millis(1500),
        Duration::from_secs(1),
        &h,
    )
    .expect("write");
    drop(log);
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..6],
        &[
            "#Veloz latency log: values in nanoseconds; Interval_Max in milliseconds",
            "#[Histogram log format version 1.3]",
            "#[StartTime: 1700000000.000 (seconds since epoch)]",
            "#[BaseTime: 1700000000.000 (seconds since epoch)]",
            "#[MaxValueDivisor: 1000000.000]",
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        ]
    );
    assert_eq!(lines.len(), 7, "{text}");
    // Tag, start (s), length (s), max in ms (the bucket's highest equivalent of 2.5 ms),
    // then the V2-deflate histogram ("HISTF" is base64 of its cookie 0x1c849304).
    let max_ms = h.max() as f64 / 1e6;
    let prefix = format!("Tag=rtt,1.500,1.000,{max_ms:.3},HISTF");
    assert!(lines[6].starts_with(&prefix), "{} vs {prefix}", lines[6]);
}

#[test]
fn log_is_readable_after_every_write() {
    let path = dir("live").join("live.hlog");
    let mut log = IntervalLog::create(&path, UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .expect("create");
    assert!(read_log(&path).expect("header only").is_empty());
    for i in 0..5u64 {
        let h = histogram(i + 10, 100, 10);
        log.write_interval(
            Some("m"),
            Duration::from_secs(i),
            Duration::from_secs(1),
            &h,
        )
        .expect("write");
        // The writer is still open: what is on disk is already complete.
        let got = read_log(&path).expect("read while open");
        assert_eq!(got.len() as u64, i + 1);
        assert_eq!(got.last().map(|g| &g.histogram), Some(&h));
    }
    // A line being written (no newline yet) is skipped, not an error.
    let mut text = std::fs::read(&path).expect("read");
    text.extend_from_slice(b"Tag=m,5.000,1.000,0.010,HISTFAAAA");
    let partial = path.with_file_name("partial.hlog");
    std::fs::write(&partial, &text).expect("write");
    assert_eq!(read_log(&partial).expect("tail skipped").len(), 5);
}

#[test]
fn errors_name_the_file_and_line() {
    let d = dir("errors");
    let bad_tag = IntervalLog::create(d.join("t.hlog"), UNIX_EPOCH)
        .expect("create")
        .write_interval(
            Some("has space"),
            Duration::ZERO,
            Duration::from_secs(1),
            &Histogram::<u64>::new(3).expect("valid"),
        )
        .unwrap_err();
    assert!(
        matches!(bad_tag, HdrLogError::InvalidTag { .. }),
        "{bad_tag:?}"
    );
    assert!(bad_tag.to_string().contains("t.hlog"), "{bad_tag}");

    let corrupt = d.join("corrupt.hlog");
    let mut log = IntervalLog::create(&corrupt, UNIX_EPOCH).expect("create");
    log.write_interval(
        None,
        Duration::ZERO,
        Duration::from_secs(1),
        &histogram(1, 10, 1),
    )
    .expect("write");
    drop(log);
    let mut text = std::fs::read_to_string(&corrupt).expect("read");
    text.push_str("0.000,1.000,0.0,HISTFAAAAnotahistogram\n");
    std::fs::write(&corrupt, text).expect("write");
    let e = read_log(&corrupt).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:8: ", corrupt.display())),
        "error names file and line: {msg}"
    );

    let missing = d.join("missing.hlog");
    let e = read_log(&missing).unwrap_err();
    assert!(e.to_string().contains("missing.hlog"), "{e}");
}
