//! [`WalLog`]: a durable [`RaftLog`] on a segmented `wal-db` log.
//!
//! # Layout of a log directory
//!
//! ```text
//! <dir>/raftlog.meta                  format version, WAL geometry, authoritative WAL head, synced end
//! <dir>/raftlog.lock                  empty; locked by the open WalLog (a second open is refused)
//! <dir>/wal/00000000000000000000.wal  wal-db segments (and wal-db's `head` marker)
//! <dir>/snapshot-<id>.snap            the latest snapshot's data, if not empty
//! ```
//!
//! # How it writes
//!
//! Mutations are applied to memory at once (reads see them) and written by
//! [`sync`](RaftLog::sync) as **one** wal-db record followed by **one**
//! wal-db sync, so a step costs one `pwrite` and one `fdatasync` however many
//! entries it appended. A `sync` with nothing to write makes no system call.
//! A change of the hard state's `commit` alone is not worth an fsync: it is
//! kept in memory and rides along with the next record (a restarted node may
//! come back with an older commit index, which Raft tolerates).
//!
//! The meta file records the *synced end*, how far the WAL is known to be
//! synced, so that recovery can tell lost synced records from a torn tail.
//! It is rewritten only where that is cheap and rare: after a step that
//! starts a new segment (which then also fsyncs `wal/` and replaces the
//! meta file), at compaction, and at a clean close ([`WalLog::close`], or
//! dropping a log that has not halted).
//!
//! A record is either a *step* (what this step changed: identity, hard state,
//! snapshot reference, and an entry batch that first truncates the log at its
//! first index) or a *checkpoint* (the whole state). Truncation is therefore
//! logical and atomic with the append that follows it: a record is never
//! dropped and its kept prefix re-appended, which a crash in between could
//! turn into lost entries. The format is normative; see `docs/PROTOCOL.md`.
//!
//! # Compaction
//!
//! When a snapshot advances, the record written by `sync` is a checkpoint.
//! Once it is durable the WAL prefix before it is dropped (`truncate_before`,
//! which deletes whole leading segments), so the disk holds the live log, not
//! the history. The checkpoint carries the live suffix after the snapshot —
//! usually the few entries not yet applied. A log whose WAL grows far beyond
//! its live entries (truncation churn without snapshots) is checkpointed too.
//!
//! # Recovery
//!
//! [`WalLog::open`] validates before it writes anything: the meta file, the
//! requested record size limit, wal-db's head marker against our own copy of
//! the head, every record (wal-db's strict open refuses damage followed by
//! intact data, except that a damaged record followed by no intact raft-io
//! record is the torn tail, even when its payload looks like frames or a
//! short or missing segment lies inside it), that every segment holding
//! records below the synced end is there in full and that the intact
//! records reach it (otherwise [`StorageError::SyncedDataLost`]: synced
//! records are never cut as a torn tail), and the snapshot file. Then it
//! fsyncs every segment from the head's to the last, the snapshot file and
//! both directories (a crashed process may have left them unsynced), and
//! only then does it cut a torn tail
//! (reported in [`WalLog::recovery_report`]), finish an interrupted creation
//! or compaction, upgrade a meta file of an older layout, and remove
//! orphaned temporary and snapshot files. A refused
//! open leaves the directory exactly as it was. Directories it creates
//! (the log directory and any missing parents) are fsynced into their
//! parents; one that another open creates at the same time is fine (opens
//! of sibling directories may race), a path component that is not a
//! directory is refused ([`StorageError::NotALog`]).
//!
//! The directory is locked (`raftlog.lock`) for the lifetime of the
//! `WalLog`: a second open, in this process or another, fails with
//! [`StorageError::Locked`].
//!
//! # Failures
//!
//! Any failed write or sync halts the log: every later mutation or sync
//! fails with [`StorageError::Halted`], because wal-db does not remember a
//! failed sync and a later one could report success for lost data. Drop the
//! log and reopen it; recovery decides what survived.

mod async_writes;
pub(crate) mod codec;
pub(crate) mod faults;
pub(crate) mod fsio;
pub(crate) mod lock;
pub(crate) mod meta;
mod options;
pub(crate) mod record;
pub(crate) mod recovery;
pub(crate) mod segments;
pub(crate) mod snapshot_file;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod tail;
pub(crate) mod wal_files;
mod write;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod async_tests;

#[cfg(test)]
mod snapshot_tests;

#[cfg(test)]
pub(crate) mod crash_support;

#[cfg(test)]
mod crash_tests;

#[cfg(test)]
mod refusal_tests;

#[cfg(test)]
mod loss_tests;

#[cfg(test)]
mod tail_rule_tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use wal_db::{Wal, WalError};

pub use faults::FaultInjector;
pub use options::{WalOptions, WalStats};
pub use recovery::{RecoveryReport, TornTail};

/// The maximum record size of a new log opened without
/// [`WalOptions::max_record_size`] (64 MiB): the most bytes one step
/// writes. An existing log keeps the limit it was written with.
pub const DEFAULT_MAX_RECORD_SIZE: u32 = 64 << 20;

use self::meta::Meta;
use self::snapshot_file::Receiver;
use self::state::{LogState, SnapData};
use self::store::{Shared, Store};
use super::RaftLog;
use crate::error::StorageError;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta, Term};

/// A durable [`RaftLog`] on a segmented wal-db log. See the
/// [module docs](self).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_io::{Entry, HardState, RaftLog, WalLog};
///
/// let dir = std::env::temp_dir().join(format!("raft-io-doc-wal-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut log = WalLog::open(&dir)?;
/// log.set_hard_state(HardState { term: 2, vote: Some(1), commit: 0 })?;
/// log.append(&mut vec![Entry::normal(2, 1, "x".into())])?;
/// log.sync()?; // one record, one fdatasync
/// drop(log);
///
/// let log = WalLog::open(&dir)?;
/// assert_eq!(log.hard_state().vote, Some(1));
/// assert_eq!(log.last_index(), 1);
/// # drop(log);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WalLog {
    dir: PathBuf,
    wal_dir: PathBuf,
    wal: Arc<Wal<Store>>,
    shared: Arc<Shared>,
    meta: Meta,

    /// The entries, hard state, snapshot and identity, and what of them
    /// the WAL holds durably.
    state: LogState,
    /// Snapshot index of the latest checkpoint record.
    checkpoint_snap: Index,
    /// No garbage checkpoint below this WAL span (raised after a checkpoint
    /// was too large to write).
    garbage_floor: u64,
    /// Highest segment whose directory entry is known durable.
    dir_synced_segment: u64,
    next_snap_id: u64,
    buf: Vec<u8>,
    /// The asynchronous storage mode, when on (async_writes.rs).
    async_writes: Option<async_writes::AsyncWrites>,
    /// Drawn at open ([`RaftLog::instance`]).
    instance: u64,
    /// [`WalOptions::sync_thread`].
    prefer_sync_thread: bool,
    /// The WAL's end as of the last sync made on this thread.
    synced_to: u64,
    halted: Option<String>,
    report: RecoveryReport,
    stats: WalStats,
    /// Held for the log's lifetime: no other `WalLog` opens the directory.
    /// Last, so it is released only after every file of the log is closed.
    _lock: lock::DirLock,
}

impl WalLog {
    /// Opens the log in `dir` with default [`WalOptions`], creating the
    /// directory and a fresh log if it does not exist or is empty.
    ///
    /// # Errors
    ///
    /// A typed [`StorageError`] naming the file and offset when the
    /// directory is not a raft-io log ([`StorageError::NotALog`]), was
    /// written by an unknown format version, would need a lower record size
    /// limit, is damaged anywhere but in a torn last record
    /// ([`StorageError::Corrupt`]), or has lost records that were synced
    /// ([`StorageError::SyncedDataLost`]: a missing or short segment, or a
    /// WAL that ends before the synced end the meta file records). The
    /// directory is then left untouched.
    /// [`StorageError::Locked`] when another `WalLog` (in this process or
    /// another) has the directory open:
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use raft_io::StorageError;
    /// use raft_io::log::wal::WalLog;
    ///
    /// let dir = std::env::temp_dir().join(format!("raft-io-doc-lock-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let first = WalLog::open(&dir)?;
    /// assert!(matches!(WalLog::open(&dir), Err(StorageError::Locked { .. })));
    /// drop(first);
    /// let again = WalLog::open(&dir)?; // the drop released the lock
    /// # drop(again);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(dir, WalOptions::new())
    }

    /// Opens the log in `dir` with `options`. See [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, StorageError> {
        recovery::open(dir.as_ref(), options)
    }

    /// What opening the log found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Counters of what was written since the log was opened.
    pub fn stats(&self) -> WalStats {
        let (syncs, time) = self.thread_syncs();
        WalStats { syncs: self.stats.syncs + syncs, sync_time: self.stats.sync_time + time, ..self.stats }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the WAL spans from its head to its end (excluding snapshots).
    pub fn wal_bytes(&self) -> u64 {
        self.wal.len().saturating_sub(self.shared.head())
    }

    /// Writes a buffered commit-index change (which `sync` alone does not
    /// write), records in the meta file that the WAL is synced to its end,
    /// and closes the log. Dropping the log does the latter too, but cannot
    /// report a failure.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.check_halted()?;
        self.finish_async().map_err(|e| self.halt(e))?;
        if self.state.hard != self.state.durable_hard || self.has_unsynced_changes() {
            self.write_record().map_err(|e| self.halt(e))?;
        }
        let end = self.wal.len();
        self.record_synced_end(end).map_err(|e| self.halt(e))
    }

    /// Whether a `sync` now would write a record.
    pub fn has_unsynced_changes(&self) -> bool {
        self.state.has_unsynced_changes()
    }

    fn check_halted(&self) -> Result<(), StorageError> {
        match &self.halted {
            Some(cause) => Err(StorageError::Halted { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Halts the log on an error that may have left the disk out of step
    /// with memory; returns the error.
    fn halt(&mut self, e: StorageError) -> StorageError {
        if !matches!(
            e,
            StorageError::InvalidWrite(_) | StorageError::Compacted { .. } | StorageError::Unavailable { .. }
        ) && self.halted.is_none()
        {
            self.halted = Some(e.to_string());
        }
        e
    }

    fn faults(&self) -> Option<&FaultInjector> {
        self.shared.faults.as_ref()
    }

    /// An upper bound of a step record's bytes besides its entries.
    fn step_overhead(&self) -> u64 {
        96 + self.state.snap.membership.encoded_len() as u64
    }

    fn alloc_snapshot_id(&mut self) -> u64 {
        let id = self.next_snap_id;
        self.next_snap_id += 1;
        id
    }
}

/// A clean close: records the synced end of the WAL in the meta file (see
/// [`WalLog::close`]), unless the log halted, when the disk may be out of
/// step with memory. A failure here only leaves the older record, which
/// open accepts.
impl Drop for WalLog {
    fn drop(&mut self) {
        if self.halted.is_none() && self.finish_async().is_ok() {
            let end = self.wal.len();
            let _ = self.record_synced_end(end);
        }
    }
}

pub(crate) fn wal_error(e: WalError) -> StorageError {
    match e {
        WalError::Io { context, source } => StorageError::Io { context: context.to_string(), source },
        WalError::RecordTooLarge { len, max } => {
            StorageError::InvalidWrite(format!("a record of {len} bytes exceeds max_record_size {max}"))
        }
        WalError::Corruption { offset, reason } => {
            StorageError::Corrupt { location: format!("WAL offset {offset}"), reason: reason.to_string() }
        }
        other => StorageError::Other(Box::new(other)),
    }
}

impl RaftLog for WalLog {
    fn identity(&self) -> Option<LogIdentity> {
        self.state.identity
    }

    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.check_halted()?;
        self.state.set_identity(identity).map_err(|id| {
            StorageError::InvalidWrite(format!(
                "the log already belongs to cluster {} node {}",
                id.cluster_id, id.node_id
            ))
        })
    }

    fn hard_state(&self) -> HardState {
        self.state.hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        self.check_halted()?;
        state::check_hard_state(&state)?;
        self.state.hard = state;
        Ok(())
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.state.snap
    }

    fn last_index(&self) -> Index {
        self.state.last_index()
    }

    fn term(&self, index: Index) -> Option<Term> {
        self.state.term(index)
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.state.entries(lo, hi, max_bytes, out)
    }

    #[inline]
    fn entry_run(&self, lo: Index, hi: Index) -> Option<&[Entry]> {
        self.state.entry_run(lo, hi)
    }

    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        self.state.visit_entries(lo, hi, f)
    }

    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.check_halted()?;
        let overhead = self.step_overhead();
        self.state.append(entries, overhead, self.meta.max_record_size)
    }

    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        self.check_halted()?;
        self.state.truncate(from)
    }

    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        self.state.snapshot_data(&self.dir)
    }

    fn snapshot_len(&self) -> Result<u64, StorageError> {
        self.state.snapshot_len()
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        self.state.snapshot_chunk(&self.dir, offset, max_len)
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.check_halted()?;
        self.state.install_snapshot(meta, data)
    }

    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        self.check_halted()?;
        self.state.receiving = None;
        let r = Receiver::begin(&self.dir, meta, total_len, self.faults()).map_err(|e| self.halt(e))?;
        self.state.receiving = Some(r);
        Ok(())
    }

    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.check_halted()?;
        let faults = self.shared.faults.clone();
        let r = self.state.receiving()?;
        let res = r.chunk(&self.dir, offset, data, faults.as_ref());
        res.map_err(|e| self.halt(e))
    }

    fn abort_snapshot_receive(&mut self) -> Result<(), StorageError> {
        if let Some(r) = self.state.receiving.take() {
            r.discard(&self.dir);
        }
        Ok(())
    }

    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        self.check_halted()?;
        let r = self.state.take_received()?;
        let meta = r.meta.clone();
        let id = self.alloc_snapshot_id();
        let faults = self.shared.faults.clone();
        let file = r.finish(&self.dir, id, faults.as_ref()).map_err(|e| self.halt(e))?;
        self.state.install(meta, SnapData::File(file));
        Ok(())
    }

    /// What one record can hold after its fixed parts (header, identity,
    /// hard state, snapshot metadata with the current membership).
    /// [`Entry::size`] bounds an entry's bytes in a record from above.
    fn sync_time(&self) -> Option<std::time::Duration> {
        Some(self.stats().sync_time)
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(self.stats().syncs)
    }

    fn max_step_bytes(&self) -> u64 {
        u64::from(self.meta.max_record_size).saturating_sub(self.step_overhead())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check_halted()?;
        if !self.has_unsynced_changes() {
            return Ok(());
        }
        self.write_record().map_err(|e| self.halt(e))
    }

    fn submit(&mut self, token: crate::log::WriteToken) -> Result<crate::log::Submitted, StorageError> {
        match self.submit_async(token) {
            Some(result) => result,
            None => {
                self.sync()?;
                Ok(crate::log::Submitted::Durable)
            }
        }
    }

    fn persisted(&mut self, token: crate::log::WriteToken) -> Result<(), StorageError> {
        self.persisted_async(token)
    }

    fn instance(&self) -> u64 {
        self.instance
    }

    fn notify_completions(
        &mut self,
        notify: Box<dyn Fn(crate::log::WriteToken) + Send + 'static>,
    ) -> Result<bool, StorageError> {
        if self.is_async() {
            // Deferred syncs (`defer_syncs`): the driver reports the tokens
            // itself. (A sync thread started with a notifier of the
            // embedder's own is refused by `start_sync_thread`.)
            if self.has_sync_thread() {
                return Err(StorageError::InvalidWrite("the log's sync thread reports to another notifier".into()));
            }
            return Ok(false);
        }
        if self.prefer_sync_thread {
            self.start_sync_thread(notify)?;
            return Ok(true);
        }
        self.defer_syncs();
        Ok(false)
    }
}
