//! Timers, pre-vote, votes, check-quorum and role transitions.
//!
//! * Election timeouts are drawn from `election_timeout_min..max` by the
//!   node's seeded generator and reset whenever the node hears from a leader
//!   or grants a vote.
//! * With pre-vote (default), a node whose timeout fires first asks the
//!   voters whether they would vote for it in the next term; it increments
//!   its term only after a quorum says yes. A partitioned node therefore
//!   cannot inflate terms and disrupt the cluster when it returns.
//! * With check-quorum (default), a leader that has not heard from a quorum
//!   within a minimum election timeout steps down, and a follower that heard
//!   from its leader within that time refuses (pre-)votes unless the request
//!   comes from a leadership transfer (leader stickiness).

use super::{Action, RaftNode, Why, observe};
use crate::error::{CampaignRefusal, Error, Result};
use crate::log::RaftLog;
use crate::message::{AppendResponse, Message, MessageBody, VoteRequest, VoteResponse};
use crate::quorum::VoteResult;
use crate::types::{Entry, MAX_TERM, NodeId, Role, Term};

use super::progress::{self, Progress};
use super::reconfig::TransferOutcome;

impl<L: RaftLog> RaftNode<L> {
    /// `n` ticks passed (see [`Event::Ticks`](super::Event::Ticks)):
    /// timers advance by `n`; at most one heartbeat round and at most one
    /// election start.
    pub(super) fn tick(&mut self, n: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.ticks = self.ticks.saturating_add(n);
        self.vote_cooldown = self.vote_cooldown.saturating_sub(n);
        self.tick_reads();
        if self.incoming.is_some() {
            self.drop_stale_receive()?;
        }
        if self.role == Role::Leader {
            self.tick_leader(n)
        } else {
            self.election_elapsed = self.election_elapsed.saturating_add(n);
            if self.timer_fires(self.election_elapsed) && !self.campaign_held {
                self.because(Why::ElectionTimeout);
                self.start_election(false)?;
            }
            Ok(())
        }
    }

    /// Whether `n` more ticks would start an election here: a follower or
    /// candidate whose election timer runs out by then and that may
    /// campaign. A many-groups host asks before it ticks a group, to pace
    /// campaigns (`multi::campaigns`).
    pub(crate) fn campaigns_within(&self, n: u64) -> bool {
        let elapsed = self.election_elapsed.saturating_add(self.owed_ticks);
        self.role != Role::Leader && self.timer_fires(elapsed.saturating_add(n))
    }

    /// Takes `n` ticks without a step, if they can change nothing but this
    /// node's clocks: they are counted and taken at the start of its next
    /// step, before that step's event, so every step sees the timers as if
    /// each tick had been stepped. Returns `false` (and takes none) when
    /// they might act: then the caller steps `Event::Ticks(n)`, which takes
    /// the deferred ones too. A many-groups host defers the ticks of its
    /// quiet followers (`MultiNode::advance`), which otherwise cost a step
    /// per group and tick for counting alone.
    ///
    /// It reads only the clocks and the limit the last step left
    /// (`quiet_limit`, kept once [`track_quiet_limit`](Self::track_quiet_limit)
    /// was called; a node that does not track it defers nothing): a quiet
    /// follower of a host with thousands of groups is cold in the cache,
    /// and working the answer out afresh would read half a dozen cache
    /// lines of it for every tick.
    pub(crate) fn defer_ticks(&mut self, n: u64) -> bool {
        let quiet = self.quiet_limit.saturating_sub(self.election_elapsed.saturating_add(self.owed_ticks));
        debug_assert!(!self.quiet_tracked || quiet == self.quiet_ticks(), "the quiet limit is stale");
        if n > quiet {
            return false;
        }
        self.owed_ticks = self.owed_ticks.saturating_add(n);
        true
    }

    /// From now on every step ends by working out the limit `defer_ticks`
    /// reads, while the node's state is in the cache: for a host that
    /// defers the ticks of many groups (`MultiNode` calls it for each). A
    /// node whose ticks nobody defers does not pay for it.
    pub(crate) fn track_quiet_limit(&mut self) {
        self.quiet_tracked = true;
        self.refresh_quiet_limit();
    }

    /// Works out the limit `defer_ticks` reads: how far the election timer
    /// (with the ticks owed) may run with nothing but counting. Only a
    /// step changes what it depends on, so every step of a tracked node
    /// ends with this; deferred ticks only move the timer towards the
    /// limit.
    pub(super) fn refresh_quiet_limit(&mut self) {
        self.quiet_limit = self.election_elapsed.saturating_add(self.owed_ticks).saturating_add(self.quiet_ticks());
    }

    /// How many more ticks (counting those deferred) can only advance this
    /// node's clocks: a follower's, while its election timer runs, no read
    /// waits on a deadline, nothing committed waits to be applied, no
    /// snapshot to be restored and none is half received (a tick gives up
    /// a receive the commit index overtook). Nothing else a follower's tick
    /// does acts: the vote cooldown and the leader's last contact are read
    /// by steps, after the deferred ticks are taken. 0 for any other role.
    fn quiet_ticks(&self) -> u64 {
        if self.role != Role::Follower
            || self.halted
            || !self.reads.is_idle()
            || self.restore_pending
            || self.incoming.is_some()
            || self.applied < self.apply_limit()
        {
            return 0;
        }
        let elapsed = self.election_elapsed.saturating_add(self.owed_ticks);
        if !self.promotable() {
            // Its timer starts nothing.
            return u64::MAX - elapsed;
        }
        // `tick` campaigns once the timer reaches the timeout.
        self.election_timeout.saturating_sub(elapsed.saturating_add(1))
    }

    /// Whether a non-leader whose election timer reads `elapsed` starts an
    /// election (unless a host holds it back): the one rule `tick` and
    /// `campaigns_within` share.
    fn timer_fires(&self, elapsed: u64) -> bool {
        elapsed >= self.election_timeout && self.promotable()
    }

    /// While held, an election timer that runs out starts no election: the
    /// timer stays expired (so the node grants votes as any node that lost
    /// its leader does) and the first tick after the hold is lifted
    /// campaigns. Only a timer is held back: `Event::Campaign` and a
    /// transfer's `TimeoutNow` still campaign at once.
    pub(crate) fn hold_campaign(&mut self, hold: bool) {
        self.campaign_held = hold;
    }

    fn tick_leader(&mut self, n: u64) -> Result<()> {
        self.heartbeat_elapsed = self.heartbeat_elapsed.saturating_add(n);
        self.election_elapsed = self.election_elapsed.saturating_add(n);
        let window = self.cfg.election_timeout_min;
        if self.election_elapsed >= window {
            // One check-quorum per window that ended: the first counts the
            // activity seen so far, any later one none (nothing can have
            // been heard in between).
            let windows = self.election_elapsed / window;
            self.election_elapsed %= window;
            if self.cfg.check_quorum {
                for _ in 0..windows.min(2) {
                    if !self.quorum_active() {
                        self.because(Why::CheckQuorum);
                        self.become_follower(self.term, None);
                        return Ok(());
                    }
                    for p in &mut self.peers {
                        p.recent_active = false;
                    }
                }
            }
        }
        if self.disk_stalled() {
            // It could go on replicating but never apply or answer: let a
            // node with a working disk lead (PROTOCOL.md §5.1).
            self.because(Why::DiskStalled);
            self.become_follower(self.term, None);
            return Ok(());
        }
        self.check_transfer_timeout();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat()?;
        }
        // A commit index no append or heartbeat has carried yet goes out
        // now: followers learn it on the next append or within a tick
        // (PROTOCOL.md §4.3).
        self.notify_commit();
        Ok(())
    }

    /// Check-quorum: whether a quorum (counting this leader) was active in
    /// the window that just ended.
    fn quorum_active(&self) -> bool {
        let me = self.id;
        let peers = &self.peers;
        self.configs.effective().has_quorum(|id| id == me || progress::find(peers, id).is_some_and(|p| p.recent_active))
    }

    /// Whether this node may campaign: it votes in the configuration in
    /// effect, or — while that configuration is not yet committed — in the
    /// last committed one. The second case is a node whose own log holds an
    /// uncommitted configuration that removes it: it may still be needed to
    /// commit that configuration (only it may hold the entry), so it still
    /// campaigns, though its own vote counts only where it is a voter. A
    /// learner, a removed node and a joining node with no configuration
    /// never campaign.
    pub(super) fn promotable(&self) -> bool {
        let me = self.id;
        self.removed.is_none()
            && (self.configs.effective().is_voter(me)
                || (self.configs.effective_index() > self.commit && self.configs.at(self.commit).is_voter(me)))
    }

    /// Whether a leader is known to be alive (leader stickiness): vote
    /// requests are refused unless they come from a leadership transfer.
    ///
    /// The lease is counted from the last time this node heard from a leader
    /// of its current term, on its own tick clock — not from whether it still
    /// knows a leader: a higher-term answer that clears the known leader must
    /// not shorten a lease the old leader may be serving reads under.
    pub(super) fn in_lease(&self) -> bool {
        let heard_recently =
            self.leader_contact.is_some_and(|at| self.ticks.saturating_sub(at) < self.cfg.election_timeout_min);
        (self.cfg.check_quorum && (self.role == Role::Leader || heard_recently)) || self.vote_cooldown > 0
    }

    /// `Event::Campaign`: refused by a leader, a node that may not
    /// campaign, a node inside a leader's lease (its vote is promised to
    /// that leader; move leadership with `TransferLeadership` instead) and
    /// a node whose term is exhausted.
    pub(super) fn campaign_now(&mut self) -> Result<()> {
        self.can_campaign().map_err(Error::CannotCampaign)?;
        self.because(Why::Campaign);
        self.start_election(false)
    }

    /// Whether [`Event::Campaign`](super::Event::Campaign) would start an
    /// election now, and if not, why.
    ///
    /// ```
    /// use raft_io::{CampaignRefusal, RaftConfig, RaftNode};
    ///
    /// let voter = RaftNode::new(RaftConfig::new(1, [1, 2, 3])).unwrap();
    /// assert_eq!(voter.can_campaign(), Ok(()));
    /// let joiner = RaftNode::new(RaftConfig::joining(4)).unwrap();
    /// assert_eq!(joiner.can_campaign(), Err(CampaignRefusal::NotVoter));
    /// ```
    pub fn can_campaign(&self) -> std::result::Result<(), CampaignRefusal> {
        if self.role == Role::Leader {
            Err(CampaignRefusal::AlreadyLeader)
        } else if self.removed.is_some() {
            Err(CampaignRefusal::Removed)
        } else if !self.promotable() {
            Err(CampaignRefusal::NotVoter)
        } else if self.term >= MAX_TERM {
            Err(CampaignRefusal::TermExhausted)
        } else if self.in_lease() {
            Err(CampaignRefusal::LeaderLease)
        } else {
            Ok(())
        }
    }

    pub(super) fn on_timeout_now(&mut self, from: crate::types::NodeId) -> Result<()> {
        if self.role != Role::Leader && self.leader == Some(from) && self.promotable() {
            self.because(Why::TransferTarget);
            self.start_election(true)?;
        } else {
            self.drop_message();
        }
        Ok(())
    }

    /// Starts a pre-vote (or, for a transfer or without pre-vote, a real
    /// election).
    pub(super) fn start_election(&mut self, transfer: bool) -> Result<()> {
        if self.term >= MAX_TERM {
            // The next term would be one no node accepts (see `MAX_TERM`).
            return Ok(());
        }
        self.counters.elections += 1;
        observe!(
            tracing::Level::DEBUG,
            node = self.id,
            term = self.term + 1,
            pre_vote = self.cfg.pre_vote && !transfer,
            transfer,
            "election started"
        );
        if self.cfg.pre_vote && !transfer {
            self.role = Role::PreCandidate;
            self.leader = None;
            self.reset_election_timer();
            self.fail_forwarded_reads();
            self.request_votes(self.term + 1, true, false);
        } else {
            self.campaign(transfer);
        }
        self.tally_votes()
    }

    fn campaign(&mut self, transfer: bool) {
        self.durability.clear_win();
        self.term += 1;
        self.vote = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_election_timer();
        self.fail_forwarded_reads();
        // The new term and vote are synced at the end of this step, before
        // the requests leave.
        self.request_votes(self.term, false, transfer);
    }

    fn request_votes(&mut self, term: Term, pre: bool, transfer: bool) {
        self.votes.clear();
        self.votes.push((self.id, true));
        let req = VoteRequest { last_log_index: self.log.last_index(), last_log_term: self.last_term(), transfer };
        let body = if pre { MessageBody::PreVote(req) } else { MessageBody::Vote(req) };
        let me = self.id;
        let mut voters = std::mem::take(&mut self.scratch_ids);
        voters.clear();
        voters.extend(self.configs.effective().members().filter(|&id| id != me));
        for &to in &voters {
            if self.configs.effective().is_voter(to) {
                self.out.push(Action::Send { to, message: Message { from: me, to, term, body: body.clone() } });
            }
        }
        self.scratch_ids = voters;
    }

    pub(super) fn tally_votes(&mut self) -> Result<()> {
        let votes = &self.votes;
        let result = self
            .configs
            .effective()
            .vote_result(|id| votes.iter().find(|(v, _)| *v == id).map(|(_, granted)| *granted));
        match (result, self.role) {
            (VoteResult::Won, Role::PreCandidate) => {
                self.campaign(false);
                self.tally_votes()
            }
            (VoteResult::Won, Role::Candidate) => {
                if !self.vote_is_durable() {
                    // Asynchronous storage: a leader must be one whose vote
                    // survives a crash, or it could lead this term twice
                    // (a single voter wins before any message could wait).
                    self.durability.defer_win();
                    return Ok(());
                }
                self.because(Why::ElectionWon);
                self.become_leader()
            }
            (VoteResult::Lost, Role::PreCandidate | Role::Candidate) => {
                self.because(Why::ElectionLost);
                self.become_follower(self.term, None);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn on_vote_request(&mut self, from: NodeId, term: Term, req: VoteRequest, pre: bool) -> Result<()> {
        let up_to_date = (req.last_log_term, req.last_log_index) >= (self.last_term(), self.log.last_index())
            || mutant!(VoteWithoutLogCheck);
        let can_vote =
            self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none()) || (pre && term > self.term);
        let sticky = self.in_lease() && !req.transfer && !mutant!(NoStickiness);
        let grant = up_to_date && can_vote && !sticky && term >= self.term;
        if grant && !pre {
            self.vote = Some(from);
            self.reset_election_timer();
        }
        let reply_term = if grant { term } else { self.term };
        let body = VoteResponse { granted: grant };
        let body = if pre { MessageBody::PreVoteResponse(body) } else { MessageBody::VoteResponse(body) };
        self.send_in(from, reply_term, body);
        Ok(())
    }

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool, pre: bool) -> Result<()> {
        let expected = match (pre, self.role) {
            (true, Role::PreCandidate) => {
                if granted {
                    self.term + 1
                } else {
                    self.term
                }
            }
            (false, Role::Candidate) => self.term,
            _ => return Ok(()),
        };
        if term != expected || !self.configs.effective().is_voter(from) {
            return Ok(());
        }
        if !self.votes.iter().any(|(v, _)| *v == from) {
            self.votes.push((from, granted));
        }
        self.tally_votes()
    }

    /// Applies the term rules to an incoming message. Returns false when the
    /// message must not be processed further.
    pub(super) fn accept_term(&mut self, m: &Message) -> Result<bool> {
        if m.term > self.term {
            match &m.body {
                MessageBody::PreVote(_) => {}
                MessageBody::PreVoteResponse(r) if r.granted => {}
                MessageBody::Vote(req) if self.in_lease() && !req.transfer && !mutant!(NoStickiness) => {
                    // Leader stickiness: a live leader is known; ignore the
                    // disruptive candidate without adopting its term.
                    self.drop_message();
                    return Ok(false);
                }
                body => {
                    let leader = match body {
                        MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_) => Some(m.from),
                        _ => None,
                    };
                    self.because(Why::HigherTerm);
                    self.become_follower(m.term, leader);
                }
            }
        } else if m.term < self.term {
            match &m.body {
                MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_) => {
                    // A stale leader: tell it the current term so it steps
                    // down (a partitioned old leader learns it lost).
                    self.send(m.from, MessageBody::AppendResponse(AppendResponse::stale_term_notice()));
                }
                MessageBody::PreVote(_) => {
                    self.send(m.from, MessageBody::PreVoteResponse(VoteResponse { granted: false }));
                }
                _ => {}
            }
            self.drop_message();
            return Ok(false);
        }
        Ok(true)
    }

    /// Adopts `from` as the leader of the current term (on an append,
    /// heartbeat or snapshot chunk of this term).
    #[inline(always)]
    pub(super) fn follow(&mut self, from: NodeId) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.because(Why::LeaderFound);
        }
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        } else if self.leader != Some(from) {
            self.leader = Some(from);
            self.fail_forwarded_reads();
        }
        self.election_elapsed = 0;
        self.leader_contact = Some(self.ticks);
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            // Their answers must carry the term they were sent in, and an
            // answer of an earlier term is dropped (§2): none can come, even
            // when the same node leads the new term (it won again while this
            // one heard nothing of the election).
            self.fail_forwarded_reads();
        }
        if self.role == Role::Leader {
            self.fail_leader_reads();
            if let Some(t) = self.transfer.take() {
                self.out.push(Action::TransferEnded { to: t.to, outcome: TransferOutcome::SteppedDown });
            }
            self.peers.clear();
            self.uncommitted.clear();
        }
        if self.leader != leader {
            self.fail_forwarded_reads();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election_timer();
    }

    fn become_leader(&mut self) -> Result<()> {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.transfer = None;
        let last = self.log.last_index();
        self.peers.clear();
        let me = self.id;
        for id in self.configs.effective().members().filter(|&id| id != me) {
            self.peers.push(Progress::new(id, last + 1, self.cfg.max_inflight));
        }
        self.reads.new_term();
        // The no-op commits every entry of earlier terms once it commits.
        let noop = Entry::noop(self.term, last + 1);
        self.term_start = noop.index;
        // Room for a pipeline's worth of appends awaiting their apply.
        self.uncommitted.start_term(noop.index, noop.size(), self.cfg.max_inflight.min(64));
        self.with_scratch(|node, batch| {
            batch.push(noop);
            node.append_log(batch)
        })?;
        self.broadcast_append(true)
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = self.rng.range(self.cfg.election_timeout_min, self.cfg.election_timeout_max);
    }
}
