//! [`MultiCluster`]: the simulator with many Raft groups per node, each
//! node a [`MultiNode`] host (`docs/PROTOCOL.md` §10).
//!
//! Every node hosts a replica of every group. The network (loss,
//! duplication, delays, partitions) applies per pair of nodes, to every
//! envelope whatever its group; a crash takes down every group replica of
//! the node at once. In the asynchronous storage mode a node's writes of
//! all groups are made durable together, one flush per node after a
//! random delay, as a shared WAL's single fsync per host turn makes them:
//! a crash loses every write not yet flushed, of every group. The five
//! safety properties are checked per group after every event, with one
//! state machine per group replica (a [`HashChain`] of every command, and
//! the last command as a register's value); clients write and read (with
//! ReadIndex, or with the lease in the groups the seed gives lease reads)
//! every group's register, and every group's history is checked
//! for linearizability against the register model; liveness after healing
//! means every group elects a leader and commits on every member of its
//! configuration. The fault schedule is a
//! [`FaultProfile`](crate::sim::FaultProfile) given its many-groups meaning
//! ([`MultiCluster::chaos_profile`]): per-group membership churn,
//! transfers and rebalancing, buggy peers' envelopes, host pauses, the
//! fragile scenes in many groups at once.

mod clients;
mod config;
mod faults;
mod fragile;
mod pause;
mod schedule;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use bytes::Bytes;

use super::check::{Checker, NodeView, applied_range};
use super::linearizability::Call;
use super::network::Network;
use super::{NetworkFaults, SimLog, TICK, Violation};
use crate::config::RaftConfig;
use crate::log::WriteToken;
use crate::message::MessageBody;
use crate::multi::{Envelope, EnvelopeBody, GroupId, HostAction, HostConfig, MultiNode};
use crate::node::{Action, Event, RaftNode};
use crate::rng::{Rng, mix};
use crate::types::{Index, NodeId, ReadId, Role, Term};
use clients::{Pending, RegOp, Register};
pub use config::{MultiSimConfig, MultiSimStats};
use pause::HostPause;

/// How many recently sent envelopes a buggy peer may replay.
const RECENT: usize = 64;

#[derive(Clone, Copy)]
enum Due {
    Tick(NodeId),
    Deliver(u32),
    Flush { node: NodeId, run: u64 },
    Resume(NodeId),
}

struct Slot {
    id: NodeId,
    host: Option<MultiNode<SimLog>>,
    down: BTreeMap<GroupId, SimLog>,
    sms: BTreeMap<GroupId, Register>,
    /// Bumped at each crash: flushes of an earlier run are void.
    run: u64,
    /// The latest write of each group waiting for the node's next flush.
    writes: BTreeMap<GroupId, WriteToken>,
    flush_due: bool,
    /// Each group's role, term, last index and commit index as of its last
    /// check.
    seen: BTreeMap<GroupId, (Role, Term, Index, Index)>,
    /// Host counters of earlier runs.
    past: crate::multi::HostStats,
    /// While the host is paused: what waits for it.
    pause: Option<HostPause>,
    /// Its flushes take 3 to 4 ticks instead of up to 2: a disk slower
    /// than its peers' (the power-cut scene of `Fragile`).
    slow_disk: bool,
    /// Its clock's rate: 1.0 ticks per [`TICK`] of simulated time, faster
    /// or slower in the stale-lease scene of `Fragile` (clock drift).
    tick_rate: f64,
}

/// Many groups per node, under faults: every node a `MultiNode` host of
/// every group, the safety checkers and linearizability per group.
pub struct MultiCluster {
    cfg: MultiSimConfig,
    slots: Vec<Slot>,
    queue: BinaryHeap<Reverse<(u64, u64, u32)>>,
    dues: Vec<Due>,
    envelopes: Vec<Option<Envelope>>,
    seq: u64,
    now: u64,
    net: Network,
    rng: Rng,
    checkers: BTreeMap<GroupId, Checker>,
    stats: MultiSimStats,
    /// Client operations in flight, and each group's resolved history.
    pending: Vec<Pending>,
    histories: BTreeMap<GroupId, Vec<Call<RegOp, u64>>>,
    next_value: u64,
    next_read: ReadId,
    /// The clients' history times: an outcome recorded before an
    /// operation was issued at the same instant comes before it.
    stamps: crate::sim::stamps::InOrder,
    /// The envelopes sent lately (kept for buggy peers to replay).
    recent: Vec<Envelope>,
}

/// Each group hands its committed commands over by range or not, and
/// serves lease reads or not, as the run's seed and the group pick (the
/// same on every node).
fn group_config(id: NodeId, group: GroupId, nodes: usize, seed: u64, asynchronous: bool) -> RaftConfig {
    RaftConfig::new(id, 1..=nodes as NodeId)
        .election_timeout(10, 20)
        .heartbeat_interval(3)
        .seed(mix(seed, group.rotate_left(17) ^ id))
        .snapshot_entries(30)
        .async_storage(asynchronous)
        .apply_ranges(mix(seed ^ super::APPLY_RANGES_SALT, group) & 1 == 1)
        .lease_reads(lease_reads(seed, group))
}

/// Whether `group`'s nodes serve lease reads in the run of `seed`.
fn lease_reads(seed: u64, group: GroupId) -> bool {
    mix(seed ^ super::LEASE_READS_SALT, group) & 1 == 1
}

impl MultiCluster {
    /// A cluster: every node up, hosting every group.
    pub fn new(cfg: MultiSimConfig) -> Self {
        let mut c = Self {
            net: Network::new(mix(cfg.seed, 0x6d75_6c74), cfg.network),
            rng: Rng::new(mix(cfg.seed, 0x6d63_6c75)),
            slots: Vec::new(),
            queue: BinaryHeap::new(),
            dues: Vec::new(),
            envelopes: Vec::new(),
            seq: 0,
            now: 0,
            checkers: (1..=cfg.groups).map(|g| (g, Checker::default())).collect(),
            stats: MultiSimStats::default(),
            pending: Vec::new(),
            histories: BTreeMap::new(),
            next_value: 0,
            next_read: 0,
            stamps: Default::default(),
            recent: Vec::new(),
            cfg,
        };
        for id in 1..=c.cfg.nodes as NodeId {
            let logs = (1..=c.cfg.groups).map(|g| (g, c.fresh_log(id))).collect();
            c.slots.push(Slot {
                id,
                host: None,
                down: logs,
                sms: BTreeMap::new(),
                run: 0,
                writes: BTreeMap::new(),
                flush_due: false,
                seen: BTreeMap::new(),
                past: Default::default(),
                pause: None,
                slow_disk: false,
                tick_rate: 1.0,
            });
            c.restart(id);
            let first = 1 + c.rng.range(0, TICK);
            c.schedule(first, Due::Tick(id));
        }
        c
    }

    fn fresh_log(&self, id: NodeId) -> SimLog {
        let log = SimLog::for_node(false, self.cfg.seed, id, true);
        if self.cfg.async_storage { log.with_async_writes() } else { log }
    }

    fn slot(&self, id: NodeId) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    fn schedule(&mut self, after: u64, due: Due) {
        self.seq += 1;
        let k = self.dues.len() as u32;
        self.dues.push(due);
        self.queue.push(Reverse((self.now.saturating_add(after), self.seq, k)));
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// Node `id`'s host, while it is up.
    pub fn host(&self, id: NodeId) -> Option<&MultiNode<SimLog>> {
        self.slot(id).and_then(|i| self.slots[i].host.as_ref())
    }

    /// The leader of `group` as the up nodes see it (the highest term's).
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.slots
            .iter()
            .filter_map(|s| s.host.as_ref()?.group(group).filter(|n| n.is_leader()).map(|n| (n.term(), s.id)))
            .max()
            .map(|(_, id)| id)
    }

    /// Simulated time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// What the run went through (host counters summed over the nodes'
    /// runs).
    pub fn stats(&self) -> MultiSimStats {
        let mut s = self.stats;
        for slot in &self.slots {
            let h = slot.host.as_ref().map(|h| h.stats()).unwrap_or_default();
            s.quiesces += slot.past.quiesces + h.quiesces;
            s.wakes += slot.past.wakes + h.wakes;
            s.woken_by_peer_loss += slot.past.woken_by_peer_loss + h.woken_by_peer_loss;
            s.campaigns_held += slot.past.campaigns_held + h.campaigns_held;
            s.dropped += slot.past.unknown_group_dropped
                + slot.past.misaddressed_dropped
                + h.unknown_group_dropped
                + h.misaddressed_dropped;
        }
        s
    }

    /// Processes the next scheduled event; false when nothing is left.
    pub fn step(&mut self) -> Result<bool, Violation> {
        let Some(Reverse((at, _, k))) = self.queue.pop() else { return Ok(false) };
        self.now = at;
        match self.dues[k as usize] {
            Due::Tick(id) => {
                let rate = self.slot(id).map_or(1.0, |i| self.slots[i].tick_rate);
                self.schedule((TICK as f64 / rate) as u64, Due::Tick(id));
                if let Some(i) = self.slot(id).filter(|&i| !self.pause_tick(i)) {
                    if let Some(h) = self.slots[i].host.as_mut() {
                        h.tick().map_err(|e| Violation::new("Host", format!("node {id}: tick failed: {e}")))?;
                        self.carry_out(i)?;
                    }
                }
            }
            Due::Deliver(e) => {
                let Some(env) = self.envelopes.get_mut(e as usize).and_then(Option::take) else { return Ok(true) };
                let Some(i) = self.slot(env.to) else { return Ok(true) };
                // Everything else arriving at that node at the same instant
                // comes with it, as one batch (as a driver's turn reads it).
                // Deliveries to other nodes at that instant are set aside
                // and put back with their places in the queue.
                let to = env.to;
                let mut burst = vec![env];
                let mut others = Vec::new();
                while let Some(&Reverse((next_at, seq, next))) = self.queue.peek() {
                    let Due::Deliver(e) = self.dues[next as usize] else { break };
                    if next_at != at {
                        break;
                    }
                    self.queue.pop();
                    if self.envelopes[e as usize].as_ref().is_some_and(|env| env.to != to) {
                        others.push(Reverse((next_at, seq, next)));
                    } else {
                        burst.extend(self.envelopes[e as usize].take());
                    }
                }
                self.queue.extend(others);
                burst.retain(|env| self.net.connected(env.from, env.to));
                if self.slots[i].host.is_some() {
                    self.deliver_all(i, burst)?;
                }
            }
            Due::Flush { node, run } => self.flush(node, run)?,
            Due::Resume(id) => self.resume(id)?,
        }
        Ok(true)
    }

    /// Runs for `ticks` ticks of simulated time.
    pub fn run_ticks(&mut self, ticks: u64) -> Result<(), Violation> {
        let end = super::ticks_after(self.now, ticks);
        while self.queue.peek().is_some_and(|Reverse((at, ..))| *at <= end) {
            self.step()?;
        }
        self.now = self.now.max(end);
        Ok(())
    }

    /// Crashes node `id`: every group replica on it stops, and each log
    /// keeps only what was made durable (flushed).
    pub fn crash(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(mut host) = self.slots[i].host.take() else { return };
        self.stats.crashes += 1;
        let s = host.stats();
        let past = &mut self.slots[i].past;
        past.quiesces += s.quiesces;
        past.wakes += s.wakes;
        past.woken_by_peer_loss += s.woken_by_peer_loss;
        past.campaigns_held += s.campaigns_held;
        past.unknown_group_dropped += s.unknown_group_dropped;
        past.misaddressed_dropped += s.misaddressed_dropped;
        // A pause ends with the process; what waited for it is lost.
        self.slots[i].pause = None;
        let groups: Vec<GroupId> = host.group_ids().collect();
        for g in groups {
            if let Ok(node) = host.remove_group(g) {
                self.slots[i].down.insert(g, node.into_log().crash());
            }
        }
        let slot = &mut self.slots[i];
        slot.run += 1;
        slot.writes.clear();
        slot.flush_due = false;
        slot.sms.clear();
    }

    /// Restarts a crashed node from its logs, with fresh state machines.
    pub fn restart(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        if self.slots[i].host.is_some() {
            return;
        }
        let (nodes, seed, asynchronous) = (self.cfg.nodes, self.cfg.seed, self.cfg.async_storage);
        let host_cfg = HostConfig::new(id)
            .ping_interval(3)
            .peer_timeout(10)
            .quiesce_after(6)
            .quiescence(self.cfg.quiescence)
            .max_campaigns(self.cfg.max_campaigns);
        let mut host = MultiNode::new(host_cfg);
        let logs = std::mem::take(&mut self.slots[i].down);
        for (g, log) in logs {
            if let Some(c) = self.checkers.get_mut(&g) {
                let _ = c.restart(id, &log);
            }
            host.create_group(g, group_config(id, g, nodes, seed, asynchronous), log).unwrap_or_else(|e| {
                panic!("raft-io multi simulator: node {id} group {g} failed to restart: {e} (seed {seed})")
            });
            self.slots[i].sms.insert(g, Register::default());
            self.slots[i].seen.insert(g, (Role::Follower, 0, 0, 0));
        }
        self.slots[i].host = Some(host);
    }

    /// Whether node `id` is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.host(id).is_some()
    }

    /// Splits the nodes into the given sides (one-way blocks between them);
    /// a node no side lists is cut off from every other.
    pub fn partition(&mut self, sides: &[&[NodeId]]) {
        let ids = self.ids();
        self.net.partition(&ids, sides);
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Sets the network's fault rates.
    pub fn set_network(&mut self, faults: NetworkFaults) {
        self.net.faults = faults;
    }

    /// Carries out what node slot `i`'s host asked, then checks its groups.
    fn carry_out(&mut self, i: usize) -> Result<(), Violation> {
        let id = self.slots[i].id;
        let Some(host) = self.slots[i].host.as_mut() else { return Ok(()) };
        let actions: Vec<HostAction> = host.drain_actions().collect();
        for a in actions {
            match a {
                HostAction::Send(env) => {
                    if let EnvelopeBody::Raft { group, message } = &env.body {
                        let leads = matches!(
                            message.body,
                            MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Snapshot(_)
                        );
                        if let (true, Some(c)) = (leads, self.checkers.get_mut(group)) {
                            c.led(message.from, message.term).map_err(|v| in_group(*group, v))?;
                        }
                    }
                    self.route(env);
                }
                HostAction::Group { group, action } => self.group_action(i, id, group, action)?,
            }
        }
        self.check(i)
    }

    /// Applies one committed command of `group` on node slot `i`.
    fn apply(
        &mut self,
        i: usize,
        id: NodeId,
        group: GroupId,
        index: Index,
        term: Term,
        command: &Bytes,
    ) -> Result<(), Violation> {
        if let Some(c) = self.checkers.get_mut(&group) {
            c.applied(id, index, term, command).map_err(|v| in_group(group, v))?;
        }
        if let Some(sm) = self.slots[i].sms.get_mut(&group) {
            sm.apply(index, command);
        }
        self.resolve_writes(group, index, term);
        Ok(())
    }

    fn group_action(&mut self, i: usize, id: NodeId, group: GroupId, action: Action) -> Result<(), Violation> {
        match action {
            Action::Apply { index, term, command } => self.apply(i, id, group, index, term, &command)?,
            Action::ApplyRange { first, last } => {
                // Copied out, then checked and applied one by one.
                let node = self.slots[i].host.as_ref().and_then(|h| h.group(group));
                let mut range = Vec::new();
                if let Some(node) = node {
                    applied_range(node, first, last, &mut range).map_err(|v| in_group(group, v))?;
                }
                for (index, term, command) in range {
                    self.apply(i, id, group, index, term, &command)?;
                }
            }
            Action::ReadReady { id: read, .. } => {
                let value = self.slots[i].sms.get(&group).map_or(0, |sm| sm.value);
                self.resolve_read(id, group, read, Some(value));
            }
            Action::ReadFailed { id: read, .. } => self.resolve_read(id, group, read, None),
            Action::MembershipCommitted { index, .. } => {
                if let Some(c) = self.checkers.get_mut(&group) {
                    c.membership_committed(id, index).map_err(|v| in_group(group, v))?;
                }
            }
            Action::RestoreSnapshot { meta, data } => {
                if let Some(c) = self.checkers.get_mut(&group) {
                    c.restoring(id, meta.index, &data).map_err(|v| in_group(group, v))?;
                }
                let digest = self.slots[i].sms.get_mut(&group).map_or(0, |sm| {
                    sm.restore(&data);
                    sm.digest()
                });
                if let Some(c) = self.checkers.get_mut(&group) {
                    c.restored(id, meta.index, digest).map_err(|v| in_group(group, v))?;
                }
            }
            Action::SnapshotWanted { applied } => {
                let data = self.slots[i].sms.get(&group).map(Register::snapshot).unwrap_or_default();
                if let Some(c) = self.checkers.get_mut(&group) {
                    c.snapshot_taken(applied, &data);
                }
                if let Some(h) = self.slots[i].host.as_mut() {
                    let _ = h.step(group, Event::Snapshot { index: applied, data });
                }
            }
            Action::WriteSubmitted { token } => {
                self.slots[i].writes.insert(group, token);
                if !self.slots[i].flush_due {
                    self.slots[i].flush_due = true;
                    let (node, run) = (id, self.slots[i].run);
                    let delay = if self.slots[i].slow_disk {
                        self.rng.range(3 * TICK, 4 * TICK)
                    } else {
                        self.rng.range(0, 2 * TICK)
                    };
                    self.schedule(delay, Due::Flush { node, run });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands envelopes `envs` to node slot `i`'s host as one batch (held or
    /// lost while it is paused), and carries out what it asks.
    pub(super) fn deliver_all(&mut self, i: usize, envs: Vec<Envelope>) -> Result<(), Violation> {
        let mut kept: Vec<Envelope> = envs.into_iter().filter_map(|env| self.hold_if_paused(i, env)).collect();
        if kept.is_empty() {
            return Ok(());
        }
        self.stats.delivered += kept.len() as u64;
        if let Some(h) = self.slots[i].host.as_mut() {
            h.receive_all(&mut kept);
        }
        self.carry_out(i)
    }

    /// One flush of node `node`'s writes of every group: each group is told
    /// its latest write is durable.
    fn flush(&mut self, node: NodeId, run: u64) -> Result<(), Violation> {
        let Some(i) = self.slot(node) else { return Ok(()) };
        if self.slots[i].run != run || self.slots[i].host.is_none() {
            return Ok(());
        }
        if let Some(p) = self.slots[i].pause.as_mut() {
            // The disk finished while the process was stopped: the host
            // learns it when it runs again.
            p.flush = true;
            return Ok(());
        }
        self.slots[i].flush_due = false;
        let writes = std::mem::take(&mut self.slots[i].writes);
        self.stats.flushes += 1;
        for (group, token) in writes {
            self.stats.completions += 1;
            if let Some(h) = self.slots[i].host.as_mut() {
                h.step(group, Event::Persisted(token)).map_err(|e| {
                    Violation::new("Host", format!("node {node} group {group}: completion refused: {e}"))
                })?;
            }
        }
        self.carry_out(i)
    }

    fn route(&mut self, env: Envelope) {
        let (from, to) = (env.from, env.to);
        if self.cfg.profile.buggy_peers() {
            if self.recent.len() == RECENT {
                let k = (self.seq % RECENT as u64) as usize;
                self.recent[k] = env.clone();
            } else {
                self.recent.push(env.clone());
            }
        }
        for delay in self.net.route(from, to).into_iter().flatten() {
            let k = self.envelopes.len() as u32;
            self.envelopes.push(Some(env.clone()));
            self.schedule(delay, Due::Deliver(k));
        }
    }

    /// The safety properties and the configuration rules for every group
    /// of node slot `i`, then the inductive form of Leader Completeness
    /// over the running replicas of each of those groups whose replica here
    /// changed since its last check (its log, role, term or commit index).
    /// A group that changed nowhere cannot have become a violation: other
    /// replicas are checked when they change, a crash only takes voters
    /// away, and a restarted replica is new to its check.
    fn check(&mut self, i: usize) -> Result<(), Violation> {
        let slot = &mut self.slots[i];
        let Some(host) = slot.host.as_mut() else { return Ok(()) };
        let groups: Vec<GroupId> = host.group_ids().collect();
        let mut changed = Vec::new();
        for g in groups {
            let (Some(checker), Some(node)) = (self.checkers.get_mut(&g), host.group_mut(g)) else { continue };
            let view = NodeView {
                id: slot.id,
                role: node.role(),
                term: node.term(),
                commit: node.commit_index(),
                applied: node.last_applied(),
                digest: slot.sms.get(&g).map_or(0, Register::digest),
            };
            let now = (view.role, view.term, node.last_index(), view.commit);
            let before = slot.seen.insert(g, now).unwrap_or((Role::Follower, 0, 0, 0));
            let journaled =
                checker.node_stepped(node, (before.0, before.1, before.2), view).map_err(|v| in_group(g, v))?;
            if journaled || now != before {
                changed.push(g);
            }
        }
        for g in changed {
            let Some(checker) = self.checkers.get(&g) else { continue };
            let replicas: Vec<&RaftNode<SimLog>> =
                self.slots.iter().filter_map(|s| s.host.as_ref().and_then(|h| h.group(g))).collect();
            checker.electable(&replicas).map_err(|v| in_group(g, v))?;
        }
        Ok(())
    }
}

fn in_group(group: GroupId, v: Violation) -> Violation {
    Violation::new(v.property, format!("group {group}: {}", v.detail))
}
