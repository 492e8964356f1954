//! A deterministic cluster simulator with fault injection and safety
//! checking (feature `sim`).
//!
//! [`Cluster`] runs N [`RaftNode`]s in one thread over a seeded network that
//! loses, duplicates, delays and reorders messages, and that can be
//! partitioned in any way (also one-way). Nodes crash and restart from what
//! their log had synced, tick at their own rates, and drive a
//! [`StateMachine`] of your choice. After every delivered event the
//! simulator checks the five safety properties of Raft, each in its own
//! checker; on a violation it panics with the seed and the recent trace. A
//! run is a function of its seed and the calls made: replaying them
//! reproduces it exactly.
//!
//! # Testing your own state machine
//!
//! ```
//! use bytes::Bytes;
//! use raft_io::sim::{Cluster, NetworkFaults, SimConfig, StateMachine};
//!
//! /// The application under test: a counter.
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _index: u64, command: &Bytes) {
//!         self.0 += u64::from(command[0]);
//!     }
//!     fn snapshot(&self) -> Bytes {
//!         Bytes::copy_from_slice(&self.0.to_le_bytes())
//!     }
//!     fn restore(&mut self, data: &Bytes) {
//!         self.0 = u64::from_le_bytes(data[..8].try_into().unwrap());
//!     }
//!     fn digest(&self) -> u64 {
//!         self.0
//!     }
//! }
//!
//! let config = SimConfig::new(3).seed(42).network(NetworkFaults::lossy());
//! let mut cluster = Cluster::with_state_machines(config, |_| Counter::default());
//! let leader = cluster.elect(500).expect("a leader");
//! for _ in 0..10 {
//!     let leader = cluster.leader().unwrap_or(leader);
//!     let _ = cluster.propose(leader, Bytes::from_static(&[1]));
//!     cluster.run_ticks(5);
//! }
//! cluster.crash(2);
//! cluster.run_ticks(30);
//! cluster.restart(2);
//! // Every node converges on the same count; the checkers watched each step.
//! assert!(cluster.run_until(2_000, |c| c.converged()));
//! let counts: Vec<u64> = cluster.ids().iter().map(|&id| cluster.state_machine(id).unwrap().0).collect();
//! assert!(counts.windows(2).all(|w| w[0] == w[1]));
//! ```

mod check;
mod kv;
pub mod linearizability;
mod log;
mod network;
mod schedule;
mod script;
mod state_machine;
mod trace;
mod workload;

pub use check::Violation;
pub use kv::KvStore;
#[cfg(feature = "persistence")]
pub use log::SimWal;
pub use log::{SimBackend, SimLog};
pub use network::NetworkFaults;

pub use schedule::{Chaos, FaultProfile};
pub use script::ByteScript;
pub use state_machine::{HashChain, StateMachine};
pub use trace::{Trace, TraceEvent};
pub use workload::KvWorkload;

/// The simulator's seeded random generator (SplitMix64).
pub use crate::rng::Rng;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::RaftConfig;
use crate::error::Result;
use crate::log::RaftLog;
use crate::membership::MembershipChange;
use crate::message::Message;
use crate::node::{Action, Event, RaftNode, ReadFailure, ReadKind};
use crate::rng::mix;
use crate::types::{Index, NodeId, ReadId, Role};

use check::{Checker, NodeView};
use network::Network;

/// Simulated time units per tick of a node ticking at rate 1.0.
pub const TICK: u64 = 1_000;

type Configure = Arc<dyn Fn(RaftConfig) -> RaftConfig + Send + Sync>;

/// How to build a simulated cluster.
#[derive(Clone)]
pub struct SimConfig {
    nodes: usize,
    seed: u64,
    network: NetworkFaults,
    tick_skew: f64,
    checks: bool,
    trace: usize,
    snapshots: bool,
    record: bool,
    keep_messages: usize,
    durable: bool,
    configure: Configure,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("nodes", &self.nodes)
            .field("seed", &self.seed)
            .field("network", &self.network)
            .field("tick_skew", &self.tick_skew)
            .field("checks", &self.checks)
            .field("trace", &self.trace)
            .field("snapshots", &self.snapshots)
            .field("record", &self.record)
            .field("keep_messages", &self.keep_messages)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// A cluster of `nodes` voters with ids `1..=nodes`, a reliable network,
    /// checks on, seed 0.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            seed: 0,
            network: NetworkFaults::reliable(),
            tick_skew: 0.0,
            checks: true,
            trace: 256,
            snapshots: true,
            record: false,
            keep_messages: 0,
            durable: false,
            configure: Arc::new(|c| c),
        }
    }

    /// The seed every random choice derives from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Network fault rates.
    pub fn network(mut self, faults: NetworkFaults) -> Self {
        self.network = faults;
        self
    }

    /// Tick-rate skew: each node's tick period is drawn from
    /// `TICK * (1 ± skew)` (default 0; at most 0.5).
    pub fn tick_skew(mut self, skew: f64) -> Self {
        self.tick_skew = skew.clamp(0.0, 0.5);
        self
    }

    /// Whether to run the safety checkers after every event (default on;
    /// benchmarks turn them off).
    pub fn checks(mut self, on: bool) -> Self {
        self.checks = on;
        self
    }

    /// How many recent events to keep for failure reports (default 256; 0
    /// keeps none).
    pub fn trace(mut self, capacity: usize) -> Self {
        self.trace = capacity;
        self
    }

    /// Whether nodes take a snapshot when their node asks for one (default
    /// on).
    pub fn snapshots(mut self, on: bool) -> Self {
        self.snapshots = on;
        self
    }

    /// Whether to keep every action other than `Send` (applies, role and
    /// membership changes, reads, ...) for [`Cluster::drain_actions`]
    /// (default off).
    pub fn record_actions(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// How many recently delivered messages to keep for
    /// [`Cluster::replay`] (default 0: none).
    pub fn keep_messages(mut self, count: usize) -> Self {
        self.keep_messages = count;
        self
    }

    /// Durable mode (feature `persistence`): every node runs on a real
    /// `WalLog` in its own directory under [`std::env::temp_dir`] (set
    /// `TMPDIR` to choose the disk), removed when the cluster is dropped. A
    /// crash drops the log, loses every WAL byte not synced (keeping a random
    /// prefix: a torn last write) and reopens the directory;
    /// [`Cluster::crash_mid_write`] crashes a node inside a step. Default off
    /// (nodes on `MemoryLog`).
    #[cfg(feature = "persistence")]
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Adjusts every node's [`RaftConfig`] (its id, voters and seed are set
    /// by the simulator).
    pub fn configure(mut self, f: impl Fn(RaftConfig) -> RaftConfig + Send + Sync + 'static) -> Self {
        self.configure = Arc::new(f);
        self
    }

    /// The seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }
}

/// How [`Cluster::replay`] changes a message it delivers again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Unchanged: a duplicate, or a stale message if the term moved on.
    AsIs,
    /// An AppendEntries cut to its first entries (as a peer that lost the
    /// end of a message would deliver it).
    TruncateEntries(usize),
    /// The same message claimed by a node id the cluster does not know.
    FromUnknown(NodeId),
}

/// Counters of what happened in a simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Snapshot chunks delivered.
    pub snapshot_chunks: u64,
    /// Snapshots restored into a state machine (from a leader's stream or
    /// at a restart).
    pub restores: u64,
    /// Snapshots taken by state machines (policy hints and explicit ones).
    pub snapshots: u64,
    /// Crashes.
    pub crashes: u64,
    /// Elections won.
    pub elections: u64,
    /// Configuration entries committed (each counted once, when the first
    /// node applies it).
    pub config_commits: u64,
    /// Index of the latest committed configuration entry.
    pub last_config_index: Index,
}

/// The outcome of a read issued through [`Cluster::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The node that served (or failed) the read.
    pub node: NodeId,
    /// The read's id.
    pub id: ReadId,
    /// The read index, or why the read failed.
    pub result: std::result::Result<Index, ReadFailure>,
    /// Simulated time of the outcome.
    pub at: u64,
    /// The state machine digest when the read was released.
    pub digest: u64,
    /// The answer to the read's query (see [`Cluster::read_query`]) when it
    /// was released.
    pub value: Option<Bytes>,
}

/// A write submitted with [`Cluster::submit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteTicket {
    /// The ticket's number.
    pub id: u64,
    /// The node it was proposed on.
    pub node: NodeId,
    /// The index and term it was appended at.
    pub index: Index,
    /// The term it was appended in.
    pub term: crate::types::Term,
}

/// What became of a submitted write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The ticket.
    pub ticket: WriteTicket,
    /// Whether it committed (`true`: applied at its index and term on the node
    /// it was proposed on) or was lost (another entry was applied there).
    pub committed: bool,
    /// Simulated time of the outcome.
    pub at: u64,
}

/// What a scheduled event does. Messages wait in a slab, so the heap moves
/// only small keys.
#[derive(Clone, Copy)]
enum Due {
    Tick(NodeId),
    Deliver(u32),
}

struct Scheduled {
    at: u64,
    seq: u64,
    due: Due,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct SimNode<S> {
    id: NodeId,
    config: RaftConfig,
    node: Option<RaftNode<SimLog>>,
    /// The durable log while the node is down.
    down: Option<SimLog>,
    sm: S,
    period: u64,
}

/// A simulated cluster: N nodes in one thread over a seeded network, with
/// the five safety checkers run after every event (see the
/// [module documentation](crate::sim)).
pub struct Cluster<S: StateMachine = HashChain> {
    cfg: SimConfig,
    nodes: Vec<SimNode<S>>,
    make: Box<dyn FnMut(NodeId) -> S>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    in_flight: Vec<Option<Message>>,
    free_slots: Vec<u32>,
    seq: u64,
    now: u64,
    net: Network,
    rng: Rng,
    checker: Option<Checker>,
    trace: Trace,
    reads: Vec<ReadOutcome>,
    followups: Vec<(NodeId, Event)>,
    actions: Vec<Action>,
    recorded: Vec<(NodeId, Action)>,
    recent: std::collections::VecDeque<Message>,
    queries: Vec<(NodeId, ReadId, Bytes)>,
    tickets: Vec<WriteTicket>,
    writes: Vec<WriteOutcome>,
    next_ticket: u64,
    stats: SimStats,
}

impl Cluster<HashChain> {
    /// A cluster whose nodes run [`HashChain`] state machines.
    pub fn new(config: SimConfig) -> Self {
        Self::with_state_machines(config, |_| HashChain::default())
    }
}

impl<S: StateMachine> Cluster<S> {
    /// A cluster whose node `id` runs the state machine `make(id)` (called
    /// again on every restart: state machines are volatile).
    pub fn with_state_machines(config: SimConfig, make: impl FnMut(NodeId) -> S + 'static) -> Self {
        let ids: Vec<NodeId> = (1..=config.nodes as NodeId).collect();
        let mut cluster = Self {
            net: Network::new(mix(config.seed, 0x6e65_7477), config.network),
            rng: Rng::new(mix(config.seed, 0x636c_7573)),
            checker: config.checks.then(Checker::default),
            trace: Trace::new(config.trace),
            cfg: config,
            nodes: Vec::new(),
            make: Box::new(make),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            now: 0,
            reads: Vec::new(),
            followups: Vec::new(),
            actions: Vec::new(),
            recorded: Vec::new(),
            recent: std::collections::VecDeque::new(),
            queries: Vec::new(),
            tickets: Vec::new(),
            writes: Vec::new(),
            next_ticket: 0,
            stats: SimStats::default(),
        };
        for &id in &ids {
            let raft = RaftConfig::new(id, ids.iter().copied());
            cluster.spawn(id, raft);
        }
        cluster
    }

    /// Adds node `id` as a node joining the running cluster (it starts with
    /// no configuration; add it with a membership change).
    pub fn add_node(&mut self, id: NodeId) {
        if self.slot(id).is_none() {
            self.spawn(id, RaftConfig::joining(id));
        }
    }

    fn spawn(&mut self, id: NodeId, raft: RaftConfig) {
        let raft = (self.cfg.configure)(raft.seed(mix(self.cfg.seed, id)));
        let log = SimLog::for_node(self.cfg.durable, self.cfg.seed, id, self.cfg.checks);
        let node = RaftNode::with_log(raft.clone(), log).unwrap_or_else(|e| panic!("node {id}: {e}"));
        let skew = self.cfg.tick_skew;
        let factor = 1.0 + skew * (2.0 * (self.rng.next_u64() as f64 / u64::MAX as f64) - 1.0);
        let period = ((TICK as f64) * factor).round().max(1.0) as u64;
        let sm = (self.make)(id);
        let pos = self.nodes.partition_point(|n| n.id < id);
        self.nodes.insert(pos, SimNode { id, config: raft, node: Some(node), down: None, sm, period });
        if let Some(c) = self.checker.as_mut() {
            let log = self.nodes[pos].node.as_ref().map(|n| n.log());
            if let Some(log) = log {
                let _ = c.restart(id, log);
            }
        }
        self.schedule(period, Due::Tick(id));
    }

    /// Schedules delivery of `message` after `after` time units.
    fn schedule_message(&mut self, after: u64, message: Message) {
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.in_flight[slot as usize] = Some(message);
                slot
            }
            None => {
                self.in_flight.push(Some(message));
                (self.in_flight.len() - 1) as u32
            }
        };
        self.schedule(after, Due::Deliver(slot));
    }

    fn schedule(&mut self, after: u64, due: Due) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: self.now + after, seq: self.seq, due }));
    }

    fn slot(&self, id: NodeId) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    /// The ids of all nodes, up or down.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Node `id`, if it is up.
    pub fn node(&self, id: NodeId) -> Option<&RaftNode<SimLog>> {
        self.slot(id).and_then(|i| self.nodes[i].node.as_ref())
    }

    /// Node `id`'s state machine.
    pub fn state_machine(&self, id: NodeId) -> Option<&S> {
        self.slot(id).map(|i| &self.nodes[i].sm)
    }

    /// The simulated time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.cfg.seed
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.stats.delivered
    }

    /// What happened so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The recent history.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The actions recorded since the last call (with
    /// [`SimConfig::record_actions`]), with the node that produced each.
    pub fn drain_actions(&mut self) -> Vec<(NodeId, Action)> {
        std::mem::take(&mut self.recorded)
    }

    /// Outcomes of reads issued through [`Cluster::read`], in order.
    pub fn read_outcomes(&self) -> &[ReadOutcome] {
        &self.reads
    }

    /// The leader with the highest term among live nodes.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.node.as_ref())
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.term())
            .map(|n| n.id())
    }

    /// Whether every live member has applied the leader's whole log and the
    /// leader has committed it.
    pub fn converged(&self) -> bool {
        let Some(leader) = self.leader().and_then(|id| self.node(id)) else { return false };
        let last = leader.last_index();
        leader.commit_index() == last
            && self
                .nodes
                .iter()
                .filter_map(|n| n.node.as_ref())
                .filter(|n| leader.membership().contains(n.id()))
                .all(|n| n.last_applied() == last && n.last_index() == last)
    }

    /// Processes the next scheduled event. Returns false if nothing is
    /// scheduled (never, while any node is up: nodes tick forever).
    pub fn step(&mut self) -> bool {
        let Some(Reverse(next)) = self.queue.pop() else { return false };
        self.now = next.at;
        match next.due {
            Due::Tick(id) => {
                let Some(i) = self.slot(id) else { return true };
                let period = self.nodes[i].period;
                self.schedule(period, Due::Tick(id));
                if self.nodes[i].node.is_some() {
                    self.expect_ok(id, Event::Tick);
                }
            }
            Due::Deliver(slot) => {
                let Some(message) = self.in_flight.get_mut(slot as usize).and_then(Option::take) else { return true };
                self.free_slots.push(slot);
                let (from, to) = (message.from, message.to);
                let up = self.slot(to).is_some_and(|i| self.nodes[i].node.is_some());
                if up && self.net.connected(from, to) {
                    self.stats.delivered += 1;
                    if matches!(message.body, crate::message::MessageBody::Snapshot(_)) {
                        self.stats.snapshot_chunks += 1;
                    }
                    if self.trace.enabled() {
                        let (kind, term) = (message.body.name(), message.term);
                        self.trace.push(TraceEvent::Deliver { at: self.now, from, to, kind, term });
                    }
                    if self.cfg.keep_messages > 0 {
                        if self.recent.len() == self.cfg.keep_messages {
                            self.recent.pop_front();
                        }
                        self.recent.push_back(message.clone());
                    }
                    self.expect_ok(to, Event::Message(message));
                }
            }
        }
        true
    }

    /// Steps a node with an event that must never fail (a tick or a
    /// message): a failure is a bug, reported with the seed.
    fn expect_ok(&mut self, id: NodeId, event: Event) {
        if let Err(e) = self.step_node(id, event) {
            panic!("raft-io simulator: node {id} failed on a tick or message: {e}\n  seed: {}", self.cfg.seed);
        }
    }

    /// Runs until simulated time has advanced by `ticks` ticks.
    pub fn run_ticks(&mut self, ticks: u64) {
        let end = self.now + ticks * TICK;
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= end) {
            self.step();
        }
        self.now = self.now.max(end);
    }

    /// Runs until `done` holds, checking after each event, for at most
    /// `max_ticks` ticks. Returns whether `done` held.
    pub fn run_until(&mut self, max_ticks: u64, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + max_ticks * TICK;
        while !done(self) {
            if self.queue.peek().is_none_or(|Reverse(s)| s.at > end) {
                return false;
            }
            self.step();
        }
        true
    }

    /// Runs until some node leads (at most `max_ticks`); returns it.
    pub fn elect(&mut self, max_ticks: u64) -> Option<NodeId> {
        self.run_until(max_ticks, |c| c.leader().is_some_and(|l| c.leader_ready(l)));
        self.leader()
    }

    /// Whether `id` leads and has committed an entry of its term (so it
    /// accepts configuration changes and serves reads).
    pub fn leader_ready(&self, id: NodeId) -> bool {
        self.node(id).is_some_and(|n| n.is_leader() && n.log().term(n.commit_index()) == Some(n.term()))
    }

    /// Steps node `id` with `event` and carries out what it asks. Returns
    /// the node's error, if any (a refused proposal, for example).
    pub fn step_node(&mut self, id: NodeId, event: Event) -> Result<()> {
        let result = self.step_one(id, event);
        while let Some((next, event)) = self.followups.pop() {
            let _ = self.step_one(next, event);
        }
        result
    }

    fn step_one(&mut self, id: NodeId, event: Event) -> Result<()> {
        let Some(i) = self.slot(id) else { return Ok(()) };
        let Some(node) = self.nodes[i].node.as_mut() else { return Ok(()) };
        let before = (node.role(), node.term());
        let mut actions = std::mem::take(&mut self.actions);
        let result = node.step_into(event, &mut actions);
        if result.is_err() && node.log().crashed() {
            // Durable mode: the node died inside the step; nothing it did
            // in the step leaves it, and the event dies with it.
            self.actions = actions;
            self.crash(id);
            return Ok(());
        }
        for action in actions.drain(..) {
            self.carry_out(i, action);
        }
        self.actions = actions;
        self.check(i, before);
        result
    }

    fn carry_out(&mut self, i: usize, action: Action) {
        let id = self.nodes[i].id;
        if self.cfg.record && !matches!(action, Action::Send { .. }) {
            self.recorded.push((id, action.clone()));
        }
        match action {
            Action::Send { to, message } => match self.net.route(id, to) {
                [Some(first), Some(second)] => {
                    self.schedule_message(second, message.clone());
                    self.schedule_message(first, message);
                }
                [Some(first), None] | [None, Some(first)] => self.schedule_message(first, message),
                [None, None] => {}
            },
            Action::Apply { index, term, command } => {
                self.resolve_tickets(id, index, term);
                if let Some(c) = self.checker.as_mut() {
                    if let Err(v) = c.applied(id, index, term, &command) {
                        self.fail(v);
                    }
                }
                self.nodes[i].sm.apply(index, &command);
                if self.trace.enabled() {
                    self.trace.push(TraceEvent::Apply { at: self.now, node: id, index, term });
                }
            }
            Action::RestoreSnapshot { meta, data } => {
                self.stats.restores += 1;
                self.note(format!("n{id}: restore snapshot at {} (term {})", meta.index, meta.term));
                self.nodes[i].sm.restore(&data);
                let digest = self.nodes[i].sm.digest();
                if let Some(c) = self.checker.as_mut() {
                    if let Err(v) = c.restored(id, meta.index, digest) {
                        self.fail(v);
                    }
                }
            }
            Action::SnapshotWanted { applied } if self.cfg.snapshots => {
                self.stats.snapshots += 1;
                self.note(format!("n{id}: snapshot wanted at {applied}"));
                let data = self.nodes[i].sm.snapshot();
                self.followups.push((id, Event::Snapshot { index: applied, data }));
            }
            Action::ReadReady { id: read, index } => {
                let digest = self.nodes[i].sm.digest();
                let value = self.take_query(id, read).and_then(|q| self.nodes[i].sm.query(&q));
                self.reads.push(ReadOutcome { node: id, id: read, result: Ok(index), at: self.now, digest, value });
            }
            Action::ReadFailed { id: read, reason } => {
                let digest = self.nodes[i].sm.digest();
                self.take_query(id, read);
                let outcome =
                    ReadOutcome { node: id, id: read, result: Err(reason), at: self.now, digest, value: None };
                self.reads.push(outcome);
            }
            Action::RoleChanged { role: Role::Leader, term, .. } => {
                self.stats.elections += 1;
                self.trace.push(TraceEvent::Leader { at: self.now, node: id, term });
            }
            Action::MembershipCommitted { index, .. } if index > self.stats.last_config_index => {
                self.stats.last_config_index = index;
                self.stats.config_commits += 1;
            }
            _ => {}
        }
    }

    fn check(&mut self, i: usize, before: (Role, crate::types::Term)) {
        let Some(checker) = self.checker.as_mut() else { return };
        let slot = &mut self.nodes[i];
        let Some(node) = slot.node.as_mut() else { return };
        let view = NodeView {
            id: slot.id,
            role: node.role(),
            term: node.term(),
            commit: node.commit_index(),
            applied: node.last_applied(),
            digest: slot.sm.digest(),
        };
        let log = node.log_mut_for_sim();
        let result = log.drain_journal(|changes, digests| checker.after_step(before, view, changes, digests));
        if let Err(v) = result {
            self.fail(v);
        }
    }

    /// Panics with the violation, the seed and the recent trace.
    fn fail(&self, v: Violation) -> ! {
        panic!(
            "raft-io simulator: {v}\n  seed: {seed} (replay: RAFT_IO_SEED={seed})\n  time: {now}\n  recent events:\n{trace}",
            seed = self.cfg.seed,
            now = self.now,
            trace = self.trace
        )
    }

    /// Adds a note to the trace.
    pub fn note(&mut self, what: impl Into<String>) {
        if self.trace.enabled() {
            self.trace.push(TraceEvent::Note { at: self.now, what: what.into() });
        }
    }

    /// Proposes `command` on node `id`.
    pub fn propose(&mut self, id: NodeId, command: Bytes) -> Result<()> {
        self.step_node(id, Event::Propose(command))
    }

    /// Proposes a batch on node `id` (one append, one sync).
    pub fn propose_batch(&mut self, id: NodeId, commands: Vec<Bytes>) -> Result<()> {
        self.step_node(id, Event::ProposeBatch(commands))
    }

    /// Issues a read on node `id`; its outcome appears in
    /// [`read_outcomes`](Self::read_outcomes).
    pub fn read(&mut self, id: NodeId, read: ReadId, kind: ReadKind) -> Result<()> {
        self.step_node(id, Event::Read { id: read, kind })
    }

    /// Issues a read on node `id` whose answer is `query` asked of the node's
    /// state machine at the moment the read is released (see
    /// [`StateMachine::query`]); it appears in
    /// [`read_outcomes`](Self::read_outcomes) with its `value`.
    pub fn read_query(&mut self, id: NodeId, read: ReadId, kind: ReadKind, query: Bytes) -> Result<()> {
        self.queries.push((id, read, query));
        let result = self.step_node(id, Event::Read { id: read, kind });
        if result.is_err() {
            self.take_query(id, read);
        }
        result
    }

    fn take_query(&mut self, node: NodeId, read: ReadId) -> Option<Bytes> {
        let pos = self.queries.iter().position(|(n, r, _)| *n == node && *r == read)?;
        Some(self.queries.swap_remove(pos).2)
    }

    /// Proposes one command on node `id` and tracks it: its outcome appears in
    /// [`write_outcomes`](Self::write_outcomes) once node `id` applies that
    /// index (committed if the entry there is ours, lost otherwise). A
    /// ticket that never resolves (the node crashed or the index was covered
    /// by a snapshot) has an unknown outcome.
    pub fn submit(&mut self, id: NodeId, command: Bytes) -> Result<WriteTicket> {
        self.step_node(id, Event::Propose(command))?;
        let node = self.node(id).ok_or(crate::error::Error::NotLeader { leader: None })?;
        let (index, term, applied) = (node.last_index(), node.term(), node.last_applied());
        self.next_ticket += 1;
        let ticket = WriteTicket { id: self.next_ticket, node: id, index, term };
        // A single-node cluster may already have applied it.
        if applied >= index {
            self.writes.push(WriteOutcome { ticket, committed: true, at: self.now });
        } else {
            self.tickets.push(ticket);
        }
        Ok(ticket)
    }

    fn resolve_tickets(&mut self, node: NodeId, index: Index, term: crate::types::Term) {
        if self.tickets.is_empty() {
            return;
        }
        let now = self.now;
        let writes = &mut self.writes;
        self.tickets.retain(|t| {
            let resolved = t.node == node && t.index == index;
            if resolved {
                writes.push(WriteOutcome { ticket: *t, committed: t.term == term, at: now });
            }
            !resolved
        });
    }

    /// Outcomes of writes submitted with [`submit`](Self::submit), in order.
    pub fn write_outcomes(&self) -> &[WriteOutcome] {
        &self.writes
    }

    /// Writes submitted whose outcome is still unknown.
    pub fn pending_writes(&self) -> &[WriteTicket] {
        &self.tickets
    }

    /// Asks node `id` (the leader) to change the configuration.
    pub fn change_membership(&mut self, id: NodeId, change: MembershipChange) -> Result<()> {
        self.note(format!("n{id}: change membership {change:?}"));
        self.step_node(id, Event::ChangeMembership(change))
    }

    /// Asks node `id` (the leader) to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<()> {
        self.note(format!("n{id}: transfer leadership to n{to}"));
        self.step_node(id, Event::TransferLeadership(to))
    }

    /// Has node `id` snapshot its state machine now (if it applied anything
    /// since its last snapshot).
    pub fn snapshot(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(node) = self.nodes[i].node.as_ref() else { return };
        let applied = node.last_applied();
        if applied > node.log().snapshot_meta().index {
            self.stats.snapshots += 1;
            self.note(format!("n{id}: snapshot at {applied}"));
            let data = self.nodes[i].sm.snapshot();
            let _ = self.step_node(id, Event::Snapshot { index: applied, data });
        }
    }

    /// Delivers `message` to its destination now, bypassing the network (a
    /// message from a buggy or replaying peer, for instance).
    pub fn inject(&mut self, message: Message) {
        let to = message.to;
        let _ = self.step_node(to, Event::Message(message));
    }

    /// A buggy but honest peer: delivers again the kept message number
    /// `pick` (modulo how many are kept; see [`SimConfig::keep_messages`]),
    /// changed as `how` says. Returns whether a message was delivered.
    pub fn replay(&mut self, pick: usize, how: Replay) -> bool {
        if self.recent.is_empty() {
            return false;
        }
        let mut m = self.recent[pick % self.recent.len()].clone();
        match how {
            Replay::AsIs => {}
            Replay::TruncateEntries(keep) => match &mut m.body {
                crate::message::MessageBody::Append(a) => a.entries.truncate(keep),
                _ => return false,
            },
            Replay::FromUnknown(from) => {
                if self.slot(from).is_some() || from == 0 {
                    return false;
                }
                m.from = from;
            }
        }
        self.note(format!("replay {} n{} -> n{} t{} ({how:?})", m.body.name(), m.from, m.to, m.term));
        self.inject(m);
        true
    }

    /// Splits the cluster into `groups`; nodes not listed are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.note(format!("partition {groups:?}"));
        let ids = self.ids();
        self.net.partition(&ids, groups);
    }

    /// Cuts node `id` off from everyone.
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.ids().into_iter().filter(|&n| n != id).collect();
        self.partition(&[&[id], &others]);
    }

    /// Blocks messages from `from` to `to` only.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.note(format!("block n{from} -> n{to}"));
        self.net.block(from, to);
    }

    /// Removes every partition and block.
    pub fn heal(&mut self) {
        self.note("heal");
        self.net.heal();
    }

    /// Whether any partition or block is in place.
    pub fn is_partitioned(&self) -> bool {
        self.net.is_partitioned()
    }

    /// Changes the network's fault rates.
    pub fn set_network(&mut self, faults: NetworkFaults) {
        self.net.faults = faults;
    }

    /// Sets node `id`'s tick period to `TICK / rate`.
    pub fn set_tick_rate(&mut self, id: NodeId, rate: f64) {
        if let Some(i) = self.slot(id) {
            self.nodes[i].period = ((TICK as f64) / rate.max(0.01)).round().max(1.0) as u64;
        }
    }

    /// Crashes node `id`: it stops, and its log keeps only what it synced.
    pub fn crash(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(node) = self.nodes[i].node.take() else { return };
        self.stats.crashes += 1;
        self.note(format!("crash n{id}"));
        self.nodes[i].down = Some(node.into_log().crash());
    }

    /// Durable mode: node `id` crashes at one of its next durable
    /// operations — the WAL write of its next step that writes, that
    /// write's sync, or the operation after — so its last write is torn at
    /// a random byte and nothing the step produced leaves the node. Until
    /// then it runs normally; afterwards it is down, as after
    /// [`crash`](Self::crash). A no-op without durable mode.
    #[cfg(feature = "persistence")]
    pub fn crash_mid_write(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        if self.nodes[i].node.is_some() {
            self.note(format!("n{id}: crash at one of its next writes"));
        }
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.log_mut_for_sim().arm_crash();
        }
    }

    /// Restarts a crashed node from its durable log, with a fresh state
    /// machine.
    pub fn restart(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(log) = self.nodes[i].down.take() else { return };
        self.note(format!("restart n{id}"));
        if let Some(c) = self.checker.as_mut() {
            if let Err(v) = c.restart(id, &log) {
                self.fail(v);
            }
        }
        let config = self.nodes[i].config.clone();
        match RaftNode::with_log(config, log) {
            Ok(node) => {
                self.nodes[i].node = Some(node);
                self.nodes[i].sm = (self.make)(id);
            }
            Err(e) => panic!("restart of node {id} failed: {e} (seed {})", self.cfg.seed),
        }
    }

    /// Whether node `id` is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// The simulator's own random generator (for schedules that must replay
    /// with the seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
