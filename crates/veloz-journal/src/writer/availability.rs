//! The writer's "journal unavailable" state (`docs/operations.md`, "Journal unavailable"):
//! a rollover that finds no spare while the preparer fails to reserve one, a record write
//! that failed, a sync or arming the helper thread is retrying, or a failed caller-driven
//! sync ([`Writer::sync_due`] offers the retry). While any holds, appends
//! are refused with [`JournalError::Unavailable`] and take no sequence number; each ends by
//! itself ([`Writer::unavailable`] picks up a spare reserved since and zeroes the range of a
//! failed write; the helper clears its own flag when a retry succeeds).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::Duration;

use super::shared::Shared;
use super::Writer;
use crate::backend::{SegmentFile, Storage};
use crate::error::JournalError;
use crate::format::MAX_RECORD_LEN;

impl<S: Storage> Writer<S> {
    /// The next spare: wait for the preparer while it works, but refuse at once (journal
    /// unavailable) while it fails to reserve one.
    pub(super) fn wait_spare(&mut self) -> Result<S::Segment, JournalError> {
        let mut counted = false;
        loop {
            match self.spare_rx.try_recv() {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => return Err(self.poison_with(e)),
                Err(TryRecvError::Disconnected) => {
                    return Err(self.poison("the segment preparer thread has stopped".to_string()))
                }
                Err(TryRecvError::Empty) => {}
            }
            if self.shared.reserve_failed.load(Ordering::Acquire) {
                let why = Shared::why(&self.shared.reserve_failure).unwrap_or_default();
                return Err(self.refuse(format!("no segment reserved: {why}")));
            }
            if !counted {
                self.stats.spare_waits += 1;
                counted = true;
            }
            if self.stepped() {
                // Nothing else runs the preparer: run it until it hands a spare over, or
                // fails to (the flag above: refused as unavailable), or has nothing left to do.
                if self.step_preparer() || self.shared.reserve_failed.load(Ordering::Acquire) {
                    continue;
                }
                let why = "the stepped preparer has no spare and nothing to do".to_string();
                return Err(self.poison(why));
            }
            match self.spare_rx.recv_timeout(Duration::from_millis(5)) {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => return Err(self.poison_with(e)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.poison("the segment preparer thread has stopped".to_string()))
                }
            }
        }
    }

    /// Why the journal is unavailable now (it refuses appends), or `None` when it takes
    /// them; cheap, and heals what it can: picks up a spare the preparer reserved since a
    /// refused rollover, and zeroes the range of a failed write. A writer stopped for good
    /// (poisoned) reports that too.
    pub fn unavailable(&mut self) -> Option<String> {
        if let Some(p) = &self.poisoned {
            return Some(format!("stopped after an earlier failure: {p}"));
        }
        if self.shared.is_failing(Ordering::Acquire) {
            return Some(self.failing_why().unwrap_or_default());
        }
        if let Some((off, len, why)) = &self.write_failed {
            let zeros = [0u8; MAX_RECORD_LEN];
            let zeroed = match self.active.as_mut() {
                Some(a) => a.segment.write_at(*off, &zeros[..*len]).is_ok(),
                None => true,
            };
            if !zeroed {
                return Some(why.clone());
            }
            self.write_failed = None;
        }
        if self.spare_refused {
            if self.spare.is_none() {
                match self.spare_rx.try_recv() {
                    Ok(Ok(s)) => self.spare = Some(s),
                    Ok(Err(e)) => return Some(self.poison_with(e).to_string()),
                    Err(_) => {}
                }
            }
            if self.spare.is_none() {
                let why = Shared::why(&self.shared.reserve_failure).unwrap_or_default();
                return Some(format!("no segment reserved: {why}"));
            }
            self.spare_refused = false;
        }
        None
    }

    /// The error for an append refused while the journal is unavailable.
    pub(super) fn refuse(&self, why: String) -> JournalError {
        JournalError::Unavailable {
            shard: self.shard,
            next_seq: self.next_seq,
            why,
        }
    }
}
