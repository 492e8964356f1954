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
        Self { sm, pending: Pending::default(), batch: Vec::new(), batch_bytes: 0, snapshot_wanted: false }
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
            Action::Proposed { first, last, term } => self.pending.proposed(first, last, term),
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
    /// (another leader's entry took their index): lost.
    pub(super) fn settle<L: RaftLog>(&mut self, node: &RaftNode<L>) {
        let lost = RuntimeError::LeadershipLost { leader: node.leader() };
        self.pending.fail_proposals_through(node.last_applied(), lost);
    }
}
