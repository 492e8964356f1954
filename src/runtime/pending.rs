//! [`Pending`]: the requests of one Raft node (one group) that its driver
//! has taken and not yet answered, and how each node action answers them.
//!
//! Shared by the single-group driver and the many-groups driver
//! (`runtime::multi`): neither the node nor the transport is touched here,
//! only the bookkeeping from an action to the reply it completes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::handle::ReadJob;
use super::requests::{Reply, Wakeups};
use super::{RuntimeError, StateMachine};
use crate::error::Error;
use crate::membership::{Membership, MembershipChange};
use crate::node::{Proposal, TransferOutcome};
use crate::types::{Index, NodeId, ReadId, Role, Term};

struct PendingProposal<O> {
    index: Index,
    term: Term,
    reply: Reply<O>,
    deadline: Option<Instant>,
}

struct PendingRead<S> {
    job: ReadJob<S>,
    deadline: Option<Instant>,
}

/// A membership change the node accepted (or is about to).
pub(crate) struct PendingChange {
    /// Index of the configuration entry once appended; 0 before.
    pub(crate) index: Index,
    pub(crate) reply: Reply<Membership>,
    pub(crate) deadline: Option<Instant>,
}

/// A change refused with `NotReady`, retried every tick until its deadline.
pub(crate) type DeferredChange = (MembershipChange, Reply<Membership>, Option<Instant>);

struct PendingTransfer {
    to: NodeId,
    reply: Reply<()>,
    deadline: Option<Instant>,
    /// The node reported the transfer ended by stepping down; waiting to
    /// learn who leads now.
    stepped_down: bool,
}

/// The requests of one node in its driver's hands.
pub(crate) struct Pending<S: StateMachine> {
    /// Replies of the proposal batch being stepped, in order; taken by
    /// [`proposed`](Self::proposed).
    pub(crate) batch_replies: Vec<(Reply<S::Output>, Option<Instant>)>,
    /// Appended proposals by index, oldest first.
    proposals: VecDeque<PendingProposal<S::Output>>,
    reads: HashMap<ReadId, PendingRead<S>>,
    next_read: ReadId,
    pub(crate) change: Option<PendingChange>,
    pub(crate) deferred_change: Option<DeferredChange>,
    transfers: Vec<PendingTransfer>,
    /// Proposers answered by [`applied`](Self::applied) and still to be
    /// woken, by [`wake`](Self::wake).
    woken: Wakeups<S::Output>,
}

impl<S: StateMachine> Default for Pending<S> {
    fn default() -> Self {
        Self {
            batch_replies: Vec::new(),
            proposals: VecDeque::new(),
            reads: HashMap::new(),
            next_read: 0,
            change: None,
            deferred_change: None,
            transfers: Vec::new(),
            woken: Wakeups::default(),
        }
    }
}

impl<S: StateMachine> Pending<S> {
    /// Requests held (batch, proposals, reads, change, transfers); the
    /// many-groups driver bounds their total.
    #[cfg(feature = "persistence")]
    pub(crate) fn len(&self) -> usize {
        self.batch_replies.len()
            + self.proposals.len()
            + self.reads.len()
            + usize::from(self.change.is_some())
            + usize::from(self.deferred_change.is_some())
            + self.transfers.len()
    }

    /// The batch stepped: `proposed` took the replies it matched;
    /// `error` (the step's) or `OutcomeUnknown` (cannot happen: a reply the
    /// step did not match) fails the rest rather than strand them.
    pub(crate) fn batch_done(&mut self, error: Option<RuntimeError>) {
        let error = error.unwrap_or(RuntimeError::OutcomeUnknown);
        for (reply, _) in self.batch_replies.drain(..) {
            reply.send(Err(error.clone()));
        }
    }

    /// The batch's step put its entries at `first..=last` in `term`
    /// ([`RaftNode::last_proposal`](crate::RaftNode::last_proposal)).
    pub(crate) fn proposed(&mut self, Proposal { first, last, term }: Proposal) {
        let n = (last + 1).saturating_sub(first) as usize;
        let take = n.min(self.batch_replies.len());
        for (i, (reply, deadline)) in self.batch_replies.drain(..take).enumerate() {
            self.proposals.push_back(PendingProposal {
                index: first + i as u64,
                term,
                reply: reply.appended(),
                deadline,
            });
        }
    }

    /// A command was applied: answer its proposer, or the proposers whose
    /// entries were replaced (`leader`: the leader now known).
    pub(crate) fn applied(&mut self, index: Index, term: Term, output: S::Output, leader: Option<NodeId>) {
        while let Some(front) = self.proposals.front() {
            if front.index > index {
                break;
            }
            let Some(p) = self.proposals.pop_front() else { break };
            if p.index == index && p.term == term {
                // Woken with the rest of the driver's answers (`wake`).
                p.reply.send_later(Ok(output), &mut self.woken);
                return;
            }
            p.reply.send(Err(RuntimeError::LeadershipLost { leader }));
        }
    }

    /// Wakes the proposers [`applied`](Self::applied) answered since the
    /// last call. A driver calls it once it has carried out a step's
    /// actions.
    pub(crate) fn wake(&mut self) {
        self.woken.wake_all();
    }

    /// Callers waiting on the replies of appended proposals now.
    #[cfg(all(test, not(loom), feature = "persistence"))]
    pub(crate) fn waiting_proposers(&self) -> usize {
        self.proposals.iter().map(|p| p.reply.waiters()).sum()
    }

    /// Proposers answered and not woken yet.
    #[cfg(all(test, not(loom), feature = "persistence"))]
    pub(crate) fn owed_wakeups(&self) -> usize {
        self.woken.owed()
    }

    /// Fails the proposals at or below `index` with `error` (their outcome
    /// is not what they asked for — another entry took their index — or is
    /// unknown here, covered by a snapshot).
    pub(crate) fn fail_proposals_through(&mut self, index: Index, error: RuntimeError) {
        while self.proposals.front().is_some_and(|p| p.index <= index) {
            if let Some(p) = self.proposals.pop_front() {
                p.reply.send(Err(error.clone()));
            }
        }
    }

    /// Holds a read job; returns the id to step `Event::Read` with.
    pub(crate) fn add_read(&mut self, job: ReadJob<S>, deadline: Option<Instant>) -> ReadId {
        self.next_read += 1;
        self.reads.insert(self.next_read, PendingRead { job, deadline });
        self.next_read
    }

    /// Answers read `id` with `state` (the state machine, or why not);
    /// returns whether it was pending.
    pub(crate) fn finish_read(&mut self, id: ReadId, state: Result<&S, RuntimeError>) -> bool {
        match self.reads.remove(&id) {
            Some(read) => {
                (read.job)(state);
                true
            }
            None => false,
        }
    }

    /// Refuses a change while another is pending (answered here: returns
    /// false); else holds it with index 0 until `Action::MembershipChanged`
    /// gives its entry, and returns true: step it.
    pub(crate) fn begin_change(&mut self, reply: Reply<Membership>, deadline: Option<Instant>) -> bool {
        if self.change.is_some() || self.deferred_change.is_some() {
            let index = self.change.as_ref().map_or(0, |c| c.index);
            reply.send(Err(RuntimeError::Refused(Arc::new(Error::ChangeInProgress { index }))));
            return false;
        }
        self.change = Some(PendingChange { index: 0, reply, deadline });
        true
    }

    /// The change step failed with `error`: a `NotReady` leader (no entry of
    /// its term committed yet) retries `change` on the next tick; anything
    /// else fails it.
    pub(crate) fn change_failed(&mut self, change: MembershipChange, error: RuntimeError) {
        if let Some(c) = self.change.take() {
            if matches!(&error, RuntimeError::Refused(e) if matches!(**e, Error::NotReady)) {
                self.deferred_change = Some((change, c.reply, c.deadline));
            } else {
                c.reply.send(Err(error));
            }
        }
    }

    /// The change step appended nothing: the configuration already is the
    /// target, `current`.
    pub(crate) fn change_stepped(&mut self, current: &Membership) {
        if self.change.as_ref().is_some_and(|c| c.index == 0) {
            if let Some(c) = self.change.take() {
                c.reply.send(Ok(current.clone()));
            }
        }
    }

    /// `Action::MembershipChanged`: the pending change's entry, if it is
    /// this one.
    pub(crate) fn membership_changed(&mut self, index: Index) {
        if let Some(c) = self.change.as_mut().filter(|c| c.index == 0) {
            c.index = index;
        }
    }

    /// `Action::MembershipCommitted`: answers the pending change once its
    /// final (not joint) configuration committed.
    pub(crate) fn membership_committed(&mut self, index: Index, membership: Membership) {
        let done = self.change.as_ref().is_some_and(|c| c.index != 0 && index >= c.index);
        if done && !membership.is_joint() {
            if let Some(c) = self.change.take() {
                c.reply.send(Ok(membership));
            }
        }
    }

    /// Holds a transfer to `to` until the node reports its end.
    pub(crate) fn add_transfer(&mut self, to: NodeId, reply: Reply<()>, deadline: Option<Instant>) {
        self.transfers.push(PendingTransfer { to, reply, deadline, stepped_down: false });
    }

    /// `Action::TransferEnded`.
    pub(crate) fn transfer_ended(&mut self, to: NodeId, outcome: TransferOutcome) {
        for t in self.transfers.iter_mut().filter(|t| t.to == to) {
            t.stepped_down = outcome == TransferOutcome::SteppedDown;
        }
        if outcome != TransferOutcome::SteppedDown {
            for t in self.take_transfers(|t| t.to == to) {
                t.reply.send(Err(RuntimeError::TransferFailed(outcome)));
            }
        }
    }

    /// Removes the pending transfers `which` selects and returns them (the
    /// rest keep their order).
    fn take_transfers(&mut self, which: impl Fn(&PendingTransfer) -> bool) -> Vec<PendingTransfer> {
        if !self.transfers.iter().any(&which) {
            return Vec::new();
        }
        let (taken, kept) = std::mem::take(&mut self.transfers).into_iter().partition(which);
        self.transfers = kept;
        taken
    }

    /// `Action::RoleChanged`: answers transfers to the new leader; a node
    /// that no longer leads fails its proposals, change and other transfers
    /// (outcome unknown); a node that leads again after stepping down for a
    /// transfer fails that transfer (its target did not take over).
    pub(crate) fn role_changed(&mut self, role: Role, leader: Option<NodeId>) {
        if let Some(now) = leader {
            for t in self.take_transfers(|t| t.to == now) {
                t.reply.send(Ok(()));
            }
            let failed = if role == Role::Leader {
                RuntimeError::TransferFailed(TransferOutcome::SteppedDown)
            } else {
                RuntimeError::LeadershipLost { leader }
            };
            for t in self.transfers.drain(..) {
                t.reply.send(Err(failed.clone()));
            }
        }
        if role != Role::Leader {
            for p in self.proposals.drain(..) {
                p.reply.send(Err(RuntimeError::LeadershipLost { leader }));
            }
            if let Some(c) = self.change.take() {
                c.reply.send(Err(RuntimeError::LeadershipLost { leader }));
            }
        }
    }

    /// Fails requests past their deadline (checked once per tick).
    pub(crate) fn expire(&mut self, now: Instant) {
        let expired = |d: &Option<Instant>| d.is_some_and(|d| d <= now);
        if self.proposals.iter().any(|p| expired(&p.deadline)) {
            let (late, kept) = std::mem::take(&mut self.proposals).into_iter().partition(|p| expired(&p.deadline));
            self.proposals = kept;
            for p in late {
                p.reply.send(Err(RuntimeError::Timeout));
            }
        }
        let late: Vec<ReadId> = self.reads.iter().filter(|(_, r)| expired(&r.deadline)).map(|(&id, _)| id).collect();
        for id in late {
            self.finish_read(id, Err(RuntimeError::Timeout));
        }
        if self.change.as_ref().is_some_and(|c| expired(&c.deadline)) {
            if let Some(c) = self.change.take() {
                c.reply.send(Err(RuntimeError::Timeout));
            }
        }
        if self.deferred_change.as_ref().is_some_and(|(_, _, d)| expired(d)) {
            if let Some((_, reply, _)) = self.deferred_change.take() {
                reply.send(Err(RuntimeError::Timeout));
            }
        }
        for t in self.take_transfers(|t| expired(&t.deadline)) {
            t.reply.send(Err(if t.stepped_down {
                RuntimeError::LeadershipLost { leader: None }
            } else {
                RuntimeError::Timeout
            }));
        }
    }

    /// Fails everything held with `error` (the runtime stops, or the group
    /// is removed).
    pub(crate) fn fail_all(&mut self, error: &RuntimeError) {
        for (reply, _) in self.batch_replies.drain(..) {
            reply.send(Err(error.clone()));
        }
        // Appended: they may still commit on the other replicas, whatever
        // stopped this node from seeing them applied.
        let appended = if error.outcome_unknown() { error.clone() } else { RuntimeError::OutcomeUnknown };
        for p in self.proposals.drain(..) {
            p.reply.send(Err(appended.clone()));
        }
        for (_, read) in self.reads.drain() {
            (read.job)(Err(error.clone()));
        }
        if let Some(c) = self.change.take() {
            c.reply.send(Err(error.clone()));
        }
        if let Some((_, reply, _)) = self.deferred_change.take() {
            reply.send(Err(error.clone()));
        }
        for t in self.transfers.drain(..) {
            t.reply.send(Err(error.clone()));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::requests::oneshot;

    struct Count;
    impl StateMachine for Count {
        type Output = u64;
        fn apply(&mut self, index: Index, _command: &bytes::Bytes) -> u64 {
            index
        }
        fn snapshot(&self) -> bytes::Bytes {
            bytes::Bytes::new()
        }
        fn restore(&mut self, _data: &bytes::Bytes) {}
    }

    /// Proposals appended to the log, then left behind by the runtime
    /// (stopped, halted, its group removed, or the driver unwinding from a
    /// panic), are answered "outcome unknown": they may still commit on
    /// the other replicas. A batch never appended keeps the runtime's error.
    #[test]
    fn appended_proposals_left_behind_have_an_unknown_outcome() {
        for error in [RuntimeError::ShuttingDown, RuntimeError::UnknownGroup(3)] {
            let mut pending = Pending::<Count>::default();
            let (appended, appended_waits) = oneshot();
            let (queued, queued_waits) = oneshot();
            pending.batch_replies.push((appended, None));
            pending.proposed(Proposal { first: 5, last: 5, term: 2 });
            pending.batch_replies.push((queued, None));
            pending.fail_all(&error);
            let outcome = appended_waits.wait(None);
            assert!(matches!(outcome, Err(RuntimeError::OutcomeUnknown)), "{outcome:?}");
            assert_eq!(format!("{:?}", queued_waits.wait(None)), format!("{:?}", Err::<u64, _>(error)));
        }
        // Dropped with the driver's state (a panic unwinding it).
        let mut pending = Pending::<Count>::default();
        let (appended, waits) = oneshot();
        pending.batch_replies.push((appended, None));
        pending.proposed(Proposal { first: 1, last: 1, term: 1 });
        drop(pending);
        assert!(matches!(waits.wait(None), Err(RuntimeError::OutcomeUnknown)));
    }

    /// A transfer whose leader stepped down for it and then won again (its
    /// target never took over) is answered at once, as failed; one whose
    /// target leads succeeds; another node leading loses it.
    #[test]
    fn a_transfer_ends_with_whoever_leads_next() {
        for (role, leader, expect) in [
            (Role::Leader, Some(1), "Err(TransferFailed(SteppedDown))"),
            (Role::Follower, Some(2), "Ok(())"),
            (Role::Follower, Some(3), "Err(LeadershipLost { leader: Some(3) })"),
        ] {
            let mut pending = Pending::<Count>::default();
            let (reply, waits) = oneshot();
            pending.add_transfer(2, reply, None);
            pending.transfer_ended(2, TransferOutcome::SteppedDown);
            pending.role_changed(Role::Follower, None);
            assert_eq!(pending.transfers.len(), 1, "still waiting to learn who leads");
            pending.role_changed(role, leader);
            assert!(pending.transfers.is_empty());
            assert_eq!(format!("{:?}", waits.wait(None)), expect);
        }
    }
}
