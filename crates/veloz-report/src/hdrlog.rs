//! HdrHistogram interval logs: the standard text format that HdrHistogram's own tools
//! (Java `HistogramLogReader`/`HistogramLogProcessor`, the `hdrhistogram` PyPI package,
//! HdrHistogram_c, hdrhistogram-rs) read and write.
//!
//! # Format written
//! ```text
//! #Veloz latency log: values in nanoseconds; Interval_Max in milliseconds
//! #[Histogram log format version 1.3]
//! #[StartTime: 1700000000.000 (seconds since epoch)]
//! #[BaseTime: 1700000000.000 (seconds since epoch)]
//! #[MaxValueDivisor: 1000000.000]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=ingress_ack,0.000,1.000,0.021,HISTFAAAACl4nJNpmSzMwMDAxQABzFCaEUzOmNZg
//! Tag=ingress_ack,1.000,1.000,0.019,HISTFAAAACl4nJNpmSzMwMDAxQABzFCaEUzOmNZg
//! ```
//! - Header lines come from hdrhistogram's `IntervalLogWriterBuilder` (comments, StartTime,
//!   BaseTime, MaxValueDivisor) plus the version comment and the legend line the Java
//!   writer emits; readers skip comments and the legend.
//! - StartTime and BaseTime are both the `start_time` given to [`IntervalLog::create`], so
//!   each line's `StartTimestamp` is seconds since the log started. Timestamps and interval
//!   lengths are written with three decimals: **millisecond resolution**.
//! - Histogram values are **nanoseconds**. `Interval_Max` is the interval's max divided by
//!   the MaxValueDivisor (10^6), i.e. milliseconds, as Java's `HistogramLogWriter` writes by
//!   default (its `maxValueUnitRatio`); it is for human eyes only, readers ignore it.
//! - The histogram is HdrHistogram's V2 encoding compressed with deflate (cookie
//!   `0x1c849304`, the `HISTF...` prefix in base64), via `V2DeflateSerializer`.
//!
//! # Invariants
//! - Every [`IntervalLog::write_interval`] hands one complete line to the file in a single
//!   `write` and flushes, so a reader running alongside the engine sees whole lines only (at
//!   worst an unterminated last line, which [`read_log`] skips as a write in progress).
//! - Tags never contain `,`, ` `, `\r` or `\n` (rejected with [`HdrLogError::InvalidTag`]).
//! - Reading resolves StartTime/BaseTime as Java's `HistogramLogReader` does, so
//!   [`Interval::start`] is an offset from the log's start whatever wrote the log.
//! - Reading keeps the free comment lines (not the `#[...]` headers) in
//!   [`LogFile::comments`]; the first one after the units comment is the writer's
//!   [`description`](LogFile::description) of what the file measures, which
//!   [`series`](crate::series) uses to tell sources apart.
//!
//! Parsing is hdrhistogram's `IntervalLogIterator`; decoding is its `Deserializer`, which
//! also accepts uncompressed V2 histograms. Errors name the file and, when reading, the line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, IntervalLogWriterError, LogEntry,
    LogIteratorError, Tag,
};
use hdrhistogram::serialization::{
    DeserializeError, Deserializer, V2DeflateSerializeError, V2DeflateSerializer,
};
use hdrhistogram::{Counter, Histogram};

/// Divisor applied to an interval's max (nanoseconds) for the `Interval_Max` column, which
/// therefore reads in milliseconds (Java's default `maxValueUnitRatio`).
pub const MAX_VALUE_DIVISOR: f64 = 1_000_000.0;

/// The comment line that opens every log Veloz writes.
pub const UNITS_COMMENT: &str =
    "Veloz latency log: values in nanoseconds; Interval_Max in milliseconds";

/// The log format version comment of Java's `HistogramLogWriter`.
const FORMAT_VERSION_COMMENT: &str = "[Histogram log format version 1.3]";

/// The legend line of Java's `HistogramLogWriter` (readers skip it).
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// Seconds in a year: the Java reader's heuristic for "timestamps are deltas".
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Errors of writing or reading an interval log; each names the file, and the line when
/// reading.
#[derive(Debug, thiserror::Error)]
pub enum HdrLogError {
    /// Creating, writing or reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tag contains a character the format forbids.
    #[error("{}: tag {tag:?} contains ',', ' ', '\\r' or '\\n', which interval logs forbid", path.display())]
    InvalidTag { path: PathBuf, tag: String },
    /// Serializing a histogram failed (writing line `line`).
    #[error("{}:{line}: cannot serialize the histogram: {source}", path.display())]
    Serialize {
        path: PathBuf,
        line: usize,
        #[source]
        source: V2DeflateSerializeError,
    },
    /// A line is neither a comment, a header, the legend nor an interval.
    #[error("{}:{line}: not an interval log line: {text:?}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        text: String,
    },
    /// An interval's histogram is not valid base64.
    #[error("{}:{line}: histogram is not valid base64: {source}", path.display())]
    Base64 {
        path: PathBuf,
        line: usize,
        #[source]
        source: base64::DecodeError,
    },
    /// An interval's histogram does not decode.
    #[error("{}:{line}: cannot decode the histogram: {source}", path.display())]
    Decode {
        path: PathBuf,
        line: usize,
        #[source]
        source: DeserializeError,
    },
}

/// A writer of one interval log file (see the module docs for the format).
///
/// Made for the control thread and the load generator: create it once, then call
/// [`write_interval`](Self::write_interval) once per interval and metric (tag).
pub struct IntervalLog {
    path: PathBuf,
    file: File,
    serializer: V2DeflateSerializer,
    /// One line (or header block) is assembled here, then written in one call.
    buf: Vec<u8>,
    /// Lines written so far (for error messages).
    lines: usize,
}

impl std::fmt::Debug for IntervalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalLog")
            .field("path", &self.path)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl IntervalLog {
    /// Create (or truncate) `path` and write the header: the units comment, the format
    /// version, StartTime and BaseTime both `start_time`, the MaxValueDivisor and the legend.
    /// Interval starts given to [`write_interval`](Self::write_interval) are offsets from
    /// `start_time`.
    pub fn create(path: impl AsRef<Path>, start_time: SystemTime) -> Result<Self, HdrLogError> {
        Self::create_with_comments(path, start_time, &[])
    }

    /// As [`create`](Self::create), with extra comment lines after the units comment (the
    /// metric, the host, the command line: whatever helps whoever reads the file later).
    pub fn create_with_comments(
        path: impl AsRef<Path>,
        start_time: SystemTime,
        comments: &[&str],
    ) -> Result<Self, HdrLogError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| HdrLogError::Io {
                path: path.clone(),
                source,
            })?;
        let mut log = IntervalLog {
            path,
            file,
            serializer: V2DeflateSerializer::new(),
            buf: Vec::with_capacity(1024),
            lines: 0,
        };
        let mut builder = IntervalLogWriterBuilder::new();
        builder.add_comment(UNITS_COMMENT);
        for c in comments {
            builder.add_comment(c);
        }
        builder
            .add_comment(FORMAT_VERSION_COMMENT)
            .with_start_time(start_time)
            .with_base_time(start_time)
            .with_max_value_divisor(MAX_VALUE_DIVISOR);
        log.buf.clear();
        // Only headers are written here; the writer is dropped at once.
        builder
            .begin_log_with(&mut log.buf, &mut log.serializer)
            .map_err(|source| HdrLogError::Io {
                path: log.path.clone(),
                source,
            })?;
        log.buf.extend_from_slice(LEGEND.as_bytes());
        log.buf.push(b'\n');
        log.flush_buf()?;
        Ok(log)
    }

    /// The file this log writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append a comment line (`#text`; a `\n` in `text` makes several comment lines).
    pub fn write_comment(&mut self, text: &str) -> Result<(), HdrLogError> {
        self.buf.clear();
        for l in text.split('\n') {
            self.buf.push(b'#');
            self.buf.extend_from_slice(l.as_bytes());
            self.buf.push(b'\n');
        }
        self.flush_buf()
    }

    /// Append one interval: `histogram` (values in nanoseconds) recorded from `start` (offset
    /// from the log's start time) for `duration`, under `tag` (a metric name such as
    /// `ingress_ack`; `None` for an untagged line). The line is on disk (in the page cache)
    /// when this returns.
    pub fn write_interval<T: Counter>(
        &mut self,
        tag: Option<&str>,
        start: Duration,
        duration: Duration,
        histogram: &Histogram<T>,
    ) -> Result<(), HdrLogError> {
        let tag = match tag {
            None => None,
            Some(t) => Some(Tag::new(t).ok_or_else(|| HdrLogError::InvalidTag {
                path: self.path.clone(),
                tag: t.to_owned(),
            })?),
        };
        self.buf.clear();
        // The crate's writer prints the max as `max / divisor` only when it is built with
        // that divisor, and then it also repeats the `#[MaxValueDivisor: ...]` header; that
        // header (already in the file) is dropped from the buffer below.
        {
            let mut writer = IntervalLogWriterBuilder::new()
                .with_max_value_divisor(MAX_VALUE_DIVISOR)
                .begin_log_with(&mut self.buf, &mut self.serializer)
                .map_err(|source| HdrLogError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            writer
                .write_histogram(histogram, start, duration, tag)
                .map_err(|e| match e {
                    IntervalLogWriterError::SerializeError(source) => HdrLogError::Serialize {
                        path: self.path.clone(),
                        line: self.lines + 1,
                        source,
                    },
                    IntervalLogWriterError::IoError(source) => HdrLogError::Io {
                        path: self.path.clone(),
                        source,
                    },
                })?;
        }
        let header_end = if self.buf.first() == Some(&b'#') {
            self.buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        } else {
            0
        };
        self.buf.drain(..header_end);
        self.flush_buf()
    }

    /// Write `buf` to the file in one call and flush it.
    fn flush_buf(&mut self) -> Result<(), HdrLogError> {
        let r = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush());
        if let Err(source) = r {
            return Err(self.io_error(source));
        }
        self.lines += self.buf.iter().filter(|&&b| b == b'\n').count();
        self.buf.clear();
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> HdrLogError {
        HdrLogError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// One interval read back from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The line's tag (`Tag=...`), if any.
    pub tag: Option<String>,
    /// Start of the interval as an offset from the log's start (its StartTime, or the first
    /// interval's start when the log has none), resolved as Java's `HistogramLogReader` does.
    pub start: Duration,
    /// Length of the interval.
    pub duration: Duration,
    /// The interval's histogram (values in the log's unit: nanoseconds for Veloz's logs).
    pub histogram: Histogram<u64>,
}

/// A whole log read back: its start time and its intervals in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    /// The file read.
    pub path: PathBuf,
    /// The log's start, since the Unix epoch: its StartTime header, else the first interval's
    /// absolute start, else `None` (no intervals, no header).
    pub start_time: Option<Duration>,
    /// The intervals, in the order of the file.
    pub intervals: Vec<Interval>,
    /// The free comment lines, without their `#`, in file order (the `#[...]` headers such
    /// as StartTime are not comments).
    pub comments: Vec<String>,
}

impl LogFile {
    /// What the writer says the file measures: its first comment other than Veloz's units
    /// comment ([`UNITS_COMMENT`]); `None` when there is none.
    ///
    /// The engine writes `veloz <metric>: <help> (ns); tag = shard`, the load generator
    /// `veloz load against <addr> (veloz|echo baseline): round trip ...`.
    pub fn description(&self) -> Option<&str> {
        self.comments
            .iter()
            .map(String::as_str)
            .find(|c| *c != UNITS_COMMENT)
    }
}

/// Read the intervals of the log at `path` (see [`read_log_file`]).
pub fn read_log(path: impl AsRef<Path>) -> Result<Vec<Interval>, HdrLogError> {
    read_log_file(path).map(|l| l.intervals)
}

/// Read the log at `path`: its start time and intervals.
pub fn read_log_file(path: impl AsRef<Path>) -> Result<LogFile, HdrLogError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| HdrLogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_log(&bytes, path)
}

/// Parse the text of a log; `path` only names the source in errors and in the result.
///
/// An unterminated last line is skipped (a write in progress); any other line that is not a
/// comment, a StartTime/BaseTime header, the legend or an interval is an error.
pub fn parse_log(bytes: &[u8], path: &Path) -> Result<LogFile, HdrLogError> {
    let mut lines = LineCounter::new(bytes);
    let mut start_time: Option<Duration> = None;
    let mut base_time: Option<Duration> = None;
    let mut intervals = Vec::new();
    let mut deserializer = Deserializer::new();
    let mut decoded = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let h = match entry {
            Ok(LogEntry::StartTime(t)) => {
                start_time = Some(t);
                continue;
            }
            Ok(LogEntry::BaseTime(t)) => {
                base_time = Some(t);
                continue;
            }
            Ok(LogEntry::Interval(h)) => h,
            Err(LogIteratorError::ParseError { offset }) => {
                let rest = &bytes[offset.min(bytes.len())..];
                if !rest.contains(&b'\n') {
                    // The last line is still being written.
                    break;
                }
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                return Err(HdrLogError::Parse {
                    path: path.to_path_buf(),
                    line: lines.line_at(offset),
                    text: String::from_utf8_lossy(&rest[..end]).into_owned(),
                });
            }
        };
        let encoded = h.encoded_histogram();
        let line = lines.line_at(offset_in(bytes, encoded));
        decoded.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(encoded, &mut decoded)
            .map_err(|source| HdrLogError::Base64 {
                path: path.to_path_buf(),
                line,
                source,
            })?;
        let histogram: Histogram<u64> =
            deserializer
                .deserialize(&mut &decoded[..])
                .map_err(|source| HdrLogError::Decode {
                    path: path.to_path_buf(),
                    line,
                    source,
                })?;
        // Java's HistogramLogReader: without BaseTime, timestamps are deltas from StartTime
        // when they are more than a year before it, else absolute; without StartTime, the
        // first interval's absolute start is the log's start.
        let stamp = h.start_timestamp();
        let base = match (base_time, start_time) {
            (Some(b), _) => b,
            (None, Some(s)) if stamp + YEAR < s => s,
            _ => Duration::ZERO,
        };
        let absolute = stamp + base;
        let log_start = *start_time.get_or_insert(absolute);
        intervals.push(Interval {
            tag: h.tag().map(|t| t.as_str().to_owned()),
            start: absolute.saturating_sub(log_start),
            duration: h.duration(),
            histogram,
        });
    }
    Ok(LogFile {
        path: path.to_path_buf(),
        start_time,
        intervals,
        comments: comments(bytes),
    })
}

/// The free comment lines of a log (`#text`, not `#[...]`), without the `#`; `\r` of CRLF
/// files dropped.
fn comments(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"#"))
        .filter(|l| !l.starts_with(b"["))
        .map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            String::from_utf8_lossy(l).into_owned()
        })
        .collect()
}

/// Byte offset of `part` inside `whole` (`part` is a slice the parser took from `whole`).
fn offset_in(whole: &[u8], part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Maps byte offsets to 1-based line numbers; offsets are asked in increasing order, so
/// counting is linear in the file.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).expect("sigfig 3 is valid");
        for &v in values {
            h.record(v).expect("auto-resizing histogram");
        }
        h
    }

    #[test]
    fn line_counter_counts_newlines_before_offsets() {
        let text = b"a\nbb\n\nccc\n";
        let mut c = LineCounter::new(text);
        assert_eq!(c.line_at(0), 1);
        assert_eq!(c.line_at(2), 2);
        assert_eq!(c.line_at(6), 4);
        assert_eq!(c.line_at(3), 2);
    }

    #[test]
    fn foreign_log_without_headers_starts_at_first_interval() {
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let h = histogram(&[10, 20, 30]);
        {
            let mut w = IntervalLogWriterBuilder::new()
                .begin_log_with(&mut buf, &mut ser)
                .expect("writes to a Vec");
            w.write_histogram(
                &h,
                Duration::from_secs(1_700_000_005),
                Duration::from_secs(1),
                None,
            )
            .expect("serializes");
            w.write_histogram(
                &h,
                Duration::from_secs(1_700_000_006),
                Duration::from_secs(1),
                None,
            )
            .expect("serializes");
        }
        let log = parse_log(&buf, Path::new("mem.hlog")).expect("parses");
        assert_eq!(log.start_time, Some(Duration::from_secs(1_700_000_005)));
        assert_eq!(log.intervals[0].start, Duration::ZERO);
        assert_eq!(log.intervals[1].start, Duration::from_secs(1));
        assert_eq!(log.intervals[1].histogram, h);
    }

    #[test]
    fn start_time_without_base_time_uses_the_java_heuristic() {
        let h = histogram(&[5]);
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        {
            let mut w = IntervalLogWriterBuilder::new()
                .with_start_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .begin_log_with(&mut buf, &mut ser)
                .expect("writes to a Vec");
            // A delta (far less than StartTime - 1 year) ...
            w.write_histogram(&h, Duration::from_secs(3), Duration::from_secs(1), None)
                .expect("serializes");
        }
        let log = parse_log(&buf, Path::new("mem.hlog")).expect("parses");
        assert_eq!(log.intervals[0].start, Duration::from_secs(3));
    }

    #[test]
    fn comments_are_kept_and_the_first_free_one_describes_the_file() {
        let text = format!(
            "#{UNITS_COMMENT}\r\n#veloz matching: time (ns); tag = shard\n#[StartTime: 5.000 (seconds since epoch)]\n#second\n"
        );
        let log = parse_log(text.as_bytes(), Path::new("m.hlog")).expect("parses");
        assert_eq!(
            log.comments,
            vec![
                UNITS_COMMENT.to_owned(),
                "veloz matching: time (ns); tag = shard".to_owned(),
                "second".to_owned()
            ]
        );
        assert_eq!(
            log.description(),
            Some("veloz matching: time (ns); tag = shard")
        );
        let bare = parse_log(
            b"#[StartTime: 5.000 (seconds since epoch)]\n",
            Path::new("x"),
        )
        .expect("parses");
        assert_eq!(bare.description(), None);
    }

    #[test]
    fn unterminated_last_line_is_a_write_in_progress() {
        let text = "#c\n\"StartTimestamp\",\"Interval_Length\"\n0.000,1.000,0.0,HISTFAAA";
        let log = parse_log(text.as_bytes(), Path::new("x.hlog")).expect("skips the tail");
        assert!(log.intervals.is_empty());
    }

    #[test]
    fn garbage_line_names_file_and_line() {
        let text = "#c\nnot a log line\n";
        let e = parse_log(text.as_bytes(), Path::new("x.hlog")).unwrap_err();
        assert!(matches!(e, HdrLogError::Parse { line: 2, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "x.hlog:2: not an interval log line: \"not a log line\""
        );
    }

    #[test]
    fn bad_base64_names_the_line() {
        let text = "#c\n#d\n0.000,1.000,0.0,@@@@\n";
        let e = parse_log(text.as_bytes(), Path::new("x.hlog")).unwrap_err();
        assert!(matches!(e, HdrLogError::Base64 { line: 3, .. }), "{e:?}");
        assert!(e.to_string().starts_with("x.hlog:3: "), "{e}");
    }

    #[test]
    fn undecodable_histogram_names_the_line() {
        let text = "0.000,1.000,0.0,AAAAAAAA\n";
        let e = parse_log(text.as_bytes(), Path::new("x.hlog")).unwrap_err();
        assert!(matches!(e, HdrLogError::Decode { line: 1, .. }), "{e:?}");
    }
}
