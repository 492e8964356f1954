//! [`GroupLog`]: one group's [`RaftLog`] on a shared WAL. Its entries, hard
//! state, snapshot and identity are one state shared with the log (which
//! writes checkpoints from it: there is no second copy); the handle locks
//! it for each call (uncontended: the log only ever tries the lock). Its
//! writes are staged into the shared staging area and made durable by the
//! next flush, together with every other group's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::GroupId;
use super::inner::{GroupCell, Inner};
use super::record::{self, BATCH_HEADER_MAX, OP_HEADER_MAX};
use crate::error::StorageError;
use crate::log::wal::fsio;
use crate::log::wal::snapshot_file::{self, Receiver};
use crate::log::wal::state::{LogState, SnapData};
use crate::log::{RaftLog, Submitted, WriteToken};
use crate::sync::lock;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta, Term};

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
/// Once the group is removed, every call that writes, or reads a
/// snapshot file, fails with [`StorageError::Group`]
/// ([`GroupProblem::Removed`](crate::GroupProblem::Removed)), and the
/// handle touches no file of a group created again under the same id
/// (reads from memory still answer).
///
/// What a handle changed and did not stage (`sync` or `submit`) is not the
/// group's once the handle is dropped: the group's next handle starts from
/// what was staged, as after a crash (unless the dropped handle had
/// installed a snapshot or truncated staged entries without staging that:
/// then the next handle keeps its changes and stages them with its first
/// `sync` or `submit`).
///
/// [`SharedWal::create_group`]: super::SharedWal::create_group
/// [`SharedWal::group`]: super::SharedWal::group
/// [`SharedWal::flush`]: super::SharedWal::flush
#[derive(Debug)]
#[repr(C)]
pub struct GroupLog {
    /// The last index, its term and the hard state, as in `state`. First:
    /// read on nearly every step of a group whose state is cold in the
    /// cache (the fields are laid out in the order written).
    cached: Cached,
    /// [`step_overhead`](Self::step_overhead), which depends on `snap`'s
    /// membership: asked on every append and by a driver for every
    /// proposal, so worked out once per snapshot.
    overhead: u64,
    max_record_size: u32,
    id: GroupId,
    incarnation: u64,
    instance: u64,
    wal: Arc<Mutex<Inner>>,
    /// The entries, hard state, snapshot and identity, and what of them
    /// the WAL (with the staging area) holds: changes are staged against
    /// its durable marks. Shared with the log's slot for this group, with
    /// the flag that lets a write go ahead without the log's lock.
    cell: Arc<GroupCell>,
    /// The group's snapshot directory.
    dir: PathBuf,
    /// The snapshot's metadata, as in `state` (kept here too so that
    /// [`RaftLog::snapshot_meta`] can lend it).
    snap: SnapshotMeta,
}

/// What a node asks of its log on nearly every step — the last index, the
/// term at it, the hard state — kept by the handle so those calls take no
/// lock. The handle is the only writer of its group's state (the log only
/// reads it, for checkpoints), so every change passes through a handle
/// method, which refreshes this; debug builds compare it with the state on
/// every read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cached {
    last_index: Index,
    last_term: Option<Term>,
    hard: HardState,
}

impl Cached {
    fn of(state: &LogState) -> Self {
        let last_index = state.last_index();
        Self { last_index, last_term: state.term(last_index), hard: state.hard }
    }
}

impl GroupLog {
    /// A handle on group `id` of `wal`, whose slot the caller checked out:
    /// what an earlier handle changed and did not stage is forgotten first
    /// (where memory still holds the staged state).
    pub(super) fn new(wal: Arc<Mutex<Inner>>, inner: &Inner, id: GroupId) -> Option<Self> {
        let slot = inner.groups.get(&id)?;
        let cell = Arc::clone(&slot.cell);
        let (snap, cached) = {
            let mut s = lock(&cell.state);
            s.discard_unwritten();
            (s.snap.clone(), Cached::of(&s))
        };
        Some(GroupLog {
            id,
            incarnation: slot.incarnation,
            dir: inner.group_dir(id),
            max_record_size: inner.meta.max_record_size,
            instance: inner.instance ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            cell,
            overhead: Self::overhead_of(&snap),
            snap,
            cached,
            wal,
        })
    }

    /// The group's state, locked for one call.
    fn state(&self) -> MutexGuard<'_, LogState> {
        lock(&self.cell.state)
    }

    /// Runs `f` on the group's state, then refreshes what the handle
    /// caches of it (whatever `f` returned).
    fn change<T>(&mut self, f: impl FnOnce(&mut LogState) -> T) -> T {
        let mut state = lock(&self.cell.state);
        let out = f(&mut state);
        self.cached = Cached::of(&state);
        out
    }

    /// The cache, checked against the state in debug builds.
    fn cached(&self) -> Cached {
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.cached, Cached::of(&self.state()), "group {}: cache against state", self.id);
        self.cached
    }

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Whether a `sync` now would stage a step.
    pub fn has_unsynced_changes(&self) -> bool {
        self.state().has_unsynced_changes()
    }

    /// Locks the shared state, checking that the log has not halted and
    /// the group was not removed: by the group's flag while it is up (then
    /// neither happened), else through the log, which says which.
    fn inner(&self) -> Result<MutexGuard<'_, Inner>, StorageError> {
        let mut inner = lock(&self.wal);
        if !self.cell.is_live() {
            inner.check_halted()?;
            inner.slot(self.id, self.incarnation)?;
        }
        Ok(inner)
    }

    /// Fails if the log halted or the group was removed, as
    /// [`inner`](Self::inner) checks, without taking the log's lock while
    /// the group's flag is up (writes check this on every step).
    fn check(&self) -> Result<(), StorageError> {
        if self.cell.is_live() {
            return Ok(());
        }
        self.inner().map(drop)
    }

    /// Fails if the group was removed, checked *after* a read of its
    /// snapshot file. Snapshot file ids are per group and start again for
    /// a group created again, so a removed group's file name may be the
    /// next group's file by now; but the group's flag goes down (under the
    /// log's lock) before its directory is deleted and before the id can
    /// be created again, so a flag still up after the read means the read
    /// saw this group's own file. Reads from memory need no check; a halt
    /// (which lowers the flag too) is no reason to refuse a read.
    fn check_read(&self) -> Result<(), StorageError> {
        if self.cell.is_live() {
            return Ok(());
        }
        lock(&self.wal).slot(self.id, self.incarnation).map(drop)
    }

    /// An upper bound of a step's bytes in a batch besides its entries.
    fn step_overhead(&self) -> u64 {
        debug_assert_eq!(self.overhead, Self::overhead_of(&self.snap));
        self.overhead
    }

    fn overhead_of(snap: &SnapshotMeta) -> u64 {
        96 + snap.membership.encoded_len() as u64 + OP_HEADER_MAX + BATCH_HEADER_MAX
    }

    /// Takes `snap` as the snapshot's metadata.
    fn set_snap(&mut self, snap: SnapshotMeta) {
        self.overhead = Self::overhead_of(&snap);
        self.snap = snap;
    }

    /// Stages everything changed since the last staging as one step, and
    /// `token` after it.
    fn stage(&self, token: Option<WriteToken>) -> Result<(), StorageError> {
        let mut inner = self.inner()?;
        self.stage_changes(&mut inner, token).map_err(|e| inner.halt(e))
    }

    /// Stages the state's changes since the last staging, if any, as one
    /// step, encoded straight from the state; then `token`.
    fn stage_changes(&self, inner: &mut Inner, token: Option<WriteToken>) -> Result<(), StorageError> {
        let mut state = self.state();
        if !state.has_unsynced_changes() {
            return match token {
                Some(token) => inner.stage_token(self.id, self.incarnation, token),
                None => Ok(()),
            };
        }
        let file = match &state.snap_data {
            SnapData::File(f) => *f,
            SnapData::Pending(data) => {
                let data = data.clone();
                let id = if data.is_empty() { 0 } else { self.alloc_snapshot_id(inner)? };
                if id != 0 && !self.dir.is_dir() {
                    fsio::create_dir(&self.dir, inner.faults())?;
                }
                let file = snapshot_file::write(&self.dir, id, &data, inner.faults())?;
                state.snap_data = SnapData::File(file);
                file
            }
        };
        let replaced: Vec<PathBuf> =
            state.take_replaced(file).into_iter().map(|id| self.dir.join(snapshot_file::file_name(id))).collect();
        let st = &*state;
        let from = st.unstable_from();
        let skip = st.offset(from).min(st.entries.len());
        let group = self.id;
        let put = |buf: &mut Vec<u8>| {
            record::put_step_op(
                buf,
                group,
                (st.identity != st.durable_identity).then_some(st.identity).flatten(),
                (st.hard != st.durable_hard).then_some(&st.hard),
                st.snap_dirty.then_some((&st.snap, file)),
                st.entries_dirty.then(|| (from, st.entries.range(skip, st.entries.len()))),
            );
        };
        inner.stage_step(self.id, self.incarnation, put, st.live_bytes, replaced, token)?;
        state.mark_written(file);
        Ok(())
    }

    fn alloc_snapshot_id(&self, inner: &mut Inner) -> Result<u64, StorageError> {
        let slot = inner.slot(self.id, self.incarnation)?;
        let id = slot.next_snap_id;
        slot.next_snap_id += 1;
        Ok(id)
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
        self.state().identity
    }

    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.check()?;
        self.state().set_identity(identity).map_err(|id| {
            StorageError::InvalidWrite(format!(
                "group {} already belongs to cluster {} node {}",
                self.id, id.cluster_id, id.node_id
            ))
        })
    }

    fn hard_state(&self) -> HardState {
        self.cached().hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        self.check()?;
        crate::log::wal::state::check_hard_state(&state)?;
        self.state().hard = state;
        self.cached.hard = state;
        Ok(())
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snap
    }

    fn last_index(&self) -> Index {
        self.cached().last_index
    }

    fn term(&self, index: Index) -> Option<Term> {
        let cached = self.cached();
        if index == cached.last_index {
            return cached.last_term;
        }
        self.state().term(index)
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.state().entries(lo, hi, max_bytes, out)
    }

    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        self.state().visit_entries(lo, hi, f)
    }

    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.check()?;
        let (overhead, max) = (self.step_overhead(), self.max_record_size);
        // The new last index and term are the batch's own (`LogState::append`
        // checks that it follows on, and changes nothing when it refuses):
        // no lookup in the log for the cache.
        let last = entries.last().map(|e| (e.index, e.term));
        self.state().append(entries, overhead, max)?;
        if let Some((index, term)) = last {
            self.cached.last_index = index;
            self.cached.last_term = Some(term);
        }
        Ok(())
    }

    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        self.check()?;
        self.change(|s| s.truncate(from))
    }

    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        let data = self.state().snapshot_data(&self.dir);
        self.check_read()?;
        data
    }

    fn snapshot_len(&self) -> Result<u64, StorageError> {
        self.state().snapshot_len()
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        let chunk = self.state().snapshot_chunk(&self.dir, offset, max_len);
        self.check_read()?;
        chunk
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.check()?;
        let (installed, snap) = self.change(|s| (s.install_snapshot(meta, data), s.snap.clone()));
        self.set_snap(snap);
        installed
    }

    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        // The receive file's path is the group id's, not this handle's: a
        // group removed and created again receives into the same path. The
        // file is created (truncated) under the log's lock, after the check
        // that this handle's group is live, so a removal (which deletes the
        // directory under that lock) and the next group's receive are
        // ordered with it: a stale handle never truncates the next group's
        // file. The chunks go through the file this opened, never the path.
        let mut inner = self.inner()?;
        self.state().receiving = None;
        let faults = inner.faults().cloned();
        let begun = (|| {
            if !self.dir.is_dir() {
                fsio::create_dir(&self.dir, faults.as_ref())?;
            }
            Receiver::begin(&self.dir, meta, total_len, faults.as_ref())
        })();
        let begun = begun.map_err(|e| inner.halt(e))?;
        self.state().receiving = Some(begun);
        Ok(())
    }

    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        // Written through the file `begin_snapshot_receive` opened, without
        // the log's lock: a removal racing this unlinks that file (with the
        // group's directory) before a new group can create its own, so a
        // stale handle's chunk lands in its own unlinked file at worst.
        let faults = self.inner()?.faults().cloned();
        let mut state = self.state();
        let res = state.receiving()?.chunk(&self.dir, offset, data, faults.as_ref());
        drop(state);
        res.map_err(|e| {
            let mut inner = lock(&self.wal);
            // The file of a group removed meanwhile is nobody's: no halt.
            match inner.slot(self.id, self.incarnation) {
                Ok(_) => inner.halt(e),
                Err(removed) => removed,
            }
        })
    }

    fn abort_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let receiving = self.state().receiving.take();
        // The file is removed by its path, under the log's lock and only
        // while this handle's group is live: the path of a removed group
        // may be the next group's receive file by now (this handle's own
        // went with the removed group's directory). Its `File` is closed
        // either way.
        let inner = self.inner();
        if let (Ok(_), Some(r)) = (&inner, receiving) {
            r.discard(&self.dir);
        }
        inner.map(drop)
    }

    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let mut inner = self.inner()?;
        let r = self.state().take_received()?;
        let meta = r.meta.clone();
        let id = self.alloc_snapshot_id(&mut inner)?;
        let faults = inner.faults().cloned();
        let file = r.finish(&self.dir, id, faults.as_ref()).map_err(|e| inner.halt(e))?;
        drop(inner);
        let snap = self.change(|s| {
            s.install(meta, SnapData::File(file));
            s.snap.clone()
        });
        self.set_snap(snap);
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
