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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RaftConfig;
    use crate::log::MemoryLog;
    use crate::membership::Membership;
    use crate::sim::check::leader_completeness::tests::{chain, view};
    use crate::sim::check::log_matching::LogMatching;
    use crate::types::{Entry, HardState, LogIdentity, Role, SnapshotMeta};
    use bytes::Bytes;

    /// Node `id` of voters 1, 2 and 3 whose log holds entries of `terms`
    /// from index 1.
    fn node(id: NodeId, terms: &[Term]) -> RaftNode<MemoryLog> {
        let mut log = MemoryLog::new();
        log.set_identity(LogIdentity { cluster_id: 0, node_id: id }).unwrap();
        let meta = SnapshotMeta { index: 0, term: 0, membership: Membership::new([1, 2, 3], []).unwrap() };
        log.install_snapshot(meta, Bytes::new()).unwrap();
        let mut entries: Vec<Entry> =
            terms.iter().zip(1..).map(|(&term, index)| Entry::normal(term, index, Bytes::from_static(b"c"))).collect();
        log.append(&mut entries).unwrap();
        let term = terms.last().copied().unwrap_or(0);
        log.set_hard_state(HardState { term, vote: None, commit: 0 }).unwrap();
        log.sync().unwrap();
        RaftNode::with_log(RaftConfig::new(id, [1, 2, 3]), log).unwrap()
    }

    /// A node whose log only ties another's gets that vote and its own:
    /// with them it makes a quorum of three, so lacking the committed
    /// entry it breaks Leader Completeness.
    #[test]
    fn a_candidate_counts_its_own_vote_and_a_tie_toward_its_quorum() {
        let mut matching = LogMatching::default();
        let full = chain(&[(1, 1, 11), (2, 1, 12), (3, 2, 13)], &mut matching);
        let short = chain(&[(1, 1, 11), (2, 1, 12)], &mut matching);
        let mut completeness = LeaderCompleteness::default();
        // Node 3 reports index 3 committed.
        completeness.check(view(3, Role::Leader, 2, 3), &full).unwrap();
        let chains = BTreeMap::from([(1, short.clone()), (2, short.clone()), (3, full.clone())]);

        // Nodes 1 and 2 end at index 2 of term 1, without index 3: node 1
        // would get its own vote and node 2's.
        let (n1, n2, n3) = (node(1, &[1, 1]), node(2, &[1, 1]), node(3, &[1, 1, 2]));
        let v = check(&[&n1, &n2, &n3], &chains, &completeness).unwrap_err();
        assert_eq!(v.property, "Leader Completeness", "{v}");
        assert!(v.detail.starts_with("node 1 could be elected"), "{v}");

        // With node 2 holding index 3 too, node 1 gets its own vote only.
        let n2 = node(2, &[1, 1, 2]);
        let chains = BTreeMap::from([(1, short), (2, full.clone()), (3, full)]);
        check(&[&n1, &n2, &n3], &chains, &completeness).unwrap();
    }
}
