//! [`SharedWal`]: one durable log for every Raft group of a process, on a
//! segmented wal-db log, with one fsync per host step for all groups.
//!
//! Each group gets a [`GroupLog`], a [`RaftLog`] with its own entries, hard
//! state, snapshot and identity. Its writes are **staged**: in the
//! asynchronous storage mode (`RaftConfig::async_storage`) a group's
//! [`submit`](RaftLog::submit) stages its step and answers
//! [`Submitted::Pending`](crate::Submitted::Pending); the host then calls
//! [`SharedWal::flush`] once, which writes everything every group staged as
//! **one** WAL record, makes it durable with **one** fsync, and returns the
//! `(group, token)` pairs now durable, for the host to report to each
//! group's node as `Event::Persisted(token)`. A group's
//! [`sync`](RaftLog::sync) (the synchronous mode, and node initialization)
//! stages and flushes at once.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_io::log::shared::SharedWal;
//! use raft_io::{Entry, RaftLog, WriteToken};
//!
//! let dir = std::env::temp_dir().join(format!("raft-io-doc-shared-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let wal = SharedWal::open(&dir)?;
//! let mut a = wal.create_group(1)?;
//! let mut b = wal.create_group(2)?;
//! a.append(&mut vec![Entry::normal(1, 1, "a".into())])?;
//! b.append(&mut vec![Entry::normal(1, 1, "b".into())])?;
//! a.submit(WriteToken::new(7, 1))?; // staged, not yet durable
//! b.submit(WriteToken::new(9, 1))?;
//! let durable = wal.flush()?; // one record, one fdatasync
//! assert_eq!(durable, vec![(1, WriteToken::new(7, 1)), (2, WriteToken::new(9, 1))]);
//! drop((a, b, wal));
//!
//! let wal = SharedWal::open(&dir)?;
//! assert_eq!(wal.groups(), vec![1, 2]);
//! assert_eq!(wal.group(2)?.last_index(), 1);
//! # drop(wal);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout of a directory
//!
//! ```text
//! <dir>/sharedwal.meta                      WalLog's meta layout, magic RAFTIOSW
//! <dir>/raftlog.lock                        locked by the open SharedWal
//! <dir>/wal/00000000000000000000.wal        wal-db segments (and wal-db's `head` marker)
//! <dir>/groups/<group:020>/snapshot-<id:020>.snap   a group's latest snapshot data
//! ```
//!
//! The format is normative (`docs/PROTOCOL.md`, "Shared WAL format"): a
//! record is a *batch* of group operations (create, step, remove; a step is
//! `WalLog`'s step body) or a *checkpoint* of every live group (each in
//! `WalLog`'s checkpoint body). One record per fsync, so only the last
//! record can be torn, and `WalLog`'s tail rule and synced end (shared
//! code) tell a torn tail from lost synced data: a torn last record costs
//! no group anything it was told was durable.
//!
//! # Compaction and removal
//!
//! The WAL prefix can be dropped only once no group needs it. When the WAL
//! spans more than two segments plus eight times the live entries of every
//! group (amortized as in `WalLog`), a flush writes a checkpoint of every
//! live group instead of a batch; once it is durable the prefix before it
//! is dropped. The checkpoint is written from the groups' own states (the
//! log keeps no second copy of them), each as last staged; it waits for a
//! later flush while some group has truncated staged entries, or
//! installed a snapshot, without staging that yet. A group's snapshot drops its entries from the next
//! checkpoint. [`SharedWal::remove_group`] writes a removal (flushed at
//! once), then deletes the group's snapshot directory; the next checkpoint
//! leaves the group out, reclaiming its WAL space.
//!
//! A checkpoint larger than `max_record_size` (64 MiB by default) is
//! written as several records, whole groups in each, every one synced
//! before the next; recovery ignores a checkpoint whose last part a crash
//! cut off. Only one group's state alone must fit a record (less a part's
//! 32-byte header): a group whose live entries exceed that holds
//! compaction back until its snapshot shrinks them. Size the record limit
//! above the largest group's live entries.
//!
//! # Failures
//!
//! Any failed write or sync halts the whole log: every later write of every
//! group fails with [`StorageError::Halted`]. Drop the `SharedWal` and its
//! `GroupLog`s, and reopen it; recovery decides what survived. Bad group
//! ids and operations on removed groups fail with [`StorageError::Group`]
//! and change nothing.

mod group;
mod inner;
mod options;
mod record;
mod recovery;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod refusal_tests;

#[cfg(test)]
mod stale_handle_tests;

#[cfg(test)]
mod crash_tests;

#[cfg(test)]
mod node_tests;

#[cfg(test)]
mod node_crash_tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use group::GroupLog;
pub use options::{SharedRecoveryReport, SharedWalOptions, SharedWalStats};

use self::inner::Inner;
use crate::error::{GroupProblem, StorageError};
use crate::log::{RaftLog, WriteToken};
use crate::sync::lock;

/// Names a Raft group within a process. 0 is reserved (invalid).
pub type GroupId = u64;

/// One durable log shared by many Raft groups. See the
/// [module docs](self). Cloning gives another handle to the same log.
#[derive(Clone, Debug)]
pub struct SharedWal {
    inner: Arc<Mutex<Inner>>,
}

impl SharedWal {
    /// Opens the shared WAL in `dir` with default [`SharedWalOptions`],
    /// recovering every group, or creates it if `dir` does not exist or is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`WalLog::open`](crate::WalLog::open): a typed [`StorageError`]
    /// naming the file and offset when the directory is not a shared WAL,
    /// is of an unknown format version, would need a lower record size
    /// limit, is damaged anywhere but in a torn last record (including a
    /// record naming an unknown group, or creating an existing one), or has
    /// lost records that were synced; [`StorageError::Locked`] when
    /// another `SharedWal` has it open. Nothing is changed then.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(dir, SharedWalOptions::new())
    }

    /// Opens the shared WAL in `dir` with `options`. See [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: SharedWalOptions) -> Result<Self, StorageError> {
        let inner = recovery::open(dir.as_ref(), &options)?;
        Ok(SharedWal { inner: Arc::new(Mutex::new(inner)) })
    }

    /// Creates group `id`, empty, and returns its log. The creation is
    /// written with the next flush (a crash before it forgets the group).
    ///
    /// # Errors
    ///
    /// [`StorageError::Group`] for id 0 ([`GroupProblem::InvalidId`]) or an
    /// existing group ([`GroupProblem::Exists`]); [`StorageError::Halted`]
    /// after a failure.
    pub fn create_group(&self, id: GroupId) -> Result<GroupLog, StorageError> {
        let mut inner = lock(&self.inner);
        inner.create(id)?;
        GroupLog::new(Arc::clone(&self.inner), &inner, id).ok_or_else(|| inner.absent(id))
    }

    /// The log of existing group `id`, as recovered or last written.
    ///
    /// # Errors
    ///
    /// [`StorageError::Group`]: id 0, no such group (never created, or
    /// removed: [`GroupProblem::Unknown`]), or a group whose previous
    /// [`GroupLog`] is still alive ([`GroupProblem::InUse`]).
    pub fn group(&self, id: GroupId) -> Result<GroupLog, StorageError> {
        let mut inner = lock(&self.inner);
        let Some(slot) = inner.groups.get_mut(&id) else { return Err(inner.absent(id)) };
        if slot.checked_out {
            return Err(StorageError::Group { group: id, problem: GroupProblem::InUse });
        }
        slot.checked_out = true;
        GroupLog::new(Arc::clone(&self.inner), &inner, id).ok_or_else(|| inner.absent(id))
    }

    /// Removes group `id`: writes a removal record (flushed now, with
    /// whatever other groups staged), then deletes the group's snapshot
    /// files. Its [`GroupLog`], if alive, fails every call from now on; its
    /// WAL space is reclaimed by the next checkpoint. Its write tokens
    /// leave with it: [`flush`](Self::flush) returns none of them, even
    /// one already durable, and none under a later group of the same id.
    ///
    /// # Errors
    ///
    /// [`StorageError::Group`] for id 0 or a group that does not exist;
    /// a write error (which halts the log).
    pub fn remove_group(&self, id: GroupId) -> Result<(), StorageError> {
        lock(&self.inner).remove(id)
    }

    /// The ids of the live groups, in increasing order.
    pub fn groups(&self) -> Vec<GroupId> {
        lock(&self.inner).groups.keys().copied().collect()
    }

    /// Whether group `id` exists.
    pub fn contains(&self, id: GroupId) -> bool {
        lock(&self.inner).groups.contains_key(&id)
    }

    /// Writes everything every group staged as one record, makes it
    /// durable with one fsync (none when nothing is staged), and returns
    /// every `(group, token)` made durable since the last call, in the
    /// order staged — also those made durable by a group's
    /// [`sync`](RaftLog::sync) or [`persisted`](RaftLog::persisted) in
    /// between. Report each to its group's node as
    /// `Event::Persisted(token)` (the latest per group suffices).
    ///
    /// # Errors
    ///
    /// A write or sync error: the log halts, and no token is returned.
    pub fn flush(&self) -> Result<Vec<(GroupId, WriteToken)>, StorageError> {
        let mut durable = Vec::new();
        self.flush_into(&mut durable)?;
        Ok(durable)
    }

    /// [`flush`](Self::flush), appending the tokens to `durable` instead
    /// of returning a new vector: a driver that flushes every turn reuses
    /// one vector.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush); nothing is appended then.
    pub fn flush_into(&self, durable: &mut Vec<(GroupId, WriteToken)>) -> Result<(), StorageError> {
        let mut inner = lock(&self.inner);
        inner.flush(false)?;
        inner.take_durable(durable);
        Ok(())
    }

    /// Flushes, writing a checkpoint of every live group instead of a
    /// batch, and drops the WAL prefix before it: reclaims the space of
    /// removed groups and compacted entries now rather than when the
    /// amortized rule says. Skipped (a plain flush) when the checkpoint
    /// would exceed the maximum record size, or when memory no longer
    /// holds some group's staged state (see the module docs).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        lock(&self.inner).flush(true)
    }

    /// Counters of what was written since the log was opened.
    pub fn stats(&self) -> SharedWalStats {
        lock(&self.inner).stats
    }

    /// Bytes the WAL spans from its head to its end (excluding snapshots).
    pub fn wal_bytes(&self) -> u64 {
        lock(&self.inner).wal_bytes()
    }

    /// What opening the log found and repaired.
    pub fn recovery_report(&self) -> SharedRecoveryReport {
        lock(&self.inner).report.clone()
    }

    /// The log directory.
    pub fn dir(&self) -> PathBuf {
        lock(&self.inner).files.dir.clone()
    }

    /// Flushes what is staged, records in the meta file that the WAL is
    /// synced to its end, and closes this handle (the log closes when the
    /// last handle, `GroupLog`s included, is dropped; dropping records the
    /// synced end too, but cannot report a failure).
    pub fn close(self) -> Result<(), StorageError> {
        let mut inner = lock(&self.inner);
        inner.flush(false)?;
        inner.close()
    }
}

/// A clean close when the last handle goes: records the synced end.
impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// `GroupLog` is a [`RaftLog`]; asserted here so a change that loses
/// `Send` fails to compile.
const _: fn() = || {
    fn send<T: Send + RaftLog>() {}
    send::<GroupLog>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SharedWal>();
};
