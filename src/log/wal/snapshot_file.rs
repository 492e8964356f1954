//! Snapshot data files. A snapshot lives in `snapshot-{id:020}.snap`, written
//! whole to a temporary file, fsynced, renamed into place and made durable
//! with a directory fsync *before* any WAL record refers to it. The WAL
//! records its id, length and CRC-32C ([`FileRef`]). A streamed snapshot is
//! received into `snapshot-receiving.tmp` chunk by chunk, so memory stays
//! bounded by the chunk size.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;

use super::faults::{FaultInjector, guarded};
use super::fsio::{fsync_dir, io_err, remove_file, write_atomic};
use super::record::FileRef;
use crate::error::StorageError;
use crate::types::SnapshotMeta;

/// Name of the file a streamed snapshot is received into.
pub(crate) const RECEIVING: &str = "snapshot-receiving.tmp";

/// The file name of snapshot `id`.
pub(crate) fn file_name(id: u64) -> String {
    format!("snapshot-{id:020}.snap")
}

/// The id of a snapshot file name, if `name` is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An id no log writes: not one of its snapshots (a stray file).
    digits.parse().ok().filter(|&id| id <= super::record::MAX_FILE_ID)
}

/// Writes `data` as snapshot `id` durably. An empty snapshot has no file.
pub(crate) fn write(dir: &Path, id: u64, data: &[u8], faults: Option<&FaultInjector>) -> Result<FileRef, StorageError> {
    if data.is_empty() {
        return Ok(FileRef::EMPTY);
    }
    write_atomic(dir, &file_name(id), data, faults)?;
    Ok(FileRef { id, len: data.len() as u64, crc: crate::crc::crc32c(data) })
}

fn corrupt(dir: &Path, r: FileRef, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt { location: dir.join(file_name(r.id)).display().to_string(), reason: reason.into() }
}

fn open_checked(dir: &Path, r: FileRef) -> Result<File, StorageError> {
    let path = dir.join(file_name(r.id));
    let f = File::open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            corrupt(dir, r, "the snapshot file the log refers to is missing")
        } else {
            io_err("opening snapshot", &path, e)
        }
    })?;
    let len = f.metadata().map_err(|e| io_err("reading metadata of", &path, e))?.len();
    if len != r.len {
        return Err(corrupt(dir, r, format!("snapshot file has {len} bytes, the log recorded {}", r.len)));
    }
    Ok(f)
}

/// Checks that snapshot `r` exists with its recorded length and checksum,
/// reading it in bounded chunks.
pub(crate) fn verify(dir: &Path, r: FileRef) -> Result<(), StorageError> {
    if r.id == 0 {
        return Ok(());
    }
    let mut f = open_checked(dir, r)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err("reading snapshot", &dir.join(file_name(r.id)), e))?;
        if n == 0 {
            break;
        }
        crc = crate::crc::crc32c_append(crc, &buf[..n]);
    }
    if crc != r.crc && !mutant!(SnapshotCrcUnchecked) {
        return Err(corrupt(dir, r, "snapshot checksum mismatch"));
    }
    Ok(())
}

/// The whole data of snapshot `r`.
pub(crate) fn read_all(dir: &Path, r: FileRef) -> Result<Bytes, StorageError> {
    if r.id == 0 {
        return Ok(Bytes::new());
    }
    let mut f = open_checked(dir, r)?;
    let mut data = Vec::with_capacity(r.len as usize);
    f.read_to_end(&mut data).map_err(|e| io_err("reading snapshot", &dir.join(file_name(r.id)), e))?;
    if data.len() as u64 != r.len || (crate::crc::crc32c(&data) != r.crc && !mutant!(SnapshotCrcUnchecked)) {
        return Err(corrupt(dir, r, "snapshot checksum mismatch"));
    }
    Ok(Bytes::from(data))
}

/// Up to `max_len` bytes of snapshot `r` from `offset`.
pub(crate) fn read_range(dir: &Path, r: FileRef, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
    let start = offset.min(r.len);
    let n = max_len.min(r.len - start) as usize;
    if n == 0 {
        return Ok(Bytes::new());
    }
    let f = open_checked(dir, r)?;
    let mut data = vec![0u8; n];
    read_exact_at(&f, &mut data, start).map_err(|e| io_err("reading snapshot", &dir.join(file_name(r.id)), e))?;
    Ok(Bytes::from(data))
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// A snapshot being received from a leader, streamed to [`RECEIVING`].
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) meta: SnapshotMeta,
    total: u64,
    received: u64,
    crc: u32,
    file: File,
}

impl Receiver {
    /// Starts a fresh receive, discarding any partial one.
    pub(crate) fn begin(
        dir: &Path,
        meta: &SnapshotMeta,
        total: u64,
        faults: Option<&FaultInjector>,
    ) -> Result<Self, StorageError> {
        let path = dir.join(RECEIVING);
        let file = guarded(faults, "create of the snapshot receive file", || {
            OpenOptions::new().write(true).create(true).truncate(true).open(&path)
        })
        .map_err(|e| io_err("creating", &path, e))?;
        Ok(Self { meta: meta.clone(), total, received: 0, crc: 0, file })
    }

    /// Gives the receive up: the file is closed and removed. Removing it is
    /// best effort: a file left behind is harmless, since the next receive
    /// truncates it and opening the log removes it.
    pub(crate) fn discard(self, dir: &Path) {
        drop(self.file);
        let _ = std::fs::remove_file(dir.join(RECEIVING));
    }

    /// Appends the chunk at `offset`, which must be the bytes received so far.
    pub(crate) fn chunk(
        &mut self,
        dir: &Path,
        offset: u64,
        data: &[u8],
        faults: Option<&FaultInjector>,
    ) -> Result<(), StorageError> {
        if offset != self.received || self.total - self.received < data.len() as u64 {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot chunk at {offset} (+{}) does not follow {} of {}",
                data.len(),
                self.received,
                self.total
            )));
        }
        guarded(faults, "write of a snapshot chunk", || self.file.write_all(data))
            .map_err(|e| io_err("writing", &dir.join(RECEIVING), e))?;
        self.crc = crate::crc::crc32c_append(self.crc, data);
        self.received += data.len() as u64;
        Ok(())
    }

    /// Completes the receive: fsync, rename to snapshot `id`, fsync `dir`.
    pub(crate) fn finish(self, dir: &Path, id: u64, faults: Option<&FaultInjector>) -> Result<FileRef, StorageError> {
        let tmp = dir.join(RECEIVING);
        if self.received != self.total {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot incomplete: {} of {} bytes",
                self.received, self.total
            )));
        }
        if self.total == 0 {
            drop(self.file);
            remove_file(&tmp, faults)?;
            return Ok(FileRef::EMPTY);
        }
        guarded(faults, "fsync of a received snapshot", || self.file.sync_all())
            .map_err(|e| io_err("syncing", &tmp, e))?;
        drop(self.file);
        let path = dir.join(file_name(id));
        guarded(faults, "rename of a received snapshot", || fs::rename(&tmp, &path))
            .map_err(|e| io_err("renaming snapshot to", &path, e))?;
        fsync_dir(dir, faults)?;
        Ok(FileRef { id, len: self.total, crc: self.crc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42), "snapshot-00000000000000000042.snap");
        assert_eq!(parse_name(&file_name(42)), Some(42));
        let max = super::super::record::MAX_FILE_ID;
        assert_eq!(parse_name(&file_name(max)), Some(max));
        assert_eq!(parse_name(&file_name(max + 1)), None, "an id no log writes");
        assert_eq!(parse_name(&file_name(u64::MAX)), None);
        for bad in ["snapshot-42.snap", "snapshot-0000000000000000004x.snap", "x.snap", RECEIVING] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
