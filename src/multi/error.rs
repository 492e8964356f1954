//! Why the multi-group host refused a request.

use super::GroupId;
use crate::error::Error;

/// A refusal of [`MultiNode`](super::MultiNode). Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultiError {
    /// Group ids start at 1.
    #[error("group id 0 is invalid")]
    InvalidGroup,
    /// No such group on this node (never created, or removed).
    #[error("no group {0} on this node")]
    UnknownGroup(GroupId),
    /// The group exists already.
    #[error("group {0} exists already")]
    GroupExists(GroupId),
    /// A group of this id was removed and its actions are still queued
    /// (not yet [drained](super::MultiNode::drain_actions)): created again
    /// now, the new group's actions could not be told from the old one's.
    #[error("group {0} was removed and its actions are not drained yet: drain them before creating it again")]
    Undrained(GroupId),
    /// The group's configuration is for another node.
    #[error("group {group}'s configuration is for node {config_node}, not this node {node}")]
    WrongNode {
        /// The group.
        group: GroupId,
        /// The node the configuration names.
        config_node: crate::types::NodeId,
        /// This host's node.
        node: crate::types::NodeId,
    },
    /// The group's node refused the event (see [`Error`]).
    #[error("group {group}: {source}")]
    Node {
        /// The group.
        group: GroupId,
        /// The node's error.
        #[source]
        source: Error,
    },
}

impl MultiError {
    /// The node's error, when the group's node refused.
    pub fn node_error(&self) -> Option<&Error> {
        match self {
            MultiError::Node { source, .. } => Some(source),
            _ => None,
        }
    }
}
