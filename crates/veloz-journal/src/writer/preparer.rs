//! The preparer: keeps one spare segment (`next.spare`) created at full size, its
//! blocks allocated and its first [`ARM_WINDOW`] bytes armed writable, so that a rollover
//! finds it ready; renames the spare the writer activated to its segment name; unmaps
//! retired segments; and keeps the chain head current, off the shard's core: it syncs an
//! activated spare's header (after the retired segment's records) before renaming it, after
//! renaming it names that segment as the newest, and it announces every spare
//! before handing it to the writer (`docs/journal-format.md`, "Chain head").
//!
//! It is a state machine ([`Preparer`]) whose passes never block: its thread drives it (the
//! default), or the writer's caller does with stepped helpers (`writer/stepped.rs`).
//!
//! Contract: the writer sends [`PrepMsg`]s; the preparer answers on a channel of capacity one
//! with the next spare, or the error that stops it. It never creates a spare while the
//! previous one is still to be renamed (a failed rename ends the thread, so no spare is ever
//! created over the segment being written). A spare that cannot be reserved (a full disk:
//! `Storage::create` fails), armed, or announced in the chain head is removed (giving back
//! what a partial reservation took), the failure is published in the shared state
//! (`reserve_failed`: the writer refuses a rollover that finds no spare, "journal
//! unavailable") and the thread tries again every [`RETRY_EVERY`] until it succeeds (flag
//! cleared, spare sent) or the writer stops.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Instant;

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

/// What one pass of the preparer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrepPass {
    /// It moved on a step: run the next pass at once.
    Progress,
    /// Nothing to do until a message comes, or (while failing) until the retry time.
    Wait(Option<Instant>),
    /// It stopped: the writer stopped it or went away, or a rename failed.
    Done,
}

/// Where the preparer stands.
enum State<G: SegmentFile> {
    /// Reserve the next spare.
    Reserve,
    /// The spare was handed to the writer: wait for its activation.
    Handed,
    /// Make the retired segment's records and the activated segment's header durable, then
    /// rename the spare to its segment name (`rewrite`: a sync failed, write both ranges
    /// again first).
    Seal {
        to: String,
        retired: Option<G>,
        sealed_end: usize,
        header: G::Sync,
        newest: Newest,
        rewrite: bool,
    },
    /// Name the activated segment as the newest in the chain head.
    Head,
    Done,
}

/// The preparer: keeps one prepared spare ready, renames activated spares, unmaps retired
/// segments. A state machine whose [`Preparer::pass`] never blocks and reads time only from
/// its argument: the preparer thread drives it ([`Preparer::run`]), or with stepped helpers
/// (`JournalConfig::helpers`) the writer's caller does, by its own clock.
pub(super) struct Preparer<S: Storage> {
    storage: S,
    shard: u16,
    size: u64,
    newest: Option<Newest>,
    shared: Arc<Shared>,
    rx: Receiver<PrepMsg<S::Segment>>,
    spare_tx: SyncSender<SpareResult<S>>,
    state: State<S::Segment>,
    /// A message the thread received while waiting, for the next pass.
    inbox: Option<PrepMsg<S::Segment>>,
    /// While failing: when to try again.
    retry_at: Option<Instant>,
}

impl<S: Storage> Preparer<S> {
    pub(super) fn new(
        storage: S,
        shard: u16,
        size: u64,
        newest: Option<Newest>,
        shared: Arc<Shared>,
        rx: Receiver<PrepMsg<S::Segment>>,
        spare_tx: SyncSender<SpareResult<S>>,
    ) -> Preparer<S> {
        Preparer {
            storage,
            shard,
            size,
            newest,
            shared,
            rx,
            spare_tx,
            state: State::Reserve,
            inbox: None,
            retry_at: None,
        }
    }

    /// The preparer thread: passes, blocked on the writer's messages (or the retry time)
    /// between them.
    pub(super) fn run(mut self) {
        loop {
            let wait = match self.pass(Instant::now()) {
                PrepPass::Progress => continue,
                PrepPass::Done => return,
                PrepPass::Wait(until) => until,
            };
            let got = match wait {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => self
                    .rx
                    .recv_timeout(t.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(msg) => self.inbox = Some(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// The next message from the writer; a writer gone counts as a stop.
    fn take_msg(&mut self) -> Option<PrepMsg<S::Segment>> {
        match self
            .inbox
            .take()
            .map(Ok)
            .unwrap_or_else(|| self.rx.try_recv())
        {
            Ok(msg) => Some(msg),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(PrepMsg::Stop),
        }
    }

    /// Hand the writer a spare (or the error that stops the preparer); `false` when the
    /// writer is gone.
    fn hand_over(&self, spare: SpareResult<S>) -> bool {
        match self.spare_tx.try_send(spare) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(_)) => {
                unreachable!("the preparer hands over one spare at a time")
            }
        }
    }

    /// Mark the journal unavailable for `why` (the writer refuses the next rollover and the
    /// shard says why) and try again one retry interval after `now`.
    fn fail(&mut self, now: Instant, why: String) -> PrepPass {
        Shared::set_failing(
            &self.shared.reserve_failed,
            &self.shared.reserve_failure,
            why,
        );
        let at = now + RETRY_EVERY;
        self.retry_at = Some(at);
        PrepPass::Wait(Some(at))
    }

    /// Create, arm and announce a spare.
    fn make(&self) -> SpareResult<S> {
        let storage = &self.storage;
        let spare = storage.create(SPARE_NAME, self.size).map_err(|e| {
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
        write_head(storage, &self.head(true))?;
        Ok(spare)
    }

    fn head(&self, spare: bool) -> ChainHead {
        ChainHead {
            shard: self.shard,
            newest: self.newest,
            spare,
        }
    }

    /// One step at time `now`.
    pub(super) fn pass(&mut self, now: Instant) -> PrepPass {
        if matches!(self.state, State::Done) {
            return PrepPass::Done;
        }
        if let Some(at) = self.retry_at {
            // Only a stop can come while failing (the writer holds no spare to activate).
            if self.take_msg().is_some() {
                self.state = State::Done;
                return PrepPass::Done;
            }
            if now < at {
                return PrepPass::Wait(Some(at));
            }
            self.retry_at = None;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Reserve => match self.make() {
                Ok(spare) => {
                    self.shared.reserve_failed.store(false, Ordering::Release);
                    if !self.hand_over(Ok(spare)) {
                        return PrepPass::Done;
                    }
                    self.state = State::Handed;
                    PrepPass::Progress
                }
                Err(e) => {
                    // Give back what a partial reservation took (the spare is not announced).
                    let _ = self.storage.remove(SPARE_NAME);
                    self.state = State::Reserve;
                    self.fail(now, e.to_string())
                }
            },
            State::Handed => match self.take_msg() {
                None => {
                    self.state = State::Handed;
                    PrepPass::Wait(None)
                }
                Some(PrepMsg::Stop) => PrepPass::Done,
                Some(PrepMsg::Activated {
                    to,
                    retired,
                    sealed_end,
                    header,
                    newest,
                }) => {
                    self.state = State::Seal {
                        to,
                        retired,
                        sealed_end,
                        header,
                        newest,
                        rewrite: false,
                    };
                    PrepPass::Progress
                }
            },
            State::Seal {
                to,
                retired,
                sealed_end,
                header,
                newest,
                rewrite,
            } => {
                // The header first: a segment named (by its file name or the chain head) must
                // never lose its header with the power, which would take a repair to open.
                // Before it, the records of the segment it follows (else a durable header
                // after lost records is a sequence gap). A failed sync is retried like a
                // failed head write (the journal is unavailable meanwhile); the spare keeps
                // its name until it succeeds.
                let old = retired.as_ref().map(|g| g.sync_handle());
                if rewrite {
                    // A failed writeback may have left the pages marked clean.
                    if let Some(g) = &old {
                        let _ = g.rewrite_range(0, sealed_end);
                    }
                    let _ = header.rewrite_range(0, SEGMENT_HEADER_LEN);
                }
                let synced = match &old {
                    Some(g) => g.sync_range(0, sealed_end),
                    None => Ok(()),
                }
                .and_then(|()| header.sync_range(0, SEGMENT_HEADER_LEN));
                if let Err(source) = synced {
                    let file = self.storage.display_name(SPARE_NAME);
                    let e = JournalError::io("sync the header of", file, source);
                    self.state = State::Seal {
                        to,
                        retired,
                        sealed_end,
                        header,
                        newest,
                        rewrite: true,
                    };
                    return self.fail(now, e.to_string());
                }
                drop((old, retired));
                if let Err(e) = self.storage.rename(SPARE_NAME, &to) {
                    let file = format!(
                        "{} to {}",
                        self.storage.display_name(SPARE_NAME),
                        self.storage.display_name(&to)
                    );
                    // Never create another spare over the segment being written.
                    self.hand_over(Err(JournalError::io("rename", file, e)));
                    return PrepPass::Done;
                }
                self.newest = Some(newest);
                self.state = State::Head;
                PrepPass::Progress
            }
            // The new segment is the newest, and no spare is announced until one exists: a
            // blank spare then never hides a lost segment. A full disk can refuse this small
            // file too: that is the journal being unavailable (the writer finds no spare),
            // retried like a reservation, not a fatal error. Until it is written the old head
            // (announcing the spare that is now the segment) stays, as in the window between
            // the rename and this write.
            State::Head => match write_head(&self.storage, &self.head(false)) {
                Ok(()) => {
                    self.state = State::Reserve;
                    PrepPass::Progress
                }
                Err(e) => {
                    self.state = State::Head;
                    self.fail(now, e.to_string())
                }
            },
            State::Done => PrepPass::Done,
        }
    }
}
