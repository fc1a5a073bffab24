//! A fault-injecting backend for tests: wraps another backend and, following a shared
//! [`FaultPlan`], fails or tears segment writes after a number of bytes, fails syncs, or fails
//! the reservation of a new segment or the arming of pages ahead of the writer as a full
//! disk does.
//!
//! Once a write fault has fired, every later write fails too (the disk, or the process, is
//! gone), which is what a crash in the middle of an append looks like to recovery: the bytes
//! written before the fault are in the file, the rest never arrive.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{RangeSync, SegmentFile, Storage};

/// What happens to the write that crosses the byte budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// Nothing of that write reaches the file.
    Fail,
    /// The bytes up to the budget reach the file, the rest do not.
    Tear,
}

/// The faults to inject, shared by a [`FaultStorage`], its segments and the test.
#[derive(Debug)]
pub struct FaultPlan {
    /// Bytes that may still be written before the fault (`u64::MAX`: no fault planned).
    budget: AtomicU64,
    tear: AtomicBool,
    tripped: AtomicBool,
    fail_syncs: AtomicBool,
    fail_prefaults: AtomicBool,
    fail_creates: AtomicBool,
    written: AtomicU64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            budget: AtomicU64::new(u64::MAX),
            tear: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            fail_syncs: AtomicBool::new(false),
            fail_prefaults: AtomicBool::new(false),
            fail_creates: AtomicBool::new(false),
            written: AtomicU64::new(0),
        }
    }
}

fn injected(msg: String) -> io::Error {
    io::Error::other(format!("injected fault: {msg}"))
}

impl FaultPlan {
    /// A plan with no faults (yet).
    pub fn new() -> Arc<FaultPlan> {
        Arc::new(FaultPlan::default())
    }

    /// After `n` more bytes, fail (`Fail`) or tear (`Tear`) the write that crosses the limit.
    pub fn fault_after(&self, n: u64, mode: FaultMode) {
        self.tear.store(mode == FaultMode::Tear, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
        self.budget.store(n, Ordering::SeqCst);
    }

    /// Make every range sync fail (`true`) or succeed (`false`).
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }

    /// Make arming pages ahead of the writer fail as on a full disk (EFAULT: a write there
    /// would raise SIGBUS).
    pub fn fail_prefaults(&self, on: bool) {
        self.fail_prefaults.store(on, Ordering::SeqCst);
    }

    /// Make creating (reserving) a segment fail as on a full disk (ENOSPC).
    pub fn fail_creates(&self, on: bool) {
        self.fail_creates.store(on, Ordering::SeqCst);
    }

    /// Remove all planned faults: writes, syncs, prefaults and creates succeed again.
    pub fn heal(&self) {
        self.fail_creates.store(false, Ordering::SeqCst);
        self.budget.store(u64::MAX, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
        self.fail_syncs.store(false, Ordering::SeqCst);
        self.fail_prefaults.store(false, Ordering::SeqCst);
    }

    /// Whether a write fault has fired.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Bytes written through segments so far (torn writes count what reached the file).
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

/// A backend whose writes and syncs fail as its [`FaultPlan`] says.
#[derive(Clone, Debug)]
pub struct FaultStorage<S> {
    inner: S,
    plan: Arc<FaultPlan>,
}

impl<S: Storage> FaultStorage<S> {
    pub fn new(inner: S, plan: Arc<FaultPlan>) -> FaultStorage<S> {
        FaultStorage { inner, plan }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn plan(&self) -> &Arc<FaultPlan> {
        &self.plan
    }
}

/// A segment of a [`FaultStorage`].
#[derive(Debug)]
pub struct FaultSegment<G> {
    inner: G,
    plan: Arc<FaultPlan>,
}

/// Sync handle of a [`FaultSegment`].
#[derive(Debug)]
pub struct FaultSync<Y> {
    inner: Y,
    plan: Arc<FaultPlan>,
}

impl<G: SegmentFile> SegmentFile for FaultSegment<G> {
    type Sync = FaultSync<G::Sync>;

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let plan = &self.plan;
        if plan.tripped.load(Ordering::SeqCst) {
            return Err(injected("storage failed earlier".to_string()));
        }
        let len = bytes.len() as u64;
        let budget = plan.budget.load(Ordering::SeqCst);
        if budget == u64::MAX || len <= budget {
            if budget != u64::MAX {
                plan.budget.store(budget - len, Ordering::SeqCst);
            }
            self.inner.write_at(offset, bytes)?;
            plan.written.fetch_add(len, Ordering::SeqCst);
            return Ok(());
        }
        plan.tripped.store(true, Ordering::SeqCst);
        plan.budget.store(0, Ordering::SeqCst);
        if plan.tear.load(Ordering::SeqCst) {
            self.inner.write_at(offset, &bytes[..budget as usize])?;
            plan.written.fetch_add(budget, Ordering::SeqCst);
            Err(injected(format!(
                "write of {len} bytes at offset {offset} torn after {budget} bytes"
            )))
        } else {
            Err(injected(format!(
                "write of {len} bytes at offset {offset} failed"
            )))
        }
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn sync_handle(&self) -> Self::Sync {
        FaultSync {
            inner: self.inner.sync_handle(),
            plan: Arc::clone(&self.plan),
        }
    }
}

impl<Y: RangeSync> RangeSync for FaultSync<Y> {
    fn sync_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if self.plan.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected(format!(
                "sync of {len} bytes at offset {offset} failed"
            )));
        }
        self.inner.sync_range(offset, len)
    }

    // `raw_fd` stays `None` (the default), even over a real file: a caller that synced
    // through the descriptor would bypass the plan's sync faults.

    fn prefault_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if self.plan.fail_prefaults.load(Ordering::SeqCst) {
            const EFAULT: i32 = 14;
            return Err(io::Error::from_raw_os_error(EFAULT));
        }
        self.inner.prefault_range(offset, len)
    }

    fn rewrite_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.inner.rewrite_range(offset, len)
    }
}

impl<S: Storage> Storage for FaultStorage<S> {
    type Segment = FaultSegment<S::Segment>;
    type View = S::View;

    fn display_name(&self, name: &str) -> String {
        self.inner.display_name(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str, size: u64) -> io::Result<Self::Segment> {
        if self.plan.fail_creates.load(Ordering::SeqCst) {
            const ENOSPC: i32 = 28;
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(FaultSegment {
            inner: self.inner.create(name, size)?,
            plan: Arc::clone(&self.plan),
        })
    }

    fn open_segment(&self, name: &str, prefault_from: usize) -> io::Result<Self::Segment> {
        Ok(FaultSegment {
            inner: self.inner.open_segment(name, prefault_from)?,
            plan: Arc::clone(&self.plan),
        })
    }

    fn open_view(&self, name: &str) -> io::Result<Self::View> {
        self.inner.open_view(name)
    }

    fn open_live(&self, name: &str) -> io::Result<Box<dyn super::LiveFile>> {
        self.inner.open_live(name)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }

    fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.save(name, bytes)
    }

    fn sync_file(&self, name: &str) -> io::Result<()> {
        if self.plan.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected(format!("sync of {name} failed")));
        }
        self.inner.sync_file(name)
    }

    /// Not subject to the plan: faults model the segment writes and syncs.
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.replace(name, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::MemStorage;
    use super::*;

    #[test]
    fn tears_then_fails() {
        let mem = MemStorage::new();
        let plan = FaultPlan::new();
        let s = FaultStorage::new(mem.clone(), Arc::clone(&plan));
        let mut seg = s.create("f", 32).unwrap();
        plan.fault_after(5, FaultMode::Tear);
        seg.write_at(0, &[1, 1, 1]).unwrap();
        let e = seg.write_at(3, &[2, 2, 2, 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "injected fault: write of 4 bytes at offset 3 torn after 2 bytes"
        );
        assert!(plan.tripped());
        assert!(seg.write_at(10, &[3]).is_err());
        assert_eq!(&mem.read("f").unwrap()[..8], &[1, 1, 1, 2, 2, 0, 0, 0]);
        assert_eq!(plan.bytes_written(), 5);

        plan.fault_after(0, FaultMode::Fail);
        let e = seg.write_at(0, &[9]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "injected fault: write of 1 bytes at offset 0 failed"
        );
        assert_eq!(mem.read("f").unwrap()[0], 1);

        plan.fail_syncs(true);
        assert!(seg.sync_handle().sync_range(0, 1).is_err());
        plan.heal();
        seg.sync_handle().sync_range(0, 1).unwrap();
        seg.write_at(0, &[9]).unwrap();
    }
}
