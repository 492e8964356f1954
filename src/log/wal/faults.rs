//! [`FaultInjector`]: crash and I/O-failure injection for [`WalLog`] on real
//! files, for crash tests and the simulator's durable mode.
//!
//! Every durable operation a `WalLog` makes — each write, sync and truncation
//! of the WAL, and each write, fsync, rename and removal of its own files —
//! first asks the injector. Operations are numbered from 0 in the order they
//! happen, so a test can run a workload once, read
//! [`operations`](FaultInjector::operations), and then crash at every one of
//! them in turn. At the crash point the operation fails (a WAL write is
//! still carried out, so it can be torn later), and so does every later one:
//! the "process" is dead. The test then drops the log, calls
//! [`lose_unsynced`](FaultInjector::lose_unsynced) to throw away the WAL
//! bytes a power loss would lose (keeping any prefix of them, which tears the
//! last write at any byte), and reopens.
//!
//! [`WalLog`]: super::WalLog

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use wal_db::{SegmentedStore, WalStore};

use crate::sync::lock;

/// A shared handle that injects crashes and failures into the `WalLog`
/// opened with it (see [`WalOptions::fault_injector`](super::WalOptions::fault_injector)).
/// Clones share one state.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_io::log::wal::{FaultInjector, WalLog, WalOptions};
/// use raft_io::{Entry, RaftLog};
///
/// let dir = std::env::temp_dir().join(format!("raft-io-doc-faults-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let faults = FaultInjector::new();
/// let mut log = WalLog::open_with(&dir, WalOptions::new().fault_injector(faults.clone()))?;
/// log.append(&mut vec![Entry::normal(1, 1, "synced".into())])?;
/// log.sync()?;
/// log.append(&mut vec![Entry::normal(1, 2, "lost".into())])?;
/// faults.crash_after(faults.operations() + 1); // the write goes through, its sync fails
/// assert!(log.sync().is_err());
/// drop(log);
/// faults.lose_unsynced(3)?; // a power loss keeps 3 bytes of the torn record
///
/// let log = WalLog::open(&dir)?;
/// assert_eq!(log.last_index(), 1);
/// assert!(log.recovery_report().torn_tail.is_some());
/// # drop(log);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    fail_next_sync: bool,
    /// End of the highest WAL write since the log was opened.
    written: u64,
    /// WAL offset below which every byte is synced.
    synced: u64,
    wal: Option<(PathBuf, u64)>,
    /// The names of the operations counted, when recording (tests).
    #[cfg(test)]
    recorded: Option<Vec<String>>,
}

/// How an injected fault hit an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// This operation is the crash point.
    CrashNow,
    /// The process already crashed, or a transient failure was asked for.
    Fail,
}

impl Hit {
    pub(crate) fn error(self, what: &str) -> io::Error {
        io::Error::other(format!("injected fault at {what}"))
    }
}

impl FaultInjector {
    /// An injector that injects nothing until told to.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Crash at operation number `op` (counted from 0 since the injector
    /// was made): that operation and every later one fail.
    pub fn crash_after(&self, op: u64) {
        self.lock().crash_at = Some(op);
    }

    /// Crash at the next operation.
    pub fn crash_now(&self) {
        let mut s = self.lock();
        s.crash_at = Some(s.ops);
    }

    /// Number of durable operations attempted so far.
    pub fn operations(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the injected crash has happened.
    pub fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Makes the next WAL sync fail once (without crashing), as a disk
    /// error would.
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// WAL bytes written but not yet synced.
    pub fn unsynced_bytes(&self) -> u64 {
        let s = self.lock();
        s.written.saturating_sub(s.synced)
    }

    /// Simulates the power loss after a crash: truncates the WAL of the log
    /// this injector was last attached to so that of the unsynced bytes only
    /// the first `keep` survive, and clears the crash so the log can be
    /// reopened with the same injector. Call it after dropping the log.
    /// Returns the number of unsynced bytes kept.
    pub fn lose_unsynced(&self, keep: u64) -> io::Result<u64> {
        let mut s = self.lock();
        let kept = keep.min(s.written.saturating_sub(s.synced));
        if let Some((dir, segment_size)) = s.wal.clone() {
            let end = s.synced + kept;
            let store = SegmentedStore::open(&dir, segment_size).map_err(io::Error::other)?;
            if store.len().map_err(io::Error::other)? > end {
                store.truncate(end).map_err(io::Error::other)?;
                store.sync().map_err(io::Error::other)?;
            }
        }
        s.written = s.synced + kept;
        s.crash_at = None;
        s.crashed = false;
        s.fail_next_sync = false;
        Ok(kept)
    }

    /// The WAL offsets `(synced, written)` since the log was opened.
    #[cfg(test)]
    pub(crate) fn watermarks(&self) -> (u64, u64) {
        let s = self.lock();
        (s.synced, s.written)
    }

    /// Starts recording the name of every operation counted from now on.
    #[cfg(test)]
    pub(crate) fn record_operations(&self) {
        self.lock().recorded = Some(Vec::new());
    }

    /// The names of the operations recorded, in the order they happened.
    #[cfg(test)]
    pub(crate) fn recorded(&self) -> Vec<String> {
        self.lock().recorded.clone().unwrap_or_default()
    }

    /// Counts operation `what`; `Err` if it must fail.
    pub(crate) fn hit(&self, what: &str) -> Result<(), Hit> {
        let mut s = self.lock();
        #[cfg(test)]
        if let Some(recorded) = s.recorded.as_mut() {
            recorded.push(what.to_string());
        }
        #[cfg(not(test))]
        let _ = what;
        if s.crashed {
            return Err(Hit::Fail);
        }
        let n = s.ops;
        s.ops += 1;
        if s.crash_at == Some(n) {
            s.crashed = true;
            return Err(Hit::CrashNow);
        }
        Ok(())
    }

    /// Counts a WAL sync, which may also fail transiently.
    pub(crate) fn hit_sync(&self, what: &str) -> Result<(), Hit> {
        self.hit(what)?;
        let mut s = self.lock();
        if std::mem::take(&mut s.fail_next_sync) {
            return Err(Hit::Fail);
        }
        Ok(())
    }

    /// Records the WAL of a freshly opened log: everything in it is durable.
    pub(crate) fn attach(&self, wal_dir: PathBuf, segment_size: u64, len: u64) {
        let mut s = self.lock();
        s.wal = Some((wal_dir, segment_size));
        s.written = len;
        s.synced = len;
    }

    pub(crate) fn wal_written(&self, end: u64) {
        let mut s = self.lock();
        s.written = s.written.max(end);
    }

    pub(crate) fn wal_truncated(&self, len: u64) {
        let mut s = self.lock();
        s.written = len;
        s.synced = s.synced.min(len);
    }

    pub(crate) fn wal_synced(&self) {
        let mut s = self.lock();
        s.synced = s.written;
    }
}

/// Runs `f` unless `faults` says the operation fails.
pub(crate) fn guarded<T>(
    faults: Option<&FaultInjector>,
    what: &str,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    if let Some(faults) = faults {
        faults.hit(what).map_err(|hit| hit.error(what))?;
    }
    f()
}
