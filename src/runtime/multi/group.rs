//! [`Hosted`]: what the driver keeps for each group besides its node (the
//! host has that): the state machine, the requests in flight, the batch
//! being built; and how the group's actions reach them.

use bytes::Bytes;

use super::super::apply::{apply_one, apply_range};
use super::super::pending::Pending;
use super::super::{RuntimeError, StateMachine};
use crate::log::RaftLog;
use crate::node::{Action, RaftNode};

/// One group's state on the driver thread.
pub(super) struct Hosted<S: StateMachine> {
    pub(super) sm: S,
    pub(super) pending: Pending<S>,
    /// Commands of the batch being built (replies in `pending`).
    pub(super) batch: Vec<Bytes>,
    pub(super) batch_bytes: usize,
    pub(super) snapshot_wanted: bool,
    /// When the batch began waiting for the group's round in flight.
    pub(super) waiting_since: Option<std::time::Instant>,
}

/// What an action did that the driver counts.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) applied: u64,
    pub(super) reads: u64,
    /// Why an `Action::ApplyRange` could not be read (the runtime halts).
    pub(super) unreadable: Option<crate::Error>,
}

impl<S: StateMachine> Hosted<S> {
    pub(super) fn new(sm: S) -> Self {
        Self {
            sm,
            pending: Pending::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            snapshot_wanted: false,
            waiting_since: None,
        }
    }

    /// Carries out one of the group's actions (its `Send`s were routed by
    /// the host), `node` being the group's node after the step.
    pub(super) fn act<L: RaftLog>(&mut self, node: &RaftNode<L>, action: Action, fx: &mut Effects) {
        match action {
            Action::Apply { index, term, command } => {
                apply_one(&mut self.sm, &mut self.pending, (index, term, &command), node.leader());
                fx.applied += 1;
            }
            Action::ApplyRange { first, last } => match apply_range(&mut self.sm, &mut self.pending, node, first, last)
            {
                Ok(n) => fx.applied += n,
                Err(e) => fx.unreadable = Some(e),
            },
            Action::RoleChanged { role, leader, .. } => self.pending.role_changed(role, leader),
            Action::MembershipChanged { index, .. } => self.pending.membership_changed(index),
            Action::MembershipCommitted { index, membership } => self.pending.membership_committed(index, membership),
            Action::SnapshotWanted { .. } => self.snapshot_wanted = true,
            Action::RestoreSnapshot { meta, data } => {
                self.sm.restore(&data);
                self.pending.fail_proposals_through(meta.index, RuntimeError::OutcomeUnknown);
            }
            Action::ReadReady { id, .. } => fx.reads += u64::from(self.pending.finish_read(id, Ok(&self.sm))),
            Action::ReadFailed { id, reason } => {
                let error = RuntimeError::from_read(reason, node.leader(), node.id());
                self.pending.finish_read(id, Err(error));
            }
            Action::TransferEnded { to, outcome } => self.pending.transfer_ended(to, outcome),
            // The shared WAL's flush reports durability (driver.rs);
            // removal is visible in the status; sends came as envelopes.
            _ => {}
        }
    }

    /// Proposals at or below the applied index that no `Apply` answered
    /// (another leader's entry took their index): lost. Then wakes the
    /// proposers answered since the last settle: the driver settles its
    /// groups once it has carried out all the actions in hand, so a client
    /// wakes once to every answer they held.
    pub(super) fn settle<L: RaftLog>(&mut self, node: &RaftNode<L>) {
        let lost = RuntimeError::LeadershipLost { leader: node.leader() };
        self.pending.fail_proposals_through(node.last_applied(), lost);
        self.pending.wake();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::requests::oneshot;
    use crate::{Event, RaftConfig, RaftNode};
    use bytes::Bytes;

    struct Len;

    impl StateMachine for Len {
        type Output = usize;
        fn apply(&mut self, _index: u64, command: &Bytes) -> usize {
            command.len()
        }
        fn snapshot(&self) -> Bytes {
            Bytes::new()
        }
        fn restore(&mut self, _data: &Bytes) {}
    }

    #[test]
    fn settling_a_group_wakes_the_proposers_its_applies_answered() {
        let mut node: RaftNode = RaftNode::new(RaftConfig::new(1, [1]).apply_ranges(true)).unwrap();
        node.step(Event::Campaign).unwrap().for_each(drop);
        let mut hosted = Hosted::new(Len);
        let (reply, waiter) = oneshot::<usize>();
        hosted.pending.batch_replies.push((reply, None));
        let actions: Vec<Action> = node.step(Event::Propose(Bytes::from_static(b"abc"))).unwrap().collect();
        hosted.pending.proposed(node.last_proposal().unwrap());
        let client = std::thread::spawn(move || waiter.wait(None));
        let mut fx = Effects::default();
        let mut applies = Vec::new();
        for action in actions {
            match action {
                Action::ApplyRange { .. } => applies.push(action),
                other => hosted.act(&node, other, &mut fx),
            }
        }
        while hosted.pending.waiting_proposers() == 0 {
            std::thread::yield_now();
        }
        for action in applies {
            hosted.act(&node, action, &mut fx);
        }
        assert_eq!(fx.applied, 1);
        assert_eq!(hosted.pending.owed_wakeups(), 1, "the answer waits for the turn's end");
        hosted.settle(&node);
        assert_eq!(hosted.pending.owed_wakeups(), 0);
        assert_eq!(client.join().unwrap().unwrap(), 3);
    }
}
