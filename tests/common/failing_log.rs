//! A `MemoryLog` whose syncs start failing after a given number, as a
//! crash or a full disk part way through a multi-sync write would leave
//! it, with a small step limit so that such writes take several syncs.

use bytes::Bytes;
use raft_io::{Entry, HardState, Index, LogIdentity, MemoryLog, RaftLog, SnapshotMeta, StorageError, Term};

pub struct FailingLog {
    pub inner: MemoryLog,
    /// Syncs that still succeed; every later one fails and makes nothing
    /// durable.
    pub syncs_left: usize,
    /// What it reports as `max_step_bytes`.
    pub step_bytes: u64,
}

impl FailingLog {
    pub fn new(syncs_left: usize, step_bytes: u64) -> Self {
        FailingLog { inner: MemoryLog::new(), syncs_left, step_bytes }
    }
}

impl RaftLog for FailingLog {
    fn identity(&self) -> Option<LogIdentity> {
        self.inner.identity()
    }
    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.inner.set_identity(identity)
    }
    fn hard_state(&self) -> HardState {
        self.inner.hard_state()
    }
    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        self.inner.set_hard_state(state)
    }
    fn snapshot_meta(&self) -> &SnapshotMeta {
        self.inner.snapshot_meta()
    }
    fn last_index(&self) -> Index {
        self.inner.last_index()
    }
    fn term(&self, index: Index) -> Option<Term> {
        self.inner.term(index)
    }
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.inner.entries(lo, hi, max_bytes, out)
    }
    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        self.inner.append(entries)
    }
    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        self.inner.truncate(from)
    }
    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        self.inner.snapshot_data()
    }
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        self.inner.install_snapshot(meta, data)
    }
    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        self.inner.begin_snapshot_receive(meta, total_len)
    }
    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.inner.receive_snapshot_chunk(offset, data)
    }
    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        self.inner.finish_snapshot_receive()
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        if self.syncs_left == 0 {
            return Err(StorageError::Other("the disk is full".into()));
        }
        self.syncs_left -= 1;
        self.inner.sync()
    }
    fn max_step_bytes(&self) -> u64 {
        self.step_bytes
    }
}
