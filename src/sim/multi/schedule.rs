//! The fault schedule of [`MultiCluster`] and the liveness check after it.

use super::MultiCluster;
use crate::log::RaftLog;
use crate::multi::GroupId;
use crate::sim::{NetworkFaults, TICK, Violation};

impl MultiCluster {
    /// Heals everything, restarts every node, then runs until every group
    /// has a leader that committed a new entry on every node, for at most
    /// `max_ticks`. Returns whether it did.
    pub fn heal_and_check_liveness(&mut self, max_ticks: u64) -> Result<bool, Violation> {
        self.heal();
        self.set_network(NetworkFaults::reliable());
        for id in self.ids() {
            self.restart(id);
        }
        let deadline = self.now + max_ticks * TICK;
        let mut pending: Vec<GroupId> = (1..=self.cfg.groups).collect();
        while self.now < deadline && !pending.is_empty() {
            let mut left = Vec::new();
            for g in pending {
                let Some(l) = self.leader(g) else {
                    left.push(g);
                    continue;
                };
                let target = self.host(l).and_then(|h| h.group(g)).map_or(0, |n| n.last_index() + 1);
                let term = self.host(l).and_then(|h| h.group(g)).map_or(0, |n| n.term());
                if !self.write(g)? {
                    left.push(g);
                    continue;
                }
                let mut done = false;
                for _ in 0..60 {
                    self.run_ticks(1)?;
                    done = self.ids().iter().all(|&id| {
                        self.host(id)
                            .and_then(|h| h.group(g))
                            .is_some_and(|n| n.last_applied() >= target && n.log().term(target) == Some(term))
                    });
                    if done {
                        break;
                    }
                }
                if !done {
                    left.push(g);
                }
            }
            pending = left;
            if !pending.is_empty() {
                self.run_ticks(1)?;
            }
        }
        Ok(pending.is_empty())
    }

    /// A random fault schedule of `rounds` rounds: proposals to random
    /// groups, partitions, heals, crashes and restarts, power cuts (every
    /// node at once), lossy periods and idle stretches (where groups
    /// quiesce).
    pub fn chaos(&mut self, rounds: usize) -> Result<(), Violation> {
        let ids = self.ids();
        for _ in 0..rounds {
            match self.rng.range(0, 100) {
                0..=39 => {
                    for _ in 0..self.rng.range(1, 6) {
                        let g = 1 + self.rng.range(0, self.cfg.groups);
                        if self.rng.chance(0.6) {
                            self.write(g)?;
                        } else {
                            self.read(g)?;
                        }
                    }
                }
                40..=49 if ids.len() > 1 => {
                    let cut = 1 + self.rng.range(0, ids.len() as u64 - 1) as usize;
                    let (a, b) = ids.split_at(cut);
                    self.partition(&[a, b]);
                }
                50..=59 => self.heal(),
                60..=66 => {
                    let id = ids[self.rng.range(0, ids.len() as u64) as usize];
                    self.crash(id);
                }
                67..=76 => {
                    let id = ids[self.rng.range(0, ids.len() as u64) as usize];
                    self.restart(id);
                }
                77..=79 => {
                    // A power cut: every node at once loses what it had not
                    // flushed, then comes back.
                    for &id in &ids {
                        self.crash(id);
                    }
                    for &id in &ids {
                        self.restart(id);
                    }
                }
                80..=81 => self.set_network(NetworkFaults::lossy()),
                82..=86 => self.set_network(NetworkFaults::reliable()),
                _ => {
                    // An idle stretch: groups quiesce, then wake.
                    let idle = self.rng.range(10, 40);
                    self.run_ticks(idle)?;
                }
            }
            let t = self.rng.range(1, 4);
            self.run_ticks(t)?;
        }
        Ok(())
    }
}
