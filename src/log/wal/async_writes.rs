//! The asynchronous storage mode on a [`WalLog`] (`docs/PROTOCOL.md` §5.1):
//! a submitted write is appended to the WAL at once (one `pwrite`, no
//! sync) and made durable later, by one of two engines:
//!
//! * a **sync thread** ([`WalLog::start_sync_thread`]): the thread waits for
//!   submitted writes, takes every one queued so far, makes them durable
//!   with **one** fdatasync (and a directory sync when one started a
//!   segment), and calls the notifier with the latest token. The stepping
//!   thread never waits for the disk, and one fsync covers the writes of
//!   every step that ran while the previous fsync was under way;
//! * **deferred syncs** ([`WalLog::defer_syncs`]): the sync happens on the
//!   stepping thread when the embedder reports the write
//!   ([`RaftLog::persisted`](crate::RaftLog::persisted)): a driver that reports only its latest token
//!   once per loop turn gets one fsync per turn. The simulator uses it, so
//!   that durability happens at a moment it chooses.
//!
//! Either way, what must wait for a record to be durable (compaction behind
//! a checkpoint, deleting replaced snapshot files, recording the synced
//! end) runs on the stepping thread in [`RaftLog::persisted`](crate::RaftLog::persisted), and recovery
//! is unchanged: the WAL is written in the same order, record by record.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::write::Written;
use super::{WalLog, fsio, wal_error};
use crate::error::StorageError;
use crate::log::{Submitted, WriteToken};
use crate::sync::lock;

/// A notifier: called on the sync thread with the latest durable token.
type Notify = Box<dyn Fn(WriteToken) + Send + 'static>;

/// The asynchronous mode's state in a [`WalLog`].
#[derive(Debug)]
pub(super) struct AsyncWrites {
    in_flight: VecDeque<(u64, Written)>,
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Deferred,
    Thread(SyncThread),
}

#[derive(Debug)]
struct SyncThread {
    jobs: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    state: Arc<ThreadState>,
}

#[derive(Debug, Default)]
struct ThreadState {
    failed: Mutex<Option<String>>,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    token: WriteToken,
    rolled: bool,
}

impl WalLog {
    /// Switches the log to the asynchronous storage mode with a sync
    /// thread: [`submit`](crate::RaftLog::submit) appends the step's record and
    /// returns at once; the thread makes records durable, one fdatasync for
    /// every record queued when it starts, and calls `notify` with the
    /// latest token it covered (also when the sync failed: the node learns
    /// the failure from [`persisted`](crate::RaftLog::persisted)). The embedder
    /// turns each notification into `Event::Persisted(token)`. `notify`
    /// runs on the sync thread and must not block for long.
    ///
    /// Refused when the log is already in an asynchronous mode.
    pub fn start_sync_thread(&mut self, notify: impl Fn(WriteToken) + Send + 'static) -> Result<(), StorageError> {
        self.check_halted()?;
        if self.async_writes.is_some() {
            return Err(StorageError::InvalidWrite("the log is already in an asynchronous mode".into()));
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let state = Arc::new(ThreadState::default());
        let wal = Arc::clone(&self.wal);
        let shared = Arc::clone(&self.shared);
        let wal_dir = self.wal_dir.clone();
        let thread_state = Arc::clone(&state);
        let notify: Notify = Box::new(notify);
        let handle = std::thread::Builder::new()
            .name("raft-io-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let (mut last, mut rolled) = (first.token, first.rolled);
                    while let Ok(job) = inbox.try_recv() {
                        last = job.token;
                        rolled |= job.rolled;
                    }
                    if lock(&thread_state.failed).is_none() {
                        let started = std::time::Instant::now();
                        let result = wal.sync().map_err(wal_error).and_then(|()| {
                            if rolled { fsio::fsync_dir(&wal_dir, shared.faults.as_ref()) } else { Ok(()) }
                        });
                        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        thread_state.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
                        thread_state.syncs.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = result {
                            *lock(&thread_state.failed) = Some(e.to_string());
                        }
                    }
                    notify(last);
                }
            })
            .map_err(|e| StorageError::Io { context: "starting the WAL sync thread".into(), source: e })?;
        let thread = SyncThread { jobs: Some(jobs), handle: Some(handle), state };
        self.async_writes = Some(AsyncWrites { in_flight: VecDeque::new(), engine: Engine::Thread(thread) });
        Ok(())
    }

    /// Switches the log to the asynchronous storage mode with deferred
    /// syncs: [`submit`](crate::RaftLog::submit) appends the step's record and
    /// returns at once; [`persisted`](crate::RaftLog::persisted) (the embedder
    /// reporting a token) makes every record up to it durable with one
    /// sync, on the calling thread. A no-op when the log is already in an
    /// asynchronous mode.
    pub fn defer_syncs(&mut self) {
        if self.async_writes.is_none() {
            self.async_writes = Some(AsyncWrites { in_flight: VecDeque::new(), engine: Engine::Deferred });
        }
    }

    /// Whether the log syncs on a sync thread.
    pub(super) fn has_sync_thread(&self) -> bool {
        matches!(self.async_writes.as_ref().map(|a| &a.engine), Some(Engine::Thread(_)))
    }

    /// Whether the log is in an asynchronous mode.
    pub fn is_async(&self) -> bool {
        self.async_writes.is_some()
    }

    /// Syncs made by the sync thread, and their time.
    pub(super) fn thread_syncs(&self) -> (u64, Duration) {
        match self.async_writes.as_ref().map(|a| &a.engine) {
            Some(Engine::Thread(t)) => (
                t.state.syncs.load(Ordering::Relaxed),
                Duration::from_nanos(t.state.sync_nanos.load(Ordering::Relaxed)),
            ),
            _ => (0, Duration::ZERO),
        }
    }

    /// [`RaftLog::submit`] in an asynchronous mode; `None` when the log is
    /// synchronous.
    pub(super) fn submit_async(&mut self, token: WriteToken) -> Option<Result<Submitted, StorageError>> {
        self.async_writes.as_ref()?;
        Some(self.try_submit(token).map_err(|e| self.halt(e)))
    }

    fn try_submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        self.check_halted()?;
        // A write with nothing new still takes its place in the order:
        // reporting it says the writes before it are durable.
        let written = if self.has_unsynced_changes() {
            self.append_record()?
        } else {
            Written { end: self.wal.len(), ..Written::default() }
        };
        let rolled = written.rolled;
        let Some(a) = self.async_writes.as_mut() else { return Ok(Submitted::Durable) };
        a.in_flight.push_back((token.seq(), written));
        if let Engine::Thread(t) = &a.engine {
            let sent = t.jobs.as_ref().is_some_and(|jobs| jobs.send(Job { token, rolled }).is_ok());
            if !sent {
                return Err(StorageError::Io {
                    context: "handing a write to the WAL sync thread".into(),
                    source: std::io::Error::other("the sync thread has stopped"),
                });
            }
        }
        Ok(Submitted::Pending)
    }

    /// [`RaftLog::persisted`](crate::RaftLog::persisted) in an asynchronous mode.
    pub(super) fn persisted_async(&mut self, token: WriteToken) -> Result<(), StorageError> {
        self.try_persisted(token).map_err(|e| self.halt(e))
    }

    fn try_persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        self.check_halted()?;
        let Some(a) = self.async_writes.as_mut() else { return Ok(()) };
        let upto = a.in_flight.iter().take_while(|(seq, _)| *seq <= token.seq()).count();
        match &a.engine {
            Engine::Deferred => {
                let rolled = a.in_flight.iter().take(upto).any(|(_, w)| w.rolled);
                self.sync_wal(rolled)?;
            }
            Engine::Thread(t) => {
                if let Some(cause) = lock(&t.state.failed).clone() {
                    return Err(StorageError::Io {
                        context: "syncing the WAL on the sync thread".into(),
                        source: std::io::Error::other(cause),
                    });
                }
            }
        }
        self.complete(upto)
    }

    /// Runs what waited for the first `count` writes in flight.
    fn complete(&mut self, count: usize) -> Result<(), StorageError> {
        for _ in 0..count {
            let Some((_, written)) = self.async_writes.as_mut().and_then(|a| a.in_flight.pop_front()) else { break };
            self.after_durable(written)?;
        }
        Ok(())
    }

    /// At a clean close: stops the sync thread and makes every write still
    /// in flight durable (a sync on this thread), so that what the meta
    /// file records as synced is.
    pub(super) fn finish_async(&mut self) -> Result<(), StorageError> {
        let Some(a) = self.async_writes.as_mut() else { return Ok(()) };
        if let Engine::Thread(t) = &mut a.engine {
            t.jobs = None;
            if let Some(handle) = t.handle.take() {
                let _ = handle.join();
            }
            if let Some(cause) = lock(&t.state.failed).clone() {
                return Err(StorageError::Io {
                    context: "syncing the WAL on the sync thread".into(),
                    source: std::io::Error::other(cause),
                });
            }
        }
        if a.in_flight.is_empty() {
            return Ok(());
        }
        let rolled = a.in_flight.iter().any(|(_, w)| w.rolled);
        let count = a.in_flight.len();
        self.sync_wal(rolled)?;
        self.complete(count)
    }
}
