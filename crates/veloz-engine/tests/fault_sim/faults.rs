//! The simulation's storage faults: injecting one (a failed or torn write, failing syncs,
//! failing arming, a full disk) and ending it.

use rand::Rng;

use veloz_journal::writer::RETRY_EVERY;
use veloz_journal::{FaultMode, FaultPlan};

use super::disk::SimDisk;
use super::{Life, Outcome, Sim};

impl Sim {
    /// End the life's fault: writes, syncs and reservations succeed again. A full disk, failing
    /// syncs or failing arming are states the journal leaves by itself: once the retry
    /// interval has passed on the simulation's clock and its helpers (and caller-driven
    /// syncs) have run, it takes appends again, so the next command must be sequenced. (A
    /// failed or torn write stands for the process dying mid-append: no such promise.)
    pub(super) fn heal(&mut self, l: &mut Life, plan: &FaultPlan, disk: &SimDisk) -> Outcome {
        plan.heal();
        disk.set_full(false);
        self.elapsed += RETRY_EVERY;
        self.pause(l)?;
        l.must_append = matches!(l.fault, "full disk" | "failed syncs" | "failed arming");
        Ok(())
    }

    /// Inject one storage fault.
    pub(super) fn fault(&mut self, l: &mut Life, plan: &FaultPlan, disk: &SimDisk) {
        l.fault = match self.rng.random_range(0..5) {
            0 => {
                plan.fault_after(self.rng.random_range(0..4000), FaultMode::Fail);
                "failed write"
            }
            1 => {
                plan.fault_after(self.rng.random_range(0..4000), FaultMode::Tear);
                "torn write"
            }
            2 => {
                plan.fail_syncs(true);
                "failed syncs"
            }
            3 => {
                plan.fail_prefaults(true);
                "failed arming"
            }
            _ => {
                disk.set_full(true);
                "full disk"
            }
        }
    }
}
