//! The replicated log's storage: the [`RaftLog`] trait, the in-memory
//! [`MemoryLog`] and, with feature `persistence`, the durable `WalLog` and
//! the shared WAL of many groups (`shared::SharedWal`).
//!
//! A [`RaftNode`](crate::RaftNode) owns its log. Within one `step` it reads
//! and mutates the log through this trait, then calls [`RaftLog::sync`] at
//! most once, before it returns any action that depends on the mutations.
//! An implementation may therefore buffer every write of a step and make them
//! durable together in `sync` (that is how `WalLog` writes one record per
//! step).
//!
//! In the asynchronous storage mode ([`RaftConfig::async_storage`]) the node
//! calls [`RaftLog::submit`] instead of `sync`: the log starts making the
//! step's mutations durable and returns at once, and the embedder reports
//! completion with [`Event::Persisted`] (`docs/PROTOCOL.md` §5.1).
//!
//! [`RaftConfig::async_storage`]: crate::RaftConfig::async_storage
//! [`Event::Persisted`]: crate::Event::Persisted

mod chunked;
mod memory;
#[cfg(feature = "persistence")]
pub mod shared;
mod submit;
#[cfg(feature = "persistence")]
pub mod wal;

#[cfg(test)]
pub(crate) mod conformance;

pub use memory::MemoryLog;
pub use submit::{Submitted, WriteToken};
#[cfg(feature = "persistence")]
pub use wal::{WalLog, WalOptions};

use std::ops::Range;

use bytes::Bytes;

use crate::error::StorageError;
use crate::membership::Membership;
use crate::types::{Entry, EntryKind, HardState, Index, LogIdentity, SnapshotMeta, Term};

/// Storage for a node's durable state: hard state, log entries, the latest
/// snapshot, and who the log belongs to.
///
/// # Contract
///
/// * The log holds the entries `first_index()..=last_index()`; everything
///   before is covered by the snapshot described by [`snapshot_meta`]
///   (index 0 and term 0 when there is none). `term(snapshot index)` is the
///   snapshot's term.
/// * Mutating methods may be buffered; they must become durable, atomically
///   and in order, no later than the next successful [`sync`]. After a crash
///   the log must come back as of some successful `sync` (or later), never
///   with a synced mutation missing.
/// * Reads always see every mutation made so far, synced or not.
/// * A failed write or sync is fatal to the node: it halts and the embedder
///   reopens the log.
///
/// [`snapshot_meta`]: RaftLog::snapshot_meta
/// [`sync`]: RaftLog::sync
pub trait RaftLog {
    /// The cluster and node this log belongs to, once recorded.
    fn identity(&self) -> Option<LogIdentity>;

    /// Records the owner of a fresh log. Called once, on an empty log.
    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError>;

    /// The hard state as last set.
    fn hard_state(&self) -> HardState;

    /// Replaces the hard state.
    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError>;

    /// The latest snapshot's metadata (index 0 and the bootstrap or empty
    /// membership when there is no snapshot).
    fn snapshot_meta(&self) -> &SnapshotMeta;

    /// Index of the first entry held (the snapshot index + 1).
    fn first_index(&self) -> Index {
        self.snapshot_meta().index + 1
    }

    /// Index of the last entry held, or the snapshot index when no entry is.
    fn last_index(&self) -> Index;

    /// Term of the entry at `index`: `Some` for the snapshot index and every
    /// held entry, `None` otherwise.
    fn term(&self, index: Index) -> Option<Term>;

    /// Appends clones of the entries `lo..hi` to `out`, stopping early before
    /// an entry that would take their total [`Entry::size`] past `max_bytes`
    /// (but always at least one entry when `lo < hi`).
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError>;

    /// Hands the entries `lo..hi` to `f` by reference, in order, as one or
    /// more contiguous slices (none when `lo >= hi`), with the checks of
    /// [`entries`](RaftLog::entries): what [`RaftNode::visit_applied`]
    /// reads. The default clones them through `entries`; a log that holds
    /// its entries in memory overrides it to lend them without a clone
    /// (every log of this crate does).
    ///
    /// [`RaftNode::visit_applied`]: crate::RaftNode::visit_applied
    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        let mut out = Vec::new();
        self.entries(lo, hi, u64::MAX, &mut out)?;
        if !out.is_empty() {
            f(&out);
        }
        Ok(())
    }

    /// The entries `lo..hi` as one slice borrowed from the log, when it
    /// holds them all, stored one after another (`lo < hi`). `None` says
    /// only that there is no such slice: the entries may be stored apart,
    /// or not be readable, and [`visit_entries`](RaftLog::visit_entries)
    /// then lends them or says why not. A fast path for a short run near
    /// the log's end (what [`RaftNode::visit_applied`] reads after most
    /// steps); the default has none.
    ///
    /// [`RaftNode::visit_applied`]: crate::RaftNode::visit_applied
    #[inline]
    fn entry_run(&self, lo: Index, hi: Index) -> Option<&[Entry]> {
        let _ = (lo, hi);
        None
    }

    /// Appends all of `entries`, draining the vector (its capacity is kept
    /// for reuse). The first entry's index is `last_index() + 1`.
    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError>;

    /// Appends one entry, whose index is `last_index() + 1`: what
    /// [`append`](Self::append) does with a vector holding it. `spare` is an
    /// empty vector the default uses for that (so it does not allocate);
    /// a log that can store one entry directly overrides this to skip
    /// the vector ([`MemoryLog`] does: a node proposing one command at a
    /// time appends it this way).
    #[inline]
    fn append_one(&mut self, entry: Entry, spare: &mut Vec<Entry>) -> Result<(), StorageError> {
        debug_assert!(spare.is_empty());
        spare.push(entry);
        let result = self.append(spare);
        spare.clear();
        result
    }

    /// Removes the entries with index `from` and above. `from` is above the
    /// snapshot index.
    fn truncate(&mut self, from: Index) -> Result<(), StorageError>;

    /// The latest snapshot's data (empty when there is none).
    fn snapshot_data(&self) -> Result<Bytes, StorageError>;

    /// The size in bytes of the latest snapshot's data. The default reads
    /// [`snapshot_data`](RaftLog::snapshot_data); a log that keeps snapshots
    /// in files should answer without reading them.
    fn snapshot_len(&self) -> Result<u64, StorageError> {
        Ok(self.snapshot_data()?.len() as u64)
    }

    /// Up to `max_len` bytes of the latest snapshot's data from `offset`, for
    /// streaming it to a follower. The default slices
    /// [`snapshot_data`](RaftLog::snapshot_data).
    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> Result<Bytes, StorageError> {
        Ok(chunk_of(&self.snapshot_data()?, offset, max_len))
    }

    /// Makes `data` the latest snapshot, covering `1..=meta.index`. Entries
    /// after `meta.index` are kept when the log holds the entry at
    /// `meta.index` with `meta.term`; otherwise every entry is dropped. The
    /// hard state is not changed.
    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError>;

    /// Starts receiving a snapshot of `total_len` bytes from a leader,
    /// discarding any partially received one. Chunks arrive in order through
    /// [`receive_snapshot_chunk`](RaftLog::receive_snapshot_chunk).
    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError>;

    /// Stores the next chunk of the snapshot being received, at `offset`
    /// (always the number of bytes received so far).
    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError>;

    /// Completes the snapshot being received and installs it exactly as
    /// [`install_snapshot`](RaftLog::install_snapshot) would.
    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError>;

    /// Gives up the snapshot being received, if any: its stream can no
    /// longer finish (the node's commit index passed the snapshot's, or the
    /// stream belongs to an older term's leader). A log that keeps the
    /// received bytes releases them here; nothing else changes, and the
    /// next [`begin_snapshot_receive`](RaftLog::begin_snapshot_receive)
    /// starts afresh as always. The default does nothing (a log whose
    /// partial receive costs nothing to keep).
    fn abort_snapshot_receive(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Makes every mutation so far durable.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Asynchronous storage mode: starts making every mutation so far
    /// durable as the write `token`, and returns without waiting for it.
    ///
    /// Writes become durable in the order they were submitted, each
    /// atomically (a crash leaves the log as of some completed write, or
    /// later, never with a completed write missing). A log that answers
    /// [`Submitted::Pending`] must later tell the embedder that the write is
    /// durable (or failed), however it chooses (`WalLog` calls a
    /// notifier from its storage thread); the embedder passes that to the
    /// node as [`Event::Persisted`](crate::Event::Persisted), and the node
    /// then calls [`persisted`](Self::persisted). Reads keep seeing every
    /// mutation at once, durable or not.
    ///
    /// The default syncs and answers [`Submitted::Durable`], so every log
    /// works in the asynchronous mode, without its benefit.
    fn submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        let _ = token;
        self.sync()?;
        Ok(Submitted::Durable)
    }

    /// Asynchronous storage mode, for a driver that learns completions from
    /// the log (the threaded runtime does): asks the log to call `notify`
    /// with the latest durable token whenever writes become durable, from
    /// any thread. Returns `Ok(false)` when the log does not (the default):
    /// the driver then reports each token itself, once per turn, and the
    /// log makes the writes durable in [`persisted`](Self::persisted).
    /// `WalLog` defers its syncs to the driver's reports and returns
    /// `Ok(false)` (one sync per driver turn, after the turn's messages
    /// left), or, opened with `WalOptions::sync_thread(true)`, starts its
    /// sync thread and returns `Ok(true)`.
    fn notify_completions(&mut self, notify: Box<dyn Fn(WriteToken) + Send + 'static>) -> Result<bool, StorageError> {
        let _ = notify;
        Ok(false)
    }

    /// A number that differs between two opens of the same durable log (a
    /// value drawn at open, or a count of opens), mixed into the
    /// [`WriteToken`]s of the node running on it so that a completion
    /// reported for a write made before a restart is refused, and into the
    /// ids of the reads a follower forwards, so that a late answer from
    /// before a restart is refused too. A log should override it: on a
    /// restart (a log that records an owner) answering the default, 0,
    /// the asynchronous mode is refused and the node forwards no read,
    /// because two runs can recover the same state and would draw the same
    /// tokens and ids (`docs/PROTOCOL.md` §5.1 and §8.3).
    fn instance(&self) -> u64 {
        0
    }

    /// Asynchronous storage mode: the embedder reported the write `token`
    /// (and every earlier one) durable. The log does what waits for
    /// durability (`WalLog` drops the WAL prefix behind a durable
    /// checkpoint) and returns the write's error if it failed: the node then
    /// halts as after a failed [`sync`](Self::sync). The node calls this
    /// once per reported token, in increasing order, and only for tokens it
    /// submitted and has not seen reported. The default does nothing.
    fn persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        let _ = token;
        Ok(())
    }

    /// The most entry bytes (summed [`Entry::size`]) one sync may make
    /// durable: a log that writes each sync's mutations as one record of
    /// bounded size says how much fits (the default: no limit).
    ///
    /// The node never appends more than this in one step. It refuses a
    /// proposal batch that would not fit with [`Error::BatchTooLarge`]
    /// (nothing appended), a follower accepts only the prefix of an
    /// AppendEntries that fits (the leader sends the rest next), and
    /// [`RaftNode::with_log`] refuses a configuration whose
    /// `max_message_bytes` could not fit.
    ///
    /// [`Error::BatchTooLarge`]: crate::Error::BatchTooLarge
    /// [`RaftNode::with_log`]: crate::RaftNode::with_log
    fn max_step_bytes(&self) -> u64 {
        u64::MAX
    }

    /// Total time spent making writes durable, for a log that measures it
    /// (`WalLog` times its fdatasync calls). Reported in
    /// [`NodeMetrics::log_sync_time`](crate::NodeMetrics::log_sync_time); the
    /// node itself never reads a clock. The default: not measured.
    fn sync_time(&self) -> Option<std::time::Duration> {
        None
    }

    /// How many times the log made writes durable (fsyncs), for a log that
    /// counts them (`WalLog` does, its sync thread's included). Reported in
    /// [`NodeMetrics::log_fsyncs`](crate::NodeMetrics::log_fsyncs). The
    /// default: not counted.
    fn fsyncs(&self) -> Option<u64> {
        None
    }
}

/// Hands each configuration entry of `log`'s live entries to `f`, in
/// order, reading them by reference in batches of bounded size (the
/// trait's default `visit_entries` clones each batch); stops at the first
/// error `f` returns. What a node's configuration history is rebuilt from,
/// and what `recovery::inspect` reports.
pub(crate) fn visit_configurations<L: RaftLog + ?Sized, E: From<StorageError>>(
    log: &L,
    mut f: impl FnMut(&Entry) -> Result<(), E>,
) -> Result<(), E> {
    const BATCH: Index = 4096;
    let (mut lo, last) = (log.first_index(), log.last_index());
    let mut failed = None;
    while lo <= last && failed.is_none() {
        let hi = (last + 1).min(lo + BATCH);
        log.visit_entries(lo, hi, &mut |entries: &[Entry]| {
            for e in entries.iter().filter(|e| e.kind == crate::types::EntryKind::Config) {
                if failed.is_none() {
                    failed = f(e).err();
                }
            }
        })?;
        lo = hi;
    }
    failed.map_or(Ok(()), Err)
}

/// Whether `log` holds any state besides its owner: an entry, a snapshot
/// or a hard state. A log with none is new (what a node initializes, and
/// what `recovery::seed` writes into).
pub(crate) fn holds_state<L: RaftLog + ?Sized>(log: &L) -> bool {
    log.last_index() != 0 || log.snapshot_meta().index != 0 || log.hard_state() != crate::types::HardState::default()
}

/// Up to `max_len` bytes of `data` from `offset`: a
/// [`snapshot_chunk`](RaftLog::snapshot_chunk) of snapshot data in memory.
pub(crate) fn chunk_of(data: &Bytes, offset: u64, max_len: u64) -> Bytes {
    let start = offset.min(data.len() as u64) as usize;
    let end = offset.saturating_add(max_len).min(data.len() as u64) as usize;
    data.slice(start..end)
}

/// The checks of [`RaftLog::entries`] for a log that holds the entries
/// after `snapshot_index` up to `last`, in order from offset 0: the offsets
/// of `lo..hi` (empty when `lo >= hi`), or why they cannot be read.
pub(crate) fn entry_offsets(
    lo: Index,
    hi: Index,
    snapshot_index: Index,
    last: Index,
) -> Result<Range<usize>, StorageError> {
    if lo >= hi {
        return Ok(0..0);
    }
    if lo <= snapshot_index {
        return Err(StorageError::Compacted { index: lo, first: snapshot_index + 1 });
    }
    if hi > last + 1 {
        return Err(StorageError::Unavailable { index: hi - 1, last });
    }
    Ok((lo - snapshot_index - 1) as usize..(hi - snapshot_index - 1) as usize)
}

/// Checks that `entries` can follow the entry at `prev_index` in
/// `prev_term`: indexes one after another from `prev_index + 1`, terms from
/// 1 to `max_term` that never go below `prev_term` nor decrease, and
/// configuration entries that decode. The one rule for entries from
/// outside: an AppendEntries from a peer and a backup's.
#[inline]
pub(crate) fn check_run(
    prev_index: Index,
    prev_term: Term,
    max_term: Term,
    entries: &[Entry],
) -> Result<(), &'static str> {
    let (mut expect_index, mut min_term) = (prev_index, prev_term);
    for e in entries {
        expect_index = expect_index.checked_add(1).ok_or("an entry's index overflows")?;
        if e.index != expect_index {
            return Err("the entries do not follow one another without a gap");
        }
        if e.term == 0 || e.term < min_term || e.term > max_term {
            return Err("an entry's term is 0, too high, or below the one before");
        }
        if e.kind == EntryKind::Config && Membership::decode(&e.data).is_err() {
            return Err("a configuration entry does not decode");
        }
        min_term = e.term;
    }
    Ok(())
}

/// Appends clones of the first entries of `run` that [`RaftLog::entries`]
/// returns under `max_bytes` (see [`fitting`]) to `out`.
#[inline]
pub(crate) fn clone_fitting(run: &[Entry], max_bytes: u64, out: &mut Vec<Entry>) {
    // One entry (an append at batch 1) always fits: pushed without the
    // slice copy's loop (W2: 86 fewer instructions per entry).
    if let [one] = run {
        out.push(one.clone());
        return;
    }
    out.extend_from_slice(&run[..fitting(run.iter(), max_bytes)]);
}

/// How many of `range` (the entries `lo..hi`) [`RaftLog::entries`] returns
/// under `max_bytes`: as many as fit, but at least one.
pub(crate) fn fitting<'a>(mut range: impl ExactSizeIterator<Item = &'a Entry>, max_bytes: u64) -> usize {
    let len = range.len();
    // At least one: a single entry is returned whatever its size.
    if max_bytes == u64::MAX || len <= 1 {
        return len;
    }
    let mut bytes = 0u64;
    range
        .position(|e| {
            bytes = bytes.saturating_add(e.size());
            bytes > max_bytes
        })
        .map_or(len, |cut| cut.max(1))
}
