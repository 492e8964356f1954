//! What goes into a step ([`Event`]) and what comes out ([`Action`]).

use bytes::Bytes;

use super::{ReadFailure, ReadKind, TransferOutcome};
use crate::log::WriteToken;
use crate::membership::{Membership, MembershipChange};
use crate::message::Message;
use crate::types::{Index, NodeId, ReadId, Role, SnapshotMeta, Term};

/// Something that happened, for the node to react to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// One unit of logical time passed. Election and heartbeat timeouts are
    /// counted in ticks.
    Tick,
    /// `n` units of logical time passed at once: a driver that was paused
    /// (a stalled thread, a suspended process, a long garbage collection)
    /// reports the whole gap in one step. Timers, read deadlines and the
    /// read lease advance exactly as after `n` [`Event::Tick`]s with nothing
    /// in between, so a lease that expired during the pause is expired
    /// here; but the node sends at most one round of heartbeats and starts
    /// at most one election, not one per interval that passed. `Ticks(0)`
    /// changes nothing.
    Ticks(u64),
    /// Propose one command (leader only).
    Propose(Bytes),
    /// Propose many commands at once: one log append, one sync (leader
    /// only). The vector is consumed.
    ProposeBatch(Vec<Bytes>),
    /// A message from another node.
    Message(Message),
    /// Many messages at once, handled in one step: one log sync covers all
    /// of them (group commit on followers under pipelined load). The
    /// vector is consumed.
    Messages(Vec<Message>),
    /// A linearizable read identified by `id`. The node answers with exactly
    /// one [`Action::ReadReady`] or [`Action::ReadFailed`] for it.
    Read {
        /// The caller's identifier, unique among its pending reads.
        id: ReadId,
        /// How to confirm the read.
        kind: ReadKind,
    },
    /// Change the cluster configuration (leader only).
    ChangeMembership(MembershipChange),
    /// Hand leadership to another voter (leader only).
    TransferLeadership(NodeId),
    /// The application took a snapshot of its state covering every entry
    /// through `index` (at most [`RaftNode::last_applied`](super::RaftNode::last_applied)); the node stores
    /// it and compacts the log behind it.
    Snapshot {
        /// The last index the snapshot covers.
        index: Index,
        /// The serialized application state.
        data: Bytes,
    },
    /// Asynchronous storage mode: the log made the write `token` durable,
    /// and every write submitted before it (completions are cumulative, so
    /// reporting only the latest of several is enough). The node releases
    /// what waited for them. A token the node did not submit, from before a
    /// restart, or reported already is refused with
    /// [`Error::BadCompletion`](crate::Error::BadCompletion), changing
    /// nothing; a write the log failed halts the node.
    Persisted(WriteToken),
    /// Start an election now. Refused with
    /// [`Error::CannotCampaign`](crate::Error::CannotCampaign), changing
    /// nothing, when the node may not campaign (see
    /// [`CampaignRefusal`](crate::CampaignRefusal)).
    Campaign,
}

impl Event {
    /// Whether a step of this event may install a snapshot, and so drop
    /// entries from the front of the log, applied ones included: the
    /// application's own snapshot ([`Event::Snapshot`]) or a leader's
    /// snapshot stream ([`MessageBody::Snapshot`](crate::MessageBody::Snapshot),
    /// whose last chunk installs it). No other event removes an entry at
    /// or below the commit index (a follower truncates only entries above
    /// it), so an [`Action::ApplyRange`] not read yet stays readable
    /// through a step of any other event (checked in debug builds after
    /// every step).
    pub(crate) fn may_drop_applied(&self) -> bool {
        let snapshot = |m: &Message| matches!(m.body, crate::message::MessageBody::Snapshot(_));
        match self {
            Event::Snapshot { .. } => true,
            Event::Message(m) => snapshot(m),
            Event::Messages(ms) => ms.iter().any(snapshot),
            _ => false,
        }
    }
}

/// Where a proposal went: its commands were appended at `first..=last` in
/// `term` ([`RaftNode::last_proposal`](super::RaftNode::last_proposal),
/// right after the step that proposed them).
///
/// It commits when an [`Action::Apply`] for the same index and term
/// arrives (or an [`Action::ApplyRange`] over it, with the entry's term);
/// if an entry with another term is applied at one of those indexes, the
/// proposal was lost to a leader change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Index of the first command.
    pub first: Index,
    /// Index of the last command.
    pub last: Index,
    /// Term of the entries.
    pub term: Term,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send `message` to node `to`.
    Send {
        /// Destination node.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Apply a committed command to the state machine, in order.
    Apply {
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
        /// The command as proposed.
        command: Bytes,
    },
    /// Apply the committed commands at `first..=last` (the commands among
    /// the entries there; the first and the last are commands), in order:
    /// what [`Action::Apply`] would have carried for each of them, emitted
    /// instead of it when [`RaftConfig::apply_ranges`](crate::RaftConfig::apply_ranges)
    /// is on. Read them with [`RaftNode::visit_applied`](crate::RaftNode::visit_applied)
    /// before the node's next step (a later step may compact them away).
    ApplyRange {
        /// Index of the first command.
        first: Index,
        /// Index of the last command.
        last: Index,
    },
    /// The node's role or the leader it knows changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The configuration in effect changed (a configuration entry was
    /// appended, or an uncommitted one was truncated, or a snapshot was
    /// installed). It takes effect at once, before it commits.
    MembershipChanged {
        /// Index of the configuration entry (or snapshot).
        index: Index,
        /// The configuration now in effect.
        membership: Membership,
    },
    /// A configuration entry committed and was applied.
    MembershipCommitted {
        /// Index of the configuration entry.
        index: Index,
        /// The committed configuration.
        membership: Membership,
    },
    /// Policy hint: enough was applied since the last snapshot; the
    /// application should take one and hand it back with
    /// [`Event::Snapshot`] when convenient.
    SnapshotWanted {
        /// The node's applied index.
        applied: Index,
    },
    /// Replace the state machine's state with this snapshot (received from
    /// the leader, or found on restart). Entries after `meta.index` follow
    /// as [`Action::Apply`] (or [`Action::ApplyRange`]).
    RestoreSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The serialized application state.
        data: Bytes,
    },
    /// The read `id` may be served now: the state machine has applied
    /// through `index`, and serving the read from it is linearizable.
    ReadReady {
        /// The read's identifier.
        id: ReadId,
        /// Its read index.
        index: Index,
    },
    /// The read `id` failed; it will not be released.
    ReadFailed {
        /// The read's identifier.
        id: ReadId,
        /// Why.
        reason: ReadFailure,
    },
    /// A member told this node that a committed configuration (at
    /// `config_index`) removed it. The node stops campaigning and fails
    /// reads with [`ReadFailure::NotMember`] from here on; only a newer
    /// configuration that adds its id back (replicated to it by a leader)
    /// makes it a member again. The embedder should normally shut it down.
    /// Emitted once per removal.
    Removed {
        /// Index of the configuration that removed it.
        config_index: Index,
    },
    /// Asynchronous storage mode: the step's mutations went to the log as
    /// the write `token`, which is not durable yet. Report it with
    /// [`Event::Persisted`] once the log says it is (how a log says so is
    /// its own: `WalLog` calls the notifier it was given).
    WriteSubmitted {
        /// The write's token.
        token: WriteToken,
    },
    /// A leadership transfer ended without this node seeing the target win.
    TransferEnded {
        /// The transfer target.
        to: NodeId,
        /// How it ended.
        outcome: TransferOutcome,
    },
}

/// The actions of one [`RaftNode::step`](super::RaftNode::step), drained from a buffer the node
/// reuses, so stepping does not allocate a fresh vector per call.
#[derive(Debug)]
pub struct Actions<'a> {
    pub(super) inner: std::vec::Drain<'a, Action>,
}

impl Actions<'_> {
    /// The actions not yet taken.
    pub fn as_slice(&self) -> &[Action] {
        self.inner.as_slice()
    }
}

impl Iterator for Actions<'_> {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Actions<'_> {}

/// Appends the action `make` builds to `out`, built in the vector's own
/// memory once there is room for it. `out.push(action)` builds the action
/// on the stack, a field at a time, and then copies it in wider moves;
/// such a copy, right after the writes, cannot take its bytes from them
/// and waits for them to reach the cache (a store-forwarding stall). On the
/// steps every entry takes, that wait was a third of the step's time (an
/// applied range, and a proposal's place when that was an action) and over
/// a third of sending an append or answering one (`RaftNode::send_built`).
/// With the room checked first, the push below cannot grow the vector, and
/// the action goes straight to its place, field by field (as rustc 1.95
/// compiles it; docs/BENCHMARKS.md, "Less work per step").
#[inline(always)]
pub(super) fn emit(out: &mut Vec<Action>, make: impl FnOnce() -> Action) {
    if out.len() < out.capacity() {
        out.push(make());
    } else {
        with_room(out).push(make());
    }
}

/// `out`, with room for one more action (the rare step that outgrows it).
#[cold]
#[inline(never)]
fn with_room(out: &mut Vec<Action>) -> &mut Vec<Action> {
    out.reserve(1);
    out
}
