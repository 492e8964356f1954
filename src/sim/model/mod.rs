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

use crate::error::Error;

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
