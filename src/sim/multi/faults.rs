//! The faults of a [`FaultProfile`] with many groups per node: one round of
//! [`MultiCluster::chaos_profile`], membership churn and leadership moves
//! per group, and buggy peers' envelopes.

use super::MultiCluster;
use crate::membership::MembershipChange;
use crate::message::MessageBody;
use crate::multi::{EnvelopeBody, GroupId};
use crate::node::Event;
use crate::sim::{FaultProfile, PauseInbox, Violation};
use crate::types::NodeId;

impl MultiCluster {
    /// [`chaos_profile`](Self::chaos_profile) with the configured profile
    /// ([`MultiSimConfig::profile`](super::MultiSimConfig::profile)).
    pub fn chaos(&mut self, rounds: usize) -> Result<(), Violation> {
        self.chaos_profile(self.cfg.profile, rounds)
    }

    /// A random fault schedule of `rounds` rounds. Under every profile:
    /// client writes and ReadIndex reads to random groups, and idle
    /// stretches (where groups quiesce, then wake on the next write or on
    /// a silent leader). On top, as `profile` says (every profile but
    /// `Calm` on a lossy network; the network applies per pair of nodes,
    /// to every group at once):
    ///
    /// * `Partitions`: random splits of the nodes, the node of some group's
    ///   leader cut off, one-way blocks, flapping, heals;
    /// * `Crashes`: a node crashes (every group replica on it, and every
    ///   write of every group not flushed yet) and restarts; power cuts
    ///   (every node at once);
    /// * `Membership`: per-group changes among the cluster's nodes (a
    ///   member removed and added back, as a learner or a voter,
    ///   promotions, joint changes), leadership transfers, and
    ///   [`MultiNode::rebalance`](crate::multi::MultiNode::rebalance) on a
    ///   random node;
    /// * `BuggyPeers`: recently sent envelopes delivered again, late, as
    ///   sent, with AppendEntries truncated, from an unknown node id, or
    ///   for a group nobody hosts (the hosts drop and count those);
    /// * `Pauses`: a node's host stops being stepped for up to three
    ///   election timeouts (usually the node of some group's leader), its
    ///   envelopes waiting or lost, then is ticked for the missed ticks;
    /// * `Everything`: all of these;
    /// * `Fragile`: scenes at the fragile moments of the protocol, played
    ///   in many groups at once (see the `fragile` module of
    ///   `sim::multi`), between client rounds and idle stretches.
    pub fn chaos_profile(&mut self, profile: FaultProfile, rounds: usize) -> Result<(), Violation> {
        self.set_network(profile.network());
        for _ in 0..rounds {
            if profile == FaultProfile::Fragile && self.rng.chance(0.15) {
                self.fragile_scene()?;
            } else {
                self.round(profile)?;
            }
            let t = self.rng.range(1, 4);
            self.run_ticks(t)?;
        }
        Ok(())
    }

    fn random_node(&mut self) -> NodeId {
        let n = self.slots.len() as u64;
        self.slots[self.rng.range(0, n) as usize].id
    }

    fn random_group(&mut self) -> GroupId {
        1 + self.rng.range(0, self.cfg.groups)
    }

    /// The node of some group's leader (usually), or any node.
    fn leader_or_any(&mut self) -> NodeId {
        let g = self.random_group();
        match self.leader(g) {
            Some(l) if self.rng.chance(0.7) => l,
            _ => self.random_node(),
        }
    }

    fn round(&mut self, p: FaultProfile) -> Result<(), Violation> {
        let ids = self.ids();
        match self.rng.range(0, 100) {
            40..=44 if p.pauses() => {
                let victim = self.leader_or_any();
                let ticks = self.rng.range(1, 60);
                let inbox = if self.rng.chance(0.5) { PauseInbox::Kept } else { PauseInbox::Lost };
                self.pause(victim, ticks, inbox);
            }
            45..=47 if p.partitions() && ids.len() > 1 => {
                let mut shuffled = ids.clone();
                for k in (1..shuffled.len()).rev() {
                    shuffled.swap(k, self.rng.range(0, k as u64 + 1) as usize);
                }
                let cut = self.rng.range(1, shuffled.len() as u64) as usize;
                let (a, b) = shuffled.split_at(cut);
                self.partition(&[a, b]);
            }
            48..=49 if p.partitions() && ids.len() > 1 => {
                let victim = self.leader_or_any();
                let others: Vec<NodeId> = ids.iter().copied().filter(|&n| n != victim).collect();
                self.partition(&[&[victim], &others]);
                if self.rng.chance(0.3) {
                    // Flapping: healed a tick later.
                    self.run_ticks(1)?;
                    self.heal();
                }
            }
            50..=51 if p.partitions() => {
                let (a, b) = (self.random_node(), self.random_node());
                if a != b {
                    self.net.block(a, b);
                }
            }
            52..=56 if p.partitions() => self.heal(),
            57..=60 if p.crashes() => {
                let victim = self.random_node();
                self.crash(victim);
            }
            61..=66 if p.crashes() => {
                let down: Vec<NodeId> = ids.iter().copied().filter(|&id| !self.is_up(id)).collect();
                if !down.is_empty() {
                    let id = down[self.rng.range(0, down.len() as u64) as usize];
                    self.restart(id);
                }
            }
            67 if p.crashes() => self.power_cut(),
            68..=77 if p.membership() => {
                for _ in 0..self.rng.range(1, 4) {
                    let g = self.random_group();
                    self.churn(g)?;
                }
            }
            78..=81 if p.membership() => {
                let g = self.random_group();
                self.transfer(g)?;
            }
            82..=83 if p.membership() => {
                let id = self.random_node();
                let max = self.rng.range(1, 4) as usize;
                self.rebalance(id, max)?;
            }
            84..=88 if p.buggy_peers() => {
                for _ in 0..self.rng.range(1, 6) {
                    self.replay_envelope()?;
                }
            }
            89..=99 => {
                // An idle stretch: groups quiesce, then wake.
                let idle = self.rng.range(10, 40);
                self.run_ticks(idle)?;
            }
            _ => self.clients()?,
        }
        Ok(())
    }

    /// A few client operations on random groups.
    pub(super) fn clients(&mut self) -> Result<(), Violation> {
        for _ in 0..self.rng.range(1, 6) {
            let g = self.random_group();
            if self.rng.chance(0.6) {
                self.write(g)?;
            } else {
                self.read(g)?;
            }
        }
        Ok(())
    }

    /// Every node crashes at once, losing what it had not flushed, then
    /// comes back.
    pub(super) fn power_cut(&mut self) {
        let ids = self.ids();
        for &id in &ids {
            self.crash(id);
        }
        for &id in &ids {
            self.restart(id);
        }
    }

    /// Steps `event` on `group` at node `id`'s host (up and not paused) and
    /// carries out what it asks. Returns whether the group accepted it.
    pub(super) fn step_at(&mut self, id: NodeId, group: GroupId, event: Event) -> Result<bool, Violation> {
        let Some(i) = self.slot(id).filter(|&i| self.slots[i].pause.is_none()) else { return Ok(false) };
        let Some(host) = self.slots[i].host.as_mut() else { return Ok(false) };
        let ok = host.step(group, event).is_ok();
        self.carry_out(i)?;
        Ok(ok)
    }

    /// Asks `group`'s leader for `change`. Returns whether it accepted it.
    pub fn change_membership(&mut self, group: GroupId, change: MembershipChange) -> Result<bool, Violation> {
        let Some(leader) = self.leader(group) else { return Ok(false) };
        self.change_at(leader, group, change)
    }

    /// Asks `group` at node `id` for `change` (refused unless it leads
    /// there). Returns whether it accepted it.
    pub(super) fn change_at(
        &mut self,
        id: NodeId,
        group: GroupId,
        change: MembershipChange,
    ) -> Result<bool, Violation> {
        let ok = self.step_at(id, group, Event::ChangeMembership(change))?;
        self.stats.membership_changes += u64::from(ok);
        Ok(ok)
    }

    /// One random membership change of `group` among the cluster's nodes:
    /// remove a member, add a node that is not one back (as a learner or a
    /// voter), promote a learner, or replace several voters at once (a
    /// joint change). Refusals are part of the test.
    fn churn(&mut self, group: GroupId) -> Result<(), Violation> {
        let Some(leader) = self.leader(group) else { return Ok(()) };
        let Some(config) = self.host(leader).and_then(|h| h.group(group)).map(|n| n.membership().clone()) else {
            return Ok(());
        };
        let ids = self.ids();
        let members: Vec<NodeId> = config.members().collect();
        let outside: Vec<NodeId> = ids.iter().copied().filter(|id| !members.contains(id)).collect();
        let voters = config.voters().to_vec();
        let learners = config.learners().to_vec();
        let change = match self.rng.range(0, 6) {
            0 | 1 if !outside.is_empty() => {
                let id = outside[self.rng.range(0, outside.len() as u64) as usize];
                if self.rng.chance(0.6) { MembershipChange::AddLearner(id) } else { MembershipChange::AddVoter(id) }
            }
            2 if !learners.is_empty() => {
                MembershipChange::Promote(learners[self.rng.range(0, learners.len() as u64) as usize])
            }
            3 | 4 if members.len() > 1 => {
                let id = members[self.rng.range(0, members.len() as u64) as usize];
                if voters == [id] {
                    return Ok(());
                }
                MembershipChange::Remove(id)
            }
            _ => {
                // A joint change: keep a random part of the voters, add up
                // to two of the nodes.
                let mut next: Vec<NodeId> = voters.iter().copied().filter(|_| self.rng.chance(0.6)).collect();
                for _ in 0..self.rng.range(0, 3) {
                    let id = ids[self.rng.range(0, ids.len() as u64) as usize];
                    if !next.contains(&id) {
                        next.push(id);
                    }
                }
                if next.is_empty() {
                    next.push(leader);
                }
                let learners = learners.iter().copied().filter(|l| !next.contains(l)).collect();
                MembershipChange::Replace { voters: next, learners }
            }
        };
        self.change_membership(group, change)?;
        Ok(())
    }

    /// `group`'s leader hands leadership to a random voter of the group.
    fn transfer(&mut self, group: GroupId) -> Result<(), Violation> {
        let Some(leader) = self.leader(group) else { return Ok(()) };
        let voters = self.host(leader).and_then(|h| h.group(group)).map(|n| n.membership().voters().to_vec());
        let Some(voters) = voters.filter(|v| !v.is_empty()) else { return Ok(()) };
        let to = voters[self.rng.range(0, voters.len() as u64) as usize];
        let ok = self.step_at(leader, group, Event::TransferLeadership(to))?;
        self.stats.transfers += u64::from(ok);
        Ok(())
    }

    /// Node `id`'s host starts up to `max` leadership transfers that even
    /// out the groups' leaders ([`MultiNode::rebalance`](crate::multi::MultiNode::rebalance)).
    /// Returns how many it started.
    pub fn rebalance(&mut self, id: NodeId, max: usize) -> Result<usize, Violation> {
        let Some(i) = self.slot(id).filter(|&i| self.slots[i].pause.is_none()) else { return Ok(0) };
        let Some(host) = self.slots[i].host.as_mut() else { return Ok(0) };
        let started = host.rebalance(max).map(|s| s.len()).unwrap_or(0);
        self.stats.transfers += started as u64;
        self.carry_out(i)?;
        Ok(started)
    }

    /// A buggy but honest peer: one of the envelopes sent lately delivered
    /// again now, bypassing the network — as sent, with its AppendEntries
    /// truncated, from a node id nobody knows, or for a group nobody hosts.
    fn replay_envelope(&mut self) -> Result<(), Violation> {
        if self.recent.is_empty() {
            return Ok(());
        }
        let pick = self.rng.range(0, self.recent.len() as u64) as usize;
        let mut env = self.recent[pick].clone();
        match self.rng.range(0, 5) {
            0 | 1 => {}
            2 => match &mut env.body {
                EnvelopeBody::Raft { message, .. } => match &mut message.body {
                    MessageBody::Append(a) => a.entries.truncate(self.rng.range(0, 3) as usize),
                    _ => return Ok(()),
                },
                _ => return Ok(()),
            },
            3 => {
                let from = 1_000 + self.rng.range(0, 5);
                env.from = from;
                if let EnvelopeBody::Raft { message, .. } = &mut env.body {
                    message.from = from;
                }
            }
            _ => {
                let unknown = self.cfg.groups + 1 + self.rng.range(0, 3);
                match &mut env.body {
                    EnvelopeBody::Raft { group, .. } | EnvelopeBody::Quiesce { group, .. } => *group = unknown,
                    _ => return Ok(()),
                }
            }
        }
        let Some(i) = self.slot(env.to) else { return Ok(()) };
        if self.slots[i].host.is_none() {
            return Ok(());
        }
        self.stats.replayed += 1;
        self.deliver_all(i, vec![env])
    }
}
