//! [`GroupLog`]: one group's [`RaftLog`] on a shared WAL. Its entries, hard
//! state, snapshot and identity live in the handle (reads never lock); its
//! writes are staged into the shared staging area and made durable by the
//! next flush, together with every other group's.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::GroupId;
use super::inner::Inner;
use super::record::{BATCH_HEADER_MAX, OP_HEADER_MAX};
use crate::error::StorageError;
use crate::log::wal::fsio;
use crate::log::wal::record::{ENTRY_HEADER_MAX, FileRef, Record, entry_len};
use crate::log::wal::snapshot_file::{self, Receiver};
use crate::log::{RaftLog, Submitted, WriteToken, chunk_of, entry_offsets, fitting};
use crate::sync::lock;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta, Term};

/// Where the latest snapshot's data is.
#[derive(Clone, Debug)]
enum SnapData {
    /// Installed from memory; written to a file when the group next stages.
    Pending(Bytes),
    /// In a durable file.
    File(FileRef),
}

/// One Raft group's log on a [`SharedWal`](super::SharedWal): a
/// [`RaftLog`] whose writes share the WAL, and its fsyncs, with every
/// other group. Get one from [`SharedWal::create_group`] or
/// [`SharedWal::group`]; at most one handle per group is alive at a time.
///
/// * [`sync`](RaftLog::sync) stages this group's changes and flushes the
///   shared WAL (every group's staged writes, one fsync).
/// * [`submit`](RaftLog::submit) (the asynchronous storage mode) stages
///   them and answers [`Submitted::Pending`]; the next
///   [`SharedWal::flush`] makes them durable and returns the token.
/// * [`persisted`](RaftLog::persisted) flushes when the token is still
///   staged (a driver that reports tokens itself), and fails when the log
///   halted.
///
/// Once the group is removed, every call fails with
/// [`StorageError::Group`] ([`GroupProblem::Removed`](crate::GroupProblem::Removed)).
///
/// [`SharedWal::create_group`]: super::SharedWal::create_group
/// [`SharedWal::group`]: super::SharedWal::group
/// [`SharedWal::flush`]: super::SharedWal::flush
#[derive(Debug)]
pub struct GroupLog {
    wal: Arc<Mutex<Inner>>,
    id: GroupId,
    incarnation: u64,
    /// The group's snapshot directory.
    dir: PathBuf,
    max_record_size: u32,
    instance: u64,

    identity: Option<LogIdentity>,
    hard: HardState,
    snap: SnapshotMeta,
    snap_data: SnapData,
    /// The snapshot file whose checksum was verified since the handle was
    /// made: chunks are served only from a verified file.
    snap_verified: Mutex<Option<FileRef>>,
    entries: VecDeque<Entry>,
    receiving: Option<Receiver>,

    /// What the WAL (with the staging area) holds: changes are staged
    /// against these.
    staged_identity: Option<LogIdentity>,
    staged_hard: HardState,
    staged_file: FileRef,
    snap_dirty: bool,
    entries_dirty: bool,
    /// Live entries at or below `stable` are staged and unchanged since.
    stable: Index,
    /// Exact record bytes of the entries after `max(stable, snapshot)`.
    unstable_bytes: u64,
    /// Snapshot files installed and replaced before being staged.
    orphans: Vec<u64>,
}

impl GroupLog {
    /// A handle on group `id` of `wal`, whose slot the caller checked out.
    pub(super) fn new(wal: Arc<Mutex<Inner>>, inner: &Inner, id: GroupId) -> Option<Self> {
        let slot = inner.groups.get(&id)?;
        let image = &slot.image;
        let last = image.snap.index + image.entries.len() as Index;
        Some(GroupLog {
            id,
            incarnation: slot.incarnation,
            dir: inner.group_dir(id),
            max_record_size: inner.meta.max_record_size,
            instance: inner.instance ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            identity: image.identity,
            hard: image.hard,
            snap: image.snap.clone(),
            snap_data: SnapData::File(image.file),
            snap_verified: Mutex::new(None),
            entries: image.entries.clone(),
            receiving: None,
            staged_identity: image.identity,
            staged_hard: image.hard,
            staged_file: image.file,
            snap_dirty: false,
            entries_dirty: false,
            stable: last,
            unstable_bytes: 0,
            orphans: Vec::new(),
            wal,
        })
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Whether a `sync` now would stage a step.
    pub fn has_unsynced_changes(&self) -> bool {
        let hard = self.hard.term != self.staged_hard.term || self.hard.vote != self.staged_hard.vote;
        hard || self.identity != self.staged_identity || self.snap_dirty || self.entries_dirty
    }

    /// Locks the shared state, checking that the log has not halted and
    /// the group was not removed.
    fn inner(&self) -> Result<MutexGuard<'_, Inner>, StorageError> {
        let mut inner = lock(&self.wal);
        inner.check_halted()?;
        inner.slot(self.id, self.incarnation)?;
        Ok(inner)
    }

    fn check(&self) -> Result<(), StorageError> {
        self.inner().map(drop)
    }

    /// Halts the shared log on `e` (unless harmless); returns it.
    fn halt(&self, e: StorageError) -> StorageError {
        lock(&self.wal).halt(e)
    }

    fn offset(&self, index: Index) -> usize {
        (index - self.snap.index - 1) as usize
    }

    fn unstable_from(&self) -> Index {
        self.stable.max(self.snap.index) + 1
    }

    fn remove_entries(&mut self, range: impl std::ops::RangeBounds<usize>) {
        for e in self.entries.drain(range) {
            if e.index > self.stable {
                self.unstable_bytes = self.unstable_bytes.saturating_sub(entry_len(&e));
            }
        }
    }

    /// An upper bound of a step's bytes in a batch besides its entries.
    fn step_overhead(&self) -> u64 {
        96 + self.snap.membership.encoded_len() as u64 + OP_HEADER_MAX + BATCH_HEADER_MAX
    }

    fn install(&mut self, meta: SnapshotMeta, data: SnapData) {
        let keep = self.term(meta.index) == Some(meta.term);
        let drop = if keep { self.offset(meta.index + 1).min(self.entries.len()) } else { self.entries.len() };
        self.remove_entries(..drop);
        if !keep {
            self.stable = self.stable.min(meta.index);
        }
        if let SnapData::File(old) = &self.snap_data {
            if old.id != 0 && old.id != self.staged_file.id {
                self.orphans.push(old.id);
            }
        }
        self.snap = meta;
        self.snap_data = data;
        self.snap_dirty = true;
        self.entries_dirty = true;
    }

    /// Stages everything changed since the last staging as one step, and
    /// `token` after it.
    fn stage(&mut self, token: Option<WriteToken>) -> Result<(), StorageError> {
        let wal = Arc::clone(&self.wal);
        let mut inner = lock(&wal);
        inner.check_halted()?;
        inner.slot(self.id, self.incarnation)?;
        if self.has_unsynced_changes() {
            self.stage_step(&mut inner).map_err(|e| inner.halt(e))?;
        }
        if let Some(token) = token {
            inner.stage_token(self.id, self.incarnation, token)?;
        }
        Ok(())
    }

    fn stage_step(&mut self, inner: &mut Inner) -> Result<(), StorageError> {
        let file = match &self.snap_data {
            SnapData::File(f) => *f,
            SnapData::Pending(data) => {
                let data = data.clone();
                let id = if data.is_empty() { 0 } else { self.alloc_snapshot_id(inner)? };
                if id != 0 && !self.dir.is_dir() {
                    fsio::create_dir(&self.dir, inner.faults())?;
                }
                let file = snapshot_file::write(&self.dir, id, &data, inner.faults())?;
                self.snap_data = SnapData::File(file);
                file
            }
        };
        let from = self.unstable_from();
        let skip = self.offset(from).min(self.entries.len());
        let step = Record::Step {
            identity: (self.identity != self.staged_identity).then_some(self.identity).flatten(),
            hard: (self.hard != self.staged_hard).then_some(self.hard),
            snapshot: self.snap_dirty.then(|| (self.snap.clone(), file)),
            entries: self.entries_dirty.then(|| (from, self.entries.range(skip..).cloned().collect())),
        };
        let mut replaced: Vec<PathBuf> =
            self.orphans.drain(..).map(|id| self.dir.join(snapshot_file::file_name(id))).collect();
        if self.staged_file.id != 0 && self.staged_file.id != file.id {
            replaced.push(self.dir.join(snapshot_file::file_name(self.staged_file.id)));
        }
        inner.stage_step(self.id, self.incarnation, step, replaced)?;
        self.staged_identity = self.identity;
        self.staged_hard = self.hard;
        self.staged_file = file;
        self.stable = self.last_index();
        self.snap_dirty = false;
        self.entries_dirty = false;
        self.unstable_bytes = 0;
        Ok(())
    }

    fn alloc_snapshot_id(&self, inner: &mut Inner) -> Result<u64, StorageError> {
        let slot = inner.slot(self.id, self.incarnation)?;
        let id = slot.next_snap_id;
        slot.next_snap_id += 1;
        Ok(id)
    }

    fn verify_snapshot(&self, f: FileRef) -> Result<(), StorageError> {
        let mut verified = lock(&self.snap_verified);
        if *verified != Some(f) {
            snapshot_file::verify(&self.dir, f)?;
            *verified = Some(f);
        }
        Ok(())
    }
}

/// Hands the group back: another handle may be made for it.
impl Drop for GroupLog {
    fn drop(&mut self) {
        let mut inner = lock(&self.wal);
        if let Ok(slot) = inner.slot(self.id, self.incarnation) {
            slot.checked_out = false;
        }
    }
}

impl RaftLog for GroupLog {
    fn identity(&self) -> Option<LogIdentity> {
        self.identity
    }

    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.check()?;
        match self.identity {
            Some(id) if id != identity => Err(StorageError::InvalidWrite(format!(
                "group {} already belongs to cluster {} node {}",
                self.id, id.cluster_id, id.node_id
            ))),
            _ => {
                self.identity = Some(identity);
                Ok(())
            }
        }
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        self.check()?;
        self.hard = state;
        Ok(())
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snap
    }

    fn last_index(&self) -> Index {
        self.snap.index + self.entries.len() as Index
    }

    fn term(&self, index: Index) -> Option<Term> {
        if index == self.snap.index {
            return Some(self.snap.term);
        }
        if index < self.snap.index {
            return None;
        }
        self.entries.get(self.offset(index)).map(|e| e.term)
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snap.index, self.last_index())?;
        let take = fitting(self.entries.range(range.clone()), max_bytes);
        out.extend(self.entries.range(range.start..range.start + take).cloned());
        Ok(())
    }

    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.check()?;
        let mut added = 0u64;
        for (expected, e) in (self.last_index() + 1..).zip(entries.iter()) {
            if e.index != expected {
                return Err(StorageError::InvalidWrite(format!(
                    "append of index {} where {} was expected",
                    e.index, expected
                )));
            }
            added += e.data.len() as u64 + ENTRY_HEADER_MAX;
        }
        let bound = self.step_overhead() + self.unstable_bytes + added;
        if bound > u64::from(self.max_record_size) {
            return Err(StorageError::InvalidWrite(format!(
                "this step would write up to {bound} bytes, over max_record_size {}",
                self.max_record_size
            )));
        }
        if entries.is_empty() {
            return Ok(());
        }
        for e in entries.drain(..) {
            self.unstable_bytes += entry_len(&e);
            self.entries.push_back(e);
        }
        self.entries_dirty = true;
        Ok(())
    }

    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        self.check()?;
        if from <= self.snap.index {
            return Err(StorageError::InvalidWrite(format!(
                "truncate from {from} at or below the snapshot index {}",
                self.snap.index
            )));
        }
        if from > self.last_index() {
            return Ok(());
        }
        self.remove_entries(self.offset(from)..);
        self.stable = self.stable.min(from - 1);
        self.entries_dirty = true;
        Ok(())
    }

    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        match &self.snap_data {
            SnapData::Pending(data) => Ok(data.clone()),
            SnapData::File(f) => snapshot_file::read_all(&self.dir, *f),
        }
    }

    fn snapshot_len(&self) -> Result<u64, StorageError> {
        Ok(match &self.snap_data {
            SnapData::Pending(data) => data.len() as u64,
            SnapData::File(f) => f.len,
        })
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        match &self.snap_data {
            SnapData::Pending(data) => Ok(chunk_of(data, offset, max_len)),
            SnapData::File(f) => {
                self.verify_snapshot(*f)?;
                snapshot_file::read_range(&self.dir, *f, offset, max_len)
            }
        }
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.check()?;
        if meta.index < self.snap.index {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot at {} is older than the current one at {}",
                meta.index, self.snap.index
            )));
        }
        self.install(meta, SnapData::Pending(data));
        Ok(())
    }

    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        let faults = self.inner()?.faults().cloned();
        self.receiving = None;
        let begun = (|| {
            if !self.dir.is_dir() {
                fsio::create_dir(&self.dir, faults.as_ref())?;
            }
            Receiver::begin(&self.dir, meta, total_len, faults.as_ref())
        })();
        self.receiving = Some(begun.map_err(|e| self.halt(e))?);
        Ok(())
    }

    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let faults = self.inner()?.faults().cloned();
        let Some(r) = self.receiving.as_mut() else {
            return Err(StorageError::InvalidWrite("no snapshot is being received".into()));
        };
        let res = r.chunk(&self.dir, offset, data, faults.as_ref());
        res.map_err(|e| self.halt(e))
    }

    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let wal = Arc::clone(&self.wal);
        let mut inner = lock(&wal);
        inner.check_halted()?;
        inner.slot(self.id, self.incarnation)?;
        let Some(r) = self.receiving.take() else {
            return Err(StorageError::InvalidWrite("no snapshot is being received".into()));
        };
        if r.meta.index < self.snap.index {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot at {} is older than the current one at {}",
                r.meta.index, self.snap.index
            )));
        }
        let meta = r.meta.clone();
        let id = self.alloc_snapshot_id(&mut inner)?;
        let faults = inner.faults().cloned();
        let file = r.finish(&self.dir, id, faults.as_ref()).map_err(|e| inner.halt(e))?;
        drop(inner);
        self.install(meta, SnapData::File(file));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.stage(None)?;
        lock(&self.wal).flush(false)
    }

    fn submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        self.stage(Some(token))?;
        Ok(Submitted::Pending)
    }

    fn persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        let mut inner = self.inner()?;
        let slot = inner.slot(self.id, self.incarnation)?;
        let durable = slot.durable_token.is_some_and(|d| d.epoch() == token.epoch() && d.seq() >= token.seq());
        if !durable && slot.staged_token.is_some() {
            // Reported before a flush made it durable (a driver that
            // reports tokens itself): make it durable now.
            inner.flush(false)?;
        }
        Ok(())
    }

    fn instance(&self) -> u64 {
        self.instance
    }

    fn max_step_bytes(&self) -> u64 {
        u64::from(self.max_record_size).saturating_sub(self.step_overhead())
    }

    fn sync_time(&self) -> Option<std::time::Duration> {
        Some(lock(&self.wal).stats.sync_time)
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(lock(&self.wal).stats.syncs)
    }
}
