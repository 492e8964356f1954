//! The simulated network: seeded loss, duplication and delay (and so
//! reordering), and partitions, including one-way ones.

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::Rng;
use crate::types::NodeId;

/// Fault rates of the simulated network. Delays are in simulated time units
/// ([`TICK`](super::TICK) units make one tick of a node with rate 1.0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetworkFaults {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a delivered message is delivered twice.
    pub duplicate: f64,
    /// Smallest delivery delay.
    pub min_delay: u64,
    /// Largest delivery delay; a wide range reorders messages.
    pub max_delay: u64,
    /// Probability that a message is held back far longer than
    /// `max_delay` (up to `max_hold`): a message stuck in a queue, arriving
    /// after timeouts, leases and elections have moved on.
    pub hold: f64,
    /// Longest hold.
    pub max_hold: u64,
}

impl NetworkFaults {
    /// A reliable, in-order network with a small constant delay.
    pub const fn reliable() -> Self {
        Self { loss: 0.0, duplicate: 0.0, min_delay: 100, max_delay: 100, hold: 0.0, max_hold: 0 }
    }

    /// A lossy network: 5% loss, 2% duplication, delays from a tenth of a
    /// tick to two ticks (so messages overtake each other), and one message
    /// in 200 held for up to 30 ticks.
    pub const fn lossy() -> Self {
        Self { loss: 0.05, duplicate: 0.02, min_delay: 100, max_delay: 2_000, hold: 0.005, max_hold: 30_000 }
    }
}

impl Default for NetworkFaults {
    fn default() -> Self {
        Self::reliable()
    }
}

/// Decides the fate of each message.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    rng: Rng,
    pub(crate) faults: NetworkFaults,
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Extra delay on a link (one way), added to every message's.
    slow: BTreeMap<(NodeId, NodeId), u64>,
    /// The groups of the partition in force, if any: a node added while it
    /// holds is cut off like any node no group lists.
    groups: Option<Vec<Vec<NodeId>>>,
}

impl Network {
    pub(crate) fn new(seed: u64, faults: NetworkFaults) -> Self {
        Self { rng: Rng::new(seed), faults, blocked: BTreeSet::new(), slow: BTreeMap::new(), groups: None }
    }

    /// Whether messages from `from` reach `to` now.
    pub(crate) fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.is_empty() || !self.blocked.contains(&(from, to))
    }

    /// The delays after which copies of a message sent now arrive: none
    /// (lost or partitioned), one, or two (duplicated).
    pub(crate) fn route(&mut self, from: NodeId, to: NodeId) -> [Option<u64>; 2] {
        if !self.connected(from, to) {
            return [None, None];
        }
        let f = self.faults;
        if f.loss > 0.0 && self.rng.chance(f.loss) {
            return [None, None];
        }
        let extra = self.slow.get(&(from, to)).copied().unwrap_or(0);
        let first = Some(self.delay() + extra);
        let second = if f.duplicate > 0.0 && self.rng.chance(f.duplicate) { Some(self.delay() + extra) } else { None };
        [first, second]
    }

    fn delay(&mut self) -> u64 {
        let f = self.faults;
        if f.hold > 0.0 && f.max_hold > f.max_delay && self.rng.chance(f.hold) {
            return self.rng.range(f.max_delay, f.max_hold + 1);
        }
        if f.max_delay <= f.min_delay { f.min_delay } else { self.rng.range(f.min_delay, f.max_delay + 1) }
    }

    /// Blocks messages from `from` to `to` (one way).
    pub(crate) fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Delays every message from `from` to `to` by `extra` more (one way),
    /// until [`heal`](Self::heal).
    pub(crate) fn slow(&mut self, from: NodeId, to: NodeId, extra: u64) {
        self.slow.insert((from, to), extra);
    }

    /// Splits `nodes` into `groups`: messages cross no group boundary, and
    /// a node no group lists is cut off from every other.
    pub(crate) fn partition(&mut self, nodes: &[NodeId], groups: &[&[NodeId]]) {
        self.blocked.clear();
        self.groups = Some(groups.iter().map(|g| g.to_vec()).collect());
        for &a in nodes {
            for &b in nodes {
                if a != b && !self.same_group(a, b) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Whether the partition in force (if any) puts `a` and `b` in one
    /// group; a node no group lists shares none.
    fn same_group(&self, a: NodeId, b: NodeId) -> bool {
        let Some(groups) = &self.groups else { return true };
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        group_of(a).is_some_and(|g| group_of(b) == Some(g))
    }

    /// Node `id` joined the cluster of `nodes`: under a partition it
    /// reaches only the members of its group (none, unless a group lists
    /// it).
    pub(crate) fn joined(&mut self, id: NodeId, nodes: &[NodeId]) {
        for &b in nodes {
            if b != id && !self.same_group(id, b) {
                self.blocked.insert((id, b));
                self.blocked.insert((b, id));
            }
        }
    }

    /// Removes every partition, block and slow link.
    pub(crate) fn heal(&mut self) {
        self.blocked.clear();
        self.slow.clear();
        self.groups = None;
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_both_ways_and_blocks_one_way() {
        let mut n = Network::new(1, NetworkFaults::reliable());
        n.partition(&[1, 2, 3], &[&[1], &[2, 3]]);
        assert!(!n.connected(1, 2) && !n.connected(2, 1));
        assert!(n.connected(2, 3));
        n.heal();
        n.block(1, 2);
        assert!(!n.connected(1, 2) && n.connected(2, 1));
    }

    #[test]
    fn loss_and_duplication_follow_the_rates() {
        let faults = NetworkFaults { loss: 0.5, duplicate: 0.5, min_delay: 1, max_delay: 9, hold: 0.0, max_hold: 0 };
        let mut n = Network::new(7, faults);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match n.route(1, 2) {
                [None, _] => lost += 1,
                [Some(d), second] => {
                    assert!((1..=9).contains(&d));
                    dup += usize::from(second.is_some());
                }
            }
        }
        assert!((4_500..5_500).contains(&lost), "{lost}");
        assert!((2_000..3_000).contains(&dup), "{dup}");
    }
}
