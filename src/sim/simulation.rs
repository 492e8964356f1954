//! [`Simulation`]: test your own state machine under every fault profile —
//! your invariant checked after every applied command and restore on every
//! node, your clients' history checked against your model — and get back a
//! [`Report`] or a [`Failure`] that prints one line to replay it.

use std::fmt::Debug;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;

use super::checked::{Clients, ReadsAreQueries, Workload};
use super::linearizability::{Call, Verdict, check_calls};
use super::replay::{Scenario, ScenarioError};
use super::stamps;
use super::user::panic_message;
use super::{Chaos, Cluster, Failure, FaultProfile, SimConfig, SimStats, Violation};
use crate::types::{Index, NodeId};

/// How long, in ticks, the cluster has to recover after the faults heal.
const LIVENESS_TICKS: u64 = 1_500;

/// What a passing run checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The run.
    pub scenario: Scenario,
    /// Client operations in the history (reads, writes, unknown outcomes).
    pub operations: usize,
    /// Of the writes, those the `Fragile` scenes proposed in their bursts
    /// (drawn from the workload and checked like the others).
    pub burst_writes: usize,
    /// The linearizability verdict: [`Verdict::Linearizable`], or
    /// [`Verdict::Unknown`] when the search budget ran out (never
    /// `NotLinearizable`: that is a [`Failure`]).
    pub linearizability: Verdict,
    /// What happened in the run.
    pub stats: SimStats,
}

/// Why a [`Simulation`] run did not pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The scenario or a parameter was refused before anything ran.
    #[error("invalid scenario: {0}")]
    Invalid(#[from] ScenarioError),
    /// The run failed: a property broke, the model could not explain the
    /// history, the cluster did not recover, or user code panicked.
    #[error("{0}")]
    Failed(Box<Failure>),
}

impl SimError {
    /// The failure, if the run failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(f) => Some(f),
            Self::Invalid(_) => None,
        }
    }
}

type Invariant<S> = Arc<dyn Fn(&S, NodeId, Index) -> Result<(), String>>;
type CommandFormat = Arc<dyn Fn(&Bytes) -> String>;
type StateFormat<S> = Arc<dyn Fn(&S) -> String>;

/// A user state machine, its clients and model, and its invariant, run
/// under the simulator's fault schedules (see the
/// [module documentation](super) for an example, and
/// `examples/bank_under_faults.rs`).
pub struct Simulation<W: Workload> {
    machine: Arc<dyn Fn(NodeId) -> W::Machine>,
    workload: Arc<dyn Fn(u64) -> W>,
    invariant: Option<Invariant<W::Machine>>,
    commands: Option<CommandFormat>,
    states: Option<StateFormat<W::Machine>>,
    configure: Arc<dyn Fn(SimConfig) -> SimConfig>,
    budget: u64,
    clients: usize,
    patience: u64,
}

impl<W: Workload> std::fmt::Debug for Simulation<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("invariant", &self.invariant.is_some())
            .field("budget", &self.budget)
            .field("clients", &self.clients)
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

impl<W: Workload + 'static> Simulation<W>
where
    W::Op: Clone + Debug,
    W::Output: Clone + Debug,
{
    /// Node `id` runs `machine(id)` (called again at every restart: state
    /// machines are volatile); the clients of a run with seed `s` are
    /// `workload(s)`.
    pub fn new(machine: impl Fn(NodeId) -> W::Machine + 'static, workload: impl Fn(u64) -> W + 'static) -> Self {
        Self {
            machine: Arc::new(machine),
            workload: Arc::new(workload),
            invariant: None,
            commands: None,
            states: None,
            configure: Arc::new(|c| c),
            budget: 1_000_000,
            clients: 4,
            patience: 40,
        }
    }

    /// Checks `invariant` on every node after every applied command and
    /// every snapshot restore (see [`Cluster::set_invariant`]).
    pub fn invariant(mut self, invariant: impl Fn(&W::Machine, NodeId, Index) -> Result<(), String> + 'static) -> Self {
        self.invariant = Some(Arc::new(invariant));
        self
    }

    /// Summarizes applied commands in failure traces (see
    /// [`Cluster::summarize_commands`]).
    pub fn summarize_commands(mut self, format: impl Fn(&Bytes) -> String + 'static) -> Self {
        self.commands = Some(Arc::new(format));
        self
    }

    /// Renders node states in failure reports (see
    /// [`Cluster::describe_states`]).
    pub fn describe_states(mut self, format: impl Fn(&W::Machine) -> String + 'static) -> Self {
        self.states = Some(Arc::new(format));
        self
    }

    /// Adjusts each run's [`SimConfig`] (after the simulation's own
    /// settings: snapshots every 40 entries, tick skew 0.1, ReadIndex
    /// timeout 30 ticks, violations returned rather than panicked).
    pub fn configure(mut self, f: impl Fn(SimConfig) -> SimConfig + 'static) -> Self {
        self.configure = Arc::new(f);
        self
    }

    /// The most search states the linearizability check visits before it
    /// reports [`Verdict::Unknown`] (default 1 000 000). Memory grows with
    /// the states visited (each keeps the set of operations placed and a
    /// model state), so the budget bounds it too. Refused if 0.
    pub fn search_budget(mut self, states: u64) -> Result<Self, ScenarioError> {
        if states == 0 {
            return Err(ScenarioError::OutOfRange { key: "search_budget", value: 0, min: 1, max: u64::MAX });
        }
        self.budget = states;
        Ok(self)
    }

    /// Concurrent clients (default 4; 1 to 64) and how many ticks each
    /// waits before it gives up on an operation (default 40; at least 1).
    pub fn clients(mut self, clients: usize, patience_ticks: u64) -> Result<Self, ScenarioError> {
        if !(1..=64).contains(&clients) {
            return Err(ScenarioError::OutOfRange { key: "clients", value: clients as u64, min: 1, max: 64 });
        }
        if patience_ticks == 0 {
            return Err(ScenarioError::OutOfRange { key: "patience", value: 0, min: 1, max: u64::MAX });
        }
        self.clients = clients;
        self.patience = patience_ticks;
        Ok(self)
    }

    /// Runs every profile in `profiles` on `nodes` nodes for `rounds`
    /// rounds with each seed in `seeds`, stopping at the first failure —
    /// or, when [`REPLAY_ENV`](super::REPLAY_ENV) is set, only the scenario
    /// it names (a failure's replay line).
    pub fn run_all(
        &self,
        profiles: &[FaultProfile],
        nodes: usize,
        rounds: usize,
        seeds: Range<u64>,
    ) -> Result<Vec<Report>, SimError> {
        if let Some(scenario) = Scenario::from_env() {
            return Ok(vec![self.run(&scenario?)?]);
        }
        let mut reports = Vec::new();
        for &profile in profiles {
            for seed in seeds.clone() {
                reports.push(self.run(&Scenario::new(profile, nodes, rounds, seed)?)?);
            }
        }
        Ok(reports)
    }

    /// Replays a failure's replay line (`RAFT_IO_REPLAY='...'`, or the
    /// scenario alone).
    pub fn replay(&self, line: &str) -> Result<Report, SimError> {
        self.run(&Scenario::parse_line(line)?)
    }

    /// Runs one scenario: the profile's faults with the clients issuing
    /// operations every round (and every tick of a fragile scene), then
    /// healing and a liveness check, then the linearizability check of the
    /// whole history.
    pub fn run(&self, scenario: &Scenario) -> Result<Report, SimError> {
        scenario.validate()?;
        let mut cluster: Option<Cluster<W::Machine>> = None;
        let result = catch_unwind(AssertUnwindSafe(|| self.run_in(scenario, &mut cluster)));
        let failure = match result {
            Ok(outcome) => return outcome,
            Err(panic) => {
                let detail = format!(
                    "a panic during the run (in the state machine, a generator, a formatter or the workload's \
                     encoding — or a simulator bug): {}",
                    panic_message(panic.as_ref())
                );
                let violation = Violation::new(Violation::USER_PANIC, detail);
                match cluster.as_ref() {
                    Some(c) => c.report(violation, None, None),
                    None => bare_failure(violation, scenario),
                }
            }
        };
        Err(failed(failure))
    }

    fn config(&self, scenario: &Scenario) -> SimConfig {
        let config = SimConfig::new(scenario.nodes)
            .seed(scenario.seed)
            .tick_skew(0.1)
            .keep_messages(64)
            .panic_on_violation(false)
            .configure(|c| c.read_timeout_ticks(30).snapshot_entries(40));
        #[cfg(feature = "persistence")]
        let config = config.durable(scenario.durable);
        (self.configure)(config).panic_on_violation(false)
    }

    fn run_in(&self, scenario: &Scenario, slot: &mut Option<Cluster<W::Machine>>) -> Result<Report, SimError> {
        let machine = self.machine.clone();
        let cluster = slot.insert(Cluster::try_with_state_machines(self.config(scenario), move |id| machine(id))?);
        cluster.set_replay_line(scenario.replay_line());
        if let Some(invariant) = self.invariant.clone() {
            cluster.set_invariant(move |sm, node, index| invariant(sm, node, index));
        }
        if let Some(format) = self.commands.clone() {
            cluster.summarize_commands(move |c| format(c));
        }
        if let Some(format) = self.states.clone() {
            cluster.describe_states(move |s| format(s));
        }
        let mut chaos = Chaos::new(scenario.profile, scenario.seed);
        let mut clients = Clients::new((self.workload)(scenario.seed), scenario.seed, self.clients, self.patience);
        for _ in 0..scenario.rounds {
            chaos.run_clients(cluster, 1, &mut clients);
            if let Some(f) = cluster.take_failure() {
                return Err(failed(f));
            }
        }
        let live = chaos.heal_and_check_liveness(cluster, LIVENESS_TICKS);
        if let Some(f) = cluster.take_failure() {
            return Err(failed(f));
        }
        if !live {
            let v = Violation::new(Violation::LIVENESS, format!("no commit within {LIVENESS_TICKS} ticks of healing"));
            return Err(failed(cluster.report(v, None, None)));
        }
        cluster.run_ticks(40);
        let history = clients.history(cluster);
        if let Some(f) = cluster.take_failure() {
            return Err(failed(f));
        }
        let model = &clients.workload;
        let verdict =
            match catch_unwind(AssertUnwindSafe(|| check_calls(&ReadsAreQueries(model), &history, self.budget))) {
                Ok(verdict) => verdict,
                Err(panic) => {
                    let detail = format!("the model panicked: {}", panic_message(panic.as_ref()));
                    return Err(failed(cluster.report(Violation::new(Violation::USER_PANIC, detail), None, None)));
                }
            };
        if let Verdict::NotLinearizable { deepest } = &verdict {
            let detail = explain(&history, deepest);
            return Err(failed(cluster.report(Violation::new(Violation::LINEARIZABILITY, detail), None, None)));
        }
        Ok(Report {
            scenario: *scenario,
            operations: history.len(),
            burst_writes: clients.burst_writes(),
            linearizability: verdict,
            stats: cluster.stats(),
        })
    }
}

/// A run that failed, as `run` returns it.
fn failed(failure: Failure) -> SimError {
    SimError::Failed(Box::new(failure))
}

/// A failure before any cluster existed (the first state machine panicked).
fn bare_failure(violation: Violation, scenario: &Scenario) -> Failure {
    Failure {
        violation,
        node: None,
        index: None,
        seed: scenario.seed,
        at: 0,
        replay: scenario.replay_line(),
        states: Vec::new(),
        trace: String::new(),
    }
}

/// Describes a history no order explains: the longest explained prefix's
/// end, and the operations that could not follow it.
fn explain<Op: Debug, Output: Debug>(history: &[Call<Op, Output>], deepest: &[usize]) -> String {
    let show = |i: usize| {
        let c = &history[i];
        let done = c.completed.map_or_else(|| "unknown".to_owned(), stamps::show);
        let out = c.output.as_ref().map_or_else(|| "?".to_owned(), |o| format!("{o:?}"));
        format!("    [{} .. {done}] {:?} -> {out}", stamps::show(c.invoked), c.op)
    };
    let mut text = format!(
        "no order of the {} client operations explains their outputs with the model (times: simulated time, \
         then #the order of events within that instant); the longest explained prefix has {} operations, \
         ending with:\n",
        history.len(),
        deepest.len()
    );
    for &i in deepest.iter().rev().take(5).collect::<Vec<_>>().iter().rev() {
        text.push_str(&show(*i));
        text.push('\n');
    }
    text.push_str("  and none of these can come next:\n");
    let mut rest: Vec<usize> = (0..history.len()).filter(|i| !deepest.contains(i)).collect();
    rest.sort_by_key(|&i| (history[i].completed.unwrap_or(u64::MAX), history[i].invoked));
    for i in rest.into_iter().take(8) {
        text.push_str(&show(i));
        text.push('\n');
    }
    text
}
