//! The preparer thread: keeps one spare segment (`next.spare`) created at full size, its
//! blocks allocated and its first [`ARM_WINDOW`] bytes armed writable, so that a rollover
//! finds it ready; renames the spare the writer activated to its segment name; unmaps
//! retired segments; and keeps the chain head current, off the shard's core: it syncs an
//! activated spare's header (after the retired segment's records) before renaming it, after
//! renaming it names that segment as the newest, and it announces every spare
//! before handing it to the writer (`docs/journal-format.md`, "Chain head").
//!
//! Contract: the writer sends [`PrepMsg`]s; the thread answers on a channel of capacity one
//! with the next spare, or the error that stops it. It never creates a spare while the
//! previous one is still to be renamed (a failed rename ends the thread, so no spare is ever
//! created over the segment being written). A spare that cannot be reserved (a full disk:
//! `Storage::create` fails), armed, or announced in the chain head is removed (giving back
//! what a partial reservation took), the failure is published in the shared state
//! (`reserve_failed`: the writer refuses a rollover that finds no spare, "journal
//! unavailable") and the thread tries again every [`RETRY_EVERY`] until it succeeds (flag
//! cleared, spare sent) or the writer stops.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;

use super::shared::Shared;
use super::sync_thread::{arming_failed, ARM_WINDOW};
use super::RETRY_EVERY;
use crate::backend::{RangeSync, SegmentFile, Storage};
use crate::chain::{write_head, ChainHead, Newest};
use crate::error::JournalError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::layout::SPARE_NAME;

pub(super) enum PrepMsg<G: SegmentFile> {
    /// The spare became segment `to`; `retired` is the segment it replaced (unmapped here).
    Activated {
        to: String,
        retired: Option<G>,
        /// Where the records of `retired` end: they are made durable before the new header.
        sealed_end: usize,
        /// Syncs the activated segment: its header (written by the writer into the mapping)
        /// is made durable here before the rename and the chain head name the segment.
        header: G::Sync,
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
    shared: Arc<Shared>,
    rx: Receiver<PrepMsg<S::Segment>>,
    spare_tx: SyncSender<SpareResult<S>>,
) {
    let head = |newest: Option<Newest>, spare: bool| ChainHead {
        shard,
        newest,
        spare,
    };
    let make = |storage: &S, newest: Option<Newest>| {
        let spare = storage.create(SPARE_NAME, size).map_err(|e| {
            JournalError::io(
                "reserve (create at full size)",
                storage.display_name(SPARE_NAME),
                e,
            )
        })?;
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
    // Make a spare, retrying while that fails; `None` when the writer stops meanwhile.
    let reserve = |newest: Option<Newest>| loop {
        match make(&storage, newest) {
            Ok(spare) => {
                shared.reserve_failed.store(false, Ordering::Release);
                return Some(spare);
            }
            Err(e) => {
                // Give back what a partial reservation took (the spare is not announced).
                let _ = storage.remove(SPARE_NAME);
                // A stop, or (never: the writer holds no spare) an activation, ends it.
                if !fail_and_wait(&shared, &rx, e.to_string()) {
                    return None;
                }
            }
        }
    };
    let Some(spare) = reserve(newest) else {
        return;
    };
    if spare_tx.send(Ok(spare)).is_err() {
        return;
    }
    while let Ok(msg) = rx.recv() {
        match msg {
            PrepMsg::Activated {
                to,
                retired,
                sealed_end,
                header,
                newest: activated,
            } => {
                // The header first: a segment named (by its file name or the chain head) must
                // never lose its header with the power, which would take a repair to open.
                // Before it, the records of the segment it follows (else a durable header
                // after lost records is a sequence gap). A failed sync is retried like a
                // failed head write (the journal is unavailable meanwhile); the spare keeps
                // its name until it succeeds.
                let old = retired.as_ref().map(|g| g.sync_handle());
                loop {
                    let synced = match &old {
                        Some(g) => g.sync_range(0, sealed_end),
                        None => Ok(()),
                    }
                    .and_then(|()| header.sync_range(0, SEGMENT_HEADER_LEN));
                    match synced {
                        Ok(()) => break,
                        Err(source) => {
                            let file = storage.display_name(SPARE_NAME);
                            let e = JournalError::io("sync the header of", file, source);
                            if !fail_and_wait(&shared, &rx, e.to_string()) {
                                return;
                            }
                            // A failed writeback may have left the pages marked clean.
                            if let Some(g) = &old {
                                let _ = g.rewrite_range(0, sealed_end);
                            }
                            let _ = header.rewrite_range(0, SEGMENT_HEADER_LEN);
                        }
                    }
                }
                drop((old, retired));
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
                // A full disk can refuse this small file too: that is the journal being
                // unavailable (the writer finds no spare), retried like a reservation, not
                // a fatal error. Until it is written the old head (announcing the spare that
                // is now `to`) stays, as in the window between the rename and this write.
                loop {
                    match write_head(&storage, &head(newest, false)) {
                        Ok(()) => break,
                        Err(e) => {
                            if !fail_and_wait(&shared, &rx, e.to_string()) {
                                return;
                            }
                        }
                    }
                }
                let Some(spare) = reserve(newest) else {
                    return;
                };
                if spare_tx.send(Ok(spare)).is_err() {
                    return;
                }
            }
            PrepMsg::Stop => return,
        }
    }
}

/// Mark the journal unavailable for `why` (the writer refuses the next rollover and the shard
/// says why), then wait one retry interval. `false` when the writer sent anything meanwhile
/// (a stop) or went away: the caller gives up instead of retrying.
fn fail_and_wait<G: SegmentFile>(shared: &Shared, rx: &Receiver<PrepMsg<G>>, why: String) -> bool {
    Shared::set_failing(&shared.reserve_failed, &shared.reserve_failure, why);
    matches!(rx.recv_timeout(RETRY_EVERY), Err(RecvTimeoutError::Timeout))
}
