//! The model's transitions: each `ModelStep` runs one real `RaftNode::step`
//! (or a crash-restart, or a network fault), carries out the actions the
//! way the replay (`raft_io::sim::model::replay`) does, and then judges the
//! new state (`props.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use raft_io::sim::model::{
    MessageRef, ModelStep, command, expected_refusal, is_stale, panic_message, snapshot_data, snapshot_register,
};
use raft_io::sim::{HashChain, StateMachine};
use raft_io::{Action, Entry, Event, Index, MessageBody, RaftLog, RaftNode, Role};

use super::RaftModel;
use super::props;
use super::state::{InFlight, Node, State};

/// What kind of request a step is, for classifying its errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    /// A tick or a message: must never fail.
    Internal,
    /// A client write of a value.
    Write(u8),
    /// A client read with an id.
    Read(u64),
    /// Any other request a node may refuse.
    Other,
}

/// What a node was before a step, for the transition properties.
pub struct Before {
    pub role: Role,
    pub term: u64,
    pub last: u64,
    pub applied: Index,
    /// The log, when the node led (Leader Append-Only).
    pub entries: Option<Vec<Entry>>,
}

/// `actions` with each `Action::ApplyRange` read from `raft`'s log, as a
/// driver reads it before the node's next step: one `Action::Apply` per
/// command (an unreadable range hands over nothing, which Apply Order's
/// completeness then reports).
fn read_ranges(raft: &RaftNode<raft_io::MemoryLog>, actions: Vec<Action>) -> Vec<Action> {
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        match action {
            Action::ApplyRange { first, last } => {
                let _ = raft.visit_applied(first, last, |index, term, command| {
                    out.push(Action::Apply { index, term, command: command.clone() });
                });
            }
            other => out.push(other),
        }
    }
    out
}

pub fn find(net: &[InFlight], m: &MessageRef) -> Option<usize> {
    net.iter().position(|x| x.digest == m.digest && x.message.from == m.from && x.message.to == m.to)
}

pub fn reference(m: &InFlight) -> MessageRef {
    let msg = &m.message;
    MessageRef { from: msg.from, to: msg.to, kind: msg.body.name(), term: msg.term, digest: m.digest }
}

/// Every entry of a log.
pub fn entries(raft: &RaftNode<raft_io::MemoryLog>) -> Vec<Entry> {
    let log = raft.log();
    let mut out = Vec::new();
    if log.last_index() >= log.first_index() {
        // An in-memory log holds every index from first to last.
        let _ = log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut out);
    }
    out
}

impl RaftModel {
    pub fn transition(&self, last: &State, step: ModelStep) -> Option<State> {
        let mut s = last.clone();
        match step {
            ModelStep::Deliver(m) => {
                let message = s.net.remove(find(&s.net, &m)?).message;
                let i = s.slot(message.to)?;
                self.step_node(&mut s, i, Event::Message((*message).clone()), Request::Internal)?;
            }
            ModelStep::Duplicate(m) => {
                s.budget.duplicates = s.budget.duplicates.checked_sub(1)?;
                let message = s.net[find(&s.net, &m)?].message.clone();
                let i = s.slot(message.to)?;
                self.step_node(&mut s, i, Event::Message((*message).clone()), Request::Internal)?;
            }
            ModelStep::Drop(m) => {
                s.budget.drops = s.budget.drops.checked_sub(1)?;
                s.net.remove(find(&s.net, &m)?);
            }
            ModelStep::Tick(n) => {
                let i = s.slot(n)?;
                if s.budget.ticks > 0 {
                    s.budget.ticks -= 1;
                } else if s.nodes[i].raft.is_leader() {
                    // A leader's tick in an untimed configuration (its
                    // commit notices).
                    s.budget.leader_ticks = s.budget.leader_ticks.checked_sub(1)?;
                } else {
                    return None;
                }
                self.step_node(&mut s, i, Event::Tick, Request::Internal)?;
            }
            ModelStep::Timeout(n) => {
                s.budget.timeouts = s.budget.timeouts.checked_sub(1)?;
                let i = s.slot(n)?;
                self.step_node(&mut s, i, Event::Campaign, Request::Other)?;
            }
            ModelStep::Crash(n) => {
                s.budget.crashes = s.budget.crashes.checked_sub(1)?;
                let i = s.slot(n)?;
                self.crash(&mut s, i);
            }
            ModelStep::Propose { node, value } => {
                s.budget.proposals = s.budget.proposals.checked_sub(1)?;
                s.next_value = s.next_value.checked_add(1)?;
                let i = s.slot(node)?;
                self.step_node(&mut s, i, Event::Propose(command(value)), Request::Write(value))?;
            }
            ModelStep::Read { node, kind } => {
                s.budget.reads = s.budget.reads.checked_sub(1)?;
                let id = s.next_read;
                s.next_read += 1;
                let i = s.slot(node)?;
                self.step_node(&mut s, i, Event::Read { id, kind }, Request::Read(id))?;
            }
            ModelStep::Transfer { node, to } => {
                s.budget.transfers = s.budget.transfers.checked_sub(1)?;
                let i = s.slot(node)?;
                self.step_node(&mut s, i, Event::TransferLeadership(to), Request::Other)?;
            }
            ModelStep::Persist(n) => {
                let i = s.slot(n)?;
                let token = s.nodes[i].raft.log().pending_writes().next()?;
                self.step_node(&mut s, i, Event::Persisted(token), Request::Internal)?;
            }
            ModelStep::Compact(n) => {
                s.budget.compactions = s.budget.compactions.checked_sub(1)?;
                let i = s.slot(n)?;
                let node = &s.nodes[i];
                let index = node.raft.last_applied();
                if index <= node.raft.log().snapshot_meta().index {
                    return None;
                }
                let data = snapshot_data(&node.sm, node.value);
                self.step_node(&mut s, i, Event::Snapshot { index, data }, Request::Internal)?;
            }
            ModelStep::Change { node, change } => {
                s.budget.changes = s.budget.changes.checked_sub(1)?;
                let i = s.slot(node)?;
                self.step_node(&mut s, i, Event::ChangeMembership(change), Request::Other)?;
            }
            // `ModelStep` may grow; `actions` offers only the steps above.
            other => panic!("the model does not offer `{other}`"),
        }
        // Messages no receiver can act on any more are gone (as in the
        // replay): delivering them would only drop them.
        let terms: Vec<(raft_io::NodeId, u64)> = s.nodes.iter().map(|n| (n.id(), n.raft.term())).collect();
        let term = |id| terms.iter().find(|(n, _)| *n == id).map_or(0, |(_, t)| *t);
        s.net.retain(|m| !is_stale(&m.message, term(m.message.to)));
        Some(s)
    }

    fn crash(&self, s: &mut State, i: usize) {
        let node = &s.nodes[i];
        let id = node.id();
        s.clients.crashed(id);
        let durable = node.raft.log().durable();
        match RaftNode::with_log(self.config(id), durable) {
            Ok(raft) => s.nodes[i] = Arc::new(Node::new(raft, None, HashChain::default())),
            Err(e) => s.break_with("No unexpected error", format!("node {id} failed to restart: {e}")),
        }
    }

    /// Steps node `i`. `None` when the node refused a request (nothing
    /// changed, so the transition does not exist).
    fn step_node(&self, s: &mut State, i: usize, event: Event, request: Request) -> Option<()> {
        let mut raft = s.nodes[i].raft.clone();
        let mut value = s.nodes[i].value;
        let mut sm = s.nodes[i].sm.clone();
        let id = raft.id();
        let before = Before {
            role: raft.role(),
            term: raft.term(),
            last: raft.last_index(),
            applied: raft.last_applied(),
            entries: raft.is_leader().then(|| entries(&raft)),
        };
        let mut actions = Vec::new();
        match catch_unwind(AssertUnwindSafe(|| raft.step_into(event, &mut actions))) {
            Err(panic) => {
                s.break_with("No panic", format!("node {id} panicked: {}", panic_message(&*panic)));
                return Some(());
            }
            Ok(Err(e)) if request != Request::Internal && expected_refusal(&e) => return None,
            Ok(Err(e)) => {
                s.break_with("No unexpected error", format!("node {id}: {e}"));
                return Some(());
            }
            Ok(Ok(())) => {}
        }
        if let Request::Read(read) = request {
            s.clients.read(id, read);
        }
        // Where the proposal went, before the step's applies.
        if let (Request::Write(v), Some(p)) = (request, raft.last_proposal()) {
            s.clients.proposed(id, v, p.first, p.term);
        }
        let mut completed_read = false;
        let mut applied = before.applied;
        // What the step handed over (Apply Order's completeness): from the
        // applied index before it, or from the last snapshot restored.
        let (mut from, mut handed) = (before.applied, Vec::new());
        for action in read_ranges(&raft, actions) {
            props::apply_order(s, id, &mut applied, &action);
            match &action {
                Action::Apply { index, .. } | Action::MembershipCommitted { index, .. } => handed.push(*index),
                Action::RestoreSnapshot { meta, .. } => (from, handed) = (meta.index, Vec::new()),
                _ => {}
            }
            match action {
                Action::Send { message, .. } => {
                    if matches!(
                        message.body,
                        MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_)
                    ) {
                        props::led(s, message.from, message.term);
                    }
                    s.send(message, self.params.cluster.capacity);
                }
                Action::Apply { index, term, command } => {
                    props::applied(s, id, index, term, &command);
                    value = command.first().copied();
                    sm.apply(index, &command);
                    s.clients.applied(id, index, term);
                }
                Action::RestoreSnapshot { data, .. } => {
                    value = snapshot_register(&data);
                    sm.restore(&data);
                }
                Action::ReadReady { id: read, .. } => {
                    s.clients.read_ready(id, read, value);
                    completed_read = true;
                }
                Action::ReadFailed { id: read, .. } => s.clients.read_failed(id, read),
                _ => {}
            }
        }
        props::apply_complete(s, &raft, from, &handed);
        s.nodes[i] = Arc::new(Node::new(raft, value, sm));
        props::after_step(s, i, &before);
        if completed_read {
            if let Err(e) = s.clients.check() {
                s.break_with("Linearizability", e.to_string());
            }
        }
        Some(())
    }
}
