//! [`SimLog`]: the log a simulated node runs on. It delegates to a real log
//! and journals every change, so the safety checkers can follow each node's
//! log without scanning it.
//!
//! The backend is a [`MemoryLog`] (a crash keeps what it synced) or, in the
//! durable mode of features `sim` + `persistence`, a real `WalLog` in a temp
//! dir ([`SimWal`]).

#[cfg(feature = "persistence")]
mod wal;

#[cfg(feature = "persistence")]
pub use wal::SimWal;

use bytes::Bytes;

use super::state_machine::fnv1a;
use crate::error::StorageError;
use crate::log::{MemoryLog, RaftLog, Submitted, WriteToken};
use crate::types::{Entry, HardState, Index, LogIdentity, NodeId, SnapshotMeta, Term};

/// A change to a simulated node's log, as the checkers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogChange {
    /// Entries were appended; their `(index, term, digest)` are the next
    /// `count` items of the journal's digests.
    Appended { count: usize },
    /// Entries from `from` on were removed.
    Truncated { from: Index },
    /// A snapshot at `index` (with `term`) replaced the prefix; `kept` says
    /// whether the log held that entry (so the suffix after it survived).
    Snapshot { index: Index, term: Term, kept: bool },
}

/// The storage behind a simulated node.
// One per simulated node, moved only at a crash: the variants' sizes do
// not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum SimBackend {
    /// An in-memory log; a crash keeps what it synced.
    Memory(MemoryLog),
    /// A `WalLog` on real files in a temp dir; a crash drops it, loses the
    /// unsynced WAL bytes (tearing the last write at a random byte) and
    /// reopens it.
    #[cfg(feature = "persistence")]
    Wal(SimWal),
}

/// A log for simulated nodes: a [`SimBackend`] plus a journal of changes
/// for the checkers.
#[derive(Debug)]
pub struct SimLog {
    backend: SimBackend,
    journal: Vec<LogChange>,
    digests: Vec<(Index, Term, u64)>,
    journaling: bool,
    /// The (index, term) of the snapshot being received.
    receiving: Option<(Index, Term)>,
    /// How many crashes this log went through ([`RaftLog::instance`]).
    instance: u64,
}

impl SimLog {
    /// A simulated log over `backend`.
    pub fn new(backend: SimBackend, journaling: bool) -> Self {
        Self { backend, journal: Vec::new(), digests: Vec::new(), journaling, receiving: None, instance: 0 }
    }

    /// Switches the asynchronous storage model on: writes submitted are
    /// durable only once reported ([`RaftLog::persisted`]), and a crash
    /// loses every write not reported. (On a `WalLog` the log itself does
    /// this: its writes are synced when reported.)
    pub(crate) fn with_async_writes(mut self) -> Self {
        match &mut self.backend {
            SimBackend::Memory(m) => *m = std::mem::take(m).with_async_writes(),
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => w.log_mut().defer_syncs(),
        }
        self
    }

    /// The oldest write submitted in the asynchronous mode and not reported
    /// durable yet (on a `MemoryLog`; none on a `WalLog`, whose writes the
    /// simulator's disk tracks).
    pub(crate) fn oldest_write_in_flight(&self) -> Option<WriteToken> {
        match &self.backend {
            SimBackend::Memory(m) => m.pending_writes().next(),
            #[cfg(feature = "persistence")]
            SimBackend::Wal(_) => None,
        }
    }

    /// A fresh log for node `node` of the simulation seeded `seed`: on a
    /// [`SimWal`] when `durable` (feature `persistence`), else in memory.
    pub(crate) fn for_node(durable: bool, seed: u64, node: NodeId, journaling: bool) -> Self {
        #[cfg(feature = "persistence")]
        if durable {
            return Self::new(SimBackend::Wal(SimWal::create(seed, node)), journaling);
        }
        let _ = (durable, seed, node);
        Self::new(SimBackend::Memory(MemoryLog::new()), journaling)
    }

    /// The storage behind the log.
    pub fn backend(&self) -> &SimBackend {
        &self.backend
    }

    /// What survives a crash right now, as a fresh log.
    pub(crate) fn crash(self) -> SimLog {
        let backend = match self.backend {
            // In the asynchronous mode too: the log as of its last reported
            // write, still in the mode.
            SimBackend::Memory(m) => SimBackend::Memory(m.durable()),
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => {
                let asynchronous = w.log().is_async();
                let mut w = w.crash();
                if asynchronous {
                    w.log_mut().defer_syncs();
                }
                SimBackend::Wal(w)
            }
        };
        let mut log = SimLog::new(backend, self.journaling);
        log.instance = self.instance + 1;
        log
    }

    /// Durable mode: makes one of the node's next durable operations fail
    /// as a crash would (see [`SimWal`]). A no-op in memory.
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    pub(crate) fn arm_crash(&mut self) {
        #[cfg(feature = "persistence")]
        if let SimBackend::Wal(w) = &mut self.backend {
            w.arm_crash();
        }
    }

    /// Durable mode: flips a bit of the log's snapshot file and reopens it
    /// (see `SimWal::damage_snapshot`). `Ok((log, true))`: the reopened log
    /// accepted the damaged file; `Ok((log, false))`: there was nothing to
    /// damage (no snapshot file, or a log in memory); `Err`: the reopened log
    /// refused to open.
    #[cfg(feature = "persistence")]
    pub(crate) fn damage_snapshot(self) -> Result<(SimLog, bool), StorageError> {
        let journaling = self.journaling;
        match self.backend {
            SimBackend::Wal(w) => match w.damage_snapshot() {
                wal::Damage::NoFile(w) => Ok((SimLog::new(SimBackend::Wal(w), journaling), false)),
                wal::Damage::Accepted(w) => Ok((SimLog::new(SimBackend::Wal(w), journaling), true)),
                wal::Damage::Refused(e) => Err(e),
            },
            backend => Ok((SimLog::new(backend, journaling), false)),
        }
    }

    /// Whether a crash armed by `Cluster::crash_mid_write` has yet to happen.
    pub(crate) fn crash_pending(&self) -> bool {
        match &self.backend {
            SimBackend::Memory(_) => false,
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => w.crash_pending(),
        }
    }

    /// Whether an armed crash has happened, so the failed step is the
    /// node's death rather than a bug.
    pub(crate) fn crashed(&self) -> bool {
        match &self.backend {
            SimBackend::Memory(_) => false,
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => w.crashed(),
        }
    }

    /// Hands the changes since the last call to `f`, then forgets them.
    pub(crate) fn drain_journal<R>(&mut self, f: impl FnOnce(&[LogChange], &[(Index, Term, u64)]) -> R) -> R {
        let r = f(&self.journal, &self.digests);
        self.journal.clear();
        self.digests.clear();
        r
    }

    fn note(&mut self, change: LogChange) {
        if self.journaling {
            self.journal.push(change);
        }
    }

    fn inner(&self) -> &dyn RaftLog {
        match &self.backend {
            SimBackend::Memory(m) => m,
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => w.log(),
        }
    }

    fn inner_mut(&mut self) -> &mut dyn RaftLog {
        match &mut self.backend {
            SimBackend::Memory(m) => m,
            #[cfg(feature = "persistence")]
            SimBackend::Wal(w) => w.log_mut(),
        }
    }
}

impl RaftLog for SimLog {
    fn identity(&self) -> Option<LogIdentity> {
        self.inner().identity()
    }

    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.inner_mut().set_identity(identity)
    }

    fn hard_state(&self) -> HardState {
        self.inner().hard_state()
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        self.inner_mut().set_hard_state(state)
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        self.inner().snapshot_meta()
    }

    fn last_index(&self) -> Index {
        self.inner().last_index()
    }

    fn term(&self, index: Index) -> Option<Term> {
        self.inner().term(index)
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.inner().entries(lo, hi, max_bytes, out)
    }

    fn entry_run(&self, lo: Index, hi: Index) -> Option<&[Entry]> {
        self.inner().entry_run(lo, hi)
    }

    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        self.inner().visit_entries(lo, hi, f)
    }

    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        if self.journaling && !entries.is_empty() {
            self.digests.extend(entries.iter().map(|e| (e.index, e.term, entry_digest(e))));
            self.journal.push(LogChange::Appended { count: entries.len() });
        }
        self.inner_mut().append(entries)
    }

    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        let had = self.last_index() >= from;
        self.inner_mut().truncate(from)?;
        if had {
            self.note(LogChange::Truncated { from });
        }
        Ok(())
    }

    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        self.inner().snapshot_data()
    }

    fn snapshot_len(&self) -> Result<u64, StorageError> {
        self.inner().snapshot_len()
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        self.inner().snapshot_chunk(offset, max_len)
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        let (index, term) = (meta.index, meta.term);
        let kept = self.term(index) == Some(term);
        self.inner_mut().install_snapshot(meta, data)?;
        self.note(LogChange::Snapshot { index, term, kept });
        Ok(())
    }

    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        self.receiving = Some((meta.index, meta.term));
        self.inner_mut().begin_snapshot_receive(meta, total_len)
    }

    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.inner_mut().receive_snapshot_chunk(offset, data)
    }

    fn abort_snapshot_receive(&mut self) -> Result<(), StorageError> {
        self.receiving = None;
        self.inner_mut().abort_snapshot_receive()
    }

    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let kept = self.receiving.take().is_some_and(|(index, term)| self.term(index) == Some(term));
        self.inner_mut().finish_snapshot_receive()?;
        let meta = self.snapshot_meta();
        let (index, term) = (meta.index, meta.term);
        self.note(LogChange::Snapshot { index, term, kept });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner_mut().sync()
    }

    fn submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        self.inner_mut().submit(token)
    }

    fn persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        self.inner_mut().persisted(token)
    }

    fn instance(&self) -> u64 {
        self.instance
    }

    fn max_step_bytes(&self) -> u64 {
        self.inner().max_step_bytes()
    }

    fn sync_time(&self) -> Option<std::time::Duration> {
        self.inner().sync_time()
    }

    fn fsyncs(&self) -> Option<u64> {
        self.inner().fsyncs()
    }
}

/// A digest of one entry's content (term, index, kind and data).
pub(crate) fn entry_digest(e: &Entry) -> u64 {
    let head = fnv1a(e.term ^ e.index.rotate_left(32), &[e.kind.to_u8()]);
    fnv1a(head, &e.data)
}
