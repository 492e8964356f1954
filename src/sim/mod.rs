//! A deterministic cluster simulator with fault injection and safety
//! checking (feature `sim`).
//!
//! [`Cluster`] runs N [`RaftNode`](crate::RaftNode)s in one thread over a seeded network that
//! loses, duplicates, delays and reorders messages, and that can be
//! partitioned in any way (also one-way). Nodes crash and restart from what
//! their log had synced, tick at their own rates, and drive a
//! [`StateMachine`] of your choice. After every delivered event the
//! simulator checks the five safety properties of Raft, that each node
//! applies in log order and restores only snapshots a state machine took,
//! the two rules that keep membership changes safe, and that every node
//! that could win an election holds every committed entry, each property
//! in its own checker; on a violation it panics with a
//! [`Failure`] report (or keeps it as a value, with
//! [`SimConfig::panic_on_violation`] off). A run is a function of its seed
//! and the calls made: replaying them reproduces it exactly.
//!
//! The [`StateMachine`] is the crate's one trait, the same the threaded
//! runtime drives: the state machine you ship is the one you test.
//!
//! # A user's state machine, invariant and model: [`Simulation`]
//!
//! [`Simulation`] runs your state machine under the fault profiles with
//! clients drawn from your [`Workload`] (command and read generators, and
//! a sequential [`Model`](linearizability::Model) that must explain every
//! output they see), your invariant checked after every apply and restore
//! on every node. A failure comes back as a value and prints one line that
//! replays it (`RAFT_IO_REPLAY='profile=… nodes=… rounds=… seed=…'`, read
//! back by [`Simulation::run_all`]); `examples/bank_under_faults.rs` is a
//! complete example.
//!
//! ```
//! use bytes::Bytes;
//! use raft_io::StateMachine;
//! use raft_io::sim::linearizability::Model;
//! use raft_io::sim::{FaultProfile, Rng, Scenario, Simulation, Workload};
//!
//! /// A register that refuses values over 100.
//! #[derive(Default)]
//! struct Register(u8);
//!
//! impl StateMachine for Register {
//!     type Output = Result<(), String>;
//!     fn apply(&mut self, _index: u64, command: &Bytes) -> Self::Output {
//!         match command.first() {
//!             Some(&v) if v <= 100 => { self.0 = v; Ok(()) }
//!             _ => Err("too large".into()),
//!         }
//!     }
//!     fn snapshot(&self) -> Bytes { Bytes::copy_from_slice(&[self.0]) }
//!     fn restore(&mut self, data: &Bytes) { self.0 = data.first().copied().unwrap_or(0); }
//!     fn query(&self, _query: &[u8]) -> Option<Bytes> { Some(self.snapshot()) }
//! }
//!
//! /// Clients writing random values and reading; the model of the register.
//! struct Clients;
//! impl Model for Clients {
//!     type State = u8;
//!     type Op = Option<u8>; // Some(v): write v; None: read
//!     type Output = Result<Option<u8>, String>;
//!     fn init(&self) -> u8 { 0 }
//!     fn step(&self, s: &u8, op: &Option<u8>) -> (u8, Self::Output) {
//!         match *op {
//!             Some(v) if v <= 100 => (v, Ok(None)),
//!             Some(_) => (*s, Err("too large".into())),
//!             None => (*s, Ok(Some(*s))),
//!         }
//!     }
//! }
//! impl Workload for Clients {
//!     type Machine = Register;
//!     fn write(&mut self, rng: &mut Rng) -> Option<u8> { Some(rng.range(0, 120) as u8) }
//!     fn read(&mut self, _rng: &mut Rng) -> Option<Option<u8>> { Some(None) }
//!     fn encode(&self, op: &Option<u8>) -> Bytes { op.map_or(Bytes::new(), |v| Bytes::copy_from_slice(&[v])) }
//!     fn write_output(&self, _op: &Option<u8>, out: &Result<(), String>) -> Self::Output {
//!         out.clone().map(|()| None)
//!     }
//!     fn read_output(&self, _op: &Option<u8>, answer: Option<&Bytes>) -> Self::Output {
//!         Ok(answer.and_then(|b| b.first().copied()))
//!     }
//! }
//!
//! let sim = Simulation::new(|_node| Register::default(), |_seed| Clients)
//!     .invariant(|r, _node, _index| if r.0 <= 100 { Ok(()) } else { Err(format!("{} > 100", r.0)) });
//! let report = sim.run(&Scenario::new(FaultProfile::Crashes, 3, 60, 7)?)?;
//! assert!(report.operations > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Driving a cluster yourself
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
//!     type Output = ();
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
mod checked;
mod clients;
mod cluster;
mod disk;
mod faults;
mod fragile;
mod kv;
pub mod linearizability;
mod log;
pub mod model;
mod multi;
mod network;
mod outcome;
mod pause;
mod replay;
mod schedule;
mod script;
mod simulation;
mod stamps;
mod state_machine;
mod trace;
mod user;
mod workload;

pub use check::Violation;
pub use checked::Workload;
pub use cluster::Cluster;
pub use kv::KvStore;
#[cfg(feature = "persistence")]
pub use log::SimWal;
pub use log::{SimBackend, SimLog};
pub use multi::{MultiCluster, MultiSimConfig, MultiSimStats};
pub use network::NetworkFaults;
pub use outcome::{ReadOutcome, Replay, SimStats, WriteOutcome, WriteTicket};
pub use pause::PauseInbox;
pub use replay::{MAX_SCENARIO_NODES, MAX_SCENARIO_ROUNDS, REPLAY_ENV, Scenario, ScenarioError};
pub use simulation::{Report, SimError, Simulation};

pub use schedule::{Chaos, FaultProfile};
pub use script::ByteScript;
pub use state_machine::{HashChain, StateMachine};
pub use trace::{Trace, TraceEvent};
pub use user::{Failure, NodeState};
pub use workload::KvWorkload;

/// The simulator's seeded random generator (SplitMix64).
pub use crate::rng::Rng;

use std::sync::Arc;

use crate::config::RaftConfig;

/// Simulated time units per tick of a node ticking at rate 1.0.
pub const TICK: u64 = 1_000;

/// The simulated time `ticks` ticks after `now`, saturating: a caller's
/// "no limit" (`u64::MAX` ticks) is the end of time, not an overflow.
pub(crate) fn ticks_after(now: u64, ticks: u64) -> u64 {
    now.saturating_add(ticks.saturating_mul(TICK))
}

/// Mixed with a run's seed to choose whether its nodes (`Cluster`) or
/// groups (`MultiCluster`) hand committed commands over as
/// `Action::ApplyRange`, so that both hand-overs run under every fault.
const APPLY_RANGES_SALT: u64 = 0x6170_706c_7972_6e67;

/// Mixed with a run's seed to pick, per group of a
/// [`MultiCluster`](multi::MultiCluster), whether its nodes serve lease
/// reads (its clients then read with [`ReadKind::Lease`](crate::ReadKind)).
const LEASE_READS_SALT: u64 = 0x6c65_6173_6572_6473;

pub(super) type Configure = Arc<dyn Fn(RaftConfig) -> RaftConfig + Send + Sync>;

/// How to build a simulated cluster.
#[derive(Clone)]
pub struct SimConfig {
    pub(super) nodes: usize,
    pub(super) seed: u64,
    pub(super) network: NetworkFaults,
    pub(super) tick_skew: f64,
    pub(super) checks: bool,
    pub(super) trace: usize,
    pub(super) snapshots: bool,
    pub(super) record: bool,
    pub(super) keep_messages: usize,
    pub(super) bursts: bool,
    pub(super) durable: bool,
    pub(super) async_storage: bool,
    pub(super) panic_on_violation: bool,
    pub(super) configure: Configure,
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
            .field("bursts", &self.bursts)
            .field("durable", &self.durable)
            .field("async_storage", &self.async_storage)
            .field("panic_on_violation", &self.panic_on_violation)
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
            bursts: true,
            durable: false,
            async_storage: false,
            panic_on_violation: true,
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
        // NaN (which `clamp` lets through) counts as no skew.
        self.tick_skew = if skew.is_nan() { 0.0 } else { skew.clamp(0.0, 0.5) };
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

    /// Whether messages due to one node at the same moment are delivered
    /// together as one `Event::Messages` step (default on, as a driver that
    /// drains its inbox does; off: one step per message).
    pub fn bursts(mut self, on: bool) -> Self {
        self.bursts = on;
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

    /// The asynchronous storage mode (default off): every node runs with
    /// [`RaftConfig::async_storage`] on, and a simulated disk reports each
    /// write durable after a random delay, in order, sometimes several at
    /// once (module `disk`). A crash loses every write not yet reported
    /// (on a `WalLog`: every byte not synced, which reporting does).
    /// [`Cluster::stall_disk`] stalls a node's disk.
    pub fn async_storage(mut self, on: bool) -> Self {
        self.async_storage = on;
        self
    }

    /// Whether a violation panics with its report (default on), or is kept
    /// as a [`Failure`] value for [`Cluster::failure`] while the cluster
    /// stops (off; [`Simulation`] runs turn it off).
    pub fn panic_on_violation(mut self, on: bool) -> Self {
        self.panic_on_violation = on;
        self
    }

    /// The number of nodes.
    pub fn get_nodes(&self) -> usize {
        self.nodes
    }

    /// Adjusts every node's [`RaftConfig`] (its id, voters and seed are set
    /// by the simulator, and so is [`RaftConfig::apply_ranges`], chosen by
    /// the run's seed so that both ways of handing over committed commands
    /// run under every fault; `f` may choose it instead). A configuration
    /// the nodes refuse is refused before the run
    /// ([`Cluster::try_with_state_machines`], and [`Simulation::run`] with
    /// [`SimError::Invalid`]).
    pub fn configure(mut self, f: impl Fn(RaftConfig) -> RaftConfig + Send + Sync + 'static) -> Self {
        self.configure = Arc::new(f);
        self
    }

    /// The seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }
}
