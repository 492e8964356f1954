//! A threaded runtime hosting many Raft groups (features `net` and
//! `persistence`): one driver thread owns a [`MultiNode`] host, a
//! [`SharedWal`], a [`GroupTransport`]
//! (such as [`TcpGroupTransport`](crate::transport::TcpGroupTransport))
//! and one [`StateMachine`] per group; a cloneable [`MultiHandle`]
//! addresses any group from any thread.
//!
//! # What the driver thread does
//!
//! Each turn of its loop it
//! 1. hands every envelope received to the host (up to a cap per turn);
//! 2. advances the host's clock by every tick that fell due since the last
//!    turn, at once (`MultiNode::advance`: one step per awake group however
//!    long the turn took), and fails requests past their deadline (only
//!    groups holding requests are visited);
//! 3. takes queued requests: each group's proposals become one
//!    `ProposeBatch` step (a small batch may first wait for its group's
//!    round in flight: [`MultiRuntime::coalesce_proposals`]), reads,
//!    membership changes, transfers, status, group creation and removal
//!    one step or operation each;
//! 4. sends what those steps sent with **one**
//!    [`GroupTransport::send_batch`] (one frame per peer on TCP), before
//!    the flush: a leader's appends reach its followers while its own
//!    write is being made durable, so a round waits for one fsync, not for
//!    the leader's and then a follower's;
//! 5. calls [`SharedWal::flush`](crate::log::shared::SharedWal::flush)
//!    **once**: every group's staged writes in one record, one fsync; and
//!    steps each group's latest durable token as `Event::Persisted`;
//! 6. sends what those reports released (acknowledgements, votes) with a
//!    second `send_batch`.
//!
//! Actions are carried out as each step returns them: committed commands
//! are applied to their group's state machine (answering their proposers
//! with the output), confirmed reads run, snapshots are taken when a group
//! asks. Every group runs in the asynchronous storage mode
//! (`docs/PROTOCOL.md` §5.1): no message that depends on a write leaves
//! before the flush that makes it durable, because the node itself holds
//! such a message back until `Event::Persisted` reports that write.
//!
//! # Storage failures
//!
//! A storage failure halts the runtime at once, in whatever step it
//! happens (a request's, a tick's, a received message's, a durability
//! report's) or in the turn's flush: [`MultiHandle::stop_reason`] is
//! [`StopReason::Halted`](super::StopReason::Halted) with the failure,
//! the requests held fail with
//! [`RuntimeError::Halted`](super::RuntimeError::Halted), later ones are
//! refused with `ShuttingDown`. The shared WAL halts as a whole on any
//! failed write (see [`log::shared`](crate::log::shared)): one group's
//! failure is every group's. Reopen the WAL and start a new runtime.
//!
//! # Bounds
//!
//! * **Requests:** at most [`max_pending`](MultiRuntime::max_pending)
//!   requests wait in the queue (more are refused with
//!   [`RuntimeError::Busy`](super::RuntimeError::Busy)) and the driver takes no more while it holds
//!   that many (proposals in flight, reads, changes, transfers; counted
//!   at each tick, the requests taken since counting as held until the
//!   driver finds itself full and counts again): a node holds at most
//!   twice `max_pending` requests.
//! * **Administration:** group creation and removal, the list of groups,
//!   and a group's status, metrics and backup are answered in the turn the
//!   driver takes them, so they hold nothing and are not held back by the
//!   bound above: they wait in a queue of their own, of at most 1024
//!   (more are refused with `Busy`), which the driver empties every turn.
//!   A node whose requests wait without a deadline on a group that lost
//!   its quorum can still remove that group, which answers them.
//! * **Snapshot streams:** at most
//!   [`max_snapshot_streams`](MultiRuntime::max_snapshot_streams) groups'
//!   snapshot transfers leave this node at once (per node, not per peer).
//!   A chunk of one more stream is held back before the transport, as if
//!   lost; its group resends it when it finds the stream stalled, so it
//!   starts once another stream ends (last chunk sent) or goes idle
//!   ([`snapshot_idle_ticks`](MultiRuntime::snapshot_idle_ticks)).
//!   The streams this node receives are bounded the same way, at
//!   [`max_snapshot_receives`](MultiRuntime::max_snapshot_receives) (a
//!   sender's own bound does not cover many senders, nor a faulty one): the
//!   first chunk of one more stream is dropped before the host, as if lost,
//!   and its leader resends it once the stream stalls.
//!
//! # Example: one node, two groups, on loopback
//!
//! ```
//! use bytes::Bytes;
//! use raft_io::log::shared::SharedWal;
//! use raft_io::multi::HostConfig;
//! use raft_io::runtime::StateMachine;
//! use raft_io::runtime::multi::MultiRuntime;
//! use raft_io::transport::{TcpConfig, TcpGroupTransport};
//! use raft_io::RaftConfig;
//!
//! #[derive(Default)]
//! struct Count(u64);
//!
//! impl StateMachine for Count {
//!     type Output = u64;
//!     fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
//!         self.0 += 1;
//!         self.0
//!     }
//!     fn snapshot(&self) -> Bytes { Bytes::copy_from_slice(&self.0.to_le_bytes()) }
//!     fn restore(&mut self, data: &Bytes) {
//!         self.0 = data.as_ref().try_into().map(u64::from_le_bytes).unwrap_or(0);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("raft-io-doc-multi-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let wal = SharedWal::open(&dir)?;
//! let transport = TcpGroupTransport::bind(TcpConfig::new(1, "127.0.0.1:0".parse()?))?;
//! let handle = MultiRuntime::new(HostConfig::new(1), wal, transport, |_group| Count::default())
//!     .group(7, RaftConfig::single(1))
//!     .start()?;
//! handle.create_group(9, RaftConfig::single(1))?; // at run time
//!
//! for group in [7, 9] {
//!     assert_eq!(handle.wait_for_leader(group, std::time::Duration::from_secs(10)), Some(1));
//! }
//! let ticket = handle.propose_async(7, "a")?; // in flight
//! assert_eq!(handle.propose(9, "b")?, 1);
//! assert_eq!(ticket.wait()?, 1);
//! assert_eq!(handle.read(7, |c: &Count| c.0)?, 1);
//! assert!(handle.propose(8, "c").is_err(), "no group 8");
//! handle.shutdown();
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod completions;
mod driver;
mod durable;
mod group;
mod handle;
#[cfg(feature = "metrics")]
mod metrics;
mod snapshots;
mod transport;
mod turn_times;
mod waiting;

use std::time::Duration;

pub use completions::{Completion, Completions};
pub use handle::{MultiHandle, MultiStats, Ticket};
pub use transport::GroupTransport;
pub use turn_times::TurnTimes;

use super::StateMachine;
use super::options::CommonOptions;
use crate::config::RaftConfig;
use crate::log::shared::SharedWal;
use crate::multi::{GroupId, HostConfig, MultiNode};
use crate::node::ReadKind;

/// Makes a group's state machine, given its id (empty: a recovered group
/// re-applies its log, after its snapshot).
pub(crate) type StateFactory<S> = Box<dyn FnMut(GroupId) -> S + Send>;

/// Tuning of a [`MultiRuntime`].
#[derive(Clone, Debug)]
pub(crate) struct MultiOptions {
    pub(crate) common: CommonOptions,
    pub(crate) max_envelopes_per_turn: usize,
    pub(crate) max_snapshot_streams: usize,
    pub(crate) max_snapshot_receives: usize,
    pub(crate) snapshot_idle_ticks: u64,
    pub(crate) read_kind: ReadKind,
    /// A batch of fewer proposals waits for its group's round in flight.
    pub(crate) coalesce_below: usize,
    /// For at most this long.
    pub(crate) coalesce_wait: Duration,
    /// How the driver publishes its metrics (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::telemetry::Publisher,
    /// Each group's own series too.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_per_group: bool,
}

impl Default for MultiOptions {
    fn default() -> Self {
        Self {
            common: CommonOptions::default(),
            max_envelopes_per_turn: 8192,
            max_snapshot_streams: 4,
            max_snapshot_receives: 16,
            snapshot_idle_ticks: 50,
            read_kind: ReadKind::Index,
            coalesce_below: 32,
            coalesce_wait: Duration::from_millis(10),
            #[cfg(feature = "metrics")]
            metrics: crate::telemetry::Publisher::new(),
            #[cfg(feature = "metrics")]
            metrics_per_group: false,
        }
    }
}

/// Builds and starts a runtime of many groups. See the [module docs](self).
pub struct MultiRuntime<S: StateMachine, T> {
    host: HostConfig,
    wal: SharedWal,
    transport: T,
    factory: StateFactory<S>,
    groups: Vec<(GroupId, RaftConfig)>,
    options: MultiOptions,
}

impl<S: StateMachine, T: GroupTransport> MultiRuntime<S, T> {
    /// A runtime for the host `host` (its node id, pings, quiescence), on
    /// the shared WAL `wal`, talking through `transport`, making each
    /// group's state machine with `factory`; no group yet, default options.
    pub fn new(
        host: HostConfig,
        wal: SharedWal,
        transport: T,
        factory: impl FnMut(GroupId) -> S + Send + 'static,
    ) -> Self {
        Self { host, wal, transport, factory: Box::new(factory), groups: Vec::new(), options: MultiOptions::default() }
    }

    /// Hosts `group` from the start with `config` (switched to the
    /// asynchronous storage mode), on its log in the WAL: recovered if the
    /// WAL has it, created otherwise. After a restart, name here every
    /// group of [`SharedWal::groups`] to host (the others stay in the WAL,
    /// untouched).
    pub fn group(mut self, group: GroupId, config: RaftConfig) -> Self {
        self.groups.push((group, config));
        self
    }

    /// How often the host ticks (default 10 ms; clamped to between 100 µs
    /// and an hour). Groups count their timeouts in these ticks.
    pub fn tick_interval(mut self, interval: Duration) -> Self {
        self.options.common.set_tick_interval(interval);
        self
    }

    /// How long a request may wait before it fails with
    /// [`RuntimeError::Timeout`](super::RuntimeError::Timeout) (default 5 s); a handle can override it
    /// ([`MultiHandle::with_timeout`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.common.set_request_timeout(timeout);
        self
    }

    /// Most requests queued, and most held by the driver (default 65536;
    /// at least 1); more are refused with [`RuntimeError::Busy`](super::RuntimeError::Busy).
    /// Administration (creating and removing groups, status, metrics,
    /// backups) is bounded apart: see the [module docs](self), "Bounds".
    pub fn max_pending(mut self, n: usize) -> Self {
        self.options.common.set_max_pending(n);
        self
    }

    /// Most proposals in one group's batch step (default 4096).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.options.common.set_max_batch(n);
        self
    }

    /// Most command bytes in one group's batch step (default 4 MiB; a
    /// single larger command still goes alone).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.options.common.set_max_batch_bytes(n);
        self
    }

    /// Most groups' snapshot streams leaving this node at once (default 4;
    /// at least 1). See the [module docs](self), "Bounds".
    pub fn max_snapshot_streams(mut self, n: usize) -> Self {
        self.options.max_snapshot_streams = n.max(1);
        self
    }

    /// Most groups' snapshot streams this node receives at once (default
    /// 16; at least 1). See the [module docs](self), "Bounds".
    pub fn max_snapshot_receives(mut self, n: usize) -> Self {
        self.options.max_snapshot_receives = n.max(1);
        self
    }

    /// Ticks after which a snapshot stream that passed no chunk frees its
    /// place, in either direction (default 50; at least 1).
    pub fn snapshot_idle_ticks(mut self, ticks: u64) -> Self {
        self.options.snapshot_idle_ticks = ticks.max(1);
        self
    }

    /// How [`MultiHandle::read`] confirms reads (default
    /// [`ReadKind::Index`]). With [`ReadKind::Lease`], a group whose
    /// configuration has `lease_reads` answers from its leader's lease
    /// while it holds one, under that setting's clock assumption
    /// (`docs/PROTOCOL.md` §8.2); the other groups confirm with ReadIndex.
    /// A quiesced leader holds no lease: the first read after it wakes
    /// waits for a heartbeat round (§10, "Waking").
    pub fn read_kind(mut self, kind: ReadKind) -> Self {
        self.options.read_kind = kind;
        self
    }

    /// Proposals coalesced behind the round in flight (default: batches
    /// of fewer than 32 proposals, for at most 10 ms; `below` 0 turns it
    /// off, as does a `max_wait` of zero). A group whose leader already has
    /// entries on their way to a quorum (appended, not yet committed) and
    /// whose batch of the turn holds fewer than `below` proposals (and
    /// less than half of [`max_batch_bytes`](Self::max_batch_bytes)) keeps
    /// the batch back, and proposals arriving meanwhile join it, until
    /// everything the leader appended is committed, the batch reaches
    /// `below`, it has waited `max_wait`, or one of its requests has
    /// reached its deadline (a driver with nothing else to do wakes when the
    /// oldest wait is up; deadlines are looked at every tick). Then it is
    /// proposed as one step; a leadership transfer of the group proposes it
    /// first.
    ///
    /// With many groups each group sees a proposal or two per turn, and
    /// every batch costs a round of its own: an append to each follower,
    /// each follower's answer, and a step and a durability report on every
    /// node. Waiting for the round in flight lets the next round carry
    /// what came during this one: fewer, larger rounds for a proposal's
    /// latency of at most one more round. Large batches never wait, so a
    /// busy group keeps its rounds pipelined, and a group with nothing in
    /// flight proposes at once. See docs/BENCHMARKS.md, "Sharded KV".
    pub fn coalesce_proposals(mut self, below: usize, max_wait: Duration) -> Self {
        self.options.coalesce_below = below;
        self.options.coalesce_wait = max_wait;
        self
    }

    /// Feature `metrics`: adds `cluster="<label>"` to every series the
    /// runtime publishes (default: no `cluster` label), as
    /// [`Runtime::metrics_cluster`](super::Runtime::metrics_cluster) does.
    ///
    /// Every 10 ticks the runtime publishes the host series of the
    /// `telemetry` module's table (`raft_multi_*`): how many groups it
    /// hosts, leads and has quiesced, the requests it holds, its groups'
    /// counters summed (a removed group's last counts stay in the sums),
    /// its own counters and the shared WAL's. Their number does not grow
    /// with the number of groups; see [`metrics_per_group`](Self::metrics_per_group)
    /// for each group's own.
    #[cfg(feature = "metrics")]
    pub fn metrics_cluster(mut self, label: crate::telemetry::ClusterLabel) -> Self {
        self.options.metrics = self.options.metrics.cluster(label);
        self
    }

    /// Feature `metrics`: also publishes, every 10 ticks, each group's own
    /// series (those of a single node: `raft_term`, `raft_proposals_total`,
    /// `raft_peer_lag`, …) labelled `group="<id>"` (default: off). For
    /// small numbers of groups only: it costs a full `NodeMetrics` and some
    /// 30 series per group at every publication, and a recorder keeps every
    /// series it was given (a removed group's included, at their last
    /// values). `raft_log_fsyncs_total` and `raft_log_sync_seconds_total`
    /// are left out: every group would report the shared WAL's
    /// (`raft_multi_wal_*`).
    #[cfg(feature = "metrics")]
    pub fn metrics_per_group(mut self, on: bool) -> Self {
        self.options.metrics_per_group = on;
        self
    }

    /// Opens the groups named with [`group`](Self::group), starts the
    /// driver thread and returns the first handle.
    ///
    /// # Errors
    ///
    /// A group could not be opened (its log, its configuration), or the
    /// thread could not be spawned.
    pub fn start(self) -> std::io::Result<MultiHandle<S>> {
        let host = MultiNode::new(self.host);
        driver::start(host, self.wal, self.transport, self.factory, self.groups, self.options)
    }
}

impl<S: StateMachine, T> std::fmt::Debug for MultiRuntime<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRuntime")
            .field("node", &self.host.get_node())
            .field("groups", &self.groups.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
