//! The state a [`Writer`](super::Writer) shares with its helper thread and with
//! [`DurableWatermark`] handles: atomics, plus the helper's failure under a mutex.
//!
//! Contract: the writer alone stores `written`, `pos`, `mark_pos` and `mark_seq`, and stores
//! each position before its sequence number (`pos` then `written`, `mark_pos` then
//! `mark_seq`), so a reader that loads the sequence number first sees a position that covers
//! it. `durable` is stored by whoever runs group-commit syncs: the helper thread
//! ([`SyncDriver::Thread`]) or the writer itself ([`SyncDriver::Caller`]). `failed` is a set
//! of bits, one per party that can fail: [`HELPER_FAILING`] (the helper thread's sync or
//! arming; it alone sets and clears that bit and stores `failure`) and
//! [`CALLER_SYNC_FAILING`] (a caller-driven sync; the writer alone sets and clears it and
//! keeps its message itself), so that one party's success never clears the other's failure.
//! The preparer alone stores `reserve_failed` and `reserve_failure`; `stop` is set once, at
//! shutdown; `rearm` is stored by the writer (caller-driven partial syncs) and taken by the
//! helper thread. `failed` and `reserve_failed` are set while a party is failing and
//! retrying, and cleared when it succeeds again (the "journal unavailable" state); their
//! messages stay for the log. A position packs the segment generation (high 24 bits) and the
//! offset in the segment (low 40 bits): [`pack`], [`unpack`].
//!
//! [`SyncDriver::Thread`]: crate::config::SyncDriver::Thread
//! [`SyncDriver::Caller`]: crate::config::SyncDriver::Caller

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use veloz_core::Seq;

/// Offsets in a segment use the low 40 bits of the published position; the segment
/// generation the high 24.
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// A bit of [`Shared::failed`]: the helper thread's last sync or arming failed.
pub(super) const HELPER_FAILING: u8 = 1;
/// A bit of [`Shared::failed`]: the last caller-driven sync failed (`SyncDriver::Caller`).
pub(super) const CALLER_SYNC_FAILING: u8 = 2;
/// [`Shared::rearm`] when no page waits to be re-armed.
pub(super) const NO_REARM: u64 = u64::MAX;

pub(super) fn pack(gen: u64, offset: usize) -> u64 {
    (gen << OFFSET_BITS) | offset as u64
}

pub(super) fn unpack(pos: u64) -> (u64, usize) {
    (pos >> OFFSET_BITS, (pos & OFFSET_MASK) as usize)
}

/// State shared by the writer, its sync thread and watermark handles.
pub(super) struct Shared {
    /// Last written sequence number (0: none).
    pub(super) written: AtomicU64,
    /// Last durable sequence number (group mode).
    pub(super) durable: AtomicU64,
    /// (segment generation, end offset) of the written data, packed.
    pub(super) pos: AtomicU64,
    /// Group commit syncs whole pages only, so that it never write-protects the page the
    /// writer is filling: `mark_pos` is the start of the writer's current page (packed like
    /// `pos`) and `mark_seq` the last record that ends at or before it.
    pub(super) mark_pos: AtomicU64,
    pub(super) mark_seq: AtomicU64,
    pub(super) stop: AtomicBool,
    /// Who is failing now ([`HELPER_FAILING`], [`CALLER_SYNC_FAILING`]; 0: nobody); each
    /// retries every `RETRY_EVERY`.
    pub(super) failed: AtomicU8,
    /// Why (the message of the helper's last failure).
    pub(super) failure: Mutex<Option<String>>,
    /// The preparer could not reserve the next spare; it retries every `RETRY_EVERY`.
    pub(super) reserve_failed: AtomicBool,
    /// Why (the message of the preparer's last failure).
    pub(super) reserve_failure: Mutex<Option<String>>,
    /// A page (packed like `pos`) that a caller-driven partial sync write-protected: the
    /// helper thread arms it again at its next pass ([`NO_REARM`]: none).
    pub(super) rearm: AtomicU64,
    /// Last sequence number JetStream has acknowledged (`durability = "replicated"`): stored
    /// only by the replication thread, through [`super::ReplicaProgress`], and only forward.
    pub(super) replicated: AtomicU64,
}

impl Shared {
    /// Record a helper's failure (`flag` set, `why` kept for the log).
    pub(super) fn set_failing(flag: &AtomicBool, slot: &Mutex<Option<String>>, why: String) {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        flag.store(true, Ordering::Release);
    }

    /// Record the helper thread's failure (`failure` kept for the log, its bit set).
    pub(super) fn set_helper_failing(&self, why: String) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.set_failed(HELPER_FAILING);
    }

    /// Mark `who` (one of the `failed` bits) as failing.
    pub(super) fn set_failed(&self, who: u8) {
        self.failed.fetch_or(who, Ordering::AcqRel);
    }

    /// `who` succeeded again: clear its bit (the other party's stays).
    pub(super) fn clear_failed(&self, who: u8) {
        self.failed.fetch_and(!who, Ordering::AcqRel);
    }

    /// Whether any party is failing.
    #[inline]
    pub(super) fn is_failing(&self, order: Ordering) -> bool {
        self.failed.load(order) != 0
    }

    /// The last failure message in `slot`.
    pub(super) fn why(slot: &Mutex<Option<String>>) -> Option<String> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A cheap, cloneable view of a writer's progress, for the tasks that release acks.
#[derive(Clone)]
pub struct DurableWatermark {
    pub(super) shared: Arc<Shared>,
    pub(super) group: bool,
    pub(super) replicated: bool,
}

impl std::fmt::Debug for DurableWatermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableWatermark")
            .field("group", &self.group)
            .field("written_seq", &self.written_seq())
            .field("durable_seq", &self.durable_seq())
            .field("failed", &self.failed())
            .finish()
    }
}

impl DurableWatermark {
    /// Every record up to this sequence number is durable (as the durability setting defines
    /// it); acknowledge up to here.
    #[inline]
    pub fn durable_seq(&self) -> Seq {
        if self.replicated {
            self.shared.replicated.load(Ordering::Acquire)
        } else if self.group {
            self.shared.durable.load(Ordering::Acquire)
        } else {
            self.shared.written.load(Ordering::Acquire)
        }
    }

    /// The last sequence number written.
    #[inline]
    pub fn written_seq(&self) -> Seq {
        self.shared.written.load(Ordering::Acquire)
    }

    /// True while group-commit syncs (the helper thread's or the caller's) or the arming of
    /// pages ahead of the writer fail: nothing more becomes durable until a retry succeeds.
    pub fn failed(&self) -> bool {
        self.shared.is_failing(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for (g, o) in [(0, 0), (1, 64), (12345, (1 << 40) - 1)] {
            assert_eq!(unpack(pack(g, o)), (g, o));
        }
    }
}
