//! [`RuntimeError`]: why a request to the runtime did not succeed.

use std::sync::Arc;

use crate::error::Error;
use crate::node::{ReadFailure, TransferOutcome};
use crate::types::NodeId;

/// Why a [`RaftHandle`](super::RaftHandle) request did not succeed.
///
/// Every request ends in exactly one result, and none waits forever: a
/// request is answered, refused, times out, or fails with
/// [`ShuttingDown`](Self::ShuttingDown) when the runtime stops.
///
/// Two variants leave the outcome of a proposal **unknown**:
/// [`LeadershipLost`](Self::LeadershipLost) and [`Timeout`](Self::Timeout).
/// The command was appended to the leader's log and may still commit (a new
/// leader may hold it); make commands idempotent or check before retrying.
/// Every other error means the command was not appended.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// This node is not the leader; send the request to `leader` (if known).
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// This node lost leadership while the request was pending. For a
    /// proposal the outcome is unknown.
    #[error("leadership lost while the request was pending; outcome unknown (leader hint: {leader:?})")]
    LeadershipLost {
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// The request did not complete within its timeout. For a proposal the
    /// outcome is unknown.
    #[error("request timed out")]
    Timeout,
    /// The runtime is shutting down or has stopped.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// Backpressure: too many requests are queued, or the leader has too
    /// many uncommitted bytes. Nothing was appended; retry later.
    #[error("busy: too many requests or uncommitted bytes pending")]
    Busy,
    /// A leadership transfer ended without the target taking over.
    #[error("leadership transfer failed: {0:?}")]
    TransferFailed(TransferOutcome),
    /// The node refused the request (for example an invalid membership
    /// change, a learner asked for a read, an oversized command).
    #[error("refused: {0}")]
    Refused(#[source] Arc<Error>),
    /// The node halted after a storage failure; the runtime stopped. Reopen
    /// the log and start a new runtime.
    #[error("node halted: {0}")]
    Halted(#[source] Arc<Error>),
}

impl RuntimeError {
    /// Maps an error returned by [`RaftNode::step`](crate::RaftNode::step).
    pub(crate) fn from_node(error: Error) -> Self {
        match error {
            Error::NotLeader { leader } => RuntimeError::NotLeader { leader },
            Error::Busy { .. } => RuntimeError::Busy,
            e @ (Error::Storage(_) | Error::Halted) => RuntimeError::Halted(Arc::new(e)),
            e => RuntimeError::Refused(Arc::new(e)),
        }
    }

    /// Maps why the node failed a read.
    pub(crate) fn from_read(reason: ReadFailure, leader: Option<NodeId>, me: NodeId) -> Self {
        match reason {
            ReadFailure::LeadershipLost => RuntimeError::LeadershipLost { leader },
            ReadFailure::Timeout => RuntimeError::Timeout,
            ReadFailure::NotMember => RuntimeError::Refused(Arc::new(Error::NotMember(me))),
        }
    }

    /// Whether the outcome of a proposal that failed with this error is
    /// unknown (it may still commit).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, RuntimeError::LeadershipLost { .. } | RuntimeError::Timeout)
    }
}
