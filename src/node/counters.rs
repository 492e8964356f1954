//! [`NodeMetrics`]: a cheap, always-available snapshot of what a node did
//! (counters) and where it stands (gauges), for monitoring. The counters are
//! plain integers bumped where things happen; nothing here reads a clock
//! (the time spent in `sync` comes from the log, which may measure it).

use super::RaftNode;
use crate::log::RaftLog;
use crate::types::{Index, NodeId, Role, Term};

/// Counters a node keeps as it steps (all monotonic).
/// Laid out in the order written: the counts of nearly every step first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Counters {
    pub(super) messages_received: u64,
    pub(super) messages_sent: u64,
    pub(super) proposals: u64,
    pub(super) log_syncs: u64,
    pub(super) proposals_refused: u64,
    pub(super) leader_changes: u64,
    pub(super) elections: u64,
    pub(super) snapshots_sent: u64,
    pub(super) snapshot_bytes_sent: u64,
    pub(super) snapshots_installed: u64,
    pub(super) snapshot_bytes_received: u64,
    pub(super) snapshots_taken: u64,
    pub(super) heartbeats_skipped: u64,
    pub(super) lease_reads: u64,
    pub(super) follower_regressions: u64,
}

/// A point-in-time view of a node's counters and gauges
/// ([`RaftNode::metrics`]); with feature `metrics`, published under the
/// names the `telemetry` module's docs list (`raft_term`,
/// `raft_proposals_total`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeMetrics {
    /// This node.
    pub node: NodeId,
    /// Gauge: the current term.
    pub term: Term,
    /// Gauge: the role.
    pub role: Role,
    /// Gauge: the leader this node knows, if any.
    pub leader: Option<NodeId>,
    /// Gauge: the highest index known committed.
    pub commit_index: Index,
    /// Gauge: the highest index applied.
    pub applied_index: Index,
    /// Gauge: the last index in the log.
    pub last_index: Index,
    /// Gauge: the latest snapshot's index.
    pub snapshot_index: Index,
    /// Counter: entries proposed and appended by this node as leader.
    pub proposals: u64,
    /// Counter: proposal steps refused (not the leader, backpressure,
    /// invalid): an [`Event::ProposeBatch`](crate::Event::ProposeBatch)
    /// refused counts once, however many commands it held (`proposals`
    /// counts entries).
    pub proposals_refused: u64,
    /// Counter: times the leader this node knows changed (to another node
    /// or to none).
    pub leader_changes: u64,
    /// Counter: elections (and pre-votes) this node started.
    pub elections: u64,
    /// Counter: messages stepped.
    pub messages_received: u64,
    /// Counter: messages sent.
    pub messages_sent: u64,
    /// Counter: messages dropped as invalid, foreign or stale.
    pub dropped_messages: u64,
    /// Counter: calls to [`RaftLog::sync`] (or, in the asynchronous storage
    /// mode, [`RaftLog::submit`]).
    pub log_syncs: u64,
    /// Gauge: asynchronous storage mode, writes submitted and not yet
    /// reported durable.
    pub writes_pending: u64,
    /// Gauge: asynchronous storage mode, messages waiting for writes.
    pub messages_held: u64,
    /// Counter: fsyncs the log made, when it counts them
    /// ([`RaftLog::fsyncs`]): in the asynchronous storage mode one fsync
    /// may cover the writes of many steps.
    pub log_fsyncs: Option<u64>,
    /// Counter: time spent in [`RaftLog::sync`], when the log measures it
    /// ([`RaftLog::sync_time`]; `None` for `MemoryLog`).
    pub log_sync_time: Option<std::time::Duration>,
    /// Counter: snapshot streams started to followers.
    pub snapshots_sent: u64,
    /// Counter: snapshot bytes sent in chunks.
    pub snapshot_bytes_sent: u64,
    /// Counter: snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Counter: snapshot bytes received in chunks.
    pub snapshot_bytes_received: u64,
    /// Counter: application snapshots taken (log compactions).
    pub snapshots_taken: u64,
    /// Counter: heartbeats a leader left out as redundant: the follower
    /// acknowledged new entries and was sent newer ones since the previous
    /// round (`docs/PROTOCOL.md` §4.3).
    pub heartbeats_skipped: u64,
    /// Counter: reads a leader answered from its lease, without a
    /// heartbeat round (`docs/PROTOCOL.md` §8.2).
    pub lease_reads: u64,
    /// Counter: refusals, received as leader, of the very index the
    /// follower had acknowledged as matched. Such a follower lost entries
    /// it had made durable (its directory wiped or replaced under the same
    /// node id): it is not repaired, since it may have been counted in
    /// quorums it no longer honours; remove it and add it back
    /// (`docs/PROTOCOL.md` §5). It is counted at each probe the leader
    /// sends it, about once per heartbeat interval.
    pub follower_regressions: u64,
    /// Gauges, leader only: each follower's match index and lag.
    pub peers: Vec<PeerMetrics>,
}

/// One follower, as its leader sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerMetrics {
    /// The follower.
    pub id: NodeId,
    /// The highest index known to match the leader's log.
    pub match_index: Index,
    /// How many entries it is behind the leader's last index.
    pub lag: u64,
}

impl<L: RaftLog> RaftNode<L> {
    /// Counters and gauges for monitoring (one small allocation for the
    /// leader's per-follower list). Cheap enough to take every tick.
    ///
    /// ```
    /// use raft_io::{Event, RaftConfig, RaftNode};
    ///
    /// let mut node = RaftNode::new(RaftConfig::single(1)).unwrap();
    /// node.step(Event::Campaign).unwrap().for_each(drop);
    /// node.step(Event::Propose("x".into())).unwrap().for_each(drop);
    /// let m = node.metrics();
    /// assert_eq!((m.proposals, m.elections, m.commit_index), (1, 1, 2));
    /// ```
    pub fn metrics(&self) -> NodeMetrics {
        let last = self.log.last_index();
        NodeMetrics {
            log_fsyncs: self.log.fsyncs(),
            log_sync_time: self.log.sync_time(),
            peers: self
                .peers
                .iter()
                .map(|p| PeerMetrics { id: p.id, match_index: p.matched, lag: last.saturating_sub(p.matched) })
                .collect(),
            ..self.metrics_light()
        }
    }

    /// [`metrics`](Self::metrics) without what costs more than reading a
    /// field: no per-follower list (an allocation) and no `log_fsyncs` or
    /// `log_sync_time` (a shared WAL's take its lock). The many-groups
    /// runtime sums these over every group it hosts (feature `metrics`).
    pub(crate) fn metrics_light(&self) -> NodeMetrics {
        let c = &self.counters;
        NodeMetrics {
            node: self.id,
            term: self.term,
            role: self.role,
            leader: self.leader,
            commit_index: self.commit,
            applied_index: self.last_applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_meta().index,
            proposals: c.proposals,
            proposals_refused: c.proposals_refused,
            leader_changes: c.leader_changes,
            elections: c.elections,
            messages_received: c.messages_received,
            messages_sent: c.messages_sent,
            dropped_messages: self.dropped_messages,
            log_syncs: c.log_syncs,
            writes_pending: self.durability.writes_pending() as u64,
            messages_held: self.durability.messages_held() as u64,
            log_fsyncs: None,
            log_sync_time: None,
            snapshots_sent: c.snapshots_sent,
            snapshot_bytes_sent: c.snapshot_bytes_sent,
            snapshots_installed: c.snapshots_installed,
            snapshot_bytes_received: c.snapshot_bytes_received,
            snapshots_taken: c.snapshots_taken,
            heartbeats_skipped: c.heartbeats_skipped,
            lease_reads: c.lease_reads,
            follower_regressions: c.follower_regressions,
            peers: Vec::new(),
        }
    }
}
