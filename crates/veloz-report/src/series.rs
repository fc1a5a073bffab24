//! Which intervals belong together: sources, series, and merging the intervals of a series.
//!
//! # The rule
//! - A **source** is what one or more files measure. Two files are the same source when
//!   their file names without the `.hlog` extension are equal **and** their
//!   [descriptions](crate::hdrlog::LogFile::description) (the writer's first comment) are
//!   equal, or both absent. The name is what Veloz's writers use to say what a file holds:
//!   the engine writes `REPORTS/<metric>.hlog` (`ingress_to_ack`, `matching`,
//!   `journal_append`, `commit_wait`, `ring_hop`, tag `shardN`); the load generator writes
//!   its `--hlog` file (untagged) and the echo baseline's log beside it as
//!   `<name>.baseline.hlog`. The description separates what the name alone does not: a
//!   load log and an echo baseline log renamed to the same file name still say
//!   `(veloz)` and `(echo baseline)`.
//! - A **series** is one tag of one source (`None` for untagged lines). The intervals of a
//!   series are merged (added into one histogram), across files too: that is the one case
//!   where files merge, one metric of one writer split over several files. Different
//!   series are never merged: five metric files of an engine run with two shards are ten
//!   series, and a load log beside its baseline log are two, even though both are
//!   untagged.
//! - A source is named by its file name without `.hlog`, unless two sources share that
//!   name; then each is named by its files' paths.
//! - Sources come in the order their first file was given, series within a source in the
//!   order their tags first appear.
//!
//! Comparing two things (a run against its baseline, one run against another) is not
//! merging: `veloz report --compare A B` sets them side by side (see
//! [`compare`](crate::summary::compare)).
//!
//! # Merging
//! - A series' histogram is the sum of its intervals' histograms, auto-resizing, with the
//!   finest precision and lowest unit among them, so merging loses nothing.
//! - **Covered time** is the length of the union of the intervals' `[start, start +
//!   duration)` spans, each file's spans shifted by its start time relative to the
//!   earliest file of the source. Files recorded over the same wall time thus cover it
//!   once, and gaps between intervals are not counted.
//!
//! Everything here is a pure function of its inputs: no clock, no IO.

use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::hdrlog::LogFile;
use super::summary::{tag_label, SummaryError};

/// One source: the files that measure the same thing (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// How the source is shown: the file name without `.hlog`, or the files' paths when
    /// another source has the same name.
    pub name: String,
    /// Indexes of its files in the slice given to [`sources`], in that slice's order.
    pub files: Vec<usize>,
}

/// The name of a file as a source: its file name without a final `.hlog`.
pub fn source_name(file: &LogFile) -> String {
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.path.display().to_string());
    match name.strip_suffix(".hlog") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => name,
    }
}

/// Group `files` into sources (see the module docs for the rule).
pub fn sources(files: &[LogFile]) -> Vec<Source> {
    let mut keys: Vec<(String, Option<&str>)> = Vec::new();
    let mut out: Vec<Source> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let key = (source_name(f), f.description());
        match keys.iter().position(|k| *k == key) {
            Some(j) => out[j].files.push(i),
            None => {
                out.push(Source {
                    name: key.0.clone(),
                    files: vec![i],
                });
                keys.push(key);
            }
        }
    }
    for (j, (name, _)) in keys.iter().enumerate() {
        if keys.iter().filter(|(n, _)| n == name).count() > 1 {
            out[j].name = out[j]
                .files
                .iter()
                .map(|&i| files[i].path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    out
}

/// All intervals of one series merged.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The source's name ([`Source::name`]).
    pub source: String,
    /// The source's files.
    pub files: Vec<PathBuf>,
    /// The tag (`None`: untagged lines).
    pub tag: Option<String>,
    /// Sum of the intervals' histograms.
    pub histogram: Histogram<u64>,
    /// Number of intervals merged.
    pub intervals: usize,
    /// Union of the intervals' spans (see the module docs).
    pub covered: Duration,
}

impl Merged {
    /// The source's files as one string (`a.hlog, b.hlog`).
    pub fn files_label(&self) -> String {
        self.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The series as shown in a legend: `source [tag]`, or the source alone when untagged.
    pub fn label(&self) -> String {
        match &self.tag {
            Some(t) => format!("{} [{t}]", self.source),
            None => self.source.clone(),
        }
    }
}

/// Merge the intervals of `files` per series (see the module docs); with `tag`, only the
/// series with that tag (an error when no interval has it).
pub fn merge_series(files: &[LogFile], tag: Option<&str>) -> Result<Vec<Merged>, SummaryError> {
    let names = || {
        files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut all_tags: Vec<Option<&str>> = Vec::new();
    for i in files.iter().flat_map(|f| &f.intervals) {
        if !all_tags.contains(&i.tag.as_deref()) {
            all_tags.push(i.tag.as_deref());
        }
    }
    if all_tags.is_empty() {
        return Err(SummaryError::NoIntervals { files: names() });
    }
    if let Some(want) = tag {
        if !all_tags.contains(&Some(want)) {
            return Err(SummaryError::TagNotFound {
                files: names(),
                tag: want.to_owned(),
                available: all_tags.iter().map(|t| tag_label(*t).to_owned()).collect(),
            });
        }
    }
    let mut out = Vec::new();
    for source in sources(files) {
        let members: Vec<&LogFile> = source.files.iter().map(|&i| &files[i]).collect();
        let mut tags: Vec<Option<&str>> = Vec::new();
        for i in members.iter().flat_map(|f| &f.intervals) {
            if !tags.contains(&i.tag.as_deref()) {
                tags.push(i.tag.as_deref());
            }
        }
        if let Some(want) = tag {
            tags.retain(|t| *t == Some(want));
        }
        for t in tags {
            out.push(merge_one(&source.name, &members, t)?);
        }
    }
    Ok(out)
}

/// Merge the intervals tagged `tag` of `files` (one source).
fn merge_one(source: &str, files: &[&LogFile], tag: Option<&str>) -> Result<Merged, SummaryError> {
    let selected = || {
        files.iter().flat_map(move |f| {
            f.intervals
                .iter()
                .filter(move |i| i.tag.as_deref() == tag)
                .map(move |i| (*f, i))
        })
    };
    let (mut low, mut sigfig) = (u64::MAX, 0u8);
    for (_, i) in selected() {
        low = low.min(i.histogram.low());
        sigfig = sigfig.max(i.histogram.sigfig());
    }
    let low = low.max(1);
    let mut histogram = Histogram::<u64>::new_with_bounds(low, low * 2, sigfig)
        .expect("bounds taken from valid histograms");
    histogram.auto(true);
    let earliest = files.iter().filter_map(|f| f.start_time).min();
    let mut spans = Vec::new();
    for (f, i) in selected() {
        histogram
            .add(&i.histogram)
            .map_err(|source| SummaryError::Merge {
                path: f.path.clone(),
                tag: tag.map(str::to_owned),
                source,
            })?;
        let shift = match (f.start_time, earliest) {
            (Some(s), Some(e)) => s.saturating_sub(e),
            _ => Duration::ZERO,
        };
        spans.push((shift + i.start, i.duration));
    }
    Ok(Merged {
        source: source.to_owned(),
        files: files.iter().map(|f| f.path.clone()).collect(),
        tag: tag.map(str::to_owned),
        histogram,
        intervals: spans.len(),
        covered: covered_time(&mut spans),
    })
}

/// Length of the union of `(start, duration)` spans (sorts `spans`).
pub fn covered_time(spans: &mut [(Duration, Duration)]) -> Duration {
    spans.sort_unstable();
    let mut total = Duration::ZERO;
    let mut current: Option<(Duration, Duration)> = None;
    for &(start, len) in spans.iter() {
        let end = start + len;
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdrlog::{Interval, UNITS_COMMENT};

    fn h(values: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).expect("valid");
        for &(v, n) in values {
            h.record_n(v, n).expect("auto-resizing");
        }
        h
    }

    fn interval(tag: Option<&str>, start_s: u64, hist: Histogram<u64>) -> Interval {
        Interval {
            tag: tag.map(str::to_owned),
            start: Duration::from_secs(start_s),
            duration: Duration::from_secs(1),
            histogram: hist,
        }
    }

    fn file(name: &str, description: &str, start: u64, intervals: Vec<Interval>) -> LogFile {
        LogFile {
            path: PathBuf::from(name),
            start_time: Some(Duration::from_secs(start)),
            intervals,
            comments: vec![UNITS_COMMENT.to_owned(), description.to_owned()],
        }
    }

    #[test]
    fn covered_time_is_the_union_of_spans() {
        let s = |a: u64, d: u64| (Duration::from_secs(a), Duration::from_secs(d));
        let mut spans = vec![s(5, 1), s(0, 2), s(1, 2), s(10, 0)];
        assert_eq!(covered_time(&mut spans), Duration::from_secs(4));
        assert_eq!(covered_time(&mut []), Duration::ZERO);
    }

    #[test]
    fn sources_need_the_same_name_and_description() {
        let files = [
            file("r1/matching.hlog", "veloz matching", 0, Vec::new()),
            file("load.hlog", "veloz load (veloz)", 0, Vec::new()),
            file("r2/matching.hlog", "veloz matching", 0, Vec::new()),
            file(
                "load.baseline.hlog",
                "veloz load (echo baseline)",
                0,
                Vec::new(),
            ),
            file("b/load.hlog", "veloz load (echo baseline)", 0, Vec::new()),
        ];
        let s = sources(&files);
        let got: Vec<(&str, &[usize])> = s
            .iter()
            .map(|s| (s.name.as_str(), s.files.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("matching", &[0, 2][..]),
                ("load.hlog", &[1][..]),
                ("load.baseline", &[3][..]),
                ("b/load.hlog", &[4][..]),
            ]
        );
    }

    #[test]
    fn series_are_one_tag_of_one_source_and_never_summed_across_sources() {
        // Two engine metric files, two shards each, plus an untagged line in one of them.
        let files = [
            file(
                "ingress_to_ack.hlog",
                "veloz ingress_to_ack",
                100,
                vec![
                    interval(Some("shard0"), 0, h(&[(10, 1)])),
                    interval(Some("shard1"), 0, h(&[(20, 2)])),
                    interval(Some("shard0"), 1, h(&[(30, 3)])),
                ],
            ),
            file(
                "matching.hlog",
                "veloz matching",
                100,
                vec![
                    interval(Some("shard0"), 0, h(&[(1, 4)])),
                    interval(None, 0, h(&[(7, 5)])),
                ],
            ),
        ];
        let m = merge_series(&files, None).expect("merges");
        let got: Vec<(String, u64, usize)> = m
            .iter()
            .map(|m| (m.label(), m.histogram.len(), m.intervals))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ingress_to_ack [shard0]".to_owned(), 4, 2),
                ("ingress_to_ack [shard1]".to_owned(), 2, 1),
                ("matching [shard0]".to_owned(), 4, 1),
                ("matching".to_owned(), 5, 1),
            ]
        );
        assert_eq!(m[0].covered, Duration::from_secs(2));
        assert_eq!(m[0].files_label(), "ingress_to_ack.hlog");

        let only = merge_series(&files, Some("shard0")).expect("tag exists");
        let labels: Vec<String> = only.iter().map(Merged::label).collect();
        assert_eq!(labels, vec!["ingress_to_ack [shard0]", "matching [shard0]"]);
        let e = merge_series(&files, Some("nope")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ingress_to_ack.hlog, matching.hlog: no interval has tag \"nope\" (tags present: shard0, shard1, (untagged))"
        );
    }

    #[test]
    fn files_of_one_source_merge_aligned_on_their_start_times() {
        // One metric split over two files started one second apart, same two seconds.
        let a = file(
            "a/rtt.hlog",
            "rtt",
            100,
            vec![
                interval(None, 0, h(&[(1, 1)])),
                interval(None, 1, h(&[(1, 1)])),
            ],
        );
        let b = file(
            "b/rtt.hlog",
            "rtt",
            101,
            vec![interval(None, 0, h(&[(1, 1)]))],
        );
        let m = merge_series(&[a, b], None).expect("merges");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].covered, Duration::from_secs(2));
        assert_eq!((m[0].histogram.len(), m[0].intervals), (3, 3));
        assert_eq!(m[0].files_label(), "a/rtt.hlog, b/rtt.hlog");
    }

    #[test]
    fn empty_input_is_an_error() {
        let e = merge_series(&[file("e.hlog", "x", 0, Vec::new())], None).unwrap_err();
        assert_eq!(e.to_string(), "e.hlog: no intervals in the log");
    }
}
