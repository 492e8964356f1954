//! **State Machine Safety** (Raft §5.4.3): if a server has applied a log
//! entry at a given index to its state machine, no other server will ever
//! apply a different log entry for the same index.
//!
//! Checked twice: on every applied command (index, term and content), and on
//! application state — a node's state machine digest at an applied index
//! (including right after restoring a snapshot) must equal every other
//! node's digest at that index.

use std::collections::HashMap;

use bytes::Bytes;

use super::{NodeView, Violation};
use crate::sim::state_machine::fnv1a;
use crate::types::{Index, NodeId, Term};

/// The first entry applied at each index, and the digest of the state at
/// each applied index seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct StateMachineSafety {
    applied: HashMap<Index, (Term, u64, NodeId)>,
    digests: HashMap<Index, (u64, NodeId)>,
}

impl StateMachineSafety {
    pub(crate) fn check_apply(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        command: &Bytes,
    ) -> Result<(), Violation> {
        let hash = fnv1a(0, command);
        let &mut (t, h, first) = self.applied.entry(index).or_insert((term, hash, node));
        if (t, h) != (term, hash) {
            return Err(Violation::new(
                "State Machine Safety",
                format!("node {node} applied term {term} at index {index}, node {first} applied term {t} there"),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_state(&mut self, view: NodeView) -> Result<(), Violation> {
        if view.applied == 0 {
            return Ok(());
        }
        self.check_digest(view.id, view.applied, view.digest)
    }

    pub(crate) fn check_restore(&mut self, node: NodeId, index: Index, digest: u64) -> Result<(), Violation> {
        self.check_digest(node, index, digest)
    }

    fn check_digest(&mut self, node: NodeId, index: Index, digest: u64) -> Result<(), Violation> {
        let &mut (d, first) = self.digests.entry(index).or_insert((digest, node));
        if d != digest {
            return Err(Violation::new(
                "State Machine Safety",
                format!(
                    "state machines of nodes {first} and {node} differ after applying through index {index} \
                     (digests {d:#018x} and {digest:#018x})"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_entries_or_states_at_one_index_are_caught() {
        let mut c = StateMachineSafety::default();
        c.check_apply(1, 5, 2, &Bytes::from_static(b"a")).unwrap();
        c.check_apply(2, 5, 2, &Bytes::from_static(b"a")).unwrap();
        assert!(c.check_apply(3, 5, 2, &Bytes::from_static(b"b")).is_err());
        assert!(c.check_apply(3, 5, 3, &Bytes::from_static(b"a")).is_err());
        c.check_restore(1, 9, 77).unwrap();
        assert!(c.check_restore(2, 9, 78).is_err());
    }
}
