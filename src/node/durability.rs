//! The asynchronous storage mode (`RaftConfig::async_storage`,
//! `docs/PROTOCOL.md` §5.1): which writes are in flight, how far the log is
//! durable, and the messages that wait for it.
//!
//! Rules, as the node applies them:
//! * a dirty step submits its mutations as one write ([`RaftLog::submit`])
//!   instead of syncing; completions are cumulative and come back as
//!   `Event::Persisted`;
//! * `durable_index` is the index through which the log, *as it reads now*,
//!   is durable: a truncation or a snapshot install that drops entries caps
//!   it, and the writes still in flight, below the entries it removed;
//! * a message leaves at once only when it promises nothing about durable
//!   state: pre-votes and their answers, heartbeat answers, forwarded
//!   reads, and a leader's appends, heartbeats, snapshot chunks,
//!   `TimeoutNow` and read answers in its term once the term and vote that
//!   made it leader are durable. Every other message of a
//!   step waits for the latest write submitted by the end of that step;
//! * entries are applied, and a received snapshot restored, only once
//!   durable; a leader counts itself toward a commit only through
//!   `durable_index`;
//! * a leader whose writes make no progress for an election timeout steps
//!   down (election.rs calls [`RaftNode::disk_stalled`]).

use std::collections::VecDeque;

use super::{Action, RaftNode};
use crate::error::{CompletionRefusal, Error, Result};
use crate::log::{RaftLog, Submitted, WriteToken};
use crate::message::{Message, MessageBody};
use crate::types::{Index, NodeId, Role, Term};

/// The most messages a node keeps waiting for its writes; past it, new
/// ones are dropped (and counted) as a lossy network would drop them.
const MAX_HELD: usize = 8192;

/// One submitted write not yet reported durable.
#[derive(Clone, Copy, Debug)]
struct Write {
    seq: u64,
    /// The last index the write makes durable, capped by later truncations.
    index: Index,
    term: Term,
    vote: Option<NodeId>,
}

/// The node's view of its asynchronous writes. Laid out in the order
/// written (`repr(C)`): what a step reads whether or not a write is in
/// flight comes first (see [`RaftNode`](super::RaftNode)).
#[derive(Clone, Debug)]
#[repr(C)]
pub(super) struct Durability {
    on: bool,
    /// A candidate won before its vote was durable: it becomes leader once
    /// it is.
    win_deferred: bool,
    durable_index: Index,
    submitted: u64,
    reported: u64,
    epoch: u64,
    /// The tick of the last progress: the first write submitted while none
    /// was pending, or the latest completion.
    progress_tick: u64,
    pending: VecDeque<Write>,
    held: VecDeque<(u64, Message)>,
    /// Messages a completion released in this step: they leave with the
    /// step's actions, after the step's own are held (`hold_messages`),
    /// never held again for a later write.
    released: Vec<Message>,
    durable_vote: (Term, Option<NodeId>),
}

impl Durability {
    /// Everything recovered from the log is durable.
    pub(super) fn new(on: bool, epoch: u64, last_index: Index, term: Term, vote: Option<NodeId>) -> Self {
        Self {
            on,
            epoch,
            submitted: 0,
            reported: 0,
            pending: VecDeque::new(),
            durable_index: last_index,
            durable_vote: (term, vote),
            held: VecDeque::new(),
            released: Vec::new(),
            progress_tick: 0,
            win_deferred: false,
        }
    }

    /// A candidate won while its vote was not durable yet.
    pub(super) fn defer_win(&mut self) {
        self.win_deferred = true;
    }

    /// A new candidacy: any deferred win is void.
    pub(super) fn clear_win(&mut self) {
        self.win_deferred = false;
    }

    /// Whether writes are in flight.
    pub(super) fn writes_pending(&self) -> usize {
        self.pending.len()
    }

    /// Messages waiting for writes.
    pub(super) fn messages_held(&self) -> usize {
        self.held.len()
    }

    /// The index through which the log is durable as it reads now (the
    /// last index in the synchronous mode, where a step's end makes it so).
    #[inline]
    pub(super) fn durable_index(&self, last_index: Index) -> Index {
        if self.on { self.durable_index.min(last_index) } else { last_index }
    }

    /// A truncation from `from` removes entries that writes in flight (and
    /// earlier completed ones) may have carried.
    pub(super) fn cap(&mut self, below: Index) {
        if !self.on {
            return;
        }
        self.durable_index = self.durable_index.min(below);
        for w in &mut self.pending {
            w.index = w.index.min(below);
        }
    }
}

impl<L: RaftLog> RaftNode<L> {
    /// The end of a dirty step in the asynchronous mode: submit the step's
    /// mutations as one write.
    pub(super) fn submit_write(&mut self) -> Result<()> {
        let d = &mut self.durability;
        let token = WriteToken::new(d.epoch, d.submitted + 1);
        let outcome = self.log.submit(token)?;
        let d = &mut self.durability;
        d.submitted += 1;
        let write = Write { seq: d.submitted, index: self.log.last_index(), term: self.term, vote: self.vote };
        match outcome {
            Submitted::Durable => {
                // In order: a log that answers at once has made every
                // earlier write durable too, and what waited for those may
                // leave (no completion will come for them).
                d.pending.clear();
                d.reported = write.seq;
                d.durable_index = write.index;
                d.durable_vote = (write.term, write.vote);
                d.released.extend(d.held.drain(..).map(|(_, message)| message));
            }
            Submitted::Pending => {
                if d.pending.is_empty() {
                    d.progress_tick = self.ticks;
                }
                d.pending.push_back(write);
                self.out.push(Action::WriteSubmitted { token });
            }
        }
        Ok(())
    }

    /// After a step: moves the messages that must wait for a write out of
    /// the step's actions, in order; then adds those a completion released.
    pub(super) fn hold_messages(&mut self) {
        self.hold_step_messages();
        if self.durability.released.is_empty() {
            return;
        }
        for message in self.durability.released.drain(..) {
            self.out.push(Action::Send { to: message.to, message });
        }
    }

    fn hold_step_messages(&mut self) {
        let d = &self.durability;
        if !d.on || d.pending.is_empty() || mutant!(HoldNothing) {
            return;
        }
        let seq = d.submitted;
        let leader_free = self.role == Role::Leader && d.durable_vote == (self.term, self.vote);
        let term = self.term;
        let mut dropped = 0;
        let held = &mut self.durability.held;
        self.out.retain_mut(|a| {
            let Action::Send { message, .. } = a else { return true };
            if sends_at_once(message, leader_free, term) {
                return true;
            }
            if held.len() < MAX_HELD {
                // Moved out (the action is dropped): a placeholder without
                // a payload takes its place.
                let placeholder = Message { from: 0, to: 0, term: 0, body: MessageBody::TimeoutNow };
                held.push_back((seq, std::mem::replace(message, placeholder)));
            } else {
                dropped += 1;
            }
            false
        });
        // Written only when something was dropped: the counter sits with
        // the rarely read state, a line a step has no other reason to touch.
        if dropped > 0 {
            self.dropped_messages += dropped;
        }
    }

    /// `Event::Persisted`: validates the token, lets the log finish the
    /// write, advances the durable marks and releases what waited.
    pub(super) fn on_persisted(&mut self, token: WriteToken) -> Result<()> {
        let d = &self.durability;
        let refuse = |reason| Err(Error::BadCompletion { token, reason });
        if !d.on {
            return refuse(CompletionRefusal::NotAsync);
        }
        if token.epoch() != d.epoch {
            return refuse(CompletionRefusal::OtherEpoch);
        }
        if token.seq() > d.submitted || token.seq() == 0 {
            return refuse(CompletionRefusal::NotSubmitted);
        }
        if token.seq() <= d.reported {
            return refuse(CompletionRefusal::AlreadyReported);
        }
        self.log.persisted(token)?;
        let d = &mut self.durability;
        d.reported = token.seq();
        d.progress_tick = self.ticks;
        while d.pending.front().is_some_and(|w| w.seq <= token.seq()) {
            if let Some(w) = d.pending.pop_front() {
                d.durable_index = w.index;
                d.durable_vote = (w.term, w.vote);
            }
        }
        while d.held.front().is_some_and(|(seq, _)| *seq <= token.seq()) {
            if let Some((_, message)) = d.held.pop_front() {
                d.released.push(message);
            }
        }
        Ok(())
    }

    /// Whether the node's term and vote are durable (always, in the
    /// synchronous mode, by the end of the step that set them).
    pub(super) fn vote_is_durable(&self) -> bool {
        !self.durability.on || self.durability.durable_vote == (self.term, self.vote)
    }

    /// After a step's write was submitted (or reported): a candidate whose
    /// win waited for its vote takes office now that the vote is durable.
    /// Returns whether it did.
    pub(super) fn take_deferred_win(&mut self) -> Result<bool> {
        if !self.durability.win_deferred || self.role != Role::Candidate || !self.vote_is_durable() {
            return Ok(false);
        }
        self.durability.win_deferred = false;
        self.tally_votes()?;
        Ok(self.role == Role::Leader)
    }

    /// Whether this node's writes made no progress for an election timeout
    /// while some were pending (a leader then steps down).
    pub(super) fn disk_stalled(&self) -> bool {
        let d = &self.durability;
        d.on && !d.pending.is_empty() && self.ticks.saturating_sub(d.progress_tick) > self.cfg.election_timeout_max
    }

    /// The highest index that may be applied: the commit index, and in the
    /// asynchronous mode no further than the log is durable.
    pub(super) fn apply_limit(&self) -> Index {
        self.commit.min(self.durability.durable_index(self.log.last_index()))
    }
}

/// Whether `m` may leave before the writes of its step are durable.
fn sends_at_once(m: &Message, leader_free: bool, term: Term) -> bool {
    match m.body {
        // They promise nothing durable: a pre-vote binds no one; a
        // heartbeat answer says only that the sender has seen no higher
        // term (a restart voids a follower's stickiness anyway, and lease
        // reads wait out a restarted node's vote cooldown); a forwarded
        // read asks.
        MessageBody::PreVote(_)
        | MessageBody::PreVoteResponse(_)
        | MessageBody::HeartbeatResponse(_)
        | MessageBody::ReadIndex(_) => true,
        MessageBody::Append(_)
        | MessageBody::Heartbeat(_)
        | MessageBody::Snapshot(_)
        | MessageBody::TimeoutNow
        | MessageBody::ReadIndexResponse(_) => leader_free && m.term == term,
        _ => false,
    }
}
