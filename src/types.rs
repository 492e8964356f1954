//! Core value types shared by every layer: identifiers, log entries, hard
//! state and snapshot metadata.

use bytes::Bytes;

use crate::membership::Membership;

/// Identifies a node. `0` is reserved to mean "no node" and is rejected by
/// [`RaftConfig::validate`](crate::RaftConfig::validate).
pub type NodeId = u64;
/// A Raft term: a logical clock that increases with every election.
pub type Term = u64;

/// The highest term a node accepts: 2^62. A message with a higher term is
/// dropped as invalid and a log holding one is refused as corrupt, so the
/// `term + 1` of an election can never overflow, whatever a faulty peer or
/// a damaged disk supplies. A cluster holding an election every
/// millisecond would need 146 million years to reach it.
pub const MAX_TERM: Term = 1 << 62;
/// The most a single message may raise a node's term: 2^32. A message whose
/// term is further ahead of the receiver's is dropped (see "Terms from
/// messages" in `docs/PROTOCOL.md`): no one message, from a stranger or a
/// damaged peer, can push a cluster to [`MAX_TERM`], while an honest node
/// that missed even billions of elections still follows the new leader.
pub const MAX_TERM_JUMP: Term = 1 << 32;
/// A position in the replicated log. The first entry has index 1; index 0 is
/// the empty prefix (term 0).
pub type Index = u64;
/// An identifier chosen by the caller for a linearizable read.
pub type ReadId = u64;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntryKind {
    /// An application command, handed to the state machine through
    /// [`Action::Apply`](crate::Action::Apply).
    Normal = 0,
    /// The empty entry a new leader appends to commit entries of earlier terms.
    Noop = 1,
    /// A configuration entry: its data is an encoded [`Membership`]
    /// (see [`Membership::encode`]).
    Config = 2,
}

impl EntryKind {
    /// The byte used for this kind on the wire and in the WAL.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Parses a kind byte; `None` for an unknown value.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Normal),
            1 => Some(Self::Noop),
            2 => Some(Self::Config),
            _ => None,
        }
    }
}

/// One entry of the replicated log.
///
/// Cloning an entry is cheap: `data` is a reference-counted [`Bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position in the log.
    pub index: Index,
    /// What the entry carries.
    pub kind: EntryKind,
    /// The command (for [`EntryKind::Normal`]) or the encoded configuration
    /// (for [`EntryKind::Config`]); empty for [`EntryKind::Noop`].
    pub data: Bytes,
}

impl Entry {
    /// A command entry.
    pub fn normal(term: Term, index: Index, data: Bytes) -> Self {
        Self { term, index, kind: EntryKind::Normal, data }
    }

    /// A leader's no-op entry.
    pub fn noop(term: Term, index: Index) -> Self {
        Self { term, index, kind: EntryKind::Noop, data: Bytes::new() }
    }

    /// A configuration entry holding `membership`.
    pub fn config(term: Term, index: Index, membership: &Membership) -> Self {
        Self { term, index, kind: EntryKind::Config, data: membership.encode() }
    }

    /// Bytes this entry counts against message and uncommitted-size limits:
    /// its data plus a fixed per-entry overhead for index, term and kind.
    pub fn size(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Fixed per-entry overhead used by [`Entry::size`].
pub const ENTRY_OVERHEAD: u64 = 24;

/// The state a node must persist before answering anything that depends on
/// it: its term, its vote in that term, and (lazily) its commit index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known committed. Persisting it is an optimisation
    /// (a restarted node can apply without waiting for the leader); a change
    /// of `commit` alone never forces a sync.
    pub commit: Index,
}

/// Describes the snapshot that replaces the log prefix `1..=index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers (0: no snapshot).
    pub index: Index,
    /// The term of the entry at `index`, kept for the consistency check.
    pub term: Term,
    /// The configuration in effect at `index`.
    pub membership: Membership,
}

/// Who a durable log belongs to. Written once when a node first starts on an
/// empty log; a log that belongs to another node or cluster is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogIdentity {
    /// The cluster id from [`RaftConfig`](crate::RaftConfig).
    pub cluster_id: u64,
    /// The node id from [`RaftConfig`](crate::RaftConfig).
    pub node_id: NodeId,
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Runs a pre-vote: asks whether it could win before disturbing anyone.
    PreCandidate,
    /// Runs an election in its current term.
    Candidate,
    /// Leads its current term.
    Leader,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_kind_round_trips_through_its_byte() {
        for kind in [EntryKind::Normal, EntryKind::Noop, EntryKind::Config] {
            assert_eq!(EntryKind::from_u8(kind.to_u8()), Some(kind));
        }
        assert_eq!(EntryKind::from_u8(3), None);
        assert_eq!(EntryKind::from_u8(255), None);
    }

    #[test]
    fn entry_size_counts_data_and_overhead() {
        let e = Entry::normal(1, 1, Bytes::from_static(b"abcd"));
        assert_eq!(e.size(), 4 + ENTRY_OVERHEAD);
        assert_eq!(Entry::noop(1, 2).size(), ENTRY_OVERHEAD);
    }
}
