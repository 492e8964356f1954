//! The warm-up of `Params::warm_start`: a fixed, fault-free prefix from
//! the fresh cluster to a settled leader, from which the exploration starts.

use raft_io::NodeId;
use raft_io::sim::model::ModelStep;

use super::RaftModel;
use super::state::{Budget, State};
use super::step;

impl RaftModel {
    /// The warm-up of `Params::warm_start`: from the fresh cluster, every
    /// node ticks once per round, in id order, each tick followed by the
    /// delivery of every message in flight (those sent meanwhile too), in
    /// the network's order, until one leader is followed by every node,
    /// all of them know its log committed and nothing is in flight. The
    /// budgets are set afterwards, untouched by it. `None` if it does not
    /// settle within 20 rounds (or a property breaks on the way).
    pub(super) fn warm_up(&self, fresh: State) -> Option<(State, Vec<ModelStep>)> {
        let budget = fresh.budget;
        let mut s = fresh;
        s.budget = Budget { ticks: u8::MAX, ..Budget::default() };
        let mut prefix = Vec::new();
        let ids: Vec<NodeId> = s.nodes.iter().map(|n| n.id()).collect();
        for _round in 0..20 {
            for &id in &ids {
                s = self.transition(&s, ModelStep::Tick(id))?;
                prefix.push(ModelStep::Tick(id));
                self.deliver_all(&mut s, &mut prefix)?;
            }
            let leader = s.nodes.iter().find(|n| n.raft.is_leader());
            let settled = leader.is_some_and(|l| {
                let (lid, last) = (l.id(), l.raft.last_index());
                s.net.is_empty()
                    && s.nodes.iter().all(|n| {
                        (n.id() == lid || n.raft.leader() == Some(lid))
                            && n.raft.commit_index() == last
                            && n.raft.last_applied() == last
                    })
            });
            if settled && s.broken.is_none() {
                // A last heartbeat round of the leader, delivered and
                // answered: every follower has just heard from it (its
                // election timer and leader contact restart), so no timer
                // fires within fewer ticks than the shortest timeout.
                let leader = s.nodes.iter().find(|n| n.raft.is_leader())?.id();
                s = self.transition(&s, ModelStep::Tick(leader))?;
                prefix.push(ModelStep::Tick(leader));
                self.deliver_all(&mut s, &mut prefix)?;
                s.budget = budget;
                return Some((s, prefix));
            }
        }
        None
    }

    /// Delivers every message in flight, those sent meanwhile too, in the
    /// network's order (the warm-up's); `None` if a property breaks or it
    /// does not end.
    fn deliver_all(&self, s: &mut State, prefix: &mut Vec<ModelStep>) -> Option<()> {
        for _ in 0..1_000 {
            if s.broken.is_some() {
                return None;
            }
            let Some(m) = s.net.first() else { return Some(()) };
            let step = ModelStep::Deliver(step::reference(m));
            *s = self.transition(s, step.clone())?;
            prefix.push(step);
        }
        None
    }
}
