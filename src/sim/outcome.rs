//! What a simulation reports: counters, read and write outcomes, and how a
//! replayed message is changed.

use bytes::Bytes;

#[cfg(doc)]
use super::Cluster;

use crate::node::ReadFailure;
use crate::types::{Index, NodeId, ReadId};

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
    /// Process pauses ([`Cluster::pause`](super::Cluster::pause)).
    pub pauses: u64,
    /// Elections won.
    pub elections: u64,
    /// Configuration entries committed (each counted once, when the first
    /// node applies it).
    pub config_commits: u64,
    /// Index of the latest committed configuration entry.
    pub last_config_index: Index,
    /// Snapshot files damaged by [`Cluster::damage_snapshot`].
    pub damaged_snapshots: u64,
    /// Restarts refused because the node's log did not open (the node is
    /// lost for good).
    pub refused_restarts: u64,
    /// Asynchronous storage mode: write completions reported to nodes.
    pub write_completions: u64,
    /// Asynchronous storage mode: disk stalls injected.
    pub disk_stalls: u64,
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
