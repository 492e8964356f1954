//! [`MultiHandle`]: the cloneable front of a running many-groups node, and
//! [`Ticket`], a proposal to wait for later.

use crate::runtime::life::DriverLife;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::handle::ReadJob;
use super::super::requests::{Reply, Signal, Submissions, Waiter, oneshot};
use super::super::{RuntimeError, StateMachine, StopReason};
use super::completions::Completions;
use super::turn_times::{TurnClock, TurnTimes};
use crate::config::RaftConfig;
use crate::error::Error;
use crate::log::shared::SharedWalStats;
use crate::membership::{Membership, MembershipChange};
use crate::multi::{GroupId, HostStats};
use crate::node::{NodeMetrics, Status};
use crate::sync::lock;
use crate::types::NodeId;

/// A client request on its way to the driver, addressed to a group.
pub(crate) enum MultiRequest<S: StateMachine> {
    Propose { group: GroupId, command: Bytes, reply: Reply<S::Output>, deadline: Option<Instant> },
    Read { group: GroupId, job: ReadJob<S>, deadline: Option<Instant> },
    Change { group: GroupId, change: MembershipChange, reply: Reply<Membership>, deadline: Option<Instant> },
    Transfer { group: GroupId, to: NodeId, reply: Reply<()>, deadline: Option<Instant> },
    Status { group: GroupId, reply: Reply<Status> },
    Metrics { group: GroupId, reply: Reply<NodeMetrics> },
    Backup { group: GroupId, reply: Reply<crate::recovery::Backup> },
    Create { group: GroupId, config: Box<RaftConfig>, reply: Reply<()> },
    Remove { group: GroupId, reply: Reply<()> },
    Groups { reply: Reply<Vec<GroupId>> },
}

impl<S: StateMachine> MultiRequest<S> {
    /// Whether the driver answers the request in the turn it takes it:
    /// group administration (creation, removal, the list of groups) and
    /// inspection (status, metrics, backup). Such a request holds nothing
    /// in the driver, so it does not count against
    /// [`max_pending`](super::MultiRuntime::max_pending) and is not held
    /// back by it: it goes through a queue of its own
    /// ([`MAX_QUEUED_ADMIN`]), which the driver empties every turn. A node
    /// whose requests wait on a group that lost its quorum can thus still
    /// remove that group, which answers them.
    pub(crate) fn is_admin(&self) -> bool {
        self.group().is_none()
    }

    /// The group a request that may wait in the driver is for.
    pub(crate) fn group(&self) -> Option<GroupId> {
        match self {
            Self::Propose { group, .. }
            | Self::Read { group, .. }
            | Self::Change { group, .. }
            | Self::Transfer { group, .. } => Some(*group),
            Self::Status { .. }
            | Self::Metrics { .. }
            | Self::Backup { .. }
            | Self::Create { .. }
            | Self::Remove { .. }
            | Self::Groups { .. } => None,
        }
    }
}

/// What a [`MultiRuntime`](super::MultiRuntime) did since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiStats {
    /// Turns of the driver loop.
    pub turns: u64,
    /// Host ticks stepped.
    pub ticks: u64,
    /// Envelopes received and handed to the host.
    pub envelopes_in: u64,
    /// Envelopes handed to the transport.
    pub envelopes_out: u64,
    /// `Event::Persisted` reports stepped (one per group and flush at
    /// most).
    pub persisted: u64,
    /// Proposals the groups accepted.
    pub proposals: u64,
    /// Batch steps those proposals went in (`proposals / batches` is the
    /// mean batch; see
    /// [`MultiRuntime::coalesce_proposals`](super::MultiRuntime::coalesce_proposals)).
    pub batches: u64,
    /// Commands applied to the state machines.
    pub applied: u64,
    /// Reads served.
    pub reads: u64,
    /// Snapshots taken at a group's request.
    pub snapshots: u64,
    /// Snapshot chunks held back by the per-node bound on snapshot streams
    /// ([`MultiRuntime::max_snapshot_streams`](super::MultiRuntime::max_snapshot_streams)).
    pub snapshot_chunks_held_back: u64,
    /// Snapshot chunks sent (let through by that bound).
    pub snapshot_chunks_sent: u64,
    /// Snapshot chunks received and dropped by the per-node bound on the
    /// snapshot streams it receives
    /// ([`MultiRuntime::max_snapshot_receives`](super::MultiRuntime::max_snapshot_receives)).
    pub snapshot_chunks_refused: u64,
    /// Snapshot chunks received and handed to the groups (let through by
    /// that bound).
    pub snapshot_chunks_received: u64,
    /// Groups hosted now.
    pub groups: u64,
    /// Requests the driver holds (proposals in flight included), counted
    /// at each tick, with those it took since the last one counted as held
    /// until the next.
    pub held_requests: u64,
    /// Requests submitted and not yet taken by the driver (a gauge, read
    /// when the stats are).
    pub queued_requests: u64,
    /// The shared WAL's counters: `syncs` is at most `turns` (one flush,
    /// hence at most one fsync, per turn; group removals flush too).
    pub wal: SharedWalStats,
    /// The group host's counters as of the last turn: among them how many
    /// groups are quiesced now, and how often groups quiesced and woke.
    pub host: HostStats,
    /// The driver's wall time by phase of its turns.
    pub turn_times: TurnTimes,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) turns: AtomicU64,
    pub(crate) turn_times: TurnClock,
    pub(crate) ticks: AtomicU64,
    pub(crate) envelopes_in: AtomicU64,
    pub(crate) envelopes_out: AtomicU64,
    pub(crate) persisted: AtomicU64,
    pub(crate) proposals: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) held_back: AtomicU64,
    pub(crate) chunks_out: AtomicU64,
    pub(crate) held_back_in: AtomicU64,
    pub(crate) chunks_in: AtomicU64,
    pub(crate) groups: AtomicU64,
}

/// Most administration requests ([`MultiRequest::is_admin`]) queued at
/// once; more are refused with [`RuntimeError::Busy`]. Each is answered in
/// the turn the driver takes it, and the driver takes them all every turn,
/// so this bounds what one turn serves of them (its callers mostly wait for
/// their answer: each holds one).
pub(crate) const MAX_QUEUED_ADMIN: usize = 1024;

/// State shared by every handle and the driver thread.
pub(crate) struct MultiShared<S: StateMachine> {
    pub(crate) id: NodeId,
    /// Requests that may wait in the driver (proposals, reads, changes,
    /// transfers), bounded by `max_pending` ...
    pub(crate) submissions: Submissions<MultiRequest<S>>,
    /// ... and administration, answered in the turn it is taken: a queue
    /// of its own, so that a driver full of waiting requests still takes
    /// it ([`MultiRequest::is_admin`]).
    pub(crate) admin: Submissions<MultiRequest<S>>,
    pub(crate) signal: Arc<Signal>,
    pub(crate) counters: Counters,
    /// Requests the driver holds (published every turn).
    pub(crate) held: AtomicUsize,
    /// [`MultiHandle::kill`] was called: the driver leaves its loop at once,
    /// without a final flush.
    pub(crate) killed: AtomicBool,
    pub(crate) request_timeout: Duration,
    /// The shared WAL's and the host's counters as of the last turn (the
    /// handles hold no WAL handle: it closes with the driver).
    pub(crate) published: Mutex<(SharedWalStats, HostStats)>,
    /// The driver thread: its handle, whether and why it stopped.
    pub(crate) life: DriverLife,
}

impl<S: StateMachine> MultiShared<S> {
    /// Refuses every later submission, to both queues, and drops what they
    /// still hold (which answers it [`RuntimeError::ShuttingDown`]).
    pub(crate) fn close(&self) {
        drop(self.submissions.close());
        drop(self.admin.close());
    }

    /// Requests submitted and not yet taken by the driver.
    pub(crate) fn queued(&self) -> usize {
        self.submissions.queued() + self.admin.queued()
    }

    /// The runtime's counters: the driver's, and the WAL's and host's as
    /// of the last turn.
    pub(crate) fn stats(&self) -> MultiStats {
        let c = &self.counters;
        let (wal, host) = *lock(&self.published);
        MultiStats {
            turns: c.turns.load(Relaxed),
            ticks: c.ticks.load(Relaxed),
            envelopes_in: c.envelopes_in.load(Relaxed),
            envelopes_out: c.envelopes_out.load(Relaxed),
            persisted: c.persisted.load(Relaxed),
            proposals: c.proposals.load(Relaxed),
            batches: c.batches.load(Relaxed),
            applied: c.applied.load(Relaxed),
            reads: c.reads.load(Relaxed),
            snapshots: c.snapshots.load(Relaxed),
            snapshot_chunks_held_back: c.held_back.load(Relaxed),
            snapshot_chunks_sent: c.chunks_out.load(Relaxed),
            snapshot_chunks_refused: c.held_back_in.load(Relaxed),
            snapshot_chunks_received: c.chunks_in.load(Relaxed),
            groups: c.groups.load(Relaxed),
            held_requests: self.held.load(Relaxed) as u64,
            queued_requests: self.queued() as u64,
            wal,
            host,
            turn_times: c.turn_times.read(),
        }
    }
}

/// A proposal in flight ([`MultiHandle::propose_async`]): wait for its
/// outcome now, later, or poll it. Every ticket ends in exactly one
/// result, as a blocking [`MultiHandle::propose`] does (its deadline is the
/// handle's timeout, counted from the submission). Dropping a ticket
/// abandons the wait, not the proposal.
pub struct Ticket<O> {
    waiter: Waiter<O>,
    deadline: Option<Instant>,
}

impl<O> std::fmt::Debug for Ticket<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("ready", &self.is_ready()).finish()
    }
}

impl<O> Ticket<O> {
    /// Waits for the outcome: the state machine's output for the command,
    /// or why not (as [`MultiHandle::propose`]).
    pub fn wait(self) -> Result<O, RuntimeError> {
        self.waiter.wait(self.deadline)
    }

    /// Waits at most `timeout` for the outcome; gives the ticket back if it
    /// has not come by then.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<O, RuntimeError>, Self> {
        let by = Instant::now().checked_add(timeout);
        let by = match (by, self.deadline) {
            (Some(by), Some(deadline)) => Some(by.min(deadline)),
            (by, deadline) => by.or(deadline),
        };
        match self.waiter.wait_by(by) {
            Some(outcome) => Ok(outcome),
            None if self.deadline.is_some_and(|d| Instant::now() >= d) => Ok(Err(RuntimeError::Timeout)),
            None => Err(self),
        }
    }

    /// The outcome if it has come, without waiting; else the ticket back.
    pub fn try_get(self) -> Result<Result<O, RuntimeError>, Self> {
        if self.is_ready() { Ok(self.waiter.wait(None)) } else { Err(self) }
    }

    /// Whether the outcome has come ([`try_get`](Self::try_get) would give
    /// it).
    pub fn is_ready(&self) -> bool {
        self.waiter.is_ready()
    }
}

/// A handle on a running many-groups node: cloneable, `Send` and `Sync`.
/// Every request names its group; blocking requests wait until they
/// complete, fail or time out, and [`propose_async`](Self::propose_async)
/// returns a [`Ticket`] at once. Dropping the last handle stops the
/// runtime (as [`shutdown`](Self::shutdown), without waiting).
pub struct MultiHandle<S: StateMachine> {
    shared: Arc<MultiShared<S>>,
    _users: Arc<Users<S>>,
    timeout: Option<Duration>,
}

/// Stops the runtime when dropped: held through an `Arc` by every handle.
struct Users<S: StateMachine>(Arc<MultiShared<S>>);

impl<S: StateMachine> Drop for Users<S> {
    fn drop(&mut self) {
        self.0.close();
        self.0.signal.notify();
    }
}

impl<S: StateMachine> Clone for MultiHandle<S> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared), _users: Arc::clone(&self._users), timeout: self.timeout }
    }
}

impl<S: StateMachine> std::fmt::Debug for MultiHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiHandle").field("id", &self.shared.id).finish_non_exhaustive()
    }
}

impl<S: StateMachine> MultiHandle<S> {
    pub(crate) fn new(shared: Arc<MultiShared<S>>) -> Self {
        let timeout = Some(shared.request_timeout);
        let users = Arc::new(Users(Arc::clone(&shared)));
        Self { shared, _users: users, timeout }
    }

    /// A handle whose requests time out after `timeout` instead of the
    /// runtime's default (`None`: wait however long).
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Self {
        Self { timeout, ..self.clone() }
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.and_then(|t| Instant::now().checked_add(t))
    }

    fn submit(&self, request: MultiRequest<S>) -> Result<(), RuntimeError> {
        let queue = if request.is_admin() { &self.shared.admin } else { &self.shared.submissions };
        queue.submit(request)?;
        self.shared.signal.notify();
        Ok(())
    }

    /// Replicates `command` in `group` and returns what
    /// [`StateMachine::apply`] returned for it, once it is committed and
    /// applied on this node. Proposals to a group queued together go in one
    /// batch step; the turn's writes of every group share one fsync.
    ///
    /// # Errors
    ///
    /// As [`RaftHandle::propose`](super::super::RaftHandle::propose), and
    /// [`RuntimeError::UnknownGroup`].
    pub fn propose(&self, group: GroupId, command: impl Into<Bytes>) -> Result<S::Output, RuntimeError> {
        self.propose_async(group, command)?.wait()
    }

    /// Submits `command` to `group` without waiting: returns a [`Ticket`]
    /// to wait on later, so one thread can keep many proposals in flight
    /// (at most [`MultiRuntime::max_pending`](super::MultiRuntime::max_pending)
    /// requests per node).
    ///
    /// # Errors
    ///
    /// Refusals known at once: an empty command ([`RuntimeError::Refused`]),
    /// a full queue ([`RuntimeError::Busy`]), a stopped runtime
    /// ([`RuntimeError::ShuttingDown`]). Everything else comes through the
    /// ticket.
    pub fn propose_async(&self, group: GroupId, command: impl Into<Bytes>) -> Result<Ticket<S::Output>, RuntimeError> {
        let command = command.into();
        if command.is_empty() {
            return Err(RuntimeError::Refused(Arc::new(Error::EmptyProposal)));
        }
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Propose { group, command, reply, deadline })?;
        Ok(Ticket { waiter, deadline })
    }

    /// Submits `command` to `group` without waiting, its outcome to land
    /// in `completions` with `tag` (any number the caller chooses, e.g. the
    /// index of its own record of the write): one thread keeps many
    /// proposals in flight and waits for all of them in one place, with no
    /// reply slot allocated per proposal. The outcome is what
    /// [`propose`](Self::propose) would return.
    ///
    /// # Errors
    ///
    /// As [`propose_async`](Self::propose_async): a proposal refused here
    /// has no outcome in `completions`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use raft_io::runtime::multi::{Completions, MultiHandle};
    /// # use raft_io::runtime::StateMachine;
    /// # fn writes<S: StateMachine>(node: &MultiHandle<S>) -> Result<(), raft_io::runtime::RuntimeError> {
    /// let done = Completions::new();
    /// for (tag, group) in [1, 2, 3].into_iter().enumerate() {
    ///     node.propose_to(group, format!("put k{tag}"), &done, tag as u64)?;
    /// }
    /// let mut out = Vec::new();
    /// while out.len() < 3 {
    ///     done.wait_timeout(std::time::Duration::from_secs(1), &mut out);
    /// }
    /// for (tag, outcome) in out {
    ///     println!("write {tag}: {}", if outcome.is_ok() { "applied" } else { "failed" });
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn propose_to(
        &self,
        group: GroupId,
        command: impl Into<Bytes>,
        completions: &Completions<S::Output>,
        tag: u64,
    ) -> Result<(), RuntimeError> {
        let command = command.into();
        if command.is_empty() {
            return Err(RuntimeError::Refused(Arc::new(Error::EmptyProposal)));
        }
        let deadline = self.deadline();
        let reply = Reply::to_queue(Arc::clone(&completions.outcomes), tag);
        match self.shared.submissions.submit_or_return(MultiRequest::Propose { group, command, reply, deadline }) {
            Ok(()) => {
                self.shared.signal.notify();
                Ok(())
            }
            Err((refused, request)) => {
                // Refused here, so no outcome there.
                if let MultiRequest::Propose { reply, .. } = request {
                    reply.disarm();
                }
                Err(refused.into())
            }
        }
    }

    /// A linearizable read of `group` (ReadIndex: confirmed by a quorum of
    /// the group), run on the driver thread against the group's state
    /// machine. Works on followers too. Keep `query` short.
    ///
    /// # Errors
    ///
    /// As [`RaftHandle::read`](super::super::RaftHandle::read), and
    /// [`RuntimeError::UnknownGroup`].
    pub fn read<R: Send + 'static>(
        &self,
        group: GroupId,
        query: impl FnOnce(&S) -> R + Send + 'static,
    ) -> Result<R, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        let job: ReadJob<S> = Box::new(move |state| reply.send(state.map(query)));
        self.submit(MultiRequest::Read { group, job, deadline })?;
        waiter.wait(deadline)
    }

    /// Changes `group`'s configuration (on its leader); returns it once
    /// committed. A member's address in the configuration is passed to the
    /// transport ([`GroupTransport::learn_peer`](super::GroupTransport::learn_peer)).
    ///
    /// # Errors
    ///
    /// As [`RaftHandle::change_membership`](super::super::RaftHandle::change_membership),
    /// and [`RuntimeError::UnknownGroup`].
    pub fn change_membership(&self, group: GroupId, change: MembershipChange) -> Result<Membership, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Change { group, change, reply, deadline })?;
        waiter.wait(deadline)
    }

    /// Hands `group`'s leadership to voter `to` (on its leader); returns
    /// once this node sees `to` lead the group.
    ///
    /// # Errors
    ///
    /// As [`RaftHandle::transfer_leadership`](super::super::RaftHandle::transfer_leadership),
    /// and [`RuntimeError::UnknownGroup`].
    pub fn transfer_leadership(&self, group: GroupId, to: NodeId) -> Result<(), RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Transfer { group, to, reply, deadline })?;
        waiter.wait(deadline)
    }

    /// `group`'s [`Status`] on this node, taken on the driver thread.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::UnknownGroup`], [`RuntimeError::Busy`],
    /// [`RuntimeError::ShuttingDown`], [`RuntimeError::Timeout`].
    pub fn status(&self, group: GroupId) -> Result<Status, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Status { group, reply })?;
        waiter.wait(deadline)
    }

    /// `group`'s [`NodeMetrics`] on this node (its counters and gauges:
    /// messages, syncs, snapshots, reads answered from the lease, …),
    /// taken on the driver thread.
    ///
    /// # Errors
    ///
    /// As [`status`](Self::status).
    pub fn metrics(&self, group: GroupId) -> Result<NodeMetrics, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Metrics { group, reply })?;
        waiter.wait(deadline)
    }

    /// An online backup of `group`'s committed state on this node
    /// ([`recovery::take_backup`](crate::recovery::take_backup) of the
    /// group's log, taken on the driver thread; see
    /// [`RaftHandle::backup`](crate::runtime::RaftHandle::backup)). Taken
    /// where the group leads, it holds everything acknowledged to a
    /// client; [`recovery::restore`](crate::recovery::restore) starts the
    /// group again from it, on this or another node's shared WAL.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Backup`], and as [`status`](Self::status).
    pub fn backup(&self, group: GroupId) -> Result<crate::recovery::Backup, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Backup { group, reply })?;
        waiter.wait(deadline)
    }

    /// The leader of `group` this node knows of (`None`: none known, or an
    /// error asking for the status).
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.status(group).ok().and_then(|s| s.leader)
    }

    /// Waits up to `timeout` for this node to know a leader of `group`
    /// (polls [`status`](Self::status) every 5 ms); returns it.
    pub fn wait_for_leader(&self, group: GroupId, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(leader) = self.leader(group) {
                return Some(leader);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) || !self.is_running() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts hosting `group` with `config` (for this node; switched to the
    /// asynchronous storage mode), on the group's log in the shared WAL:
    /// the one it left there if it was hosted here before (recovered), a
    /// new one otherwise. Its state machine comes from the runtime's
    /// factory.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::GroupExists`], [`RuntimeError::UnknownGroup`] (for
    /// group 0), [`RuntimeError::Refused`] (a configuration for another
    /// node or an invalid one, a log that cannot be opened),
    /// [`RuntimeError::ShuttingDown`], [`RuntimeError::Timeout`].
    pub fn create_group(&self, group: GroupId, config: RaftConfig) -> Result<(), RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Create { group, config: Box::new(config), reply })?;
        waiter.wait(deadline)
    }

    /// Stops hosting `group` and deletes its log from the shared WAL; its
    /// pending requests fail with [`RuntimeError::UnknownGroup`] (a proposal
    /// already appended with [`RuntimeError::OutcomeUnknown`]). Taken by the
    /// driver even while it holds
    /// [`max_pending`](super::MultiRuntime::max_pending) requests: the way
    /// to free requests waiting on a group that lost its quorum. The other
    /// replicas see this one go silent, as after a crash: remove it from
    /// the group's configuration first to keep the group's fault
    /// tolerance.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::UnknownGroup`], [`RuntimeError::Halted`] (the WAL
    /// failed writing the removal), [`RuntimeError::ShuttingDown`],
    /// [`RuntimeError::Timeout`].
    pub fn remove_group(&self, group: GroupId) -> Result<(), RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Remove { group, reply })?;
        waiter.wait(deadline)
    }

    /// The groups hosted here, in order.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Busy`], [`RuntimeError::ShuttingDown`],
    /// [`RuntimeError::Timeout`].
    pub fn groups(&self) -> Result<Vec<GroupId>, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(MultiRequest::Groups { reply })?;
        waiter.wait(deadline)
    }

    /// The runtime's counters.
    pub fn stats(&self) -> MultiStats {
        self.shared.stats()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// Whether the driver is still running.
    pub fn is_running(&self) -> bool {
        self.shared.life.is_running()
    }

    /// Why the runtime stopped; `None` while it runs.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.shared.life.stop_reason()
    }

    /// Stops the runtime: later and pending requests fail with
    /// [`RuntimeError::ShuttingDown`], the transport is closed, every
    /// group's node is dropped and the shared WAL is flushed and closed
    /// (a clean close). Returns once the driver thread has exited (at once
    /// from a read query on the driver thread). Idempotent.
    pub fn shutdown(&self) {
        self.shared.close();
        self.shared.signal.notify();
        self.shared.life.wait_stopped();
    }

    /// Stops the runtime as a crash would, to test recovery: the driver
    /// thread leaves its loop at the end of its current step, with **no
    /// final flush** (writes staged and not yet flushed are lost; nothing is
    /// acknowledged before the flush that makes it durable, so no
    /// acknowledged write is), no final send; requests the driver held at
    /// the kill fail with [`RuntimeError::Killed`], requests still queued for it and those
    /// made after it with [`RuntimeError::ShuttingDown`] (they were never
    /// taken); the transport is closed and the
    /// shared WAL handle dropped, which releases the directory's lock so a
    /// new runtime can open it. Returns once the driver thread has exited
    /// (at once from a read query on the driver thread).
    /// [`stop_reason`](Self::stop_reason) is [`StopReason::Killed`] unless
    /// the runtime had stopped already.
    pub fn kill(&self) {
        self.shared.killed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_given_back_until_its_outcome_comes_then_yields_it_once() {
        let (reply, waiter) = oneshot::<u32>();
        let ticket = Ticket { waiter, deadline: None };
        assert!(!ticket.is_ready());
        let ticket = ticket.try_get().expect_err("not ready");
        let ticket = ticket.wait_timeout(Duration::from_millis(1)).expect_err("still not ready");
        reply.send(Ok(7));
        assert!(ticket.is_ready());
        assert_eq!(ticket.try_get().ok().map(Result::ok), Some(Some(7)));
    }

    #[test]
    fn a_ticket_past_its_deadline_times_out_and_a_dropped_reply_means_shutdown() {
        let (_reply, waiter) = oneshot::<u32>();
        let late = Ticket { waiter, deadline: Some(Instant::now()) };
        assert!(matches!(late.wait_timeout(Duration::from_secs(60)), Ok(Err(RuntimeError::Timeout))));
        let (reply, waiter) = oneshot::<u32>();
        drop(reply);
        assert!(matches!(Ticket { waiter, deadline: None }.wait(), Err(RuntimeError::ShuttingDown)));
    }
}
