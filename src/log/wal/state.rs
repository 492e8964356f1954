//! [`LogState`]: the in-memory state of one durable log — what
//! [`WalLog`](super::WalLog) and the shared WAL's
//! [`GroupLog`](crate::log::shared::GroupLog) hold in common. Reads are
//! served from it; mutations are applied to it at once and written by the
//! owner (as a WAL record, or a step staged into the shared WAL), which then
//! calls [`LogState::mark_written`]. Where records go, and how a failure
//! halts the log, stays with the owner.

use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;

use super::record::{ENTRY_HEADER_MAX, FileRef, entry_len};
use super::snapshot_file::{self, Receiver};
use crate::error::StorageError;
use crate::log::chunked::Chunked;
use crate::log::{chunk_of, entry_offsets};
use crate::sync::lock;
use crate::types::{Entry, HardState, Index, LogIdentity, MAX_TERM, SnapshotMeta, Term};

/// Where the latest snapshot's data is.
#[derive(Clone, Debug)]
pub(crate) enum SnapData {
    /// Installed from memory; written to a file by the owner's next write
    /// (a `sync`, or a group's next staging).
    Pending(Bytes),
    /// In a durable file (referenced by the WAL once written).
    File(FileRef),
}

/// The in-memory state of a log, and the marks of what its WAL holds.
#[derive(Debug)]
pub(crate) struct LogState {
    pub(crate) identity: Option<LogIdentity>,
    pub(crate) hard: HardState,
    pub(crate) snap: SnapshotMeta,
    pub(crate) snap_data: SnapData,
    /// The snapshot file whose checksum was verified since the log was
    /// opened: chunks are served only from a verified file.
    snap_verified: Mutex<Option<FileRef>>,
    pub(crate) entries: Chunked,
    pub(crate) receiving: Option<Receiver>,

    /// What the WAL holds (for a group: with the staging area): changes
    /// are written against these.
    pub(crate) durable_identity: Option<LogIdentity>,
    pub(crate) durable_hard: HardState,
    pub(crate) durable_file: FileRef,
    pub(crate) snap_dirty: bool,
    pub(crate) entries_dirty: bool,
    /// Live entries at or below `stable` are written and unchanged since
    /// the last write.
    pub(crate) stable: Index,
    /// The last index as of the last write.
    written_last: Index,
    /// Exact record bytes of the entries after `max(stable, snapshot)`.
    pub(crate) unstable_bytes: u64,
    /// Exact record bytes of every live entry.
    pub(crate) live_bytes: u64,
    /// Snapshot files installed and replaced before being written.
    pub(crate) orphans: Vec<u64>,
}

impl LogState {
    /// The state of a log whose WAL holds exactly this (just opened).
    pub(crate) fn new(
        identity: Option<LogIdentity>,
        hard: HardState,
        snap: SnapshotMeta,
        file: FileRef,
        entries: Chunked,
        live_bytes: u64,
    ) -> Self {
        let last = snap.index + entries.len() as Index;
        LogState {
            identity,
            hard,
            snap,
            snap_data: SnapData::File(file),
            snap_verified: Mutex::new(None),
            entries,
            receiving: None,
            durable_identity: identity,
            durable_hard: hard,
            durable_file: file,
            snap_dirty: false,
            entries_dirty: false,
            stable: last,
            written_last: last,
            unstable_bytes: 0,
            live_bytes,
            orphans: Vec::new(),
        }
    }

    /// Whether the next write would write a step.
    pub(crate) fn has_unsynced_changes(&self) -> bool {
        let hard = self.hard.term != self.durable_hard.term || self.hard.vote != self.durable_hard.vote;
        hard || self.identity != self.durable_identity || self.snap_dirty || self.entries_dirty
    }

    pub(crate) fn offset(&self, index: Index) -> usize {
        (index - self.snap.index - 1) as usize
    }

    /// The first index a step must (re)write.
    pub(crate) fn unstable_from(&self) -> Index {
        self.stable.max(self.snap.index) + 1
    }

    /// Takes removed entry `e` off `live_bytes`, and off `unstable_bytes`
    /// when it was not written yet (above `stable`).
    fn forget(live_bytes: &mut u64, unstable_bytes: &mut u64, stable: Index, e: &Entry) {
        let len = entry_len(e);
        *live_bytes = live_bytes.saturating_sub(len);
        if e.index > stable {
            *unstable_bytes = unstable_bytes.saturating_sub(len);
        }
    }

    /// Removes the first `n` live entries.
    fn remove_prefix(&mut self, n: usize) {
        let (live, unstable, stable) = (&mut self.live_bytes, &mut self.unstable_bytes, self.stable);
        self.entries.drain_front(n, |e| {
            Self::forget(live, unstable, stable, &e);
            true
        });
    }

    /// Removes the live entries from offset `at` on.
    fn remove_suffix(&mut self, at: usize) {
        let (live, unstable, stable) = (&mut self.live_bytes, &mut self.unstable_bytes, self.stable);
        self.entries.truncate_with(at, |e| Self::forget(live, unstable, stable, &e));
    }

    pub(crate) fn install(&mut self, meta: SnapshotMeta, data: SnapData) {
        let keep = self.term(meta.index) == Some(meta.term);
        let drop = if keep { self.offset(meta.index + 1).min(self.entries.len()) } else { self.entries.len() };
        self.remove_prefix(drop);
        if !keep {
            self.stable = self.stable.min(meta.index);
        }
        if let SnapData::File(old) = &self.snap_data {
            if old.id != 0 && old.id != self.durable_file.id {
                self.orphans.push(old.id);
            }
        }
        self.snap = meta;
        self.snap_data = data;
        self.snap_dirty = true;
        self.entries_dirty = true;
    }

    /// The snapshot files a write referencing snapshot file `file` replaces
    /// (deleted once it is durable): those installed and replaced since the
    /// last write, and the one the WAL referenced, if not `file`.
    pub(crate) fn take_replaced(&mut self, file: FileRef) -> Vec<u64> {
        let mut orphans = std::mem::take(&mut self.orphans);
        if self.durable_file.id != 0 && self.durable_file.id != file.id {
            orphans.push(self.durable_file.id);
        }
        orphans
    }

    /// Records that everything changed so far was written, with snapshot
    /// file `file`.
    pub(crate) fn mark_written(&mut self, file: FileRef) {
        self.durable_identity = self.identity;
        self.durable_hard = self.hard;
        self.durable_file = file;
        self.stable = self.last_index();
        self.written_last = self.stable;
        self.snap_dirty = false;
        self.entries_dirty = false;
        self.unstable_bytes = 0;
    }

    /// How many of the live entries the last write holds, when memory
    /// still holds exactly what it wrote besides later changes: no
    /// snapshot installed and no written entry truncated since. With the
    /// durable marks (`durable_identity`, `durable_hard`, `durable_file`)
    /// and `snap`, those entries are the state as written. `None` when
    /// memory no longer holds it.
    pub(crate) fn written_entries(&self) -> Option<usize> {
        let n = self.written_last.checked_sub(self.snap.index)? as usize;
        (!self.snap_dirty && self.stable == self.written_last && n <= self.entries.len()).then_some(n)
    }

    /// Forgets every change since the last write, as a crash would: the
    /// entries appended since, and the identity and hard state as written.
    /// Changes nothing when memory no longer holds what was written (see
    /// [`written_entries`](Self::written_entries)).
    pub(crate) fn discard_unwritten(&mut self) {
        let Some(n) = self.written_entries() else { return };
        self.remove_suffix(n);
        self.identity = self.durable_identity;
        self.hard = self.durable_hard;
        self.entries_dirty = false;
        self.unstable_bytes = 0;
        self.receiving = None;
    }

    /// Sets the identity; the one the log already has when it differs.
    pub(crate) fn set_identity(&mut self, identity: LogIdentity) -> Result<(), LogIdentity> {
        match self.identity {
            Some(id) if id != identity => Err(id),
            _ => {
                self.identity = Some(identity);
                Ok(())
            }
        }
    }

    pub(crate) fn last_index(&self) -> Index {
        self.snap.index + self.entries.len() as Index
    }

    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        if index == self.snap.index {
            return Some(self.snap.term);
        }
        if index < self.snap.index {
            return None;
        }
        self.entries.get(self.offset(index)).map(|e| e.term)
    }

    pub(crate) fn entries(
        &self,
        lo: Index,
        hi: Index,
        max_bytes: u64,
        out: &mut Vec<Entry>,
    ) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snap.index, self.last_index())?;
        self.entries.clone_into(range, max_bytes, out);
        Ok(())
    }

    #[inline]
    pub(crate) fn entry_run(&self, lo: Index, hi: Index) -> Option<&[Entry]> {
        self.entries.tail_run(self.snap.index, lo, hi)
    }

    pub(crate) fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snap.index, self.last_index())?;
        self.entries.visit(range, f);
        Ok(())
    }

    /// Appends `entries` (draining them), refused when they do not follow
    /// the last index or when a step of `overhead` bytes besides its
    /// entries could then exceed `max_record_size`.
    pub(crate) fn append(
        &mut self,
        entries: &mut Vec<Entry>,
        overhead: u64,
        max_record_size: u32,
    ) -> Result<(), StorageError> {
        let mut added = 0u64;
        for (expected, e) in (self.last_index() + 1..).zip(entries.iter()) {
            if e.index != expected {
                return Err(StorageError::InvalidWrite(format!(
                    "append of index {} where {} was expected",
                    e.index, expected
                )));
            }
            check_bound("entry term", e.term)?;
            added += e.data.len() as u64 + ENTRY_HEADER_MAX;
        }
        // The indexes follow on from the last: the batch's last is the
        // highest.
        if let Some(last) = entries.last() {
            check_bound("entry index", last.index)?;
        }
        let bound = overhead + self.unstable_bytes + added;
        if bound > u64::from(max_record_size) {
            return Err(StorageError::InvalidWrite(format!(
                "this step would write up to {bound} bytes, over max_record_size {max_record_size}"
            )));
        }
        if entries.is_empty() {
            return Ok(());
        }
        let len: u64 = entries.iter().map(entry_len).sum();
        self.live_bytes += len;
        self.unstable_bytes += len;
        self.entries.append(entries);
        self.entries_dirty = true;
        Ok(())
    }

    pub(crate) fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        if from <= self.snap.index {
            return Err(StorageError::InvalidWrite(format!(
                "truncate from {from} at or below the snapshot index {}",
                self.snap.index
            )));
        }
        if from > self.last_index() {
            return Ok(());
        }
        self.remove_suffix(self.offset(from));
        self.stable = self.stable.min(from - 1);
        self.entries_dirty = true;
        Ok(())
    }

    /// Refuses a snapshot older than the current one, or at an index or in
    /// a term above [`MAX_TERM`] (see [`check_hard_state`]).
    fn check_snapshot(&self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        check_bound("snapshot index", meta.index)?;
        check_bound("snapshot term", meta.term)?;
        if meta.index < self.snap.index {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot at {} is older than the current one at {}",
                meta.index, self.snap.index
            )));
        }
        Ok(())
    }

    pub(crate) fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.check_snapshot(&meta)?;
        self.install(meta, SnapData::Pending(data));
        Ok(())
    }

    /// Takes the snapshot being received, refused when there is none or
    /// when it is older than the current one.
    pub(crate) fn take_received(&mut self) -> Result<Receiver, StorageError> {
        let Some(r) = self.receiving.take() else {
            return Err(StorageError::InvalidWrite("no snapshot is being received".into()));
        };
        self.check_snapshot(&r.meta)?;
        Ok(r)
    }

    /// The snapshot being received, or an error when there is none.
    pub(crate) fn receiving(&mut self) -> Result<&mut Receiver, StorageError> {
        self.receiving.as_mut().ok_or_else(|| StorageError::InvalidWrite("no snapshot is being received".into()))
    }

    /// The snapshot's data; its file, if any, is in `dir`.
    pub(crate) fn snapshot_data(&self, dir: &Path) -> Result<Bytes, StorageError> {
        match &self.snap_data {
            SnapData::Pending(data) => Ok(data.clone()),
            SnapData::File(f) => snapshot_file::read_all(dir, *f),
        }
    }

    pub(crate) fn snapshot_len(&self) -> Result<u64, StorageError> {
        Ok(match &self.snap_data {
            SnapData::Pending(data) => data.len() as u64,
            SnapData::File(f) => f.len,
        })
    }

    /// A chunk of the snapshot's data; its file, if any, is in `dir`.
    pub(crate) fn snapshot_chunk(&self, dir: &Path, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        match &self.snap_data {
            SnapData::Pending(data) => Ok(chunk_of(data, offset, max_len)),
            SnapData::File(f) => {
                self.verify_snapshot(dir, *f)?;
                snapshot_file::read_range(dir, *f, offset, max_len)
            }
        }
    }

    /// Checks snapshot file `f`'s length and CRC-32C once (the first time a
    /// chunk of it is served), so a damaged file is an error, never bytes.
    fn verify_snapshot(&self, dir: &Path, f: FileRef) -> Result<(), StorageError> {
        let mut verified = lock(&self.snap_verified);
        if *verified != Some(f) {
            snapshot_file::verify(dir, f)?;
            *verified = Some(f);
        }
        Ok(())
    }
}

/// Refuses a hard state whose term is above [`MAX_TERM`]. No node reaches
/// such a term, and recovery refuses a record holding one as damage (for
/// a shared WAL: the whole WAL, every group's state with it), so a write
/// that would only fail at the next open is refused now, changing
/// nothing.
pub(crate) fn check_hard_state(hard: &HardState) -> Result<(), StorageError> {
    check_bound("term", hard.term)
}

/// Refuses an index or term above [`MAX_TERM`] (the WAL's bound on both).
fn check_bound(what: &str, value: u64) -> Result<(), StorageError> {
    if value > MAX_TERM {
        return Err(StorageError::InvalidWrite(format!("{what} {value} is above the maximum {MAX_TERM}")));
    }
    Ok(())
}
