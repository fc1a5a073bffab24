//! Latency reports: HdrHistogram interval logs, percentile tables and charts.
//!
//! | module | what |
//! |---|---|
//! | [`hdrlog`] | write and read the standard HdrHistogram interval log (V2 deflate histograms, values in ns) |
//! | [`series`] | which intervals belong together (sources and series) and merging them |
//! | [`summary`] | the percentile table of each series in text or JSON, two runs side by side |
//! | [`plot`] | the percentile-distribution chart (log scale `1 / (1 - p)`) as SVG or PNG |
//! | [`text`] | number formatting shared by everything that prints figures |
//!
//! Writers (the engine's control thread, the load generator) need only [`IntervalLog`]:
//! ```no_run
//! # fn main() -> Result<(), veloz_report::HdrLogError> {
//! use std::time::{Duration, SystemTime};
//! use hdrhistogram::Histogram;
//! use veloz_report::IntervalLog;
//!
//! let mut log = IntervalLog::create("latency.hlog", SystemTime::now())?;
//! let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
//! h.record(12_345).expect("auto-resizing");
//! log.write_interval(Some("ingress_ack"), Duration::ZERO, Duration::from_secs(1), &h)?;
//! # Ok(()) }
//! ```
//! `veloz report` (the `veloz` binary) reads the logs back with [`read_log_file`].

#![forbid(unsafe_code)]

pub mod hdrlog;
pub mod plot;
pub mod series;
pub mod summary;
pub mod text;

pub use hdrlog::{
    parse_log, read_log, read_log_file, HdrLogError, Interval, IntervalLog, LogFile,
    MAX_VALUE_DIVISOR,
};
pub use plot::{render_png, render_svg, write_plot, PlotError, Series};
pub use series::{merge_series, sources, Merged, Source};
pub use summary::{
    compare, compare_summaries, render_comparison, render_report, summarize, CompareReport,
    Comparison, Ratios, Report, Summary, SummaryError,
};
pub use text::grouped;
