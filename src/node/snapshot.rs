//! Snapshots: the policy hint, compaction when the application hands back a
//! snapshot, and the chunked stream from leader to follower.
//!
//! The leader streams its latest snapshot in chunks of at most
//! `max_message_bytes`, at most `max_inflight` chunks ahead of the
//! follower's acknowledgement. The follower accepts only the next expected
//! chunk (duplicates, stale and out-of-order chunks are acknowledged with
//! what it has, and otherwise ignored) and writes it through the log, so
//! neither side holds more than a window of chunks in memory. A lost chunk
//! is resent from the acknowledged offset after a few heartbeat rounds
//! without progress; a new leader or a newer snapshot restarts the stream.

use bytes::Bytes;

use super::progress::{ProgressState, SnapshotSend};
use super::{Action, RaftNode, observe};
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::message::{MessageBody, SnapshotAck, SnapshotChunk};
use crate::types::{Index, MAX_TERM, NodeId, Role, SnapshotMeta, Term};

/// A snapshot being received from the leader.
#[derive(Clone, Debug)]
pub(super) struct Incoming {
    index: Index,
    term: Term,
    total_len: u64,
    received: u64,
    /// The leader's term when the stream started: a new leader restarts it.
    leader_term: Term,
}

impl<L: RaftLog> RaftNode<L> {
    /// The application's snapshot through `index`: store it and compact the
    /// log behind it.
    pub(super) fn snapshot_taken(&mut self, index: Index, data: Bytes) -> Result<()> {
        let current = self.log.snapshot_meta().index;
        if index > self.applied || index <= current {
            return Err(Error::InvalidSnapshot { index, applied: self.applied, current });
        }
        let Some(term) = self.log.term(index) else {
            return Err(Error::InvalidSnapshot { index, applied: self.applied, current });
        };
        let membership = self.configs.at(index).clone();
        debug_assert!(!membership.is_empty(), "a node that applied {index} knows its configuration");
        observe!(tracing::Level::DEBUG, node = self.id, term = self.term, index, "snapshot taken; log compacted");
        self.install_snapshot_log(SnapshotMeta { index, term, membership }, Some(data))?;
        self.applied_bytes = 0;
        self.snapshot_hint_at = index;
        self.counters.snapshots_taken += 1;
        Ok(())
    }

    /// Emits the policy hint once the log applied since the last snapshot
    /// passes the configured entries or bytes (again each time it passes
    /// them anew).
    pub(super) fn maybe_request_snapshot(&mut self) {
        // No policy (the default): nothing to work out on every apply.
        if self.cfg.snapshot_entries == 0 && self.cfg.snapshot_bytes == 0 {
            return;
        }
        let since_hint = self.applied.saturating_sub(self.snapshot_hint_at.max(self.log.snapshot_meta().index));
        let by_entries = self.cfg.snapshot_entries > 0 && since_hint >= self.cfg.snapshot_entries;
        let by_bytes = self.cfg.snapshot_bytes > 0 && self.applied_bytes >= self.cfg.snapshot_bytes;
        if (by_entries || by_bytes) && self.applied > self.snapshot_hint_at {
            self.snapshot_hint_at = self.applied;
            self.applied_bytes = 0;
            self.out.push(Action::SnapshotWanted { applied: self.applied });
        }
    }

    /// Leader: peer `i` needs compacted entries; stream the snapshot.
    pub(super) fn start_snapshot_send(&mut self, i: usize) -> Result<bool> {
        let index = self.log.snapshot_meta().index;
        let total_len = self.log.snapshot_len()?;
        self.counters.snapshots_sent += 1;
        observe!(
            tracing::Level::INFO,
            node = self.id,
            term = self.term,
            to = self.peers[i].id,
            index,
            bytes = total_len,
            "snapshot send started"
        );
        self.peers[i].become_snapshot(SnapshotSend { index, total_len, next_offset: 0, acked: 0, sent_all: false });
        self.send_snapshot_chunks(i)
    }

    /// Leader: sends peer `i` snapshot chunks up to its window.
    pub(super) fn send_snapshot_chunks(&mut self, i: usize) -> Result<bool> {
        let Some(s) = self.peers[i].snapshot else { return Ok(false) };
        if s.index != self.log.snapshot_meta().index {
            // A newer snapshot replaced the one being sent: restart.
            return self.start_snapshot_send(i);
        }
        let mut sent = false;
        loop {
            let pr = &self.peers[i];
            let Some(s) = pr.snapshot else { break };
            // A follower that refused this snapshot is sent one chunk at a
            // time, not a window it would refuse whole (its limit may have
            // been raised since).
            let probing = pr.snapshot_refused == Some(s.index);
            if s.sent_all || pr.inflights.is_full() || (probing && pr.inflights.len() > 0) {
                break;
            }
            let data = self.log.snapshot_chunk(s.next_offset, self.cfg.max_message_bytes)?;
            let end = s.next_offset + data.len() as u64;
            if data.is_empty() && s.next_offset < s.total_len {
                return Err(crate::error::StorageError::Corrupt {
                    location: format!("snapshot {} at offset {}", s.index, s.next_offset),
                    reason: format!("no data before the declared length {}", s.total_len),
                }
                .into());
            }
            let to = pr.id;
            let pr = &mut self.peers[i];
            pr.inflights.push(end);
            if let Some(s) = pr.snapshot.as_mut() {
                s.sent_all = end >= s.total_len;
                s.next_offset = end;
            }
            let chunk = SnapshotChunk {
                meta: self.log.snapshot_meta().clone(),
                total_len: s.total_len,
                offset: s.next_offset,
                data,
            };
            self.counters.snapshot_bytes_sent += chunk.data.len() as u64;
            self.send(to, MessageBody::Snapshot(Box::new(chunk)));
            sent = true;
        }
        Ok(sent)
    }

    /// Leader: resend from the acknowledged offset (a chunk was lost).
    pub(super) fn rewind_snapshot(&mut self, i: usize) {
        let pr = &mut self.peers[i];
        if let Some(s) = pr.snapshot.as_mut() {
            s.next_offset = s.acked;
            s.sent_all = false;
            pr.inflights.clear();
        }
    }

    pub(super) fn on_snapshot_ack(&mut self, from: NodeId, ack: SnapshotAck) -> Result<()> {
        if self.role != Role::Leader {
            return Ok(());
        }
        let Some(i) = self.peer_index(from) else {
            self.drop_message();
            return Ok(());
        };
        let pr = &mut self.peers[i];
        pr.recent_active = true;
        let Some(mut s) = pr.snapshot.filter(|s| s.index == ack.index && pr.state == ProgressState::Snapshot) else {
            return Ok(());
        };
        if ack.rejected {
            // The follower cannot take this snapshot; retry from a probe on
            // the next heartbeat answer, with one chunk first.
            pr.snapshot_refused = Some(s.index);
            pr.become_probe();
            pr.probe_sent = true;
            return Ok(());
        }
        if ack.received >= s.total_len {
            pr.snapshot_refused = None;
            pr.update_matched(s.index);
            pr.become_probe();
            self.send_append(i, true)?;
            return Ok(());
        }
        if ack.received > s.acked {
            // Taken: the follower's limit fits it now; the whole window.
            pr.snapshot_refused = None;
            s.acked = ack.received;
            pr.stalled = 0;
            pr.inflights.free_to(ack.received);
        } else if ack.received < s.acked {
            // The follower holds less than it acknowledged before: it
            // restarted, or restarted the stream. Resume from what it holds
            // (a reordered stale acknowledgement only costs a resend).
            s.acked = ack.received;
            s.next_offset = ack.received;
            s.sent_all = false;
            pr.inflights.clear();
        }
        if let Some(cur) = pr.snapshot.as_mut() {
            *cur = s;
        }
        self.send_snapshot_chunks(i)?;
        Ok(())
    }

    /// Whether this node is receiving a snapshot stream from `peer`, its
    /// leader in its current term: a chunk of `peer` it took and kept. A
    /// many-groups runtime holds a receive slot only for such a stream
    /// (`runtime::multi::snapshots`).
    #[cfg(all(feature = "net", feature = "persistence"))]
    pub(crate) fn receives_snapshot_from(&self, peer: NodeId) -> bool {
        self.leader == Some(peer) && self.incoming.as_ref().is_some_and(|inc| inc.leader_term == self.term)
    }

    /// Follower: one chunk of the leader's snapshot.
    pub(super) fn on_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk) -> Result<()> {
        let SnapshotChunk { meta, total_len, offset, data } = chunk;
        // What no leader sends (PROTOCOL.md §6.3): an index past the bound
        // every log keeps (a node refuses to start on such a log, a
        // `WalLog` refuses the write), or no configuration (every member's
        // snapshot records the configuration in effect at its index, §7.1).
        if meta.index > MAX_TERM || meta.membership.is_empty() {
            self.drop_message();
            return Ok(());
        }
        let ack = |received: u64, rejected: bool| SnapshotAck { index: meta.index, received, rejected };
        let needed = self.snapshot_needed(meta.index) || (mutant!(SnapshotBackwards) && meta.index > 0);
        if !needed {
            // We already hold everything it covers: never go backwards.
            self.drop_stale_receive()?;
            let body = ack(total_len, false);
            self.send(from, MessageBody::SnapshotResponse(body));
            return Ok(());
        }
        let end = offset.checked_add(data.len() as u64);
        if meta.term > self.term || end.is_none_or(|end| end > total_len) {
            self.drop_message();
            return Ok(());
        }
        if total_len > self.cfg.max_snapshot_bytes {
            self.drop_message();
            self.send(from, MessageBody::SnapshotResponse(ack(0, true)));
            return Ok(());
        }
        let same_stream = self.incoming.as_ref().is_some_and(|inc| {
            inc.index == meta.index
                && inc.term == meta.term
                && inc.total_len == total_len
                && inc.leader_term == self.term
        });
        if !same_stream {
            if offset != 0 {
                self.send(from, MessageBody::SnapshotResponse(ack(0, false)));
                return Ok(());
            }
            self.log.begin_snapshot_receive(&meta, total_len)?;
            self.incoming =
                Some(Incoming { index: meta.index, term: meta.term, total_len, received: 0, leader_term: self.term });
        }
        let received = self.incoming.as_ref().map_or(0, |inc| inc.received);
        if offset != received {
            // Duplicate, stale or out of order: say what we have.
            self.send(from, MessageBody::SnapshotResponse(ack(received, false)));
            return Ok(());
        }
        self.log.receive_snapshot_chunk(offset, &data)?;
        self.counters.snapshot_bytes_received += data.len() as u64;
        let received = received + data.len() as u64;
        if let Some(inc) = self.incoming.as_mut() {
            inc.received = received;
        }
        if received == total_len {
            self.incoming = None;
            self.install_received_snapshot(meta.clone())?;
        }
        self.send(from, MessageBody::SnapshotResponse(ack(received, false)));
        Ok(())
    }

    /// Whether a leader's snapshot at `index` would bring this node anything:
    /// it is past the commit index. (A joining node that knows no
    /// configuration takes even the leader's snapshot at its own commit
    /// index, for the configuration it carries.)
    fn snapshot_needed(&self, index: Index) -> bool {
        index > self.commit || (index == self.commit && self.configs.unknown_at(index))
    }

    /// Gives up a snapshot receive that can no longer finish, and the
    /// bytes the log keeps for it: the commit index passed its snapshot
    /// (the leader caught this node up with entries instead), or it was
    /// begun under an older term's leader (a leader's stream never
    /// continues another's). Checked on every tick and on a chunk that is
    /// not needed; until then a leftover costs the bytes received.
    pub(super) fn drop_stale_receive(&mut self) -> Result<()> {
        let stale =
            self.incoming.as_ref().is_some_and(|inc| inc.leader_term != self.term || !self.snapshot_needed(inc.index));
        if stale {
            self.incoming = None;
            self.log.abort_snapshot_receive()?;
        }
        Ok(())
    }

    fn install_received_snapshot(&mut self, meta: SnapshotMeta) -> Result<()> {
        let index = meta.index;
        self.counters.snapshots_installed += 1;
        observe!(tracing::Level::INFO, node = self.id, term = self.term, index, "snapshot installed");
        self.install_snapshot_log(meta, None)?;
        self.commit = self.commit.max(index);
        if self.cfg.async_storage && index > 0 {
            // Asynchronous mode (PROTOCOL.md §5.1): the state machine takes
            // the snapshot once the write installing it is durable
            // (`apply_committed`), not before: a crash could lose it.
            self.restore_pending = true;
            return Ok(());
        }
        self.restore_snapshot()
    }

    /// Hands the log's snapshot to the state machine and counts it
    /// applied: at once for one received in the synchronous mode, else
    /// once durable (`apply_committed`).
    pub(super) fn restore_snapshot(&mut self) -> Result<()> {
        let index = self.log.snapshot_meta().index;
        self.restore_pending = false;
        self.applied = self.applied.max(index);
        self.applied_bytes = 0;
        self.snapshot_hint_at = self.snapshot_hint_at.max(index);
        if index > 0 {
            // The state at index 0 is the application's initial state: there
            // is nothing to restore.
            let meta = self.log.snapshot_meta().clone();
            let data = self.log.snapshot_data()?;
            self.out.push(Action::RestoreSnapshot { meta, data });
        }
        Ok(())
    }
}
