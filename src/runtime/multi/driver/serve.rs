//! The driver's requests: the turn's queued requests taken and served
//! (proposals batched per group, a small batch held back while its
//! group's round is in flight), membership changes and transfers.

use std::time::Instant;

use bytes::Bytes;

use super::Driver;
use crate::log::RaftLog;
use crate::membership::{Membership, MembershipChange};
use crate::multi::GroupId;
use crate::node::{Event, ReadKind};
use crate::runtime::multi::handle::MultiRequest;
use crate::runtime::multi::{GroupTransport, group::Hosted};
use crate::runtime::requests::Reply;
use crate::runtime::{RuntimeError, StateMachine, stats_add as add};
use crate::types::{ENTRY_OVERHEAD, NodeId};

impl<S: StateMachine, T: GroupTransport> Driver<S, T> {
    /// Takes queued requests (no more than the room left under
    /// `max_pending`), then every queued administration request (outside
    /// that bound: a driver full of requests waiting on a group must still
    /// take the removal that answers them): proposals are batched per
    /// group, one step each, unless a small batch waits for its group's
    /// round in flight.
    pub(super) fn serve_requests(&mut self) -> bool {
        let mut room = self.options.common.max_pending.saturating_sub(self.held());
        if room == 0 {
            // The bound may count requests answered since: count exactly.
            self.count_held();
            room = self.options.common.max_pending.saturating_sub(self.held());
        }
        let mut incoming = std::mem::take(&mut self.incoming);
        if room > 0 {
            self.shared.submissions.drain(&mut incoming, room);
            self.taken_since_tick += incoming.len();
        }
        // After the requests submitted with them: each is answered in this
        // turn, so none is held.
        self.shared.admin.drain(&mut incoming, usize::MAX);
        let busy = !incoming.is_empty();
        // The groups given a proposal, stepped in group order.
        let mut batched = std::mem::take(&mut self.batched);
        batched.clear();
        for request in incoming.drain(..) {
            if let Some(group) = request.group() {
                self.holding.insert(group);
            }
            match request {
                MultiRequest::Propose { group, command, reply, deadline } => {
                    if self.add_proposal(group, command, reply, deadline) {
                        batched.push(group);
                    }
                }
                MultiRequest::Read { group, job, deadline } => {
                    let Some(hosted) = self.groups.get_mut(&group) else {
                        job(Err(RuntimeError::UnknownGroup(group)));
                        continue;
                    };
                    let id = hosted.pending.add_read(job, deadline);
                    let kind = self.read_kind(group);
                    if let Err(e) = self.try_step(group, Event::Read { id, kind }) {
                        if let Some(hosted) = self.groups.get_mut(&group) {
                            hosted.pending.finish_read(id, Err(e));
                        }
                    }
                }
                MultiRequest::Change { group, change, reply, deadline } => {
                    self.change_membership(group, change, reply, deadline)
                }
                MultiRequest::Transfer { group, to, reply, deadline } => self.transfer(group, to, reply, deadline),
                MultiRequest::Status { group, reply } => {
                    reply.send(self.host.group(group).map(|n| n.status()).ok_or(RuntimeError::UnknownGroup(group)))
                }
                MultiRequest::Metrics { group, reply } => {
                    reply.send(self.host.group(group).map(|n| n.metrics()).ok_or(RuntimeError::UnknownGroup(group)))
                }
                MultiRequest::Backup { group, reply } => reply.send(match self.host.group(group) {
                    Some(node) => crate::recovery::take_backup(node.log())
                        .map_err(|e| RuntimeError::Backup(std::sync::Arc::new(e))),
                    None => Err(RuntimeError::UnknownGroup(group)),
                }),
                MultiRequest::Create { group, config, reply } => {
                    let sm = (self.factory)(group);
                    reply.send(self.open_group(group, *config, sm));
                }
                MultiRequest::Remove { group, reply } => reply.send(self.remove_group(group)),
                MultiRequest::Groups { reply } => reply.send(Ok(self.host.group_ids().collect())),
            }
        }
        self.incoming = incoming;
        // Waiting batches whose group was stepped, or whose wait ran out,
        // are looked at again with the new ones.
        let groups = &self.groups;
        let waits_since = |since, g| groups.get(&g).is_some_and(|h: &Hosted<S>| h.waiting_since == Some(since));
        self.waiting.due(self.now, self.options.coalesce_wait, &mut batched, waits_since);
        batched.sort_unstable();
        batched.dedup();
        for &group in &batched {
            if !self.waits(group) {
                self.propose_batch(group);
            }
        }
        self.batched = batched;
        busy
    }

    /// Whether `group`'s batch waits for the round its leader has in
    /// flight (entries appended and not yet committed): only while it holds
    /// fewer than `coalesce_below` proposals, for at most `coalesce_wait`
    /// since it began waiting, and until one of its requests reaches its
    /// deadline. The proposals that arrive meanwhile join it, and the
    /// group's next round carries them all: one append and one answer per
    /// follower instead of one per turn.
    fn waits(&mut self, group: GroupId) -> bool {
        let (Some(node), Some(hosted)) = (self.host.group(group), self.groups.get_mut(&group)) else { return false };
        let common = &self.options.common;
        let small = !hosted.batch.is_empty()
            && hosted.batch.len() < self.options.coalesce_below.min(common.max_batch)
            && hosted.batch_bytes < common.max_batch_bytes / 2
            && !self.options.coalesce_wait.is_zero();
        let in_flight = node.is_leader() && node.commit_index() < node.last_index();
        if !(small && in_flight) {
            if hosted.waiting_since.take().is_some() {
                self.waiting.stop(group);
            }
            return false;
        }
        // A request whose deadline came is stepped now (to be answered
        // `Timeout` at the next tick, as any proposal past its deadline).
        let now = self.now;
        if hosted.pending.batch_replies.iter().any(|(_, deadline)| deadline.is_some_and(|d| d <= now)) {
            return false;
        }
        match hosted.waiting_since {
            Some(since) => self.now.saturating_duration_since(since) < self.options.coalesce_wait,
            None => {
                hosted.waiting_since = Some(self.now);
                let groups = &self.groups;
                let waits_since = |since, g| groups.get(&g).is_some_and(|h: &Hosted<S>| h.waiting_since == Some(since));
                self.waiting.start(group, self.now, waits_since);
                true
            }
        }
    }

    /// Adds a proposal to its group's batch (stepping the batch first when
    /// it is full); returns whether the batch holds something to step.
    fn add_proposal(
        &mut self,
        group: GroupId,
        command: Bytes,
        reply: Reply<S::Output>,
        deadline: Option<Instant>,
    ) -> bool {
        let (Some(node), Some(hosted)) = (self.host.group(group), self.groups.get(&group)) else {
            reply.send(Err(RuntimeError::UnknownGroup(group)));
            return false;
        };
        // A bad command is refused alone: a batch is refused whole if any
        // of its commands is.
        if let Err(e) = node.check_command(&command) {
            reply.send(Err(RuntimeError::from_node(e)));
            return !hosted.batch.is_empty();
        }
        let step_max = usize::try_from(node.log().max_step_bytes()).unwrap_or(usize::MAX);
        let limit = self.options.common.max_batch_bytes.min(step_max);
        let size = command.len().saturating_add(ENTRY_OVERHEAD as usize);
        let full = !hosted.batch.is_empty()
            && (hosted.batch.len() >= self.options.common.max_batch || hosted.batch_bytes.saturating_add(size) > limit);
        if full {
            self.propose_batch(group);
        }
        let Some(hosted) = self.groups.get_mut(&group) else {
            reply.send(Err(RuntimeError::UnknownGroup(group)));
            return false;
        };
        hosted.batch_bytes = hosted.batch_bytes.saturating_add(size);
        hosted.batch.push(command);
        hosted.pending.batch_replies.push((reply, deadline));
        true
    }

    fn propose_batch(&mut self, group: GroupId) {
        let Some(hosted) = self.groups.get_mut(&group) else { return };
        let commands = std::mem::take(&mut hosted.batch);
        hosted.batch_bytes = 0;
        if hosted.waiting_since.take().is_some() {
            self.waiting.stop(group);
        }
        if commands.is_empty() {
            return;
        }
        let n = commands.len() as u64;
        let result = self.try_step(group, Event::ProposeBatch(commands));
        if result.is_ok() {
            add(&self.shared.counters.proposals, n);
            add(&self.shared.counters.batches, 1);
        }
        if let Some(hosted) = self.groups.get_mut(&group) {
            hosted.pending.batch_done(result.err());
        }
    }

    pub(super) fn change_membership(
        &mut self,
        group: GroupId,
        change: MembershipChange,
        reply: Reply<Membership>,
        deadline: Option<Instant>,
    ) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            reply.send(Err(RuntimeError::UnknownGroup(group)));
            return;
        };
        // Held from here, first try or a deferred one retried (its group
        // may have been let go while the change waited outside `pending`).
        self.holding.insert(group);
        if !hosted.pending.begin_change(reply, deadline) {
            return;
        }
        let result = self.try_step(group, Event::ChangeMembership(change.clone()));
        let (Some(hosted), Some(node)) = (self.groups.get_mut(&group), self.host.group(group)) else { return };
        match result {
            Err(error) => hosted.pending.change_failed(change, error),
            Ok(()) => hosted.pending.change_stepped(node.membership()),
        }
    }

    fn transfer(&mut self, group: GroupId, to: NodeId, reply: Reply<()>, deadline: Option<Instant>) {
        // Proposals that came before the transfer go first, whether they
        // wait for a round or came in this turn (once it is stepped, the
        // leader refuses proposals).
        if self.groups.get(&group).is_some_and(|h| !h.batch.is_empty()) {
            self.propose_batch(group);
        }
        let result = self.try_step(group, Event::TransferLeadership(to));
        let (Some(hosted), Some(node)) = (self.groups.get_mut(&group), self.host.group(group)) else {
            reply.send(Err(result.err().unwrap_or(RuntimeError::UnknownGroup(group))));
            return;
        };
        match result {
            Err(e) => reply.send(Err(e)),
            Ok(()) if to == node.id() || node.leader() == Some(to) => reply.send(Ok(())),
            Ok(()) => hosted.pending.add_transfer(to, reply, deadline),
        }
    }

    /// How a read of `group` is confirmed: by the lease where the runtime
    /// reads with leases and the group's configuration serves them,
    /// ReadIndex otherwise.
    fn read_kind(&self, group: GroupId) -> ReadKind {
        let lease = self.options.read_kind == ReadKind::Lease
            && self.host.group(group).is_some_and(|n| n.config().get_lease_reads());
        if lease { ReadKind::Lease } else { ReadKind::Index }
    }
}
