//! Percentile summaries of interval logs: the table of each series (p50, p90, p99, p99.9,
//! p99.99, max, mean, count, throughput), rendered as text or serialized (serde, for JSON),
//! and two runs compared side by side.
//!
//! # Definitions
//! - **Series**: one tag of one source; which intervals merge into which series, and what
//!   covered time is, is [`series`](crate::series)'s rule. A table never sums two series.
//! - **Percentiles** are HdrHistogram's `value_at_quantile`: the highest value equivalent to
//!   the recorded value at that rank (so within the histogram's precision, never below it).
//! - **Throughput** is `count / covered time` (recorded values per second); `None` when the
//!   covered time is zero.
//! - Values are nanoseconds in [`Summary`] (exact integers); the text table shows
//!   microseconds with three decimals.
//! - **Ratios** in a comparison are `B / A`; `None` when A's value is zero.
//!
//! Everything here is a pure function of its inputs: no clock, no IO.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::{AdditionError, Histogram};
use serde::{Deserialize, Serialize};

use super::hdrlog::LogFile;
use super::series::{merge_series, Merged};

/// The percentiles of the table: labels and quantiles. The quantiles are written out (not
/// `p / 100.0`, whose rounding turns 99.9 into 0.9990000000000001 and moves the rank).
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// How an untagged metric is shown.
pub const UNTAGGED: &str = "(untagged)";

/// Errors of summarising logs; each names the files or the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// `--tag` names a tag no interval has.
    #[error("{files}: no interval has tag {tag:?} (tags present: {})", available.join(", "))]
    TagNotFound {
        files: String,
        tag: String,
        available: Vec<String>,
    },
    /// The files hold no interval at all.
    #[error("{files}: no intervals in the log")]
    NoIntervals { files: String },
    /// An interval's histogram cannot be added to the merged one.
    #[error("{}: cannot merge an interval with tag {}: {source}", path.display(), tag.as_deref().unwrap_or(UNTAGGED))]
    Merge {
        path: PathBuf,
        tag: Option<String>,
        #[source]
        source: AdditionError,
    },
}

/// The percentile table of one metric of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The file or files summarised (comma-separated): the files of the series' source.
    pub source: String,
    /// The metric's tag; `null` for untagged lines.
    pub tag: Option<String>,
    /// Intervals merged.
    pub intervals: usize,
    /// Covered time in seconds (union of the intervals).
    pub covered_s: f64,
    /// Values recorded.
    pub count: u64,
    /// `count / covered_s`; `null` when nothing was covered.
    pub throughput_per_s: Option<f64>,
    /// Smallest value (ns).
    pub min_ns: u64,
    /// Mean (ns).
    pub mean_ns: f64,
    /// Median (ns).
    pub p50_ns: u64,
    /// 90th percentile (ns).
    pub p90_ns: u64,
    /// 99th percentile (ns).
    pub p99_ns: u64,
    /// 99.9th percentile (ns).
    pub p99_9_ns: u64,
    /// 99.99th percentile (ns).
    pub p99_99_ns: u64,
    /// Largest value (ns, highest equivalent value of its bucket).
    pub max_ns: u64,
}

impl Summary {
    /// The table of `histogram` (values in ns) covering `covered` over `intervals` intervals.
    /// The engine's shutdown report and the load generator can call this directly.
    pub fn from_histogram(
        source: &str,
        tag: Option<&str>,
        histogram: &Histogram<u64>,
        intervals: usize,
        covered: Duration,
    ) -> Summary {
        let q = |i: usize| histogram.value_at_quantile(PERCENTILES[i].1);
        let covered_s = covered.as_secs_f64();
        let count = histogram.len();
        let empty = histogram.is_empty();
        Summary {
            source: source.to_owned(),
            tag: tag.map(str::to_owned),
            intervals,
            covered_s,
            count,
            throughput_per_s: (covered_s > 0.0).then(|| count as f64 / covered_s),
            min_ns: if empty { 0 } else { histogram.min() },
            mean_ns: if empty { 0.0 } else { histogram.mean() },
            p50_ns: q(0),
            p90_ns: q(1),
            p99_ns: q(2),
            p99_9_ns: q(3),
            p99_99_ns: q(4),
            max_ns: if empty {
                0
            } else {
                histogram.highest_equivalent(histogram.max())
            },
        }
    }

    /// The table of one series; its `source` is the series' files.
    pub fn from_merged(merged: &Merged) -> Summary {
        Summary::from_histogram(
            &merged.files_label(),
            merged.tag.as_deref(),
            &merged.histogram,
            merged.intervals,
            merged.covered,
        )
    }

    /// The latency rows: (label, ns) for p50 ... p99.99 then max.
    pub fn latency_rows(&self) -> [(&'static str, u64); 6] {
        [
            (PERCENTILES[0].0, self.p50_ns),
            (PERCENTILES[1].0, self.p90_ns),
            (PERCENTILES[2].0, self.p99_ns),
            (PERCENTILES[3].0, self.p99_9_ns),
            (PERCENTILES[4].0, self.p99_99_ns),
            ("max", self.max_ns),
        ]
    }
}

/// The whole report of some files (what `veloz report --json` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The files read.
    pub files: Vec<String>,
    /// One summary per series: summaries of one source are consecutive and share their
    /// `source`.
    pub summaries: Vec<Summary>,
}

/// Summaries of `files`, one per series (or only the series tagged `tag`).
pub fn summarize(files: &[LogFile], tag: Option<&str>) -> Result<Report, SummaryError> {
    let summaries = merge_series(files, tag)?
        .iter()
        .map(Summary::from_merged)
        .collect();
    Ok(Report {
        files: files.iter().map(|f| f.path.display().to_string()).collect(),
        summaries,
    })
}

/// B / A for each row of the table; `None` where A is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub p99_99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub count: Option<f64>,
    pub throughput: Option<f64>,
}

/// One metric of run A beside the same metric of run B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The metric's tag in A (`null`: untagged); B's is `b.tag`, the same unless each run
    /// had a single, differently tagged metric.
    pub tag: Option<String>,
    pub a: Summary,
    pub b: Summary,
    /// B / A.
    pub ratios: Ratios,
}

/// Two runs side by side (what `veloz report --compare --json` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// Run A's files.
    pub a: String,
    /// Run B's files.
    pub b: String,
    /// One comparison per tag present in both runs, in A's order.
    pub comparisons: Vec<Comparison>,
    /// Tags only A has (shown as `(untagged)` for untagged lines).
    pub only_in_a: Vec<String>,
    /// Tags only B has.
    pub only_in_b: Vec<String>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| b / a)
}

/// Compare one metric of two runs: ratios are B / A.
pub fn compare_summaries(a: &Summary, b: &Summary) -> Comparison {
    let r = |x: u64, y: u64| ratio(x as f64, y as f64);
    Comparison {
        tag: a.tag.clone(),
        ratios: Ratios {
            p50: r(a.p50_ns, b.p50_ns),
            p90: r(a.p90_ns, b.p90_ns),
            p99: r(a.p99_ns, b.p99_ns),
            p99_9: r(a.p99_9_ns, b.p99_9_ns),
            p99_99: r(a.p99_99_ns, b.p99_99_ns),
            max: r(a.max_ns, b.max_ns),
            mean: ratio(a.mean_ns, b.mean_ns),
            count: r(a.count, b.count),
            throughput: match (a.throughput_per_s, b.throughput_per_s) {
                (Some(x), Some(y)) => ratio(x, y),
                _ => None,
            },
        },
        a: a.clone(),
        b: b.clone(),
    }
}

/// Compare two runs tag by tag (tags in both, in A's order). When each run has exactly one
/// metric, those two are compared whatever their tags (a load generator's `rtt` against an
/// engine's `ingress_ack`, say).
pub fn compare(a: &Report, b: &Report) -> CompareReport {
    if let ([sa], [sb]) = (a.summaries.as_slice(), b.summaries.as_slice()) {
        return CompareReport {
            a: a.files.join(", "),
            b: b.files.join(", "),
            comparisons: vec![compare_summaries(sa, sb)],
            only_in_a: Vec::new(),
            only_in_b: Vec::new(),
        };
    }
    let find = |r: &Report, tag: &Option<String>| r.summaries.iter().position(|s| &s.tag == tag);
    let comparisons = a
        .summaries
        .iter()
        .filter_map(|sa| find(b, &sa.tag).map(|j| compare_summaries(sa, &b.summaries[j])))
        .collect();
    let only = |x: &Report, y: &Report| {
        x.summaries
            .iter()
            .filter(|s| find(y, &s.tag).is_none())
            .map(|s| tag_label(s.tag.as_deref()).to_owned())
            .collect()
    };
    CompareReport {
        a: a.files.join(", "),
        b: b.files.join(", "),
        comparisons,
        only_in_a: only(a, b),
        only_in_b: only(b, a),
    }
}

/// A tag as shown to people.
pub fn tag_label(tag: Option<&str>) -> &str {
    tag.unwrap_or(UNTAGGED)
}

/// Nanoseconds as microseconds with three decimals.
pub fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1000.0)
}

fn opt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
}

fn opt_rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
}

/// Lay out rows of cells: the first column left-aligned, the others right-aligned.
fn layout(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = width[0]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = width[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The text of a report: one table per source (summaries sharing their `source`), a column
/// per series (tag). With more than one source, a line says how many tables follow and
/// that they are not summed, and each table is headed by its source's files.
pub fn render_report(report: &Report) -> String {
    let mut groups: Vec<&[Summary]> = Vec::new();
    let mut rest = report.summaries.as_slice();
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|s| s.source == first.source).count();
        groups.push(&rest[..n]);
        rest = &rest[n..];
    }
    let mut out = format!("files: {}\n", report.files.join(", "));
    if groups.len() <= 1 {
        out.push_str(&render_table(&report.summaries));
        return out;
    }
    let _ = writeln!(
        out,
        "{} series from {} different sources: one table per source, a column per series, never summed (compare two with --compare A B)",
        report.summaries.len(),
        groups.len()
    );
    for g in groups {
        let _ = writeln!(out, "\n== {}", g[0].source);
        out.push_str(&render_table(g));
    }
    out
}

/// One table: a column per summary.
fn render_table(summaries: &[Summary]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["latency (us)".to_owned()];
    header.extend(
        summaries
            .iter()
            .map(|s| tag_label(s.tag.as_deref()).to_owned()),
    );
    rows.push(header);
    for (i, (label, _)) in PERCENTILES
        .iter()
        .copied()
        .chain([("max", 1.0)])
        .enumerate()
    {
        let mut row = vec![format!("  {label}")];
        row.extend(summaries.iter().map(|s| us(s.latency_rows()[i].1 as f64)));
        rows.push(row);
    }
    let mut push = |label: &str, f: &dyn Fn(&Summary) -> String| {
        let mut row = vec![label.to_owned()];
        row.extend(summaries.iter().map(f));
        rows.push(row);
    };
    push("  mean", &|s| us(s.mean_ns));
    push("count", &|s| s.count.to_string());
    push("intervals", &|s| s.intervals.to_string());
    push("covered (s)", &|s| format!("{:.3}", s.covered_s));
    push("throughput (/s)", &|s| opt_rate(s.throughput_per_s));
    layout(&rows)
}

/// The text of a comparison: per tag, A and B side by side with B/A.
pub fn render_comparison(cmp: &CompareReport) -> String {
    let mut out = format!("A: {}\nB: {}\n", cmp.a, cmp.b);
    for c in &cmp.comparisons {
        let (a, b, r) = (&c.a, &c.b, &c.ratios);
        let name = if a.tag == b.tag {
            tag_label(c.tag.as_deref()).to_owned()
        } else {
            format!(
                "{} vs {}",
                tag_label(a.tag.as_deref()),
                tag_label(b.tag.as_deref())
            )
        };
        let mut rows = vec![vec![
            format!("{name} (us)"),
            "A".to_owned(),
            "B".to_owned(),
            "B/A".to_owned(),
        ]];
        let lat = [r.p50, r.p90, r.p99, r.p99_9, r.p99_99, r.max];
        for ((label, va), ((_, vb), ratio)) in a
            .latency_rows()
            .into_iter()
            .zip(b.latency_rows().into_iter().zip(lat))
        {
            rows.push(vec![
                format!("  {label}"),
                us(va as f64),
                us(vb as f64),
                opt_ratio(ratio),
            ]);
        }
        rows.push(vec![
            "  mean".to_owned(),
            us(a.mean_ns),
            us(b.mean_ns),
            opt_ratio(r.mean),
        ]);
        rows.push(vec![
            "count".to_owned(),
            a.count.to_string(),
            b.count.to_string(),
            opt_ratio(r.count),
        ]);
        rows.push(vec![
            "throughput (/s)".to_owned(),
            opt_rate(a.throughput_per_s),
            opt_rate(b.throughput_per_s),
            opt_ratio(r.throughput),
        ]);
        out.push('\n');
        out.push_str(&layout(&rows));
    }
    if !cmp.only_in_a.is_empty() {
        let _ = writeln!(out, "\nonly in A: {}", cmp.only_in_a.join(", "));
    }
    if !cmp.only_in_b.is_empty() {
        let _ = writeln!(out, "\nonly in B: {}", cmp.only_in_b.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).expect("valid");
        for &(v, n) in values {
            h.record_n(v, n).expect("auto-resizing");
        }
        h
    }

    fn summary(source: &str, tag: Option<&str>, values: &[(u64, u64)]) -> Summary {
        Summary::from_histogram(source, tag, &h(values), 2, Duration::from_secs(1))
    }

    #[test]
    fn one_source_is_one_table_with_a_column_per_tag() {
        let report = Report {
            files: vec!["m.hlog".to_owned()],
            summaries: vec![
                summary("m.hlog", Some("shard0"), &[(1000, 3)]),
                summary("m.hlog", Some("shard1"), &[(2000, 5)]),
            ],
        };
        let text = render_report(&report);
        assert!(
            text.starts_with("files: m.hlog\nlatency (us)     shard0  shard1\n"),
            "{text}"
        );
        assert!(
            text.contains("\ncount                 3       5\n"),
            "{text}"
        );
        assert!(!text.contains("=="), "{text}");
    }

    #[test]
    fn several_sources_are_separate_tables_and_say_so() {
        let report = Report {
            files: vec!["a.hlog".to_owned(), "b.hlog".to_owned()],
            summaries: vec![
                summary("a.hlog", Some("shard0"), &[(1000, 3)]),
                summary("a.hlog", Some("shard1"), &[(1000, 4)]),
                summary("b.hlog", Some("shard0"), &[(2000, 5)]),
            ],
        };
        let text = render_report(&report);
        let expected_start = "files: a.hlog, b.hlog\n\
             3 series from 2 different sources: one table per source, a column per series, never summed (compare two with --compare A B)\n\
             \n== a.hlog\n\
             latency (us)     shard0  shard1\n";
        assert!(text.starts_with(expected_start), "{text}");
        let b = text
            .find("\n== b.hlog\nlatency (us)     shard0\n")
            .expect("b's table");
        // Counts per column, and no column anywhere holds the sum (12).
        assert!(
            text[..b].contains("\ncount                 3       4\n"),
            "{text}"
        );
        assert!(text[b..].contains("\ncount                 5\n"), "{text}");
        assert!(!text.contains(" 12\n"), "{text}");
        assert_eq!(text.matches("\nintervals ").count(), 2, "{text}");
    }

    #[test]
    fn single_metrics_compare_across_tags_and_others_pair_by_tag() {
        let one = |tag: &str| Report {
            files: vec![format!("{tag}.hlog")],
            summaries: vec![Summary::from_histogram(
                tag,
                Some(tag),
                &h(&[(100, 1)]),
                1,
                Duration::from_secs(1),
            )],
        };
        let c = compare(&one("rtt"), &one("ingress_ack"));
        assert_eq!(c.comparisons.len(), 1);
        assert!(render_comparison(&c).contains("rtt vs ingress_ack (us)"));
        let mut two = one("x");
        two.summaries.extend(one("y").summaries);
        let c = compare(&two, &one("y"));
        assert_eq!(c.comparisons.len(), 1);
        assert_eq!(c.comparisons[0].tag.as_deref(), Some("y"));
        assert_eq!(c.only_in_a, vec!["x".to_owned()]);
        let c = compare(&two, &one("z"));
        assert!(c.comparisons.is_empty());
        assert_eq!(c.only_in_b, vec!["z".to_owned()]);
    }

    #[test]
    fn ratios_are_b_over_a_and_none_for_zero() {
        let a = Summary::from_histogram("a", None, &h(&[(100, 10)]), 1, Duration::from_secs(1));
        let b = Summary::from_histogram("b", None, &h(&[(200, 30)]), 1, Duration::from_secs(1));
        let c = compare_summaries(&a, &b);
        assert_eq!(c.ratios.p50, Some(2.0));
        assert_eq!(c.ratios.max, Some(2.0));
        assert_eq!(c.ratios.count, Some(3.0));
        assert_eq!(c.ratios.throughput, Some(3.0));
        let z = Summary::from_histogram("z", None, &h(&[]), 0, Duration::ZERO);
        let c = compare_summaries(&z, &b);
        assert_eq!(c.ratios.p50, None);
        assert_eq!(c.ratios.throughput, None);
    }
}
