//! **Leader Completeness, inductive form** (the invariant the Raft paper's
//! proof of §5.4.3 rests on): every node that could win an election now
//! already holds every committed entry. A node could win when it is a voter
//! of its configuration and its log is at least as up to date as the log
//! of every member of some quorum of that configuration: those members
//! would all grant it their votes. A leader that commits an entry of an
//! earlier term by counting replicas (the Figure 8 bug) breaks this at
//! once, before any node overwrites the entry.
//!
//! Needs a view of the whole cluster: the random simulators run it after
//! every step over the running nodes, as do model-script replays
//! (`sim::model::replay`). It costs no more than the nodes' last entries:
//! whether a node holds the committed prefix is one comparison of prefix
//! hashes (`Chain`) with the one Leader Completeness keeps.

use std::collections::BTreeMap;

use super::Violation;
use super::chain::Chain;
use super::leader_completeness::LeaderCompleteness;
use crate::log::RaftLog;
use crate::node::RaftNode;
use crate::types::{Index, NodeId, Term};

fn up_to_date<L: RaftLog>(node: &RaftNode<L>) -> (Term, Index) {
    let last = node.last_index();
    (node.log().term(last).unwrap_or(0), last)
}

/// Checks that every node of `nodes` that could be elected now holds the
/// committed prefix `completeness` knows, as its chain in `chains` says.
/// A node the checkers do not follow yet (no chain) is judged as a voter
/// only.
pub(crate) fn check<L: RaftLog>(
    nodes: &[&RaftNode<L>],
    chains: &BTreeMap<NodeId, Chain>,
    completeness: &LeaderCompleteness,
) -> Result<(), Violation> {
    let (committed, hash) = completeness.committed_prefix();
    if committed == 0 {
        return Ok(());
    }
    for node in nodes {
        let config = node.membership();
        if !config.is_voter(node.id()) {
            continue;
        }
        let Some(chain) = chains.get(&node.id()) else { continue };
        // Below the chain's snapshot base, the snapshot holds the prefix.
        if committed < chain.base_index() || chain.hash_at(committed) == Some(hash) {
            continue;
        }
        let mine = up_to_date(node);
        let electable = config.has_quorum(|v| nodes.iter().any(|other| other.id() == v && mine >= up_to_date(other)));
        if electable {
            return Err(Violation::new(
                "Leader Completeness",
                format!(
                    "node {} could be elected (its log, ending at index {} of term {}, is as up to date as a \
                     quorum's) without the committed prefix through index {committed}",
                    node.id(),
                    mine.1,
                    mine.0
                ),
            ));
        }
    }
    Ok(())
}
