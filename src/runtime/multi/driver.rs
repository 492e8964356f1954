//! The many-groups driver thread: one turn steps every group that has
//! something to do, sends what the steps sent in one batch, makes the
//! turn's writes durable with one flush of the shared WAL, reports them,
//! and sends what the reports released in a second batch.

use crate::runtime::life::DriverLife;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::durable::DurableTokens;
use super::group::{Effects, Hosted};
use super::handle::{Counters, MAX_QUEUED_ADMIN, MultiHandle, MultiRequest, MultiShared};
use super::snapshots::SnapshotGate;
use super::turn_times::Phase;
use super::waiting::Waiting;
use super::{GroupTransport, MultiOptions, StateFactory};
use crate::config::RaftConfig;
use crate::error::Error;
use crate::log::shared::{GroupLog, SharedWal};
use crate::membership::Membership;
use crate::multi::{Envelope, EnvelopeBody, GroupId, GroupMap, HostAction, MultiError, MultiNode};
use crate::node::Event;
use crate::runtime::driver::{ticks_due, wait_for_work};
use crate::runtime::requests::{Signal, Submissions};
use crate::runtime::{RuntimeError, StateMachine, StopReason, Waker, stats_add as add};
use crate::sync::lock;
use crate::types::NodeId;

mod serve;

/// Envelopes' room the driver keeps between turns for the next turn's
/// batch.
const KEEP_OUT: usize = 16 << 10;

pub(super) struct Driver<S: StateMachine, T> {
    host: MultiNode<GroupLog>,
    wal: SharedWal,
    transport: T,
    groups: GroupMap<Hosted<S>>,
    /// The groups that may hold requests: every group a request was
    /// addressed to since it last held none. Deadlines, retries and the
    /// count of held requests visit these alone, so an idle group costs a
    /// turn nothing.
    holding: BTreeSet<GroupId>,
    /// The requests the groups held at the last count (at each tick, where
    /// every holding group is visited anyway, and when the bound below says
    /// the driver is full) ...
    held_at_tick: usize,
    /// ... and the requests taken since: together an upper bound of what
    /// the driver holds, known without visiting every group each turn.
    taken_since_tick: usize,
    factory: StateFactory<S>,
    shared: Arc<MultiShared<S>>,
    options: MultiOptions,
    wakes: bool,
    /// The envelopes to send: what the turn's steps sent (sent before
    /// the flush), then what its durability reports released (after).
    out: Vec<Envelope>,
    /// The tokens a flush made durable (`flush`); kept between turns.
    durable: DurableTokens,
    /// The groups whose batch the turn looks at (`serve_requests`): those
    /// its requests gave a proposal, and the waiting ones looked at again.
    batched: Vec<GroupId>,
    /// The groups whose small batch waits for their round in flight.
    waiting: Waiting,
    /// When the turn began.
    now: Instant,
    /// The snapshot streams this node's groups send.
    gate_out: SnapshotGate,
    /// The snapshot streams this node's groups receive.
    gate_in: SnapshotGate,
    /// Member addresses passed to the transport.
    known: HashMap<NodeId, Bytes>,
    actions: Vec<HostAction>,
    /// Scratch for `carry_out`: the groups its actions reached.
    touched: Vec<GroupId>,
    /// The turn's envelopes received, taken from the transport at once.
    received: Vec<Envelope>,
    incoming: Vec<MultiRequest<S>>,
    /// The shared WAL failed: the runtime stops.
    halted: Option<Arc<Error>>,
    /// What it publishes through the `metrics` facade.
    #[cfg(feature = "metrics")]
    metrics: super::metrics::HostMetrics,
}

/// Starts the driver thread.
pub(super) fn start<S: StateMachine, T: GroupTransport>(
    host: MultiNode<GroupLog>,
    wal: SharedWal,
    mut transport: T,
    factory: StateFactory<S>,
    initial: Vec<(GroupId, RaftConfig)>,
    options: MultiOptions,
) -> std::io::Result<MultiHandle<S>> {
    let signal = Arc::new(Signal::default());
    let wakes = transport.set_waker(Waker(Arc::clone(&signal)));
    let shared = Arc::new(MultiShared {
        id: host.id(),
        submissions: Submissions::new(options.common.max_pending),
        admin: Submissions::new(MAX_QUEUED_ADMIN),
        signal,
        counters: Counters::default(),
        held: 0.into(),
        killed: false.into(),
        request_timeout: options.common.request_timeout,
        published: Mutex::new((wal.stats(), host.stats())),
        life: DriverLife::default(),
    });
    let mut driver = Driver {
        host,
        wal,
        transport,
        groups: GroupMap::new(),
        holding: BTreeSet::new(),
        held_at_tick: 0,
        taken_since_tick: 0,
        factory,
        shared: Arc::clone(&shared),
        #[cfg(feature = "metrics")]
        metrics: super::metrics::HostMetrics::new(options.metrics.clone(), options.metrics_per_group),
        gate_out: SnapshotGate::new(options.max_snapshot_streams, options.snapshot_idle_ticks),
        gate_in: SnapshotGate::new(options.max_snapshot_receives, options.snapshot_idle_ticks),
        options,
        wakes,
        out: Vec::new(),
        durable: DurableTokens::default(),
        batched: Vec::new(),
        waiting: Waiting::default(),
        now: Instant::now(),
        known: HashMap::new(),
        actions: Vec::new(),
        touched: Vec::new(),
        received: Vec::new(),
        incoming: Vec::new(),
        halted: None,
    };
    for (group, config) in initial {
        let sm = (driver.factory)(group);
        driver.open_group(group, config, sm).map_err(|e| std::io::Error::other(format!("group {group}: {e}")))?;
    }
    driver.publish();
    let guard = StopGuard(Arc::clone(&shared));
    let join = std::thread::Builder::new().name(format!("raft-io-multi-{}", shared.id)).spawn(move || {
        let _guard = guard;
        let shared = Arc::clone(&driver.shared);
        shared.life.run_recording_panics(|| driver.run());
    })?;
    shared.life.started(join);
    Ok(MultiHandle::new(shared))
}

impl<S: StateMachine, T: GroupTransport> Driver<S, T> {
    fn run(mut self) {
        let tick = self.options.common.tick_interval;
        let mut next_tick = Instant::now() + tick;
        let shared = Arc::clone(&self.shared);
        // Each phase's end, and the time since the last one ended.
        let mut mark = Instant::now();
        let mut lap = |phase| {
            let end = Instant::now();
            shared.counters.turn_times.add(phase, end.saturating_duration_since(mark));
            mark = end;
            end
        };
        while !self.shared.submissions.is_closed() && self.halted.is_none() && !self.killed() {
            add(&self.shared.counters.turns, 1);
            let mut busy = self.receive();
            let now = lap(Phase::Receive);
            self.now = now;
            if now >= next_tick {
                let due;
                (due, next_tick) = ticks_due(next_tick, now, tick);
                self.tick(due, now);
                lap(Phase::Ticks);
            }
            busy |= self.serve_requests();
            lap(Phase::Requests);
            if self.killed() {
                // Killed mid-turn: leave before the flush, as a crash would.
                break;
            }
            // What the turn's steps sent leaves before the flush: a
            // leader's appends reach its followers while its own write is
            // being made durable, so a round waits for one fsync, not for
            // the leader's and then a follower's (a node holds back what
            // must wait for its write: `Event::Persisted` releases it).
            self.send();
            lap(Phase::Send);
            // The turn's one flush: every group's staged writes, one fsync;
            // then what the durability reports released.
            busy |= self.flush();
            lap(Phase::Flush);
            self.send();
            self.publish();
            lap(Phase::Send);
            if !busy && self.halted.is_none() {
                // Awake again when the oldest waiting batch's time is up.
                let wake = self.waiting.next_due(self.options.coalesce_wait).map_or(next_tick, |d| d.min(next_tick));
                wait_for_work(&self.shared.signal, wake, self.wakes);
                lap(Phase::Idle);
            }
        }
        self.stop();
    }

    /// [`MultiHandle::kill`] was called.
    fn killed(&self) -> bool {
        self.shared.killed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Hands every envelope received (up to the per-turn cap) to the host.
    fn receive(&mut self) -> bool {
        let mut received = std::mem::take(&mut self.received);
        let n = self.transport.recv_many(&mut received, self.options.max_envelopes_per_turn);
        if n > 0 {
            self.admit_received(&mut received);
            // Each group's messages of the turn as one step (a leader
            // usually has both followers' answers here), then their actions.
            self.host.receive_all(&mut received);
            self.carry_out();
            self.halt_on_received_failure();
            let (host, now) = (&self.host, self.host.ticks());
            self.gate_in
                .retain_live(now, |group, peer| host.group(group).is_some_and(|n| n.receives_snapshot_from(peer)));
        }
        self.received = received;
        add(&self.shared.counters.envelopes_in, n as u64);
        n > 0
    }

    /// Halts the runtime on a storage failure met by the step of a
    /// received message, as one in any other step does: at once, with its
    /// cause. The host answers no one for such a step; unasked, it would
    /// leave the group's node halted in silence (ticks skip it) until the
    /// group's next request halted the runtime.
    fn halt_on_received_failure(&mut self) {
        let mut halts = Vec::new();
        self.host.take_halts(&mut halts);
        if let Some((_, cause)) = halts.into_iter().next() {
            self.halt(Arc::new(cause));
        }
    }

    /// Drops the snapshot chunks of streams the receiving bound holds back
    /// (as if lost on the wire; their leaders resend). The envelopes of a
    /// group this node does not host pass untouched (the host drops and
    /// counts them): they take no receive slot, which a peer could
    /// otherwise fill with made-up group ids.
    fn admit_received(&mut self, received: &mut Vec<Envelope>) {
        let (gate, now, host) = (&mut self.gate_in, self.host.ticks(), &self.host);
        let waiting = &mut self.waiting;
        // Streams whose node dropped a chunk lately come last: admitted
        // after every other chunk of the turn, into the slots left.
        received.retain(|envelope| match &envelope.body {
            EnvelopeBody::Raft { group, message } if host.group(*group).is_some() => {
                waiting.news(*group);
                gate.is_last(*group, envelope.from) || gate.admit(*group, envelope.from, message, now)
            }
            _ => true,
        });
        received.retain(|envelope| match &envelope.body {
            EnvelopeBody::Raft { group, message } if gate.is_last(*group, envelope.from) => {
                gate.admit(*group, envelope.from, message, now)
            }
            _ => true,
        });
        self.shared.counters.held_back_in.store(self.gate_in.held_back, Relaxed);
        self.shared.counters.chunks_in.store(self.gate_in.admitted, Relaxed);
    }

    /// `due` host ticks; then requests past their deadline fail and
    /// deferred membership changes are retried.
    fn tick(&mut self, due: u64, now: Instant) {
        // However many ticks fell due, one step per awake group: a slow
        // turn costs no more ticking than a quick one (PROTOCOL.md §8.4).
        let result = self.host.advance(due);
        self.carry_out();
        if let Err(e) = result {
            self.host_error(e);
        }
        add(&self.shared.counters.ticks, due);
        #[cfg(feature = "metrics")]
        self.publish_metrics(due);
        self.gate_out.expire(self.host.ticks());
        self.gate_in.expire(self.host.ticks());
        let mut retry = Vec::new();
        let groups = &mut self.groups;
        let mut held = 0;
        let waiting = &mut self.waiting;
        self.holding.retain(|group| {
            let Some(hosted) = groups.get_mut(group) else { return false };
            hosted.pending.expire(now);
            // A waiting batch with a request at its deadline is looked at
            // again (`waits`).
            let late = |(_, deadline): &(_, Option<Instant>)| deadline.is_some_and(|d| d <= now);
            if waiting.contains(*group) && hosted.pending.batch_replies.iter().any(late) {
                waiting.news(*group);
            }
            if let Some(deferred) = hosted.pending.deferred_change.take() {
                retry.push((*group, deferred));
            }
            held += hosted.pending.len();
            hosted.pending.len() > 0
        });
        // The changes retried below count too.
        (self.held_at_tick, self.taken_since_tick) = (held + retry.len(), 0);
        for (group, (change, reply, deadline)) in retry {
            self.change_membership(group, change, reply, deadline);
        }
    }

    /// One flush of the shared WAL for every group's staged writes, then
    /// each group's latest durable token stepped as `Event::Persisted`.
    /// Returns whether anything was reported.
    fn flush(&mut self) -> bool {
        let mut durable = std::mem::take(&mut self.durable);
        durable.staged.clear();
        if let Err(e) = self.wal.flush_into(&mut durable.staged) {
            self.halt(Arc::new(Error::Storage(e)));
            self.durable = durable;
            return false;
        }
        // The latest token per group suffices. Every group's report is
        // stepped, then their actions carried out together (a durability
        // report drops nothing from a log, so the ranges it queues stay
        // readable until then).
        let mut reported = 0;
        for (group, token) in durable.latest() {
            reported += 1;
            self.waiting.news(group);
            if let Err(e) = self.host.step(group, Event::Persisted(token)) {
                // A group removed since its write was staged is gone:
                // nothing to report. A storage failure halts.
                let _ = self.host_error(e);
            }
        }
        self.durable = durable;
        if reported > 0 {
            add(&self.shared.counters.persisted, reported);
            self.carry_out();
        }
        reported > 0
    }

    /// Sends the envelopes queued since the last call, one batch for every
    /// peer.
    fn send(&mut self) {
        if self.out.is_empty() {
            return;
        }
        add(&self.shared.counters.envelopes_out, self.out.len() as u64);
        self.transport.send_batch(&mut self.out);
        // Whatever a transport left is not sent again; a burst's room is
        // given back.
        self.out.clear();
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
    }

    /// Hosts `group` on its log in the shared WAL (recovered if the WAL
    /// has it, created otherwise).
    fn open_group(&mut self, group: GroupId, config: RaftConfig, sm: S) -> Result<(), RuntimeError> {
        if group == 0 {
            return Err(RuntimeError::UnknownGroup(0));
        }
        if self.groups.contains_key(&group) {
            return Err(RuntimeError::GroupExists(group));
        }
        let existed = self.wal.contains(group);
        let log = if existed { self.wal.group(group) } else { self.wal.create_group(group) };
        let log = log.map_err(|e| RuntimeError::Refused(Arc::new(Error::Storage(e))))?;
        // The driver carries out the host's actions after every call, so
        // committed commands can be applied borrowed from the log.
        let config = config.async_storage(true).apply_ranges(true);
        if let Err(e) = self.host.create_group(group, config, log) {
            if !existed {
                // Nothing of it was used: forget it again.
                let _ = self.wal.remove_group(group);
            }
            return Err(match e {
                MultiError::GroupExists(g) => RuntimeError::GroupExists(g),
                MultiError::Node { source, .. } => RuntimeError::Refused(Arc::new(source)),
                other => {
                    RuntimeError::Refused(Arc::new(Error::InvalidConfig { field: "id", reason: other.to_string() }))
                }
            });
        }
        self.groups.insert(group, Hosted::new(sm));
        self.shared.counters.groups.store(self.groups.len() as u64, Relaxed);
        if let Some(node) = self.host.group(group) {
            let membership = node.membership().clone();
            self.learn(&membership);
        }
        Ok(())
    }

    fn remove_group(&mut self, group: GroupId) -> Result<(), RuntimeError> {
        let node = self.host.remove_group(group).map_err(|_| RuntimeError::UnknownGroup(group))?;
        #[cfg(feature = "metrics")]
        self.metrics.removed(&node);
        // The group's log must be gone before the WAL forgets the group.
        drop(node);
        // What it queued is carried out now, while its state machine is
        // still here: a group created again under its id later in this turn
        // starts with nothing of it (`MultiError::Undrained`).
        self.carry_out();
        self.forget_departed();
        if let Some(mut hosted) = self.groups.remove(&group) {
            hosted.pending.fail_all(&RuntimeError::UnknownGroup(group));
        }
        self.gate_out.forget(group);
        self.gate_in.forget(group);
        self.waiting.stop(group);
        self.shared.counters.groups.store(self.groups.len() as u64, Relaxed);
        self.wal.remove_group(group).map_err(|e| {
            let cause = Arc::new(Error::Storage(e));
            self.halt(Arc::clone(&cause));
            RuntimeError::Halted(cause)
        })
    }

    /// Tells the transport about the peers it learned here that no group
    /// names any more; learning one again will tell it again.
    fn forget_departed(&mut self) {
        let mut departed = Vec::new();
        self.host.take_departed_peers(&mut departed);
        for id in departed {
            if self.known.remove(&id).is_some() {
                self.transport.forget_peer(id);
            }
        }
    }

    /// Passes new member addresses to the transport.
    fn learn(&mut self, membership: &Membership) {
        for (id, address) in membership.addresses() {
            if id != self.host.id() && self.known.get(&id) != Some(address) {
                self.known.insert(id, address.clone());
                self.transport.learn_peer(id, address);
            }
        }
    }

    /// Steps `group`, carries out the actions; the error concerns the
    /// event alone unless the WAL failed (then the runtime halts).
    fn try_step(&mut self, group: GroupId, event: Event) -> Result<(), RuntimeError> {
        let result = self.host.step(group, event);
        // Before the step's applies, which may answer it.
        if let (Some(hosted), Some(p)) =
            (self.groups.get_mut(&group), self.host.group(group).and_then(|n| n.last_proposal()))
        {
            hosted.pending.proposed(p);
        }
        self.carry_out();
        result.map_err(|e| self.host_error(e))
    }

    /// The runtime stops on `cause`, unless it is stopping already: the
    /// first failure is the cause it reports. Once the shared WAL failed,
    /// every later write in the same turn (a group's step, the turn's
    /// flush) fails with `StorageError::Halted`, which only echoes it.
    fn halt(&mut self, cause: Arc<Error>) {
        self.halted.get_or_insert(cause);
    }

    /// Maps a host refusal; a storage failure halts the runtime.
    fn host_error(&mut self, error: MultiError) -> RuntimeError {
        match error {
            MultiError::UnknownGroup(g) => RuntimeError::UnknownGroup(g),
            MultiError::InvalidGroup => RuntimeError::UnknownGroup(0),
            MultiError::GroupExists(g) => RuntimeError::GroupExists(g),
            MultiError::Node { source, .. } if matches!(source, Error::Storage(_) | Error::Halted) => {
                let cause = Arc::new(source);
                self.halt(Arc::clone(&cause));
                RuntimeError::Halted(cause)
            }
            MultiError::Node { source, .. } => RuntimeError::from_node(source),
            other => RuntimeError::Refused(Arc::new(Error::InvalidConfig { field: "id", reason: other.to_string() })),
        }
    }

    /// Carries out the host's queued actions: envelopes join the turn's
    /// batch (snapshot chunks through the gate), group actions reach their
    /// group; snapshots the groups asked for are taken.
    fn carry_out(&mut self) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.extend(self.host.drain_actions());
        let mut fx = Effects::default();
        // The groups acted on, settled in id order (the list is kept between
        // calls).
        let mut touched = std::mem::take(&mut self.touched);
        let mut memberships = Vec::new();
        for action in actions.drain(..) {
            match action {
                HostAction::Send(envelope) => self.route(envelope),
                // Nothing to carry out (the shared WAL's flush reports
                // durability): the group is not even looked up, and a step
                // that only wrote is not settled.
                HostAction::Group { action: crate::Action::WriteSubmitted { .. }, .. } => {}
                HostAction::Group { group, action } => {
                    let (Some(hosted), Some(node)) = (self.groups.get_mut(&group), self.host.group(group)) else {
                        continue;
                    };
                    if let crate::Action::MembershipChanged { membership, .. }
                    | crate::Action::MembershipCommitted { membership, .. } = &action
                    {
                        memberships.push(membership.clone());
                    }
                    hosted.act(node, action, &mut fx);
                    if touched.last() != Some(&group) {
                        touched.push(group);
                    }
                }
            }
        }
        self.actions = actions;
        add(&self.shared.counters.applied, fx.applied);
        add(&self.shared.counters.reads, fx.reads);
        if let Some(e) = fx.unreadable.take() {
            // A range the host queued could not be read: the state machine
            // would miss commands, so the runtime stops.
            self.halt(Arc::new(e));
        }
        if !memberships.is_empty() {
            for membership in memberships {
                self.learn(&membership);
            }
            self.forget_departed();
        }
        // A group's actions come together, so it is rarely listed twice.
        touched.sort_unstable();
        touched.dedup();
        let mut snapshots = Vec::new();
        for group in touched.drain(..) {
            let (Some(hosted), Some(node)) = (self.groups.get_mut(&group), self.host.group(group)) else { continue };
            hosted.settle(node);
            if std::mem::take(&mut hosted.snapshot_wanted) {
                snapshots.push((group, node.last_applied(), hosted.sm.snapshot()));
            }
        }
        self.touched = touched;
        for (group, index, data) in snapshots {
            add(&self.shared.counters.snapshots, 1);
            // A refused snapshot (one raced ahead of it) is simply skipped.
            let _ = self.try_step(group, Event::Snapshot { index, data });
        }
    }

    /// An envelope for the turn's batch, unless it is a snapshot chunk the
    /// per-node bound holds back.
    fn route(&mut self, envelope: Envelope) {
        if let EnvelopeBody::Raft { group, message } = &envelope.body {
            let admitted = self.gate_out.admit(*group, envelope.to, message, self.host.ticks());
            self.shared.counters.held_back.store(self.gate_out.held_back, Relaxed);
            self.shared.counters.chunks_out.store(self.gate_out.admitted, Relaxed);
            if !admitted {
                return;
            }
        }
        self.out.push(envelope);
    }

    /// Requests the groups hold, at most: those held at the last count (a
    /// tick's, or `count_held`'s) and those taken since (most of which are
    /// usually answered by now).
    fn held(&self) -> usize {
        self.held_at_tick + self.taken_since_tick
    }

    /// Counts the requests the groups hold, exactly: when the bound says
    /// the driver is full.
    fn count_held(&mut self) {
        let groups = &self.groups;
        self.held_at_tick = self.holding.iter().filter_map(|g| groups.get(g)).map(|h| h.pending.len()).sum();
        self.taken_since_tick = 0;
    }

    /// Feature `metrics`: publishes the host series (and with the per-group
    /// mode each group's) once every 10 ticks, the `due` ticks just counted
    /// included: the one walk over the groups is made here.
    #[cfg(feature = "metrics")]
    fn publish_metrics(&self, due: u64) {
        if !super::metrics::due(self.shared.counters.ticks.load(Relaxed), due) {
            return;
        }
        let mut stats = self.shared.stats();
        (stats.wal, stats.host, stats.held_requests) = (self.wal.stats(), self.host.stats(), self.held() as u64);
        self.metrics.publish(&self.host, &stats, self.wal.wal_bytes());
    }

    fn publish(&self) {
        self.shared.held.store(self.held(), Relaxed);
        *lock(&self.shared.published) = (self.wal.stats(), self.host.stats());
    }

    /// Fails everything pending, closes the transport, drops the groups'
    /// nodes and closes the shared WAL. Killed: no final send nor flush
    /// (what was staged since the last flush is lost, as in a crash).
    fn stop(&mut self) {
        let killed = self.killed();
        let (error, reason) = match &self.halted {
            Some(cause) => (RuntimeError::Halted(Arc::clone(cause)), StopReason::Halted(Arc::clone(cause))),
            None if killed => (RuntimeError::Killed, StopReason::Killed),
            None => (RuntimeError::ShuttingDown, StopReason::Shutdown),
        };
        self.shared.life.stopping(reason);
        self.shared.close();
        for hosted in self.groups.values_mut() {
            hosted.pending.fail_all(&error);
        }
        if killed {
            // As a crash: nothing more leaves, nothing more is written.
            self.out.clear();
            self.transport.close();
        } else {
            // What the last turn produced still leaves (a leader's final
            // appends); then the transport closes.
            self.send();
            self.transport.close();
            // Everything staged is made durable before the groups' logs go
            // (the WAL closes cleanly when its last handle is dropped).
            if self.halted.is_none() {
                let _ = self.wal.flush();
            }
        }
        let ids: Vec<GroupId> = self.host.group_ids().collect();
        for group in ids {
            let _ = self.host.remove_group(group);
        }
    }
}

/// Marks the runtime stopped once the driver (with its groups and its WAL
/// handle) is gone, on a normal exit and while unwinding from a panic.
struct StopGuard<S: StateMachine>(Arc<MultiShared<S>>);

impl<S: StateMachine> Drop for StopGuard<S> {
    fn drop(&mut self) {
        self.0.close();
        self.0.life.mark_stopped();
    }
}
