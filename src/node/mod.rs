//! [`RaftNode`]: the protocol as a pure state machine (see its docs for
//! the determinism guarantee and how to drive it). The step loop lives
//! here; each concern of the protocol has its own file.

mod admission;
mod apply;
mod backpressure;
mod counters;
mod durability;
mod election;
mod entry_pool;
mod event;
#[cfg(feature = "sim")]
mod fingerprint;
mod follower;
mod observe;
mod persist;
mod progress;
mod read;
mod reconfig;
mod replication;
mod snapshot;
mod status;

pub use counters::{NodeMetrics, PeerMetrics};
use event::emit;
pub use event::{Action, Actions, Event, Proposal};
pub use progress::{PeerStatus, ProgressState};
pub use read::{ReadFailure, ReadKind};
pub use reconfig::TransferOutcome;
pub use status::Status;

use bytes::{Bytes, BytesMut};

use crate::config::RaftConfig;
use crate::error::{Error, Result};
use crate::log::{MemoryLog, RaftLog};
use crate::message::{Message, MessageBody};
use crate::rng::{Rng, mix};
use crate::types::{Entry, Index, LogIdentity, MAX_TERM, NodeId, Role, SnapshotMeta, Term};

use observe::{Why, observe};
use progress::Progress;
use read::ReadState;
use reconfig::{ConfigHistory, Transfer};
use snapshot::Incoming;

/// A Raft node: consumes [`Event`]s, produces [`Action`]s.
///
/// The node never reads a clock, touches a file or socket, spawns a thread
/// or draws OS randomness. Time arrives as [`Event::Tick`]; randomness comes
/// from a generator seeded by [`RaftConfig::seed`] and the node id. The same
/// configuration and the same events produce the same actions, byte for
/// byte, on every platform.
///
/// # Driving a node
///
/// Call [`RaftNode::step`] with each [`Event`] and carry out the returned
/// [`Action`]s. Every message action may be sent at once and in any order:
/// whatever it depends on was made durable (through [`RaftLog::sync`])
/// inside that `step`. State-machine actions ([`Action::Apply`],
/// [`Action::RestoreSnapshot`]) must be carried out in the order given. A
/// step syncs the log at most once, however many entries it appended, so
/// batching proposals or messages into one step is how a driver gets group
/// commit. The crate-level documentation is a tutorial.
// The fields are laid out in the order written (`repr(C)`), the ones
// nearly every step reads or writes first: a host with thousands of groups
// finds a group's node cold in the cache, and each cache line a step
// touches is a miss. Rarely used state (elections, snapshots,
// scratch buffers) and the configuration's lists come last.
#[repr(C)]
pub struct RaftNode<L: RaftLog = MemoryLog> {
    // What a host's deferred tick reads (`defer_ticks`), side by side.
    election_elapsed: u64,
    /// Ticks a host deferred (`defer_ticks`): taken at the start of the
    /// next step, before its event.
    owed_ticks: u64,
    /// How far `election_elapsed + owed_ticks` may run on ticks that only
    /// count (`defer_ticks`), as the last step left the node.
    quiet_limit: u64,
    // Read by nearly every step (the role by a host's tick too).
    role: Role,
    halted: bool,
    /// Per-step bookkeeping (persist.rs).
    must_sync: bool,
    // Snapshots (snapshot.rs).
    restore_pending: bool,
    /// Set by a many-groups host while its campaign budget is spent: an
    /// election timer that runs out starts nothing (`hold_campaign`).
    campaign_held: bool,
    /// Every step ends by working out `quiet_limit` (`track_quiet_limit`).
    quiet_tracked: bool,
    id: NodeId,
    // Persistent state, mirrored into the log's hard state (persist.rs).
    term: Term,
    commit: Index,
    // Volatile state.
    applied: Index,
    // Timers (election.rs).
    ticks: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    /// Bytes of entries appended in this step (persist.rs), held within the
    /// log's [`RaftLog::max_step_bytes`].
    step_bytes: u64,
    vote: Option<NodeId>,
    leader: Option<NodeId>,
    /// The tick at which this node last heard from a leader of its term.
    leader_contact: Option<u64>,
    configs: ConfigHistory,
    /// Set when a member said a committed configuration (at this index)
    /// removed this node (admission.rs): it never campaigns again. Read
    /// with the configuration, by every follower's tick.
    removed: Option<Index>,
    /// Ticks after start during which votes are refused (lease safety).
    vote_cooldown: u64,
    // Leader state (replication.rs, reconfig.rs).
    term_start: Index,
    /// No entry above this index is a no-op or a configuration entry
    /// (apply.rs): an upper bound, kept by every append and truncation.
    last_control: Index,
    reported: (Role, Term, Option<NodeId>),
    out: Vec<Action>,
    /// A leadership transfer in progress (reconfig.rs): looked at on every
    /// leader tick and at the end of every leader step, so it sits beside
    /// the output buffer those write, not with the rarely read state.
    transfer: Option<Transfer>,
    /// Where the latest step's proposal went, `first == 0` when that step
    /// proposed nothing (`last_proposal`): set by `propose`, cleared when
    /// every step starts (in the line after the hot ones, beside what a
    /// leader's step and an applying step read). Returned by the node
    /// rather than emitted as an action, which every driver would carry
    /// out on every proposal.
    proposal: Proposal,
    // Snapshots (snapshot.rs): read when a snapshot policy is set.
    snapshot_hint_at: Index,
    applied_bytes: u64,
    scratch: Vec<Entry>,
    peers: Vec<Progress>,
    /// A leader's appends not applied yet (backpressure.rs).
    uncommitted: backpressure::Uncommitted,
    /// Monitoring counters (counters.rs).
    counters: counters::Counters,
    /// The asynchronous storage mode's writes in flight (durability.rs).
    durability: durability::Durability,
    log: L,
    // Reads (read.rs).
    reads: ReadState,
    /// The block small commands are copied into (replication.rs).
    small_commands: BytesMut,
    cfg: RaftConfig,

    // Rarely read.
    rng: Rng,
    /// The term in which this leader sent `TimeoutNow`: lease reads stay off
    /// for the rest of it (the target may win at any later time).
    lease_revoked_term: Term,
    // Elections (election.rs).
    votes: Vec<(NodeId, bool)>,
    incoming: Option<Incoming>,
    scratch_index: Vec<Index>,
    scratch_ids: Vec<NodeId>,
    dropped_messages: u64,
    /// Why the role or leader last changed (observe.rs, feature `tracing`).
    #[cfg(feature = "tracing")]
    why: observe::Why,
}

impl RaftNode<MemoryLog> {
    /// A node on a fresh in-memory log.
    ///
    /// ```
    /// use raft_io::{RaftConfig, RaftNode};
    ///
    /// let node = RaftNode::new(RaftConfig::single(1)).unwrap();
    /// assert_eq!(node.term(), 0);
    /// assert!(!node.is_leader());
    /// ```
    pub fn new(config: RaftConfig) -> Result<Self> {
        Self::with_log(config, MemoryLog::new())
    }
}

impl<L: RaftLog> RaftNode<L> {
    /// A node on `log`: a fresh log is initialized (identity and bootstrap
    /// configuration, synced); a used one is recovered — term, vote, commit,
    /// entries, snapshot and configuration — and the node restarts as a
    /// follower. A log that belongs to another node or cluster is refused.
    pub fn with_log(config: RaftConfig, mut log: L) -> Result<Self> {
        config.validate_for(log.max_step_bytes())?;
        let identity = LogIdentity { cluster_id: config.cluster_id, node_id: config.id };
        // A restart on a log whose instance cannot tell this run from the
        // last: refused in the asynchronous mode (PROTOCOL.md §5.1,
        // "Tokens"); otherwise this run forwards no read (§8.3).
        let runs_alike = log.identity().is_some() && log.instance() == 0;
        if config.async_storage && runs_alike {
            return Err(Error::InvalidConfig {
                field: "async_storage",
                reason: "the log answers the default instance() (0) on a restart: a log in the asynchronous mode \
                         must tell two opens apart, or a completion from the last run could be taken for this one's"
                    .into(),
            });
        }
        match log.identity() {
            None => Self::initialize(&config, &mut log, identity)?,
            Some(found) if found != identity => {
                return Err(Error::WrongLog {
                    found_cluster: found.cluster_id,
                    found_node: found.node_id,
                    cluster: identity.cluster_id,
                    node: identity.node_id,
                });
            }
            Some(_) => {}
        }
        let hs = log.hard_state();
        let snap_index = log.snapshot_meta().index;
        let last = log.last_index();
        if hs.commit > last {
            return Err(Error::CorruptLog(format!("commit index {} is past the last index {last}", hs.commit)));
        }
        if hs.vote == Some(0) {
            return Err(Error::CorruptLog("vote for node 0".into()));
        }
        let last_term = log.term(last).unwrap_or(0);
        if hs.term > MAX_TERM || last_term > MAX_TERM {
            return Err(Error::CorruptLog(format!("a term above the maximum {MAX_TERM}")));
        }
        // The WAL's bound on indexes too: `last + 1` never overflows.
        if last > MAX_TERM {
            return Err(Error::CorruptLog(format!("an index above the maximum {MAX_TERM}")));
        }
        // A step makes its entries durable with the term they were taken in
        // (PROTOCOL.md §5): a log whose hard state is behind its own entries
        // was written part way (an interrupted restore). Started, it would
        // take terms its log already holds and write entries that clash
        // with them.
        if hs.term < last_term {
            return Err(Error::CorruptLog(format!(
                "the hard state's term {} is below the term {last_term} of the last entry (a log written part way)",
                hs.term
            )));
        }
        let mut commit = hs.commit.max(snap_index);
        // What the state machine holds: a snapshot it has not restored yet
        // is handed over by the first step (`apply_committed`), which then
        // moves `applied` to it.
        let applied = if config.applied > snap_index {
            if config.applied > last {
                return Err(Error::InvalidConfig {
                    field: "applied",
                    reason: format!("applied index {} is past the log's last index {last}", config.applied),
                });
            }
            commit = commit.max(config.applied);
            config.applied
        } else if snap_index > 0 {
            config.applied
        } else {
            snap_index
        };
        let configs = ConfigHistory::recover(&log, config.id)?;
        let mut rng = Rng::new(mix(config.seed, config.id));
        let election_timeout = rng.range(config.election_timeout_min, config.election_timeout_max);
        let restore_pending = snap_index > 0 && config.applied < snap_index;
        let vote_cooldown = if config.lease_reads { config.election_timeout_min } else { 0 };
        // Forwarded-read ids start somewhere that depends on the seed, the
        // durable state at start and the log's instance, so a restarted
        // node does not reuse the ids of its previous run (an answer to
        // those must not match), even when nothing durable changed between.
        let read_salt = mix(
            mix(mix(config.seed, config.id), log.instance()),
            hs.term ^ last.rotate_left(21) ^ hs.commit.rotate_left(42) ^ snap_index.rotate_left(11),
        );
        Ok(Self {
            id: config.id,
            term: hs.term,
            vote: if mutant!(ForgetVoteOnRestart) { None } else { hs.vote },
            commit,
            applied,
            role: Role::Follower,
            leader: None,
            configs,
            rng,
            ticks: 0,
            election_elapsed: 0,
            election_timeout,
            heartbeat_elapsed: 0,
            vote_cooldown,
            owed_ticks: 0,
            quiet_limit: 0,
            quiet_tracked: false,
            campaign_held: false,
            leader_contact: None,
            lease_revoked_term: 0,
            votes: Vec::new(),
            peers: Vec::new(),
            term_start: 0,
            uncommitted: backpressure::Uncommitted::default(),
            transfer: None,
            reads: ReadState::new(read_salt, !runs_alike),
            incoming: None,
            restore_pending,
            snapshot_hint_at: applied,
            applied_bytes: 0,
            // Not known without reading the log: everything held may be.
            last_control: last,
            must_sync: false,
            durability: durability::Durability::new(
                config.async_storage,
                mix(mix(read_salt, 0x5752_4954_4553), log.instance()),
                last,
                hs.term,
                hs.vote,
            ),
            halted: false,
            out: Vec::new(),
            scratch: Vec::new(),
            small_commands: BytesMut::new(),
            scratch_index: Vec::new(),
            scratch_ids: Vec::new(),
            reported: (Role::Follower, hs.term, None),
            proposal: Proposal::default(),
            dropped_messages: 0,
            counters: counters::Counters::default(),
            step_bytes: 0,
            removed: None,
            #[cfg(feature = "tracing")]
            why: observe::Why::Start,
            cfg: config,
            log,
        })
    }

    fn initialize(config: &RaftConfig, log: &mut L, identity: LogIdentity) -> Result<()> {
        if crate::log::holds_state(log) {
            return Err(Error::CorruptLog("the log holds state but records no owner".into()));
        }
        log.set_identity(identity)?;
        if let Some(membership) = config.bootstrap_membership()? {
            log.install_snapshot(SnapshotMeta { index: 0, term: 0, membership }, Bytes::new())?;
        }
        // In the asynchronous mode the node's first write carries the
        // initialization (docs/PROTOCOL.md §5.1): no fsync per new node,
        // which matters for a host creating thousands of groups. Until
        // then the node sends nothing that depends on it, and a crash
        // before it leaves an empty log that the restart initializes again.
        if !config.get_async_storage() {
            log.sync()?;
        }
        Ok(())
    }

    /// Consumes one event and returns the actions to carry out.
    ///
    /// On `Err` the node is unchanged (a refused proposal, read or change),
    /// or — for [`Error::Storage`] — halted: every later call returns
    /// [`Error::Halted`] and the embedder must reopen the log.
    pub fn step(&mut self, event: Event) -> Result<Actions<'_>> {
        self.run_step(event)?;
        Ok(Actions { inner: self.out.drain(..) })
    }

    /// Like [`step`](Self::step), but moves the actions to the end of a
    /// buffer the caller owns (one bulk move, no per-action copy), which
    /// suits drivers that carry out actions after releasing the node. When
    /// `out` is empty the step writes its actions straight into it instead
    /// (nothing is moved, and the node's own buffer is not touched): a
    /// driver stepping many nodes with one buffer writes every node's
    /// actions into memory its cache already holds.
    pub fn step_into(&mut self, event: Event, out: &mut Vec<Action>) -> Result<()> {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
            let result = self.run_step(event);
            std::mem::swap(out, &mut self.out);
            return result;
        }
        self.run_step(event)?;
        out.append(&mut self.out);
        Ok(())
    }

    // Every way out of a step that may have changed the node ends with
    // `end_step` (which keeps the quiet limit of `defer_ticks`): not a
    // wrapper around the step, which would copy its result.
    fn run_step(&mut self, event: Event) -> Result<()> {
        self.proposal.first = 0;
        if self.halted {
            return Err(Error::Halted);
        }
        self.out.clear();
        self.step_bytes = 0;
        // Ticks a host deferred happened before this event: taken first
        // (they fire nothing; see `defer_ticks`).
        let owed = std::mem::take(&mut self.owed_ticks);
        if owed > 0 {
            if let Err(e) = self.tick(owed) {
                let proposal = matches!(event, Event::Propose(_) | Event::ProposeBatch(_));
                return Err(self.step_failed(e, proposal));
            }
            debug_assert!(self.out.is_empty(), "deferred ticks acted: {:?}", self.out);
        }
        let proposal = matches!(event, Event::Propose(_) | Event::ProposeBatch(_));
        #[cfg(debug_assertions)]
        let keeps_applied = (!event.may_drop_applied()).then(|| self.log.snapshot_meta().index);
        let result = self.handle(event).and_then(|()| self.finish_step());
        #[cfg(debug_assertions)]
        if let Some(before) = keeps_applied {
            debug_assert_eq!(
                self.log.snapshot_meta().index,
                before,
                "a step of an event that may not drop applied entries installed a snapshot (Event::may_drop_applied)"
            );
        }
        if let Err(e) = result {
            return Err(self.step_failed(e, proposal));
        }
        self.end_step();
        Ok(())
    }

    /// The end of a step that failed, wherever it failed: a refused
    /// proposal is counted, a storage failure halts the node, and the
    /// step's actions are dropped (on `Err` the node is unchanged, or
    /// halted). Returns `e`.
    #[cold]
    fn step_failed(&mut self, e: Error, proposal: bool) -> Error {
        if proposal {
            self.counters.proposals_refused += 1;
        }
        if matches!(e, Error::Storage(_)) {
            self.halted = true;
            observe!(tracing::Level::ERROR, node = self.id, term = self.term, error = %e, "storage failure: node halted");
        }
        self.out.clear();
        self.proposal.first = 0;
        self.end_step();
        e
    }

    /// The end of every step: a tracked node works out its quiet limit
    /// (`track_quiet_limit`) while its state is in the cache.
    #[inline(always)]
    fn end_step(&mut self) {
        if self.quiet_tracked {
            self.refresh_quiet_limit();
        }
    }

    /// Everything a step does after handling its event, in order: commit,
    /// apply, automatic leader actions, then the one persistence point of
    /// the step. (Commit notifications wait for the leader's next tick:
    /// `tick_leader`.)
    fn finish_step(&mut self) -> Result<()> {
        loop {
            if self.role == Role::Leader {
                self.maybe_commit();
            }
            self.apply_committed()?;
            if !(self.role == Role::Leader && self.leader_automatic_changes()?) {
                break;
            }
        }
        if self.role == Role::Leader {
            self.step_down_if_removed();
        }
        if self.role == Role::Leader {
            self.start_read_round()?;
        }
        self.release_reads();
        self.report_role();
        self.persist()?;
        if self.take_deferred_win()? {
            // Its no-op and first appends, in a write of their own.
            self.report_role();
            self.persist()?;
        }
        self.hold_messages();
        Ok(())
    }

    /// Reports a change of role, term or leader since the last report
    /// (the check is on every step; the report, rare, is out of line).
    #[inline]
    fn report_role(&mut self) {
        let now = (self.role, self.term, self.leader);
        if now != self.reported {
            self.role_changed(now);
        }
    }

    #[cold]
    fn role_changed(&mut self, now: (Role, Term, Option<NodeId>)) {
        if now.2 != self.reported.2 {
            self.counters.leader_changes += 1;
        }
        self.reported = now;
        observe!(
            tracing::Level::INFO,
            node = self.id,
            term = self.term,
            role = ?self.role,
            leader = ?self.leader,
            reason = self.why.as_str(),
            "role changed"
        );
        self.out.push(Action::RoleChanged { role: self.role, term: self.term, leader: self.leader });
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Tick => self.tick(1),
            Event::Ticks(n) => self.tick(n),
            Event::Propose(command) => self.propose(std::iter::once(command)),
            Event::ProposeBatch(commands) => self.propose(commands.into_iter()),
            Event::Message(message) => self.on_message(message),
            Event::Messages(messages) => messages.into_iter().try_for_each(|m| self.on_message(m)),
            Event::Read { id, kind } => self.read(id, kind),
            Event::ChangeMembership(change) => self.change_membership(change),
            Event::TransferLeadership(to) => self.transfer_leadership(to),
            Event::Snapshot { index, data } => self.snapshot_taken(index, data),
            Event::Persisted(token) => self.on_persisted(token),
            Event::Campaign => self.campaign_now(),
        }
    }

    fn on_message(&mut self, m: Message) -> Result<()> {
        self.counters.messages_received += 1;
        if m.to != self.id || m.from == self.id || m.from == 0 || m.term > MAX_TERM || !self.admissible(&m) {
            self.drop_message();
            return Ok(());
        }
        if let MessageBody::Removed(notice) = m.body {
            // Whatever its term: a removed node may have inflated its own.
            self.on_removal_notice(notice);
            return Ok(());
        }
        if matches!(m.body, MessageBody::PreVote(_) | MessageBody::Vote(_)) {
            // Before the term rules: a stale request from a removed node
            // must be answered too.
            self.notify_if_removed(m.from);
        }
        if !self.accept_term(&m)? {
            return Ok(());
        }
        let from = m.from;
        match m.body {
            MessageBody::PreVote(req) => self.on_vote_request(from, m.term, req, true),
            MessageBody::Vote(req) => self.on_vote_request(from, m.term, req, false),
            MessageBody::PreVoteResponse(r) => self.on_vote_response(from, m.term, r.granted, true),
            MessageBody::VoteResponse(r) => self.on_vote_response(from, m.term, r.granted, false),
            MessageBody::Append(a) => {
                self.follow(from);
                self.on_append(from, a)
            }
            MessageBody::Heartbeat(hb) => {
                self.follow(from);
                self.on_heartbeat(from, hb);
                Ok(())
            }
            MessageBody::Snapshot(chunk) => {
                self.follow(from);
                self.on_snapshot_chunk(from, *chunk)
            }
            MessageBody::AppendResponse(r) => self.on_append_response(from, r),
            MessageBody::HeartbeatResponse(r) => self.on_heartbeat_response(from, r),
            MessageBody::SnapshotResponse(ack) => self.on_snapshot_ack(from, ack),
            MessageBody::TimeoutNow => self.on_timeout_now(from),
            MessageBody::ReadIndex(req) => self.on_forwarded_read(from, req),
            MessageBody::ReadIndexResponse(r) => {
                self.on_read_index_response(from, m.term, r);
                Ok(())
            }
            MessageBody::Removed(_) => Ok(()),
        }
    }

    /// Queues a message to `to` in the current term.
    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_in(to, self.term, body);
    }

    fn send_in(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.send_built(to, term, || body);
    }

    /// Queues a message whose body `body` builds in place (see [`emit`]:
    /// a body built first and moved in would be copied through the stack).
    #[inline(always)]
    fn send_built(&mut self, to: NodeId, term: Term, body: impl FnOnce() -> MessageBody) {
        self.counters.messages_sent += 1;
        let from = self.id;
        emit(&mut self.out, || Action::Send { to, message: Message { from, to, term, body: body() } });
    }

    fn drop_message(&mut self) {
        self.dropped_messages += 1;
    }

    pub(super) fn peer_index(&self, id: NodeId) -> Option<usize> {
        progress::position(&self.peers, id)
    }

    fn last_term(&self) -> Term {
        self.log.term(self.log.last_index()).unwrap_or(0)
    }
}

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
