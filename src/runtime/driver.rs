//! The driver thread: ticks, messages and client requests in, batched
//! steps, actions carried out at once.

use crate::runtime::life::DriverLife;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::apply::{apply_one, apply_range};
use super::handle::{Observed, RaftHandle, Request, Shared, role_code};
use super::pending::Pending;
use super::requests::{Reply, Signal, Submissions};
use super::stats_add as add;
use super::{Counters, RuntimeError, RuntimeOptions, StateMachine, StopReason, Transport, Waker};
use crate::error::Error;
use crate::log::RaftLog;
use crate::membership::{Membership, MembershipChange};
use crate::node::{Action, Event, RaftNode};
use crate::types::{ENTRY_OVERHEAD, NodeId, Role};

/// How often the driver polls a transport that cannot wake it.
const POLL: Duration = Duration::from_millis(1);

/// An idle driver sleeps until its next tick, or until `signal` wakes it (a
/// request, a write completion, or — when the transport can wake it
/// (`wakes`) — an arriving message); a transport that cannot wake it is
/// polled every [`POLL`].
pub(crate) fn wait_for_work(signal: &Signal, next_tick: Instant, wakes: bool) {
    let until_tick = next_tick.saturating_duration_since(Instant::now());
    let wait = if wakes { until_tick } else { until_tick.min(POLL) };
    if !wait.is_zero() {
        signal.wait(Some(wait));
    }
}
/// The ticks due at `now` when the next one was due at `next_tick` (every
/// one of them, however long the stall), and when the one after them is
/// due.
pub(crate) fn ticks_due(next_tick: Instant, now: Instant, tick: Duration) -> (u64, Instant) {
    if now < next_tick {
        return (0, next_tick);
    }
    let missed = now.duration_since(next_tick).as_nanos() / tick.as_nanos().max(1) + 1;
    let due = u64::try_from(missed).unwrap_or(u64::MAX);
    match u32::try_from(due).ok().and_then(|n| next_tick.checked_add(tick.checked_mul(n)?)) {
        Some(next) if next > now => (due, next),
        _ => (due, now + tick),
    }
}

pub(crate) fn start<S, L, T>(
    node: RaftNode<L>,
    transport: T,
    state_machine: S,
    options: RuntimeOptions,
) -> std::io::Result<RaftHandle<S>>
where
    S: StateMachine,
    L: RaftLog + Send + 'static,
    T: Transport,
{
    let driver = build(node, transport, state_machine, options)?;
    let shared = Arc::clone(&driver.shared);
    driver.publish();
    let guard = StopGuard(Arc::clone(&shared));
    let join = std::thread::Builder::new().name(format!("raft-io-driver-{}", shared.id)).spawn(move || {
        let _guard = guard;
        let shared = Arc::clone(&driver.shared);
        shared.life.run_recording_panics(|| driver.run());
    })?;
    shared.life.started(join);
    Ok(RaftHandle::new(shared))
}

/// The driver of `node`, not started: its transport wired to the node's
/// configuration, its log to the storage mode.
fn build<S, L, T>(
    node: RaftNode<L>,
    mut transport: T,
    state_machine: S,
    options: RuntimeOptions,
) -> std::io::Result<Driver<S, L, T>>
where
    S: StateMachine,
    L: RaftLog,
    T: Transport,
{
    let signal = Arc::new(Signal::default());
    let wakes = transport.set_waker(Waker(Arc::clone(&signal)));
    // Peers from the configuration the node recovered (a restart needs no
    // wiring either).
    transport.configuration(node.membership());
    let mut node = node;
    // Commands are applied borrowed from the log: the driver carries out
    // every step's actions before the next step.
    node.set_apply_ranges(true);
    let durability = super::storage::attach(&mut node, &signal)?;
    let shared = Arc::new(Shared {
        id: node.id(),
        submissions: Submissions::new(options.common.max_pending),
        signal,
        counters: Counters::default(),
        observed: Observed::default(),
        request_timeout: options.common.request_timeout,
        read_kind: options.read_kind,
        life: DriverLife::default(),
    });
    Ok(Driver {
        node,
        sm: state_machine,
        transport,
        shared,
        wakes,
        options,
        actions: Vec::new(),
        incoming: Vec::new(),
        batch: Vec::new(),
        pending: Pending::default(),
        snapshot_wanted: false,
        durability,
        halted: None,
    })
}

struct Driver<S: StateMachine, L: RaftLog, T> {
    node: RaftNode<L>,
    sm: S,
    transport: T,
    shared: Arc<Shared<S>>,
    wakes: bool,
    options: RuntimeOptions,
    /// Actions of the current step (reused).
    actions: Vec<Action>,
    /// Requests taken from the queue this turn (reused).
    incoming: Vec<Request<S>>,
    /// Commands of the batch being built (their replies are in
    /// `pending.batch_replies`), in order.
    batch: Vec<Bytes>,
    /// The requests taken and not yet answered.
    pending: Pending<S>,
    snapshot_wanted: bool,
    /// How write completions reach the node (storage.rs).
    durability: super::storage::Durability,
    /// The node halted on a storage failure: the runtime stops.
    halted: Option<Arc<Error>>,
}

impl<S: StateMachine, L: RaftLog, T: Transport> Driver<S, L, T> {
    fn run(mut self) {
        let mut next_tick = Instant::now() + self.options.common.tick_interval;
        while !self.shared.submissions.is_closed() && self.halted.is_none() {
            let busy;
            (busy, next_tick) = self.turn(next_tick, Instant::now);
            if !busy && self.halted.is_none() {
                wait_for_work(&self.shared.signal, next_tick, self.wakes);
            }
        }
        self.stop();
    }

    /// One turn: what completed, arrived, came due or was asked since the
    /// last, each stepped, and the actions carried out. Ticks are judged at
    /// the instant `now` gives, read after the messages are stepped.
    /// Returns whether the turn did work that may have left more (so the
    /// driver turns again before it waits), and when the next tick is due.
    fn turn(&mut self, mut next_tick: Instant, now: impl FnOnce() -> Instant) -> (bool, Instant) {
        let tick = self.options.common.tick_interval;
        // Messages first: after a stall, the leader's heartbeats that
        // waited in the inbox reset the election timer before the missed
        // ticks are counted. Completed writes before both: they release
        // acknowledgements and let the leader commit.
        let mut busy = self.persisted();
        busy |= self.receive();
        let now = now();
        if now >= next_tick {
            // Every tick that came due, in one step: the node's clock keeps
            // up with real time after a stall (a long fsync or query, a
            // paused process), so a lease that ran out during it has run
            // out (docs/PROTOCOL.md, "Time after a stall"), with one
            // heartbeat round rather than one per interval.
            let due;
            (due, next_tick) = ticks_due(next_tick, now, tick);
            self.step(if due == 1 { Event::Tick } else { Event::Ticks(due) });
            add(&self.shared.counters.ticks, due);
            #[cfg(feature = "metrics")]
            self.publish_metrics(due);
            self.pending.expire(now);
            if let Some((change, reply, deadline)) = self.pending.deferred_change.take() {
                self.change_membership(change, reply, deadline);
            }
        }
        busy |= self.serve_requests();
        busy |= self.report_own_writes();
        self.publish();
        (busy, next_tick)
    }

    /// Steps the latest write completion the log posted, if any.
    fn persisted(&mut self) -> bool {
        let super::storage::Durability::Notified(completions) = &self.durability else { return false };
        let Some(token) = completions.take() else { return false };
        self.step(Event::Persisted(token));
        true
    }

    /// A log without a notifier: reports the turn's latest write (the log
    /// makes it durable in `persisted`, one sync for the turn). Returns
    /// whether that step submitted a write of its own (a won election's
    /// no-op, for one): the next turn reports it at once, where waiting
    /// for work would leave it until the next tick or message.
    fn report_own_writes(&mut self) -> bool {
        let super::storage::Durability::Reported(latest) = &mut self.durability else { return false };
        let Some(token) = latest.take() else { return false };
        self.step(Event::Persisted(token));
        matches!(&self.durability, super::storage::Durability::Reported(Some(_)))
    }

    /// Steps every message the transport has (up to the per-turn cap) in one
    /// `Event::Messages` step: one log sync for the whole burst (group commit
    /// on followers too). A lone message is stepped as it is, without
    /// allocating a burst for it.
    fn receive(&mut self) -> bool {
        let max = self.options.max_messages_per_turn;
        let Some(first) = self.transport.try_recv() else { return false };
        let Some(second) = (if max > 1 { self.transport.try_recv() } else { None }) else {
            add(&self.shared.counters.messages_in, 1);
            self.step(Event::Message(first));
            return true;
        };
        let mut burst = vec![first, second];
        while burst.len() < max {
            let Some(message) = self.transport.try_recv() else { break };
            burst.push(message);
        }
        add(&self.shared.counters.messages_in, burst.len() as u64);
        self.step(Event::Messages(burst));
        true
    }

    /// Takes queued requests: reads, changes, transfers and status each get
    /// a step; proposals are collected into one batch step.
    fn serve_requests(&mut self) -> bool {
        let mut incoming = std::mem::take(&mut self.incoming);
        self.shared.submissions.drain(&mut incoming, self.options.common.max_batch.max(64));
        let busy = !incoming.is_empty();
        let mut batch_bytes = 0usize;
        let step_max = usize::try_from(self.node.log().max_step_bytes()).unwrap_or(usize::MAX);
        let limit = self.options.common.max_batch_bytes.min(step_max);
        for request in incoming.drain(..) {
            match request {
                Request::Propose { command, reply, deadline } => {
                    // A bad command is refused alone: a batch is refused
                    // whole if any of its commands is.
                    if let Err(e) = self.node.check_command(&command) {
                        reply.send(Err(RuntimeError::from_node(e)));
                        continue;
                    }
                    // Entry bytes, as the log counts them: a batch never
                    // exceeds what one step may append (a lone command
                    // always fits, `max_message_bytes` being checked
                    // against the log when the node was built).
                    let size = command.len().saturating_add(ENTRY_OVERHEAD as usize);
                    if !self.batch.is_empty()
                        && (self.batch.len() >= self.options.common.max_batch || batch_bytes + size > limit)
                    {
                        self.propose_batch();
                        batch_bytes = 0;
                    }
                    batch_bytes += size;
                    self.batch.push(command);
                    self.pending.batch_replies.push((reply, deadline));
                }
                Request::Read { kind, job, deadline } => {
                    let id = self.pending.add_read(job, deadline);
                    if let Err(e) = self.try_step(Event::Read { id, kind }) {
                        self.pending.finish_read(id, Err(e));
                    }
                }
                Request::Change { change, reply, deadline } => self.change_membership(change, reply, deadline),
                Request::Transfer { to, reply, deadline } => {
                    // It proposes the batch taken so far first.
                    batch_bytes = 0;
                    self.transfer(to, reply, deadline)
                }
                Request::Status { reply } => reply.send(Ok(self.node.status())),
                Request::Metrics { reply } => reply.send(Ok(self.node.metrics())),
                Request::Backup { reply } => reply
                    .send(crate::recovery::take_backup(self.node.log()).map_err(|e| RuntimeError::Backup(Arc::new(e)))),
            }
        }
        self.incoming = incoming;
        if !self.batch.is_empty() {
            self.propose_batch();
        }
        busy
    }

    fn propose_batch(&mut self) {
        let commands = std::mem::take(&mut self.batch);
        let n = commands.len() as u64;
        match self.try_step(Event::ProposeBatch(commands)) {
            Ok(()) => {
                let c = &self.shared.counters;
                add(&c.proposals, n);
                add(&c.batches, 1);
                c.max_batch.fetch_max(n, Ordering::Relaxed);
                self.pending.batch_done(None);
            }
            Err(error) => self.pending.batch_done(Some(written_maybe(error))),
        }
    }

    fn change_membership(&mut self, change: MembershipChange, reply: Reply<Membership>, deadline: Option<Instant>) {
        if !self.pending.begin_change(reply, deadline) {
            return;
        }
        match self.try_step(Event::ChangeMembership(change.clone())) {
            Err(error) => self.pending.change_failed(change, written_maybe(error)),
            Ok(()) => self.pending.change_stepped(self.node.membership()),
        }
    }

    fn transfer(&mut self, to: NodeId, reply: Reply<()>, deadline: Option<Instant>) {
        // Proposals taken before the transfer go first (once it is
        // stepped, the leader refuses proposals).
        if !self.batch.is_empty() {
            self.propose_batch();
        }
        match self.try_step(Event::TransferLeadership(to)) {
            Err(e) => reply.send(Err(e)),
            Ok(()) if to == self.node.id() || self.node.leader() == Some(to) => reply.send(Ok(())),
            Ok(()) => self.pending.add_transfer(to, reply, deadline),
        }
    }

    /// A step whose error concerns only the event (a refused proposal,
    /// read or change); a storage failure also halts the runtime.
    fn try_step(&mut self, event: Event) -> Result<(), RuntimeError> {
        add(&self.shared.counters.steps, 1);
        match self.node.step_into(event, &mut self.actions) {
            Ok(()) => {
                // Before the step's applies, which may answer it.
                if let Some(p) = self.node.last_proposal() {
                    self.pending.proposed(p);
                }
                self.carry_out();
                Ok(())
            }
            Err(e) if matches!(e, Error::Storage(_) | Error::Halted) || self.node.is_halted() => {
                let cause = Arc::new(e);
                self.halted = Some(Arc::clone(&cause));
                Err(RuntimeError::Halted(cause))
            }
            Err(e) => Err(RuntimeError::from_node(e)),
        }
    }

    /// A step of a tick or message: errors are not a request's to report
    /// (a storage failure halts the runtime in `try_step`).
    fn step(&mut self, event: Event) {
        let _ = self.try_step(event);
    }

    /// Carries out the actions of the step just taken, in order.
    fn carry_out(&mut self) {
        let mut actions = std::mem::take(&mut self.actions);
        for action in actions.drain(..) {
            self.act(action);
        }
        self.actions = actions;
        self.settle_lost_proposals();
        if self.snapshot_wanted && self.halted.is_none() {
            self.snapshot_wanted = false;
            let index = self.node.last_applied();
            let data = self.sm.snapshot();
            add(&self.shared.counters.snapshots, 1);
            // A refused snapshot (one raced ahead of it) is simply skipped.
            self.step(Event::Snapshot { index, data });
        }
    }

    fn act(&mut self, action: Action) {
        // Committed commands the driver could not read from the log halted
        // the runtime (`apply_range`): the state machine missed them, so
        // nothing after them may act as if they were applied — no later
        // command applied over the gap, no read served from it (it fails
        // with `Halted` when the driver stops), no snapshot taken of it.
        let applies = matches!(action, Action::Apply { .. } | Action::ApplyRange { .. } | Action::ReadReady { .. });
        if applies && self.halted.is_some() {
            return;
        }
        match action {
            Action::Send { message, .. } => match self.transport.send(message) {
                Ok(()) => add(&self.shared.counters.messages_out, 1),
                Err(_) => add(&self.shared.counters.messages_refused, 1),
            },
            Action::Apply { index, term, command } => {
                apply_one(&mut self.sm, &mut self.pending, (index, term, &command), self.node.leader());
                add(&self.shared.counters.applied, 1);
            }
            Action::ApplyRange { first, last } => {
                match apply_range(&mut self.sm, &mut self.pending, &self.node, first, last) {
                    Ok(n) => add(&self.shared.counters.applied, n),
                    Err(e) => self.halted = Some(Arc::new(e)),
                }
            }
            Action::RoleChanged { role, leader, .. } => self.pending.role_changed(role, leader),
            Action::MembershipChanged { index, membership } => {
                self.transport.configuration(&membership);
                self.pending.membership_changed(index);
            }
            Action::MembershipCommitted { index, membership } => {
                // The configuration in effect (a later one may already be
                // appended): what the transport must reach now.
                self.transport.configuration(self.node.membership());
                self.pending.membership_committed(index, membership);
            }
            Action::SnapshotWanted { .. } => self.snapshot_wanted = true,
            // Published with the rest of the node's state (`publish`).
            Action::Removed { .. } => {}
            // Reported by the log's notifier, or by the driver (storage.rs).
            Action::WriteSubmitted { token } => {
                if let super::storage::Durability::Reported(latest) = &mut self.durability {
                    *latest = Some(token);
                }
            }
            Action::RestoreSnapshot { meta, data } => {
                self.sm.restore(&data);
                // Proposals the snapshot covers: outcome unknown here.
                self.pending.fail_proposals_through(meta.index, RuntimeError::OutcomeUnknown);
            }
            Action::ReadReady { id, .. } => {
                if self.pending.finish_read(id, Ok(&self.sm)) {
                    add(&self.shared.counters.reads, 1);
                }
            }
            Action::ReadFailed { id, reason } => {
                let error = RuntimeError::from_read(reason, self.node.leader(), self.node.id());
                self.pending.finish_read(id, Err(error));
            }
            Action::TransferEnded { to, outcome } => self.pending.transfer_ended(to, outcome),
        }
    }

    /// Proposals at or below the applied index that no `Apply` answered
    /// (their index holds another leader's no-op or configuration entry):
    /// lost. Then wakes the proposers answered by the step's applies.
    fn settle_lost_proposals(&mut self) {
        // A halted driver did not apply through the node's applied index:
        // what it holds fails when it stops, outcome unknown.
        if self.halted.is_none() {
            let lost = RuntimeError::LeadershipLost { leader: self.node.leader() };
            self.pending.fail_proposals_through(self.node.last_applied(), lost);
        }
        self.pending.wake();
    }

    /// Feature `metrics`: publishes the node's metrics and the runtime's
    /// counters through the `metrics` facade once every 10 ticks.
    #[cfg(feature = "metrics")]
    fn publish_metrics(&mut self, due: u64) {
        let before = self.shared.counters.snapshot().ticks.saturating_sub(due);
        if before / 10 != (before + due) / 10 {
            let publisher = &self.options.metrics;
            publisher.publish_node(&self.node.metrics());
            publisher.publish_runtime(self.node.id(), &self.shared.counters.snapshot());
        }
    }

    /// Publishes role, term, leader and indexes for the handles.
    fn publish(&self) {
        let o = &self.shared.observed;
        o.role.store(role_code(self.node.role()), Ordering::Release);
        o.term.store(self.node.term(), Ordering::Release);
        o.leader.store(self.node.leader().unwrap_or(0), Ordering::Release);
        o.commit.store(self.node.commit_index(), Ordering::Release);
        o.applied.store(self.node.last_applied(), Ordering::Release);
        o.removed.store(self.node.removed().unwrap_or(0), Ordering::Release);
    }

    /// Fails everything pending and closes the transport.
    fn stop(&mut self) {
        let (error, reason) = match &self.halted {
            Some(cause) => (RuntimeError::Halted(Arc::clone(cause)), StopReason::Halted(Arc::clone(cause))),
            None => (RuntimeError::ShuttingDown, StopReason::Shutdown),
        };
        self.shared.life.stopping(reason);
        drop(self.shared.submissions.close());
        self.pending.fail_all(&error);
        self.transport.close();
        self.shared.observed.role.store(role_code(Role::Follower), Ordering::Release);
        self.shared.observed.leader.store(0, Ordering::Release);
    }
}

/// The error of a step that carried a proposal or a change: one that
/// failed writing to the log (its write or its sync) may have left the
/// entries in it all the same — recovery after the halt decides what
/// survived, and a node restarted on that log may commit them — so their
/// outcome is unknown, not "not appended" (`Halted`). A node that had
/// halted before the step appended nothing.
fn written_maybe(error: RuntimeError) -> RuntimeError {
    match &error {
        RuntimeError::Halted(cause) if matches!(**cause, Error::Storage(_)) => RuntimeError::OutcomeUnknown,
        _ => error,
    }
}

/// Held by the driver thread around the driver: runs when the driver has
/// been dropped, on a normal exit and while unwinding from a panic (a
/// panicking state machine). No request can be submitted any more, every
/// one still held was answered by its `Reply`'s drop, and `shutdown`
/// callers are released only now that the node and its log are closed.
struct StopGuard<S: StateMachine>(Arc<Shared<S>>);

impl<S: StateMachine> Drop for StopGuard<S> {
    fn drop(&mut self) {
        drop(self.0.submissions.close());
        self.0.life.mark_stopped();
    }
}

#[cfg(test)]
mod turn_tests;
