//! Durable file operations on the log directory: atomic replace with
//! directory fsync, directory fsync, removal. Each goes through the fault
//! injector first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

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
///
/// A directory that another process or thread created in the meantime is
/// not an error, and its parent is fsynced all the same: its creator may
/// not have done so yet, and what we create in it must not outlive it in a
/// power loss. Anything else already at `path` (a file, a dangling
/// symbolic link) is refused with [`StorageError::NotALog`].
pub(crate) fn create_dir(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    let what = format!("mkdir {}", path.display());
    guarded(faults, &what, || match fs::create_dir(path) {
        // `is_dir` follows symbolic links, as the rest of the path does.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    })
    .map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => not_a_directory(path),
        io::ErrorKind::NotADirectory => StorageError::NotALog {
            path: path.display().to_string(),
            reason: "a component of its path is not a directory".into(),
        },
        _ => io_err("creating directory", path, e),
    })?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fsync_dir(parent, faults),
        Some(_) => fsync_dir(Path::new("."), faults),
        None => Ok(()),
    }
}

/// Creates directory `path` and every missing ancestor, top down, each
/// followed by an fsync of its parent, so that the whole path is durable.
/// Opens racing to create the same ancestors all succeed (see
/// [`create_dir`]); a component of the path that exists and is not a
/// directory is refused with [`StorageError::NotALog`].
pub(crate) fn create_dir_all(path: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    create_missing(&missing_dirs(path)?, faults)
}

/// The directories of `path` (itself and its ancestors) that do not exist,
/// top down. Stops at the first that exists, which must be a directory.
fn missing_dirs(path: &Path) -> Result<Vec<&Path>, StorageError> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(dir) {
            Ok(_) if dir.is_dir() => break,
            Ok(_) => return Err(not_a_directory(dir)),
            // Not a directory: an ancestor is not one; the walk finds it.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                missing.push(dir);
            }
            Err(e) => return Err(io_err("reading metadata of", dir, e)),
        }
        at = dir.parent();
    }
    missing.reverse();
    Ok(missing)
}

/// Creates `missing` (as [`missing_dirs`] found them), in order. Any of
/// them may have been created by someone else since.
fn create_missing(missing: &[&Path], faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    for dir in missing {
        create_dir(dir, faults)?;
    }
    Ok(())
}

/// The error for a component of a log's path that is not a directory.
pub(crate) fn not_a_directory(component: &Path) -> StorageError {
    StorageError::NotALog {
        path: component.display().to_string(),
        reason: format!("{} exists and is not a directory", component.display()),
    }
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

/// The names of the entries of directory `dir`.
pub(crate) fn list(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))? {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Reads a small file (at most [`SMALL_FILE_MAX`] bytes and one more), `None`
/// if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    use std::io::Read;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", path, e)),
    };
    // These are small files: a damaged one (a huge or sparse file in their
    // place) is read only far enough to be refused, not loaded whole.
    let mut bytes = Vec::new();
    file.take(SMALL_FILE_MAX + 1).read_to_end(&mut bytes).map_err(|e| io_err("reading", path, e))?;
    Ok(Some(bytes))
}

/// What [`read_optional`] reads of a file at most, and one byte more (so a
/// longer file is seen to be longer): far above the meta file and the head
/// marker it reads.
pub(crate) const SMALL_FILE_MAX: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("raft-io-fsio-").tempdir().unwrap()
    }

    /// Another process creates ancestors between the walk that found them
    /// missing and their creation: not an error, and each is still fsynced
    /// into its parent (its creator may not have done so yet).
    #[test]
    fn an_ancestor_created_by_another_process_in_between_is_not_an_error() {
        let root = temp();
        let path = root.path().join("a/b/log");
        let missing = missing_dirs(&path).unwrap();
        let expected = [root.path().join("a"), root.path().join("a/b"), path.clone()];
        assert_eq!(missing, expected.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        fs::create_dir(root.path().join("a")).unwrap();
        fs::create_dir(root.path().join("a/b")).unwrap();

        let faults = FaultInjector::new();
        faults.record_operations();
        create_missing(&missing, Some(&faults)).expect("ancestors made by someone else are fine");
        assert!(path.is_dir());
        let mut want = Vec::new();
        for (dir, parent) in expected.iter().zip([root.path(), &expected[0], &expected[1]]) {
            want.push(format!("mkdir {}", dir.display()));
            want.push(format!("fsync of directory {}", parent.display()));
        }
        assert_eq!(faults.recorded(), want);
        // The whole path existing by now is fine too.
        create_missing(&missing, None).unwrap();
    }

    /// A component that exists and is not a directory is refused with a
    /// typed error naming it, whether it was there at the walk or appeared
    /// after it.
    #[test]
    fn a_component_that_is_not_a_directory_is_refused() {
        let root = temp();
        let path = root.path().join("a/b/log");
        let missing = missing_dirs(&path).unwrap();
        fs::write(root.path().join("a"), b"a file").unwrap();
        let err = create_missing(&missing, None).expect_err("a file where a directory must be");
        let a = root.path().join("a").display().to_string();
        assert!(matches!(&err, StorageError::NotALog { reason, .. } if reason.contains(&a)), "{err}");

        let err = create_dir_all(&path, None).expect_err("a file on the path");
        assert!(matches!(&err, StorageError::NotALog { reason, .. } if reason.contains(&a)), "{err}");
        assert_eq!(fs::read(root.path().join("a")).unwrap(), b"a file");
    }
}
