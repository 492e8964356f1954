//! The exclusive lock on a log directory: an advisory lock (`flock` on
//! Unix, `LockFileEx` on Windows, through `fs4`) on the empty file
//! `raftlog.lock`, held by a [`WalLog`](super::WalLog) for its lifetime and
//! released when it is dropped (or its process dies). A second `WalLog` on
//! the same directory, in this process or another, is refused with
//! [`StorageError::Locked`].

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use super::faults::FaultInjector;
use super::fsio::{self, io_err};
use crate::error::StorageError;

/// Name of the lock file inside the log directory.
pub(crate) const LOCK_FILE: &str = "raftlog.lock";

/// The error [`WalLog::open`](super::WalLog::open) returns for a locked
/// directory.
pub(crate) fn locked(dir: &Path) -> StorageError {
    StorageError::Locked { path: dir.display().to_string() }
}

/// A held lock on a log directory; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` through its existing lock file. `Ok(None)` when there is
    /// no lock file (or no directory) yet: nothing is created.
    pub(crate) fn existing(dir: &Path) -> Result<Option<DirLock>, StorageError> {
        let path = dir.join(LOCK_FILE);
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => Self::take(dir, file).map(Some),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(io_err("opening", &path, e)),
        }
    }

    /// Creates `dir` (durably, with its missing ancestors) and its lock
    /// file as needed, and locks it.
    pub(crate) fn create(dir: &Path, faults: Option<&FaultInjector>) -> Result<DirLock, StorageError> {
        if !dir.exists() {
            fsio::create_dir_all(dir, faults)?;
        }
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("creating", &path, e))?;
        Self::take(dir, file)
    }

    /// Whether another holder has `dir` locked right now.
    pub(crate) fn held_elsewhere(dir: &Path) -> bool {
        matches!(Self::existing(dir), Err(StorageError::Locked { .. }))
    }

    fn take(dir: &Path, file: File) -> Result<DirLock, StorageError> {
        // Fully qualified: Rust 1.89 added an inherent `File::try_lock` with
        // another error type, which method syntax would pick instead.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => Err(locked(dir)),
            Err(fs4::TryLockError::Error(e)) => Err(io_err("locking", &dir.join(LOCK_FILE), e)),
        }
    }
}
