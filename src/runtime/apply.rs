//! Applying a node's committed commands to a driver's state machine and
//! answering their proposers: one command (`Action::Apply`) or a range
//! read borrowed from the node's log (`Action::ApplyRange`). Shared by the
//! single-group driver and the many-groups driver.

use bytes::Bytes;

use super::StateMachine;
use super::pending::Pending;
use crate::error::Error;
use crate::log::RaftLog;
use crate::node::RaftNode;
use crate::types::{Index, NodeId, Term};

/// Applies `command`, committed at `index` in `term`, and answers its
/// proposer (`leader`: the leader now known).
pub(crate) fn apply_one<S: StateMachine>(
    sm: &mut S,
    pending: &mut Pending<S>,
    (index, term, command): (Index, Term, &Bytes),
    leader: Option<NodeId>,
) {
    let output = sm.apply(index, command);
    pending.applied(index, term, output, leader);
}

/// Applies the committed commands `first..=last` of `node`, borrowed from
/// its log, as [`apply_one`] each; returns how many. An error means the
/// range could not be read (the runtime halts: its state machine would
/// miss commands, and the driver acts on nothing after them): the range
/// is held while the driver carries out each step's actions before the
/// next step, but a log whose reads fail (one paging its entries from a
/// disk) can still refuse it.
pub(crate) fn apply_range<S: StateMachine, L: RaftLog>(
    sm: &mut S,
    pending: &mut Pending<S>,
    node: &RaftNode<L>,
    first: Index,
    last: Index,
) -> Result<u64, Error> {
    let (leader, mut applied) = (node.leader(), 0);
    node.visit_applied(first, last, |index, term, command| {
        apply_one(sm, pending, (index, term, command), leader);
        applied += 1;
    })?;
    Ok(applied)
}
