//! The process's log writer: a bounded queue of formatted lines, drained to stderr by one
//! writer thread, so that the thread that logs (a shard on its pinned core) never waits for
//! the pipe behind stderr.
//!
//! - [`start`] creates the queue and the `veloz-log` writer thread (once per process; the
//!   binary calls it before it installs its `tracing` subscriber);
//! - [`LogWriter`] is what the subscriber writes each formatted event to: one `write` call
//!   is one event, handed to the queue with `try_send`. A full queue drops the event and
//!   counts it ([`dropped`], served as `veloz_log_dropped_total`); nothing ever blocks;
//! - [`flush`] waits, at most for a given time, until the writer thread has written what
//!   was queued (at exit, so that the last lines of a clean or a fatal stop are kept).
//!
//! Without [`start`] (unit tests, library users) events go straight to stderr.
//!
//! Costs on the logging thread: formatting and one allocation per event; an event that the
//! filter leaves out costs a cached check. The gateway summarises repeated events
//! ([`crate::gateway`]), so a flood of bad input makes a handful of lines, not one each.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The queue to the writer thread and its counters.
#[derive(Debug)]
struct Queue {
    tx: SyncSender<Vec<u8>>,
    /// Events handed to the queue.
    queued: AtomicU64,
    /// Events the writer thread has written (or failed to write: stderr closed).
    written: Arc<AtomicU64>,
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Start the writer thread with a queue of `lines` events, writing to `out`. Returns false
/// (and changes nothing) when the process already has one.
pub fn start(lines: usize, out: Box<dyn Write + Send>) -> bool {
    if QUEUE.get().is_some() {
        return false;
    }
    let (tx, rx) = sync_channel(lines.max(1));
    let written = Arc::new(AtomicU64::new(0));
    let queue = Queue {
        tx,
        queued: AtomicU64::new(0),
        written: Arc::clone(&written),
        dropped: AtomicU64::new(0),
    };
    if QUEUE.set(queue).is_err() {
        return false;
    }
    std::thread::Builder::new()
        .name("veloz-log".into())
        .spawn(move || drain(rx, out, &written))
        .expect("spawn the log writer thread");
    true
}

/// The writer thread: blocking writes are fine here, this thread does nothing else.
fn drain(rx: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>, written: &AtomicU64) {
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(&line);
        // Write out whatever else is queued before flushing.
        let mut n = 1;
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(&line);
            n += 1;
        }
        let _ = out.flush();
        written.fetch_add(n, Ordering::Release);
    }
}

/// Events dropped so far because the queue was full (0 before [`start`]).
pub fn dropped() -> u64 {
    QUEUE.get().map_or(0, |q| q.dropped.load(Ordering::Relaxed))
}

/// Wait until the writer thread has written everything queued before this call, or `within`
/// has passed (stderr may be blocked for good). Returns whether everything was written.
pub fn flush(within: Duration) -> bool {
    let Some(q) = QUEUE.get() else {
        let _ = std::io::stderr().flush();
        return true;
    };
    let target = q.queued.load(Ordering::Acquire);
    let deadline = Instant::now() + within;
    while q.written.load(Ordering::Acquire) < target {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Where the subscriber writes each formatted event: the queue (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(q) = QUEUE.get() else {
            return std::io::stderr().write(buf);
        };
        match q.tx.try_send(buf.to_vec()) {
            Ok(()) => {
                q.queued.fetch_add(1, Ordering::Release);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                q.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
