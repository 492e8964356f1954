//! Support for exhaustive model checking of real nodes (feature `sim`):
//! the replayable script format a model checker prints its counterexamples
//! in ([`ModelScript`]), the replay that runs one on real nodes under the
//! simulator's checkers ([`replay`]), and the client bookkeeping both use
//! ([`RegisterClients`]). The model itself (a `stateright` model over
//! [`RaftNode`](crate::RaftNode)s) lives in the crate's tests; see
//! `docs/TESTING.md`, "Model checking".
//!
//! A script in text form:
//!
//! ```
//! use raft_io::sim::model::{ModelScript, replay};
//!
//! let text = "raft-io model script 1
//! voters 1 2 3
//! steps
//! timeout 1
//! ";
//! let script: ModelScript = text.parse().unwrap();
//! assert!(replay(&script).unwrap().failure.is_none());
//! ```

mod clients;
mod replay;
mod script;

pub use clients::{KEY, RegisterClients};
pub use replay::{ReplayError, ReplayFailure, ReplayReport, panic_message, replay};
pub use script::{MessageRef, ModelCluster, ModelScript, ModelStep, ScriptError, command, message_digest};

/// Whether `message` can no longer change its receiver, whose term is
/// `receiver_term`: a reply, a transfer order or a forwarded read of an
/// earlier term. A node drops such a message without answering, and since
/// a node's term never decreases (a term change is synced before the step
/// that made it returns, so crashes keep it), it would drop it at any later
/// time too. Delivering it is the same as losing it, so a model checker may
/// remove it from the network at once; [`replay`] does the same after every
/// step, so that the network capacity counts the same messages.
pub fn is_stale(message: &Message, receiver_term: Term) -> bool {
    message.term < receiver_term
        && matches!(
            message.body,
            MessageBody::PreVoteResponse(_)
                | MessageBody::VoteResponse(_)
                | MessageBody::AppendResponse(_)
                | MessageBody::HeartbeatResponse(_)
                | MessageBody::SnapshotResponse(_)
                | MessageBody::TimeoutNow
                | MessageBody::ReadIndex(_)
                | MessageBody::ReadIndexResponse(_)
        )
}

use bytes::Bytes;

use crate::error::Error;
use crate::message::{Message, MessageBody};
use crate::sim::{HashChain, StateMachine};
use crate::types::Term;

/// The snapshot a modelled node's state machine takes: its [`HashChain`]'s
/// snapshot (16 bytes), then its register (the last value it applied), if
/// it holds one. The model and [`replay`] both build snapshots with it, so
/// the messages that carry one are the same byte for byte.
///
/// ```
/// use raft_io::sim::HashChain;
/// use raft_io::sim::model::{snapshot_data, snapshot_register};
///
/// let data = snapshot_data(&HashChain::default(), Some(7));
/// assert_eq!(snapshot_register(&data), Some(7));
/// assert_eq!(snapshot_register(&snapshot_data(&HashChain::default(), None)), None);
/// ```
pub fn snapshot_data(chain: &HashChain, register: Option<u8>) -> Bytes {
    let mut data = chain.snapshot().to_vec();
    data.extend(register);
    data.into()
}

/// The register a snapshot built by [`snapshot_data`] holds (none in the
/// empty snapshot a joining node receives from a leader that never took
/// one).
pub fn snapshot_register(data: &[u8]) -> Option<u8> {
    data.get(16).copied()
}

/// Whether `error`, returned for a client request (a proposal, a read, a
/// membership change, a forced election), is an expected refusal — the node
/// cannot serve it now and changed nothing — rather than a failure.
/// Storage failures, a halted node, corrupt or foreign logs and invalid
/// configurations are failures; so is any error for a tick or a message.
pub fn expected_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::NotLeader { .. }
            | Error::TransferPending { .. }
            | Error::Busy { .. }
            | Error::CannotCampaign(_)
            | Error::Membership(_)
            | Error::ChangeInProgress { .. }
            | Error::NotReady
            | Error::InvalidTransferTarget(_)
            | Error::DuplicateRead(_)
            | Error::LeaseReadsDisabled
            | Error::NotMember(_)
            | Error::Learner
    )
}
