//! What hosts send each other: group messages, quiescence notices and
//! liveness pings, each addressed node to node.

use super::GroupId;
use crate::message::Message;
use crate::types::{Index, NodeId, Term};

/// A message between two hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The receiving node.
    pub to: NodeId,
    /// What it carries.
    pub body: EnvelopeBody,
}

/// The kinds of [`Envelope`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeBody {
    /// A Raft message of one group.
    Raft {
        /// The group.
        group: GroupId,
        /// The message (its `from` and `to` are the envelope's).
        message: Message,
    },
    /// The leader of `group` in `term` stops ticking the group: it is idle,
    /// everything through `commit` is committed and every member holds it.
    /// A follower in the same state stops ticking it too.
    Quiesce {
        /// The group.
        group: GroupId,
        /// The leader's term.
        term: Term,
        /// The commit index (also the last index).
        commit: Index,
    },
    /// Liveness, once per heartbeat interval per pair of nodes, whatever the
    /// number of groups.
    Ping,
}
