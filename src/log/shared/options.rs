//! [`SharedWalOptions`], how a [`SharedWal`](super::SharedWal) is opened;
//! [`SharedWalStats`], what it wrote since; and [`SharedRecoveryReport`],
//! what its open found and repaired.

use std::path::PathBuf;

use crate::log::wal::{FaultInjector, TornTail};

/// Options for [`SharedWal::open_with`](super::SharedWal::open_with).
#[derive(Clone, Debug)]
pub struct SharedWalOptions {
    pub(super) segment_size: u64,
    /// `None`: a new log's default, an existing log's own.
    pub(super) max_record_size: Option<u32>,
    pub(super) faults: Option<FaultInjector>,
}

impl Default for SharedWalOptions {
    fn default() -> Self {
        Self { segment_size: 16 << 20, max_record_size: None, faults: None }
    }
}

impl SharedWalOptions {
    /// Defaults: 16 MiB segments; the maximum record size a log was
    /// written with (64 MiB for a new log).
    pub fn new() -> Self {
        Self::default()
    }

    /// Size of a WAL segment file (used when the log is created; an
    /// existing log keeps its own). Zero is raised to 1.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(1);
        self
    }

    /// The largest WAL record: the most bytes one flush (every group's
    /// writes together) may take. A checkpoint larger than this is written
    /// as several records (each synced before the next), as long as every
    /// group's own state fits one with a part's header (32 bytes). An
    /// existing log refuses to open with a
    /// lower limit than it was written with. Not given, a new log takes
    /// [`DEFAULT_MAX_RECORD_SIZE`](crate::log::wal::DEFAULT_MAX_RECORD_SIZE)
    /// and an existing log keeps its own.
    pub fn max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = Some(bytes);
        self
    }

    /// Routes every durable operation through `faults` (crash testing).
    pub fn fault_injector(mut self, faults: FaultInjector) -> Self {
        self.faults = Some(faults);
        self
    }
}

/// Counters of what a [`SharedWal`](super::SharedWal) wrote since it was
/// opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedWalStats {
    /// WAL records written (batches and checkpoints).
    pub records: u64,
    /// WAL fdatasyncs: one per flush that wrote something (one per part
    /// for a checkpoint written in parts).
    pub syncs: u64,
    /// Checkpoints written (each one record, or several parts).
    pub checkpoints: u64,
    /// Of the records, how many were parts of checkpoints too large for
    /// one record (`max_record_size`), written as several.
    pub checkpoint_parts: u64,
    /// WAL prefixes dropped after a checkpoint.
    pub compactions: u64,
    /// Checkpoints that were due (or asked for) but waited for a later
    /// flush, because some group had truncated staged entries or installed
    /// a snapshot without staging that yet, or its handle was using its
    /// state at that moment. A count that keeps growing while
    /// `checkpoints` does not means such a group never stages, and holds
    /// compaction back.
    pub checkpoints_deferred: u64,
    /// Group operations written (creations, steps, removals).
    pub operations: u64,
    /// Time spent in the WAL's fdatasync calls.
    pub sync_time: std::time::Duration,
}

/// What [`SharedWal::open`](super::SharedWal::open) found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedRecoveryReport {
    /// The directory held no log, so a fresh one was created.
    pub created: bool,
    /// WAL records replayed.
    pub records: u64,
    /// Live groups recovered.
    pub groups: u64,
    /// An incomplete last record (a crash mid-write) that was cut.
    pub torn_tail: Option<TornTail>,
    /// A creation interrupted by a crash was completed.
    pub completed_creation: bool,
    /// A compaction interrupted by a crash was completed.
    pub completed_compaction: bool,
    /// Orphaned files and directories removed (temporaries, superseded
    /// snapshots, the snapshot directories of removed groups).
    pub removed_files: Vec<PathBuf>,
}
