//! An exhaustive model of a small cluster of real `RaftNode`s, explored
//! breadth-first by `stateright`'s checker (`docs/TESTING.md`, "Model
//! checking"). Shared by `tests/model_check.rs` and
//! `tests/model_mutants.rs`.
//!
//! The model implements `stateright::Model` directly rather than through
//! stateright's actor framework: the actor network either keeps every
//! delivered message forever (a duplicating set) or never duplicates, its
//! crashes restore an explicitly saved copy and come back as separate
//! actions, and its timers fire from any state. Here a node crashes and
//! restarts in one step from exactly what its `MemoryLog` synced, every
//! fault and client action has its own budget, and the network is a
//! bounded multiset whose deliveries, duplicates and drops are the same
//! steps the replay runs (`raft_io::sim::model`).

#![allow(dead_code)]

pub mod params;
mod props;
pub mod state;
mod step;
mod warm;

use std::collections::VecDeque;
use std::sync::{Arc, Once};
use std::time::Instant;

use raft_io::sim::HashChain;
use raft_io::sim::model::{ModelScript, ModelStep, expected_refusal};
use raft_io::{
    Action, Event, MembershipChange, MemoryLog, Message, MessageBody, NodeId, RaftConfig, RaftLog, RaftNode, ReadKind,
    Role,
};
use stateright::{Checker, HasDiscoveries, Model, Property};

pub use params::{ChangePlan, Params, ParamsError};
use state::{Budget, Ghost, Node, State};

/// The model of one configuration.
pub struct RaftModel {
    pub params: Params,
    configs: Vec<(NodeId, RaftConfig)>,
    /// The state the exploration starts from: the fresh cluster, or where
    /// the warm-up prefix left it (`Params::warm_start`).
    start: Vec<State>,
    /// The warm-up's steps (empty without one): every counterexample
    /// starts with them.
    pub prefix: Vec<ModelStep>,
    /// The term from which a leader can only have been elected by the
    /// transfer, if the budgets leave it only one way to a new term: in an
    /// untimed configuration from the fresh cluster with one timeout, term
    /// 2; after the warm-up, with no timeout and fewer ticks than the
    /// shortest election timeout (no timer can fire), the term after the
    /// warm-up's.
    transfer_term: Option<u64>,
}

impl RaftModel {
    pub fn new(params: Params) -> Result<Self, ParamsError> {
        params.validate()?;
        let configs = params.cluster.ids().map(|id| (id, params.cluster.raft_config(id))).collect();
        let mut model = Self { params, configs, start: Vec::new(), prefix: Vec::new(), transfer_term: None };
        let fresh = model.fresh_state();
        model.start = match fresh {
            Some(s) if model.params.warm_start => {
                let (s, prefix) = model.warm_up(s).ok_or_else(|| {
                    ParamsError::Invalid("the warm-up found no settled leader within 20 rounds".into())
                })?;
                model.prefix = prefix;
                vec![s]
            }
            Some(s) => vec![s],
            None => Vec::new(),
        };
        let p = &model.params;
        model.transfer_term = if p.warm_start {
            let timers_fire = p.timeouts > 0 || u64::from(p.ticks) >= p.cluster.election_timeout.0;
            let term = model.start.first().and_then(|s| s.nodes.iter().map(|n| n.raft.term()).max());
            term.filter(|_| !timers_fire).map(|t| t + 1)
        } else {
            (p.timeouts == 1 && p.ticks == 0).then_some(2)
        };
        Ok(model)
    }

    /// An empty log, in the asynchronous storage mode if the cluster is.
    fn fresh_log(&self) -> MemoryLog {
        let log = MemoryLog::new();
        if self.params.cluster.async_storage { log.with_async_writes() } else { log }
    }

    fn config(&self, id: NodeId) -> RaftConfig {
        self.configs.iter().find(|(i, _)| *i == id).map(|(_, c)| c.clone()).unwrap_or_else(|| RaftConfig::single(id))
    }

    /// The fresh cluster: every node at its start, budgets full.
    fn fresh_state(&self) -> Option<State> {
        let p = &self.params;
        let mut nodes = Vec::new();
        let mut ids: Vec<NodeId> = p.cluster.ids().collect();
        ids.sort_unstable();
        for id in ids {
            match RaftNode::with_log(self.config(id), self.fresh_log()) {
                Ok(raft) => nodes.push(Arc::new(Node::new(raft, None, HashChain::default()))),
                // Validated in `RaftModel::new`.
                Err(_) => return None,
            }
        }
        let changes = match p.change {
            None => 0,
            Some(ChangePlan::AddAndPromote(_)) => 2,
            Some(ChangePlan::AddLearner(_) | ChangePlan::Remove(_) | ChangePlan::Replace { .. }) => 1,
        };
        let budget = Budget {
            ticks: p.ticks,
            leader_ticks: p.leader_ticks,
            timeouts: p.timeouts,
            crashes: p.crashes,
            drops: p.drops,
            duplicates: p.duplicates,
            proposals: p.proposals,
            reads: p.reads,
            changes,
            transfers: p.transfers,
            compactions: p.compactions,
        };
        Some(State {
            nodes,
            net: Vec::new(),
            budget,
            clients: Default::default(),
            ghost: Ghost::default(),
            next_value: 1,
            next_read: 1,
            broken: None,
        })
    }
}

impl Model for RaftModel {
    type State = State;
    type Action = ModelStep;

    fn init_states(&self) -> Vec<State> {
        self.start.clone()
    }

    fn actions(&self, s: &State, actions: &mut Vec<ModelStep>) {
        if s.broken.is_some() {
            return;
        }
        let b = s.budget;
        for (k, m) in s.net.iter().enumerate() {
            if k > 0 && s.net[k - 1].key() == m.key() {
                continue;
            }
            let r = step::reference(m);
            actions.push(ModelStep::Deliver(r));
            if b.duplicates > 0 {
                actions.push(ModelStep::Duplicate(r));
            }
            if b.drops > 0 {
                actions.push(ModelStep::Drop(r));
            }
        }
        for n in &s.nodes {
            let (id, raft) = (n.id(), &n.raft);
            if b.ticks > 0 || (b.leader_ticks > 0 && raft.is_leader()) {
                actions.push(ModelStep::Tick(id));
            }
            if b.timeouts > 0 && !raft.is_leader() {
                actions.push(ModelStep::Timeout(id));
            }
            if b.crashes > 0 {
                actions.push(ModelStep::Crash(id));
            }
            // The disk finishes the oldest write in flight (asynchronous
            // storage mode): no budget, each write finishes once.
            if raft.log().pending_writes().next().is_some() {
                actions.push(ModelStep::Persist(id));
            }
            if b.compactions > 0 && raft.last_applied() > raft.log().snapshot_meta().index {
                actions.push(ModelStep::Compact(id));
            }
            if b.proposals > 0 && raft.is_leader() {
                actions.push(ModelStep::Propose { node: id, value: s.next_value });
            }
            if b.reads > 0 && (raft.is_leader() || raft.leader().is_some()) {
                actions.push(ModelStep::Read { node: id, kind: ReadKind::Index });
                if self.params.cluster.lease_reads {
                    actions.push(ModelStep::Read { node: id, kind: ReadKind::Lease });
                }
            }
            if b.transfers > 0 && raft.is_leader() {
                for &to in raft.membership().voters() {
                    if to != id {
                        actions.push(ModelStep::Transfer { node: id, to });
                    }
                }
            }
            if b.changes > 0 && raft.is_leader() {
                let m = raft.membership();
                let change = match self.params.change {
                    Some(ChangePlan::AddAndPromote(x) | ChangePlan::AddLearner(x)) if !m.contains(x) => {
                        Some(MembershipChange::AddLearner(x))
                    }
                    Some(ChangePlan::AddAndPromote(x)) if m.is_learner(x) => Some(MembershipChange::Promote(x)),
                    Some(ChangePlan::Remove(x)) if m.is_voter(x) => Some(MembershipChange::Remove(x)),
                    Some(ChangePlan::Replace { out, into }) if m.is_voter(out) && !m.contains(into) => {
                        let voters = m.voters().iter().copied().filter(|&v| v != out).chain([into]).collect();
                        Some(MembershipChange::Replace { voters, learners: Vec::new() })
                    }
                    _ => None,
                };
                if let Some(change) = change {
                    actions.push(ModelStep::Change { node: id, change });
                }
            }
        }
    }

    fn next_state(&self, last: &State, action: ModelStep) -> Option<State> {
        self.transition(last, action)
    }

    fn within_boundary(&self, s: &State) -> bool {
        s.broken.is_some()
            || s.nodes
                .iter()
                .all(|n| n.raft.term() <= self.params.max_term && n.raft.last_index() <= self.params.max_log)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut props = vec![
            Property::<Self>::always("Election Safety", |_, s| s.broken_property() != Some("Election Safety")),
            Property::<Self>::always("Leader Append-Only", |_, s| s.broken_property() != Some("Leader Append-Only")),
            Property::<Self>::always("Log Matching", |_, s| s.broken_property() != Some("Log Matching")),
            Property::<Self>::always("Leader Completeness", |_, s| s.broken_property() != Some("Leader Completeness")),
            Property::<Self>::always("State Machine Safety", |_, s| {
                s.broken_property() != Some("State Machine Safety")
            }),
            Property::<Self>::always("Configuration rules", |_, s| s.broken_property() != Some("Configuration rules")),
            Property::<Self>::always("Apply Order", |_, s| s.broken_property() != Some("Apply Order")),
            Property::<Self>::always("Linearizability", |_, s| s.broken_property() != Some("Linearizability")),
            Property::<Self>::always("No unexpected error", |_, s| s.broken_property() != Some("No unexpected error")),
            Property::<Self>::always("No panic", |_, s| s.broken_property() != Some("No panic")),
            Property::<Self>::sometimes("a leader is elected", |_, s| s.nodes.iter().any(|n| n.raft.is_leader())),
            Property::<Self>::sometimes("an entry commits", |_, s| !s.ghost.committed.is_empty()),
        ];
        if self.params.liveness {
            props.push(Property::<Self>::always("Leader after healing", live_after_healing));
        }
        if self.params.proposals > 0 {
            props.push(Property::<Self>::sometimes("a write is applied", |_, s| !s.ghost.applied.is_empty()));
            // The last write commits with no append after it to carry the
            // commit index to the follower whose answer committed it: that
            // follower learns it from a leader's tick (its commit notice or
            // heartbeat) or a read's round. An untimed configuration without
            // reads reaches this only with leader ticks
            // (`Params::commit_notices`); without them, that follower never
            // applies the write and nothing is checked there.
            props.push(Property::<Self>::sometimes("every follower applies a write", |_, s| {
                s.nodes.iter().all(|n| n.raft.is_leader() || n.value.is_some())
            }));
        }
        if self.params.reads > 0 {
            props.push(Property::<Self>::sometimes("a read completes", |_, s| s.clients.has_reads()));
        }
        if self.params.change.is_some() {
            props.push(Property::<Self>::sometimes("the change is made", |_, s| s.budget.changes == 0));
        }
        if self.params.transfers > 0 {
            // The target of the transfer leads: every transfer asked was
            // to a node that was not leading, so a leader elected after
            // the budget ran out, in a term no other election reaches, is
            // the transfer's doing (`RaftModel::transfer_term`).
            props.push(Property::<Self>::sometimes("leadership is transferred", |model, s| {
                model.transfer_term.is_some_and(|term| {
                    s.budget.transfers == 0
                        && s.budget.timeouts == 0
                        && s.nodes.iter().filter(|n| n.raft.is_leader()).any(|n| n.raft.term() >= term)
                })
            }));
        }
        if self.params.compactions > 0 {
            // A follower that lacks what a leader compacted is sent its
            // snapshot, and restores it.
            props.push(Property::<Self>::sometimes("a snapshot is sent", |_, s| {
                s.net.iter().any(|m| matches!(m.message.body, MessageBody::Snapshot(_)))
            }));
            if self.params.compactions >= 2 {
                props.push(Property::<Self>::sometimes("two compactions are taken", |_, s| s.budget.compactions == 0));
            }
            // One compaction: two nodes holding a snapshot past index 0
            // means one installed the other's.
            if self.params.compactions == 1 {
                props.push(Property::<Self>::sometimes("a snapshot is installed", |_, s| {
                    s.nodes.iter().filter(|n| n.raft.log().snapshot_meta().index > 0).count() >= 2
                }));
            }
            // A joining node holds a value only from a leader's snapshot
            // or entries after it: with one write, from the snapshot.
            if !self.params.cluster.joining.is_empty() {
                props.push(Property::<Self>::sometimes("a joining node restores a snapshot", |model, s| {
                    s.nodes.iter().any(|n| {
                        model.params.cluster.joining.contains(&n.id())
                            && n.raft.log().snapshot_meta().index > 0
                            && n.value.is_some()
                    })
                }));
            }
        }
        if matches!(self.params.change, Some(ChangePlan::Replace { .. })) {
            // The leader leaves the joint configuration by itself, once the
            // joint entry commits: some node gets to the new one.
            props.push(Property::<Self>::sometimes("the joint configuration is left", |model, s| {
                let Some(ChangePlan::Replace { into, .. }) = model.params.change else { return false };
                s.nodes.iter().any(|n| {
                    let m = n.raft.membership();
                    !m.is_joint() && m.is_voter(into)
                })
            }));
        }
        props
    }
}

/// Bounded liveness: once faults stop — every node ticks in turn and every
/// message is delivered in order, nothing lost — a leader is elected and
/// every voter of its configuration follows it, within a number of rounds.
fn live_after_healing(model: &RaftModel, s: &State) -> bool {
    if s.broken.is_some() {
        return true;
    }
    let mut nodes: Vec<RaftNode<MemoryLog>> = s.nodes.iter().map(|n| n.raft.clone()).collect();
    let mut queue: VecDeque<Message> = s.net.iter().map(|m| (*m.message).clone()).collect();
    let rounds = 10 * model.params.cluster.election_timeout.1 + 10;
    let step = |nodes: &mut Vec<RaftNode<MemoryLog>>, queue: &mut VecDeque<Message>, k: usize, e: Event| {
        let mut event = Some(e);
        while let Some(e) = event.take() {
            let mut out = Vec::new();
            match nodes[k].step_into(e, &mut out) {
                Ok(()) => {}
                Err(e) if expected_refusal(&e) => {}
                Err(_) => return false,
            }
            queue.extend(out.into_iter().filter_map(|a| match a {
                Action::Send { message, .. } => Some(message),
                _ => None,
            }));
            // A healthy disk (asynchronous storage mode): the step's
            // writes finish at once, all reported by the last.
            event = nodes[k].log().pending_writes().last().map(Event::Persisted);
        }
        true
    };
    for _ in 0..rounds {
        for k in 0..nodes.len() {
            if !step(&mut nodes, &mut queue, k, Event::Tick) {
                return false;
            }
            let mut budget = 1_000;
            while let Some(m) = queue.pop_front() {
                budget -= 1;
                if budget == 0 {
                    return false;
                }
                let Some(to) = nodes.iter().position(|n| n.id() == m.to) else { continue };
                if !step(&mut nodes, &mut queue, to, Event::Message(m)) {
                    return false;
                }
            }
        }
        let leader = nodes.iter().filter(|n| n.role() == Role::Leader).max_by_key(|n| n.term());
        if let Some(l) = leader {
            let follows =
                |n: &RaftNode<MemoryLog>| n.id() == l.id() || (n.leader() == Some(l.id()) && n.term() == l.term());
            if nodes.iter().filter(|n| l.membership().is_voter(n.id())).all(follows) {
                return true;
            }
        }
    }
    false
}

/// A property broken, with the shortest path found to it as a script.
#[derive(Debug)]
pub struct Failure {
    pub property: &'static str,
    pub detail: String,
    pub script: ModelScript,
}

/// What one exhaustive run found.
#[derive(Debug)]
pub struct Outcome {
    pub name: &'static str,
    /// Distinct states.
    pub states: usize,
    /// States generated, duplicates included.
    pub generated: usize,
    pub max_depth: usize,
    pub seconds: f64,
    /// Whether every reachable state was explored (neither the state cap,
    /// `RAFT_IO_MODEL_MAX_STATES`, nor the time limit,
    /// `RAFT_IO_MODEL_SECONDS`, was reached).
    pub exhaustive: bool,
    pub failure: Option<Failure>,
    /// The `sometimes` properties an example was found for.
    pub examples: Vec<&'static str>,
    /// The `sometimes` properties no explored state satisfied: what the
    /// configuration was meant to reach and did not.
    pub missing: Vec<&'static str>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "model {}: {} distinct states ({} generated), depth {}, {:.1} s{}",
            self.name,
            self.states,
            self.generated,
            self.max_depth,
            self.seconds,
            if self.exhaustive { "" } else { " (stopped by the state cap or the time limit: not exhaustive)" }
        )?;
        if let Some(x) = &self.failure {
            write!(f, "; {} violated at depth {}: {}", x.property, x.script.steps.len(), x.detail)?;
        }
        Ok(())
    }
}

/// Panics inside a checker thread are caught and become a "No panic"
/// violation; this keeps their messages off the test output.
fn quiet_checker_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !std::thread::current().name().is_some_and(|n| n.starts_with("checker-")) {
                previous(info);
            }
        }));
    });
}

/// Explores `params` breadth-first on `threads` threads, stopping at the
/// first broken property. With one thread the counterexample is a shortest
/// one.
pub fn run(params: Params, threads: usize) -> Result<Outcome, ParamsError> {
    explore(params, threads, false)
}

/// Like [`run`], depth-first: the same states and verdicts, but only the
/// current path and its pending siblings are kept (breadth-first keeps the
/// whole frontier, about 1.5 KB a state), so larger spaces fit in memory;
/// counterexamples are not the shortest.
pub fn run_depth_first(params: Params, threads: usize) -> Result<Outcome, ParamsError> {
    explore(params, threads, true)
}

fn explore(params: Params, threads: usize, depth_first: bool) -> Result<Outcome, ParamsError> {
    quiet_checker_panics();
    let name = params.name;
    let cluster = params.cluster.clone();
    let model = RaftModel::new(params)?;
    let started = Instant::now();
    let cap = std::env::var("RAFT_IO_MODEL_MAX_STATES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000_000);
    let mut builder = model.checker().threads(threads).finish_when(HasDiscoveries::AnyFailures).target_state_count(cap);
    // A time limit for deep runs: a run stopped by it is not exhaustive.
    let limit = std::env::var("RAFT_IO_MODEL_SECONDS").ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(secs) = limit {
        builder = builder.timeout(std::time::Duration::from_secs(secs));
    }
    let checker: Box<dyn Checker<RaftModel>> =
        if depth_first { Box::new(builder.spawn_dfs().join()) } else { Box::new(builder.spawn_bfs().join()) };
    let seconds = started.elapsed().as_secs_f64();
    let mut failure: Option<Failure> = None;
    let mut examples = Vec::new();
    let mut missing = Vec::new();
    for property in checker.model().properties() {
        let Some(path) = checker.discovery(property.name) else {
            if !property.expectation.discovery_is_failure() {
                missing.push(property.name);
            }
            continue;
        };
        if !property.expectation.discovery_is_failure() {
            examples.push(property.name);
            continue;
        }
        let last = path.last_state().clone();
        // The warm-up's steps first: the script runs from the fresh
        // cluster.
        let steps: Vec<ModelStep> = checker.model().prefix.iter().cloned().chain(path.into_actions()).collect();
        if failure.as_ref().is_some_and(|f| f.script.steps.len() <= steps.len()) {
            continue;
        }
        let detail = last.broken.as_ref().map_or_else(|| "(liveness)".to_owned(), |b| b.1.clone());
        failure =
            Some(Failure { property: property.name, detail, script: ModelScript { cluster: cluster.clone(), steps } });
    }
    Ok(Outcome {
        name,
        states: checker.unique_state_count(),
        generated: checker.state_count(),
        max_depth: checker.max_depth(),
        seconds,
        exhaustive: checker.state_count() < cap && limit.is_none_or(|l| seconds < l as f64),
        failure,
        examples,
        missing,
    })
}
