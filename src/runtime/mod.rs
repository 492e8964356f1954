//! A threaded runtime for real deployments (feature `net`): one thread
//! drives a [`RaftNode`], its log, a transport and your [`StateMachine`];
//! a cloneable [`RaftHandle`] lets any thread propose, read, change the
//! membership, transfer leadership, watch the status and shut down.
//!
//! # What the driver thread does
//!
//! Each turn of its loop it
//! 1. steps every message the transport received;
//! 2. steps [`Event::Tick`](crate::Event::Tick) once for every tick interval
//!    that passed — after a stall, all the missed ticks (up to 1000, and
//!    never fewer than `election_timeout_max + 1`), so the node's tick
//!    clock keeps up with real time and no lease outlives a stall — and
//!    fails requests past their deadline;
//! 3. takes every queued client request: all proposals become **one**
//!    [`Event::ProposeBatch`](crate::Event::ProposeBatch) — one log append,
//!    one fsync for all of them (group commit) — and each read, membership
//!    change or transfer its own step;
//! 4. carries out the actions of each step at once: sends messages,
//!    applies committed commands to the state machine (answering their
//!    proposers with the [`StateMachine::apply`] output), serves reads whose
//!    index was applied, takes a snapshot when the node asks for one;
//! 5. sleeps until the next tick, a message or a request.
//!
//! Nothing is made durable outside the node's [`RaftLog`]: the runtime
//! itself writes no file.
//!
//! Many groups per node: `runtime::multi` (feature `persistence` too)
//! drives a `MultiNode` host on one shared WAL, with one fsync and one
//! send batch per turn for every group.
//!
//! # Requests and their outcomes
//!
//! Every request ends in exactly one result; none waits forever (see
//! [`RuntimeError`]). A proposal returns once its command is committed
//! **and applied** on this node, with the apply output. On a follower it
//! fails at once with [`RuntimeError::NotLeader`], the leader's id and,
//! when the replicated configuration gives one, its address.
//! When this node loses leadership, its pending proposals fail with
//! [`RuntimeError::LeadershipLost`] (outcome unknown: the command may
//! still commit under the next leader). Shutdown fails everything pending
//! with [`RuntimeError::ShuttingDown`].
//!
//! # Example: a one-node cluster on loopback
//!
//! ```
//! use bytes::Bytes;
//! use raft_io::runtime::{Runtime, StateMachine};
//! use raft_io::transport::{TcpConfig, TcpTransport};
//! use raft_io::{RaftConfig, RaftNode};
//!
//! #[derive(Default)]
//! struct Log(Vec<Bytes>);
//!
//! impl StateMachine for Log {
//!     type Output = usize;
//!     fn apply(&mut self, _index: u64, command: &Bytes) -> usize {
//!         self.0.push(command.clone());
//!         self.0.len()
//!     }
//!     fn snapshot(&self) -> Bytes { Bytes::new() }
//!     fn restore(&mut self, _data: &Bytes) {}
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = RaftNode::new(RaftConfig::single(1))?;
//! let transport = TcpTransport::bind(TcpConfig::new(1, "127.0.0.1:0".parse()?))?;
//! let handle = Runtime::new(node, transport, Log::default()).start()?;
//!
//! let leader = handle.wait_for_leader(std::time::Duration::from_secs(10));
//! assert_eq!(leader, Some(1));
//! assert_eq!(handle.propose("first")?, 1);
//! assert_eq!(handle.propose("second")?, 2);
//! assert_eq!(handle.read(|log: &Log| log.0.len())?, 2);
//! handle.shutdown();
//! assert!(handle.propose("late").is_err());
//! # Ok(())
//! # }
//! ```

mod apply;
#[cfg(all(test, not(loom)))]
mod catch_up_tests;
mod driver;
mod error;
mod handle;
mod life;
#[cfg(feature = "persistence")]
pub mod multi;
mod options;
mod pending;
mod requests;
mod state_machine;
mod storage;
mod sync;
#[cfg(all(test, not(loom)))]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use crate::transport::tcp::{address_bytes, address_of};
pub use error::{RuntimeError, StopReason};
pub use handle::{LogProgress, RaftHandle};
pub use state_machine::StateMachine;

use self::options::CommonOptions;
use crate::log::RaftLog;
use crate::node::{RaftNode, ReadKind};
use crate::transport::{MemoryTransport, RaftTransport};
use crate::types::NodeId;

/// A transport the runtime can drive: any [`RaftTransport`] that can move
/// to the driver thread, optionally able to wake it when a message arrives.
pub trait Transport: RaftTransport + Send + 'static {
    /// Arranges for `waker.wake()` to be called whenever a message becomes
    /// available to [`try_recv`](RaftTransport::try_recv), and returns
    /// `true`; or returns `false` (the default), and the driver polls the
    /// transport every millisecond.
    fn set_waker(&mut self, waker: Waker) -> bool {
        let _ = waker;
        false
    }

    /// Called once when the runtime stops. The default does nothing.
    fn close(&mut self) {}

    /// The node and cluster ids this transport speaks for, if it checks
    /// them (the default: `None`, it does not). [`Runtime::start`] refuses
    /// a transport whose ids differ from the node's configuration, so a
    /// forgotten cluster id on one side cannot join a node to whichever
    /// cluster happens to share the default.
    fn identity(&self) -> Option<(NodeId, u64)> {
        None
    }

    /// Called with the configuration in effect when the runtime starts and
    /// whenever the node reports another
    /// ([`Action::MembershipChanged`](crate::Action::MembershipChanged),
    /// [`Action::MembershipCommitted`](crate::Action::MembershipCommitted)):
    /// a transport that can reach members by their replicated addresses
    /// ([`Membership::address`](crate::Membership::address)) updates its
    /// peers here. The default does nothing; [`TcpTransport`](crate::transport::TcpTransport)
    /// calls [`learn_peers`](crate::transport::TcpTransport::learn_peers).
    fn configuration(&mut self, membership: &crate::Membership) {
        let _ = membership;
    }
}

#[cfg(feature = "net")]
impl Transport for crate::transport::TcpTransport {
    fn set_waker(&mut self, waker: Waker) -> bool {
        crate::transport::TcpTransport::set_waker(self, move || waker.wake());
        true
    }

    fn close(&mut self) {
        self.shutdown();
    }

    fn identity(&self) -> Option<(NodeId, u64)> {
        Some((self.id(), self.cluster_id()))
    }

    fn configuration(&mut self, membership: &crate::Membership) {
        // A member whose address does not parse stays unreachable by
        // address (wire it by hand); a writer thread that could not be
        // spawned is retried with the next configuration.
        let _ = self.learn_peers(membership);
    }
}

impl Transport for MemoryTransport {
    fn set_waker(&mut self, waker: Waker) -> bool {
        MemoryTransport::set_waker(self, move || waker.wake());
        true
    }
}

/// Wakes a runtime's driver thread (see [`Transport::set_waker`]).
#[derive(Clone)]
pub struct Waker(std::sync::Arc<requests::Signal>);

impl Waker {
    /// Wakes the driver (cheap; wakes it at most once per turn).
    pub fn wake(&self) {
        self.0.notify();
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// Tuning of a [`Runtime`], filled by its builder's setters (each setter
/// documents its default and bounds).
#[derive(Clone, Debug)]
pub(crate) struct RuntimeOptions {
    common: CommonOptions,
    max_messages_per_turn: usize,
    read_kind: ReadKind,
    /// How the driver publishes its metrics (feature `metrics`).
    #[cfg(feature = "metrics")]
    metrics: crate::telemetry::Publisher,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            common: CommonOptions::default(),
            max_messages_per_turn: 4096,
            read_kind: ReadKind::Index,
            #[cfg(feature = "metrics")]
            metrics: crate::telemetry::Publisher::new(),
        }
    }
}

/// Builds and starts a runtime: a [`RaftNode`] (on any [`RaftLog`], fresh
/// or recovered), a [`Transport`] and a [`StateMachine`]. See the
/// [module docs](self).
pub struct Runtime<S, L: RaftLog, T> {
    node: RaftNode<L>,
    transport: T,
    state_machine: S,
    options: RuntimeOptions,
}

impl<S, L, T> Runtime<S, L, T>
where
    S: StateMachine,
    L: RaftLog + Send + 'static,
    T: Transport,
{
    /// A runtime for `node`, talking through `transport`, applying to
    /// `state_machine`, with the default tuning (the setters below).
    ///
    /// The state machine must match the node's applied index: for a node
    /// recovered from a log, an empty state machine with the default
    /// [`RaftConfig::applied`](crate::RaftConfig::applied) of 0 (the node
    /// restores its snapshot and re-applies the log after it).
    pub fn new(node: RaftNode<L>, transport: T, state_machine: S) -> Self {
        Self { node, transport, state_machine, options: RuntimeOptions::default() }
    }

    /// How often the node ticks (default 10 ms; clamped to between 100 µs
    /// and an hour). Election and heartbeat
    /// timeouts are counted in ticks: with the default configuration (an
    /// election timeout of 10–20 ticks, a heartbeat every 2), a leader is
    /// elected within 100–200 ms of losing the last one.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.options.common.set_tick_interval(interval);
        self
    }

    /// How long a request may wait before it fails with
    /// [`RuntimeError::Timeout`] (default 5 s). A handle can override it
    /// with [`RaftHandle::with_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.common.set_request_timeout(timeout);
        self
    }

    /// Most proposals in one batch step (default 4096); more wait for the
    /// next turn.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.options.common.set_max_batch(n);
        self
    }

    /// Most command bytes in one batch step (default 4 MiB; a single larger
    /// command still goes alone).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.options.common.set_max_batch_bytes(n);
        self
    }

    /// Most requests queued for the driver (default 65536); more fail at
    /// once with [`RuntimeError::Busy`].
    pub fn max_pending(mut self, n: usize) -> Self {
        self.options.common.set_max_pending(n);
        self
    }

    /// How [`RaftHandle::read`] confirms reads (default
    /// [`ReadKind::Index`]; [`ReadKind::Lease`] needs `lease_reads` in the
    /// node's configuration and its clock assumption, `docs/PROTOCOL.md`
    /// §8.2).
    pub fn read_kind(mut self, kind: ReadKind) -> Self {
        self.options.read_kind = kind;
        self
    }

    /// Feature `metrics`: adds `cluster="<label>"` to every series the
    /// runtime publishes (default: no `cluster` label), so that runtimes of
    /// nodes with one id in different clusters, in one process, publish
    /// different series (`raft_io::telemetry::Publisher`).
    #[cfg(feature = "metrics")]
    pub fn metrics_cluster(mut self, label: crate::telemetry::ClusterLabel) -> Self {
        self.options.metrics = self.options.metrics.cluster(label);
        self
    }

    /// Starts the driver thread and returns the first handle.
    ///
    /// # Errors
    ///
    /// The thread could not be spawned, or the transport speaks for another
    /// node id or cluster id than the node's configuration
    /// ([`ErrorKind::InvalidInput`](std::io::ErrorKind::InvalidInput),
    /// naming both).
    pub fn start(self) -> std::io::Result<RaftHandle<S>> {
        let config = self.node.config();
        let ours = (self.node.id(), config.get_cluster_id());
        if let Some(theirs) = self.transport.identity().filter(|&t| t != ours) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the transport speaks for node {} in cluster {}, the node is {} in cluster {}",
                    theirs.0, theirs.1, ours.0, ours.1
                ),
            ));
        }
        driver::start(self.node, self.transport, self.state_machine, self.options)
    }
}

impl<S, L: RaftLog, T> std::fmt::Debug for Runtime<S, L, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("node", &self.node).field("options", &self.options).finish_non_exhaustive()
    }
}

/// What a runtime did since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Steps taken (every event: ticks, messages, batches, requests).
    pub steps: u64,
    /// Ticks stepped.
    pub ticks: u64,
    /// Messages received from the transport and stepped.
    pub messages_in: u64,
    /// Messages handed to the transport.
    pub messages_out: u64,
    /// Messages the transport refused (queue full, unknown peer).
    pub messages_refused: u64,
    /// Proposals accepted by the node.
    pub proposals: u64,
    /// Batch steps those proposals went in (`proposals / batches` is the
    /// mean group-commit batch).
    pub batches: u64,
    /// The largest batch.
    pub max_batch: u64,
    /// Commands applied to the state machine.
    pub applied: u64,
    /// Reads served.
    pub reads: u64,
    /// Snapshots taken at the node's request.
    pub snapshots: u64,
}

pub(crate) fn stats_add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    steps: AtomicU64,
    ticks: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    messages_refused: AtomicU64,
    proposals: AtomicU64,
    batches: AtomicU64,
    max_batch: AtomicU64,
    applied: AtomicU64,
    reads: AtomicU64,
    snapshots: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RuntimeStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        RuntimeStats {
            steps: g(&self.steps),
            ticks: g(&self.ticks),
            messages_in: g(&self.messages_in),
            messages_out: g(&self.messages_out),
            messages_refused: g(&self.messages_refused),
            proposals: g(&self.proposals),
            batches: g(&self.batches),
            max_batch: g(&self.max_batch),
            applied: g(&self.applied),
            reads: g(&self.reads),
            snapshots: g(&self.snapshots),
        }
    }
}
