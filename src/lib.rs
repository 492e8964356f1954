//! raft-io: the Raft consensus protocol as a deterministic, sans-I/O state
//! machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

pub mod config;
pub mod error;
pub mod log;
pub mod membership;
pub mod message;
pub mod quorum;
mod rng;
pub mod transport;
pub mod types;

pub use config::RaftConfig;
pub use error::{Error, Result, StorageError};
#[cfg(feature = "persistence")]
pub use log::WalLog;
pub use log::{MemoryLog, RaftLog};
pub use membership::{Membership, MembershipChange, MembershipError};
pub use message::*;
pub use transport::{MemoryTransport, RaftTransport, TransportError};
pub use types::*;
