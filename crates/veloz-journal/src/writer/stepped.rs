//! Stepped helpers ([`HelperDriver::Stepped`](crate::HelperDriver::Stepped)): the preparer
//! and the helper thread's work run on the writer's caller, one pass at a time, by the
//! caller's clock. Nothing else moves them, so a caller that chooses when to step (the fault
//! simulation, from its seed) always sees the same disk after the same calls.
//!
//! Contract: [`Writer::step_helpers`] runs passes of the same state machines the threads
//! drive ([`Preparer::pass`], [`Helper::pass`]); a rollover that finds no spare runs the
//! preparer until it hands one over or fails to ("journal unavailable", as with the thread);
//! [`Writer::close`] runs the helper's last passes (the last group-commit sync) and the
//! preparer's pending work before it stops them, as the threads do at a stop. The caller's
//! clock never goes back: an earlier `now` counts as the latest one given.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::preparer::{PrepPass, Preparer};
use super::sync_thread::{Helper, HelperPass};
use super::{PrepMsg, SyncOf, Writer};
use crate::backend::Storage;

/// Passes after which a stop that has not finished is a bug, not slowness.
const STOP_PASSES: u32 = 1024;

/// The helpers' state machines, and the caller's clock at its latest step.
pub(super) struct Stepped<S: Storage> {
    pub(super) prep: Preparer<S>,
    pub(super) helper: Helper<SyncOf<S>>,
    pub(super) now: Instant,
}

impl<S: Storage> Writer<S> {
    /// With stepped helpers: at time `now`, run up to `passes` passes of the preparer, then
    /// up to `passes` of the helper; a pass that leaves one with nothing to do (waiting for
    /// the writer, or for a retry time) ends its turn. Returns how many passes moved
    /// something on. With helper threads it does nothing and returns 0.
    pub fn step_helpers(&mut self, now: Instant, passes: u32) -> u32 {
        let Some(st) = self.stepped.as_mut() else {
            return 0;
        };
        st.now = st.now.max(now);
        let mut worked = 0;
        for _ in 0..passes {
            if st.prep.pass(st.now) != PrepPass::Progress {
                break;
            }
            worked += 1;
        }
        for _ in 0..passes {
            if st.helper.pass(st.now) != HelperPass::Again {
                break;
            }
            worked += 1;
        }
        worked
    }

    /// Stepped helpers: one pass of the preparer for a rollover waiting for a spare; `false`
    /// when it has nothing to do (it is waiting for a retry time, or stopped).
    pub(super) fn step_preparer(&mut self) -> bool {
        match self.stepped.as_mut() {
            Some(st) => st.prep.pass(st.now) == PrepPass::Progress,
            None => false,
        }
    }

    /// Stepped helpers: one more pass of each at the caller's latest time (a wait for
    /// durability); whether one moved something on.
    pub(super) fn step_helpers_again(&mut self) -> bool {
        match self.stepped.as_ref().map(|st| st.now) {
            Some(now) => self.step_helpers(now, 1) > 0,
            None => false,
        }
    }

    /// Whether the helpers are stepped by the caller.
    pub(super) fn stepped(&self) -> bool {
        self.stepped.is_some()
    }

    /// Stepped helpers: stop the helper as its thread stops (group mode: after the last
    /// sync); `false` if it did not stop.
    pub(super) fn stop_stepped_helper(&mut self) -> bool {
        let Some(st) = self.stepped.as_mut() else {
            return true;
        };
        self.shared.stop.store(true, Ordering::Release);
        (0..STOP_PASSES).any(|_| st.helper.pass(st.now) == HelperPass::Stopped)
    }

    /// Stepped helpers: let the preparer finish what the writer sent it (renaming the last
    /// activated spare, reserving the next), then stop it; `false` if it did not stop.
    pub(super) fn stop_stepped_preparer(&mut self) -> bool {
        let Some(st) = self.stepped.as_mut() else {
            return true;
        };
        let _ = self.prep_tx.send(PrepMsg::Stop);
        (0..STOP_PASSES).any(|_| st.prep.pass(st.now) == PrepPass::Done)
    }
}
