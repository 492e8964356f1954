//! raft-io: the Raft consensus protocol as a deterministic, sans-I/O state
//! machine, with a durable log, a wire format, a TCP runtime and a
//! fault-injecting cluster simulator around it.
//!
//! A [`RaftNode`] consumes [`Event`]s and returns [`Action`]s. It never reads a
//! clock, opens a socket or file, spawns a thread or draws OS randomness:
//! you drive it. This page is a tutorial; the normative description of the
//! protocol, messages and formats is `docs/PROTOCOL.md`.
//!
//! # 1. Create a node
//!
//! Every member of a new cluster starts with the same voter list. A node
//! that will be *added* to a running cluster starts with
//! [`RaftConfig::joining`] instead: it has no configuration of its own and
//! never campaigns until the leader tells it it is a member.
//!
//! ```
//! use raft_io::{RaftConfig, RaftNode};
//!
//! let config = RaftConfig::new(1, [1, 2, 3])   // node 1 of voters {1, 2, 3}
//!     .election_timeout(10, 20)                // in ticks
//!     .heartbeat_interval(2)
//!     .seed(42);                               // election timeouts are drawn from this
//! let node = RaftNode::new(config)?;           // on a MemoryLog
//! assert!(!node.is_leader());
//! # Ok::<(), raft_io::Error>(())
//! ```
//!
//! # 2. Tick, route, apply
//!
//! Time is an input: call `step(Event::Tick)` at a fixed interval of your
//! choosing (10–100 ms is typical). Deliver every message a peer sends you
//! with `Event::Message`. Carry out the actions: send messages (at once, in
//! any order), apply committed commands (in order).
//!
//! ```
//! use raft_io::{Action, Event, MemoryTransport, RaftConfig, RaftNode, RaftTransport};
//!
//! let ids = [1, 2, 3];
//! let mut ends = MemoryTransport::cluster(ids);
//! let mut nodes: Vec<RaftNode> = ids.iter().map(|&id| RaftNode::new(RaftConfig::new(id, ids)).unwrap()).collect();
//! let mut applied = vec![Vec::new(); 3];
//! // One round of the driver loop for every node.
//! let mut round = |nodes: &mut Vec<RaftNode>, ends: &mut Vec<MemoryTransport>, applied: &mut Vec<Vec<u64>>| {
//!     for i in 0..3 {
//!         let mut events = vec![Event::Tick];
//!         while let Some(m) = ends[i].try_recv() {
//!             events.push(Event::Message(m));
//!         }
//!         for event in events {
//!             for action in nodes[i].step(event).unwrap() {
//!                 match action {
//!                     Action::Send { message, .. } => { let _ = ends[i].send(message); }
//!                     Action::Apply { index, .. } => applied[i].push(index),
//!                     _ => {}
//!                 }
//!             }
//!         }
//!     }
//! };
//! while !nodes.iter().any(|n| n.is_leader()) {
//!     round(&mut nodes, &mut ends, &mut applied);
//! }
//! # for _ in 0..5 { round(&mut nodes, &mut ends, &mut applied); }
//! let leader = nodes.iter().position(|n| n.is_leader()).unwrap();
//! assert!(nodes.iter().all(|n| n.leader() == Some(leader as u64 + 1)));
//! ```
//!
//! # 3. Propose
//!
//! Only the leader accepts proposals; a follower answers
//! [`Error::NotLeader`] with the leader it knows, to redirect the client.
//! [`RaftNode::last_proposal`], right after the step, tells you the index
//! and term a proposal got; it is committed when an [`Action::Apply`] with
//! that index and term arrives.
//! Proposing many commands in one `Event::ProposeBatch` costs one log append
//! and one sync.
//!
//! ```
//! use raft_io::{Action, Error, Event, Proposal, RaftConfig, RaftNode};
//!
//! let mut node = RaftNode::new(RaftConfig::single(1))?;
//! while !node.is_leader() {
//!     node.step(Event::Tick)?.for_each(drop);
//! }
//! let actions: Vec<Action> = node.step(Event::ProposeBatch(vec!["a".into(), "b".into()]))?.collect();
//! assert_eq!(node.last_proposal(), Some(Proposal { first: 2, last: 3, term: 1 }));
//! // A single node commits at once: both are applied in the same step.
//! assert_eq!(actions.iter().filter(|a| matches!(a, Action::Apply { .. })).count(), 2);
//! assert!(matches!(node.step(Event::Propose("".into())), Err(Error::EmptyProposal)));
//! # Ok::<(), raft_io::Error>(())
//! ```
//!
//! # 4. Persist
//!
//! A node owns a [`RaftLog`]. Within one `step` it appends, truncates and
//! sets its hard state through the log, then calls [`RaftLog::sync`] at most
//! once before returning: every action is safe to carry out as soon as you
//! get it. [`MemoryLog`] keeps everything in memory (and knows what a crash
//! would lose, for tests); with feature `persistence`, `WalLog` stores it on
//! disk. [`RaftNode::with_log`] recovers a restarted node from its log.
//!
//! ```
//! use raft_io::{Event, MemoryLog, RaftConfig, RaftLog, RaftNode};
//!
//! let mut node = RaftNode::with_log(RaftConfig::single(1), MemoryLog::new())?;
//! while !node.is_leader() {
//!     node.step(Event::Tick)?.for_each(drop);
//! }
//! node.step(Event::Propose("x".into()))?.for_each(drop);
//! // A crash keeps what was synced: everything, since every step syncs.
//! let survived = node.into_log().durable();
//! let restarted = RaftNode::with_log(RaftConfig::single(1), survived)?;
//! assert_eq!(restarted.last_index(), 2);
//! assert!(!restarted.is_leader(), "a restarted leader comes back as a follower");
//! # Ok::<(), raft_io::Error>(())
//! ```
//!
//! # 5. Change membership
//!
//! The leader accepts one change at a time, once an entry of its own term
//! has committed: add or remove a member, promote a learner, or replace the
//! voter set (through a joint configuration when more than one voter
//! changes). [`Action::MembershipChanged`] reports each configuration as it
//! takes effect (on append) and [`Action::MembershipCommitted`] when it
//! commits.
//!
//! ```
//! use raft_io::{Action, Event, MembershipChange, RaftConfig, RaftNode};
//!
//! let mut node = RaftNode::new(RaftConfig::single(1))?;
//! while !node.is_leader() {
//!     node.step(Event::Tick)?.for_each(drop);
//! }
//! let actions: Vec<Action> = node.step(Event::ChangeMembership(MembershipChange::AddLearner(2)))?.collect();
//! assert!(actions.iter().any(|a| matches!(a, Action::MembershipChanged { .. })));
//! assert_eq!(node.membership().learners(), &[2]);
//! # Ok::<(), raft_io::Error>(())
//! ```
//!
//! # 6. Read
//!
//! Reads need not go through the log. `Event::Read` with
//! [`ReadKind::Index`] confirms leadership with one heartbeat round (shared by
//! all reads of a step) and releases the read with [`Action::ReadReady`] once
//! the state machine has applied through the read index; on a follower the
//! read is forwarded to the leader. [`ReadKind::Lease`] skips the round trip
//! while the leader's lease holds. Every read ends in exactly one
//! `ReadReady` or `ReadFailed`.
//!
//! ```
//! use raft_io::{Action, Event, RaftConfig, RaftNode, ReadKind};
//!
//! let mut node = RaftNode::new(RaftConfig::single(1))?;
//! while !node.is_leader() {
//!     node.step(Event::Tick)?.for_each(drop);
//! }
//! let actions: Vec<Action> = node.step(Event::Read { id: 7, kind: ReadKind::Index })?.collect();
//! assert!(actions.contains(&Action::ReadReady { id: 7, index: 1 }));
//! # Ok::<(), raft_io::Error>(())
//! ```
//!
//! # 7. Run it on a network
//!
//! With feature `net`, you need not write the driver loop yourself:
//! `transport::TcpTransport` carries messages over TCP (std::net and
//! threads, no async runtime), and `runtime::Runtime` drives a node, its log,
//! the transport and your [`StateMachine`] on a thread of its own,
//! with group commit. Its cloneable `runtime::RaftHandle` proposes (and
//! returns the applied result), reads linearizably, changes the membership
//! and shuts down, from any thread. `cargo run --release --example
//! kv_cluster --features net,persistence` runs a three-node cluster with its
//! logs on disk.
//!
//! The TCP transport is plaintext unless told otherwise, and plaintext
//! authenticates nothing: anyone who can reach a node's port can pose as a
//! peer. With feature `tls`, `TcpConfig::tls` runs it over mutually
//! authenticated TLS, each certificate naming its node and cluster (add
//! `,tls` to the features and `-- --tls` to the command above). See
//! `SECURITY.md` for the threat model.
//!
//! # Testing your application
//!
//! With feature `sim`, `raft_io::sim::Cluster` runs a whole cluster in
//! one thread under seeded faults and checks Raft's five safety properties
//! after every event, with your state machine — the same [`StateMachine`]
//! the runtime drives. `raft_io::sim::Simulation` adds your invariant
//! (checked after every apply and restore on every node), your clients and
//! a sequential model their history must agree with, and a one-line replay
//! of any failure. See its documentation and `examples/bank_under_faults.rs`.
#![forbid(unsafe_code)]
// docs.rs builds with `--cfg docsrs` on nightly: every feature-gated item
// gets its feature badge.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

/// `true` when the named deliberate bug is switched on (builds with
/// `--cfg raft_io_mutants` only; `false`, at no cost, otherwise).
macro_rules! mutant {
    ($m:ident) => {{
        #[cfg(raft_io_mutants)]
        let on = crate::mutants::is_on(crate::mutants::Mutant::$m);
        #[cfg(not(raft_io_mutants))]
        let on = false;
        on
    }};
}

pub mod config;
#[cfg(any(feature = "framing", feature = "persistence"))]
mod crc;
pub mod error;
#[cfg(feature = "framing")]
pub mod framing;
mod id_hash;
pub mod log;
pub mod membership;
pub mod message;
pub mod multi;
#[cfg(raft_io_mutants)]
pub mod mutants;
mod node;
pub mod quorum;
pub mod recovery;
mod rng;
#[cfg(feature = "net")]
pub mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
mod state_machine;
mod sync;
#[cfg(feature = "metrics")]
pub mod telemetry;
pub mod transport;
pub mod types;

/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) carries every command,
/// entry and snapshot: re-exported so users need not pin a matching version.
pub use bytes;
pub use config::RaftConfig;
pub use error::{CampaignRefusal, CompletionRefusal, Error, GroupProblem, Result, StorageError};
#[cfg(feature = "persistence")]
pub use log::WalLog;
pub use log::{MemoryLog, RaftLog, Submitted, WriteToken};
pub use membership::{Membership, MembershipChange, MembershipError};
pub use message::*;
pub use node::{
    Action, Actions, Event, NodeMetrics, PeerMetrics, PeerStatus, ProgressState, Proposal, RaftNode, ReadFailure,
    ReadKind, Status, TransferOutcome,
};
pub use state_machine::StateMachine;
pub use transport::{MemoryTransport, RaftTransport, TransportError};
pub use types::*;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
