//! What clients do to a simulated cluster: proposals, tracked writes,
//! reads with queries, membership changes, transfers and snapshots.

use bytes::Bytes;

use super::cluster::Cluster;
use super::{StateMachine, WriteOutcome, WriteTicket};
use crate::error::Result;
use crate::log::RaftLog;
use crate::membership::MembershipChange;
use crate::node::{Event, ReadKind};
use crate::types::{Index, NodeId, ReadId};

impl<S: StateMachine> Cluster<S> {
    /// Proposes `command` on node `id`.
    pub fn propose(&mut self, id: NodeId, command: Bytes) -> Result<()> {
        self.step_node(id, Event::Propose(command))
    }

    /// Proposes a batch on node `id` (one append, one sync).
    pub fn propose_batch(&mut self, id: NodeId, commands: Vec<Bytes>) -> Result<()> {
        self.step_node(id, Event::ProposeBatch(commands))
    }

    /// Issues a read on node `id`; its outcome appears in
    /// [`read_outcomes`](Self::read_outcomes). A node that is down (or not
    /// in the cluster) takes none: [`Error::NotRunning`](crate::Error::NotRunning).
    /// A paused node keeps it until it runs again.
    pub fn read(&mut self, id: NodeId, read: ReadId, kind: ReadKind) -> Result<()> {
        if !self.is_up(id) {
            return Err(crate::error::Error::NotRunning(id));
        }
        self.step_node(id, Event::Read { id: read, kind })
    }

    /// Issues a read on node `id` whose answer is `query` asked of the node's
    /// state machine at the moment the read is released (see
    /// [`StateMachine::query`]); it appears in
    /// [`read_outcomes`](Self::read_outcomes) with its `value`.
    pub fn read_query(&mut self, id: NodeId, read: ReadId, kind: ReadKind, query: Bytes) -> Result<()> {
        self.queries.push((id, read, query));
        let result = self.read(id, read, kind);
        if result.is_err() {
            self.take_query(id, read);
        }
        result
    }

    pub(super) fn take_query(&mut self, node: NodeId, read: ReadId) -> Option<Bytes> {
        let pos = self.queries.iter().position(|(n, r, _)| *n == node && *r == read)?;
        Some(self.queries.swap_remove(pos).2)
    }

    /// Proposes one command on node `id` and tracks it: its outcome appears in
    /// [`write_outcomes`](Self::write_outcomes) once node `id` applies that
    /// index (committed if the entry there is ours, lost otherwise). A
    /// ticket that never resolves (the node crashed or the index was covered
    /// by a snapshot) has an unknown outcome.
    ///
    /// What the state machine's [`apply`](StateMachine::apply) returned for
    /// a committed write — a result or a refusal, as a real client hears it
    /// — is kept for [`write_output`](Self::write_output) (from the first
    /// node that applied it; State Machine Safety makes every node's the
    /// same).
    pub fn submit(&mut self, id: NodeId, command: Bytes) -> Result<WriteTicket> {
        let tickets = self.submit_event(id, Event::Propose(command))?;
        // One command, one ticket (none: the node died inside the step).
        tickets.first().copied().ok_or(crate::error::Error::Halted)
    }

    /// Like [`submit`](Self::submit) for a batch proposed as one step (one
    /// append, one sync): a ticket for each command, in order. An empty
    /// batch proposes nothing.
    ///
    /// ```
    /// use raft_io::sim::{Cluster, SimConfig};
    ///
    /// let mut cluster = Cluster::new(SimConfig::new(3).seed(1));
    /// let leader = cluster.elect(1_000).unwrap();
    /// let tickets = cluster.submit_batch(leader, vec!["a".into(), "b".into(), "c".into()]).unwrap();
    /// assert_eq!(tickets.len(), 3);
    /// assert_eq!(tickets[2].index, tickets[0].index + 2);
    /// cluster.run_ticks(20);
    /// let committed = cluster.write_outcomes().iter().filter(|o| o.committed).count();
    /// assert_eq!(committed, 3);
    /// assert!(cluster.submit_batch(leader, Vec::new()).unwrap().is_empty());
    /// ```
    pub fn submit_batch(&mut self, id: NodeId, commands: Vec<Bytes>) -> Result<Vec<WriteTicket>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        self.submit_event(id, Event::ProposeBatch(commands))
    }

    /// Steps a proposal and tracks each command it appended.
    fn submit_event(&mut self, id: NodeId, event: Event) -> Result<Vec<WriteTicket>> {
        // A paused or down node takes no request: it is lost, and the
        // client knows nothing was appended.
        if !self.is_running(id) {
            return Err(crate::error::Error::NotRunning(id));
        }
        self.last_proposed = None;
        self.capture = Some(Vec::new());
        let stepped = self.step_node(id, event);
        let mut captured = self.capture.take().unwrap_or_default();
        stepped?;
        // The indexes come from the node (`last_proposal`): the same step
        // may append more after the commands (a configuration the leader
        // adds itself).
        let Some(crate::Proposal { first, last, term }) = self.last_proposed.take() else {
            // The node died inside the step (a crash in durable mode).
            return Err(crate::error::Error::Halted);
        };
        let applied = self.node(id).map_or(0, |n| n.last_applied());
        let mut tickets = Vec::new();
        for index in first..=last {
            self.next_ticket += 1;
            let ticket = WriteTicket { id: self.next_ticket, node: id, index, term };
            // A single-node cluster may already have applied it.
            if applied >= index {
                if let Some(k) = captured.iter().position(|&(i, t, _)| (i, t) == (index, term)) {
                    self.outputs.insert(ticket.id, captured.swap_remove(k).2);
                }
                self.writes.push(WriteOutcome { ticket, committed: true, at: self.now });
            } else {
                self.tickets.push(ticket);
            }
            tickets.push(ticket);
        }
        Ok(tickets)
    }

    /// A node applied the command at `index` in `term`: remember it for the
    /// tickets (the first apply of an index is the one every node applies).
    pub(super) fn resolve_tickets(&mut self, index: Index, term: crate::types::Term) {
        if !self.tickets.is_empty() || !self.applied_terms.is_empty() {
            self.applied_terms.entry(index).or_insert(term);
        }
    }

    /// After a step of `node` (which has applied through `applied`): a
    /// ticket resolves as soon as any node has applied its index — committed
    /// if the command applied there has the ticket's term, lost otherwise —
    /// and, if no command was ever applied there but `node` applied past it,
    /// the entry there is a no-op or a configuration: the write was lost.
    /// (Applied anywhere means committed, so a read invoked after that time
    /// must see it: the earliest apply is a sound completion time.)
    pub(super) fn settle_tickets(&mut self, node: NodeId, applied: Index) {
        if self.tickets.is_empty() {
            return;
        }
        let now = self.now;
        let (writes, applied_terms) = (&mut self.writes, &self.applied_terms);
        self.tickets.retain(|t| {
            let committed = match applied_terms.get(&t.index) {
                Some(&term) => term == t.term,
                None if t.node == node && t.index <= applied => false,
                None => return true,
            };
            writes.push(WriteOutcome { ticket: *t, committed, at: now });
            false
        });
    }

    /// Keeps the output of the command applied at `index` in `term` if a
    /// tracked write waits for it (the first apply wins).
    pub(super) fn keep_output(&mut self, index: Index, term: crate::types::Term, output: S::Output) {
        if let Some(t) = self.tickets.iter().find(|t| t.index == index && t.term == term) {
            self.outputs.entry(t.id).or_insert(output);
        } else if let Some(captured) = self.capture.as_mut() {
            captured.push((index, term, output));
        }
    }

    /// What applying the committed write of ticket `ticket` returned (see
    /// [`submit`](Self::submit)); `None` until it committed, or if it was
    /// lost.
    pub fn write_output(&self, ticket: u64) -> Option<&S::Output> {
        self.outputs.get(&ticket)
    }

    /// Takes the output of ticket `ticket` (see
    /// [`write_output`](Self::write_output)), freeing its memory.
    pub fn take_write_output(&mut self, ticket: u64) -> Option<S::Output> {
        self.outputs.remove(&ticket)
    }

    /// Outcomes of writes submitted with [`submit`](Self::submit), in order.
    pub fn write_outcomes(&self) -> &[WriteOutcome] {
        &self.writes
    }

    /// Writes submitted whose outcome is still unknown.
    pub fn pending_writes(&self) -> &[WriteTicket] {
        &self.tickets
    }

    /// Asks node `id` (the leader) to change the configuration.
    pub fn change_membership(&mut self, id: NodeId, change: MembershipChange) -> Result<()> {
        self.note(format!("n{id}: change membership {change:?}"));
        self.step_node(id, Event::ChangeMembership(change))
    }

    /// Asks node `id` (the leader) to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<()> {
        self.note(format!("n{id}: transfer leadership to n{to}"));
        self.step_node(id, Event::TransferLeadership(to))
    }

    /// Has node `id` snapshot its state machine now (if it applied anything
    /// since its last snapshot).
    pub fn snapshot(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(node) = self.nodes[i].node.as_ref() else { return };
        let applied = node.last_applied();
        if applied > node.log().snapshot_meta().index {
            self.stats.snapshots += 1;
            self.note(format!("n{id}: snapshot at {applied}"));
            let data = self.nodes[i].sm.snapshot();
            let _ = self.step_node(id, Event::Snapshot { index: applied, data });
        }
    }
}
