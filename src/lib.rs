//! raft-io: the Raft consensus protocol as a deterministic, sans-I/O state
//! machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

pub mod config;
pub mod error;
#[cfg(feature = "framing")]
pub mod framing;
pub mod log;
pub mod membership;
pub mod message;
mod node;
pub mod quorum;
mod rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod transport;
pub mod types;

pub use config::RaftConfig;
pub use error::{Error, Result, StorageError};
pub use log::{MemoryLog, RaftLog};
pub use membership::{Membership, MembershipChange, MembershipError};
pub use message::*;
pub use node::{
    Action, Actions, Event, PeerStatus, ProgressState, RaftNode, ReadFailure, ReadKind, Status, TransferOutcome,
};
pub use transport::{MemoryTransport, RaftTransport, TransportError};
pub use types::*;
