//! [`FaultProfile::Fragile`](crate::sim::FaultProfile::Fragile) with many
//! groups per node: scenes aimed at the protocol's fragile moments, each
//! played in every group that one node leads at once (a node's crash or
//! partition hits all of them together).
//!
//! | Scene | What happens | Aimed at |
//! |---|---|---|
//! | early reconfiguration | (groups of four voters; a group of another size first gets a voter removed or added, for a later scene) node A, cut off, appends to each group it leads the removal of a voter D and crashes; in each group, the next leader W, the moment it is elected, is cut off from A and from another voter Z and asked to remove Z | a configuration change before a new leader's first commit |
//! | voter restart | the node of some group's leader crashes; the moment a node stands for election in that group another is made to, the two cut off from each other; every node that grants one of them a vote crashes at once (every group on it) and restarts, and hears no more from that candidate | a vote forgotten across a restart |
//! | minority crash | the leader's node, cut off with one follower, takes writes in every group it leads, then crashes | entries on a minority, elections while they are partly replicated |
//! | stale lease | the node of some group's leader is cut off from every other node, its clock running 4–10 % slow and theirs as much fast (within the lease's drift allowance, which covers up to 1/9 each way with election timeout 10 and drift 2); for 30 ticks each group it led takes a write at its leader (the node itself until a newer leader is elected) and a read at the node, every tick | a lease that outlives the followers' promise not to elect another leader serves a stale read (groups with lease reads) |
//! | power cut at a commit | writes to many groups, then every node crashes the moment one of those writes commits at its leader (or, in the asynchronous mode, half of the other times right after the next flush); in the asynchronous mode, a third of the time the writes go to every group one node leads, that node first cut off from a minority of the nodes and given a disk slower than theirs, then left with that minority for 30 ticks after the cut | a shared WAL's tail: what one flush made durable survives, the rest is lost in every group at once; an acknowledgement or a commit that ran ahead of the disk shows |

use super::MultiCluster;
use crate::log::RaftLog;
use crate::membership::MembershipChange;
use crate::multi::GroupId;
use crate::node::Event;
use crate::sim::{Violation, ticks_after};
use crate::types::{NodeId, Role, Term};

impl MultiCluster {
    /// One scene, picked at random.
    pub(super) fn fragile_scene(&mut self) -> Result<(), Violation> {
        match self.rng.range(0, 5) {
            0 => self.early_reconfig(),
            1 => self.minority_crash(),
            2 => self.voter_restart(),
            3 => self.stale_lease(),
            _ => self.power_cut_at_commit(),
        }
    }

    /// The groups node `id` leads (as it sees them), and their voters.
    fn led_by(&self, id: NodeId) -> Vec<(GroupId, Vec<NodeId>)> {
        let Some(h) = self.host(id) else { return Vec::new() };
        h.group_ids()
            .filter_map(|g| h.group(g).filter(|n| n.is_leader()).map(|n| (g, n.membership().voters().to_vec())))
            .collect()
    }

    /// A voter of `voters` not in `not`, at random.
    fn other(&mut self, voters: &[NodeId], not: &[NodeId]) -> Option<NodeId> {
        let left: Vec<NodeId> = voters.iter().copied().filter(|v| !not.contains(v)).collect();
        (!left.is_empty()).then(|| left[self.rng.range(0, left.len() as u64) as usize])
    }

    /// The node of some group's leader.
    fn some_leader(&mut self) -> Option<NodeId> {
        let g = 1 + self.rng.range(0, self.cfg.groups);
        self.leader(g).filter(|&l| !self.is_paused(l))
    }

    /// Runs event by event until `done` holds or `ticks` ticks passed.
    fn until(
        &mut self,
        ticks: u64,
        mut done: impl FnMut(&mut Self) -> Result<bool, Violation>,
    ) -> Result<(), Violation> {
        let end = ticks_after(self.now, ticks);
        while self.now < end && !done(self)? {
            if !self.step()? {
                break;
            }
        }
        Ok(())
    }

    fn early_reconfig(&mut self) -> Result<(), Violation> {
        let Some(a) = self.some_leader() else { return Ok(()) };
        let ids = self.ids();
        let mut scene: Vec<(GroupId, Vec<NodeId>)> = Vec::new();
        for (g, voters) in self.led_by(a) {
            if voters.len() == 4 {
                scene.push((g, voters));
            } else if voters.len() > 4 {
                if let Some(v) = self.other(&voters, &[a]) {
                    self.change_at(a, g, MembershipChange::Remove(v))?;
                }
            } else if let Some(v) = self.other(&ids, &voters) {
                self.change_at(a, g, MembershipChange::AddVoter(v))?;
            }
        }
        if scene.is_empty() {
            return self.run_ticks(20);
        }
        let others: Vec<NodeId> = ids.iter().copied().filter(|&n| n != a).collect();
        self.partition(&[&[a], &others]);
        let mut pending: Vec<(GroupId, Vec<NodeId>, NodeId, Term)> = Vec::new();
        for (g, voters) in scene {
            let Some(d) = self.other(&voters, &[a]) else { continue };
            if self.change_at(a, g, MembershipChange::Remove(d))? {
                let term = self.host(a).and_then(|h| h.group(g)).map_or(0, |n| n.term());
                pending.push((g, voters, d, term));
            }
        }
        self.crash(a);
        self.heal();
        // The moment each group elects a new leader W, ask W for a change.
        self.until(80, |c| {
            let mut k = 0;
            while k < pending.len() {
                let (g, ref voters, d, term_a) = pending[k];
                let w = c.leader(g).filter(|&w| w != a);
                let term_w = w.and_then(|w| c.host(w)?.group(g)).map_or(0, |n| n.term());
                let Some(w) = w.filter(|_| term_w > term_a) else {
                    k += 1;
                    continue;
                };
                let not = if w == d { vec![a, w] } else { vec![a, w, d] };
                let voters = voters.clone();
                pending.swap_remove(k);
                let Some(z) = c.other(&voters, &not) else { continue };
                c.net.block(w, z);
                c.net.block(w, a);
                c.change_at(w, g, MembershipChange::Remove(z))?;
            }
            Ok(pending.is_empty())
        })?;
        self.run_ticks(5)?;
        self.restart(a);
        self.run_ticks(60)?;
        self.heal();
        Ok(())
    }

    fn voter_restart(&mut self) -> Result<(), Violation> {
        let Some(l) = self.some_leader() else { return Ok(()) };
        let Some((g, voters)) = self.led_by(l).into_iter().next() else { return Ok(()) };
        let term = self.host(l).and_then(|h| h.group(g)).map_or(0, |n| n.term());
        self.crash(l);
        let mut first = None;
        self.until(40, |c| {
            first = voters
                .iter()
                .copied()
                .find(|&id| c.host(id).and_then(|h| h.group(g)).is_some_and(|n| n.role() == Role::Candidate));
            Ok(first.is_some())
        })?;
        let Some(first) = first else { return Ok(()) };
        let Some(second) = self.other(&voters, &[l, first]) else { return Ok(()) };
        self.net.block(first, second);
        self.net.block(second, first);
        // (The second may still be inside the old leader's lease for a tick.)
        for _ in 0..4 {
            if self.step_at(second, g, Event::Campaign)? {
                break;
            }
            self.run_ticks(1)?;
        }
        // (voter, term, candidate) of every vote already followed by a
        // restart.
        let mut restarted: Vec<(NodeId, Term, NodeId)> = Vec::new();
        let vote = |c: &Self, id: NodeId| {
            let hs = c.host(id)?.group(g)?.log().hard_state();
            hs.vote.filter(|&v| v != id && hs.term > term).map(|v| (id, hs.term, v))
        };
        for _ in 0..30 {
            let mut fresh = None;
            self.until(1, |c| {
                fresh = voters.iter().find_map(|&id| vote(c, id).filter(|v| !restarted.contains(v)));
                Ok(fresh.is_some())
            })?;
            if let Some((voter, t, candidate)) = fresh {
                restarted.push((voter, t, candidate));
                self.crash(voter);
                self.restart(voter);
                self.net.block(candidate, voter);
            }
        }
        self.heal();
        self.restart(l);
        Ok(())
    }

    fn minority_crash(&mut self) -> Result<(), Violation> {
        let Some(l) = self.some_leader() else { return Ok(()) };
        let ids = self.ids();
        let f = self.other(&ids, &[l]);
        let (near, far): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|&&n| n == l || Some(n) == f);
        self.partition(&[&near, &far]);
        for (g, _) in self.led_by(l) {
            for _ in 0..self.rng.range(1, 3) {
                self.write(g)?;
            }
        }
        let t = self.rng.range(1, 3);
        self.run_ticks(t)?;
        self.crash(l);
        self.heal();
        self.run_ticks(30)?;
        self.restart(l);
        Ok(())
    }

    fn stale_lease(&mut self) -> Result<(), Violation> {
        let Some(a) = self.some_leader() else { return Ok(()) };
        let groups: Vec<GroupId> = self.led_by(a).into_iter().map(|(g, _)| g).collect();
        // A write each, so that every group's leader is awake and has
        // heard from its followers just before the cut.
        for &g in &groups {
            self.write(g)?;
        }
        self.run_ticks(2)?;
        let others: Vec<NodeId> = self.ids().into_iter().filter(|&n| n != a).collect();
        self.partition(&[&[a], &others]);
        // The cut-off node's clock slow, the others' fast: their elections
        // come earlier, and its lease ends later, than on one clock. Within
        // the lease's drift allowance: a lease of `min - drift` slow ticks
        // ends before `min` fast ticks when (1 + skew) / (1 - skew) is at
        // most min / (min - drift), 10 / 8 here, that is skew ≤ 1/9.
        let skew = 0.04 + 0.06 * self.rng.next_u64() as f64 / u64::MAX as f64;
        for slot in &mut self.slots {
            slot.tick_rate = if slot.id == a { 1.0 - skew } else { 1.0 + skew };
        }
        for _ in 0..30 {
            for &g in &groups {
                self.write(g)?;
                self.read_at(g, a)?;
            }
            self.run_ticks(1)?;
        }
        for slot in &mut self.slots {
            slot.tick_rate = 1.0;
        }
        self.heal();
        Ok(())
    }

    /// The commit index of `group` at node `id`.
    fn commit_at(&self, id: NodeId, group: GroupId) -> u64 {
        self.host(id).and_then(|h| h.group(group)).map_or(0, |n| n.commit_index())
    }

    /// A write to `group`, led by `leader`; if taken, noted with the
    /// leader's commit index before it.
    fn write_noting(
        &mut self,
        group: GroupId,
        leader: NodeId,
        written: &mut Vec<(GroupId, NodeId, u64)>,
    ) -> Result<(), Violation> {
        let commit = self.commit_at(leader, group);
        if self.write(group)? {
            written.push((group, leader, commit));
        }
        Ok(())
    }

    fn power_cut_at_commit(&mut self) -> Result<(), Violation> {
        // In the asynchronous mode, a third of the time the leader of the
        // written groups is first cut off from a minority of the nodes and
        // given the slowest disk, so that each commit needs the leader's own
        // write, which is durable last: a commit counted before it is lost
        // with the power, and the leader and the minority, left to
        // themselves, elect without it.
        let lagging = self.cfg.async_storage && self.rng.chance(1.0 / 3.0);
        let mut written: Vec<(GroupId, NodeId, u64)> = Vec::new();
        // The leader and the minority cut off from it (lagging scene only).
        let mut near: Vec<NodeId> = Vec::new();
        if lagging {
            let Some(l) = self.some_leader() else { return Ok(()) };
            let ids = self.ids();
            near.push(l);
            for _ in 0..(ids.len() - 1) / 2 {
                if let Some(b) = self.other(&ids, &near) {
                    self.net.block(l, b);
                    self.net.block(b, l);
                    near.push(b);
                }
            }
            // Its disk is the slowest: the followers' acknowledgements come
            // before its own write is durable.
            if let Some(i) = self.slot(l) {
                self.slots[i].slow_disk = true;
            }
            for (g, _) in self.led_by(l) {
                self.write_noting(g, l, &mut written)?;
            }
        } else {
            for _ in 0..self.rng.range(3, 12) {
                let g = 1 + self.rng.range(0, self.cfg.groups);
                if let Some(l) = self.leader(g) {
                    self.write_noting(g, l, &mut written)?;
                }
            }
        }
        // The moment one of those writes commits at its leader (in the
        // asynchronous mode, half the other times right after the next
        // flush instead), every node loses power.
        let flushes = self.stats.flushes;
        let after_flush = self.cfg.async_storage && !lagging && self.rng.chance(0.5);
        self.until(5, |c| {
            Ok(if after_flush {
                c.stats.flushes > flushes
            } else {
                written.iter().any(|&(g, l, commit)| c.commit_at(l, g) > commit)
            })
        })?;
        self.power_cut();
        if lagging {
            for slot in &mut self.slots {
                slot.slow_disk = false;
            }
            // The leader and the minority by themselves for a while: they
            // elect among them, safely only if no commit ran ahead of the
            // leader's disk (what it had durable is then the committed
            // prefix).
            let far: Vec<NodeId> = self.ids().into_iter().filter(|id| !near.contains(id)).collect();
            self.partition(&[&near, &far]);
            self.run_ticks(30)?;
            self.heal();
        }
        Ok(())
    }
}
