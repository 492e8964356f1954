//! What every group of a shared WAL shares, behind one mutex: the WAL, the
//! staging area of the next record, a reference to every live group's
//! state (the one its handle reads and writes: there is no second copy),
//! and the flush that writes and syncs them, with checkpoints and
//! compaction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use wal_db::Wal;

use super::GroupId;
use super::options::{SharedRecoveryReport, SharedWalStats};
use super::record::{self, BATCH_HEADER_MAX, GroupState, Op};
use crate::error::{GroupProblem, StorageError};
use crate::log::WriteToken;
use crate::log::chunked::Chunked;
use crate::log::wal::FaultInjector;
use crate::log::wal::fsio;
use crate::log::wal::lock::DirLock;
use crate::log::wal::meta::{Meta, MetaFile};
use crate::log::wal::record::FileRef;
use crate::log::wal::state::LogState;
use crate::log::wal::store::{Shared, Store};
use crate::log::wal::{wal_error, wal_files};
use crate::multi::GroupMap;

/// The shared WAL's meta file: `WalLog`'s layout under its own name and
/// magic.
pub(super) const SHARED_META: MetaFile = MetaFile { name: "sharedwal.meta", magic: *b"RAFTIOSW" };
/// The directory holding one snapshot directory per group.
pub(super) const GROUPS_DIR: &str = "groups";
/// What a group adds to a checkpoint besides its entries, for deciding
/// when one is due (an estimate; membership lists are usually short).
const GROUP_OVERHEAD: u64 = 64;

/// The name of group `id`'s snapshot directory inside [`GROUPS_DIR`].
pub(super) fn group_dir_name(id: GroupId) -> String {
    format!("{id:020}")
}

/// What a live group shares with its [`GroupLog`](super::GroupLog): its
/// state, and whether its writes may go ahead without asking the log.
#[derive(Debug)]
pub(super) struct GroupCell {
    /// True while the group is live and the log has not halted. A handle
    /// whose flag is down takes the slow path (the log's lock and the
    /// group's slot), which tells which of the two it was; a flag once
    /// down stays down (a group created again gets a new cell).
    live: AtomicBool,
    /// The group's entries, hard state, snapshot and identity: the handle
    /// locks it for every call; the log only ever *tries* to lock it (for
    /// a checkpoint), so the two never wait on each other.
    pub(super) state: Mutex<LogState>,
}

impl GroupCell {
    pub(super) fn new(state: LogState) -> Arc<Self> {
        Arc::new(GroupCell { live: AtomicBool::new(true), state: Mutex::new(state) })
    }

    /// Whether the group is live and the log has not halted, as far as
    /// this handle can tell without the log's lock.
    pub(super) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn retire(&self) {
        self.live.store(false, Ordering::Release);
    }
}

/// One live group.
#[derive(Debug)]
pub(super) struct Slot {
    /// The group's state, shared with its handle.
    pub(super) cell: Arc<GroupCell>,
    /// The group's live entry bytes as of its last staging (for deciding
    /// when a checkpoint is due).
    pub(super) staged_live: u64,
    /// Tells this group from an earlier one with the same id (removed and
    /// created again): a handle of the earlier one is dead.
    pub(super) incarnation: u64,
    /// Whether a [`GroupLog`](super::GroupLog) handle is alive.
    pub(super) checked_out: bool,
    /// The next snapshot file id.
    pub(super) next_snap_id: u64,
    /// The latest token staged and not yet durable.
    pub(super) staged_token: Option<WriteToken>,
    /// The latest token made durable.
    pub(super) durable_token: Option<WriteToken>,
}

/// The parts of [`Inner`] fixed at open.
#[derive(Debug)]
pub(super) struct Files {
    pub(super) dir: PathBuf,
    pub(super) wal_dir: PathBuf,
    pub(super) groups_dir: PathBuf,
    pub(super) wal: Wal<Store>,
    pub(super) shared: Arc<Shared>,
    /// Held for the log's lifetime.
    pub(super) _lock: DirLock,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) files: Files,
    pub(super) meta: Meta,
    pub(super) groups: GroupMap<Slot>,
    /// Sum of the live groups' entry bytes.
    pub(super) live_bytes: u64,
    staged_ops: Vec<u8>,
    staged_count: u64,
    staged_tokens: Vec<(GroupId, WriteToken)>,
    /// Snapshot files replaced by staged operations: deleted once durable.
    staged_files: Vec<PathBuf>,
    /// Snapshot directories of groups removed by staged operations.
    staged_dirs: Vec<PathBuf>,
    /// Tokens made durable and not yet returned by `SharedWal::flush`.
    pub(super) durable: Vec<(GroupId, WriteToken)>,
    next_incarnation: u64,
    /// No garbage checkpoint below this WAL span (raised after a checkpoint
    /// was too large to write).
    garbage_floor: u64,
    dir_synced_segment: u64,
    halted: Option<String>,
    pub(super) stats: SharedWalStats,
    pub(super) report: SharedRecoveryReport,
    pub(super) instance: u64,
    buf: Vec<u8>,
    /// Where each group starts in a checkpoint encoded in `buf`.
    group_starts: Vec<usize>,
    /// A checkpoint too large for one record: its parts' runs of groups.
    part_runs: Vec<record::PartRun>,
}

impl Inner {
    pub(super) fn new(
        files: Files,
        meta: Meta,
        groups: GroupMap<Slot>,
        report: SharedRecoveryReport,
        stats: SharedWalStats,
        instance: u64,
    ) -> Self {
        let live_bytes = groups.values().map(|s| s.staged_live).sum();
        let next_incarnation = groups.len() as u64 + 1;
        let dir_synced_segment = files.wal.len().saturating_sub(1) / meta.segment_size;
        Inner {
            files,
            meta,
            groups,
            live_bytes,
            staged_ops: Vec::new(),
            staged_count: 0,
            staged_tokens: Vec::new(),
            staged_files: Vec::new(),
            staged_dirs: Vec::new(),
            durable: Vec::new(),
            next_incarnation,
            garbage_floor: 0,
            dir_synced_segment,
            halted: None,
            stats,
            report,
            instance,
            buf: Vec::new(),
            group_starts: Vec::new(),
            part_runs: Vec::new(),
        }
    }

    pub(super) fn faults(&self) -> Option<&FaultInjector> {
        self.files.shared.faults.as_ref()
    }

    /// Group `id`'s snapshot directory.
    pub(super) fn group_dir(&self, id: GroupId) -> PathBuf {
        self.files.groups_dir.join(group_dir_name(id))
    }

    pub(super) fn check_halted(&self) -> Result<(), StorageError> {
        match &self.halted {
            Some(cause) => Err(StorageError::Halted { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Halts every group on an error that may have left the disk out of
    /// step with memory; returns the error.
    pub(super) fn halt(&mut self, e: StorageError) -> StorageError {
        let harmless = matches!(
            e,
            StorageError::InvalidWrite(_)
                | StorageError::Compacted { .. }
                | StorageError::Unavailable { .. }
                | StorageError::Group { .. }
        );
        if !harmless && self.halted.is_none() {
            self.halted = Some(e.to_string());
            for (_, slot) in &self.groups {
                slot.cell.retire();
            }
        }
        e
    }

    /// The live group `id` of `incarnation` (that is, a handle's own group).
    pub(super) fn slot(&mut self, id: GroupId, incarnation: u64) -> Result<&mut Slot, StorageError> {
        match self.groups.get_mut(&id) {
            Some(slot) if slot.incarnation == incarnation => Ok(slot),
            _ => Err(StorageError::Group { group: id, problem: GroupProblem::Removed }),
        }
    }

    /// Why group `id`, which is not live, cannot be handed out. A group
    /// removed is as unknown as one never created: the log keeps nothing
    /// of the ids it removed (their handles are refused by incarnation,
    /// and a reopened log could not tell them apart either), so what it
    /// keeps stays bounded by the live groups.
    pub(super) fn absent(&self, id: GroupId) -> StorageError {
        let problem = if id == 0 { GroupProblem::InvalidId } else { GroupProblem::Unknown };
        StorageError::Group { group: id, problem }
    }

    /// How many entries the log keeps per group id, over all its lists:
    /// what must stay bounded by the live groups, whatever the number of
    /// groups created and removed.
    #[cfg(test)]
    pub(super) fn entries_per_group_id(&self) -> usize {
        self.groups.len()
            + self.staged_tokens.len()
            + self.durable.len()
            + self.staged_files.len()
            + self.staged_dirs.len()
    }

    /// Stages the creation of group `id`, which must not exist; returns its
    /// incarnation.
    pub(super) fn create(&mut self, id: GroupId) -> Result<u64, StorageError> {
        self.check_halted()?;
        if id == 0 {
            return Err(StorageError::Group { group: id, problem: GroupProblem::InvalidId });
        }
        if self.groups.contains_key(&id) {
            return Err(StorageError::Group { group: id, problem: GroupProblem::Exists });
        }
        self.stage(id, |buf| record::put_op(buf, id, &Op::Create))?;
        let state = LogState::new(None, Default::default(), Default::default(), FileRef::EMPTY, Chunked::default(), 0);
        let incarnation = self.next_incarnation;
        self.next_incarnation += 1;
        let slot = Slot {
            cell: GroupCell::new(state),
            staged_live: 0,
            incarnation,
            checked_out: true,
            next_snap_id: 1,
            staged_token: None,
            durable_token: None,
        };
        self.groups.insert(id, slot);
        Ok(incarnation)
    }

    /// Stages the removal of group `id` and flushes it; then the group's
    /// snapshot directory is deleted.
    pub(super) fn remove(&mut self, id: GroupId) -> Result<(), StorageError> {
        self.check_halted()?;
        if !self.groups.contains_key(&id) {
            return Err(self.absent(id));
        }
        self.stage(id, |buf| record::put_op(buf, id, &Op::Remove))?;
        if let Some(slot) = self.groups.remove(&id) {
            slot.cell.retire();
            self.live_bytes = self.live_bytes.saturating_sub(slot.staged_live);
        }
        // Its tokens leave with it, staged or durable but not yet returned
        // by `flush`: a new group under the same id never wrote them.
        self.staged_tokens.retain(|(g, _)| *g != id);
        self.durable.retain(|(g, _)| *g != id);
        let dir = self.group_dir(id);
        self.staged_dirs.push(dir);
        self.flush(false)
    }

    /// Stages a step of group `id` (of `incarnation`, which the caller saw
    /// live under this lock), encoded by `put` (called again should the
    /// staging area be flushed first); `live_bytes` are the group's live
    /// entry bytes with it; `replaced` are snapshot files to delete once it
    /// is durable; `token`, if any, is staged after it (as
    /// [`stage_token`](Self::stage_token) would: one lookup of the slot).
    pub(super) fn stage_step(
        &mut self,
        id: GroupId,
        incarnation: u64,
        put: impl Fn(&mut Vec<u8>),
        live_bytes: u64,
        replaced: Vec<PathBuf>,
        token: Option<WriteToken>,
    ) -> Result<(), StorageError> {
        self.stage(id, put)?;
        let slot = self.slot(id, incarnation)?;
        let before = std::mem::replace(&mut slot.staged_live, live_bytes);
        if let Some(token) = token {
            slot.staged_token = Some(token);
            self.staged_tokens.push((id, token));
        }
        self.live_bytes = self.live_bytes.saturating_sub(before).saturating_add(live_bytes);
        self.staged_files.extend(replaced);
        Ok(())
    }

    /// Stages `token` of group `id`: the next flush reports it durable.
    pub(super) fn stage_token(&mut self, id: GroupId, incarnation: u64, token: WriteToken) -> Result<(), StorageError> {
        self.slot(id, incarnation)?.staged_token = Some(token);
        self.staged_tokens.push((id, token));
        Ok(())
    }

    /// Appends the operation `put` encodes (on group `id`) to the staging
    /// area; when the batch would outgrow the maximum record size, the
    /// operations staged so far are flushed first.
    fn stage(&mut self, id: GroupId, put: impl Fn(&mut Vec<u8>)) -> Result<(), StorageError> {
        let mark = self.staged_ops.len();
        put(&mut self.staged_ops);
        let max = u64::from(self.meta.max_record_size);
        let op_len = (self.staged_ops.len() - mark) as u64;
        if BATCH_HEADER_MAX + op_len > max {
            self.staged_ops.truncate(mark);
            return Err(StorageError::InvalidWrite(format!(
                "group {id}: an operation of {op_len} bytes exceeds max_record_size {max}"
            )));
        }
        if BATCH_HEADER_MAX + self.staged_ops.len() as u64 > max {
            self.staged_ops.truncate(mark);
            self.flush(false)?;
            put(&mut self.staged_ops);
        }
        self.staged_count += 1;
        Ok(())
    }

    /// Moves the tokens made durable since the last call to `out`.
    pub(super) fn take_durable(&mut self, out: &mut Vec<(GroupId, WriteToken)>) {
        out.append(&mut self.durable);
    }

    /// Whether the WAL holds so much more than the live groups that
    /// rewriting them as a checkpoint pays off (as `WalLog` decides it:
    /// past two segments plus eight times the live bytes, so the rewrite
    /// costs amortized O(1) per byte written).
    fn garbage_due(&self, span: u64) -> bool {
        let live = self.live_bytes.saturating_add((self.groups.len() as u64).saturating_mul(GROUP_OVERHEAD));
        let limit = self.meta.segment_size.saturating_mul(2).saturating_add(live.saturating_mul(8));
        span >= limit && span >= self.garbage_floor
    }

    /// Bytes the WAL spans from its head to its end.
    pub(super) fn wal_bytes(&self) -> u64 {
        self.files.wal.len().saturating_sub(self.files.shared.head())
    }

    /// Writes everything staged by every group as one record (a checkpoint
    /// of every live group instead, when one is due or `checkpoint` asks
    /// for it), makes it durable with one sync, and does what waited for
    /// it. Any failure halts the log.
    pub(super) fn flush(&mut self, checkpoint: bool) -> Result<(), StorageError> {
        self.check_halted()?;
        self.write_and_sync(checkpoint).map_err(|e| self.halt(e))
    }

    fn write_and_sync(&mut self, force: bool) -> Result<(), StorageError> {
        let span = self.wal_bytes();
        let max = u64::from(self.meta.max_record_size);
        let mut checkpoint = false;
        if force || (self.staged_count > 0 && self.garbage_due(span)) {
            if self.encode_checkpoint() {
                checkpoint = self.buf.len() as u64 <= max
                    || record::split_checkpoint(&self.buf, &self.group_starts, max as usize, &mut self.part_runs);
                if !checkpoint {
                    // One group alone is too big to rewrite now: do not
                    // retry on every flush.
                    self.garbage_floor = span.saturating_mul(2);
                }
            } else {
                self.stats.checkpoints_deferred += 1;
            }
        }
        if checkpoint && self.buf.len() as u64 > max {
            return self.write_parts();
        }
        if !checkpoint {
            if self.staged_count == 0 {
                // Nothing to write: every staged token's writes are in
                // records already synced.
                self.complete_tokens();
                return Ok(());
            }
            record::encode_batch(&mut self.buf, self.staged_count, &self.staged_ops);
        }
        let buf = std::mem::take(&mut self.buf);
        let written = self.append_synced(&buf);
        self.buf = buf;
        let (lsn, rolled) = written?;
        self.staged_written(checkpoint.then_some(lsn), rolled)
    }

    /// Writes a checkpoint split into `part_runs`, each record synced
    /// before the next is written (so, as with every other record, a crash
    /// can tear only the last one written), then does what waited for it;
    /// the WAL prefix is dropped up to the first part once the last is
    /// durable. Recovery ignores a checkpoint whose last part is missing.
    fn write_parts(&mut self) -> Result<(), StorageError> {
        let (mut head, mut rolled_any) = (None, false);
        // One part's bytes at a time (dropped after: this path is rare,
        // and a part can be as large as a record).
        let mut part = Vec::new();
        let parts = self.part_runs.len() as u64;
        for k in 1..=parts {
            let run = self.part_runs[(k - 1) as usize];
            record::encode_checkpoint_part(&mut part, &self.buf, run, k, parts);
            let (lsn, rolled) = self.append_synced(&part)?;
            head.get_or_insert(lsn);
            rolled_any |= rolled;
        }
        self.stats.checkpoint_parts += parts;
        self.staged_written(head, rolled_any)
    }

    /// Appends one record and makes it durable (with an fsync of `wal/`
    /// when it started a segment). Returns its offset and whether it
    /// started a segment.
    fn append_synced(&mut self, record: &[u8]) -> Result<(u64, bool), StorageError> {
        let wal = &self.files.wal;
        let lsn = wal.append(record).map_err(wal_error)?;
        self.stats.records += 1;
        let segment = wal.len().saturating_sub(1) / self.meta.segment_size;
        let rolled = segment > self.dir_synced_segment;
        if rolled {
            self.dir_synced_segment = segment;
        }
        let started = std::time::Instant::now();
        wal.sync().map_err(wal_error)?;
        self.stats.sync_time += started.elapsed();
        self.stats.syncs += 1;
        if rolled {
            fsio::fsync_dir(&self.files.wal_dir, self.faults())?;
        }
        Ok((lsn.get(), rolled))
    }

    /// Everything staged is durable (in a batch, or in the checkpoint at
    /// `checkpoint`): reports the staged tokens and does what waited.
    fn staged_written(&mut self, checkpoint: Option<u64>, rolled: bool) -> Result<(), StorageError> {
        self.stats.operations += self.staged_count;
        self.staged_ops.clear();
        self.staged_count = 0;
        self.complete_tokens();
        let end = self.files.wal.len();
        self.after_durable(checkpoint, end, rolled)
    }

    /// Encodes a checkpoint of every live group into `buf`, from the
    /// groups' own states: each as it was last staged (identity, hard
    /// state, snapshot and entries as written — changes since are not
    /// part of it, nor is a commit index not staged yet). Returns `false`
    /// (nothing encoded) when some group's state cannot give that right
    /// now: its handle is using it, or since its last staging it installed
    /// a snapshot or truncated entries it had staged (memory no longer
    /// holds them). The checkpoint then waits for a later flush; each
    /// group's next staging clears the second case.
    fn encode_checkpoint(&mut self) -> bool {
        let mut guards: Vec<(GroupId, MutexGuard<'_, LogState>, usize)> = Vec::with_capacity(self.groups.len());
        for (&id, slot) in &self.groups {
            // A handle that panicked holding its state leaves it poisoned
            // for good; its durable marks change only when a write
            // completes, and `written_entries` checks the entries, so it
            // is used as it is rather than holding every checkpoint back.
            let state = match slot.cell.state.try_lock() {
                Ok(state) => state,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return false,
            };
            let Some(n) = state.written_entries() else { return false };
            guards.push((id, state, n));
        }
        record::encode_checkpoint_marking(
            &mut self.buf,
            guards.iter().map(|(id, s, n)| {
                let state = GroupState {
                    identity: s.durable_identity,
                    hard: &s.durable_hard,
                    snap: &s.snap,
                    file: s.durable_file,
                    entries: s.entries.range(0, *n),
                };
                (*id, state)
            }),
            &mut self.group_starts,
        );
        true
    }

    /// Reports every staged token durable.
    fn complete_tokens(&mut self) {
        for (id, token) in self.staged_tokens.drain(..) {
            if let Some(slot) = self.groups.get_mut(&id) {
                if slot.staged_token == Some(token) {
                    slot.staged_token = None;
                }
                slot.durable_token = Some(token);
            }
            self.durable.push((id, token));
        }
        // A driver that reports its writes through `GroupLog::persisted`
        // may never take this list (`SharedWal::flush`): each group's
        // latest token covers its earlier ones, so the list is cut to
        // those when it outgrows the groups (amortized: it at least
        // doubles between two cuts).
        if self.durable.len() > 2 * self.groups.len() + DURABLE_SLACK {
            keep_latest_per_group(&mut self.durable);
        }
    }

    /// What waits for a record to be durable: deleting the snapshot files
    /// and directories it made garbage, dropping the WAL prefix behind a
    /// checkpoint at `checkpoint`, recording the synced end after a new
    /// segment.
    fn after_durable(&mut self, checkpoint: Option<u64>, end: u64, rolled: bool) -> Result<(), StorageError> {
        let faults = self.files.shared.faults.clone();
        let f = faults.as_ref();
        for path in std::mem::take(&mut self.staged_files) {
            fsio::remove_file(&path, f)?;
        }
        let dirs = std::mem::take(&mut self.staged_dirs);
        for dir in &dirs {
            remove_group_dir(dir, f)?;
        }
        if !dirs.is_empty() {
            fsio::fsync_dir(&self.files.groups_dir, f)?;
        }
        let files = &self.files;
        if let Some(head) = checkpoint {
            wal_files::compact(&files.wal, &files.dir, &files.wal_dir, &mut self.meta, SHARED_META, head, end, f)?;
            self.stats.checkpoints += 1;
            self.stats.compactions += 1;
            self.garbage_floor = 0;
        } else if rolled {
            wal_files::record_synced_end(&files.dir, &mut self.meta, SHARED_META, end, f)?;
        }
        Ok(())
    }

    /// At a clean close (or drop): records the synced end, unless halted.
    pub(super) fn close(&mut self) -> Result<(), StorageError> {
        self.check_halted()?;
        let end = self.files.wal.len();
        let faults = self.files.shared.faults.clone();
        wal_files::record_synced_end(&self.files.dir, &mut self.meta, SHARED_META, end, faults.as_ref())
            .map_err(|e| self.halt(e))
    }
}

/// Deletes a group's snapshot directory: its files, then itself. A missing
/// directory is fine (the group never wrote a snapshot).
pub(super) fn remove_group_dir(dir: &Path, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for name in fsio::list(dir)? {
        fsio::remove_file(&dir.join(name), faults)?;
    }
    let what = format!("rmdir {}", dir.display());
    crate::log::wal::faults::guarded(faults, &what, || match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    })
    .map_err(|e| fsio::io_err("removing directory", dir, e))
}

/// Tokens the durable list holds beyond two per group before it is cut.
pub(super) const DURABLE_SLACK: usize = 64;

/// Keeps the last token of each group in `durable`, in the order of those
/// last tokens (a group's tokens are made durable in order, so its last
/// covers the others).
fn keep_latest_per_group(durable: &mut Vec<(GroupId, WriteToken)>) {
    let mut seen = std::collections::HashSet::with_capacity(durable.len());
    let mut kept: Vec<(GroupId, WriteToken)> = durable.iter().rev().filter(|(g, _)| seen.insert(*g)).copied().collect();
    kept.reverse();
    *durable = kept;
}
