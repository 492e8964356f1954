//! [`MultiNode`]: the groups, their steps and actions, and the host's clock.

use std::collections::BTreeMap;

use super::campaigns::{Campaigns, Grant};
use super::quiesce::Quiet;
use super::receive::Held;
use super::{Envelope, EnvelopeBody, GroupId, GroupMap, HostConfig, HostStats, MultiError};
use crate::config::RaftConfig;
use crate::log::RaftLog;
use crate::membership::SharedConfigs;
use crate::message::Message;
use crate::node::{Action, Event, RaftNode};
use crate::types::NodeId;

/// What the embedder must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostAction {
    /// Send `envelope` to node `envelope.to`.
    Send(Envelope),
    /// Carry out `action` for `group`, exactly as for a lone node (its
    /// `Action::Send`s come as [`HostAction::Send`] instead).
    Group {
        /// The group.
        group: GroupId,
        /// The action.
        action: Action,
    },
}

/// Laid out in the order written (`repr(C)`), on a cache line of its own
/// (each group is an allocation of its own, `GroupMap`): a tick reads the
/// quiescence state and the node's first 24 bytes, which fill the first
/// line together, and a step reads the node's hot fields from the next
/// line on (`multi::layout_tests`).
#[repr(C, align(64))]
pub(super) struct Group<L: RaftLog> {
    pub(super) quiet: Quiet,
    /// An `Action::ApplyRange` of the group is queued, not yet drained.
    pub(super) ranges_queued: bool,
    pub(super) node: RaftNode<L>,
}

/// A host of many Raft groups (see the [module docs](super)).
///
/// ```
/// use raft_io::multi::{HostAction, HostConfig, MultiNode};
/// use raft_io::{Action, Event, MemoryLog, RaftConfig};
///
/// let mut host = MultiNode::new(HostConfig::new(1));
/// host.create_group(7, RaftConfig::single(1), MemoryLog::new())?;
/// host.step(7, Event::Campaign)?;
/// host.step(7, Event::Propose("x".into()))?;
/// let applied = host
///     .drain_actions()
///     .filter(|a| matches!(a, HostAction::Group { group: 7, action: Action::Apply { .. } }))
///     .count();
/// assert_eq!(applied, 1);
/// # Ok::<(), raft_io::multi::MultiError>(())
/// ```
pub struct MultiNode<L: RaftLog> {
    pub(super) cfg: HostConfig,
    pub(super) groups: GroupMap<Group<L>>,
    /// The groups not quiesced: the only ones a tick steps, so an idle
    /// group costs nothing per tick.
    pub(super) awake: std::collections::BTreeSet<GroupId>,
    /// The tick at which each peer was last heard from.
    pub(super) peers: BTreeMap<NodeId, u64>,
    /// Peers declared down whose quiesced groups were woken: their silence
    /// is acted on once, not on every tick it lasts (a node removed from
    /// every group stays silent for good).
    pub(super) lost: std::collections::BTreeSet<NodeId>,
    /// Peers forgotten since the driver last asked
    /// ([`take_departed_peers`](MultiNode::take_departed_peers)).
    pub(super) departed: std::collections::BTreeSet<NodeId>,
    /// The peers heard since the clock last moved: heard at the end of the
    /// next move, however far (a slow turn's envelopes are recent news).
    pub(super) heard: Vec<NodeId>,
    /// The quiesced followers that took quiet news from their leader since
    /// the clock last moved: their quiet time restarts at the end of the
    /// next move (`quiesce.rs`, `liveness`).
    pub(super) leader_heard: Vec<GroupId>,
    pub(super) ticks: u64,
    pub(super) out: Vec<HostAction>,
    /// The groups with an `Action::ApplyRange` queued since the last drain.
    pub(super) unread: Vec<GroupId>,
    pub(super) scratch: Vec<Action>,
    /// The awake groups a tick steps, copied out (a group may quiesce as
    /// it is stepped); kept between ticks.
    pub(super) ticking: Vec<GroupId>,
    /// The group messages and quiescence notices of a batch being
    /// received, with their arrival order (`receive_all`); kept between
    /// batches.
    pub(super) held: Vec<(GroupId, usize, Held)>,
    /// A group's messages in a row, in order (`step_held`); kept between
    /// batches.
    pub(super) run: Vec<Message>,
    /// The storage failures of steps no call answers for (a received
    /// message's), until [`take_halts`](MultiNode::take_halts).
    pub(super) halts: Vec<(GroupId, crate::Error)>,
    /// Campaign slots (`campaigns.rs`).
    pub(super) campaigns: Campaigns,
    /// One copy of each configuration the groups hold: groups on the same
    /// nodes read one configuration, which stays in the cache.
    pub(super) configs: SharedConfigs,
    pub(super) stats: HostStats,
}

impl<L: RaftLog> MultiNode<L> {
    /// A host with no groups.
    pub fn new(config: HostConfig) -> Self {
        Self {
            groups: GroupMap::new(),
            awake: std::collections::BTreeSet::new(),
            peers: BTreeMap::new(),
            lost: std::collections::BTreeSet::new(),
            departed: std::collections::BTreeSet::new(),
            heard: Vec::new(),
            leader_heard: Vec::new(),
            ticks: 0,
            out: Vec::new(),
            unread: Vec::new(),
            scratch: Vec::new(),
            ticking: Vec::new(),
            held: Vec::new(),
            run: Vec::new(),
            halts: Vec::new(),
            campaigns: Campaigns::new(config.max_campaigns),
            configs: SharedConfigs::default(),
            stats: HostStats::default(),
            cfg: config,
        }
    }

    /// This host's node id.
    pub fn id(&self) -> NodeId {
        self.cfg.node
    }

    /// Creates group `group` with a node on `log` (fresh or recovered, as
    /// [`RaftNode::with_log`]). Refused for group 0, an existing group, a
    /// group removed whose actions are not drained yet
    /// ([`MultiError::Undrained`]), or a configuration for another node.
    ///
    /// With [`RaftConfig::apply_ranges`], the group's committed commands
    /// come as [`Action::ApplyRange`]: read them with
    /// [`group(group)`](Self::group)`.visit_applied(first, last, f)` after
    /// [`drain_actions`](Self::drain_actions). The host queues actions
    /// across steps, so before it steps a group again (or removes it) while
    /// one of its ranges is still queued, it turns the range into
    /// [`Action::Apply`]s (clones of the commands): a later step could
    /// compact the range away before it is read.
    pub fn create_group(&mut self, group: GroupId, config: RaftConfig, log: L) -> Result<(), MultiError> {
        if group == 0 {
            return Err(MultiError::InvalidGroup);
        }
        if self.groups.contains_key(&group) {
            return Err(MultiError::GroupExists(group));
        }
        if self.out.iter().any(|a| matches!(a, HostAction::Group { group: of, .. } if *of == group)) {
            return Err(MultiError::Undrained(group));
        }
        if config.get_id() != self.cfg.node {
            return Err(MultiError::WrongNode { group, config_node: config.get_id(), node: self.cfg.node });
        }
        let mut node = RaftNode::with_log(config, log).map_err(|source| MultiError::Node { group, source })?;
        node.share_configs(&mut self.configs);
        node.track_quiet_limit();
        for id in node.membership().members() {
            if id != self.cfg.node {
                self.peers.entry(id).or_insert(self.ticks);
            }
        }
        self.groups.insert(group, Group { node, quiet: Quiet::default(), ranges_queued: false });
        self.awake.insert(group);
        self.stats.groups = self.groups.len() as u64;
        Ok(())
    }

    /// Removes group `group` and returns its node (with its log), whatever
    /// it was doing: a snapshot being sent or received is abandoned (its
    /// peers see the stream stop, as if this node crashed). A node that
    /// leads the group first hands it to an up-to-date voter heard from
    /// (a `TimeoutNow` is queued, `docs/PROTOCOL.md` §10): its followers,
    /// quiesced or not, elect a new leader at once instead of waiting for
    /// an election timeout, or, quiesced, for a request.
    pub fn remove_group(&mut self, group: GroupId) -> Result<RaftNode<L>, MultiError> {
        self.settle_ranges(group);
        self.hand_off(group);
        let removed = self.groups.remove(&group).ok_or(MultiError::UnknownGroup(group))?;
        self.awake.remove(&group);
        self.campaigns.removed(group);
        self.forget_departed_peers();
        self.stats.groups = self.groups.len() as u64;
        if removed.quiet.is_quiesced() {
            self.stats.quiesced = self.stats.quiesced.saturating_sub(1);
        }
        Ok(removed.node)
    }

    /// Group `group`'s node.
    pub fn group(&self, group: GroupId) -> Option<&RaftNode<L>> {
        self.groups.get(&group).map(|g| &g.node)
    }

    /// Group `group`'s node, mutably (for controls of its log; never step
    /// it directly, or the host's view of it goes stale).
    pub fn group_mut(&mut self, group: GroupId) -> Option<&mut RaftNode<L>> {
        self.groups.get_mut(&group).map(|g| &mut g.node)
    }

    /// The groups on this node, in order.
    pub fn group_ids(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// The groups on this node with their nodes, in order of group id.
    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &RaftNode<L>)> + '_ {
        self.groups.iter().map(|(&id, g)| (id, &g.node))
    }

    /// Whether group `group` is quiesced here.
    pub fn is_quiesced(&self, group: GroupId) -> bool {
        self.groups.get(&group).is_some_and(|g| g.quiet.is_quiesced())
    }

    /// The host's counters.
    pub fn stats(&self) -> HostStats {
        HostStats { campaigning: self.campaigns.running() as u64, campaigns_held: self.campaigns.held(), ..self.stats }
    }

    /// The host's clock, in ticks.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Steps group `group` with a local event (a proposal, read,
    /// membership change, transfer, snapshot, write completion, campaign).
    /// A quiesced group wakes first. The group's actions (and the
    /// envelopes they send) are queued for [`drain_actions`](Self::drain_actions).
    pub fn step(&mut self, group: GroupId, event: Event) -> Result<(), MultiError> {
        if group == 0 {
            return Err(MultiError::InvalidGroup);
        }
        let Some(g) = self.groups.get(&group) else { return Err(MultiError::UnknownGroup(group)) };
        if g.quiet.is_quiesced() && !matches!(event, Event::Persisted(_)) {
            self.wake(group, false)?;
        }
        match event {
            // Ticks of one group are paced like the host's own.
            Event::Tick => self.tick_group(group, 1),
            Event::Ticks(n) if n > 0 => self.tick_group(group, n),
            event => self.step_group(group, event),
        }
    }

    /// One tick of the host's clock: every group that is not quiesced
    /// ticks; idle led groups quiesce; pings go out; peers silent too long
    /// wake the quiesced groups they lead here. The same as
    /// [`advance(1)`](Self::advance).
    pub fn tick(&mut self) -> Result<(), MultiError> {
        self.advance(1)
    }

    /// `n` ticks of the host's clock at once, as a driver reports the time
    /// that passed while it was busy or paused (`docs/PROTOCOL.md` §8.4):
    /// every group that is not quiesced steps one `Event::Ticks(n)` (its
    /// timers end where `n` single ticks would leave them, with at most one
    /// heartbeat round and one election), idle led groups quiesce, at most
    /// one round of pings goes out, and peers silent too long wake the
    /// quiesced groups they lead here. A turn that finds many ticks due
    /// thus costs one step per awake group, not one per group and tick.
    /// `advance(0)` does nothing.
    ///
    /// A group whose step fails does not hold the others back: every group
    /// ticks and the liveness checks run, then the first error is returned.
    /// A group whose node halted (a storage failure, reported by the step
    /// that failed) is not stepped again: its node would only answer
    /// [`Error::Halted`](crate::Error::Halted).
    pub fn advance(&mut self, n: u64) -> Result<(), MultiError> {
        if n == 0 {
            return Ok(());
        }
        let before = self.ticks;
        self.ticks = self.ticks.saturating_add(n);
        self.campaigns.begin_tick();
        let mut ids = std::mem::take(&mut self.ticking);
        ids.extend(self.awake.iter().copied());
        self.campaigns.rotate(&mut ids);
        let mut first = Ok(());
        for &group in &ids {
            let stepped = self.tick_group(group, n);
            self.maybe_quiesce(group);
            first = first.and(stepped);
        }
        ids.clear();
        self.ticking = ids;
        let live = self.liveness(before);
        first.and(live)
    }

    /// Moves the actions queued so far out, in order. An
    /// [`Action::ApplyRange`] among them must be read (with
    /// [`group`](Self::group)`.visit_applied`) before the host is called
    /// again.
    pub fn drain_actions(&mut self) -> std::vec::Drain<'_, HostAction> {
        for group in self.unread.drain(..) {
            if let Some(g) = self.groups.get_mut(&group) {
                g.ranges_queued = false;
            }
        }
        self.out.drain(..)
    }

    /// Settles `group`'s queued ranges ([`settle_ranges`](Self::settle_ranges))
    /// if stepping it with `event` could drop them from its log (a snapshot
    /// installed: [`Event::may_drop_applied`]). Any other step leaves them
    /// readable, so a host stepped one envelope at a time does not rewrite
    /// its queue once per step of a group with a range in it.
    pub(super) fn settle_before(&mut self, group: GroupId, event: &Event) {
        if event.may_drop_applied() {
            self.settle_ranges(group);
        }
    }

    /// Turns `group`'s queued [`Action::ApplyRange`]s into
    /// [`Action::Apply`]s (clones of the commands), in place: called before
    /// the group is removed, or stepped with an event that could compact a
    /// range away before the driver reads it (`settle_before`). Callers
    /// that mark a position in the queue settle first (the queue grows
    /// here).
    pub(super) fn settle_ranges(&mut self, group: GroupId) {
        let Self { groups, out, .. } = self;
        let Some(g) = groups.get_mut(&group) else { return };
        if !std::mem::take(&mut g.ranges_queued) {
            return;
        }
        let node = &g.node;
        let mut settled = Vec::with_capacity(out.len());
        for action in out.drain(..) {
            match action {
                HostAction::Group { group: of, action: Action::ApplyRange { first, last } } if of == group => {
                    let mut applies = Vec::new();
                    let read = node.visit_applied(first, last, |index, term, command| {
                        applies.push(HostAction::Group {
                            group,
                            action: Action::Apply { index, term, command: command.clone() },
                        });
                    });
                    // Unreachable: nothing stepped the group since. Were it
                    // to fail, the range stays (the driver's read reports it).
                    debug_assert!(read.is_ok(), "group {group}: queued range {first}..={last} unreadable");
                    match read {
                        Ok(()) => settled.append(&mut applies),
                        Err(_) => settled.push(HostAction::Group { group, action: Action::ApplyRange { first, last } }),
                    }
                }
                other => settled.push(other),
            }
        }
        *out = settled;
    }

    /// Steps `n` ticks of one group, holding its election back if it falls
    /// due with no campaign slot free (`campaigns.rs`).
    pub(super) fn tick_group(&mut self, group: GroupId, n: u64) -> Result<(), MultiError> {
        // A quiet follower counts the ticks without a step: they are taken
        // at its next step (`RaftNode::defer_ticks`).
        let mut due = false;
        if let Some(g) = self.groups.get_mut(&group) {
            if g.node.is_halted() {
                return Ok(());
            }
            if g.node.defer_ticks(n) {
                self.stats.ticks_deferred += 1;
                return Ok(());
            }
            due = g.node.campaigns_within(n);
        }
        let event = if n == 1 { Event::Tick } else { Event::Ticks(n) };
        if !due {
            return self.step_group(group, event);
        }
        let hold = self.campaigns.ask(group) == Grant::Hold;
        if let Some(g) = self.groups.get_mut(&group) {
            g.node.hold_campaign(hold);
        }
        let stepped = self.step_group(group, event);
        if let Some(g) = self.groups.get_mut(&group) {
            g.node.hold_campaign(false);
            if !hold {
                // The slot follows what the step made of it (a group that
                // did not campaign after all gives it back).
                self.campaigns.role_changed(group, g.node.role());
            }
        }
        stepped
    }

    /// Steps one group and queues its actions, tagged.
    pub(super) fn step_group(&mut self, group: GroupId, event: Event) -> Result<(), MultiError> {
        self.settle_before(group, &event);
        let Self { cfg, groups, peers, ticks, out, unread, scratch, stats, campaigns, configs, .. } = self;
        let Some(g) = groups.get_mut(&group) else { return Err(MultiError::UnknownGroup(group)) };
        stats.steps += 1;
        // Every event a group's node emits carries its group (feature
        // `tracing`; nothing is compiled in without it).
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("raft_group", group).entered();
        let result = g.node.step_into(event, scratch);
        let me = cfg.node;
        let mut reconfigured = false;
        for action in scratch.drain(..) {
            match action {
                Action::Send { to, message } => {
                    out.push(HostAction::Send(Envelope { from: me, to, body: EnvelopeBody::Raft { group, message } }))
                }
                Action::MembershipChanged { ref membership, .. } => {
                    for id in membership.members() {
                        if id != me {
                            peers.entry(id).or_insert(*ticks);
                        }
                    }
                    reconfigured = true;
                    out.push(HostAction::Group { group, action });
                }
                Action::RoleChanged { role, .. } => {
                    campaigns.role_changed(group, role);
                    out.push(HostAction::Group { group, action });
                }
                Action::ApplyRange { .. } => {
                    if !std::mem::replace(&mut g.ranges_queued, true) {
                        unread.push(group);
                    }
                    out.push(HostAction::Group { group, action });
                }
                action => out.push(HostAction::Group { group, action }),
            }
        }
        if reconfigured {
            // A configuration appended, truncated back or installed with a
            // snapshot: the node holds a copy of its own. (A snapshot that
            // brings the configuration already in effect leaves a copy
            // unshared: correct, only not as cheap to read.)
            g.node.share_configs(configs);
            self.forget_departed_peers();
        }
        result.map_err(|source| MultiError::Node { group, source })
    }

    /// Forgets the peers that no group here has in its configuration any
    /// more: no pings go to them and their silence means nothing. A group
    /// that names one again (a configuration rolled back, a group created)
    /// brings it back.
    pub(super) fn forget_departed_peers(&mut self) {
        let mut departed: Vec<NodeId> = self.peers.keys().copied().collect();
        for g in self.groups.values() {
            if departed.is_empty() {
                return;
            }
            let m = g.node.membership();
            departed.retain(|&id| !m.contains(id));
        }
        for id in departed {
            self.peers.remove(&id);
            self.lost.remove(&id);
            self.departed.insert(id);
        }
    }

    /// Moves to `out`, in id order, the peers that no group here names any
    /// more and that no group has named again since: a driver that opened
    /// a connection to one may close it (the many-groups runtime tells its
    /// transport, `GroupTransport::forget_peer`, with feature `net`).
    /// Each departure is reported once. Until they are taken, the departed
    /// peers are kept, one entry per node id.
    ///
    /// ```
    /// use raft_io::multi::{HostConfig, MultiNode};
    /// use raft_io::{MemoryLog, RaftConfig};
    ///
    /// let mut host = MultiNode::new(HostConfig::new(1));
    /// host.create_group(7, RaftConfig::new(1, [1, 2, 3]), MemoryLog::new())?;
    /// host.remove_group(7)?;
    /// let mut gone = Vec::new();
    /// host.take_departed_peers(&mut gone);
    /// assert_eq!(gone, [2, 3]);
    /// host.take_departed_peers(&mut gone);
    /// assert_eq!(gone, [2, 3], "reported once");
    /// # Ok::<(), raft_io::multi::MultiError>(())
    /// ```
    pub fn take_departed_peers(&mut self, out: &mut Vec<NodeId>) {
        let peers = &self.peers;
        out.extend(self.departed.iter().copied().filter(|id| !peers.contains_key(id)));
        self.departed.clear();
    }
}
