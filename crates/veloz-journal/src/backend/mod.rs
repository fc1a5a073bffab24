//! Storage behind the journal: a small trait and three implementations.
//!
//! A [`Storage`] is one shard's directory of files, addressed by file name. The journal
//! needs little from it: list names, create a preallocated and prefaulted segment, open one
//! for writing or for reading, rename, remove, save a small file and replace one (the chain
//! head) atomically. A [`SegmentFile`] is a
//! fixed-size segment open for writing: a copy into it at an offset is an append, and its
//! [`RangeSync`] handle (usable from another thread) makes a byte range durable.
//!
//! | backend | what | used by |
//! |---|---|---|
//! | [`MmapStorage`] | files in a directory, memory-mapped with memmap2 | the engine, tools |
//! | [`MemStorage`] | files as byte vectors in memory | tests |
//! | [`FaultStorage`] | wraps another backend; fails or tears writes after N bytes, fails syncs | tests |
//!
//! Invariants every backend keeps:
//! - a created segment reads as zeros until written, and keeps its size;
//! - bytes written through a [`SegmentFile`] are seen by views opened afterwards;
//! - `rename` and `remove` are durable when they return (directory synced) for real files.
//!
//! Only `mmap.rs` contains `unsafe` code.

mod fault;
mod memory;
// The one module with `unsafe` (mapping files into memory), each block with a SAFETY note.
#[allow(unsafe_code)]
mod mmap;

use std::io;
use std::ops::Deref;
use std::os::fd::RawFd;

pub use fault::{FaultMode, FaultPlan, FaultStorage};
pub use memory::MemStorage;
pub use mmap::{fs_space, shard_dir, MmapLive, MmapSegment, MmapStorage, MmapSync, MmapView};

/// One shard's directory of journal files.
pub trait Storage: Clone + Send + Sync + 'static {
    /// A segment open for writing.
    type Segment: SegmentFile;
    /// A read-only view of a whole file.
    type View: Deref<Target = [u8]> + Send + 'static;

    /// The name as it should appear in messages (the full path for real files).
    fn display_name(&self, name: &str) -> String;
    /// The names of all files, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Create (or truncate) `name` as a zero-filled file of `size` bytes with its blocks
    /// reserved and written (so that no write into it can fail for want of space), make it
    /// durable, and map it with every page in the page cache and the page tables (see
    /// `docs/journal-format.md`, "Reservation"). A full disk is an error here.
    fn create(&self, name: &str, size: u64) -> io::Result<Self::Segment>;
    /// Open an existing segment for writing; pages from `prefault_from` on are prefaulted.
    fn open_segment(&self, name: &str, prefault_from: usize) -> io::Result<Self::Segment>;
    /// Open a whole file for reading. The caller must not write the file through a segment
    /// while the view is alive.
    fn open_view(&self, name: &str) -> io::Result<Self::View>;
    /// Open a file that a writer may still be appending to, for reading by copy: no
    /// reference to its bytes is ever formed, so bytes being written beside it cannot be
    /// assumed unchanging by the compiler (the journal follower reads what the writer has
    /// made durable; the copies are then checked like any record). The default reads a
    /// view opened once ([`Storage::open_view`]): correct for backends whose views are
    /// copies, and showing nothing appended after the open (the follower reopens).
    fn open_live(&self, name: &str) -> io::Result<Box<dyn LiveFile>> {
        Ok(Box::new(ViewLive(self.open_view(name)?)))
    }
    /// Rename `from` to `to` (replacing `to`), durably.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Remove `name`, durably.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Write a new small file `name` with `bytes`, durably (repair keeps cut bytes this way).
    fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Make every written byte of `name` durable (fdatasync).
    fn sync_file(&self, name: &str) -> io::Result<()>;
    /// Replace the small file `name` with `bytes` atomically and durably: write
    /// `{name}.tmp`, sync it, rename it over `name`, sync the directory (the chain head).
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
}

/// A fixed-size segment open for writing. One writer per segment.
pub trait SegmentFile: Send + 'static {
    /// A handle that syncs ranges of this segment, from any thread.
    type Sync: RangeSync;

    /// Size of the segment in bytes.
    fn len(&self) -> usize;
    /// True if the segment has no bytes (never, for a journal segment).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `bytes` to `offset`. The range must lie inside the segment.
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()>;
    /// Copy the bytes at `offset` into `buf` (the writer reads back a segment's header and
    /// last records at rollover, to link the next segment to it). The range must lie inside.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()>;
    /// A handle that syncs byte ranges of this segment.
    fn sync_handle(&self) -> Self::Sync;
}

/// What helper threads do to a segment the writer is appending to: make written ranges
/// durable, and keep the pages ahead of the writer mapped writable. Neither changes a byte, so
/// both are safe beside the writer.
pub trait RangeSync: Send + Sync + 'static {
    /// Write `offset..offset + len` to stable storage and wait for it (msync `MS_SYNC`).
    fn sync_range(&self, offset: usize, len: usize) -> io::Result<()>;

    /// The descriptor of the segment's file, for a caller that syncs ranges itself
    /// (`IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` over the same range does what
    /// [`RangeSync::sync_range`] does: see [`MmapSync`]). It stays open as long as this
    /// handle lives. `None` (the default) for backends without a file, or whose syncs must
    /// go through [`RangeSync::sync_range`] (the fault backend, so that its plan applies).
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    /// Take the write faults of `offset..offset + len` now (pages cleaned by writeback or by
    /// a sync are write-protected again), so that the writer does not. Best effort; the
    /// default does nothing.
    fn prefault_range(&self, _offset: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }

    /// Write `offset..offset + len` again with the bytes it holds, so that the next
    /// [`RangeSync::sync_range`] writes them even if a failed sync left them marked clean
    /// (used before retrying a failed sync; the range is never being written). The default
    /// does nothing (backends whose sync never loses dirty state).
    fn rewrite_range(&self, _offset: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }
}

/// A file open for reading while a writer may append to it ([`Storage::open_live`]).
pub trait LiveFile: Send {
    /// The file's length when it was opened (journal segments never change length).
    fn len(&self) -> usize;
    /// True if the file has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy the bytes at `offset` into `buf`; the range must lie inside the file. Bytes the
    /// writer is writing meanwhile may come back torn: callers check what they read (a
    /// record's CRC) and rely only on ranges the writer published before.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()>;
}

/// The default [`Storage::open_live`]: the view opened once (a copy, for the backends that
/// use the default).
struct ViewLive<V>(V);

impl<V: Deref<Target = [u8]> + Send> LiveFile for ViewLive<V> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        let src = offset
            .checked_add(buf.len())
            .and_then(|end| self.0.get(offset..end))
            .ok_or_else(|| out_of_bounds(offset, buf.len(), self.0.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A view that owns its bytes (used by the in-memory backends).
#[derive(Clone, Debug)]
pub struct OwnedView(pub Vec<u8>);

impl Deref for OwnedView {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

fn out_of_bounds(offset: usize, len: usize, size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("write of {len} bytes at offset {offset} runs past the segment end {size}"),
    )
}
