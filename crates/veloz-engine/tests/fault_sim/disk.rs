//! A simulated disk for the fault simulation: files in memory, each with the bytes written
//! (the page cache) and the bytes synced (the platter), so that a power loss can be played:
//! what was never synced is lost, or only a prefix of it reached the platter (a torn page).
//!
//! Model (the [`Storage`] contract of `veloz_journal`):
//! - `create` makes a zero-filled file whose existence and size are durable at once; a full
//!   disk ([`SimDisk::set_full`]) refuses it with `ENOSPC`;
//! - `write_at` changes the written bytes only; `sync_range` and `sync_file` copy written
//!   bytes to the synced ones;
//! - `rename`, `remove`, `save` and `replace` are durable when they return;
//! - one lock covers the whole disk, so a crash image is one instant of it (a sync is never
//!   half seen).
//!
//! Segments refer to their file, not to its name (a segment open for writing stays the same
//! file when it is renamed), as with real files.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use veloz_journal::backend::OwnedView;
use veloz_journal::{RangeSync, SegmentFile, Storage};

#[derive(Clone, Debug, Default)]
struct File {
    written: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct Disk {
    names: BTreeMap<String, usize>,
    files: Vec<File>,
    /// The file written last (the one a power loss tears).
    last_written: Option<usize>,
}

/// How the machine stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// The process died: the page cache (everything written) survives, and is still to be
    /// synced.
    Process,
    /// The power failed: only synced bytes survive.
    PowerLoss,
    /// The power failed while the file written last was being written back: the first
    /// `keep`/65536 of its unsynced span (from its first unsynced byte to its last) reached
    /// the platter, if no other file had unsynced bytes (else as [`Crash::PowerLoss`]: a
    /// newer segment written back before an older one's tail is a sequence gap, which
    /// recovery refuses without repair).
    TornPage { keep: u16 },
}

/// A simulated disk; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
    full: Arc<AtomicBool>,
}

fn lock(m: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// A full disk refuses to create files.
    pub fn set_full(&self, on: bool) {
        self.full.store(on, Ordering::SeqCst);
    }

    /// The disk as the next start finds it after `crash`: a new disk (nothing of this one's
    /// writers reaches it); after a power loss every surviving byte is on the platter.
    pub fn after(&self, crash: Crash) -> SimDisk {
        let d = lock(&self.disk);
        // Write-back order across files is not modelled: a page is torn only while all the
        // unsynced bytes are in the file written last (see `Crash::TornPage`).
        let dirty = d.files.iter().filter(|f| f.written != f.synced).count();
        let files = d
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if crash == Crash::Process {
                    // The page cache outlives the process: written stays written, unsynced.
                    return f.clone();
                }
                let mut bytes = f.synced.clone();
                let torn = match crash {
                    Crash::TornPage { keep } if dirty == 1 && d.last_written == Some(i) => {
                        Some(keep)
                    }
                    _ => None,
                };
                if let Some(keep) = torn {
                    let diff = |i: &usize| f.written[*i] != f.synced[*i];
                    let first = (0..f.written.len()).find(diff);
                    let last = (0..f.written.len()).rev().find(diff);
                    if let (Some(first), Some(last)) = (first, last) {
                        let n = (last + 1 - first) * keep as usize / 65536;
                        bytes[first..first + n].copy_from_slice(&f.written[first..first + n]);
                    }
                }
                File {
                    written: bytes.clone(),
                    synced: bytes,
                }
            })
            .collect();
        SimDisk {
            disk: Arc::new(Mutex::new(Disk {
                names: d.names.clone(),
                files,
                last_written: None,
            })),
            full: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A file of a [`SimDisk`] open for writing.
#[derive(Debug)]
pub struct SimSegment {
    disk: Arc<Mutex<Disk>>,
    file: usize,
    len: usize,
}

/// Sync handle of a [`SimSegment`].
#[derive(Debug)]
pub struct SimSync {
    disk: Arc<Mutex<Disk>>,
    file: usize,
}

fn check(offset: usize, len: usize, size: usize) -> io::Result<()> {
    if offset > size || len > size - offset {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{len} bytes at offset {offset} run past the end {size}"),
        ));
    }
    Ok(())
}

impl SegmentFile for SimSegment {
    type Sync = SimSync;

    fn len(&self) -> usize {
        self.len
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        check(offset, bytes.len(), self.len)?;
        let mut d = lock(&self.disk);
        d.files[self.file].written[offset..offset + bytes.len()].copy_from_slice(bytes);
        d.last_written = Some(self.file);
        Ok(())
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        check(offset, buf.len(), self.len)?;
        buf.copy_from_slice(&lock(&self.disk).files[self.file].written[offset..offset + buf.len()]);
        Ok(())
    }

    fn sync_handle(&self) -> SimSync {
        SimSync {
            disk: Arc::clone(&self.disk),
            file: self.file,
        }
    }
}

impl RangeSync for SimSync {
    fn sync_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let mut d = lock(&self.disk);
        let f = &mut d.files[self.file];
        check(offset, len, f.written.len())?;
        let (written, synced) = (&f.written, &mut f.synced);
        synced[offset..offset + len].copy_from_slice(&written[offset..offset + len]);
        Ok(())
    }
}

impl SimDisk {
    fn segment(&self, file: usize, len: usize) -> SimSegment {
        SimSegment {
            disk: Arc::clone(&self.disk),
            file,
            len,
        }
    }

    fn add(&self, name: &str, bytes: Vec<u8>) -> usize {
        let mut d = lock(&self.disk);
        d.files.push(File {
            written: bytes.clone(),
            synced: bytes,
        });
        let i = d.files.len() - 1;
        d.names.insert(name.to_string(), i);
        i
    }
}

impl Storage for SimDisk {
    type Segment = SimSegment;
    type View = OwnedView;

    fn display_name(&self, name: &str) -> String {
        format!("sim:{name}")
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(lock(&self.disk).names.keys().cloned().collect())
    }

    fn create(&self, name: &str, size: u64) -> io::Result<SimSegment> {
        if self.full.load(Ordering::SeqCst) {
            const ENOSPC: i32 = 28;
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let i = self.add(name, vec![0; size as usize]);
        Ok(self.segment(i, size as usize))
    }

    fn open_segment(&self, name: &str, _prefault_from: usize) -> io::Result<SimSegment> {
        let d = lock(&self.disk);
        let &i = d.names.get(name).ok_or_else(|| not_found(name))?;
        let len = d.files[i].written.len();
        drop(d);
        Ok(self.segment(i, len))
    }

    fn open_view(&self, name: &str) -> io::Result<OwnedView> {
        let d = lock(&self.disk);
        let &i = d.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(OwnedView(d.files[i].written.clone()))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut d = lock(&self.disk);
        let i = d.names.remove(from).ok_or_else(|| not_found(from))?;
        d.names.insert(to.to_string(), i);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        lock(&self.disk)
            .names
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if lock(&self.disk).names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("file {name} exists"),
            ));
        }
        self.add(name, bytes.to_vec());
        Ok(())
    }

    fn sync_file(&self, name: &str) -> io::Result<()> {
        let mut d = lock(&self.disk);
        let &i = d.names.get(name).ok_or_else(|| not_found(name))?;
        let f = &mut d.files[i];
        f.synced.clone_from(&f.written);
        Ok(())
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.add(name, bytes.to_vec());
        Ok(())
    }
}
