//! Envelopes from other hosts: [`MultiNode::receive`] and
//! [`MultiNode::receive_all`]: each envelope admitted, its sender heard,
//! its message or quiescence notice routed to its group.

use super::host::MultiNode;
use super::{Envelope, EnvelopeBody, GroupId, MultiError};
use crate::error::Error;
use crate::log::RaftLog;
use crate::message::Message;
use crate::node::Event;
use crate::types::{Index, NodeId, Term};

/// What an envelope from another host brings a group.
pub(super) enum Held {
    /// A Raft message.
    Message(Message),
    /// A quiescence notice from `from`, the group's leader in `term`,
    /// whose commit index is `commit`.
    Notice { from: NodeId, term: Term, commit: Index },
}

impl<L: RaftLog> MultiNode<L> {
    /// Takes an envelope from another host: a group message is stepped on
    /// its group (waking it), a quiescence notice may quiesce it, and any
    /// envelope counts as a sign of life of its sender. An envelope for a
    /// group this node does not host, or addressed to another node, is
    /// dropped and counted; it is never an error.
    pub fn receive(&mut self, envelope: Envelope) {
        match self.admit(envelope) {
            Some((group, Held::Message(message))) => self.deliver(group, Event::Message(message), 1),
            Some((group, Held::Notice { from, term, commit })) => self.on_quiesce(from, group, term, commit),
            None => {}
        }
    }

    /// Takes a batch of envelopes, as a driver's turn reads them (the
    /// vector is drained, its capacity kept). The same as
    /// [`receive`](Self::receive) on each in order, except that the
    /// messages of one group are stepped together, in the order they came,
    /// as one [`Event::Messages`]: one step, one storage write and one set
    /// of actions for the group, where a leader typically finds both
    /// followers' answers in one turn. Groups are independent, so only the
    /// order within a group is kept; a quiescence notice is handled after
    /// the messages of its group received before it, and the messages
    /// after it are stepped after it. The batch is sorted once by group:
    /// `O(n log n)` however many notices it holds.
    pub fn receive_all(&mut self, envelopes: &mut Vec<Envelope>) {
        let mut held = std::mem::take(&mut self.held);
        for (seq, envelope) in envelopes.drain(..).enumerate() {
            if let Some((group, item)) = self.admit(envelope) {
                held.push((group, seq, item));
            }
        }
        self.step_held(&mut held);
        self.held = held;
    }

    /// Steps the held items group by group: each group's messages in a row
    /// as one event, a notice between them handled in its place.
    fn step_held(&mut self, held: &mut Vec<(GroupId, usize, Held)>) {
        // By group, then arrival: each group's items in their order.
        held.sort_unstable_by_key(|&(group, seq, _)| (group, seq));
        let mut run = std::mem::take(&mut self.run);
        let mut items = held.drain(..).peekable();
        while let Some((group, _, item)) = items.next() {
            match item {
                Held::Message(message) => run.push(message),
                Held::Notice { from, term, commit } => self.on_quiesce(from, group, term, commit),
            }
            // The run ends at the group's last item or before a notice.
            let ends = !matches!(items.peek(), Some((g, _, Held::Message(_))) if *g == group);
            if ends && !run.is_empty() {
                self.deliver_run(group, &mut run);
            }
        }
        self.run = run;
    }

    /// Steps `run` (a group's messages in a row) on `group`: one message as
    /// [`Event::Message`], more as one [`Event::Messages`].
    fn deliver_run(&mut self, group: GroupId, run: &mut Vec<Message>) {
        let n = run.len() as u64;
        if n > 1 {
            // Allocated once, at the run's size (`run` keeps its room).
            let mut batch = Vec::with_capacity(run.len());
            batch.append(run);
            self.deliver(group, Event::Messages(batch), n);
        } else if let Some(message) = run.pop() {
            self.deliver(group, Event::Message(message), 1);
        }
    }

    /// An envelope's common handling: dropped if misaddressed, its sender
    /// heard; a group message or a quiescence notice is returned.
    fn admit(&mut self, envelope: Envelope) -> Option<(GroupId, Held)> {
        if envelope.to != self.cfg.node || envelope.from == self.cfg.node {
            self.stats.misaddressed_dropped += 1;
            return None;
        }
        if let Some(seen) = self.peers.get_mut(&envelope.from) {
            *seen = self.ticks;
            if !self.heard.contains(&envelope.from) {
                self.heard.push(envelope.from);
            }
        }
        match envelope.body {
            EnvelopeBody::Ping => None,
            EnvelopeBody::Quiesce { group, term, commit } => {
                Some((group, Held::Notice { from: envelope.from, term, commit }))
            }
            EnvelopeBody::Raft { group, message } => Some((group, Held::Message(message))),
        }
    }

    /// Steps `event`, carrying `n` messages from outside, on `group`
    /// (waking it); dropped and counted if this node does not host it.
    fn deliver(&mut self, group: GroupId, event: Event, n: u64) {
        let Some(g) = self.groups.get(&group) else {
            self.stats.unknown_group_dropped += n;
            return;
        };
        // A message from outside is no error of ours: a refusal is the
        // node's business (it drops what it does not want). A storage
        // failure is kept for `take_halts`.
        let quiesced = g.quiet.is_quiesced();
        if quiesced && super::quiesce::is_quiet_news(&g.node, &event) {
            self.step_quiesced(group, event, n);
            return;
        }
        if quiesced {
            let woken = self.wake(group, true);
            if !self.keep_halt(woken) {
                return;
            }
        }
        let stepped = self.step_group(group, event);
        self.keep_halt(stepped);
    }

    /// Keeps the storage failure of a step no call answers for (`result`),
    /// for [`take_halts`](Self::take_halts); returns whether the step
    /// succeeded.
    pub(super) fn keep_halt(&mut self, result: Result<(), MultiError>) -> bool {
        match result {
            Ok(()) => true,
            Err(MultiError::Node { group, source: source @ Error::Storage(_) }) => {
                self.halts.push((group, source));
                false
            }
            Err(_) => false,
        }
    }

    /// Moves to `out`, in the order they happened, the storage failures of
    /// the steps no call answers for (a received message's or quiescence
    /// notice's, and the catching up of the group it wakes), each with its
    /// group. Each halted its group's node
    /// ([`RaftNode::is_halted`](crate::RaftNode::is_halted)), which ticks
    /// skip from then on: without this, only the group's next step by a
    /// caller would tell. A driver that stops on a storage failure (the
    /// many-groups runtime does) learns of it here, in the turn it
    /// happened. A halted node's later steps fail with
    /// [`Error::Halted`], which is not kept: each halt is reported once.
    ///
    /// ```
    /// use raft_io::multi::{HostConfig, MultiNode};
    /// use raft_io::{MemoryLog, RaftConfig};
    ///
    /// let mut host = MultiNode::new(HostConfig::new(1));
    /// host.create_group(7, RaftConfig::new(1, [1, 2, 3]), MemoryLog::new())?;
    /// let mut halts = Vec::new();
    /// host.take_halts(&mut halts);
    /// assert!(halts.is_empty(), "no step failed");
    /// # Ok::<(), raft_io::multi::MultiError>(())
    /// ```
    pub fn take_halts(&mut self, out: &mut Vec<(GroupId, Error)>) {
        out.append(&mut self.halts);
    }
}
