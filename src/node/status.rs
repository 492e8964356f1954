//! Read-only views of a node: accessors and [`Status`].

use super::{PeerStatus, ProgressState, RaftNode};
use crate::config::RaftConfig;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::types::{Index, NodeId, Role, Term};

/// A point-in-time view of a node, for monitoring and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Its vote in the current term.
    pub vote: Option<NodeId>,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Highest committed index it knows.
    pub commit: Index,
    /// Highest index handed to the state machine.
    pub applied: Index,
    /// First index held in the log.
    pub first_index: Index,
    /// Last index held in the log.
    pub last_index: Index,
    /// Index of the latest snapshot.
    pub snapshot_index: Index,
    /// The configuration in effect.
    pub membership: Membership,
    /// Leader only: each follower's progress.
    pub peers: Vec<PeerStatus>,
    /// Leader only: the pending transfer target.
    pub transfer: Option<NodeId>,
    /// Messages dropped as invalid, foreign or stale.
    pub dropped_messages: u64,
    /// The index of the committed configuration that removed this node,
    /// once a member said so (see [`RaftNode::removed`]).
    pub removed: Option<Index>,
}

impl<L: RaftLog> RaftNode<L> {
    /// The configuration in effect (the latest in the log, committed or not).
    pub fn membership(&self) -> &Membership {
        self.configs.effective()
    }

    /// The index of the configuration in effect: its entry's, or the
    /// snapshot's when it came with the snapshot.
    pub fn membership_index(&self) -> Index {
        self.configs.effective_index()
    }

    /// The address the configuration in effect gives the leader this node
    /// knows, if it knows one and the leader carries an address.
    pub fn leader_address(&self) -> Option<&bytes::Bytes> {
        self.leader.and_then(|id| self.configs.effective().address(id))
    }

    /// [`Error::NotLeader`](crate::Error::NotLeader) with what this node
    /// knows of the leader.
    pub(super) fn not_leader(&self) -> crate::Error {
        crate::Error::NotLeader { leader: self.leader, leader_address: self.leader_address().cloned() }
    }

    /// The latest committed configuration and its index.
    pub fn committed_membership(&self) -> (Index, &Membership) {
        self.configs.committed(self.commit)
    }

    /// The configuration in effect at `index`, for any index this node
    /// holds or its snapshot covers the end of (`None` below the snapshot
    /// index, whose configurations were compacted away, and past the last
    /// index).
    pub fn membership_at(&self, index: Index) -> Option<&Membership> {
        let snapshot = self.log.snapshot_meta().index;
        (snapshot..=self.log.last_index()).contains(&index).then(|| self.configs.at(index))
    }

    /// The index of the committed configuration that removed this node,
    /// once a member told it so ([`Action::Removed`](super::Action::Removed)).
    /// A removed node never campaigns again.
    pub fn removed(&self) -> Option<Index> {
        self.removed
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether this node is the leader of its current term.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The highest index known committed.
    pub fn commit_index(&self) -> Index {
        self.commit
    }

    /// Where the proposal of the node's latest step went: `Some` right
    /// after a step of [`Event::Propose`](super::Event::Propose) or
    /// [`Event::ProposeBatch`](super::Event::ProposeBatch) that returned
    /// `Ok`, `None` after any other step (a refused one included) and
    /// before the first. See [`Proposal`](super::Proposal) for when it
    /// commits.
    ///
    /// ```
    /// use raft_io::{Event, Proposal, RaftConfig, RaftNode};
    ///
    /// let mut node = RaftNode::new(RaftConfig::single(1))?;
    /// while !node.is_leader() {
    ///     node.step(Event::Tick)?.for_each(drop);
    /// }
    /// node.step(Event::ProposeBatch(vec!["a".into(), "b".into()]))?.for_each(drop);
    /// assert_eq!(node.last_proposal(), Some(Proposal { first: 2, last: 3, term: 1 }));
    /// node.step(Event::Tick)?.for_each(drop);
    /// assert_eq!(node.last_proposal(), None);
    /// # Ok::<(), raft_io::Error>(())
    /// ```
    #[inline]
    pub fn last_proposal(&self) -> Option<super::Proposal> {
        (self.proposal.first != 0).then_some(self.proposal)
    }

    /// The highest index handed to the state machine (through
    /// [`Action::Apply`](super::Action::Apply), or covered by a restored snapshot).
    ///
    /// After a restart from a log with a snapshot, this is the configured
    /// [`RaftConfig::applied`] index until the first step hands the
    /// snapshot over with [`Action::RestoreSnapshot`](super::Action::RestoreSnapshot);
    /// in the asynchronous storage mode a snapshot received from the leader
    /// is handed over, and counted here, once the write installing it is
    /// durable.
    pub fn last_applied(&self) -> Index {
        self.applied
    }

    /// The last index in the log.
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// The log, for reading.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// The log, for the simulator's checkers (they drain its journal).
    #[cfg(feature = "sim")]
    pub(crate) fn log_mut_for_sim(&mut self) -> &mut L {
        &mut self.log
    }

    /// The log, mutably: for controls of the log itself, such as switching a
    /// `WalLog` to its sync thread (`WalLog::start_sync_thread`) or a test
    /// log's fault switches. Never change the log's contents
    /// through it: the node's view of its log would no longer be true.
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }

    /// Whether this node could stop ticking without anyone noticing
    /// (multi-group quiescence, `docs/PROTOCOL.md` §10): as a leader,
    /// everything is committed and applied, every member of the
    /// configuration holds the whole log and has been told the commit
    /// index, no read, transfer, configuration change or snapshot stream is
    /// in flight, and no write waits to be durable; as a follower, it
    /// knows its leader, has applied everything it holds, and that is the
    /// commit index.
    pub fn is_quiescable(&self) -> bool {
        let last = self.log.last_index();
        let settled = self.commit == last
            && self.applied == last
            && !self.restore_pending
            && self.incoming.is_none()
            && self.durability.writes_pending() == 0
            && self.reads.is_idle()
            && !self.halted;
        match self.role {
            Role::Leader => {
                settled
                    && self.transfer.is_none()
                    && !self.configs.effective().is_joint()
                    && self.configs.effective_index() <= self.commit
                    && self.log.term(last) == Some(self.term)
                    && self.peers.iter().all(|p| {
                        p.matched == last
                            && p.commit_sent >= last
                            && p.state == ProgressState::Replicate
                            && p.inflights.len() == 0
                    })
            }
            Role::Follower => settled && self.leader.is_some(),
            _ => false,
        }
    }

    /// Frees the capacity the node keeps between steps for reuse (its
    /// action, entry and index buffers). A host calls it when a group goes
    /// idle, so that thousands of quiesced groups cost their state, not
    /// their peak buffers; the next steps grow them again.
    pub fn release_buffers(&mut self) {
        self.out = Vec::new();
        self.scratch = Vec::new();
        self.scratch_index = Vec::new();
        self.scratch_ids = Vec::new();
        self.votes = Vec::new();
    }

    /// Gives the log back (for example, to simulate a restart).
    pub fn into_log(self) -> L {
        self.log
    }

    /// The configuration this node was built with.
    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    /// Whether a storage failure halted the node.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// A point-in-time view of the node.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.commit,
            applied: self.last_applied(),
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_meta().index,
            membership: self.configs.effective().clone(),
            peers: self.peers.iter().map(PeerStatus::from).collect(),
            transfer: self.transfer.map(|t| t.to),
            dropped_messages: self.dropped_messages,
            removed: self.removed,
        }
    }
}

impl<L: RaftLog> std::fmt::Debug for RaftNode<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("term", &self.term)
            .field("leader", &self.leader)
            .field("commit", &self.commit)
            .field("applied", &self.applied)
            .field("last_index", &self.log.last_index())
            .finish_non_exhaustive()
    }
}
