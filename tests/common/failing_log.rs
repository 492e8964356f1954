//! A `MemoryLog` whose syncs start failing after a given number, as a
//! crash or a full disk part way through a multi-sync write would leave
//! it, with a small step limit so that such writes take several syncs.

use raft_io::{MemoryLog, RaftLog, StorageError};

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
    super::forward_log!(inner, entries, receive);

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
