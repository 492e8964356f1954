//! Membership changes, learners and leadership transfer.
//!
//! **Rule: a configuration takes effect as soon as its entry is in a node's
//! log** (appended, not committed). Truncating an uncommitted configuration
//! entry reverts to the previous one; a snapshot carries the configuration
//! in effect at its index. [`ConfigHistory`] keeps the configuration entries
//! of the live log so all three cases recompute the configuration exactly.
//!
//! A leader accepts a change only when (1) an entry of its own term has
//! committed — the rule that closes the single-server change bug — and (2) no
//! other configuration entry is uncommitted. A joint configuration is left
//! automatically once it commits.

use super::progress::Progress;
use super::{Action, RaftNode, Why};
use crate::error::{Error, Result};
use crate::log::{RaftLog, visit_configurations};
use crate::membership::{Membership, MembershipChange, SharedConfigs};
use crate::message::{Message, MessageBody};
use crate::types::{Entry, Index, NodeId, Role};

/// How a leadership transfer ended, when it did not end with this node
/// seeing the target win.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferOutcome {
    /// This node stepped down (normally: the target won the election).
    SteppedDown,
    /// The target did not take over within an election timeout; this node
    /// keeps leading and accepts proposals again.
    TimedOut,
    /// A new transfer request replaced this one.
    Superseded,
    /// The target left the configuration.
    TargetRemoved,
}

/// A pending leadership transfer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    pub(super) to: NodeId,
    started: u64,
    timeout_now_sent: bool,
}

/// The configuration entries of the live log, over the configuration of
/// the latest snapshot.
#[derive(Clone, Debug)]
pub(super) struct ConfigHistory {
    base_index: Index,
    base: Membership,
    entries: Vec<(Index, Membership)>,
    /// The node whose history this is.
    owner: NodeId,
    /// Whether `owner` is a voter of the configuration in effect: asked at
    /// the end of every leader step, kept here so that it is one load
    /// (recomputed by every change of the configuration in effect).
    owner_votes: bool,
}

impl ConfigHistory {
    /// Rebuilds the history from a log: the snapshot's configuration, then
    /// every configuration entry after it (one pass over the live log).
    pub(super) fn recover<L: RaftLog>(log: &L, owner: NodeId) -> Result<Self> {
        let meta = log.snapshot_meta();
        let mut history = Self {
            base_index: meta.index,
            base: meta.membership.clone(),
            entries: Vec::new(),
            owner,
            owner_votes: false,
        };
        visit_configurations(log, |e| {
            let m = Membership::decode(&e.data)
                .map_err(|err| Error::CorruptLog(format!("configuration entry {}: {err}", e.index)))?;
            history.entries.push((e.index, m));
            Ok::<(), Error>(())
        })?;
        history.changed();
        Ok(history)
    }

    /// After every change of the configuration in effect.
    fn changed(&mut self) {
        self.owner_votes = self.effective().is_voter(self.owner);
    }

    /// Whether the node whose history this is votes in the configuration
    /// in effect.
    #[inline]
    pub(super) fn owner_votes(&self) -> bool {
        debug_assert_eq!(self.owner_votes, self.effective().is_voter(self.owner));
        self.owner_votes
    }

    #[inline]
    pub(super) fn effective(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, m)| m)
    }

    #[inline]
    pub(super) fn effective_index(&self) -> Index {
        self.entries.last().map_or(self.base_index, |(i, _)| *i)
    }

    /// The configuration in effect at `index`.
    pub(super) fn at(&self, index: Index) -> &Membership {
        self.committed(index).1
    }

    /// The latest configuration at or before `index`, with its index (the
    /// snapshot's for the base configuration).
    pub(super) fn committed(&self, index: Index) -> (Index, &Membership) {
        self.entries.iter().rev().find(|(i, _)| *i <= index).map_or((self.base_index, &self.base), |(i, m)| (*i, m))
    }

    /// Whether `id` is a member of any configuration this history holds.
    pub(super) fn knows(&self, id: NodeId) -> bool {
        self.effective().contains(id) || self.base.contains(id) || self.entries.iter().any(|(_, m)| m.contains(id))
    }

    /// Whether this history knows no configuration in effect at `index`: a
    /// joining node before it learned its cluster's configuration.
    #[inline]
    pub(super) fn unknown_at(&self, index: Index) -> bool {
        self.base.is_empty() && self.at(index).is_empty()
    }

    pub(super) fn push(&mut self, index: Index, membership: Membership) {
        self.entries.push((index, membership));
        self.changed();
    }

    pub(super) fn truncate(&mut self, from: Index) {
        while self.entries.last().is_some_and(|(i, _)| *i >= from) {
            self.entries.pop();
        }
        self.changed();
    }

    /// Makes every configuration held the pool's copy of it.
    pub(super) fn share(&mut self, pool: &mut SharedConfigs) {
        pool.share(&mut self.base);
        for (_, m) in &mut self.entries {
            pool.share(m);
        }
    }

    /// After a snapshot at `meta.index` is installed; `last_index` tells
    /// whether the log kept its suffix.
    pub(super) fn install_snapshot(&mut self, meta: &crate::types::SnapshotMeta, last_index: Index) {
        if last_index <= meta.index {
            self.entries.clear();
        } else {
            self.entries.retain(|(i, _)| *i > meta.index);
        }
        self.base_index = meta.index;
        self.base = meta.membership.clone();
        self.changed();
    }
}

impl<L: RaftLog> RaftNode<L> {
    /// Makes the configurations this node holds the copies in `pool`, so
    /// that the groups of one host read one copy of a configuration they
    /// share (a many-groups host calls it when a group starts and when its
    /// configuration changes). Changes no configuration.
    pub(crate) fn share_configs(&mut self, pool: &mut SharedConfigs) {
        self.configs.share(pool);
    }

    pub(super) fn change_membership(&mut self, change: MembershipChange) -> Result<()> {
        self.check_can_propose()?;
        if self.commit < self.term_start && !mutant!(EarlyMembershipChange) {
            return Err(Error::NotReady);
        }
        let pending = self.configs.effective_index();
        if pending > self.commit {
            return Err(Error::ChangeInProgress { index: pending });
        }
        let next = self.configs.effective().apply(&change)?;
        let entry = Entry::config(self.term, self.log.last_index() + 1, &next);
        self.check_uncommitted(entry.size())?;
        self.append_leader_entry(entry)
    }

    pub(super) fn transfer_leadership(&mut self, to: NodeId) -> Result<()> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        if to == self.id {
            return Ok(());
        }
        if !self.configs.effective().is_voter(to) {
            return Err(Error::InvalidTransferTarget(to));
        }
        if let Some(old) = self.transfer.take() {
            if old.to == to {
                self.transfer = Some(old);
                return Ok(());
            }
            self.out.push(Action::TransferEnded { to: old.to, outcome: TransferOutcome::Superseded });
        }
        self.transfer = Some(Transfer { to, started: self.ticks, timeout_now_sent: false });
        if let Some(i) = self.peer_index(to) {
            self.on_peer_caught_up(i);
            if self.transfer.is_some_and(|t| !t.timeout_now_sent) {
                self.send_append(i, true)?;
            }
        }
        Ok(())
    }

    /// Leader: peer `i` acknowledged more of the log. Completes a transfer
    /// whose target is now up to date, and promotes a learner that caught up
    /// (when automatic promotion is configured, at the end of the step).
    #[inline]
    pub(super) fn on_peer_caught_up(&mut self, i: usize) {
        if self.transfer.is_none() {
            return;
        }
        let pr = &self.peers[i];
        let (id, matched) = (pr.id, pr.matched);
        let up_to_date = matched == self.log.last_index();
        let send = match self.transfer.as_mut() {
            Some(t) if t.to == id && !t.timeout_now_sent && up_to_date => {
                t.timeout_now_sent = true;
                true
            }
            _ => false,
        };
        if send {
            self.send_timeout_now(id);
        }
    }

    /// Tells `to` to campaign now. From here on, for the rest of this term,
    /// another leader may be elected at any moment (the target's election
    /// bypasses every lease), so this leader serves no more lease reads.
    fn send_timeout_now(&mut self, to: NodeId) {
        self.lease_revoked_term = self.term;
        self.send(to, MessageBody::TimeoutNow);
    }

    pub(super) fn check_transfer_timeout(&mut self) {
        let Some(t) = self.transfer else { return };
        if self.ticks - t.started >= self.cfg.election_timeout_min {
            self.transfer = None;
            self.out.push(Action::TransferEnded { to: t.to, outcome: TransferOutcome::TimedOut });
        }
    }

    /// Leader, at the end of a step: leave a committed joint configuration,
    /// or promote a learner that caught up. Returns whether an entry was
    /// appended.
    pub(super) fn leader_automatic_changes(&mut self) -> Result<bool> {
        if self.commit < self.term_start || self.configs.effective_index() > self.commit || self.transfer.is_some() {
            return Ok(false);
        }
        let current = self.configs.effective();
        // A leader that votes in no committed configuration steps down at
        // the end of this step (`step_down_if_removed`): it promotes no
        // learner into a configuration it has left, which would keep it
        // leading until that change committed too. (A joint configuration
        // is still left: its leader votes in it, in the outgoing half.)
        let promotes = self.configs.owner_votes();
        let next = if current.is_joint() {
            current.leave_joint()
        } else if let Some(distance) = self.cfg.auto_promote_distance.filter(|_| promotes) {
            let last = self.log.last_index();
            let ready =
                current.learners().iter().copied().find(|&l| {
                    self.peer_index(l).is_some_and(|i| self.peers[i].matched.saturating_add(distance) >= last)
                });
            match ready.map(|l| current.apply(&MembershipChange::Promote(l))) {
                Some(Ok(next)) => next,
                _ => return Ok(false),
            }
        } else {
            return Ok(false);
        };
        let entry = Entry::config(self.term, self.log.last_index() + 1, &next);
        self.append_leader_entry(entry)?;
        Ok(true)
    }

    /// Leader: once the configuration that removes it has committed, step
    /// down, handing leadership to the most up-to-date voter.
    pub(super) fn step_down_if_removed(&mut self) {
        if self.configs.owner_votes() || self.configs.effective_index() > self.commit {
            return;
        }
        let successor = self.successors().next();
        if let Some(to) = successor {
            self.send_timeout_now(to);
        }
        self.because(Why::RemovedFromConfig);
        self.become_follower(self.term, None);
    }

    /// The voters a leader leaving may hand over to: those whose log
    /// matches its own to the end, in peer order.
    fn successors(&self) -> impl Iterator<Item = NodeId> + '_ {
        let config = self.configs.effective();
        let last = self.log.last_index();
        self.peers.iter().filter(move |p| p.matched == last && config.is_voter(p.id)).map(|p| p.id)
    }

    /// A leader whose node is about to be dropped (its group removed from a
    /// many-groups host): the `TimeoutNow` that hands the group to the
    /// successor `rank` ranks highest (the first on a tie; `None`: not
    /// usable), or `None` when this node does not lead, is halted or has
    /// no usable successor.
    pub(crate) fn leaving_notice(&mut self, rank: impl Fn(NodeId) -> Option<u64>) -> Option<Message> {
        if self.role != Role::Leader || self.halted {
            return None;
        }
        let to = self.successors().filter_map(|id| Some((id, rank(id)?))).min_by_key(|&(_, r)| std::cmp::Reverse(r))?.0;
        self.lease_revoked_term = self.term;
        Some(Message { from: self.id, to, term: self.term, body: MessageBody::TimeoutNow })
    }

    /// The configuration in effect changed: a leader tracks progress for
    /// exactly its members and drops a transfer to a removed target.
    pub(super) fn on_membership_changed(&mut self) {
        if self
            .removed
            .is_some_and(|at| self.configs.effective_index() > at && self.configs.effective().contains(self.id))
        {
            // A configuration newer than the one that removed it includes
            // it again (its id was added back): it is a member again.
            self.removed = None;
        }
        if !self.configs.effective().contains(self.id) {
            self.fail_all_reads(super::ReadFailure::NotMember);
        }
        if self.role != Role::Leader {
            return;
        }
        let config = self.configs.effective();
        let me = self.id;
        self.peers.retain(|p| config.contains(p.id));
        // A member new to the leader starts at the configuration entry that
        // added it (just appended), not past the log: the entry's own
        // broadcast then probes it at once, where starting past the log
        // would leave it unheard of until the next heartbeat.
        // (`max` then `min`, not `clamp`: a log whose first index passed its
        // last must not panic here.)
        let next = self.configs.effective_index().max(self.log.first_index()).max(1).min(self.log.last_index() + 1);
        for id in config.members().filter(|&id| id != me) {
            if let Err(pos) = self.peers.binary_search_by_key(&id, |p| p.id) {
                self.peers.insert(pos, Progress::new(id, next, self.cfg.max_inflight));
            }
        }
        let removed = self.transfer.filter(|t| !config.is_voter(t.to));
        if let Some(t) = removed {
            self.transfer = None;
            self.out.push(Action::TransferEnded { to: t.to, outcome: TransferOutcome::TargetRemoved });
        }
        // The answers already in may be a quorum of the new configuration:
        // confirmed now, not at the next answer — which never comes when
        // the change left this leader the only voter, and then no read
        // riding a round in flight would ever be confirmed.
        self.confirm_reads();
    }
}
