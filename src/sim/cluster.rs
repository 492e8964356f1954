//! [`Cluster`]: the nodes, the event queue and the step loop that delivers
//! ticks and messages, carries out actions and runs the safety checkers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use bytes::Bytes;

use super::check::{Checker, NodeView, applied_range};
use super::network::Network;
use super::{
    HashChain, ReadOutcome, SimConfig, SimLog, SimStats, StateMachine, TICK, Trace, TraceEvent, WriteOutcome,
    WriteTicket,
};
use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::message::Message;
use crate::node::{Action, Event, RaftNode};
use crate::rng::{Rng, mix};
use crate::types::{Index, NodeId, ReadId, Role, Term};

use super::pause::Pause;
use super::replay::ScenarioError;

/// What a scheduled event does. Messages wait in a slab, so the heap moves
/// only small keys.
#[derive(Clone, Copy)]
pub(super) enum Due {
    Tick(NodeId),
    Deliver(u32),
    /// A paused node's driver resumes (pause.rs).
    Resume(NodeId),
    /// A write of node `id`'s run `run` is reported durable (disk.rs).
    Persist {
        id: NodeId,
        run: u64,
        token: crate::log::WriteToken,
    },
}

pub(super) struct Scheduled {
    pub(super) at: u64,
    pub(super) seq: u64,
    pub(super) due: Due,
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

pub(super) struct SimNode<S> {
    pub(super) id: NodeId,
    pub(super) config: RaftConfig,
    pub(super) node: Option<RaftNode<SimLog>>,
    /// The durable log while the node is down.
    pub(super) down: Option<SimLog>,
    pub(super) sm: S,
    pub(super) period: u64,
    /// Set while the node's driver is paused (pause.rs).
    pub(super) pause: Option<Pause>,
    /// Its disk, in the asynchronous storage mode (disk.rs).
    pub(super) disk: super::disk::Disk,
}

/// A simulated cluster: N nodes in one thread over a seeded network, with
/// the safety checkers run after every event (see the
/// [module documentation](crate::sim)).
pub struct Cluster<S: StateMachine = HashChain> {
    pub(super) cfg: SimConfig,
    pub(super) nodes: Vec<SimNode<S>>,
    pub(super) make: Box<dyn FnMut(NodeId) -> S>,
    pub(super) queue: BinaryHeap<Reverse<Scheduled>>,
    pub(super) in_flight: Vec<Option<Message>>,
    pub(super) free_slots: Vec<u32>,
    pub(super) seq: u64,
    pub(super) now: u64,
    pub(super) net: Network,
    pub(super) rng: Rng,
    pub(super) checker: Option<Checker>,
    pub(super) trace: Trace,
    pub(super) reads: Vec<ReadOutcome>,
    pub(super) followups: Vec<(NodeId, Event)>,
    pub(super) actions: Vec<Action>,
    pub(super) recorded: Vec<(NodeId, Action)>,
    pub(super) recent: VecDeque<Message>,
    /// The commands of an `Action::ApplyRange` being carried out (reused).
    pub(super) range: Vec<(crate::types::Index, crate::types::Term, Bytes)>,
    pub(super) queries: Vec<(NodeId, ReadId, Bytes)>,
    pub(super) tickets: Vec<WriteTicket>,
    /// Where the latest proposal a step accepted went
    /// (`RaftNode::last_proposal` after that step).
    pub(super) last_proposed: Option<crate::Proposal>,
    /// The term of the command first applied at each index, once any write
    /// was submitted (for resolving tickets).
    pub(super) applied_terms: std::collections::HashMap<crate::types::Index, crate::types::Term>,
    pub(super) writes: Vec<WriteOutcome>,
    pub(super) next_ticket: u64,
    pub(super) stats: SimStats,
    /// The user's invariant and formatters (user.rs).
    pub(super) hooks: super::user::Hooks<S>,
    /// The first violation, when violations are returned, not panicked.
    pub(super) failure: Option<Box<super::Failure>>,
    /// Set once a failure was taken: the cluster stays stopped.
    pub(super) halted: bool,
    /// Apply outputs of tracked writes, by ticket id (clients.rs).
    pub(super) outputs: std::collections::HashMap<u64, S::Output>,
    /// While a write is being submitted: outputs of entries applied in that
    /// step (a single node applies at once), by index and term.
    pub(super) capture: Option<Vec<(crate::types::Index, crate::types::Term, S::Output)>>,
}

impl<S: StateMachine> Cluster<S> {
    /// Schedules delivery of `message` after `after` time units.
    pub(super) fn schedule_message(&mut self, after: u64, message: Message) {
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

    pub(super) fn schedule(&mut self, after: u64, due: Due) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: self.now.saturating_add(after), seq: self.seq, due }));
    }

    pub(super) fn slot(&self, id: NodeId) -> Option<usize> {
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
    /// Returns false as well once the cluster stopped on a failure
    /// ([`failure`](Self::failure)).
    pub fn step(&mut self) -> bool {
        if self.halted() {
            return false;
        }
        let Some(Reverse(next)) = self.queue.pop() else { return false };
        self.now = next.at;
        match next.due {
            Due::Tick(id) => {
                let Some(i) = self.slot(id) else { return true };
                let period = self.nodes[i].period;
                self.schedule(period, Due::Tick(id));
                if self.nodes[i].node.is_some() && !self.pause_tick(i) {
                    self.expect_ok(id, Event::Tick);
                }
            }
            Due::Resume(id) => self.resume(id),
            Due::Persist { id, run, token } => self.disk_complete(id, run, token),
            Due::Deliver(slot) => {
                let Some(first) = self.take_message(slot) else { return true };
                let to = first.to;
                // Messages due to the same node at the same moment arrive
                // together, as one `Event::Messages` step (one sync).
                let mut burst: Vec<Message> = Vec::new();
                if self.cfg.bursts {
                    while let Some(m) = self.next_due_for(to) {
                        burst.push(m);
                    }
                }
                let up = self.slot(to).is_some_and(|i| self.nodes[i].node.is_some());
                if burst.is_empty() {
                    if up && self.net.connected(first.from, to) {
                        self.note_delivery(&first);
                        self.expect_ok(to, Event::Message(first));
                    }
                    return true;
                }
                burst.insert(0, first);
                burst.retain(|m| up && self.net.connected(m.from, m.to));
                for m in &burst {
                    self.note_delivery(m);
                }
                match burst.len() {
                    0 => {}
                    1 => self.expect_ok(to, Event::Message(burst.remove(0))),
                    _ => self.expect_ok(to, Event::Messages(burst)),
                }
            }
        }
        true
    }

    /// The next scheduled event, if it delivers a message to `to` now.
    fn next_due_for(&mut self, to: NodeId) -> Option<Message> {
        let Reverse(next) = self.queue.peek()?;
        let Due::Deliver(slot) = next.due else { return None };
        let same = next.at == self.now && self.in_flight.get(slot as usize)?.as_ref().is_some_and(|m| m.to == to);
        if !same {
            return None;
        }
        self.queue.pop();
        self.take_message(slot)
    }

    fn take_message(&mut self, slot: u32) -> Option<Message> {
        let m = self.in_flight.get_mut(slot as usize).and_then(Option::take)?;
        self.free_slots.push(slot);
        Some(m)
    }

    /// Counts, traces and keeps (for replays) a message being delivered.
    fn note_delivery(&mut self, message: &Message) {
        self.stats.delivered += 1;
        if matches!(message.body, crate::message::MessageBody::Snapshot(_)) {
            self.stats.snapshot_chunks += 1;
        }
        if self.trace.enabled() {
            let (from, to, kind, term) = (message.from, message.to, message.body.name(), message.term);
            self.trace.push(TraceEvent::Deliver { at: self.now, from, to, kind, term });
        }
        if self.cfg.keep_messages > 0 {
            if self.recent.len() == self.cfg.keep_messages {
                self.recent.pop_front();
            }
            self.recent.push_back(message.clone());
        }
    }

    /// Steps a node with an event that must never fail (a tick or a
    /// message): a failure is a bug, reported with the seed.
    pub(super) fn expect_ok(&mut self, id: NodeId, event: Event) {
        if let Err(e) = self.step_node(id, event) {
            panic!("raft-io simulator: node {id} failed on a tick or message: {e}\n  seed: {}", self.cfg.seed);
        }
    }

    /// Records read `read` on node `id` as failed.
    pub(super) fn read_refused(&mut self, id: NodeId, read: ReadId, reason: crate::node::ReadFailure) {
        let Some(i) = self.slot(id) else { return };
        let digest = self.nodes[i].sm.digest();
        self.take_query(id, read);
        let outcome = ReadOutcome { node: id, id: read, result: Err(reason), at: self.now, digest, value: None };
        self.reads.push(outcome);
    }

    /// Runs until simulated time has advanced by `ticks` ticks.
    pub fn run_ticks(&mut self, ticks: u64) {
        let end = super::ticks_after(self.now, ticks);
        while !self.halted() && self.queue.peek().is_some_and(|Reverse(s)| s.at <= end) {
            self.step();
        }
        if !self.halted() {
            self.now = self.now.max(end);
        }
    }

    /// Runs until `done` holds, checking after each event, for at most
    /// `max_ticks` ticks. Returns whether `done` held.
    pub fn run_until(&mut self, max_ticks: u64, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = super::ticks_after(self.now, max_ticks);
        while !done(self) {
            if self.halted() || self.queue.peek().is_none_or(|Reverse(s)| s.at > end) {
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

    pub(super) fn step_one(&mut self, id: NodeId, event: Event) -> Result<()> {
        if self.halted() {
            return Ok(());
        }
        let Some(i) = self.slot(id) else { return Ok(()) };
        let Some(event) = self.hold_if_paused(i, event) else { return Ok(()) };
        let Some(node) = self.nodes[i].node.as_mut() else { return Ok(()) };
        let before = (node.role(), node.term(), node.last_index());
        // A snapshot the state machine took: its bytes, for Snapshot
        // Integrity (registered even if the step fails: a crash inside it
        // may leave the file on disk).
        let taken = match (&event, self.checker.is_some()) {
            (Event::Snapshot { index, data }, true) => Some((*index, data.clone())),
            _ => None,
        };
        let mut actions = std::mem::take(&mut self.actions);
        let result = node.step_into(event, &mut actions);
        if let (Some((index, data)), Some(c)) = (taken, self.checker.as_mut()) {
            c.snapshot_taken(index, &data);
        }
        if result.is_err() && node.log().crashed() {
            // Durable mode: the node died inside the step; nothing it did
            // in the step leaves it, and the event dies with it.
            self.actions = actions;
            self.crash(id);
            return Ok(());
        }
        if let Some(p) = node.last_proposal() {
            self.last_proposed = Some(p);
        }
        for action in actions.drain(..) {
            self.carry_out(i, action);
        }
        self.actions = actions;
        if let Some(applied) = self.nodes[i].node.as_ref().map(|n| n.last_applied()) {
            self.settle_tickets(id, applied);
        }
        self.check(i, before);
        result
    }

    /// Applies one committed command on node slot `i`: checked, traced,
    /// applied, its output kept.
    fn apply(&mut self, i: usize, index: Index, term: Term, command: &Bytes) {
        let id = self.nodes[i].id;
        self.resolve_tickets(index, term);
        if let Some(c) = self.checker.as_mut() {
            if let Err(v) = c.applied(id, index, term, command) {
                self.fail(v, Some(id), Some(index));
            }
        }
        self.trace_apply(id, index, term, command);
        let output = self.nodes[i].sm.apply(index, command);
        self.keep_output(index, term, output);
        self.check_invariant(i, index);
    }

    pub(super) fn carry_out(&mut self, i: usize, action: Action) {
        let id = self.nodes[i].id;
        if self.cfg.record && !matches!(action, Action::Send { .. }) {
            self.recorded.push((id, action.clone()));
        }
        match action {
            Action::Send { to, message } => {
                self.check_sender(&message);
                self.route(id, to, message);
            }
            Action::Apply { index, term, command } => self.apply(i, index, term, &command),
            Action::ApplyRange { first, last } => {
                // The simulator copies the range out (it checks, then
                // applies each command); a driver applies it in the visit.
                let mut range = std::mem::take(&mut self.range);
                match self.nodes[i].node.as_ref().map(|node| applied_range(node, first, last, &mut range)) {
                    Some(Ok(())) => {
                        for (index, term, command) in range.drain(..) {
                            self.apply(i, index, term, &command);
                        }
                    }
                    Some(Err(v)) => self.fail(v, Some(id), Some(first)),
                    None => {}
                }
                range.clear();
                self.range = range;
            }
            Action::RestoreSnapshot { meta, data } => {
                self.stats.restores += 1;
                self.note(format!("n{id}: restore snapshot at {} (term {})", meta.index, meta.term));
                if let Some(c) = self.checker.as_mut() {
                    if let Err(v) = c.restoring(id, meta.index, &data) {
                        self.fail(v, Some(id), Some(meta.index));
                    }
                }
                self.nodes[i].sm.restore(&data);
                let digest = self.nodes[i].sm.digest();
                if let Some(c) = self.checker.as_mut() {
                    if let Err(v) = c.restored(id, meta.index, digest) {
                        self.fail(v, Some(id), Some(meta.index));
                    }
                }
                self.check_invariant(i, meta.index);
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
            Action::ReadFailed { id: read, reason } => self.read_refused(id, read, reason),
            Action::WriteSubmitted { token } => self.disk_submitted(i, token),
            Action::RoleChanged { role: Role::Leader, term, .. } => {
                self.stats.elections += 1;
                self.trace.push(TraceEvent::Leader { at: self.now, node: id, term });
            }
            Action::MembershipCommitted { index, .. } => {
                if let Some(c) = self.checker.as_mut() {
                    if let Err(v) = c.membership_committed(id, index) {
                        self.fail(v, Some(id), Some(index));
                    }
                }
                if index > self.stats.last_config_index {
                    self.stats.last_config_index = index;
                    self.stats.config_commits += 1;
                }
            }
            _ => {}
        }
    }

    /// Hands a message to the network.
    fn route(&mut self, from: NodeId, to: NodeId, message: Message) {
        match self.net.route(from, to) {
            [Some(first), Some(second)] => {
                self.schedule_message(second, message.clone());
                self.schedule_message(first, message);
            }
            [Some(first), None] | [None, Some(first)] => self.schedule_message(first, message),
            [None, None] => {}
        }
    }

    /// Election Safety also from what nodes send: a node that sent a
    /// leader's message in a term led that term.
    fn check_sender(&mut self, message: &Message) {
        use crate::message::MessageBody;
        let leads =
            matches!(message.body, MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_));
        if !leads {
            return;
        }
        if let Some(c) = self.checker.as_mut() {
            if let Err(v) = c.led(message.from, message.term) {
                self.fail(v, Some(message.from), None);
            }
        }
    }

    /// The safety properties, the configuration rules and the inductive
    /// form of Leader Completeness after a step of node slot `i`; `before`
    /// is its role, term and last index before the step.
    pub(super) fn check(&mut self, i: usize, before: (Role, Term, Index)) {
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
        let result = checker.node_stepped(node, before, view).and_then(|_| {
            let running: Vec<&RaftNode<SimLog>> = self.nodes.iter().filter_map(|s| s.node.as_ref()).collect();
            checker.electable(&running)
        });
        if let Err(v) = result {
            self.fail(v, Some(view.id), Some(view.applied));
        }
    }

    /// Adds a note to the trace.
    pub fn note(&mut self, what: impl Into<String>) {
        if self.trace.enabled() {
            self.trace.push(TraceEvent::Note { at: self.now, what: what.into() });
        }
    }
}

mod build;
