//! [`SnapshotGate`]: at most `max` snapshot streams pass a node at once,
//! whatever the number of groups: one gate for the streams its groups send,
//! one for the streams they receive.
//!
//! A stream is a `(group, peer)` pair: the peer the node's group sends
//! snapshot chunks to, or receives them from. It is admitted with its
//! first chunk when fewer than `max` streams are open; it closes when its
//! last chunk (the one reaching the snapshot's length) passes, or when no
//! chunk of it passed for `idle` ticks (its leader stepped down, its group
//! was removed, its follower went away). A chunk of a stream that cannot
//! be admitted is held back: dropped before the transport (sending) or
//! before the host (receiving), as if lost on the wire. Its leader's group
//! treats it so — it finds the stream stalled and resends from the last
//! acknowledged offset — so a held-back stream starts once another ends,
//! at the cost of its retransmission timeout.
//!
//! On the receiving side a slot is kept only for a stream the group's node
//! keeps ([`retain_live`](SnapshotGate::retain_live), after each step of
//! the received messages): a chunk the node dropped (stale, from a node it
//! does not follow, unusable, out of place) frees its slot at once, and
//! for the next `idle` ticks its `(group, peer)` comes last: its chunks
//! are admitted after every other chunk of the turn, into the slots those
//! left ([`is_last`](SnapshotGate::is_last)). A peer that keeps sending
//! chunks its groups drop thus never takes a slot a real stream wants,
//! and a real leader whose chunk was dropped once (its first chunk held
//! back, say, so its second came out of place) still gets a free slot at
//! once.

use std::collections::BTreeMap;

use crate::message::{Message, MessageBody};
use crate::multi::GroupId;
use crate::types::NodeId;

/// The open snapshot streams of one node.
#[derive(Debug)]
pub(crate) struct SnapshotGate {
    max: usize,
    idle: u64,
    /// Open streams and the tick their last chunk left.
    open: BTreeMap<(GroupId, NodeId), u64>,
    /// Streams whose chunk the node dropped, and the tick it did: for
    /// `idle` ticks they come last ([`is_last`](Self::is_last)).
    dropped: BTreeMap<(GroupId, NodeId), u64>,
    /// Chunks held back so far.
    pub(crate) held_back: u64,
    /// Chunks let through so far.
    pub(crate) admitted: u64,
}

impl SnapshotGate {
    pub(crate) fn new(max: usize, idle: u64) -> Self {
        Self {
            max: max.max(1),
            idle: idle.max(1),
            open: BTreeMap::new(),
            dropped: BTreeMap::new(),
            held_back: 0,
            admitted: 0,
        }
    }

    /// Whether `message` of `group`, to or from `peer`, may pass at tick
    /// `now` (anything but a snapshot chunk may).
    pub(crate) fn admit(&mut self, group: GroupId, peer: NodeId, message: &Message, now: u64) -> bool {
        let MessageBody::Snapshot(chunk) = &message.body else { return true };
        let key = (group, peer);
        if !self.open.contains_key(&key) && self.open.len() >= self.max {
            self.held_back += 1;
            return false;
        }
        let end = chunk.offset.saturating_add(chunk.data.len() as u64);
        if end >= chunk.total_len {
            self.open.remove(&key);
        } else {
            self.open.insert(key, now);
        }
        self.admitted += 1;
        true
    }

    /// Whether the chunks of `group` from `peer` come last in a turn (see
    /// the [module docs](self)): its node dropped one lately.
    pub(crate) fn is_last(&self, group: GroupId, peer: NodeId) -> bool {
        self.dropped.contains_key(&(group, peer))
    }

    /// Closes the streams idle since before `now - idle`.
    pub(crate) fn expire(&mut self, now: u64) {
        let idle = self.idle;
        self.open.retain(|_, last| now.saturating_sub(*last) <= idle);
        self.dropped.retain(|_, at| now.saturating_sub(*at) <= idle);
    }

    /// After a step of the received chunks: a receive slot stays open only
    /// while its group's node keeps the stream (`kept`); one it did not
    /// keep closes, and its `(group, peer)` comes last for `idle` ticks.
    pub(crate) fn retain_live(&mut self, now: u64, kept: impl Fn(GroupId, NodeId) -> bool) {
        let dropped = &mut self.dropped;
        self.open.retain(|&key, _| {
            if kept(key.0, key.1) {
                dropped.remove(&key);
                true
            } else {
                dropped.insert(key, now);
                false
            }
        });
    }

    /// Closes the streams of a removed group.
    pub(crate) fn forget(&mut self, group: GroupId) {
        self.open.retain(|(g, _), _| *g != group);
        self.dropped.retain(|(g, _), _| *g != group);
    }

    /// Streams open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::SnapshotChunk;

    fn chunk(to: NodeId, offset: u64, len: usize, total: u64) -> Message {
        let data = bytes::Bytes::from(vec![0u8; len]);
        let body =
            MessageBody::Snapshot(Box::new(SnapshotChunk { offset, total_len: total, data, ..Default::default() }));
        Message { from: 1, to, term: 1, body }
    }

    #[test]
    fn at_most_max_streams_and_a_finished_one_frees_its_place() {
        let mut gate = SnapshotGate::new(2, 5);
        assert!(gate.admit(1, 2, &chunk(2, 0, 10, 30), 0));
        assert!(gate.admit(2, 2, &chunk(2, 0, 10, 30), 0));
        assert!(!gate.admit(3, 2, &chunk(2, 0, 10, 30), 0), "a third stream waits");
        assert_eq!(gate.held_back, 1);
        assert!(gate.admit(1, 2, &chunk(2, 10, 10, 30), 1), "an open stream goes on");
        assert!(gate.admit(1, 2, &chunk(2, 20, 10, 30), 2), "its last chunk closes it");
        assert_eq!(gate.open(), 1);
        assert!(gate.admit(3, 2, &chunk(2, 0, 10, 30), 3));
        let heartbeat = Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow };
        assert!(gate.admit(4, 2, &heartbeat, 3), "other messages are never held");
    }

    #[test]
    fn an_idle_stream_or_a_removed_group_closes() {
        let mut gate = SnapshotGate::new(1, 5);
        assert!(gate.admit(1, 2, &chunk(2, 0, 10, 30), 0));
        gate.expire(5);
        assert_eq!(gate.open(), 1);
        gate.expire(6);
        assert_eq!(gate.open(), 0);
        assert!(gate.admit(2, 3, &chunk(3, 0, 10, 30), 6));
        gate.forget(2);
        assert_eq!(gate.open(), 0);
    }

    #[test]
    fn a_stream_the_node_dropped_frees_its_slot_and_comes_last_for_a_while() {
        let mut gate = SnapshotGate::new(1, 5);
        assert!(gate.admit(1, 9, &chunk(1, 0, 10, 30), 0));
        assert!(!gate.admit(2, 3, &chunk(1, 0, 10, 30), 0), "the one slot is taken");
        // After the step: group 1's node dropped 9's chunk.
        gate.retain_live(0, |group, peer| (group, peer) != (1, 9));
        assert_eq!(gate.open(), 0);
        assert!(gate.is_last(1, 9) && !gate.is_last(2, 3));
        // Next turn, the driver admits the others first: 3's stream gets the
        // slot, 9's chunk finds none left.
        assert!(gate.admit(2, 3, &chunk(1, 0, 10, 30), 1));
        assert!(!gate.admit(1, 9, &chunk(1, 0, 10, 30), 1));
        gate.retain_live(1, |_, _| true);
        // With a slot free, a stream that comes last still gets it; kept,
        // it no longer comes last.
        assert!(gate.admit(2, 3, &chunk(1, 20, 10, 30), 2), "3's last chunk frees the slot");
        assert!(gate.admit(1, 9, &chunk(1, 0, 10, 30), 2));
        gate.retain_live(2, |_, _| true);
        assert!(!gate.is_last(1, 9));
        // A mark lasts `idle` ticks, and a removed group's goes with it.
        gate.retain_live(3, |_, _| false);
        assert!(gate.is_last(1, 9));
        gate.expire(9);
        assert!(!gate.is_last(1, 9));
        assert!(gate.admit(1, 9, &chunk(1, 0, 10, 30), 9));
        gate.retain_live(9, |_, _| false);
        gate.forget(1);
        assert!(!gate.is_last(1, 9));
    }
}
