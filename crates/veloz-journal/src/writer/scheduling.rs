//! How the journal's sync thread is scheduled in group commit.
//!
//! A client's acknowledgement waits for the sync thread twice: to start the sync of its
//! record, and, when the sync completes, to publish the durable watermark. Under the normal
//! scheduler a woken thread may wait a time slice (milliseconds) for a core that busy-polling
//! threads (shards, a load generator) hold, and that wait was the group-commit tail inside a
//! running engine (docs/BENCHMARKS.md, "Group commit inside the engine"). So in group mode
//! the thread asks for `SCHED_FIFO` at the lowest real-time priority: it then runs as soon
//! as it wakes. It is safe to give it: the thread blocks in every sync and parks between
//! them, and each pass of its loop is bounded (arming advances at most `ARM_STEP` bytes), so
//! it never holds a core for long; the kernel's real-time throttling caps it besides.
//!
//! Without the privilege (`CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` of at least 1) the thread
//! stays under the normal scheduler and the reason is kept for the start-up log
//! ([`Writer::sync_scheduling`](super::Writer::sync_scheduling)): the journal is as correct,
//! only its commit tail is longer on a busy host.

use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;

use thread_priority::unix::set_thread_priority_and_policy;
use thread_priority::{RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};

/// How the sync thread is scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncScheduling {
    /// `SCHED_FIFO` at priority 1 (group commit).
    Realtime,
    /// The normal scheduler: not asked for (`durability = "none"`, or `sync_realtime =
    /// false`), so `why` is `None`; or refused, and `why` says what the system answered.
    Normal { why: Option<String> },
}

impl std::fmt::Display for SyncScheduling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncScheduling::Realtime => write!(f, "real-time (SCHED_FIFO, priority 1)"),
            SyncScheduling::Normal { why: None } => write!(f, "normal"),
            SyncScheduling::Normal { why: Some(why) } => write!(
                f,
                "normal: SCHED_FIFO was refused ({why}); group-commit acknowledgements may wait \
                 for a core behind busy-polling threads (grant CAP_SYS_NICE or an RLIMIT_RTPRIO \
                 of at least 1, or set journal.sync_realtime = false to silence this)"
            ),
        }
    }
}

/// Move the thread of `handle` to `SCHED_FIFO` priority 1.
pub(super) fn make_realtime(handle: &JoinHandle<()>) -> SyncScheduling {
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    match set_thread_priority_and_policy(handle.as_pthread_t(), ThreadPriority::Min, policy) {
        Ok(()) => SyncScheduling::Realtime,
        Err(thread_priority::Error::OS(errno)) => SyncScheduling::Normal {
            why: Some(std::io::Error::from_raw_os_error(errno).to_string()),
        },
        Err(e) => SyncScheduling::Normal {
            why: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome names what happened; when refused, what the system said and what to do.
    #[test]
    fn outcome_is_described_for_the_log() {
        let t = std::thread::spawn(|| std::thread::park_timeout(std::time::Duration::from_secs(5)));
        let got = make_realtime(&t);
        t.thread().unpark();
        t.join().unwrap();
        match &got {
            SyncScheduling::Realtime => {
                assert_eq!(got.to_string(), "real-time (SCHED_FIFO, priority 1)")
            }
            SyncScheduling::Normal { why } => {
                let why = why.as_deref().expect("a refusal says why");
                assert!(!why.is_empty());
                let text = got.to_string();
                assert!(
                    text.contains(why) && text.contains("CAP_SYS_NICE"),
                    "{text}"
                );
            }
        }
        assert_eq!(SyncScheduling::Normal { why: None }.to_string(), "normal");
    }
}
