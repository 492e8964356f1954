//! What a crash keeps of a [`MemoryLog`]: the durable image a sync makes
//! (the identity, hard state and snapshot as of the last sync, and the
//! watermark of durable entries), the log rebuilt from it
//! ([`MemoryLog::durable`]), and the asynchronous mode, where each write
//! in flight is an image of the log as of its submission.

use std::collections::VecDeque;

use bytes::Bytes;

use super::MemoryLog;
use crate::log::chunked::Chunked;
use crate::log::{RaftLog, WriteToken};
use crate::types::{Entry, HardState, LogIdentity, SnapshotMeta};

/// The asynchronous mode's durability: what each write in flight will make
/// durable (the log as of its submission, synced), oldest first, and what
/// is durable now. Neither image is itself in the mode.
#[derive(Clone, Debug)]
pub(super) struct Deferred {
    pub(super) pending: VecDeque<(WriteToken, MemoryLog)>,
    pub(super) durable: MemoryLog,
}

/// The identity, hard state and snapshot as of the last sync (the
/// identity and hard state only while `meta_changed`: see `MemoryLog`).
#[derive(Clone, Debug, Default)]
pub(super) struct Synced {
    pub(super) identity: Option<LogIdentity>,
    pub(super) hard: HardState,
    pub(super) snapshot: SnapshotMeta,
    pub(super) snapshot_data: Bytes,
}

impl MemoryLog {
    /// Switches the asynchronous storage mode on (`docs/PROTOCOL.md` §5.1;
    /// for a node whose configuration has
    /// [`async_storage`](crate::RaftConfig::async_storage) on): a
    /// [`submit`](RaftLog::submit) answers [`Submitted::Pending`](crate::log::Submitted::Pending) and makes
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
        let mut image = match &self.deferred {
            Some(d) => d.durable.clone().with_async_writes(),
            None => self.synced_image(),
        };
        // A restart on the image is another run: its instance differs.
        image.opens = self.opens + 1;
        image
    }

    /// The state as of the last successful sync, as a log out of the
    /// asynchronous mode.
    pub(super) fn synced_image(&self) -> MemoryLog {
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
            opens: self.opens,
        }
    }

    /// What an effective sync does: the state as it is now becomes the
    /// durable one.
    #[inline(always)]
    pub(super) fn make_durable(&mut self) {
        self.effective_syncs += 1;
        self.meta_changed = false;
        if self.snapshot_dirty {
            self.sync_snapshot();
        }
        self.stable = self.last_index();
        // Left by a snapshot install or a truncation since the last sync.
        if !self.durable_front.is_empty() || !self.durable_back.is_empty() {
            self.durable_front.clear();
            self.durable_back.clear();
        }
        self.dirty = false;
    }

    /// [`make_durable`](Self::make_durable) of a snapshot installed since
    /// the last sync, out of line.
    fn sync_snapshot(&mut self) {
        self.synced.snapshot = self.snapshot.clone();
        self.synced.snapshot_data = self.snapshot_data.clone();
        self.snapshot_dirty = false;
    }

    /// Before the first change of the identity or hard state since the
    /// last sync: keeps the durable ones (`meta_changed`).
    #[inline]
    pub(super) fn save_durable_meta(&mut self) {
        if !self.meta_changed {
            self.synced.identity = self.identity;
            self.synced.hard = self.hard;
            self.meta_changed = true;
        }
    }

    /// The log as it is now, synced and out of the asynchronous mode: what
    /// a write submitted now makes durable.
    pub(super) fn write_image(&mut self) -> MemoryLog {
        let deferred = self.deferred.take();
        let mut image = self.clone();
        self.deferred = deferred;
        image.make_durable();
        image
    }
}
