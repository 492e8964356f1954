//! **Apply Order** (Raft §5.3, §8): a server applies committed entries to
//! its state machine in log order, each once. While a node runs, its
//! applied index never moves back: it hands each command to the state
//! machine at a higher index than the one before, and a snapshot it restores
//! lies at or past what it already applied (a restore further back would
//! rewind the state machine and apply entries a second time). A restart
//! starts over: the state machine is volatile.

use std::collections::BTreeMap;

use super::{NodeView, Violation};
use crate::types::{Index, NodeId};

/// Per running node: the applied index after its last step, and the index of
/// the last command it applied.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApplyOrder {
    nodes: BTreeMap<NodeId, Position>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Position {
    applied: Index,
    last_command: Index,
}

impl ApplyOrder {
    /// Node `id` (re)started: its state machine starts over.
    pub(crate) fn restart(&mut self, id: NodeId) {
        self.nodes.remove(&id);
    }

    /// A command applied at `index`.
    pub(crate) fn check_apply(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        let p = self.nodes.entry(node).or_default();
        if index <= p.last_command {
            return Err(Violation::new(
                "Apply Order",
                format!("node {node} applied index {index} after index {}", p.last_command),
            ));
        }
        p.last_command = index;
        Ok(())
    }

    /// A snapshot restored at `index`.
    pub(crate) fn check_restore(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        let p = self.nodes.entry(node).or_default();
        let applied = p.applied.max(p.last_command);
        if index < applied {
            return Err(Violation::new(
                "Apply Order",
                format!("node {node} restored a snapshot at index {index} after applying through {applied}"),
            ));
        }
        p.last_command = index;
        Ok(())
    }

    /// The node's applied index after a step.
    pub(crate) fn check_state(&mut self, view: NodeView) -> Result<(), Violation> {
        let p = self.nodes.entry(view.id).or_default();
        if view.applied < p.applied {
            return Err(Violation::new(
                "Apply Order",
                format!("node {}'s applied index moved back from {} to {}", view.id, p.applied, view.applied),
            ));
        }
        p.applied = view.applied;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Role;

    fn view(id: NodeId, applied: Index) -> NodeView {
        NodeView { id, role: Role::Follower, term: 1, commit: applied, applied, digest: 0 }
    }

    #[test]
    fn applying_or_restoring_backwards_is_caught_and_a_restart_starts_over() {
        let mut c = ApplyOrder::default();
        c.check_apply(1, 3).unwrap();
        c.check_apply(1, 5).unwrap();
        c.check_state(view(1, 6)).unwrap();
        assert_eq!(c.check_apply(1, 5).unwrap_err().property, "Apply Order");
        c.check_restore(1, 6).unwrap();
        assert!(c.check_restore(1, 4).is_err());
        assert!(c.check_state(view(1, 5)).is_err());
        c.restart(1);
        c.check_restore(1, 4).unwrap();
        c.check_apply(1, 5).unwrap();
        c.check_state(view(1, 5)).unwrap();
    }
}
