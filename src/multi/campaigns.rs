//! Campaign pacing (`docs/PROTOCOL.md` §10, "Campaign pacing").
//!
//! Thousands of groups that lose their leaders together (all created at
//! once, a whole cluster restarted, a node hosting thousands of leaders
//! gone) would all campaign within one election timeout. Every campaign
//! costs envelopes on every replica and every leader it makes heartbeats
//! until its group quiesces; past what the machine carries, heartbeats
//! arrive late, followers campaign again, and the groups never settle.
//!
//! Rules:
//! * a host lets at most [`HostConfig::max_campaigns`] of its groups hold
//!   a campaign slot at once. A group takes a slot when it becomes a
//!   pre-candidate or a candidate (by its timer, `Event::Campaign` or a
//!   transfer), and gives it back when it follows a leader, leads, or is
//!   removed;
//! * before a tick that would start a group's election, the host asks for
//!   a slot. With none free, the tick still advances the group's timers
//!   but starts no election ([`RaftNode`] holds it): the timer stays
//!   expired, so the group grants votes as any group without a leader
//!   does, and it campaigns on the first tick that finds a slot;
//! * a group whose campaign round ran out without a result gives its slot
//!   back before asking again, and while other groups wait it lets them go
//!   first: a group that cannot win (its voters unreachable) cannot keep a
//!   slot from one that can;
//! * while groups wait, slots go in group order from where the last tick's
//!   grants stopped, so every waiting group is reached.
//!
//! Holding an election back never breaks safety (a node that does not
//! campaign is a slow node); `Event::Campaign` and `TimeoutNow` are never
//! held (an operator's or a transfer's request), but they take slots.
//!
//! [`HostConfig::max_campaigns`]: super::HostConfig::max_campaigns
//! [`RaftNode`]: crate::RaftNode

use std::collections::BTreeSet;

use super::GroupId;
use crate::types::Role;

/// The campaign slots of one host.
#[derive(Debug, Default)]
pub(super) struct Campaigns {
    /// At most this many slots (0: no limit).
    limit: usize,
    /// The groups holding a slot.
    running: BTreeSet<GroupId>,
    /// Groups whose election was held back since the clock last moved.
    held_now: u64,
    /// Elections held back, ever (group ticks).
    held: u64,
    /// Whether some group was held back when the clock last moved: a
    /// group whose round ran out then waits behind them.
    waiting: bool,
    /// The group after which the next tick's grants start.
    cursor: GroupId,
}

/// What a tick may do with a group whose election falls due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Grant {
    /// Campaign: a slot is taken.
    Go,
    /// Tick, but start no election.
    Hold,
}

impl Campaigns {
    pub(super) fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Slots held now.
    pub(super) fn running(&self) -> usize {
        self.running.len()
    }

    /// Elections held back so far, one per group and tick.
    pub(super) fn held(&self) -> u64 {
        self.held
    }

    /// Where the next tick's grants start, while groups wait: the groups
    /// after the cursor first, then the rest. With nobody waiting the
    /// order does not matter, and the groups stay in group order.
    pub(super) fn rotate(&self, ids: &mut [GroupId]) {
        if self.waiting {
            let split = ids.partition_point(|&g| g <= self.cursor);
            ids.rotate_left(split);
        }
    }

    /// A new tick begins: remember whether the last one held anything back.
    pub(super) fn begin_tick(&mut self) {
        self.waiting = self.held_now > 0;
        self.held_now = 0;
    }

    /// `group`'s election falls due on this tick: may it campaign?
    pub(super) fn ask(&mut self, group: GroupId) -> Grant {
        if self.limit == 0 {
            return Grant::Go;
        }
        // Its own round (if any) ran out: the slot comes back first.
        let had = self.running.remove(&group);
        let queue_behind = had && self.waiting;
        if self.running.len() < self.limit && !queue_behind {
            self.running.insert(group);
            self.cursor = group;
            Grant::Go
        } else {
            self.held_now += 1;
            self.held += 1;
            Grant::Hold
        }
    }

    /// `group` changed role (from its `RoleChanged` action).
    pub(super) fn role_changed(&mut self, group: GroupId, role: Role) {
        match role {
            Role::PreCandidate | Role::Candidate => {
                self.running.insert(group);
            }
            Role::Follower | Role::Leader => {
                self.running.remove(&group);
            }
        }
    }

    /// `group` left the host.
    pub(super) fn removed(&mut self, group: GroupId) {
        self.running.remove(&group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_come_back_when_a_campaign_ends() {
        let mut c = Campaigns::new(2);
        c.begin_tick();
        assert_eq!(c.ask(1), Grant::Go);
        assert_eq!(c.ask(2), Grant::Go);
        assert_eq!(c.ask(3), Grant::Hold);
        assert_eq!(c.running(), 2);
        c.role_changed(1, Role::Leader);
        c.begin_tick();
        assert_eq!(c.ask(3), Grant::Go);
        c.removed(2);
        assert_eq!(c.running(), 1);
    }

    #[test]
    fn a_round_that_ran_out_waits_behind_held_groups() {
        let mut c = Campaigns::new(1);
        c.begin_tick();
        assert_eq!(c.ask(1), Grant::Go);
        assert_eq!(c.ask(2), Grant::Hold);
        c.begin_tick();
        // Group 1's round ran out while 2 waits: 1 yields.
        assert_eq!(c.ask(1), Grant::Hold);
        assert_eq!(c.ask(2), Grant::Go);
        c.begin_tick();
        // Nobody else waits behind 2's next round... but 1 does.
        assert_eq!(c.ask(2), Grant::Hold);
        assert_eq!(c.ask(1), Grant::Go);
    }

    #[test]
    fn grants_start_after_the_last_group_granted() {
        let mut c = Campaigns::new(1);
        c.begin_tick();
        assert_eq!(c.ask(5), Grant::Go);
        assert_eq!(c.ask(7), Grant::Hold);
        c.begin_tick();
        let mut ids = vec![1, 3, 5, 7, 9];
        c.rotate(&mut ids);
        assert_eq!(ids, [7, 9, 1, 3, 5]);
    }

    #[test]
    fn no_limit_grants_everything() {
        let mut c = Campaigns::new(0);
        c.begin_tick();
        assert!((1..=1000).all(|g| c.ask(g) == Grant::Go));
    }
}
