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

#[cfg(feature = "sim")]
mod fingerprint;

use std::collections::VecDeque;

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
}

/// The asynchronous mode's durability: what each write in flight will make
/// durable (the log as of its submission, synced), oldest first, and what
/// is durable now. Neither image is itself in the mode.
#[derive(Clone, Debug)]
struct Deferred {
    pending: VecDeque<(WriteToken, MemoryLog)>,
    durable: MemoryLog,
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

    /// Switches the asynchronous storage mode on (`docs/PROTOCOL.md` §5.1;
    /// for a node whose configuration has
    /// [`async_storage`](crate::RaftConfig::async_storage) on): a
    /// [`submit`](RaftLog::submit) answers [`Submitted::Pending`] and makes
    /// nothing durable; the write becomes durable when the node is told of
    /// it ([`Event::Persisted`](crate::Event::Persisted), which calls
    /// [`persisted`](RaftLog::persisted)), and then exactly as it was
    /// submitted, whatever the log did since. A crash
    /// ([`durable`](Self::durable)) loses every write not reported. The
    /// embedder reports the writes in flight ([`pending_writes`](Self::pending_writes))
    /// when it chooses, as a disk would finish them: this is how the
    /// simulator and the model checker explore the mode. Already durable:
    /// whatever the last [`sync`](RaftLog::sync) made durable. Calling it on
    /// a log already in the mode changes nothing.
    ///
    /// ```
    /// use raft_io::{Entry, MemoryLog, RaftLog, Submitted, WriteToken};
    ///
    /// let mut log = MemoryLog::new().with_async_writes();
    /// log.append(&mut vec![Entry::normal(1, 1, "a".into())]).unwrap();
    /// let write = WriteToken::new(0, 1);
    /// assert_eq!(log.submit(write).unwrap(), Submitted::Pending);
    /// log.append(&mut vec![Entry::normal(1, 2, "b".into())]).unwrap();
    /// assert_eq!(log.durable().last_index(), 0, "not reported yet");
    /// assert_eq!(log.pending_writes().collect::<Vec<_>>(), [write]);
    /// log.persisted(write).unwrap();
    /// assert_eq!(log.durable().last_index(), 1, "the write as submitted");
    /// ```
    pub fn with_async_writes(mut self) -> Self {
        if self.deferred.is_none() {
            let durable = self.synced_image();
            self.deferred = Some(Box::new(Deferred { pending: VecDeque::new(), durable }));
        }
        self
    }

    /// Whether the log is in the asynchronous storage mode
    /// ([`with_async_writes`](Self::with_async_writes)).
    pub fn is_async(&self) -> bool {
        self.deferred.is_some()
    }

    /// The writes submitted and not yet reported durable, oldest first
    /// (none outside the asynchronous mode).
    pub fn pending_writes(&self) -> impl Iterator<Item = WriteToken> + '_ {
        self.deferred.iter().flat_map(|d| d.pending.iter().map(|(token, _)| *token))
    }

    /// What a crash right now would leave: the state as of the last
    /// successful [`sync`](RaftLog::sync) (in the asynchronous mode: as of
    /// the last write reported durable, or a later sync), as a log in the
    /// same mode.
    pub fn durable(&self) -> MemoryLog {
        match &self.deferred {
            Some(d) => d.durable.clone().with_async_writes(),
            None => self.synced_image(),
        }
    }

    /// The state as of the last successful sync, as a log out of the
    /// asynchronous mode.
    fn synced_image(&self) -> MemoryLog {
        let mut s = self.synced.clone();
        if !self.meta_changed {
            (s.identity, s.hard) = (self.identity, self.hard);
        }
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
            meta_changed: false,
            entries: stored,
            receiving: None,
            synced: s,
            stable,
            durable_front: Vec::new(),
            durable_back: Vec::new(),
            dirty: false,
            snapshot_dirty: false,
            sync_calls: 0,
            effective_syncs: 0,
            deferred: None,
        }
    }

    /// What an effective sync does: the state as it is now becomes the
    /// durable one.
    #[inline]
    fn make_durable(&mut self) {
        self.effective_syncs += 1;
        self.meta_changed = false;
        if self.snapshot_dirty {
            self.synced.snapshot = self.snapshot.clone();
            self.synced.snapshot_data = self.snapshot_data.clone();
            self.snapshot_dirty = false;
        }
        self.stable = self.last_index();
        self.durable_front.clear();
        self.durable_back.clear();
        self.dirty = false;
    }

    /// Before the first change of the identity or hard state since the
    /// last sync: keeps the durable ones (`meta_changed`).
    #[inline]
    fn save_durable_meta(&mut self) {
        if !self.meta_changed {
            self.synced.identity = self.identity;
            self.synced.hard = self.hard;
            self.meta_changed = true;
        }
    }

    /// The log as it is now, synced and out of the asynchronous mode: what
    /// a write submitted now makes durable.
    fn write_image(&mut self) -> MemoryLog {
        let deferred = self.deferred.take();
        let mut image = self.clone();
        self.deferred = deferred;
        image.make_durable();
        image
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

    #[inline]
    fn append_one(&mut self, entry: Entry, _spare: &mut Vec<Entry>) -> Result<(), StorageError> {
        // Taken apart and rebuilt at the store, after the only call (see
        // `Chunked::reserve_one`).
        let Entry { term, index, kind, data } = entry;
        if index != self.last_index() + 1 {
            return Err(StorageError::InvalidWrite(format!(
                "append of index {index} where {} was expected",
                self.last_index() + 1
            )));
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
                let sync = matches!(op, Op::Sync);
                apply(&mut log, op);
                if sync {
                    model = image(&log);
                }
                prop_assert_eq!(image(&log.durable()), model.clone());
            }
        }

        /// The asynchronous mode: a submitted write makes durable exactly
        /// the log as it was at its submission, once reported (completions
        /// are cumulative); a sync makes everything durable; a crash keeps
        /// the durable image, still in the mode, with nothing in flight.
        #[test]
        fn async_writes_make_their_submitted_image_durable(
            ops in proptest::collection::vec(async_op(), 1..60)
        ) {
            let mut log = MemoryLog::new().with_async_writes();
            let mut durable = Image::default();
            let mut pending: Vec<(WriteToken, Image)> = Vec::new();
            let mut seq = 0;
            for op in ops {
                match op {
                    AsyncOp::Log(Op::Sync) => {
                        log.sync().unwrap();
                        durable = image(&log);
                        pending.clear();
                    }
                    AsyncOp::Log(op) => apply(&mut log, op),
                    AsyncOp::Submit => {
                        seq += 1;
                        let token = WriteToken::new(7, seq);
                        prop_assert_eq!(log.submit(token).unwrap(), Submitted::Pending);
                        pending.push((token, image(&log)));
                    }
                    AsyncOp::Report(k) => {
                        if let Some(&(token, _)) = pending.get(k as usize) {
                            log.persisted(token).unwrap();
                            durable = pending[k as usize].1.clone();
                            pending.drain(..=k as usize);
                        }
                    }
                    AsyncOp::Crash => {
                        log = log.durable();
                        prop_assert!(log.is_async());
                        pending.clear();
                    }
                }
                prop_assert_eq!(image(&log.durable()), durable.clone());
                let tokens: Vec<WriteToken> = pending.iter().map(|(t, _)| *t).collect();
                prop_assert_eq!(log.pending_writes().collect::<Vec<_>>(), tokens);
            }
        }
    }

    #[derive(Clone, Debug)]
    enum AsyncOp {
        Log(Op),
        Submit,
        /// Report the `k`-th write in flight (and so every earlier one).
        Report(u8),
        Crash,
    }

    fn async_op() -> impl Strategy<Value = AsyncOp> {
        prop_oneof![
            5 => op().prop_map(AsyncOp::Log),
            3 => Just(AsyncOp::Submit),
            3 => (0u8..3).prop_map(AsyncOp::Report),
            1 => Just(AsyncOp::Crash),
        ]
    }

    /// Carries out one mutation of [`Op`] (not `Sync`) on `log`.
    fn apply(log: &mut MemoryLog, op: Op) {
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
            Op::Sync => log.sync().unwrap(),
        }
    }

    #[cfg(feature = "sim")]
    #[test]
    fn async_mode_fingerprints_tell_writes_in_flight_apart() {
        let mut a = MemoryLog::new().with_async_writes();
        a.append(&mut vec![e(1, 1)]).unwrap();
        let mut b = a.clone();
        b.submit(WriteToken::new(0, 1)).unwrap();
        let hash = |log: &MemoryLog| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            log.hash_state(&mut h);
            std::hash::Hasher::finish(&h)
        };
        assert_ne!(hash(&a), hash(&b), "a write in flight is part of the state");
        a.submit(WriteToken::new(0, 1)).unwrap();
        assert_eq!(hash(&a), hash(&b));
        b.persisted(WriteToken::new(0, 1)).unwrap();
        assert_ne!(hash(&a), hash(&b), "so is what a report made durable");
    }
}
