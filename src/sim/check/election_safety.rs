//! **Election Safety** (Raft §5.2): at most one leader can be elected in a
//! given term.

use std::collections::BTreeMap;

use super::{NodeView, Violation};
use crate::types::{NodeId, Role, Term};

/// The leader seen in each term.
#[derive(Clone, Debug, Default)]
pub(crate) struct ElectionSafety {
    leaders: BTreeMap<Term, NodeId>,
}

impl ElectionSafety {
    pub(crate) fn check(&mut self, view: NodeView) -> Result<(), Violation> {
        if view.role != Role::Leader {
            return Ok(());
        }
        let leader = *self.leaders.entry(view.term).or_insert(view.id);
        if leader != view.id {
            return Err(Violation::new(
                "Election Safety",
                format!("nodes {leader} and {} both lead term {}", view.id, view.term),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(id: NodeId, term: Term) -> NodeView {
        NodeView { id, role: Role::Leader, term, commit: 0, applied: 0, digest: 0 }
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = ElectionSafety::default();
        c.check(leader(1, 1)).unwrap();
        c.check(leader(1, 1)).unwrap();
        c.check(leader(2, 2)).unwrap();
        assert_eq!(c.check(leader(3, 2)).unwrap_err().property, "Election Safety");
    }
}
