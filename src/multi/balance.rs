//! Leadership balancing: spread group leaders evenly over the nodes by
//! leadership transfer.

use std::collections::BTreeMap;

use super::host::MultiNode;
use super::{GroupId, MultiError};
use crate::log::RaftLog;
use crate::node::Event;
use crate::types::NodeId;

/// Plans transfers that even out how many groups each node leads.
///
/// `groups` gives, per group, its current leader and its voters (the
/// candidates for leadership). Repeatedly, the move of one group's
/// leadership between two of its voters whose loads differ most (by at
/// least 2) is taken, until no such move is left: then no node leads more
/// than one group above any node it could hand a group to. Deterministic:
/// ties go to the smallest group and node ids. Returns `(group, from, to)`.
///
/// ```
/// use std::collections::BTreeMap;
/// use raft_io::multi::plan_transfers;
///
/// // Node 1 leads all four groups of three voters.
/// let groups: BTreeMap<u64, (u64, Vec<u64>)> = (1..=4).map(|g| (g, (1, vec![1, 2, 3]))).collect();
/// let moves = plan_transfers(&groups);
/// assert_eq!(moves.len(), 2); // 2 / 1 / 1
/// ```
pub fn plan_transfers(groups: &BTreeMap<GroupId, (NodeId, Vec<NodeId>)>) -> Vec<(GroupId, NodeId, NodeId)> {
    let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (leader, voters) in groups.values() {
        for &v in voters {
            load.entry(v).or_insert(0);
        }
        *load.entry(*leader).or_insert(0) += 1;
    }
    let mut leaders: BTreeMap<GroupId, NodeId> = groups.iter().map(|(&g, (l, _))| (g, *l)).collect();
    let mut moves = Vec::new();
    // Each move lowers the sum of squared loads, so this ends.
    loop {
        let mut best: Option<(usize, GroupId, NodeId, NodeId)> = None;
        for (&group, (_, voters)) in groups {
            let from = leaders[&group];
            for &to in voters.iter().filter(|&&to| to != from) {
                let (lf, lt) = (load[&from], load[&to]);
                if lf <= lt + 1 {
                    continue;
                }
                let gain = lf - lt;
                if best.is_none_or(|(g, ..)| gain > g) {
                    best = Some((gain, group, from, to));
                }
            }
        }
        let Some((_, group, from, to)) = best else { return moves };
        if let Some(l) = load.get_mut(&from) {
            *l -= 1;
        }
        if let Some(l) = load.get_mut(&to) {
            *l += 1;
        }
        leaders.insert(group, to);
        moves.push((group, from, to));
    }
}

impl<L: RaftLog> MultiNode<L> {
    /// Which node leads each group hosted here, as this node knows it.
    pub fn leaders(&self) -> BTreeMap<GroupId, NodeId> {
        self.groups.iter().filter_map(|(&g, n)| Some((g, n.node.leader()?))).collect()
    }

    /// Starts at most `max` leadership transfers, from this node, that
    /// [`plan_transfers`] proposes given the leaders this node knows of.
    /// Returns the transfers started.
    pub fn rebalance(&mut self, max: usize) -> Result<Vec<(GroupId, NodeId)>, MultiError> {
        let view: BTreeMap<GroupId, (NodeId, Vec<NodeId>)> = self
            .groups
            .iter()
            .filter_map(|(&g, n)| Some((g, (n.node.leader()?, n.node.membership().voters().to_vec()))))
            .collect();
        let me = self.cfg.node;
        let mut started = Vec::new();
        for (group, from, to) in plan_transfers(&view) {
            if started.len() >= max {
                break;
            }
            if from != me {
                continue;
            }
            match self.step(group, Event::TransferLeadership(to)) {
                Ok(()) => started.push((group, to)),
                Err(MultiError::Node { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(started)
    }
}
