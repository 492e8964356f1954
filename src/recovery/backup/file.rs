//! The backup file (`docs/PROTOCOL.md` §7.5): the magic number, the
//! format version, a WAL checkpoint record (WAL format) holding the
//! source's identity, a hard state, the snapshot's meta and a reference
//! to its data, and the entries; the snapshot's data; and a CRC-32C of
//! everything before it.

use bytes::Bytes;

use super::{Backup, BackupError};
use crate::crc::crc32c;
use crate::log::wal::record::{self, FileRef, Record};
use crate::types::HardState;

/// The first eight bytes of every backup file.
const MAGIC: [u8; 8] = *b"RAFTBKUP";
/// The backup format version this build reads and writes.
const VERSION: u8 = 1;
/// Magic, version and the record's length.
const HEADER: usize = 8 + 1 + 8;
/// The checksum at the end.
const TRAILER: usize = 4;

impl Backup {
    /// The backup as a file's bytes (`docs/PROTOCOL.md` §7.5).
    pub fn encode(&self) -> Vec<u8> {
        let hard = HardState { term: self.last_term(), vote: None, commit: self.last_index() };
        let file = if self.data.is_empty() {
            FileRef::EMPTY
        } else {
            FileRef { id: 1, len: self.data.len() as u64, crc: crc32c(&self.data) }
        };
        let mut rec = Vec::new();
        record::encode_checkpoint(&mut rec, self.source, &hard, &self.snapshot, file, self.entries.iter());
        let mut out = Vec::with_capacity(HEADER + rec.len() + self.data.len() + TRAILER);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(rec.len() as u64).to_le_bytes());
        out.extend_from_slice(&rec);
        out.extend_from_slice(&self.data);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a backup file's bytes, checking every rule of the format
    /// and [`Backup::check`]. Untrusted bytes are safe to hand it: it
    /// refuses, never panics, and allocates in proportion to the bytes
    /// (one `Entry` per entry, each at least three bytes of the file).
    /// The snapshot's data and the entries' data are slices of `bytes`
    /// (no copy).
    ///
    /// ```
    /// use raft_io::recovery::{self, Backup};
    /// use raft_io::{Event, RaftConfig, RaftNode};
    ///
    /// let mut node = RaftNode::new(RaftConfig::new(1, [1]))?;
    /// node.step(Event::Campaign)?;
    /// node.step(Event::Propose("a".into()))?;
    /// let backup = recovery::take_backup(node.log())?;
    ///
    /// let file = backup.encode(); // written to a file, read back
    /// assert_eq!(Backup::decode(&file.clone().into())?, backup);
    /// let mut damaged = file;
    /// damaged[20] ^= 1;
    /// assert!(Backup::decode(&damaged.into()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BackupError::NotABackup`] (no magic number),
    /// [`BackupError::Checksum`] (damaged or cut short),
    /// [`BackupError::Version`], [`BackupError::Malformed`].
    pub fn decode(bytes: &Bytes) -> Result<Backup, BackupError> {
        if !bytes.starts_with(&MAGIC) {
            return Err(BackupError::NotABackup);
        }
        if bytes.len() < HEADER + TRAILER {
            return Err(BackupError::Checksum);
        }
        let body = bytes.len() - TRAILER;
        let mut stored = [0u8; 4];
        stored.copy_from_slice(&bytes[body..]);
        if crc32c(&bytes[..body]) != u32::from_le_bytes(stored) {
            return Err(BackupError::Checksum);
        }
        if bytes[8] != VERSION {
            return Err(BackupError::Version(bytes[8]));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[9..HEADER]);
        let end = usize::try_from(u64::from_le_bytes(len))
            .ok()
            .and_then(|n| HEADER.checked_add(n))
            .filter(|&end| end <= body)
            .ok_or(BackupError::Malformed("the record runs past the end"))?;
        let rec = record::decode(&bytes.slice(HEADER..end)).map_err(|e| BackupError::Malformed(e.0))?;
        let Record::Checkpoint { identity, hard, snapshot, file, entries } = rec else {
            return Err(BackupError::Malformed("the record is not a checkpoint"));
        };
        let data = bytes.slice(end..body);
        let expected = if data.is_empty() {
            FileRef::EMPTY
        } else {
            FileRef { id: 1, len: data.len() as u64, crc: crc32c(&data) }
        };
        if file != expected {
            return Err(BackupError::Malformed("the snapshot data does not match its reference"));
        }
        let backup = Backup { source: identity, snapshot, data, entries };
        backup.check()?;
        if hard != (HardState { term: backup.last_term(), vote: None, commit: backup.last_index() }) {
            return Err(BackupError::Malformed("the hard state is not the last entry's term and index"));
        }
        Ok(backup)
    }
}
