//! The liveness check of [`MultiCluster`] after its fault schedule.

use super::MultiCluster;
use crate::log::RaftLog;
use crate::multi::GroupId;
use crate::sim::{NetworkFaults, Violation, ticks_after};

impl MultiCluster {
    /// Heals everything, resumes paused hosts, restarts every node, then
    /// runs until every group has a leader that committed a new entry on
    /// every member of its configuration (its current voters and
    /// learners; a node removed from a group is not judged there), for at
    /// most `max_ticks`. Returns whether it did.
    pub fn heal_and_check_liveness(&mut self, max_ticks: u64) -> Result<bool, Violation> {
        self.heal();
        self.set_network(NetworkFaults::reliable());
        for i in 0..self.slots.len() {
            self.resume_now(i)?;
        }
        for id in self.ids() {
            self.restart(id);
        }
        let deadline = ticks_after(self.now, max_ticks);
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
                    let members: Vec<_> = self
                        .leader(g)
                        .and_then(|l| self.host(l)?.group(g))
                        .map(|n| n.membership().members().collect())
                        .unwrap_or_default();
                    done = !members.is_empty()
                        && members.iter().all(|&id| {
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
}
