//! The only unsafe code of the crate: pushing submission entries whose pointers must stay
//! valid until their completion, the provided-buffer ring's memory, and adopting the file
//! descriptors the kernel hands back.
//!
//! Invariants the callers in this crate keep (each `unsafe` block names the one it relies
//! on):
//! - every buffer a submitted entry points at (a send's bytes, a timespec) is owned by the
//!   driver and neither moved nor freed until that entry's completion has been reaped: send
//!   buffers are `Vec`s kept in their connection, which is freed only after its last
//!   completion;
//! - the provided-buffer ring and its buffers are allocated once, registered with the ring,
//!   and freed only after the ring itself is dropped ([`BufRing`] is declared after the
//!   `IoUring` in [`crate::Driver`], so it drops later).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::net::TcpStream;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::squeue::Entry;
use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// Push `entry`, submitting what is queued first when the submission queue is full.
///
/// The caller guarantees that every pointer in `entry` stays valid until its completion is
/// reaped (module invariants).
pub(crate) fn push(ring: &mut IoUring, entry: &Entry) -> io::Result<()> {
    loop {
        // SAFETY: the entry's pointers outlive its completion (module invariants).
        let pushed = unsafe { ring.submission().push(entry) };
        if pushed.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// Adopt a socket the kernel accepted for us.
pub(crate) fn adopt_socket(fd: RawFd) -> TcpStream {
    // SAFETY: `fd` is the result of a completed accept: a new descriptor that nothing else
    // owns.
    unsafe { TcpStream::from_raw_fd(fd) }
}

/// The provided-buffer ring of one io_uring: `count` buffers of `size` bytes each, handed to
/// the kernel for multishot receives and given back after the data is copied out.
pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    buffers: *mut u8,
    buffers_layout: Layout,
    count: u16,
    size: usize,
    /// The tail as this side last published it.
    tail: u16,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("count", &self.count)
            .field("size", &self.size)
            .finish()
    }
}

impl BufRing {
    /// Allocate `count` (a power of two, at most 32768) buffers of `size` bytes and register
    /// them with `ring` as buffer group `group`.
    pub(crate) fn register(
        ring: &IoUring,
        group: u16,
        count: u16,
        size: usize,
    ) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 32768 && size > 0);
        let entries_layout =
            Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let buffers_layout =
            Layout::from_size_align(count as usize * size, 64).map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let entries = unsafe { alloc_zeroed(entries_layout) } as *mut BufRingEntry;
        let buffers = unsafe { alloc_zeroed(buffers_layout) };
        if entries.is_null() || buffers.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut ring_buf = BufRing {
            entries,
            entries_layout,
            buffers,
            buffers_layout,
            count,
            size,
            tail: 0,
        };
        // SAFETY: the entries stay allocated until after the ring is dropped (module
        // invariants); `count` entries were allocated.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?
        };
        for bid in 0..count {
            ring_buf.give_back(bid);
        }
        Ok(ring_buf)
    }

    /// The bytes of buffer `bid` the kernel filled (`len` of them).
    pub(crate) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size);
        // SAFETY: buffer `bid` lies inside the allocation; the kernel has finished writing
        // it (its completion was reaped) and will not touch it until it is given back.
        unsafe { std::slice::from_raw_parts(self.buffers.add(bid as usize * self.size), len) }
    }

    /// Hand buffer `bid` back to the kernel.
    pub(crate) fn give_back(&mut self, bid: u16) {
        assert!(bid < self.count);
        let index = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `index` < count; the entry at the tail is not in the kernel's hands (the
        // ring never holds more than `count` buffers, and this one was just returned).
        unsafe {
            let entry = &mut *self.entries.add(index);
            entry.set_addr(self.buffers.add(bid as usize * self.size) as u64);
            entry.set_len(self.size as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lies in the first entry, which is allocated and aligned.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts; the ring that used them was
        // dropped before (field order in `Driver`).
        unsafe {
            dealloc(self.entries as *mut u8, self.entries_layout);
            dealloc(self.buffers, self.buffers_layout);
        }
    }
}

/// A CPU set holding `cpus` (those below `CPU_SETSIZE`).
pub(crate) fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is an array of integers; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    set
}
