//! Linearizable reads without writing to the log.
//!
//! * **ReadIndex** (leader): the read takes the current commit index as its
//!   read index, then waits for a heartbeat round started after it arrived
//!   to be answered by a quorum — proof that no other leader existed at that
//!   moment — and for the state machine to apply through the index. Reads
//!   arriving in the same step share one round. Answers are matched by round
//!   number within the leader's term; answers from an earlier term never
//!   reach this code (the term check drops them), so they cannot confirm a
//!   round. A new leader holds reads until an entry of its term commits.
//! * **Lease** (leader, opt-in): with check-quorum, followers refuse votes for
//!   a minimum election timeout after hearing from the leader. A quorum that
//!   answered a round sent at leader tick `t` therefore elects no other
//!   leader before `t + election_timeout_min` on their clocks. The leader
//!   serves reads locally until `t + election_timeout_min -
//!   lease_drift_ticks` on its own clock, which is safe as long as no two
//!   tick clocks drift apart by more than `lease_drift_ticks` over an
//!   election timeout. A node that restarts refuses votes for one minimum
//!   election timeout, so a crash does not shorten anybody's lease.
//! * **Follower reads**: the follower forwards the read to the leader, which
//!   confirms it like a ReadIndex and answers with the read index; the
//!   follower releases it once it has applied through that index.
//!
//! Every read ends in exactly one [`Action::ReadReady`] or
//! [`Action::ReadFailed`].

use std::collections::VecDeque;

use super::{Action, RaftNode, progress};
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::message::{MessageBody, ReadIndexRequest, ReadIndexResponse};
use crate::types::{Index, NodeId, ReadId, Role};

/// How a read is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadKind {
    /// ReadIndex: one heartbeat round trip to a quorum (batched). On a
    /// follower, forwarded to the leader.
    Index,
    /// Lease read: no round trip while the leader's lease holds (requires
    /// `lease_reads` and `check_quorum`); otherwise falls back to
    /// [`ReadKind::Index`]. On a follower, forwarded as a ReadIndex.
    Lease,
}

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadFailure {
    /// The leader lost leadership (or the follower's leader changed) before
    /// the read was confirmed.
    LeadershipLost,
    /// The read was not released within `read_timeout_ticks`.
    Timeout,
    /// This node left the configuration.
    NotMember,
}

#[derive(Clone, Copy, Debug)]
enum Origin {
    Local(ReadId),
    Remote { from: NodeId, id: ReadId },
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    origin: Origin,
    /// Read index; assigned with the round.
    index: Index,
    /// The round that must be acknowledged by a quorum; 0 until assigned.
    round: u64,
    deadline: u64,
}

#[derive(Clone, Copy, Debug)]
struct Ready {
    id: ReadId,
    index: Index,
    deadline: u64,
}

#[derive(Clone, Copy, Debug)]
struct Forwarded {
    /// The caller's id.
    id: ReadId,
    /// The id sent to the leader: unique to this read, so a late answer to
    /// an earlier read (even one with the same caller id, or from before a
    /// restart) can never release it.
    wire: ReadId,
    leader: NodeId,
    /// The term the read was forwarded in; the answer must carry it.
    term: crate::types::Term,
    deadline: u64,
}

/// Rounds remembered for the lease (older ones are past any lease anyway).
const ROUND_HISTORY: usize = 64;

/// All pending reads of a node, and the leader's heartbeat rounds.
#[derive(Clone, Debug, Default)]
pub(super) struct ReadState {
    round: u64,
    sent: VecDeque<(u64, u64)>,
    confirming: VecDeque<Pending>,
    ready: Vec<Ready>,
    forwarded: Vec<Forwarded>,
    /// The next wire id for a forwarded read (salted per start).
    next_wire: ReadId,
    /// Whether this run's wire ids differ from the last run's for sure
    /// (its log's instance tells runs apart): if not, no read is
    /// forwarded.
    forwards: bool,
}

impl ReadState {
    /// Read state whose forwarded-read ids start at `salt`; `forwards`
    /// when they cannot repeat an earlier run's.
    pub(super) fn new(salt: u64, forwards: bool) -> Self {
        Self { next_wire: salt, forwards, ..Self::default() }
    }

    /// Whether no read waits for anything.
    pub(super) fn is_idle(&self) -> bool {
        self.confirming.is_empty() && self.ready.is_empty() && self.forwarded.is_empty()
    }

    /// Starts a heartbeat round sent at `tick`; returns its number.
    pub(super) fn next_round(&mut self, tick: u64) -> u64 {
        self.round += 1;
        if self.sent.len() == ROUND_HISTORY {
            self.sent.pop_front();
        }
        self.sent.push_back((self.round, tick));
        self.round
    }

    /// The number of the latest round started (0 before the first).
    pub(super) fn last_round(&self) -> u64 {
        self.round
    }

    /// Whether no read waits for a heartbeat round to confirm it.
    pub(super) fn nothing_confirming(&self) -> bool {
        self.confirming.is_empty()
    }

    /// When the latest round of this term was sent, if any was.
    pub(super) fn last_round_tick(&self) -> Option<u64> {
        self.sent.back().map(|&(_, tick)| tick)
    }

    /// When round `round` was sent, if remembered.
    pub(super) fn round_tick(&self, round: u64) -> Option<u64> {
        self.sent.iter().rev().find(|(r, _)| *r == round).map(|(_, t)| *t)
    }

    /// A new term: rounds of the previous term are meaningless.
    pub(super) fn new_term(&mut self) {
        self.sent.clear();
    }

    fn is_pending(&self, id: ReadId) -> bool {
        self.confirming.iter().any(|p| matches!(p.origin, Origin::Local(i) if i == id))
            || self.ready.iter().any(|r| r.id == id)
            || self.forwarded.iter().any(|f| f.id == id)
    }
}

impl<L: RaftLog> RaftNode<L> {
    pub(super) fn read(&mut self, id: ReadId, kind: ReadKind) -> Result<()> {
        if kind == ReadKind::Lease && !(self.cfg.lease_reads && self.cfg.check_quorum) {
            return Err(Error::LeaseReadsDisabled);
        }
        let config = self.configs.effective();
        // A node that believed a removal notice is no member, whatever its
        // own (older) configuration says: it fails its reads from then on
        // (`Action::Removed`), new ones included.
        if !config.contains(self.id) || self.removed.is_some() {
            return Err(Error::NotMember(self.id));
        }
        if !config.is_voter(self.id) {
            return Err(Error::Learner);
        }
        if self.reads.is_pending(id) {
            return Err(Error::DuplicateRead(id));
        }
        let deadline = self.ticks.saturating_add(self.cfg.read_timeout_ticks);
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                let unconfirmed = mutant!(ReadIndexWithoutQuorum) && kind == ReadKind::Index;
                let term_committed =
                    self.commit >= self.term_start || (kind == ReadKind::Lease && mutant!(LeaseBeforeTermCommit));
                if (kind == ReadKind::Lease && self.lease_valid() || unconfirmed) && term_committed {
                    if kind == ReadKind::Lease {
                        self.counters.lease_reads += 1;
                    }
                    self.reads.ready.push(Ready { id, index: self.commit, deadline });
                } else {
                    self.reads.confirming.push_back(Pending {
                        origin: Origin::Local(id),
                        index: 0,
                        round: 0,
                        deadline,
                    });
                }
                Ok(())
            }
            // A restarted run on a log whose instance cannot tell it from
            // the last could draw the last run's wire ids, and a late
            // answer to one of those would release a newer read (§8.3):
            // the caller asks the leader itself.
            (Role::Follower, Some(_)) if !self.reads.forwards => Err(self.not_leader()),
            (Role::Follower, Some(leader)) => {
                let wire = self.reads.next_wire;
                self.reads.next_wire = wire.wrapping_add(1);
                self.reads.forwarded.push(Forwarded { id, wire, leader, term: self.term, deadline });
                self.send(leader, MessageBody::ReadIndex(ReadIndexRequest { id: wire }));
                Ok(())
            }
            _ => Err(self.not_leader()),
        }
    }

    /// Leader: a read forwarded by a follower.
    pub(super) fn on_forwarded_read(&mut self, from: NodeId, req: ReadIndexRequest) -> Result<()> {
        if self.role != Role::Leader || !self.configs.effective().is_voter(from) {
            let body = ReadIndexResponse { id: req.id, index: 0, ok: false };
            self.send(from, MessageBody::ReadIndexResponse(body));
            return Ok(());
        }
        let deadline = self.ticks.saturating_add(self.cfg.read_timeout_ticks);
        let origin = Origin::Remote { from, id: req.id };
        self.reads.confirming.push_back(Pending { origin, index: 0, round: 0, deadline });
        Ok(())
    }

    /// Follower: the leader's answer to a forwarded read.
    pub(super) fn on_read_index_response(&mut self, from: NodeId, term: crate::types::Term, r: ReadIndexResponse) {
        let found = self.reads.forwarded.iter().position(|f| f.wire == r.id && f.leader == from && f.term == term);
        let Some(pos) = found else {
            self.drop_message();
            return;
        };
        let f = self.reads.forwarded.swap_remove(pos);
        if r.ok {
            self.reads.ready.push(Ready { id: f.id, index: r.index, deadline: f.deadline });
        } else {
            self.out.push(Action::ReadFailed { id: f.id, reason: ReadFailure::LeadershipLost });
        }
    }

    /// Leader, end of step: reads waiting for a round get one now, unless a
    /// round carrying reads is already in flight — then they ride on the
    /// next one (sent when that answer is in, or with the next periodic
    /// heartbeat). Under load this keeps one confirmation round in flight,
    /// shared by every read that arrived meanwhile.
    pub(super) fn start_read_round(&mut self) -> Result<()> {
        // Reads are queued in arrival order and assigned to rounds from the
        // front, so the back tells whether any waits and the front whether
        // any is in flight.
        let waiting = self.reads.confirming.back().is_some_and(|p| p.round == 0);
        let in_flight = self.reads.confirming.front().is_some_and(|p| p.round != 0);
        if !waiting || in_flight || self.commit < self.term_start {
            return Ok(());
        }
        self.heartbeat_elapsed = 0;
        self.broadcast_heartbeat()?;
        self.confirm_reads();
        Ok(())
    }

    /// Leader: reads not yet in a round join `round` (about to be sent),
    /// with the commit index as their read index — once an entry of this
    /// term has committed (before that, the commit index may be stale).
    pub(super) fn assign_reads(&mut self, round: u64) {
        if self.commit < self.term_start {
            return;
        }
        let commit = self.commit;
        for p in self.reads.confirming.iter_mut().filter(|p| p.round == 0) {
            p.index = commit;
            p.round = round;
        }
    }

    /// Leader: releases reads whose round a quorum has answered.
    pub(super) fn confirm_reads(&mut self) {
        let me = self.id;
        while let Some(p) = self.reads.confirming.front().copied() {
            if p.round == 0 {
                break;
            }
            let peers = &self.peers;
            let confirmed = self
                .configs
                .effective()
                .has_quorum(|id| id == me || progress::find(peers, id).is_some_and(|pr| pr.acked_round >= p.round));
            if !confirmed {
                break;
            }
            self.reads.confirming.pop_front();
            match p.origin {
                Origin::Local(id) => self.reads.ready.push(Ready { id, index: p.index, deadline: p.deadline }),
                Origin::Remote { from, id } => {
                    let body = ReadIndexResponse { id, index: p.index, ok: true };
                    self.send(from, MessageBody::ReadIndexResponse(body));
                }
            }
        }
    }

    /// End of step: confirmed reads whose index is applied are released.
    pub(super) fn release_reads(&mut self) {
        if self.reads.ready.is_empty() {
            return;
        }
        let applied = self.applied;
        let out = &mut self.out;
        self.reads.ready.retain(|r| {
            let done = r.index <= applied;
            if done {
                out.push(Action::ReadReady { id: r.id, index: r.index });
            }
            !done
        });
    }

    /// Fails reads past their deadline.
    pub(super) fn tick_reads(&mut self) {
        let now = self.ticks;
        let mut expired = std::mem::take(&mut self.reads.confirming);
        expired.retain(|p| {
            let keep = p.deadline > now;
            if !keep {
                self.fail_pending(p.origin, ReadFailure::Timeout);
            }
            keep
        });
        self.reads.confirming = expired;
        let timeout = ReadFailure::Timeout;
        fail_picked(&mut self.reads.ready, &mut self.out, timeout, |r| (r.deadline <= now).then_some(r.id));
        fail_picked(&mut self.reads.forwarded, &mut self.out, timeout, |f| (f.deadline <= now).then_some(f.id));
    }

    fn fail_pending(&mut self, origin: Origin, reason: ReadFailure) {
        match origin {
            Origin::Local(id) => self.out.push(Action::ReadFailed { id, reason }),
            Origin::Remote { from, id } => {
                self.send(from, MessageBody::ReadIndexResponse(ReadIndexResponse { id, index: 0, ok: false }));
            }
        }
    }

    /// Leadership lost: reads not yet confirmed fail.
    pub(super) fn fail_leader_reads(&mut self) {
        self.fail_confirming(ReadFailure::LeadershipLost);
    }

    fn fail_confirming(&mut self, reason: ReadFailure) {
        while let Some(p) = self.reads.confirming.pop_front() {
            self.fail_pending(p.origin, reason);
        }
    }

    /// The follower's leader changed: forwarded reads fail.
    pub(super) fn fail_forwarded_reads(&mut self) {
        fail_picked(&mut self.reads.forwarded, &mut self.out, ReadFailure::LeadershipLost, |f| Some(f.id));
    }

    /// This node left the configuration: every pending read fails.
    pub(super) fn fail_all_reads(&mut self, reason: ReadFailure) {
        self.fail_confirming(reason);
        fail_picked(&mut self.reads.ready, &mut self.out, reason, |r| Some(r.id));
        fail_picked(&mut self.reads.forwarded, &mut self.out, reason, |f| Some(f.id));
    }

    /// Whether the leader's read lease holds now (see the module docs).
    pub(super) fn lease_valid(&mut self) -> bool {
        if !(self.cfg.lease_reads && self.cfg.check_quorum)
            || self.role != Role::Leader
            || self.transfer.is_some()
            || self.lease_revoked_term == self.term
        {
            return false;
        }
        let (me, now) = (self.id, self.ticks);
        let peers = &self.peers;
        let start = self.configs.effective().committed_index(
            |id| {
                if id == me { now } else { progress::find(peers, id).map_or(0, |p| p.acked_tick) }
            },
            &mut self.scratch_index,
        );
        let lease = if mutant!(LongLease) {
            self.cfg.election_timeout_max
        } else {
            self.cfg.election_timeout_min - self.cfg.lease_drift_ticks
        };
        // A round sent at tick 0 of a fresh leader is never acknowledged
        // before it is sent, so `start` is a real send time once nonzero.
        start > 0 && now < start.saturating_add(lease)
    }
}

/// Removes the reads `pick` names from `reads`, in order, failing each with
/// `reason`.
fn fail_picked<T>(reads: &mut Vec<T>, out: &mut Vec<Action>, reason: ReadFailure, pick: impl Fn(&T) -> Option<ReadId>) {
    reads.retain(|r| match pick(r) {
        Some(id) => {
            out.push(Action::ReadFailed { id, reason });
            false
        }
        None => true,
    });
}
