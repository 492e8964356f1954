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
/// Four variants leave the outcome of a proposal **unknown**
/// ([`outcome_unknown`](Self::outcome_unknown)):
/// [`LeadershipLost`](Self::LeadershipLost), [`Timeout`](Self::Timeout),
/// [`OutcomeUnknown`](Self::OutcomeUnknown) and [`Killed`](Self::Killed).
/// The command was appended to the leader's log and may still commit (a new
/// leader may hold it); make commands idempotent or check before retrying.
/// Every other error means the command was not appended.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// This node is not the leader; send the request to `leader` (if known),
    /// at `leader_addr` when the replicated configuration gives the leader
    /// an address ([`MembershipChange::AddVoterAt`](crate::MembershipChange::AddVoterAt)).
    #[error("not the leader (leader hint: {leader:?} at {leader_addr:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// The leader's raft address, when the configuration in effect
        /// carries one that parses: a socket address or a host name and
        /// port ([`address_of`](super::address_of)).
        leader_addr: Option<crate::transport::PeerAddr>,
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
    /// The outcome of the proposal cannot be known here: its command was
    /// appended, and this node stopped following it before it saw it
    /// applied — the runtime shut down, halted or its state machine
    /// panicked, its group was removed, or a snapshot this node installed
    /// covered the entry. It may have committed (on the other replicas);
    /// check before retrying.
    #[error("the outcome is unknown: the command was appended, and not seen applied here")]
    OutcomeUnknown,
    /// No such group on this node: never created here, removed, or group
    /// 0 (the many-groups runtime, `runtime::multi`, feature
    /// `persistence`). A request that met it changed nothing.
    #[error("no group {0} on this node")]
    UnknownGroup(u64),
    /// `MultiHandle::create_group` (feature `persistence`) for a group this
    /// node hosts already.
    #[error("group {0} exists already on this node")]
    GroupExists(u64),
    /// The runtime was killed while the request was pending
    /// (`MultiHandle::kill`, feature `persistence`: stopped as in a crash,
    /// without a final flush). For a proposal the outcome is unknown: it may
    /// have been replicated and may still commit on the other replicas.
    #[error("the runtime was killed; outcome unknown")]
    Killed,
    /// A backup ([`RaftHandle::backup`](super::RaftHandle::backup)) could
    /// not be taken: the log could not be read, or holds nothing
    /// committed yet.
    #[error("backup failed: {0}")]
    Backup(#[source] Arc<crate::recovery::RecoveryError>),
}

impl RuntimeError {
    /// Maps an error returned by [`RaftNode::step`](crate::RaftNode::step).
    pub(crate) fn from_node(error: Error) -> Self {
        match error {
            Error::NotLeader { leader, leader_address } => {
                RuntimeError::NotLeader { leader, leader_addr: leader_address.as_ref().and_then(super::address_of) }
            }
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
        matches!(
            self,
            RuntimeError::LeadershipLost { .. }
                | RuntimeError::Timeout
                | RuntimeError::OutcomeUnknown
                | RuntimeError::Killed
        )
    }

    /// Whether the runtime has stopped for good ([`Halted`](Self::Halted),
    /// [`ShuttingDown`](Self::ShuttingDown), [`Killed`](Self::Killed)): no request to it can succeed;
    /// [`RaftHandle::stop_reason`](super::RaftHandle::stop_reason) says why.
    pub fn is_fatal(&self) -> bool {
        matches!(self, RuntimeError::Halted(_) | RuntimeError::ShuttingDown | RuntimeError::Killed)
    }

    /// Whether the request may succeed if sent again, here or at the hinted
    /// leader: not the leader, leadership lost, a timeout, backpressure, a
    /// failed transfer, or a refusal the node calls retryable
    /// ([`Error::is_retryable`]). For a proposal whose
    /// [`outcome_unknown`](Self::outcome_unknown), retry only an idempotent
    /// command.
    pub fn is_retryable(&self) -> bool {
        match self {
            RuntimeError::NotLeader { .. }
            | RuntimeError::LeadershipLost { .. }
            | RuntimeError::Timeout
            | RuntimeError::Busy
            | RuntimeError::TransferFailed(_) => true,
            RuntimeError::Refused(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Why a runtime stopped ([`RaftHandle::stop_reason`](super::RaftHandle::stop_reason)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// [`RaftHandle::shutdown`](super::RaftHandle::shutdown) was called, or
    /// the last handle was dropped.
    Shutdown,
    /// The node halted on a storage failure (the error says which); reopen
    /// the log and start a new runtime.
    Halted(Arc<Error>),
    /// The driver thread panicked (in the state machine, a read query or the
    /// transport); the message is the panic's, when it was a string.
    Panicked(String),
    /// The runtime was killed (`MultiHandle::kill`, feature
    /// `persistence`): stopped without a final flush, as in a crash.
    Killed,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Shutdown => f.write_str("shut down"),
            StopReason::Halted(e) => write!(f, "halted: {e}"),
            StopReason::Panicked(msg) => write!(f, "the driver panicked: {msg}"),
            StopReason::Killed => f.write_str("killed"),
        }
    }
}
