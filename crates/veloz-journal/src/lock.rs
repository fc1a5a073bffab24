//! The data-directory lock: one process at a time writes a data directory.
//!
//! [`DataDirLock::acquire`] takes an exclusive, non-blocking `flock(2)` on
//! [`LOCK_FILE`] inside the data directory (std's [`File::try_lock`]) and writes the
//! holder's pid into the file, so that a refused start can name who holds it. The lock is
//! held for as long as the [`DataDirLock`] lives (the engine keeps it for the whole run)
//! and released when it is dropped, or by the kernel when the process dies, however it
//! dies: a lock file left behind by a SIGKILLed engine does not block the next start.
//!
//! Invariants:
//! - the lock file is never deleted (deleting it on release would let two processes lock
//!   two different files of the same name); its content is the pid of the last holder, and
//!   means something only while the file is locked;
//! - the lock is per open file description: a second [`DataDirLock::acquire`] of the same
//!   directory fails even in the same process;
//! - acquiring never waits: a held lock is an error at once.
//!
//! Who takes it: `veloz serve` (before recovery, so also with `--repair-journal`) and any
//! tool that writes into a data directory. The read-only audits (`veloz replay`,
//! `veloz journal dump|trades`) do not: they read journals the engine may be writing and
//! never write themselves (docs/operations.md, "Exclusive ownership").

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside the data directory (`veloz.lock` is `scripts/start.sh`'s
/// own lock, held while the script starts an engine, in the same directory by default).
pub const LOCK_FILE: &str = "engine.lock";

/// The pid recorded in a held lock file, when it could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder(pub Option<u32>);

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "pid {pid}"),
            None => write!(f, "pid unknown"),
        }
    }
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {dir} is in use by another veloz process ({holder}, lock {lock}): stop it first")]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        holder: Holder,
    },
    #[error("cannot {op} the data directory lock {lock}: {source}")]
    Io {
        op: &'static str,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive hold on a data directory; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Lock `dir` (created if missing) for this process, or say who holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |op: &'static str| {
            let lock = path.clone();
            move |source| LockError::Io { op, lock, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder: read_holder(&mut file),
                    lock: path,
                })
            }
            Err(TryLockError::Error(source)) => return Err(io("lock")(source)),
        }
        file.set_len(0).map_err(io("truncate"))?;
        file.seek(SeekFrom::Start(0)).map_err(io("write"))?;
        writeln!(file, "{}", std::process::id()).map_err(io("write"))?;
        Ok(DataDirLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first says so explicitly.
        let _ = self.file.unlock();
    }
}

/// The pid a holder wrote into the lock file (unknown while it has not written it yet).
fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = Read::by_ref(file).take(32).read_to_string(&mut text);
    Holder(text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!("veloz-lock-{tag}-{}-{nanos}", std::process::id()))
    }

    #[test]
    fn a_second_hold_is_refused_naming_the_holder_and_drop_releases() {
        let dir = temp_dir("twice");
        let first = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(first.path(), dir.join(LOCK_FILE));
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        let err = DataDirLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(&err, LockError::Held { holder: Holder(Some(pid)), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!(
                "data directory {} is in use by another veloz process (pid {}, lock {}): stop it first",
                dir.display(),
                std::process::id(),
                dir.join(LOCK_FILE).display()
            )
        );
        drop(first);
        // Released: the file stays, and the next holder takes it over.
        assert!(dir.join(LOCK_FILE).is_file());
        let again = DataDirLock::acquire(&dir).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stale_file_does_not_block_and_an_unwritten_pid_reads_as_unknown() {
        let dir = temp_dir("stale");
        std::fs::create_dir_all(&dir).unwrap();
        // A file left by a dead holder (the kernel released its flock): taken over.
        std::fs::write(dir.join(LOCK_FILE), "999999999\n").unwrap();
        let held = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(held.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // A holder that has not written its pid yet.
        std::fs::write(dir.join(LOCK_FILE), "").unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err();
        assert!(err.to_string().contains("(pid unknown, lock "), "{err}");
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
