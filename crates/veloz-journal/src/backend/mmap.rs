//! The real backend: segment files in a directory, memory-mapped with memmap2.
//!
//! This is the only journal module with `unsafe` code: copying into a shared mapping (and, at
//! rollover, back out of it), copying out of a read-only mapping of a file being appended to
//! ([`MmapLive`]), reading one byte of each page at creation, and mapping a file for reading. Each block says why it is
//! sound. (Helper threads arm pages ahead of the writer with MADV_POPULATE_WRITE through
//! memmap2's safe `advise_range`: it takes the write faults and changes no byte.) The general
//! argument: a segment file is created at its full size with every block reserved and
//! written (`posix_fallocate`, then every page armed through the mapping and written back:
//! [`reserve`]) before it
//! is mapped, and never truncated while mapped (so no access can fault with SIGBUS, not even
//! on a full disk), every write is bounds-checked against the mapping length,
//! exactly one [`MmapSegment`] writes a given file at a time (the shard's writer, or recovery
//! before the writer starts), and no Rust reference to a segment's bytes exists in this
//! process while it is written through a [`MmapSegment`] (views are opened only when no segment
//! handle writes the file; the sync thread only passes addresses to `msync`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions, MmapRaw};

use super::{out_of_bounds, LiveFile, RangeSync, SegmentFile, Storage};

/// Pages are touched at this stride (the smallest page size of the hosts Veloz runs on).
const PAGE: usize = 4096;
/// The pre-5.14 zero pass of [`reserve`] writes this much per system call.
const ZERO_CHUNK: usize = 1 << 20;

/// A shard's journal directory on disk.
#[derive(Clone, Debug)]
pub struct MmapStorage {
    dir: Arc<PathBuf>,
}

impl MmapStorage {
    /// Use `dir` (created if missing) as one shard's journal directory.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<MmapStorage> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(MmapStorage { dir: Arc::new(dir) })
    }

    /// `DATA/shard-{shard}` under `data_dir`, created if missing.
    pub fn for_shard(data_dir: &Path, shard: u16) -> io::Result<MmapStorage> {
        MmapStorage::new(shard_dir(data_dir, shard))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&*self.dir)?.sync_all()
    }
}

/// The directory of shard `shard`'s journal under a data directory: `DATA/shard-{shard}`.
pub fn shard_dir(data_dir: &Path, shard: u16) -> PathBuf {
    data_dir.join(format!("shard-{shard}"))
}

/// A segment file open for writing through a shared, writable mapping.
#[derive(Debug)]
pub struct MmapSegment {
    map: Arc<MmapRaw>,
    file: Arc<File>,
}

/// Syncs ranges of a mapped segment (`msync(MS_SYNC)`); keeps the mapping alive.
#[derive(Debug)]
pub struct MmapSync {
    map: Arc<MmapRaw>,
    file: Arc<File>,
}

/// Reserve every block of `file` (`size` bytes) and map it, so that no write into the
/// mapping can fault for want of space (SIGBUS): `posix_fallocate` (on tmpfs this reserves
/// the pages), then every page of the mapping armed writable (`MADV_POPULATE_WRITE`: the
/// fallocated blocks read as zeros, and each page becomes dirty without a byte changing) and
/// written back (`msync`, then `fdatasync`), so that the extents are written ones (an
/// fallocated, unwritten extent makes every group-commit msync convert extents:
/// docs/BENCHMARKS.md, "Figures behind design choices"). A full disk fails here, on the
/// preparer thread, with ENOSPC.
///
/// The zeros go through the mapping, not `write()`: the mapping's faults (after MADV_RANDOM,
/// see [`map_random`]) bring each page in as a 4 KiB folio, while `write()` fills the page
/// cache with large folios, and a group-commit msync write-protects whole folios, so the
/// writer faulted on the page it was filling about once per sync (docs/BENCHMARKS.md,
/// "Journal reservation and group commit"). The pages stay in the page cache, clean, so the
/// writer's first touches neither read the disk nor allocate.
pub(crate) fn reserve(file: &File, size: u64) -> io::Result<MmapRaw> {
    let len = i64::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, len).map_err(io::Error::from)?;
    let map = map_random(file)?;
    if map.len() > 0 {
        if map
            .advise_range(Advice::PopulateWrite, 0, map.len())
            .is_err()
        {
            // MADV_POPULATE_WRITE needs Linux 5.14: write the zeros through the file
            // instead (correct, only with large folios in the page cache).
            zero_through_file(file, size)?;
        }
        map.flush()?;
    }
    file.sync_data()?;
    Ok(map)
}

/// The pre-5.14 fallback of [`reserve`]: zeros written over the whole file with `pwrite`.
fn zero_through_file(file: &File, size: u64) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(ZERO_CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// A shared writable mapping of the whole of `file`, advised MADV_RANDOM, so that its faults
/// bring in 4 KiB folios rather than large readahead folios: writeback (a group-commit msync)
/// cleans, and so write-protects, whole folios, and with large ones a sync of the completed
/// pages also write-protected the page the writer was filling, whose write fault then waited
/// for the filesystem journal on the shard's core (about once per sync).
fn map_random(file: &File) -> io::Result<MmapRaw> {
    let map = MmapOptions::new().map_raw(file)?;
    // A hint; without it the journal is correct, only its tail is longer.
    let _ = map.advise(Advice::Random);
    Ok(map)
}

/// Free and total bytes of the filesystem holding `path` (for the log line that says why the
/// journal is unavailable).
pub fn fs_space(path: &Path) -> io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let frag = st.fragment_size() as u64;
    Ok((
        st.blocks_available() as u64 * frag,
        st.blocks() as u64 * frag,
    ))
}

/// A read-only mapping of a whole file.
#[derive(Debug)]
pub struct MmapView {
    map: Mmap,
}

impl Deref for MmapView {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

fn map_segment(file: File, prefault_from: usize) -> io::Result<MmapSegment> {
    // Pages are read into the page cache and the page tables, not written: a written page is
    // dirty and goes back to disk, and writing every page of a 256 MiB segment (and of its
    // spare) made the kernel write back gigabytes of zeros, stalling appends and shutdown for
    // seconds. The writer's helper thread arms the pages just ahead of the writer writable
    // instead (`prefault_range`).
    let map = map_random(&file)?;
    let from = prefault_from / PAGE * PAGE;
    if from < map.len()
        && map
            .advise_range(Advice::PopulateRead, from, map.len() - from)
            .is_err()
    {
        // MADV_POPULATE_READ needs Linux 5.14.
        read_pages(&map, prefault_from);
    }
    Ok(MmapSegment {
        map: Arc::new(map),
        file: Arc::new(file),
    })
}

/// Read one byte of every page from `from` on, so that each is in the page cache and mapped
/// (in case the kernel skipped some while populating).
fn read_pages(map: &MmapRaw, from: usize) {
    let len = map.len();
    let base = map.as_ptr();
    let mut at = from;
    while at < len {
        // SAFETY: `at < len`, so the byte is inside the mapping, which is backed by a file at
        // least `len` bytes long that nothing truncates; the mapping is not yet shared with
        // any other thread, and a volatile read of a mapped byte has no other effect.
        unsafe {
            std::ptr::read_volatile(base.add(at));
        }
        at = (at / PAGE + 1) * PAGE;
    }
}

/// A file a writer may be appending to, mapped read-only and read by copy
/// ([`Storage::open_live`]).
#[derive(Debug)]
pub struct MmapLive {
    map: MmapRaw,
}

impl LiveFile for MmapLive {
    fn len(&self) -> usize {
        self.map.len()
    }

    /// The writer's own mapping may change the bytes meanwhile, in which case the copy is
    /// torn; the caller checks what it copied (record CRCs) and relies only on ranges the
    /// writer published before (the journal's durable watermark, Acquire).
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        copy_out(&self.map, offset, buf)
    }
}

/// Copy `map[offset..offset + buf.len()]` into `buf` through a raw pointer, so that no Rust
/// reference to the mapped bytes is ever formed; an error if the range is not inside.
fn copy_out(map: &MmapRaw, offset: usize, buf: &mut [u8]) -> io::Result<()> {
    let size = map.len();
    if offset > size || buf.len() > size - offset {
        return Err(out_of_bounds(offset, buf.len(), size));
    }
    // SAFETY: the range was just checked to lie inside the mapping, whose file is never
    // truncated while mapped. The bytes are copied, no reference to them is kept, and `buf`
    // is ordinary memory, so the ranges cannot overlap. Callers say who else may touch the
    // range meanwhile (`MmapSegment::read_at`: nobody; `MmapLive::read_at`: the writer,
    // beyond what the caller relies on).
    unsafe {
        std::ptr::copy_nonoverlapping(map.as_ptr().add(offset), buf.as_mut_ptr(), buf.len());
    }
    Ok(())
}

impl SegmentFile for MmapSegment {
    type Sync = MmapSync;

    fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let size = self.map.len();
        if offset > size || bytes.len() > size - offset {
            return Err(out_of_bounds(offset, bytes.len(), size));
        }
        // SAFETY: the range `offset..offset + bytes.len()` was just checked to lie inside the
        // mapping, whose file is never truncated while mapped. `&mut self` makes this the only
        // writer of the mapping; no Rust reference to the mapped bytes exists (readers map the
        // file separately and only when no segment writes it; the sync thread passes addresses
        // to msync only). `bytes` is ordinary memory, so the two ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
        Ok(())
    }

    /// Only this segment's owner writes it (`&self` here excludes a concurrent `write_at`;
    /// helper threads change no byte).
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        copy_out(&self.map, offset, buf)
    }

    fn sync_handle(&self) -> MmapSync {
        MmapSync {
            map: Arc::clone(&self.map),
            file: Arc::clone(&self.file),
        }
    }
}

impl RangeSync for MmapSync {
    /// `msync(MS_SYNC)` of the range (memmap2 rounds its start down to a page). On a shared
    /// file mapping Linux implements that as `vfs_fsync_range(file, start, end, datasync = 1)`
    /// over the file range the pages map (mm/msync.c): dirty mapped pages are already dirty
    /// in the page cache (write-protect and `page_mkwrite` track them), so nothing else is
    /// walked. That is exactly what `fdatasync` of the range does, and what io_uring's
    /// `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC`, `off` and `len` runs
    /// (`vfs_fsync_range(file, off, off + len, 1)`) on [`RangeSync::raw_fd`]: the same
    /// durability, from another thread or asynchronously.
    fn sync_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(offset, len)
    }

    /// The segment file's descriptor: this handle holds the file (an `Arc`), so it stays
    /// open, and names this segment, while the handle lives (a rename does not change it).
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.file.as_raw_fd())
    }

    /// MADV_POPULATE_WRITE (Linux 5.14+; an error elsewhere, which callers ignore): the write
    /// faults of the range are taken here, and no byte changes, so a helper thread may do
    /// this while the writer appends.
    fn prefault_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let start = offset / PAGE * PAGE;
        let end = offset.saturating_add(len).min(self.map.len());
        if start >= end {
            return Ok(());
        }
        self.map
            .advise_range(Advice::PopulateWrite, start, end - start)
    }

    /// Copy the range out of the mapping and `pwrite` it back through the file: the same
    /// bytes, now dirty again, so that the retry's msync writes them (after a failed
    /// writeback the kernel may have marked them clean).
    fn rewrite_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let size = self.map.len();
        if offset > size || len > size - offset {
            return Err(out_of_bounds(offset, len, size));
        }
        let mut buf = vec![0u8; len];
        // SAFETY: the range was just checked to lie inside the mapping, whose file is never
        // truncated while mapped. It was written by the writer before it was handed to this
        // thread to sync (published through the shared atomics with Release/Acquire) and is
        // never written again (the writer only appends after it), so nothing changes these
        // bytes while they are copied; `buf` is ordinary memory and cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(offset), buf.as_mut_ptr(), len);
        }
        self.file.write_all_at(&buf, offset as u64)
    }
}

impl Storage for MmapStorage {
    type Segment = MmapSegment;
    type View = MmapView;

    fn display_name(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&*self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if entry.file_type()?.is_file() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str, size: u64) -> io::Result<MmapSegment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name))?;
        // Reserved and written out before it is mapped (`reserve`): a full disk fails here,
        // on the preparer thread, never as a SIGBUS on the shard's core.
        let map = reserve(&file, size)?;
        file.sync_all()?;
        self.sync_dir()?;
        Ok(MmapSegment {
            map: Arc::new(map),
            file: Arc::new(file),
        })
    }

    fn open_segment(&self, name: &str, prefault_from: usize) -> io::Result<MmapSegment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name))?;
        // A segment written by an older build may be sparse: reserve its blocks (a no-op for
        // blocks already written) so that appending to it cannot SIGBUS either.
        let size = file.metadata()?.len();
        let len = i64::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, len).map_err(io::Error::from)?;
        map_segment(file, prefault_from)
    }

    fn open_view(&self, name: &str) -> io::Result<MmapView> {
        let file = File::open(self.path(name))?;
        // SAFETY: `Mmap` hands out `&[u8]` over the file, which is sound only while nothing
        // changes those bytes. Journal files are written only by the shard's single writer
        // (through `MmapSegment`), and the journal opens views only when no writer is active on
        // the file: recovery drops its views before it writes, and offline tools read journals
        // of stopped engines. Files are never truncated while mapped.
        //
        // MAP_POPULATE: a reader goes through the whole file anyway (records, then the check
        // that the rest is zero), and the journal's pages are 4 KiB folios (see `map_segment`),
        // which would otherwise fault in one by one (replay from page cache 31M -> 39M
        // records/s here).
        let map = unsafe { MmapOptions::new().populate().map(&file)? };
        if !map.is_empty() {
            // Replay reads front to back; a hint only, so a failure is ignored.
            let _ = map.advise(Advice::Sequential);
        }
        Ok(MmapView { map })
    }

    /// A read-only shared mapping used through a raw pointer only (no `&[u8]` over bytes
    /// a writer may be changing): [`MmapLive`].
    fn open_live(&self, name: &str) -> io::Result<Box<dyn LiveFile>> {
        let file = File::open(self.path(name))?;
        let map = MmapOptions::new().map_raw_read_only(&file)?;
        if map.len() > 0 {
            // A follower reads front to back; a hint only.
            let _ = map.advise(Advice::Sequential);
        }
        Ok(Box::new(MmapLive { map }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from), self.path(to))?;
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name))?;
        self.sync_dir()
    }

    fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(name))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        self.sync_dir()
    }

    fn sync_file(&self, name: &str) -> io::Result<()> {
        File::open(self.path(name))?.sync_data()
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.path(&format!("{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.path(name))?;
        self.sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("veloz-mmap-{tag}-{}", std::process::id()))
    }

    #[test]
    fn create_write_view_rename_remove() {
        let dir = temp_dir("basic");
        let _ = fs::remove_dir_all(&dir);
        let s = MmapStorage::new(&dir).unwrap();
        let mut seg = s.create("a.vlj", 8192).unwrap();
        assert_eq!(seg.len(), 8192);
        seg.write_at(4000, b"hello").unwrap();
        assert!(seg.write_at(8190, b"xyz").is_err());
        seg.sync_handle().sync_range(4000, 5).unwrap();
        drop(seg);
        let v = s.open_view("a.vlj").unwrap();
        assert_eq!(&v[4000..4005], b"hello");
        assert!(v[..4000].iter().all(|&b| b == 0));
        drop(v);
        let mut seg = s.open_segment("a.vlj", 4005).unwrap();
        seg.write_at(4005, b"!").unwrap();
        drop(seg);
        s.rename("a.vlj", "b.vlj").unwrap();
        assert_eq!(s.list().unwrap(), vec!["b.vlj".to_string()]);
        assert_eq!(&s.open_view("b.vlj").unwrap()[4000..4006], b"hello!");
        s.save("c.dropped", b"xyz").unwrap();
        assert!(
            s.save("c.dropped", b"xyz").is_err(),
            "save never overwrites"
        );
        // A live file shows what a segment writes after it was opened (one page cache),
        // by copy, and refuses a range outside the file.
        let live = s.open_live("b.vlj").unwrap();
        let mut seg = s.open_segment("b.vlj", 0).unwrap();
        seg.write_at(5000, b"later").unwrap();
        let mut buf = [0u8; 5];
        live.read_at(5000, &mut buf).unwrap();
        assert_eq!(&buf, b"later");
        assert_eq!(live.len(), 8192);
        assert!(live.read_at(8190, &mut buf).is_err());
        drop((seg, live));
        s.remove("b.vlj").unwrap();
        s.remove("c.dropped").unwrap();
        assert!(s.list().unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
