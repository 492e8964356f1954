//! Durable file operations on the log directory: atomic replace with
//! directory fsync, directory fsync, removal. Each goes through the fault
//! injector first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::faults::{FaultInjector, guarded};
use crate::error::StorageError;

/// Wraps an I/O error with what was being done and to which path.
pub(crate) fn io_err(what: &str, path: &Path, source: io::Error) -> StorageError {
    StorageError::Io { context: format!("{what} {}", path.display()), source }
}

/// fsyncs a directory so that entries created, renamed or removed in it are
/// durable. (Windows cannot open a directory for fsync; NTFS journals its
/// metadata, so there it only counts as an operation for fault injection.)
pub(crate) fn fsync_dir(dir: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    let what = format!("fsync of directory {}", dir.display());
    guarded(faults, &what, || if cfg!(unix) { File::open(dir)?.sync_all() } else { Ok(()) })
        .map_err(|e| io_err("syncing directory", dir, e))
}

/// fsyncs an existing file's data (and the metadata needed to read it).
/// Nothing is written: this makes durable what a crashed process may have
/// left in the page cache.
pub(crate) fn fsync_file(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    let what = format!("fsync of file {}", path.display());
    // Windows flushes only handles opened for writing; Unix any handle.
    guarded(faults, &what, || OpenOptions::new().read(true).write(cfg!(windows)).open(path)?.sync_data())
        .map_err(|e| io_err("syncing", path, e))
}

/// Replaces `dir/name` with `bytes` atomically: write `name.tmp`, fsync it,
/// rename it over `name`, fsync `dir`.
pub(crate) fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    faults: Option<&FaultInjector>,
) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    guarded(faults, "write of a temporary file", || {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(bytes)?;
        Ok(f)
    })
    .and_then(|f| guarded(faults, "fsync of a temporary file", || f.sync_all()))
    .map_err(|e| io_err("writing", &tmp, e))?;
    guarded(faults, "rename", || fs::rename(&tmp, &path)).map_err(|e| io_err("renaming over", &path, e))?;
    fsync_dir(dir, faults)
}

/// Creates directory `path` (its parent must exist) and fsyncs the parent.
pub(crate) fn create_dir(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    let what = format!("mkdir {}", path.display());
    guarded(faults, &what, || fs::create_dir(path)).map_err(|e| io_err("creating directory", path, e))?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fsync_dir(parent, faults),
        Some(_) => fsync_dir(Path::new("."), faults),
        None => Ok(()),
    }
}

/// Creates directory `path` and every missing ancestor, top down, each
/// followed by an fsync of its parent, so that the whole path is durable.
pub(crate) fn create_dir_all(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    create_missing(&missing_dirs(path)?, faults)
}

/// The directories of `path` (itself and its ancestors) that do not exist,
/// top down.
fn missing_dirs(path: &Path) -> Result<Vec<&Path>, StorageError> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(dir),
            Err(e) => return Err(io_err("reading metadata of", dir, e)),
        }
        at = dir.parent();
    }
    missing.reverse();
    Ok(missing)
}

/// Creates `missing` (as [`missing_dirs`] found them), in order.
fn create_missing(missing: &[&Path], faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    for dir in missing {
        create_dir(dir, faults)?;
    }
    Ok(())
}

/// Removes a file; a missing file is not an error.
pub(crate) fn remove_file(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    let what = format!("unlink {}", path.display());
    guarded(faults, &what, || match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    })
    .map_err(|e| io_err("removing", path, e))
}

/// Reads a whole small file, `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path, e)),
    }
}

