//! [`replay`]: runs a [`ModelScript`] step by step on real nodes, under the
//! simulator's five safety checkers, the configuration rules, the
//! inductive form of Leader Completeness and the linearizability checker,
//! and reports the first step that breaks one.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::script::{MessageRef, ModelCluster, ModelScript, ModelStep, command};
use super::{RegisterClients, expected_refusal, is_stale, snapshot_data, snapshot_register};
use crate::config::RaftConfig;
use crate::error::Error;
use crate::log::{MemoryLog, RaftLog};
use crate::message::{Message, MessageBody};
use crate::node::{Action, Event, RaftNode};
use crate::sim::check::{Checker, NodeView, Violation, applied_range};
use crate::sim::{HashChain, SimBackend, SimLog, StateMachine};
use crate::types::{NodeId, ReadId};

/// How a replay ended.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// Steps run (all of them, or up to and including the failing one).
    pub steps_run: usize,
    /// The first property broken, if any.
    pub failure: Option<ReplayFailure>,
    /// The clients' operations, for inspection.
    pub clients: RegisterClients,
}

/// A property broken by a replayed step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayFailure {
    /// The step (1-based) after which the property failed.
    pub step: usize,
    /// The property: one of the five of the Raft paper, "Configuration
    /// rules", "Linearizability", "No unexpected error" or "No panic".
    pub property: String,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for ReplayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {} violated: {}", self.step, self.property, self.detail)
    }
}

/// A script that cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A node of the cluster could not be built.
    #[error("node {node} cannot start: {error}")]
    Cluster {
        /// The node.
        node: NodeId,
        /// Why.
        error: Error,
    },
    /// A step names a node that does not exist or a message not in flight.
    #[error("step {step}: {reason}")]
    Step {
        /// The step (1-based).
        step: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Replays `script`: nodes on [`SimLog`]s over in-memory logs (a crash
/// keeps what they synced; in the asynchronous storage mode, what their
/// reported writes made durable), a network that holds what was sent until a step
/// delivers, duplicates or drops it (and loses what is sent while it holds
/// `capacity` messages; messages no receiver can act on any more are
/// removed after every step, see [`is_stale`]), a one-byte register per
/// node, and the clients' history. After every step the simulator's checkers judge the node that
/// stepped; the replay stops at the first broken property.
///
/// ```
/// use raft_io::sim::model::{ModelCluster, ModelScript, ModelStep, replay};
///
/// let script = ModelScript { cluster: ModelCluster::new([1, 2, 3]), steps: vec![ModelStep::Timeout(1)] };
/// let report = replay(&script).unwrap();
/// assert_eq!(report.steps_run, 1);
/// assert!(report.failure.is_none());
/// ```
pub fn replay(script: &ModelScript) -> Result<ReplayReport, ReplayError> {
    let mut run = Run::new(&script.cluster)?;
    for (i, step) in script.steps.iter().enumerate() {
        let number = i + 1;
        let outcome = run.step(step).map_err(|reason| ReplayError::Step { step: number, reason })?;
        run.collect_stale();
        let failure = outcome.map(|(property, detail)| ReplayFailure { step: number, property, detail });
        if failure.is_some() {
            return Ok(ReplayReport { steps_run: number, failure, clients: run.clients });
        }
    }
    Ok(ReplayReport { steps_run: script.steps.len(), failure: None, clients: run.clients })
}

struct Slot {
    id: NodeId,
    config: RaftConfig,
    raft: RaftNode<SimLog>,
    sm: HashChain,
    value: Option<u8>,
}

struct Run {
    capacity: usize,
    nodes: Vec<Slot>,
    network: Vec<Message>,
    checker: Checker,
    clients: RegisterClients,
    next_read: ReadId,
}

/// A broken property: its name and what was seen.
type Broken = Option<(String, String)>;

fn log(cluster: &ModelCluster) -> SimLog {
    let log = SimLog::new(SimBackend::Memory(MemoryLog::new()), true);
    if cluster.async_storage { log.with_async_writes() } else { log }
}

impl Run {
    fn new(cluster: &ModelCluster) -> Result<Self, ReplayError> {
        let mut run = Self {
            capacity: cluster.capacity,
            nodes: Vec::new(),
            network: Vec::new(),
            checker: Checker::default(),
            clients: RegisterClients::new(),
            next_read: 1,
        };
        // The snapshot of a log that never took one, which a joining node
        // receives: empty, at index 0.
        run.checker.snapshot_taken(0, &[]);
        let mut ids: Vec<NodeId> = cluster.ids().collect();
        ids.sort_unstable();
        for id in ids {
            let config = cluster.raft_config(id);
            let raft = RaftNode::with_log(config.clone(), log(cluster))
                .map_err(|error| ReplayError::Cluster { node: id, error })?;
            // A fresh node's log holds nothing the checkers could object to.
            let _ = run.checker.restart(id, raft.log());
            run.nodes.push(Slot { id, config, raft, sm: HashChain::default(), value: None });
        }
        Ok(run)
    }

    /// Removes the messages no receiver can act on any more ([`is_stale`]).
    fn collect_stale(&mut self) {
        let nodes = &self.nodes;
        let term = |id: NodeId| nodes.iter().find(|n| n.id == id).map_or(0, |n| n.raft.term());
        self.network.retain(|m| !is_stale(m, term(m.to)));
    }

    fn slot(&self, id: NodeId) -> Result<usize, String> {
        self.nodes.iter().position(|n| n.id == id).ok_or_else(|| format!("no node {id}"))
    }

    fn find(&self, m: &MessageRef) -> Result<usize, String> {
        self.network.iter().position(|msg| m.matches(msg)).ok_or_else(|| format!("message {m} is not in flight"))
    }

    fn step(&mut self, step: &ModelStep) -> Result<Broken, String> {
        let (i, event, value) = match step {
            ModelStep::Deliver(m) => {
                let message = self.network.remove(self.find(m)?);
                (self.slot(message.to)?, Event::Message(message), None)
            }
            ModelStep::Duplicate(m) => {
                let message = self.network[self.find(m)?].clone();
                (self.slot(message.to)?, Event::Message(message), None)
            }
            ModelStep::Drop(m) => {
                self.network.remove(self.find(m)?);
                return Ok(None);
            }
            ModelStep::Tick(n) => (self.slot(*n)?, Event::Tick, None),
            ModelStep::Timeout(n) => (self.slot(*n)?, Event::Campaign, None),
            ModelStep::Crash(n) => {
                let i = self.slot(*n)?;
                return Ok(self.crash(i));
            }
            ModelStep::Propose { node, value } => (self.slot(*node)?, Event::Propose(command(*value)), Some(*value)),
            ModelStep::Read { node, kind } => {
                let id = self.next_read;
                self.next_read += 1;
                (self.slot(*node)?, Event::Read { id, kind: *kind }, None)
            }
            ModelStep::Change { node, change } => (self.slot(*node)?, Event::ChangeMembership(change.clone()), None),
            ModelStep::Transfer { node, to } => (self.slot(*node)?, Event::TransferLeadership(*to), None),
            ModelStep::Persist(n) => {
                let i = self.slot(*n)?;
                let token = self.nodes[i].raft.log().oldest_write_in_flight();
                let token = token.ok_or_else(|| format!("node {n} has no write in flight"))?;
                (i, Event::Persisted(token), None)
            }
            ModelStep::Compact(n) => {
                let i = self.slot(*n)?;
                let slot = &self.nodes[i];
                let index = slot.raft.last_applied();
                if index <= slot.raft.log().snapshot_meta().index {
                    return Err(format!("node {n} applied nothing past its snapshot"));
                }
                let data = snapshot_data(&slot.sm, slot.value);
                self.checker.snapshot_taken(index, &data);
                (i, Event::Snapshot { index, data }, None)
            }
        };
        Ok(self.run(i, event, value))
    }

    fn crash(&mut self, i: usize) -> Broken {
        let slot = &mut self.nodes[i];
        let id = slot.id;
        self.clients.crashed(id);
        let placeholder =
            RaftNode::with_log(RaftConfig::single(id), SimLog::new(SimBackend::Memory(MemoryLog::new()), false));
        let Ok(placeholder) = placeholder else { return broken("No unexpected error", "placeholder node".into()) };
        let log = std::mem::replace(&mut slot.raft, placeholder).into_log().crash();
        if let Err(v) = self.checker.restart(id, &log) {
            return Some((v.property.into(), v.detail));
        }
        match RaftNode::with_log(slot.config.clone(), log) {
            Ok(raft) => slot.raft = raft,
            Err(e) => return broken("No unexpected error", format!("node {id} failed to restart: {e}")),
        }
        slot.sm = HashChain::default();
        slot.value = None;
        None
    }

    fn run(&mut self, i: usize, event: Event, value: Option<u8>) -> Broken {
        let id = self.nodes[i].id;
        let read = match &event {
            Event::Read { id, .. } => Some(*id),
            _ => None,
        };
        let client = value.is_some()
            || read.is_some()
            || matches!(event, Event::ChangeMembership(_) | Event::Campaign | Event::TransferLeadership(_));
        let raft = &mut self.nodes[i].raft;
        let before = (raft.role(), raft.term(), raft.last_index());
        let mut actions = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| raft.step_into(event, &mut actions)));
        match result {
            Err(panic) => return broken("No panic", format!("node {id} panicked: {}", panic_message(&panic))),
            Ok(Err(e)) if client && expected_refusal(&e) => return None,
            Ok(Err(e)) => return broken("No unexpected error", format!("node {id}: {e}")),
            Ok(Ok(())) => {}
        }
        if let Some(read) = read {
            self.clients.read(id, read);
        }
        // Where the proposal went, before the step's applies.
        if let (Some(value), Some(p)) = (value, self.nodes[i].raft.last_proposal()) {
            self.clients.proposed(id, value, p.first, p.term);
        }
        for action in actions {
            // A range is read from the node's log before its next step,
            // as a driver reads it: its commands are applied one by one.
            let applies = match action {
                Action::ApplyRange { first, last } => {
                    let mut range = Vec::new();
                    if let Err(v) = applied_range(&self.nodes[i].raft, first, last, &mut range) {
                        return Some((v.property.into(), v.detail));
                    }
                    range.into_iter().map(|(index, term, command)| Action::Apply { index, term, command }).collect()
                }
                other => vec![other],
            };
            for action in applies {
                if let Some(v) = self.carry_out(i, action) {
                    return Some((v.property.into(), v.detail));
                }
            }
        }
        if let Some(v) = self.check(i, before) {
            return Some((v.property.into(), v.detail));
        }
        if self.clients.has_reads() {
            if let Err(e) = self.clients.check() {
                return broken("Linearizability", e.to_string());
            }
        }
        None
    }

    fn carry_out(&mut self, i: usize, action: Action) -> Option<Violation> {
        let id = self.nodes[i].id;
        match action {
            Action::Send { message, .. } => {
                let leads = matches!(
                    message.body,
                    MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_)
                );
                if leads {
                    if let Err(v) = self.checker.led(message.from, message.term) {
                        return Some(v);
                    }
                }
                if self.network.len() < self.capacity {
                    self.network.push(message);
                }
            }
            Action::Apply { index, term, command } => {
                if let Err(v) = self.checker.applied(id, index, term, &command) {
                    return Some(v);
                }
                let slot = &mut self.nodes[i];
                slot.sm.apply(index, &command);
                slot.value = command.first().copied();
                self.clients.applied(id, index, term);
            }
            Action::RestoreSnapshot { meta, data } => {
                if let Err(v) = self.checker.restoring(id, meta.index, &data) {
                    return Some(v);
                }
                let slot = &mut self.nodes[i];
                slot.sm.restore(&data);
                slot.value = snapshot_register(&data);
                if let Err(v) = self.checker.restored(id, meta.index, slot.sm.digest()) {
                    return Some(v);
                }
            }
            Action::ReadReady { id: read, .. } => self.clients.read_ready(id, read, self.nodes[i].value),
            Action::ReadFailed { id: read, .. } => self.clients.read_failed(id, read),
            Action::MembershipCommitted { index, .. } => return self.checker.membership_committed(id, index).err(),
            _ => {}
        }
        None
    }

    fn check(&mut self, i: usize, before: (crate::types::Role, crate::types::Term, u64)) -> Option<Violation> {
        let slot = &mut self.nodes[i];
        let view = NodeView {
            id: slot.id,
            role: slot.raft.role(),
            term: slot.raft.term(),
            commit: slot.raft.commit_index(),
            applied: slot.raft.last_applied(),
            digest: slot.sm.digest(),
        };
        if let Err(v) = self.checker.node_stepped(&mut slot.raft, before, view) {
            return Some(v);
        }
        let nodes: Vec<&RaftNode<SimLog>> = self.nodes.iter().map(|n| &n.raft).collect();
        self.checker.electable(&nodes).err()
    }
}

fn broken(property: &str, detail: String) -> Broken {
    Some((property.into(), detail))
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
