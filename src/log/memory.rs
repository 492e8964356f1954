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

#[cfg(feature = "sim")]
mod fingerprint;

use bytes::{Bytes, BytesMut};

use super::chunked::Chunked;
use super::{RaftLog, entry_offsets};
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
}

#[derive(Clone, Debug, Default)]
struct Synced {
    identity: Option<LogIdentity>,
    hard: HardState,
    snapshot: SnapshotMeta,
    snapshot_data: Bytes,
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

    /// What a crash right now would leave: the state as of the last
    /// successful [`sync`](RaftLog::sync).
    pub fn durable(&self) -> MemoryLog {
        let s = &self.synced;
        let mut entries: Vec<Entry> = self.durable_front.clone();
        entries.extend(self.entries.iter().take_while(|e| e.index <= self.stable).cloned());
        entries.extend(self.durable_back.iter().cloned());
        debug_assert!(entries.first().is_none_or(|e| e.index == s.snapshot.index + 1));
        let stable = entries.last().map_or(s.snapshot.index, |e| e.index);
        let mut stored = Chunked::default();
        stored.append(&mut entries);
        MemoryLog {
            identity: s.identity,
            hard: s.hard,
            snapshot: s.snapshot.clone(),
            snapshot_data: s.snapshot_data.clone(),
            entries: stored,
            receiving: None,
            synced: s.clone(),
            stable,
            durable_front: Vec::new(),
            durable_back: Vec::new(),
            dirty: false,
            snapshot_dirty: false,
            sync_calls: 0,
            effective_syncs: 0,
        }
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
        self.identity = Some(identity);
        self.dirty = true;
        Ok(())
    }

    fn hard_state(&self) -> HardState {
        self.hard
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<(), StorageError> {
        if state != self.hard {
            self.hard = state;
            self.dirty = true;
        }
        Ok(())
    }

    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

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

    fn visit_entries(&self, lo: Index, hi: Index, f: &mut dyn FnMut(&[Entry])) -> Result<(), StorageError> {
        let range = entry_offsets(lo, hi, self.snapshot.index, self.last_index())?;
        self.entries.visit(range, f);
        Ok(())
    }

    fn append(&mut self, entries: &mut Vec<Entry>) -> Result<(), StorageError> {
        for (expected, e) in (self.last_index() + 1..).zip(entries.iter()) {
            if e.index != expected {
                return Err(StorageError::InvalidWrite(format!(
                    "append of index {} where {expected} was expected",
                    e.index
                )));
            }
        }
        if !entries.is_empty() {
            self.dirty = true;
        }
        self.entries.append(entries);
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

    fn sync(&mut self) -> Result<(), StorageError> {
        self.sync_calls += 1;
        if !self.dirty {
            return Ok(());
        }
        self.effective_syncs += 1;
        self.synced.identity = self.identity;
        self.synced.hard = self.hard;
        if self.snapshot_dirty {
            self.synced.snapshot = self.snapshot.clone();
            self.synced.snapshot_data = self.snapshot_data.clone();
            self.snapshot_dirty = false;
        }
        self.stable = self.last_index();
        self.durable_front.clear();
        self.durable_back.clear();
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::conformance;
    use proptest::prelude::*;

    #[test]
    fn conforms_to_the_raft_log_contract() {
        conformance::run_all(MemoryLog::new);
    }

    fn e(term: Term, index: Index) -> Entry {
        Entry::normal(term, index, Bytes::from(format!("{term}/{index}")))
    }

    #[test]
    fn unsynced_truncation_is_undone_by_a_crash() {
        let mut log = MemoryLog::new();
        log.append(&mut (1..=5).map(|i| e(1, i)).collect()).unwrap();
        log.sync().unwrap();
        log.truncate(3).unwrap();
        log.append(&mut vec![e(2, 3)]).unwrap();
        let d = log.durable();
        assert_eq!(d.last_index(), 5);
        assert_eq!(d.term(3), Some(1));
        log.sync().unwrap();
        let d = log.durable();
        assert_eq!(d.last_index(), 3);
        assert_eq!(d.term(3), Some(2));
    }

    #[test]
    fn sync_counters() {
        let mut log = MemoryLog::new();
        log.sync().unwrap();
        assert_eq!((log.sync_calls(), log.effective_syncs()), (1, 0));
        log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
        assert!(log.has_unsynced_changes());
        log.sync().unwrap();
        assert_eq!((log.sync_calls(), log.effective_syncs()), (2, 1));
        log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
        assert!(!log.has_unsynced_changes(), "setting the same hard state changes nothing");
    }

    /// A naive model: the whole state copied at every sync.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Image {
        hard: HardState,
        snapshot: (Index, Term),
        entries: Vec<(Index, Term)>,
    }

    fn image(log: &MemoryLog) -> Image {
        Image {
            hard: log.hard_state(),
            snapshot: (log.snapshot_meta().index, log.snapshot_meta().term),
            entries: log.entries.iter().map(|e| (e.index, e.term)).collect(),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append(u8, Term),
        Truncate(u8),
        Snapshot(u8, bool),
        Hard(Term),
        Sync,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u8..6, 1u64..5).prop_map(|(n, t)| Op::Append(n, t)),
            (0u8..10).prop_map(Op::Truncate),
            (0u8..12, any::<bool>()).prop_map(|(i, m)| Op::Snapshot(i, m)),
            (1u64..9).prop_map(Op::Hard),
            Just(Op::Sync),
        ]
    }

    proptest! {
        /// Whatever the sequence of writes, `durable()` equals the state as of
        /// the last sync.
        #[test]
        fn durable_matches_a_copy_taken_at_sync(ops in proptest::collection::vec(op(), 1..60)) {
            let mut log = MemoryLog::new();
            let mut model = Image::default();
            for op in ops {
                match op {
                    Op::Append(n, t) => {
                        let last = log.last_index();
                        let term = log.term(last).unwrap_or(0).max(t);
                        let mut es: Vec<Entry> = (1..=n as u64).map(|k| e(term, last + k)).collect();
                        log.append(&mut es).unwrap();
                    }
                    Op::Truncate(back) => {
                        let from = log.last_index().saturating_sub(back as u64).max(log.snapshot_meta().index + 1);
                        log.truncate(from).unwrap();
                    }
                    Op::Snapshot(ahead, matching) => {
                        let index = log.snapshot_meta().index + ahead as u64;
                        let term = if matching { log.term(index).unwrap_or(9) } else { 9 };
                        let meta = SnapshotMeta { index, term, membership: Membership::empty() };
                        log.install_snapshot(meta, Bytes::from_static(b"s")).unwrap();
                    }
                    Op::Hard(t) => log.set_hard_state(HardState { term: t, vote: None, commit: 0 }).unwrap(),
                    Op::Sync => {
                        log.sync().unwrap();
                        model = image(&log);
                    }
                }
                prop_assert_eq!(image(&log.durable()), model.clone());
            }
        }
    }
}
