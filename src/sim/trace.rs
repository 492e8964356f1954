//! The recent history of a simulation, kept to explain a failure.

use std::collections::VecDeque;
use std::fmt;

use crate::types::{Index, NodeId, Term};

/// One thing that happened in a simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceEvent {
    /// A node ticked.
    Tick {
        /// Simulated time.
        at: u64,
        /// The node.
        node: NodeId,
    },
    /// A message was delivered.
    Deliver {
        /// Simulated time.
        at: u64,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Message kind.
        kind: &'static str,
        /// Message term.
        term: Term,
    },
    /// A node became leader.
    Leader {
        /// Simulated time.
        at: u64,
        /// The node.
        node: NodeId,
        /// Its term.
        term: Term,
    },
    /// Something the test did (propose, partition, crash, ...).
    Note {
        /// Simulated time.
        at: u64,
        /// What.
        what: String,
    },
    /// A node applied an entry.
    Apply {
        /// Simulated time.
        at: u64,
        /// The node.
        node: NodeId,
        /// Entry index.
        index: Index,
        /// Entry term.
        term: Term,
    },
    /// A node applied a command, summarized by the formatter of
    /// [`Cluster::summarize_commands`](super::Cluster::summarize_commands).
    Command {
        /// Simulated time.
        at: u64,
        /// The node.
        node: NodeId,
        /// Entry index.
        index: Index,
        /// Entry term.
        term: Term,
        /// The command, summarized.
        summary: String,
    },
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tick { at, node } => write!(f, "{at:>10} tick   n{node}"),
            Self::Deliver { at, from, to, kind, term } => write!(f, "{at:>10} deliver n{from} -> n{to} {kind} t{term}"),
            Self::Leader { at, node, term } => write!(f, "{at:>10} LEADER n{node} term {term}"),
            Self::Note { at, what } => write!(f, "{at:>10} ** {what}"),
            Self::Apply { at, node, index, term } => write!(f, "{at:>10} apply  n{node} {index}@t{term}"),
            Self::Command { at, node, index, term, summary } => {
                write!(f, "{at:>10} apply  n{node} {index}@t{term} {summary}")
            }
        }
    }
}

/// A bounded ring of recent [`TraceEvent`]s.
#[derive(Clone, Debug)]
pub struct Trace {
    events: VecDeque<TraceEvent>,
    capacity: usize,
    total: u64,
}

impl Trace {
    /// A trace keeping the last `capacity` events (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self { events: VecDeque::with_capacity(capacity.min(4096)), capacity, total: 0 }
    }

    /// Whether events are being kept.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Records an event.
    pub fn push(&mut self, event: TraceEvent) {
        self.total += 1;
        if self.capacity == 0 {
            return;
        }
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The kept events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &TraceEvent> {
        self.events.iter()
    }

    /// Events recorded since the start (kept or not).
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skipped = self.total - self.events.len() as u64;
        if skipped > 0 {
            writeln!(f, "  ... {skipped} earlier events")?;
        }
        for e in &self.events {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}
