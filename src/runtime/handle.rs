//! [`RaftHandle`]: the cloneable, thread-safe front of a running node.

use crate::runtime::life::DriverLife;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::requests::{Signal, Submissions, oneshot};
use super::{Counters, RuntimeError, RuntimeStats, StateMachine, StopReason};
use crate::error::Error;
use crate::membership::{Membership, MembershipChange};
use crate::node::{NodeMetrics, ReadKind, Status};
use crate::types::{Index, NodeId, Role};

/// A read job: runs on the driver thread against the state machine, or is
/// told why it cannot.
pub(crate) type ReadJob<S> = Box<dyn FnOnce(Result<&S, RuntimeError>) + Send>;

/// A client request on its way to the driver.
pub(crate) enum Request<S: StateMachine> {
    Propose { command: Bytes, reply: super::requests::Reply<S::Output>, deadline: Option<Instant> },
    Read { kind: ReadKind, job: ReadJob<S>, deadline: Option<Instant> },
    Change { change: MembershipChange, reply: super::requests::Reply<Membership>, deadline: Option<Instant> },
    Transfer { to: NodeId, reply: super::requests::Reply<()>, deadline: Option<Instant> },
    Status { reply: super::requests::Reply<Status> },
    Metrics { reply: super::requests::Reply<NodeMetrics> },
    Backup { reply: super::requests::Reply<crate::recovery::Backup> },
}

/// What the driver publishes after every turn, for cheap observation.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) role: AtomicU64,
    pub(crate) term: AtomicU64,
    pub(crate) leader: AtomicU64,
    pub(crate) commit: AtomicU64,
    pub(crate) applied: AtomicU64,
    /// Index of the configuration that removed this node; 0 while it is
    /// not known to be removed.
    pub(crate) removed: AtomicU64,
}

pub(crate) fn role_code(role: Role) -> u64 {
    match role {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
    }
}

/// How far a node has come, as of the driver's last turn
/// ([`RaftHandle::progress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogProgress {
    /// The highest index known committed.
    pub commit: Index,
    /// The highest index applied to the state machine.
    pub applied: Index,
}

/// State shared by every handle and the driver thread.
pub(crate) struct Shared<S: StateMachine> {
    pub(crate) id: NodeId,
    pub(crate) submissions: Submissions<Request<S>>,
    pub(crate) signal: std::sync::Arc<Signal>,
    pub(crate) counters: Counters,
    pub(crate) observed: Observed,
    pub(crate) request_timeout: Duration,
    pub(crate) read_kind: ReadKind,
    /// The driver thread: its handle, whether and why it stopped.
    pub(crate) life: DriverLife,
}

impl<S: StateMachine> Shared<S> {}

/// A handle on a running node: cloneable, `Send` and `Sync`; every method
/// may be called from any thread. Requests block the calling thread until
/// they complete, fail, or time out (see [`RuntimeError`]).
///
/// Dropping the last handle stops the runtime as [`shutdown`](Self::shutdown)
/// does, without waiting for the driver thread to exit: a runtime nobody
/// can reach any more does not keep a node voting, its sockets open and its
/// threads running.
pub struct RaftHandle<S: StateMachine> {
    shared: std::sync::Arc<Shared<S>>,
    /// Shared by the user's handles only (the driver holds `shared`, not
    /// this): when the last one goes, the runtime stops.
    _users: std::sync::Arc<Users<S>>,
    timeout: Option<Duration>,
}

/// Stops the runtime when dropped: held through an `Arc` by every handle.
struct Users<S: StateMachine>(std::sync::Arc<Shared<S>>);

impl<S: StateMachine> Drop for Users<S> {
    fn drop(&mut self) {
        drop(self.0.submissions.close());
        self.0.signal.notify();
    }
}

impl<S: StateMachine> Clone for RaftHandle<S> {
    fn clone(&self) -> Self {
        Self {
            shared: std::sync::Arc::clone(&self.shared),
            _users: std::sync::Arc::clone(&self._users),
            timeout: self.timeout,
        }
    }
}

impl<S: StateMachine> std::fmt::Debug for RaftHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftHandle").field("id", &self.shared.id).field("leader", &self.leader()).finish()
    }
}

impl<S: StateMachine> RaftHandle<S> {
    pub(crate) fn new(shared: std::sync::Arc<Shared<S>>) -> Self {
        let timeout = Some(shared.request_timeout);
        let users = std::sync::Arc::new(Users(std::sync::Arc::clone(&shared)));
        Self { shared, _users: users, timeout }
    }

    /// A handle whose requests time out after `timeout` instead of the
    /// runtime's default (`None`: wait for the outcome however long).
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Self {
        Self { timeout, ..self.clone() }
    }

    /// Requests submitted and not yet taken by the driver.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn queued_requests(&self) -> usize {
        self.shared.submissions.queued()
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.and_then(|t| Instant::now().checked_add(t))
    }

    fn submit(&self, request: Request<S>) -> Result<(), RuntimeError> {
        self.shared.submissions.submit(request)?;
        self.shared.signal.notify();
        Ok(())
    }

    /// Replicates `command` and returns what [`StateMachine::apply`]
    /// returned for it, once it is committed and applied on this node.
    ///
    /// Proposals from all threads are batched: the driver appends
    /// everything queued in one step, with one log sync.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotLeader`] (with the leader to retry on),
    /// [`RuntimeError::Busy`], [`RuntimeError::Refused`] (an empty or
    /// oversized command, a transfer pending), [`RuntimeError::ShuttingDown`]
    /// or [`RuntimeError::Halted`] — the command was not appended — or
    /// [`RuntimeError::LeadershipLost`], [`RuntimeError::Timeout`] or
    /// [`RuntimeError::OutcomeUnknown`] (appended, and the runtime stopped
    /// before it was applied, or its own write failed and halted the node)
    /// — outcome unknown.
    pub fn propose(&self, command: impl Into<Bytes>) -> Result<S::Output, RuntimeError> {
        let command = command.into();
        if command.is_empty() {
            return Err(RuntimeError::Refused(std::sync::Arc::new(Error::EmptyProposal)));
        }
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Propose { command, reply, deadline })?;
        waiter.wait(deadline)
    }

    /// A linearizable read: runs `query` against the state machine, on the
    /// driver thread, once the node has confirmed (ReadIndex: one heartbeat
    /// round to a quorum, shared by concurrent reads) that the state
    /// machine reflects every write committed before the read began, and
    /// returns its result. Works on followers too (the read index comes
    /// from the leader). Keep `query` short: the node waits while it runs.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotLeader`] (a follower that knows no leader),
    /// [`RuntimeError::LeadershipLost`], [`RuntimeError::Timeout`],
    /// [`RuntimeError::Refused`] (a learner or non-member),
    /// [`RuntimeError::ShuttingDown`].
    pub fn read<R: Send + 'static>(&self, query: impl FnOnce(&S) -> R + Send + 'static) -> Result<R, RuntimeError> {
        self.read_with(self.shared.read_kind, query)
    }

    /// [`read`](Self::read) with an explicit [`ReadKind`].
    pub fn read_with<R: Send + 'static>(
        &self,
        kind: ReadKind,
        query: impl FnOnce(&S) -> R + Send + 'static,
    ) -> Result<R, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        let job: ReadJob<S> = Box::new(move |state| reply.send(state.map(query)));
        self.submit(Request::Read { kind, job, deadline })?;
        waiter.wait(deadline)
    }

    /// Changes the cluster configuration (leader only) and returns the
    /// configuration once it is committed (for a change through a joint
    /// configuration, once the final one is).
    ///
    /// Add a node with its address
    /// ([`MembershipChange::AddVoterAt`], [`MembershipChange::AddLearnerAt`])
    /// and every member's transport learns it from the configuration (for
    /// TCP, [`TcpTransport::learn_peers`](crate::transport::TcpTransport::learn_peers),
    /// which the runtime calls); give the new node's transport the
    /// configuration returned here before starting it. A node added
    /// without an address must be wired by hand
    /// ([`TcpHandle::add_peer`](crate::transport::TcpHandle::add_peer) on
    /// every member).
    ///
    /// # Errors
    ///
    /// As [`propose`](Self::propose); [`RuntimeError::Refused`] for a change
    /// the node refuses (another change pending, an invalid change).
    pub fn change_membership(&self, change: MembershipChange) -> Result<Membership, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Change { change, reply, deadline })?;
        waiter.wait(deadline)
    }

    /// Hands leadership to voter `to` (leader only); returns once this node
    /// sees `to` lead.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NotLeader`], [`RuntimeError::TransferFailed`] (the
    /// target did not take over in time; with
    /// [`TransferOutcome::SteppedDown`](crate::TransferOutcome::SteppedDown):
    /// this node stepped down for it, and was elected again), [`RuntimeError::LeadershipLost`]
    /// (another node took over), [`RuntimeError::Refused`] (not a voter),
    /// [`RuntimeError::Timeout`], [`RuntimeError::ShuttingDown`].
    pub fn transfer_leadership(&self, to: NodeId) -> Result<(), RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Transfer { to, reply, deadline })?;
        waiter.wait(deadline)
    }

    /// The node's [`Status`], taken on the driver thread.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::ShuttingDown`], [`RuntimeError::Timeout`].
    pub fn status(&self) -> Result<Status, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Status { reply })?;
        waiter.wait(deadline)
    }

    /// The node's counters and gauges ([`NodeMetrics`]), taken on the
    /// driver thread. With feature `metrics` the runtime also publishes
    /// them through the `metrics` facade every 10 ticks.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::ShuttingDown`], [`RuntimeError::Timeout`].
    pub fn metrics(&self) -> Result<NodeMetrics, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Metrics { reply })?;
        waiter.wait(deadline)
    }

    /// An online backup of the node's committed state
    /// ([`recovery::take_backup`](crate::recovery::take_backup) of its
    /// log, taken on the driver thread between two steps): its snapshot
    /// and every entry after it through the commit index it knows. Taken
    /// on the leader, it holds everything acknowledged to a client. Keep
    /// it with `Backup::encode` (feature `persistence`); a lost cluster starts again from it with
    /// [`recovery::restore`](crate::recovery::restore).
    ///
    /// The driver clones the entries since the snapshot (their data are
    /// reference counts) and reads the snapshot's data, from its file for a
    /// `WalLog`: the node handles nothing else meanwhile.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Backup`], [`RuntimeError::ShuttingDown`],
    /// [`RuntimeError::Timeout`].
    pub fn backup(&self) -> Result<crate::recovery::Backup, RuntimeError> {
        let deadline = self.deadline();
        let (reply, waiter) = oneshot();
        self.submit(Request::Backup { reply })?;
        waiter.wait(deadline)
    }

    /// The runtime's counters.
    pub fn stats(&self) -> RuntimeStats {
        self.shared.counters.snapshot()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The leader this node knows of, as of the driver's last turn.
    pub fn leader(&self) -> Option<NodeId> {
        match self.shared.observed.leader.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Whether this node led its term as of the driver's last turn.
    pub fn is_leader(&self) -> bool {
        self.shared.observed.role.load(Ordering::Acquire) == role_code(Role::Leader)
    }

    /// The term as of the driver's last turn.
    pub fn term(&self) -> u64 {
        self.shared.observed.term.load(Ordering::Acquire)
    }

    /// The commit and applied indexes as of the driver's last turn.
    pub fn progress(&self) -> LogProgress {
        let o = &self.shared.observed;
        LogProgress { commit: o.commit.load(Ordering::Acquire), applied: o.applied.load(Ordering::Acquire) }
    }

    /// The index of the committed configuration that removed this node, once
    /// a member told it so ([`Action::Removed`](crate::Action::Removed)):
    /// the node will never campaign again, and the process hosting it can
    /// shut it down.
    pub fn removed(&self) -> Option<Index> {
        match self.shared.observed.removed.load(Ordering::Acquire) {
            0 => None,
            index => Some(index),
        }
    }

    /// Waits up to `timeout` for this node to know a leader; returns it.
    /// (Polls the published state every millisecond.)
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) || !self.is_running() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the driver is still running: false once it stopped, for
    /// whatever reason ([`stop_reason`](Self::stop_reason)).
    pub fn is_running(&self) -> bool {
        self.shared.life.is_running()
    }

    /// Why the runtime stopped: shut down, halted on a storage failure, or
    /// a panic of the driver thread. `None` while it runs.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.shared.life.stop_reason()
    }

    /// Stops the runtime: later requests fail with
    /// [`RuntimeError::ShuttingDown`], pending ones too, the transport is
    /// closed and the node (with its log) dropped. Returns once the driver
    /// thread has exited (at once when called from the driver thread itself,
    /// inside a read query). Idempotent; any clone may call it.
    pub fn shutdown(&self) {
        drop(self.shared.submissions.close());
        self.shared.signal.notify();
        self.shared.life.wait_stopped();
    }
}
