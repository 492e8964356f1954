//! **Leader Completeness** (Raft §5.4): if a log entry is committed in a
//! given term, that entry will be present in the logs of the leaders for all
//! higher-numbered terms.
//!
//! The checker keeps the prefix hash of the longest committed prefix any
//! node reported, and for each index the term in which it was first seen
//! committed (by the leader that committed it: followers learn a commit
//! index only from a leader, and every step is checked). Whenever a node
//! becomes leader of a new term `T`, its log must extend the prefix
//! committed in terms below `T` — not entries committed in `T` or later: a
//! node can still win an older term through votes delayed past a newer
//! term's commits, and that breaks nothing. Every node's log must also agree
//! with the committed prefix up to the node's own commit index (committed
//! entries never change).

use std::collections::BTreeSet;

use super::chain::Chain;
use super::{NodeView, Violation};
use crate::types::{Index, NodeId, Role, Term};

/// The committed prefix, and the leaders already checked.
#[derive(Clone, Debug)]
pub(crate) struct LeaderCompleteness {
    /// `committed[i]`: prefix hash of the committed log through index `i`.
    committed: Vec<u64>,
    /// `terms[i]`: the term in which index `i` was first seen committed
    /// (non-decreasing in `i`).
    terms: Vec<Term>,
    checked: BTreeSet<(NodeId, Term)>,
}

impl Default for LeaderCompleteness {
    fn default() -> Self {
        Self { committed: vec![0], terms: vec![0], checked: BTreeSet::new() }
    }
}

impl LeaderCompleteness {
    fn committed_index(&self) -> Index {
        self.committed.len() as Index - 1
    }

    /// The longest committed prefix any node reported: its last index and
    /// its prefix hash.
    pub(crate) fn committed_prefix(&self) -> (Index, u64) {
        (self.committed_index(), self.committed[self.committed.len() - 1])
    }

    pub(crate) fn check(&mut self, view: NodeView, chain: &Chain) -> Result<(), Violation> {
        // Committed entries never change: the node agrees with the known
        // committed prefix as far as both reach.
        let shared = view.commit.min(self.committed_index());
        // (`hash_at` knows nothing below the chain's snapshot base.)
        if chain.hash_at(shared).is_some_and(|h| h != self.committed[shared as usize]) {
            return Err(Violation::new(
                "State Machine Safety",
                format!("node {} committed through {} a prefix that differs from the committed log", view.id, shared),
            ));
        }
        // Learn the longer committed prefix from this node.
        let mut next = self.committed_index() + 1;
        while next <= view.commit {
            match chain.hash_at(next) {
                Some(h) => {
                    self.committed.push(h);
                    let last = self.terms.last().copied().unwrap_or(0);
                    self.terms.push(view.term.max(last));
                }
                None => break,
            }
            next += 1;
        }
        if view.role == Role::Leader && self.checked.insert((view.id, view.term)) {
            // The prefix committed in terms before this one.
            let c = (self.terms.partition_point(|&t| t < view.term) as Index).saturating_sub(1);
            let holds = c < chain.base_index() || chain.hash_at(c) == Some(self.committed[c as usize]);
            if !holds {
                return Err(Violation::new(
                    "Leader Completeness",
                    format!(
                        "node {} leads term {} without the committed prefix through index {c} (its log ends at {})",
                        view.id,
                        view.term,
                        chain.last()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sim::check::log_matching::LogMatching;
    use crate::sim::log::LogChange;

    /// A chain built by hand: entries `(index, term, digest)` from index 1.
    pub(in crate::sim::check) fn chain(entries: &[(Index, Term, u64)], matching: &mut LogMatching) -> Chain {
        let mut chain = Chain::default();
        chain.apply(LogChange::Appended { count: entries.len() }, &mut entries.iter(), matching).unwrap();
        chain
    }

    pub(in crate::sim::check) fn view(id: NodeId, role: Role, term: Term, commit: Index) -> NodeView {
        NodeView { id, role, term, commit, applied: commit, digest: 0 }
    }

    /// The checker learns the committed prefix through the reporting
    /// node's commit index, its last entry included: a leader of a later
    /// term, or a follower that committed that far, whose log differs only
    /// at that entry is caught.
    #[test]
    fn a_log_that_differs_only_at_the_newest_committed_entry_is_caught() {
        let mut matching = LogMatching::default();
        let committed = chain(&[(1, 1, 11), (2, 1, 12)], &mut matching);
        let other = chain(&[(1, 1, 11), (2, 2, 22)], &mut matching);
        let mut c = LeaderCompleteness::default();
        c.check(view(1, Role::Leader, 1, 2), &committed).unwrap();

        // Node 2 leads term 3 without entry 2 (committed in term 1).
        let v = c.clone().check(view(2, Role::Leader, 3, 0), &other).unwrap_err();
        assert_eq!(v.property, "Leader Completeness", "{v}");
        // Node 2, a follower, reports entry 2 committed with another prefix.
        let v = c.clone().check(view(2, Role::Follower, 3, 2), &other).unwrap_err();
        assert_eq!(v.property, "State Machine Safety", "{v}");
        // A leader of term 3 that holds entry 2 passes.
        c.check(view(3, Role::Leader, 3, 2), &committed).unwrap();
    }
}
