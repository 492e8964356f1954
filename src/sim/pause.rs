//! The process-pause fault: a node's driver stops (a stalled thread, a
//! suspended process, a long garbage collection) while the node itself
//! loses nothing. Messages and reads addressed to it wait, as they would in
//! a socket buffer and a request queue; its ticks do not happen. When it
//! resumes it does what the threaded runtime does after a stall: it steps
//! the waiting messages, then reports the whole gap as one
//! [`Event::Ticks`], then serves the waiting reads. Writes, membership
//! changes and the like addressed to a paused node are lost, as a request
//! to a down node is (the simulator's clients cannot wait for them).
//!
//! This is the fault lease reads must survive: a leader paused across its
//! lease, while the others elect a successor, must not serve a read from
//! the lease it held before the pause (`docs/PROTOCOL.md`, "Time after a
//! stall").

use super::StateMachine;
use super::cluster::{Cluster, Due};
use crate::message::Message;
use crate::node::{Event, ReadFailure};
use crate::types::NodeId;

/// What happens to the messages sent to a paused node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseInbox {
    /// They wait and are stepped when it resumes (a socket buffer).
    Kept,
    /// They are lost (its peers gave up on the connection): the node
    /// resumes knowing nothing of what happened meanwhile, and only its
    /// clock tells it that time passed.
    Lost,
}

/// A paused node's driver: when it resumes and what waits for it.
#[derive(Debug)]
pub(super) struct Pause {
    inbox: PauseInbox,
    /// Simulated time at which it resumes (a stale resume from an earlier
    /// pause, cut short by a crash, is ignored).
    until: u64,
    /// Ticks that came due while paused.
    missed: u64,
    /// Messages and reads that arrived, in order.
    waiting: Vec<Event>,
}

impl<S: StateMachine> Cluster<S> {
    /// Pauses node `id`'s driver for `ticks` of its ticks: nothing is
    /// stepped on it until it resumes; reads addressed to it wait, messages
    /// wait or are lost as `inbox` says, other requests are lost. On
    /// resuming it steps the waiting messages, then one
    /// [`Event::Ticks`] for the whole gap, then the waiting reads. A no-op
    /// for a node that is down or already paused.
    pub fn pause(&mut self, id: NodeId, ticks: u64, inbox: PauseInbox) {
        let Some(i) = self.slot(id) else { return };
        if self.nodes[i].node.is_none() || self.nodes[i].pause.is_some() {
            return;
        }
        self.stats.pauses += 1;
        self.note(format!("pause n{id} for {ticks} ticks, messages {inbox:?}"));
        let after = ticks.saturating_mul(self.nodes[i].period);
        self.nodes[i].pause =
            Some(Pause { inbox, until: self.now.saturating_add(after), missed: 0, waiting: Vec::new() });
        self.schedule(after, Due::Resume(id));
    }

    /// Whether node `id`'s driver is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.slot(id).is_some_and(|i| self.nodes[i].pause.is_some())
    }

    /// Whether node `id` is up and not paused: a request sent to it is
    /// delivered.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.is_up(id) && !self.is_paused(id)
    }

    /// A tick of a paused node: counted, not stepped. Returns whether the
    /// node is paused.
    pub(super) fn pause_tick(&mut self, i: usize) -> bool {
        match self.nodes[i].pause.as_mut() {
            Some(p) => {
                p.missed += 1;
                true
            }
            None => false,
        }
    }

    /// An event for node slot `i`: kept for later if the node is paused (a
    /// message or a read), dropped if it is a request that cannot wait.
    /// Returns the event back when the node is not paused.
    pub(super) fn hold_if_paused(&mut self, i: usize, event: Event) -> Option<Event> {
        let Some(p) = self.nodes[i].pause.as_mut() else { return Some(event) };
        match event {
            Event::Message(_) | Event::Messages(_) if p.inbox == PauseInbox::Kept => p.waiting.push(event),
            // The disk finished while the process was stopped: the node
            // learns it when it runs again.
            Event::Read { .. } | Event::Persisted(_) => p.waiting.push(event),
            _ => {}
        }
        None
    }

    /// Resumes node `id`: waiting messages, then the elapsed ticks in one
    /// event, then waiting reads (a read the node refuses outright is
    /// reported failed, so every read ends once).
    pub(super) fn resume(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        if self.nodes[i].pause.as_ref().is_none_or(|p| p.until > self.now) {
            return;
        }
        let Some(pause) = self.nodes[i].pause.take() else { return };
        self.note(format!("resume n{id} after {} ticks", pause.missed));
        let (mut messages, mut reads): (Vec<Message>, Vec<Event>) = (Vec::new(), Vec::new());
        let mut persisted = None;
        for event in pause.waiting {
            match event {
                Event::Message(m) => messages.push(m),
                Event::Messages(ms) => messages.extend(ms),
                // Cumulative: the latest covers the others.
                Event::Persisted(token) => persisted = Some(token),
                other => reads.push(other),
            }
        }
        if let Some(token) = persisted {
            self.expect_ok(id, Event::Persisted(token));
        }
        if !messages.is_empty() {
            self.expect_ok(id, Event::Messages(messages));
        }
        if pause.missed > 0 {
            self.expect_ok(id, Event::Ticks(pause.missed));
        }
        for read in reads {
            let Event::Read { id: read_id, .. } = read else { continue };
            if self.step_node(id, read).is_err() {
                self.read_refused(id, read_id, ReadFailure::LeadershipLost);
            }
        }
    }
}
