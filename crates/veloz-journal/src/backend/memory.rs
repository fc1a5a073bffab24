//! An in-memory backend for tests: files are byte vectors in a shared map.
//!
//! Clones share the same files, so a test can "crash" a writer (drop it) and recover from the
//! same storage. A segment writes into its file's vector under a mutex; views are copies taken
//! when opened. Syncs do nothing (everything written is as durable as memory gets) but are
//! counted, so tests can see the group-commit thread at work.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{out_of_bounds, OwnedView, RangeSync, SegmentFile, Storage};

type File = Arc<Mutex<Vec<u8>>>;

/// Files in memory, shared by clones.
#[derive(Clone, Default)]
pub struct MemStorage {
    files: Arc<Mutex<BTreeMap<String, File>>>,
    syncs: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStorage")
            .field("files", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Lock a mutex, ignoring poisoning (a test that panicked while holding it already failed).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, File>> {
        lock(&self.files)
    }

    fn file(&self, name: &str) -> io::Result<File> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {name}")))
    }

    /// A copy of a file's bytes (tests).
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().get(name).map(|f| lock(f).clone())
    }

    /// Overwrite bytes of a file in place (tests: simulate corruption).
    pub fn patch(&self, name: &str, offset: usize, bytes: &[u8]) {
        let f = self.file(name).expect("patch: no such file");
        lock(&f)[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// How many range syncs were issued, all segments together.
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// A segment of a [`MemStorage`].
#[derive(Debug)]
pub struct MemSegment {
    data: File,
    len: usize,
    syncs: Arc<AtomicU64>,
}

/// Sync handle of a [`MemSegment`]: counts syncs.
#[derive(Debug)]
pub struct MemSync {
    syncs: Arc<AtomicU64>,
}

impl SegmentFile for MemSegment {
    type Sync = MemSync;

    fn len(&self) -> usize {
        self.len
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        if offset > self.len || bytes.len() > self.len - offset {
            return Err(out_of_bounds(offset, bytes.len(), self.len));
        }
        lock(&self.data)[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        if offset > self.len || buf.len() > self.len - offset {
            return Err(out_of_bounds(offset, buf.len(), self.len));
        }
        buf.copy_from_slice(&lock(&self.data)[offset..offset + buf.len()]);
        Ok(())
    }

    fn sync_handle(&self) -> MemSync {
        MemSync {
            syncs: Arc::clone(&self.syncs),
        }
    }
}

impl RangeSync for MemSync {
    fn sync_range(&self, _offset: usize, _len: usize) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Storage for MemStorage {
    type Segment = MemSegment;
    type View = OwnedView;

    fn display_name(&self, name: &str) -> String {
        format!("mem:{name}")
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }

    fn create(&self, name: &str, size: u64) -> io::Result<MemSegment> {
        let data = Arc::new(Mutex::new(vec![0u8; size as usize]));
        self.lock().insert(name.to_string(), Arc::clone(&data));
        Ok(MemSegment {
            data,
            len: size as usize,
            syncs: Arc::clone(&self.syncs),
        })
    }

    fn open_segment(&self, name: &str, _prefault_from: usize) -> io::Result<MemSegment> {
        let data = self.file(name)?;
        let len = lock(&data).len();
        Ok(MemSegment {
            data,
            len,
            syncs: Arc::clone(&self.syncs),
        })
    }

    fn open_view(&self, name: &str) -> io::Result<OwnedView> {
        let f = self.file(name)?;
        let bytes = lock(&f).clone();
        Ok(OwnedView(bytes))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.lock();
        let f = files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {from}")))?;
        files.insert(to.to_string(), f);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.lock()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {name}")))
    }

    fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut files = self.lock();
        if files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("file {name} exists"),
            ));
        }
        files.insert(name.to_string(), Arc::new(Mutex::new(bytes.to_vec())));
        Ok(())
    }

    fn sync_file(&self, name: &str) -> io::Result<()> {
        self.file(name)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.lock()
            .insert(name.to_string(), Arc::new(Mutex::new(bytes.to_vec())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_files() {
        let a = MemStorage::new();
        let b = a.clone();
        let mut seg = a.create("x", 16).unwrap();
        seg.write_at(2, &[1, 2]).unwrap();
        assert_eq!(&b.open_view("x").unwrap()[..4], &[0, 0, 1, 2]);
        assert!(seg.write_at(15, &[1, 2]).is_err());
        b.rename("x", "y").unwrap();
        assert_eq!(a.list().unwrap(), vec!["y".to_string()]);
        a.patch("y", 0, &[9]);
        assert_eq!(b.read("y").unwrap()[0], 9);
        a.remove("y").unwrap();
        assert!(b.open_view("y").is_err());
    }
}
