//! **Leader Completeness, inductive form** (the invariant the Raft paper's
//! proof of §5.4.3 rests on): every node that could win an election now
//! already holds every committed entry. A node could win when its log is
//! at least as up to date as the log of every member of some quorum of its
//! configuration: those members would all grant it their votes. A leader
//! that commits an entry of an earlier term by counting replicas (the
//! Figure 8 bug) breaks this at once, before any node overwrites the entry.
//!
//! Needs a view of the whole cluster, so model-script replays
//! (`sim::model::replay`) run it after every step; the random simulator
//! does not.

use super::Violation;
use crate::log::RaftLog;
use crate::node::RaftNode;
use crate::types::{Index, Term};

/// The committed log as far as any node reported it (terms by index).
#[derive(Clone, Debug, Default)]
pub(crate) struct Electable {
    committed: Vec<Term>,
}

fn up_to_date<L: RaftLog>(node: &RaftNode<L>) -> (Term, Index) {
    let last = node.last_index();
    (node.log().term(last).unwrap_or(0), last)
}

impl Electable {
    /// Learns the committed entries `node` holds through its commit index.
    pub(crate) fn learn<L: RaftLog>(&mut self, node: &RaftNode<L>) {
        let log = node.log();
        let mut next = self.committed.len() as Index + 1;
        while next <= node.commit_index() {
            match log.term(next) {
                Some(t) if next >= log.first_index() => self.committed.push(t),
                _ => break,
            }
            next += 1;
        }
    }

    pub(crate) fn check<L: RaftLog>(&self, nodes: &[&RaftNode<L>]) -> Result<(), Violation> {
        for node in nodes {
            let config = node.membership();
            if !config.is_voter(node.id()) {
                continue;
            }
            let mine = up_to_date(node);
            let electable =
                config.has_quorum(|v| nodes.iter().any(|other| other.id() == v && mine >= up_to_date(other)));
            if !electable {
                continue;
            }
            let log = node.log();
            for (at, &term) in self.committed.iter().enumerate() {
                let index = at as Index + 1;
                if index >= log.first_index() && log.term(index) != Some(term) {
                    return Err(Violation::new(
                        "Leader Completeness",
                        format!(
                            "node {} could be elected (its log is as up to date as a quorum's) without the entry of \
                             term {term} committed at index {index}",
                            node.id()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
