//! Quiescence and liveness (`docs/PROTOCOL.md` §10).
//!
//! Rules:
//! * a group whose leader here has been [`RaftNode::is_quiescable`] for
//!   `quiesce_after` consecutive ticks quiesces: the host stops ticking it
//!   and sends every other member a `Quiesce` notice with the leader's term
//!   and commit index;
//! * a follower quiesces on a notice from the leader it follows, in that
//!   term, when it is quiescable itself and its commit index is the
//!   notice's; otherwise it keeps ticking (and, hearing nothing, campaigns:
//!   its pre-vote wakes the group);
//! * any event or group message wakes a quiesced group. A woken leader first
//!   steps `Ticks(min(elapsed, election_timeout_min))`: its lease is then
//!   over (a quiesced leader holds no lease: the first lease read after a
//!   wake waits for a heartbeat round), one check-quorum window ends on the
//!   activity seen before it quiesced, and a heartbeat round leaves at once.
//!   A woken follower steps nothing extra: its election timer and its
//!   leader's lease resume where they stopped, so it still refuses votes
//!   from a node that cannot hear a live leader;
//! * liveness is per peer: a ping per pair of nodes per `ping_interval`,
//!   and any envelope counts (one received since the clock last moved
//!   counts as heard when it next moves, however far). A peer silent for
//!   more than `peer_timeout` ticks wakes
//!   every quiesced group here whose leader it is, with the whole elapsed
//!   time (`Ticks(elapsed)`; a follower's counted from its leader's last
//!   quiet news, at the end of the clock's next move): their election
//!   timers fire and they elect a new leader within an election timeout. A
//!   peer is declared down once per silence: its groups cannot quiesce here
//!   again until it is heard;
//! * a leader's node removed from the host (`remove_group`) first hands
//!   the group to an up-to-date voter (`TimeoutNow`): its host may keep
//!   pinging, so nothing else would wake quiesced followers.
//!
//! [`RaftNode::is_quiescable`]: crate::RaftNode::is_quiescable

use super::host::{HostAction, MultiNode};
use super::{Envelope, EnvelopeBody, GroupId, MultiError};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::node::{Event, RaftNode};
use crate::types::{Index, NodeId, Role, Term};

/// A group's quiescence state on this host.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Quiet {
    /// The tick at which it quiesced, while it is.
    since: Option<u64>,
    /// The tick since which its leader here has been quiescable.
    idle_since: Option<u64>,
}

impl Quiet {
    pub(super) fn is_quiesced(&self) -> bool {
        self.since.is_some()
    }
}

impl<L: RaftLog> MultiNode<L> {
    /// After a tick of `group`: a leader idle long enough quiesces it.
    pub(super) fn maybe_quiesce(&mut self, group: GroupId) {
        if !self.cfg.quiescence {
            return;
        }
        let (ticks, after, me) = (self.ticks, self.cfg.quiesce_after, self.cfg.node);
        let Some(g) = self.groups.get_mut(&group) else { return };
        if g.node.role() != Role::Leader || !g.node.is_quiescable() {
            g.quiet.idle_since = None;
            return;
        }
        let since = *g.quiet.idle_since.get_or_insert(ticks);
        if ticks.saturating_sub(since) < after {
            return;
        }
        g.quiet = Quiet { since: Some(ticks), idle_since: None };
        g.node.release_buffers();
        let (term, commit) = (g.node.term(), g.node.commit_index());
        self.awake.remove(&group);
        let members: Vec<NodeId> = g.node.membership().members().filter(|&id| id != me).collect();
        self.stats.quiesces += 1;
        self.stats.quiesced += 1;
        for to in members {
            self.out.push(super::HostAction::Send(Envelope {
                from: me,
                to,
                body: EnvelopeBody::Quiesce { group, term, commit },
            }));
        }
    }

    /// A leader's quiescence notice.
    pub(super) fn on_quiesce(&mut self, from: NodeId, group: GroupId, term: Term, commit: Index) {
        if !self.cfg.quiescence {
            return;
        }
        let ticks = self.ticks;
        let Some(g) = self.groups.get_mut(&group) else {
            self.stats.unknown_group_dropped += 1;
            return;
        };
        let n = &g.node;
        let agrees = n.role() == Role::Follower
            && n.term() == term
            && n.leader() == Some(from)
            && n.commit_index() == commit
            && n.is_quiescable();
        if agrees && !g.quiet.is_quiesced() {
            g.quiet = Quiet { since: Some(ticks), idle_since: None };
            g.node.release_buffers();
            self.awake.remove(&group);
            self.stats.quiesces += 1;
            self.stats.quiesced += 1;
        }
    }

    /// Steps `n` group messages that are quiet news (`is_quiet_news`) on a
    /// quiesced group without waking it first; the group wakes after all
    /// if they changed anything: its role, term or leader, whether it is
    /// quiescable, or (a leader) it has something to send.
    pub(super) fn step_quiesced(&mut self, group: GroupId, event: Event, n: u64) {
        let Some(g) = self.groups.get(&group) else { return };
        let node = &g.node;
        let before = (node.role(), node.term(), node.leader());
        // Before the mark: settling rewrites the queue.
        self.settle_before(group, &event);
        let mark = self.out.len();
        let stepped = self.step_group(group, event);
        self.keep_halt(stepped);
        let Some(g) = self.groups.get(&group) else { return };
        let node = &g.node;
        let sent = self.out[mark..].iter().any(|a| matches!(a, HostAction::Send(_)));
        let now = (node.role(), node.term(), node.leader());
        let quiet = node.is_quiescable() && now == before && !(before.0 == Role::Leader && sent);
        if quiet {
            self.stats.quiet_messages += n;
            if now.0 == Role::Follower && self.leader_heard.last() != Some(&group) {
                // Its leader's word reset its election timer: a wake by
                // that leader's silence counts the quiet time from here.
                self.leader_heard.push(group);
            }
        } else {
            let woken = self.wake(group, true);
            self.keep_halt(woken);
        }
    }

    /// Wakes `group` if it is quiesced (see the module rules).
    pub(super) fn wake(&mut self, group: GroupId, _by_message: bool) -> Result<(), MultiError> {
        let ticks = self.ticks;
        let Some(g) = self.groups.get_mut(&group) else { return Err(MultiError::UnknownGroup(group)) };
        let Some(since) = g.quiet.since.take() else { return Ok(()) };
        self.awake.insert(group);
        self.stats.wakes += 1;
        self.stats.quiesced = self.stats.quiesced.saturating_sub(1);
        let elapsed = ticks.saturating_sub(since);
        if g.node.role() == Role::Leader && elapsed > 0 {
            let lease_end = g.node.config().get_election_timeout().0;
            self.step_group(group, Event::Ticks(elapsed.min(lease_end)))?;
        }
        Ok(())
    }

    /// Before `group`'s node leaves the host: a leader hands the group to
    /// an up-to-date voter, the most recently heard of those not declared
    /// down, with a `TimeoutNow` (its followers may be quiesced and its
    /// host keep pinging them: nothing else would wake them before a
    /// request). A leader with no such voter sends nothing.
    pub(super) fn hand_off(&mut self, group: GroupId) {
        let me = self.cfg.node;
        let Self { groups, peers, lost, out, .. } = self;
        let Some(g) = groups.get_mut(&group) else { return };
        let heard = |id: NodeId| (!lost.contains(&id)).then(|| peers.get(&id).copied().unwrap_or(0));
        if let Some(message) = g.node.leaving_notice(heard) {
            let to = message.to;
            out.push(HostAction::Send(Envelope { from: me, to, body: EnvelopeBody::Raft { group, message } }));
        }
    }

    /// After the clock moved on from `before`: one round of pings if a
    /// ping fell due since, and wakes the quiesced groups led by a peer
    /// gone silent.
    pub(super) fn liveness(&mut self, before: u64) -> Result<(), MultiError> {
        let (ticks, me) = (self.ticks, self.cfg.node);
        // A peer heard since the clock last moved was heard at the end of
        // the gap, not at its start: envelopes received in a slow turn
        // (before the turn's ticks are reported) are recent news.
        for id in self.heard.drain(..) {
            if let Some(seen) = self.peers.get_mut(&id) {
                *seen = ticks;
            }
            self.lost.remove(&id);
        }
        // Likewise a quiesced follower's last word from its leader: its
        // quiet time (what a wake by that leader's silence steps) starts
        // at the end of the gap, not when it quiesced.
        for group in self.leader_heard.drain(..) {
            if let Some(since) = self.groups.get_mut(&group).and_then(|g| g.quiet.since.as_mut()) {
                *since = ticks;
            }
        }
        if ticks / self.cfg.ping_interval != before / self.cfg.ping_interval {
            for &to in self.peers.keys() {
                self.out.push(super::HostAction::Send(Envelope { from: me, to, body: EnvelopeBody::Ping }));
            }
        }
        let timeout = self.cfg.peer_timeout;
        let lost = &self.lost;
        let silent: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|&(id, &seen)| ticks.saturating_sub(seen) > timeout && !lost.contains(id))
            .map(|(&id, _)| id)
            .collect();
        if silent.is_empty() {
            return Ok(());
        }
        // Newly silent: its quiesced groups wake now, once. None of its
        // groups can quiesce here again before it is heard (a notice comes
        // from the leader), so a silence that lasts needs no second scan.
        self.stats.peers_lost += silent.len() as u64;
        self.lost.extend(silent.iter().copied());
        let orphaned: Vec<(GroupId, u64)> = self
            .groups
            .iter()
            .filter_map(|(&id, g)| {
                let since = g.quiet.since?;
                let leader = g.node.leader()?;
                silent.contains(&leader).then_some((id, ticks.saturating_sub(since)))
            })
            .collect();
        // Every one wakes, whatever a step of another returns.
        let mut first = Ok(());
        for (group, elapsed) in orphaned {
            if let Some(g) = self.groups.get_mut(&group) {
                g.quiet.since = None;
            }
            self.awake.insert(group);
            self.stats.quiesced = self.stats.quiesced.saturating_sub(1);
            self.stats.wakes += 1;
            self.stats.woken_by_peer_loss += 1;
            if elapsed > 0 {
                first = first.and(self.tick_group(group, elapsed));
            }
        }
        first
    }
}

/// Whether `event` holds only messages a quiesced group can take without
/// waking: for a leader, answers to its appends and heartbeats in its term
/// (sent before the followers quiesced, arriving after); for a follower, a
/// heartbeat or an empty append from its leader in its term (sent before
/// the leader quiesced). Anything else wakes the group first.
pub(super) fn is_quiet_news<L: RaftLog>(node: &RaftNode<L>, event: &Event) -> bool {
    let quiet = |m: &Message| {
        m.term == node.term()
            && match (&m.body, node.role()) {
                (MessageBody::AppendResponse(_) | MessageBody::HeartbeatResponse(_), Role::Leader) => true,
                (MessageBody::Heartbeat(_), Role::Follower) => node.leader() == Some(m.from),
                (MessageBody::Append(a), Role::Follower) => a.entries.is_empty() && node.leader() == Some(m.from),
                _ => false,
            }
    };
    match event {
        Event::Message(m) => quiet(m),
        Event::Messages(ms) => ms.iter().all(quiet),
        _ => false,
    }
}
