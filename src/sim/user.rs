//! What a user plugs into a [`Cluster`]: an invariant checked after every
//! applied command and every snapshot restore on every node, formatters
//! that put command summaries and node states into failure reports, and a
//! mode in which a violation is returned as a [`Failure`] value instead of
//! a panic.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;

use super::cluster::Cluster;
use super::{StateMachine, TraceEvent, Violation};
use crate::types::{Index, NodeId, Term};

/// A user invariant: called with the state machine, its node and the index
/// it applied through; `Err` reports a violation.
pub(super) type Invariant<S> = Box<dyn FnMut(&S, NodeId, Index) -> Result<(), String>>;

/// Renders a command for the trace.
pub(super) type CommandFormat = Box<dyn Fn(&Bytes) -> String>;

/// Renders a state machine for failure reports.
pub(super) type StateFormat<S> = Box<dyn Fn(&S) -> String>;

/// The user's hooks on a cluster.
pub(super) struct Hooks<S> {
    pub(super) invariant: Option<Invariant<S>>,
    pub(super) commands: Option<CommandFormat>,
    pub(super) states: Option<StateFormat<S>>,
    /// The line that replays this run, for failure reports.
    pub(super) replay: Option<String>,
}

impl<S> Default for Hooks<S> {
    fn default() -> Self {
        Self { invariant: None, commands: None, states: None, replay: None }
    }
}

/// A node's application state when a failure was reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// The node.
    pub node: NodeId,
    /// Whether it was up.
    pub up: bool,
    /// The index it had applied through (0 if down).
    pub applied: Index,
    /// Its state machine's digest.
    pub digest: u64,
    /// Its state, as the formatter of
    /// [`Cluster::describe_states`] renders it (`None` without one).
    pub state: Option<String>,
}

/// A failed simulation: which property broke, where, and how to replay it.
/// Returned by [`Cluster::failure`] (with
/// [`SimConfig::panic_on_violation`](super::SimConfig::panic_on_violation)
/// off) and by [`Simulation`](super::Simulation) runs; its `Display` is
/// what the simulator panics with otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The property broken (built-in, a user invariant, linearizability,
    /// liveness, or user code that panicked).
    pub violation: Violation,
    /// The node where it was seen, when one is known.
    pub node: Option<NodeId>,
    /// The index it was seen at, when one is known.
    pub index: Option<Index>,
    /// The cluster's seed.
    pub seed: u64,
    /// Simulated time of the failure.
    pub at: u64,
    /// One line that reproduces the failure: a `RAFT_IO_REPLAY=...` line
    /// for [`Simulation`](super::Simulation) runs (see
    /// [`Scenario`](super::Scenario)), otherwise the seed to rerun your
    /// test's calls with.
    pub replay: String,
    /// Every node's applied index, digest and (with a formatter) state.
    pub states: Vec<NodeState>,
    /// The recent events, rendered.
    pub trace: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "raft-io simulator: {}", self.violation)?;
        writeln!(f, "  replay: {}", self.replay)?;
        let node = self.node.map_or_else(|| "-".to_owned(), |n| format!("n{n}"));
        let index = self.index.map_or_else(|| "-".to_owned(), |i| i.to_string());
        writeln!(f, "  node: {node}  index: {index}  seed: {}  time: {}", self.seed, self.at)?;
        writeln!(f, "  node states:")?;
        for s in &self.states {
            let up = if s.up { "up" } else { "down" };
            write!(f, "    n{} {up} applied {} digest {:#018x}", s.node, s.applied, s.digest)?;
            match &s.state {
                Some(state) => writeln!(f, ": {state}")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "  recent events:")?;
        write!(f, "{}", self.trace)
    }
}

/// The message of a caught panic.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

impl<S: StateMachine> Cluster<S> {
    /// Checks `invariant` on every node after every command it applies and
    /// after every snapshot it restores, with the node's id and the index it
    /// applied through. An `Err` (or a panic inside the invariant) is
    /// reported as a [`Violation`] of [`Violation::USER_INVARIANT`], with the
    /// seed, node, index and trace, like a built-in one.
    ///
    /// ```
    /// use raft_io::sim::{Cluster, HashChain, SimConfig};
    ///
    /// let mut cluster = Cluster::new(SimConfig::new(3).seed(1).panic_on_violation(false));
    /// cluster.set_invariant(|sm: &HashChain, _node, index| {
    ///     if sm.applied() > index { Err(format!("applied {} > index {index}", sm.applied())) } else { Ok(()) }
    /// });
    /// let leader = cluster.elect(500).unwrap();
    /// cluster.propose(leader, "x".into()).unwrap();
    /// cluster.run_ticks(20);
    /// assert!(cluster.failure().is_none());
    /// ```
    pub fn set_invariant(&mut self, invariant: impl FnMut(&S, NodeId, Index) -> Result<(), String> + 'static) {
        self.hooks.invariant = Some(Box::new(invariant));
    }

    /// Summarizes each applied command in the trace with `format` (a
    /// trace line per apply then reads `apply n2 7@t3 transfer 1->2 5`).
    pub fn summarize_commands(&mut self, format: impl Fn(&Bytes) -> String + 'static) {
        self.hooks.commands = Some(Box::new(format));
    }

    /// Renders each node's state with `format` in failure reports (see
    /// [`NodeState::state`]).
    pub fn describe_states(&mut self, format: impl Fn(&S) -> String + 'static) {
        self.hooks.states = Some(Box::new(format));
    }

    /// The line failure reports print to replay this run (set by
    /// [`Simulation`](super::Simulation) runs to their `RAFT_IO_REPLAY=...`
    /// line).
    pub fn set_replay_line(&mut self, line: impl Into<String>) {
        self.hooks.replay = Some(line.into());
    }

    /// The first violation seen, when
    /// [`SimConfig::panic_on_violation`](super::SimConfig::panic_on_violation)
    /// is off. Once there is one, the cluster stops: steps do nothing and
    /// runs return at once.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_deref()
    }

    /// Takes the first violation seen (see [`failure`](Self::failure)); the
    /// cluster stays stopped.
    pub fn take_failure(&mut self) -> Option<Failure> {
        self.failure.take().map(|f| {
            self.halted = true;
            *f
        })
    }

    /// Whether the cluster stopped on a failure.
    pub fn halted(&self) -> bool {
        self.halted || self.failure.is_some()
    }

    /// Runs the user invariant on node slot `i`, which applied through
    /// `index`.
    pub(super) fn check_invariant(&mut self, i: usize, index: Index) {
        let Some(invariant) = self.hooks.invariant.as_mut() else { return };
        let (id, sm) = (self.nodes[i].id, &self.nodes[i].sm);
        let verdict = catch_unwind(AssertUnwindSafe(|| invariant(sm, id, index)));
        let detail = match verdict {
            Ok(Ok(())) => return,
            Ok(Err(detail)) => detail,
            Err(panic) => format!("the invariant panicked: {}", panic_message(panic.as_ref())),
        };
        self.fail(Violation::new(Violation::USER_INVARIANT, detail), Some(id), Some(index));
    }

    /// Traces an applied command (with its summary, given a formatter).
    pub(super) fn trace_apply(&mut self, id: NodeId, index: Index, term: Term, command: &Bytes) {
        if !self.trace.enabled() {
            return;
        }
        let at = self.now;
        let event = match self.hooks.commands.as_ref() {
            Some(format) => TraceEvent::Command { at, node: id, index, term, summary: format(command) },
            None => TraceEvent::Apply { at, node: id, index, term },
        };
        self.trace.push(event);
    }

    /// Every node's applied index, digest and state, for a report. The
    /// state machine's `digest` and the states' formatter are user code,
    /// called here while a failure (perhaps their own panic) is reported:
    /// a panic in either leaves a placeholder (digest 0, the panic's
    /// message as the state), so that the report is still made.
    pub(super) fn node_states(&self) -> Vec<NodeState> {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let placeholder = |p: Box<dyn std::any::Any + Send>| format!("<panicked: {}>", panic_message(p.as_ref()));
        self.nodes
            .iter()
            .map(|n| NodeState {
                node: n.id,
                up: n.node.is_some(),
                applied: n.node.as_ref().map_or(0, |r| r.last_applied()),
                digest: catch_unwind(AssertUnwindSafe(|| n.sm.digest())).unwrap_or(0),
                state: self
                    .hooks
                    .states
                    .as_ref()
                    .map(|f| catch_unwind(AssertUnwindSafe(|| f(&n.sm))).unwrap_or_else(placeholder)),
            })
            .collect()
    }

    /// A failure report of `violation` at this moment.
    pub(super) fn report(&self, violation: Violation, node: Option<NodeId>, index: Option<Index>) -> Failure {
        let seed = self.cfg.seed;
        let replay = self.hooks.replay.clone().unwrap_or_else(|| {
            format!(
                "rerun the same calls on SimConfig::new({}).seed({seed}) (a run is a function of its seed and \
                 calls; sim::Simulation runs print a RAFT_IO_REPLAY line)",
                self.cfg.nodes
            )
        });
        Failure {
            violation,
            node,
            index,
            seed,
            at: self.now,
            replay,
            states: self.node_states(),
            trace: self.trace.to_string(),
        }
    }

    /// Reports `violation`: panics with the report, or (with
    /// `panic_on_violation` off) keeps the first one and stops the cluster.
    pub(super) fn fail(&mut self, violation: Violation, node: Option<NodeId>, index: Option<Index>) {
        if self.halted() {
            return;
        }
        let failure = self.report(violation, node, index);
        if self.cfg.panic_on_violation {
            panic!("{failure}");
        }
        self.failure = Some(Box::new(failure));
    }
}
