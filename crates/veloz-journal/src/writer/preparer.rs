//! The preparer thread: keeps one spare segment (`next.spare`) created at full size, its
//! blocks allocated and its first [`ARM_WINDOW`] bytes armed writable, so that a rollover
//! finds it ready; renames the spare the writer activated to its segment name; unmaps
//! retired segments; and keeps the chain head current, off the shard's core: after renaming
//! an activated spare it names that segment as the newest, and it announces every spare
//! before handing it to the writer (`docs/journal-format.md`, "Chain head").
//!
//! Contract: the writer sends [`PrepMsg`]s; the thread answers on a channel of capacity one
//! with the next spare, or the error that stops it. It never creates a spare while the
//! previous one is still to be renamed (a failed rename ends the thread, so no spare is ever
//! created over the segment being written), and a spare that cannot be armed (a full disk)
//! is refused here, at rollover, not by a SIGBUS later.

use std::sync::mpsc::{Receiver, SyncSender};

use super::sync_thread::{arming_failed, ARM_WINDOW};
use crate::backend::{RangeSync, SegmentFile, Storage};
use crate::chain::{write_head, ChainHead, Newest};
use crate::error::JournalError;
use crate::layout::SPARE_NAME;

pub(super) enum PrepMsg<G> {
    /// The spare became segment `to`; `retired` is the segment it replaced (unmapped here).
    Activated {
        to: String,
        retired: Option<G>,
        /// The activated segment, as the chain head will name it.
        newest: Newest,
    },
    Stop,
}

pub(super) type SpareResult<S> = Result<<S as Storage>::Segment, JournalError>;

/// The preparer thread: keeps one prepared spare ready, renames activated spares, unmaps
/// retired segments.
pub(super) fn preparer<S: Storage>(
    storage: S,
    shard: u16,
    size: u64,
    mut newest: Option<Newest>,
    rx: Receiver<PrepMsg<S::Segment>>,
    spare_tx: SyncSender<SpareResult<S>>,
) {
    let head = |newest: Option<Newest>, spare: bool| ChainHead {
        shard,
        newest,
        spare,
    };
    let make = |storage: &S, newest: Option<Newest>| {
        let spare = storage
            .create(SPARE_NAME, size)
            .map_err(|e| JournalError::io("create", storage.display_name(SPARE_NAME), e))?;
        // The first appends after the rollover must not fault; a spare that cannot be armed
        // (a full disk) is refused here, at rollover, not by a SIGBUS later.
        if let Err(source) = spare.sync_handle().prefault_range(0, ARM_WINDOW) {
            if arming_failed(&source) {
                return Err(JournalError::Prepare {
                    file: storage.display_name(SPARE_NAME),
                    offset: 0,
                    source,
                });
            }
        }
        // Announce the spare before the writer can activate it.
        write_head(storage, &head(newest, true))?;
        Ok(spare)
    };
    if spare_tx.send(make(&storage, newest)).is_err() {
        return;
    }
    while let Ok(msg) = rx.recv() {
        match msg {
            PrepMsg::Activated {
                to,
                retired,
                newest: activated,
            } => {
                drop(retired);
                if let Err(e) = storage.rename(SPARE_NAME, &to) {
                    let file = format!(
                        "{} to {}",
                        storage.display_name(SPARE_NAME),
                        storage.display_name(&to)
                    );
                    // Never create another spare over the segment being written.
                    let _ = spare_tx.send(Err(JournalError::io("rename", file, e)));
                    return;
                }
                newest = Some(activated);
                // The new segment is the newest, and no spare is announced until one exists:
                // a blank spare then never hides a lost segment.
                if let Err(e) = write_head(&storage, &head(newest, false)) {
                    let _ = spare_tx.send(Err(e));
                    return;
                }
                if spare_tx.send(make(&storage, newest)).is_err() {
                    return;
                }
            }
            PrepMsg::Stop => return,
        }
    }
}
