//! [`MemoryLog`]: an in-memory [`RaftLog`] that models durability honestly.
//!
//! It serves reads from memory like any log, and it also knows which of its
//! contents a [`sync`](RaftLog::sync) has made durable. [`MemoryLog::durable`]
//! returns what a crash right now would leave behind, so a simulator that
//! restarts nodes from it catches every missing `sync`.
//!
//! Tracking costs nothing on the steady-state path (append then sync): the
//! log keeps a watermark of durable entries, and only a truncation or a
//! snapshot install that removes *durable* entries before they are
//! superseded by a sync keeps those entries aside.
//!
//! With [`MemoryLog::with_async_writes`] it also models the asynchronous
//! storage mode (`docs/PROTOCOL.md` §5.1): each write submitted is an image
//! of the log as of its submission, and a completion reported makes that
//! image, not the log as it is now, what a crash leaves.

mod durable;
#[cfg(feature = "sim")]
mod fingerprint;

use durable::{Deferred, Synced};

use bytes::{Bytes, BytesMut};

use super::chunked::Chunked;
use super::{RaftLog, Submitted, WriteToken, entry_offsets};
use crate::error::StorageError;
use crate::membership::Membership;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta, Term};

/// An in-memory [`RaftLog`] that models durability honestly: it serves
/// reads from memory like any log, and it also knows which of its contents a
/// [`sync`](RaftLog::sync) has made durable. [`MemoryLog::durable`] returns
/// what a crash right now would leave behind, so a simulator that restarts
/// nodes from it catches every missing `sync`.
///
/// ```
/// use raft_io::{Entry, MemoryLog, RaftLog};
///
/// let mut log = MemoryLog::new();
/// log.append(&mut vec![Entry::normal(1, 1, "a".into())]).unwrap();
/// assert_eq!(log.durable().last_index(), 0, "nothing synced yet");
/// log.sync().unwrap();
/// assert_eq!(log.durable().last_index(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    identity: Option<LogIdentity>,
    hard: HardState,
    snapshot: SnapshotMeta,
    snapshot_data: Bytes,
    /// The live entries, in chunks: appends never move stored entries.
    entries: Chunked,
    receiving: Option<Receiving>,
    synced: Synced,
    /// Whether the identity or the hard state changed since the last sync.
    /// While it is false the live ones are the durable ones and
    /// `synced.identity`/`synced.hard` are stale: a change saves the
    /// durable values there first, so a sync copies nothing. (Copying
    /// the hard state just written at every sync stalled on store
    /// forwarding: docs/BENCHMARKS.md, "Store-forwarding stalls".)
    meta_changed: bool,
    /// Live entries with an index at or below `stable` are durable and
    /// unchanged since the last sync.
    stable: Index,
    /// Durable entries removed from the front of `entries` by a snapshot
    /// install that is not synced yet.
    durable_front: Vec<Entry>,
    /// Durable entries removed from the back of `entries` by a truncation
    /// that is not synced yet, in ascending order.
    durable_back: Vec<Entry>,
    dirty: bool,
    snapshot_dirty: bool,
    sync_calls: u64,
    effective_syncs: u64,
    /// The asynchronous storage mode ([`MemoryLog::with_async_writes`]).
    deferred: Option<Box<Deferred>>,
    /// How many crash images ([`MemoryLog::durable`]) this log descends
    /// from: its [`instance`](RaftLog::instance), so that a node restarted
    /// on an image refuses the completions of writes made before.
    opens: u64,
}

#[derive(Clone, Debug)]
struct Receiving {
    meta: SnapshotMeta,
    total_len: u64,
    buf: BytesMut,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log with room for `entries` entries before it allocates
    /// storage for more. (Entries are stored in fixed-size chunks, so a
    /// log that outgrows its room allocates chunks but never moves an
    /// entry it holds.)
    pub fn with_capacity(entries: usize) -> Self {
        Self { entries: Chunked::with_capacity(entries), ..Self::default() }
    }

    /// An empty log whose initial configuration (the snapshot at index 0) is
    /// `membership`, already durable.
    pub fn with_membership(membership: Membership) -> Self {
        let mut log = Self::new();
        log.snapshot.membership = membership;
        log.synced.snapshot = log.snapshot.clone();
        log
    }

    /// Whether any mutation happened since the last sync.
    pub fn has_unsynced_changes(&self) -> bool {
        self.dirty
    }

    /// How many times [`sync`](RaftLog::sync) was called.
    pub fn sync_calls(&self) -> u64 {
        self.sync_calls
    }

    /// How many calls to [`sync`](RaftLog::sync) had something to make
    /// durable.
    pub fn effective_syncs(&self) -> u64 {
        self.effective_syncs
    }

    /// Number of entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn offset(&self, index: Index) -> usize {
        (index - self.snapshot.index - 1) as usize
    }

    /// Moves the first `drop` live entries out of the log, keeping aside
    /// those a crash would still find.
    fn move_prefix_aside(&mut self, drop: usize) {
        // Emptied chunks are freed from the front; `durable_front` keeps its
        // capacity across syncs.
        let (stable, front) = (self.stable, &mut self.durable_front);
        self.entries.drain_front(drop, |e| {
            let durable = e.index <= stable;
            if durable {
                front.push(e);
            }
            durable
        });
    }

    /// Moves live entries that are durable out of `removed` into `to`.
    fn keep_durable(stable: Index, removed: impl Iterator<Item = Entry>, to: &mut Vec<Entry>) {
        to.extend(removed.take_while(|e| e.index <= stable));
    }
}

impl RaftLog for MemoryLog {
    fn identity(&self) -> Option<LogIdentity> {
        self.identity
    }

    fn set_identity(&mut self, identity: LogIdentity) -> Result<(), StorageError> {
        self.save_durable_meta();
        self.identity = Some(identity);
        self.dirty = true;
        Ok(())
    }

    #[inline]
    fn hard_state(&self) -> HardState {
        self.hard
    }

    #[inline]
    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        if state != self.hard {
            self.save_durable_meta();
            self.hard = state;
            self.dirty = true;
        }
        Ok(())
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    #[inline]
    fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    #[inline]
    fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index {
            return None;
        }
        self.entries.get(self.offset(index)).map(|e| e.term)
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snapshot.index, self.last_index())?;
        self.entries.clone_into(range, max_bytes, out);
        Ok(())
    }

    #[inline]
    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snapshot.index, self.last_index())?;
        self.entries.visit(range, f);
        Ok(())
    }

    #[inline]
    fn entry_run(&self, lo: Index, hi: Index) -> Option<&[Entry]> {
        self.entries.tail_run(self.snapshot.index, lo, hi)
    }

    #[inline]
    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        for (expected, e) in (self.last_index() + 1..).zip(entries.iter()) {
            if e.index != expected {
                return Err(misplaced(e.index, expected));
            }
        }
        if !entries.is_empty() {
            self.dirty = true;
        }
        self.entries.append(entries);
        Ok(())
    }

    #[inline]
    fn append_one(&mut self, entry: Entry, _spare: &mut Vec<Entry>) -> Result<(), StorageError> {
        // Taken apart and rebuilt at the store, after the only call (see
        // `Chunked::reserve_one`).
        let Entry { term, index, kind, data } = entry;
        let expected = self.last_index() + 1;
        if index != expected {
            return Err(misplaced(index, expected));
        }
        self.dirty = true;
        self.entries.reserve_one();
        self.entries.push_reserved(Entry { term, index, kind, data });
        Ok(())
    }

    fn truncate(&mut self, from: Index) -> Result<(), StorageError> {
        if from <= self.snapshot.index {
            return Err(StorageError::InvalidWrite(format!(
                "truncate from {from} at or below the snapshot index {}",
                self.snapshot.index
            )));
        }
        if from > self.last_index() {
            return Ok(());
        }
        let at = self.offset(from);
        let removed = self.entries.split_off(at);
        if from <= self.stable {
            let mut back = Vec::with_capacity(removed.len() + self.durable_back.len());
            Self::keep_durable(self.stable, removed.into_iter(), &mut back);
            back.append(&mut self.durable_back);
            self.durable_back = back;
            self.stable = from - 1;
        }
        self.dirty = true;
        Ok(())
    }

    fn snapshot_data(&self) -> Result<Bytes, StorageError> {
        Ok(self.snapshot_data.clone())
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) -> Result<(), StorageError> {
        if meta.index < self.snapshot.index {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot at {} is older than the current one at {}",
                meta.index, self.snapshot.index
            )));
        }
        let keep_suffix = self.term(meta.index) == Some(meta.term);
        let drop = if keep_suffix { self.offset(meta.index + 1).min(self.entries.len()) } else { self.entries.len() };
        // Split without cloning: the compacted prefix moves out whole (and a
        // snapshot that removes nothing leaves the vector alone).
        if drop > 0 {
            self.move_prefix_aside(drop);
        }
        if !keep_suffix {
            // Everything live is gone; new entries will follow meta.index.
            self.stable = self.stable.min(meta.index);
        }
        self.snapshot = meta;
        self.snapshot_data = data;
        self.dirty = true;
        self.snapshot_dirty = true;
        Ok(())
    }

    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, total_len: u64) -> Result<(), StorageError> {
        self.receiving = Some(Receiving { meta: meta.clone(), total_len, buf: BytesMut::new() });
        Ok(())
    }

    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let Some(r) = self.receiving.as_mut() else {
            return Err(StorageError::InvalidWrite("no snapshot is being received".into()));
        };
        if offset != r.buf.len() as u64 || offset + data.len() as u64 > r.total_len {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot chunk at {offset} (+{}) does not follow {} of {}",
                data.len(),
                r.buf.len(),
                r.total_len
            )));
        }
        r.buf.extend_from_slice(data);
        Ok(())
    }

    fn abort_snapshot_receive(&mut self) -> Result<(), StorageError> {
        self.receiving = None;
        Ok(())
    }

    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let Some(r) = self.receiving.take() else {
            return Err(StorageError::InvalidWrite("no snapshot is being received".into()));
        };
        if r.buf.len() as u64 != r.total_len {
            return Err(StorageError::InvalidWrite(format!(
                "snapshot incomplete: {} of {} bytes",
                r.buf.len(),
                r.total_len
            )));
        }
        self.install_snapshot(r.meta, r.buf.freeze())
    }

    #[inline(always)]
    fn sync(&mut self) -> Result<(), StorageError> {
        self.sync_calls += 1;
        if self.dirty {
            self.make_durable();
        }
        if self.deferred.is_some() {
            // Everything is durable now, writes in flight included.
            let durable = self.synced_image();
            if let Some(d) = &mut self.deferred {
                d.pending.clear();
                d.durable = durable;
            }
        }
        Ok(())
    }

    fn submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        if self.deferred.is_none() {
            self.sync()?;
            return Ok(Submitted::Durable);
        }
        let image = self.write_image();
        if let Some(d) = &mut self.deferred {
            d.pending.push_back((token, image));
        }
        Ok(Submitted::Pending)
    }

    /// The number of crash images this log descends from
    /// ([`MemoryLog::durable`]): a node restarted on one draws another
    /// write epoch, so a completion from before the crash is refused.
    fn instance(&self) -> u64 {
        self.opens
    }

    fn persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        if let Some(d) = &mut self.deferred {
            while d.pending.front().is_some_and(|(t, _)| t.seq() <= token.seq()) {
                if let Some((_, image)) = d.pending.pop_front() {
                    d.durable = image;
                }
            }
        }
        Ok(())
    }
}

/// The refusal of an append whose entry at `index` is not where it goes.
#[cold]
fn misplaced(index: Index, expected: Index) -> StorageError {
    StorageError::InvalidWrite(format!("append of index {index} where {expected} was expected"))
}

#[cfg(test)]
mod tests;
