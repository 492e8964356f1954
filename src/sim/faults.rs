//! Faults a test injects into a simulated cluster: partitions (also
//! one-way), network rates, tick skew, crashes (also inside a write),
//! restarts, and messages from buggy peers.

use super::cluster::Cluster;
use super::{NetworkFaults, Replay, Rng, StateMachine, TICK};
use crate::message::Message;
use crate::node::{Event, RaftNode};
use crate::types::NodeId;

impl<S: StateMachine> Cluster<S> {
    /// Delivers `message` to its destination now, bypassing the network (a
    /// message from a buggy or replaying peer, for instance).
    pub fn inject(&mut self, message: Message) {
        let to = message.to;
        let _ = self.step_node(to, Event::Message(message));
    }

    /// A buggy but honest peer: delivers again the kept message number
    /// `pick` (modulo how many are kept; see [`SimConfig::keep_messages`](super::SimConfig::keep_messages)),
    /// changed as `how` says. Returns whether a message was delivered.
    pub fn replay(&mut self, pick: usize, how: Replay) -> bool {
        if self.recent.is_empty() {
            return false;
        }
        let mut m = self.recent[pick % self.recent.len()].clone();
        match how {
            Replay::AsIs => {}
            Replay::TruncateEntries(keep) => match &mut m.body {
                crate::message::MessageBody::Append(a) => a.entries.truncate(keep),
                _ => return false,
            },
            Replay::FromUnknown(from) => {
                if self.slot(from).is_some() || from == 0 {
                    return false;
                }
                m.from = from;
            }
        }
        self.note(format!("replay {} n{} -> n{} t{} ({how:?})", m.body.name(), m.from, m.to, m.term));
        self.inject(m);
        true
    }

    /// Splits the cluster into `groups`; nodes not listed are isolated.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.note(format!("partition {groups:?}"));
        let ids = self.ids();
        self.net.partition(&ids, groups);
    }

    /// Cuts node `id` off from everyone.
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.ids().into_iter().filter(|&n| n != id).collect();
        self.partition(&[&[id], &others]);
    }

    /// Blocks messages from `from` to `to` only.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.note(format!("block n{from} -> n{to}"));
        self.net.block(from, to);
    }

    /// Delays every message from `from` to `to` by `extra_ticks` more
    /// ticks (one way), until [`heal`](Self::heal).
    pub(crate) fn slow_link(&mut self, from: NodeId, to: NodeId, extra_ticks: u64) {
        self.note(format!("slow n{from} -> n{to} by {extra_ticks} ticks"));
        self.net.slow(from, to, extra_ticks.saturating_mul(TICK));
    }

    /// Removes every partition, block and slow link.
    pub fn heal(&mut self) {
        self.note("heal");
        self.net.heal();
    }

    /// Whether any partition or block is in place.
    pub fn is_partitioned(&self) -> bool {
        self.net.is_partitioned()
    }

    /// Changes the network's fault rates.
    pub fn set_network(&mut self, faults: NetworkFaults) {
        self.net.faults = faults;
    }

    /// Sets node `id`'s tick period to `TICK / rate`.
    pub fn set_tick_rate(&mut self, id: NodeId, rate: f64) {
        if let Some(i) = self.slot(id) {
            self.nodes[i].period = ((TICK as f64) / rate.max(0.01)).round().max(1.0) as u64;
        }
    }

    /// Node `id`'s tick rate (ticks per [`TICK`] of simulated time).
    pub fn tick_rate(&self, id: NodeId) -> Option<f64> {
        self.slot(id).map(|i| TICK as f64 / self.nodes[i].period as f64)
    }

    /// Crashes node `id`: it stops, and its log keeps only what it synced.
    pub fn crash(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(node) = self.nodes[i].node.take() else { return };
        self.stats.crashes += 1;
        self.note(format!("crash n{id}"));
        // A pause ends with the process; what waited for it is lost.
        self.nodes[i].pause = None;
        self.disk_crashed(i);
        self.nodes[i].down = Some(node.into_log().crash());
    }

    /// Durable mode: node `id` crashes at one of its next durable
    /// operations — the WAL write of its next step that writes, that
    /// write's sync, or the operation after — so its last write is torn at
    /// a random byte and nothing the step produced leaves the node. Until
    /// then it runs normally; afterwards it is down, as after
    /// [`crash`](Self::crash). A no-op without durable mode.
    #[cfg(feature = "persistence")]
    pub fn crash_mid_write(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        if self.nodes[i].node.is_some() {
            self.note(format!("n{id}: crash at one of its next writes"));
        }
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.log_mut_for_sim().arm_crash();
        }
    }

    /// Whether nodes run in the asynchronous storage mode
    /// ([`SimConfig::async_storage`](super::SimConfig::async_storage)).
    pub fn is_async(&self) -> bool {
        self.cfg.async_storage
    }

    /// Whether nodes run on real `WalLog`s ([`SimConfig::durable`](super::SimConfig)).
    pub fn is_durable(&self) -> bool {
        self.cfg.durable
    }

    /// Crashes node `id` inside its next write when the cluster is durable
    /// (a torn write), between steps otherwise.
    pub fn crash_somewhere(&mut self, id: NodeId) {
        #[cfg(feature = "persistence")]
        if self.cfg.durable {
            self.crash_mid_write(id);
            return;
        }
        self.crash(id);
    }

    /// Crashes now (between steps) every node with a crash armed by
    /// [`crash_somewhere`](Self::crash_somewhere) that has not happened yet,
    /// so that healing can restart everyone for good.
    pub fn resolve_pending_crashes(&mut self) {
        for id in self.ids() {
            let pending = self.node(id).is_some_and(|n| n.log().crash_pending());
            if pending {
                self.crash(id);
            }
        }
    }

    /// Restarts a crashed node from its durable log, with a fresh state
    /// machine.
    pub fn restart(&mut self, id: NodeId) {
        let Some(i) = self.slot(id) else { return };
        let Some(log) = self.nodes[i].down.take() else { return };
        self.note(format!("restart n{id}"));
        if let Some(c) = self.checker.as_mut() {
            if let Err(v) = c.restart(id, &log) {
                self.fail(v, Some(id), None);
            }
        }
        let config = self.nodes[i].config.clone();
        match RaftNode::with_log(config, log) {
            Ok(node) => {
                self.nodes[i].node = Some(node);
                self.nodes[i].sm = (self.make)(id);
            }
            Err(e) => panic!("restart of node {id} failed: {e} (seed {})", self.cfg.seed),
        }
    }

    /// Durable mode: a failing disk damages down node `id`'s snapshot file
    /// (one bit flipped, its length unchanged), then the node's log is
    /// reopened as its restart would reopen it. A log that checks its
    /// snapshot file refuses to open: the node is then lost for good (it
    /// never restarts; an operator would have to replace it) and this
    /// returns `Some(false)`. `Some(true)`: the log opened on the damaged
    /// file, and the node restarts on it (the checkers must then catch any
    /// damaged state it serves). `None`: nothing was damaged (the node is up
    /// or has no snapshot file, or the cluster is not durable).
    pub fn damage_snapshot(&mut self, id: NodeId) -> Option<bool> {
        #[cfg(feature = "persistence")]
        {
            let i = self.slot(id)?;
            let log = self.nodes[i].down.take()?;
            match log.damage_snapshot() {
                Ok((log, damaged)) => {
                    self.nodes[i].down = Some(log);
                    if damaged {
                        self.stats.damaged_snapshots += 1;
                        self.note(format!("n{id}: snapshot file damaged; its log opened anyway"));
                    }
                    damaged.then_some(true)
                }
                Err(e) => {
                    self.stats.damaged_snapshots += 1;
                    self.stats.refused_restarts += 1;
                    self.note(format!("n{id}: snapshot file damaged; its log refused to open ({e}): lost"));
                    Some(false)
                }
            }
        }
        #[cfg(not(feature = "persistence"))]
        {
            let _ = id;
            None
        }
    }

    /// Whether node `id` is lost for good (its log refused to open after
    /// [`damage_snapshot`](Self::damage_snapshot)).
    pub fn is_lost(&self, id: NodeId) -> bool {
        self.slot(id).is_some_and(|i| self.nodes[i].node.is_none() && self.nodes[i].down.is_none())
    }

    /// Whether node `id` is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// The simulator's own random generator (for schedules that must replay
    /// with the seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
