//! The interval log of a run, written through [`veloz_report::IntervalLog`] (the standard
//! HdrHistogram log format that `veloz report` and HdrHistogram's own tools read): one
//! untagged interval per second of the measured window, values in nanoseconds, StartTime
//! and BaseTime at the start of the window. The echo baseline's log goes beside it
//! ([`baseline_path`]), so `veloz report --compare` can set the two side by side.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use veloz_report::IntervalLog;

use super::LoadError;

/// An interval log being written.
pub(crate) struct HlogWriter {
    log: IntervalLog,
    intervals: usize,
}

impl HlogWriter {
    /// Create `path` with `comments` in its header; interval offsets count from `start`.
    pub fn create(path: &Path, comments: &[String], start: SystemTime) -> Result<Self, LoadError> {
        let comments: Vec<&str> = comments.iter().map(String::as_str).collect();
        let log = IntervalLog::create_with_comments(path, start, &comments)
            .map_err(|e| hlog_error(path, e))?;
        Ok(HlogWriter { log, intervals: 0 })
    }

    /// Append one interval: `offset` after the start, lasting `length`.
    pub fn write(
        &mut self,
        offset: Duration,
        length: Duration,
        hist: &Histogram<u64>,
    ) -> Result<(), LoadError> {
        self.log
            .write_interval(None, offset, length, hist)
            .map_err(|e| hlog_error(self.log.path(), e))?;
        self.intervals += 1;
        Ok(())
    }

    /// The intervals written (each is on disk as soon as it is written).
    pub fn finish(self) -> usize {
        self.intervals
    }
}

fn hlog_error(path: &Path, e: veloz_report::HdrLogError) -> LoadError {
    LoadError::Hlog {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// The baseline's log beside `path`: `run.hlog` -> `run.baseline.hlog`.
pub(crate) fn baseline_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "load".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}.baseline.{}", ext.to_string_lossy()),
        None => format!("{stem}.baseline"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_intervals_that_read_back() {
        let dir = std::env::temp_dir().join(format!("veloz-load-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.hlog");
        let mut w = HlogWriter::create(&path, &["test run".into()], SystemTime::now()).unwrap();
        for i in 0..3u64 {
            let mut h = super::super::conn::new_histogram();
            h.record(1_000 * (i + 1)).unwrap();
            w.write(Duration::from_secs(i), Duration::from_secs(1), &h)
                .unwrap();
        }
        assert_eq!(w.finish(), 3);
        let back = veloz_report::read_log(&path).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].start, Duration::from_secs(2));
        assert!(back[2].histogram.max() >= 3_000 && back[2].histogram.max() < 3_010);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            baseline_path(Path::new("/x/run.hlog")),
            PathBuf::from("/x/run.baseline.hlog")
        );
    }
}
