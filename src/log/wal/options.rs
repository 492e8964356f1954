//! [`WalOptions`], how a [`WalLog`](super::WalLog) is opened, and
//! [`WalStats`], what it wrote since.

use super::FaultInjector;
use crate::types::LogIdentity;

/// Options for [`WalLog::open_with`](super::WalLog::open_with).
#[derive(Clone, Debug)]
pub struct WalOptions {
    pub(super) segment_size: u64,
    /// `None`: a new log's default, an existing log's own.
    pub(super) max_record_size: Option<u32>,
    pub(super) faults: Option<FaultInjector>,
    pub(super) expect_identity: Option<LogIdentity>,
    pub(super) sync_thread: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { segment_size: 16 << 20, max_record_size: None, faults: None, expect_identity: None, sync_thread: false }
    }
}

impl WalOptions {
    /// Defaults: 16 MiB segments; the maximum record size a log was
    /// written with (64 MiB for a new log).
    pub fn new() -> Self {
        Self::default()
    }

    /// Size of a WAL segment file (used when the log is created; an existing
    /// log keeps the size it was created with). Disk use is bounded by the
    /// live log plus about two segments. Zero is raised to 1.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(1);
        self
    }

    /// The largest WAL record, that is, the most bytes one step may write.
    /// An existing log refuses to open with a limit lower than the one it
    /// was written with; a higher one is recorded. Not given, a new log
    /// takes [`DEFAULT_MAX_RECORD_SIZE`](super::DEFAULT_MAX_RECORD_SIZE)
    /// and an existing log keeps its own (a tool that opens a node's log
    /// never changes the limit the node opens it with).
    pub fn max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = Some(bytes);
        self
    }

    /// Refuses to open a log that records a different owner
    /// ([`StorageError::WrongIdentity`](crate::StorageError::WrongIdentity))
    /// before anything is repaired. A log with no owner recorded yet opens;
    /// the node records it.
    pub fn expect_identity(mut self, identity: LogIdentity) -> Self {
        self.expect_identity = Some(identity);
        self
    }

    /// Routes every durable operation through `faults` (crash testing).
    pub fn fault_injector(mut self, faults: FaultInjector) -> Self {
        self.faults = Some(faults);
        self
    }

    /// In the asynchronous storage mode under a driver that asks for
    /// completions (the threaded runtime), sync on a sync thread of the
    /// log's own (`true`) rather than when the driver reports each turn's
    /// writes (`false`, the default). The default measured faster on a
    /// 2-core machine (`docs/BENCHMARKS.md`, "Asynchronous storage"): it
    /// still sends a leader's appends before its fsync, and saves the
    /// thread hand-offs; a sync thread lets the driver keep stepping during
    /// the fsync, which can pay off with more cores.
    pub fn sync_thread(mut self, on: bool) -> Self {
        self.sync_thread = on;
        self
    }
}

/// Counters of what a [`WalLog`](super::WalLog) wrote since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// WAL records written (one per effective `sync`).
    pub records: u64,
    /// WAL syncs (one per effective `sync`).
    pub syncs: u64,
    /// Of the records, how many were checkpoints.
    pub checkpoints: u64,
    /// WAL prefixes dropped after a checkpoint.
    pub compactions: u64,
    /// Time spent in the WAL's fdatasync calls.
    pub sync_time: std::time::Duration,
}
