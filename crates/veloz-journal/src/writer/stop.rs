//! Stopping the writer: the helpers' last work (the last group-commit sync), the unused
//! spare withdrawn from the chain head and removed, the durable watermark returned. A close
//! that fails says what failed; a writer dropped without `close` stops the same way without
//! the final sync of a `durability = "none"` segment.

use std::sync::atomic::Ordering;

use super::{PrepMsg, Writer};
use crate::backend::{RangeSync, SegmentFile, Storage};
use crate::chain::{write_head, ChainHead};
use crate::error::JournalError;
use crate::layout::SPARE_NAME;
use veloz_core::Seq;

impl<S: Storage> Writer<S> {
    /// Stop the helper threads after making everything written durable (group mode: the sync
    /// thread's last sync, or with caller-driven syncs the writer's own, blocking; none mode:
    /// the active segment's written range is synced), remove the unused spare, and return the
    /// durable watermark. A caller-driven job still in flight is not waited for: its range is
    /// synced again here, and the job keeps its file open until the caller drops it.
    pub fn close(mut self) -> Result<Seq, JournalError> {
        self.shutdown(true)
    }

    pub(super) fn shutdown(&mut self, final_sync: bool) -> Result<Seq, JournalError> {
        if self.closed {
            return Ok(self.durable_seq());
        }
        self.closed = true;
        // Caller mode: the last sync, as the sync thread makes it at stop (also on drop).
        self.final_caller_sync();
        let mut result = Ok(());
        if let Some(t) = self.sync_thread.take() {
            self.shared.stop.store(true, Ordering::Release);
            t.thread().unpark();
            if t.join().is_err() {
                result = Err(self.poison("the journal sync thread panicked".to_string()));
            }
        }
        if !self.stop_stepped_helper() {
            result = Err(self.poison("the stepped journal helper did not stop".to_string()));
        }
        if !self.group && final_sync && self.poisoned.is_none() {
            if let Some(a) = &self.active {
                if let Err(source) = a.segment.sync_handle().sync_range(0, a.offset) {
                    result = Err(JournalError::Sync {
                        file: self.storage.display_name(&a.name),
                        durable_seq: a.first_seq.saturating_sub(1),
                        source,
                    });
                }
            }
        }
        if self.stepped() {
            if !self.stop_stepped_preparer() && result.is_ok() {
                result = Err(self.poison("the stepped preparer did not stop".to_string()));
            }
        } else {
            let _ = self.prep_tx.send(PrepMsg::Stop);
        }
        if let Some(t) = self.prep_thread.take() {
            let _ = t.join();
        }
        let mut spare_exists = self.spare.take().is_some();
        while let Ok(r) = self.spare_rx.try_recv() {
            spare_exists |= r.is_ok();
        }
        // Withdraw the spare's announcement from the chain head before removing it (a head
        // that announces a spare which is gone means a lost segment).
        let head = ChainHead {
            shard: self.shard,
            newest: self.newest,
            spare: false,
        };
        if spare_exists {
            if let Err(e) = write_head(&self.storage, &head) {
                if result.is_ok() {
                    result = Err(e);
                }
            } else if let Err(e) = self.storage.remove(SPARE_NAME) {
                if result.is_ok() && e.kind() != std::io::ErrorKind::NotFound {
                    result = Err(JournalError::io(
                        "remove",
                        self.storage.display_name(SPARE_NAME),
                        e,
                    ));
                }
            }
        }
        self.active = None;
        result?;
        if self.shared.is_failing(Ordering::Acquire) {
            return Err(self.failure());
        }
        Ok(self.durable_seq())
    }
}
