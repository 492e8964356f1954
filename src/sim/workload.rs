//! [`KvWorkload`]: random clients of a replicated [`KvStore`], recording a
//! [`History`] for the linearizability checker.
//!
//! Each round issues a few operations: puts and compare-and-sets through the
//! leader (tracked with [`Cluster::submit`]), and reads of every kind —
//! ReadIndex and lease reads on the leader, follower reads on any member —
//! through [`Cluster::read_query`]. Like real clients, each of a fixed
//! number of clients has at most one operation outstanding, and gives up on
//! one that takes too long (a write given up on keeps an unknown outcome
//! unless it is resolved later). Outcomes are collected as they arrive; a
//! write whose outcome is still unknown at the end may have taken effect at
//! any point after it was issued. The history's times are stamps
//! (`stamps.rs`): simulated time, with the order within an instant kept,
//! so that a write acknowledged before a read was issued at the same
//! instant comes before it.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::linearizability::{History, KvOp, Operation};
use super::stamps::Stamps;
use super::{Cluster, KvStore};
use crate::node::ReadKind;
use crate::rng::Rng;
use crate::types::{NodeId, ReadId};

/// Clients of a workload by default: the most operations outstanding at
/// once.
const CLIENTS: usize = 6;

/// How long a client waits for an outcome before it gives up, by default,
/// in ticks.
const GIVE_UP_TICKS: u64 = 60;

/// What a client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Read(NodeId, ReadId),
    Write(u64),
}

/// Random key-value clients of a simulated cluster: puts and
/// compare-and-sets through the leader, reads of all three kinds, recorded
/// as a linearizability [`History`].
#[derive(Debug)]
pub struct KvWorkload {
    rng: Rng,
    keys: Vec<String>,
    lease: bool,
    stale_reads: bool,
    history: History,
    stamps: Stamps,
    next_read: ReadId,
    next_value: u64,
    reads: BTreeMap<(NodeId, ReadId), (usize, String, u64)>,
    writes: BTreeMap<u64, (usize, String, KvOp, u64)>,
    /// Per client: the operation it waits for and since when.
    clients: Vec<Option<(Waiting, u64)>>,
    last_values: BTreeMap<String, Bytes>,
    read_outcomes_seen: usize,
    write_outcomes_seen: usize,
    issued: u64,
    /// How long a client waits before it gives up, in simulated time.
    give_up: u64,
}

impl KvWorkload {
    /// Clients over `keys` keys, drawing from `seed`. `lease` lets them issue
    /// lease reads (the nodes must have `lease_reads` enabled).
    pub fn new(seed: u64, keys: usize, lease: bool) -> Self {
        Self {
            rng: Rng::new(seed ^ 0x6b76_776f_726b),
            keys: (0..keys.max(1)).map(|k| format!("k{k}")).collect(),
            lease,
            stale_reads: false,
            history: History::new(),
            stamps: Stamps::default(),
            next_read: 0,
            next_value: 0,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            clients: vec![None; CLIENTS],
            last_values: BTreeMap::new(),
            read_outcomes_seen: 0,
            write_outcomes_seen: 0,
            issued: 0,
            give_up: GIVE_UP_TICKS * super::TICK,
        }
    }

    /// `n` clients (at least one; default 6): the most operations
    /// outstanding at once.
    pub fn clients(mut self, n: usize) -> Self {
        self.clients = vec![None; n.max(1)];
        self
    }

    /// How many ticks a client waits for an outcome before it gives up and
    /// moves on (default 60). A write given up on keeps an unknown outcome
    /// unless it is resolved later. Impatient clients keep issuing through
    /// leader changes, when many requests hang on a deposed leader.
    pub fn patience(mut self, ticks: u64) -> Self {
        self.give_up = ticks.max(1) * super::TICK;
        self
    }

    /// A deliberately broken read path, for testing the checker: reads are
    /// served from a random node's local state at once, with no
    /// confirmation at all.
    pub fn with_stale_local_reads(mut self) -> Self {
        self.stale_reads = true;
        self
    }

    /// Operations issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Issues one to three random operations, then collects outcomes.
    pub fn round(&mut self, cluster: &mut Cluster<KvStore>) {
        for _ in 0..self.rng.range(1, 4) {
            self.issue(cluster);
        }
        self.collect(cluster);
    }

    fn issue(&mut self, cluster: &mut Cluster<KvStore>) {
        let Some(client) = self.clients.iter().position(Option::is_none) else { return };
        let key = self.keys[self.rng.range(0, self.keys.len() as u64) as usize].clone();
        let now = cluster.now();
        let ids = cluster.ids();
        match self.rng.range(0, 10) {
            0..=3 => {
                let Some(leader) = cluster.leader() else { return };
                let invoked = self.invoke(cluster);
                self.next_value += 1;
                let value = Bytes::from(format!("v{}", self.next_value));
                let (command, op) = if self.rng.chance(0.25) {
                    let expected = self.last_values.get(&key).cloned();
                    let command = KvStore::cas(&key, expected.as_deref().unwrap_or(b""), &value);
                    (command, KvOp::Cas { expected, new: value.clone() })
                } else {
                    (KvStore::put(&key, &value), KvOp::Put(value.clone()))
                };
                match cluster.submit(leader, command) {
                    Ok(ticket) => {
                        self.issued += 1;
                        self.last_values.insert(key.clone(), value);
                        self.writes.insert(ticket.id, (client, key, op, invoked));
                        self.clients[client] = Some((Waiting::Write(ticket.id), now));
                    }
                    // The node died inside the step: the write may still have
                    // reached its log (a torn write that kept it whole) and
                    // take effect later. Its outcome is unknown.
                    Err(crate::error::Error::Halted) => {
                        self.issued += 1;
                        self.last_values.insert(key.clone(), value);
                        self.history.push(Operation { key, op, invoked, completed: None });
                    }
                    // Refused: nothing was appended.
                    Err(_) => {}
                }
            }
            _ if self.stale_reads => {
                let node = ids[self.rng.range(0, ids.len() as u64) as usize];
                let invoked = self.invoke(cluster);
                if let Some(sm) = cluster.state_machine(node) {
                    let seen = crate::sim::StateMachine::query(sm, key.as_bytes());
                    self.issued += 1;
                    self.history.push(Operation { key, op: KvOp::Get(seen), invoked, completed: Some(invoked) });
                }
            }
            _ => {
                // Leader reads go to any node that believes it leads — a
                // deposed leader that has not noticed yet included, and
                // preferred (its reads are the ones that could be stale).
                let leaders: Vec<NodeId> =
                    ids.iter().copied().filter(|&id| cluster.node(id).is_some_and(|n| n.is_leader())).collect();
                let deposed = leaders.iter().copied().min_by_key(|&id| cluster.node(id).map_or(0, |n| n.term()));
                let believer = match deposed {
                    Some(old) if leaders.len() > 1 && self.rng.chance(0.75) => Some(old),
                    _ => (!leaders.is_empty()).then(|| leaders[self.rng.range(0, leaders.len() as u64) as usize]),
                };
                let (node, kind) = match (believer, self.rng.range(0, 3)) {
                    (Some(leader), 0) => (leader, ReadKind::Index),
                    (Some(leader), 1) if self.lease => (leader, ReadKind::Lease),
                    _ => (ids[self.rng.range(0, ids.len() as u64) as usize], ReadKind::Index),
                };
                self.next_read += 1;
                let id = self.next_read;
                let invoked = self.invoke(cluster);
                if cluster.read_query(node, id, kind, Bytes::from(key.clone())).is_ok() {
                    self.issued += 1;
                    self.reads.insert((node, id), (client, key, invoked));
                    self.clients[client] = Some((Waiting::Read(node, id), now));
                }
            }
        }
    }

    /// Moves the outcomes that arrived into the history, and lets clients
    /// give up on operations that took too long.
    pub fn collect(&mut self, cluster: &Cluster<KvStore>) {
        for (k, outcome) in cluster.read_outcomes().iter().enumerate().skip(self.read_outcomes_seen) {
            let Some((client, key, invoked)) = self.reads.remove(&(outcome.node, outcome.id)) else { continue };
            self.release(client, Waiting::Read(outcome.node, outcome.id));
            if outcome.result.is_ok() {
                let op = KvOp::Get(outcome.value.clone());
                let completed = Some(self.stamps.outcome(outcome.at, true, k));
                self.history.push(Operation { key, op, invoked, completed });
            }
        }
        self.read_outcomes_seen = cluster.read_outcomes().len();
        for (k, outcome) in cluster.write_outcomes().iter().enumerate().skip(self.write_outcomes_seen) {
            let Some((client, key, op, invoked)) = self.writes.remove(&outcome.ticket.id) else { continue };
            self.release(client, Waiting::Write(outcome.ticket.id));
            if outcome.committed {
                let completed = Some(self.stamps.outcome(outcome.at, false, k));
                self.history.push(Operation { key, op, invoked, completed });
            }
        }
        self.write_outcomes_seen = cluster.write_outcomes().len();
        let now = cluster.now();
        self.stamps.settled(now);
        for slot in &mut self.clients {
            if slot.is_some_and(|(_, since)| now.saturating_sub(since) > self.give_up) {
                *slot = None;
            }
        }
    }

    /// The stamp of an operation issued now, before it is (the outcomes
    /// the cluster recorded so far come before it).
    fn invoke(&mut self, cluster: &Cluster<KvStore>) -> u64 {
        self.stamps.invoke(cluster.now(), cluster.read_outcomes().len(), cluster.write_outcomes().len())
    }

    /// Client `client` is free again if it was waiting for `what`.
    fn release(&mut self, client: usize, what: Waiting) {
        if self.clients[client].is_some_and(|(w, _)| w == what) {
            self.clients[client] = None;
        }
    }

    /// The history so far, with every write still pending as unknown.
    pub fn history(&mut self, cluster: &Cluster<KvStore>) -> History {
        self.collect(cluster);
        let mut history = self.history.clone();
        for (_, key, op, invoked) in self.writes.values() {
            history.push(Operation { key: key.clone(), op: op.clone(), invoked: *invoked, completed: None });
        }
        history
    }
}
