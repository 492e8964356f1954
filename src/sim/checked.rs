//! [`Workload`]: your clients and your model in one trait, and the
//! simulated clients that drive a cluster with it and record a history of
//! [`Call`]s for the linearizability checker.
//!
//! Each round issues one to three operations from a fixed number of
//! clients, each with at most one operation outstanding: writes
//! ([`Workload::write`]) are submitted on the leader and answered with
//! what the state machine's `apply` returned (results and refusals alike);
//! reads ([`Workload::read`]) go to the leader or to any node, half of them
//! as lease reads ([`ReadKind::Lease`]: served from the leader's lease when
//! the nodes have `lease_reads` on, else a ReadIndex as the other half),
//! and are answered by [`StateMachine::query`] at the moment the read is
//! released. A client gives up on an operation that takes too long; a
//! write given up on, or still pending at the end, has an unknown outcome.
//!
//! The scenes of [`FaultProfile::Fragile`](super::FaultProfile::Fragile)
//! that propose a burst on a chosen node (the old leader of Figure 8, the
//! leader of a snapshot install or of a power cut) propose the clients'
//! writes: drawn from the workload (from a random stream of their own),
//! proposed as one batch, tracked and checked like every other write, and
//! waited for by no client.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Cluster;
use super::fragile::SceneClients;
use super::linearizability::{Call, Model};
use super::stamps::Stamps;
use crate::StateMachine;
use crate::node::ReadKind;
use crate::rng::Rng;
use crate::types::{NodeId, ReadId};

/// Your clients and the sequential model that explains what they see: the
/// simulator draws operations from it, encodes them for your state
/// machine, decodes what comes back, and checks the history against the
/// model ([`Model::step`]).
///
/// See `examples/bank_under_faults.rs` for a complete one.
pub trait Workload: Model {
    /// The state machine under test.
    type Machine: StateMachine;

    /// Draws a write (a command generator).
    fn write(&mut self, rng: &mut Rng) -> Self::Op;

    /// Draws a read, or `None` if the workload has none (a read
    /// generator). Default: none.
    ///
    /// A read is answered by [`StateMachine::query`], which cannot change
    /// the state machine, and the checker takes it for a query of the
    /// model ([`Model::is_query`]): [`Model::step`] must leave every state
    /// as it is for it.
    fn read(&mut self, _rng: &mut Rng) -> Option<Self::Op> {
        None
    }

    /// The bytes of an operation: the command of a write, the query of a
    /// read.
    fn encode(&self, op: &Self::Op) -> Bytes;

    /// What a committed write returned, as the model states outputs.
    fn write_output(&self, op: &Self::Op, output: &<Self::Machine as StateMachine>::Output) -> Self::Output;

    /// What a read returned ([`StateMachine::query`]'s answer), as the
    /// model states outputs.
    fn read_output(&self, op: &Self::Op, answer: Option<&Bytes>) -> Self::Output;
}

/// What a client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Read(NodeId, ReadId),
    Write(u64),
}

/// Simulated clients driving a [`Workload`] and recording its history.
pub(super) struct Clients<W: Workload> {
    pub(super) workload: W,
    rng: Rng,
    /// Draws each read's kind: a stream of its own, so that the choice
    /// leaves every other draw of a seed as it was.
    kinds: Rng,
    /// Draws the operations of the fragile scenes' bursts: a stream of its
    /// own as well.
    bursts: Rng,
    /// The history, its times stamps (stamps.rs): an outcome known before
    /// an operation was issued at the same instant comes before it.
    history: Vec<Call<Issued<W::Op>, W::Output>>,
    stamps: Stamps,
    reads: BTreeMap<(NodeId, ReadId), (usize, W::Op, u64)>,
    /// Writes in flight by ticket: the client waiting (none for a burst's),
    /// the operation, when it was invoked (its stamp).
    writes: BTreeMap<u64, (Option<usize>, W::Op, u64)>,
    clients: Vec<Option<(Waiting, u64)>>,
    next_read: ReadId,
    reads_seen: usize,
    writes_seen: usize,
    give_up: u64,
    /// Writes proposed in bursts.
    burst_writes: usize,
}

impl<W: Workload> Clients<W>
where
    W::Op: Clone,
{
    /// `clients` clients of `workload`, drawing from `seed`, giving up after
    /// `patience` ticks.
    pub(super) fn new(workload: W, seed: u64, clients: usize, patience: u64) -> Self {
        Self {
            workload,
            rng: Rng::new(seed ^ 0x636c_6965_6e74),
            kinds: Rng::new(seed ^ 0x6b69_6e64_7321),
            bursts: Rng::new(seed ^ 0x6275_7273_7473),
            history: Vec::new(),
            stamps: Stamps::default(),
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            clients: vec![None; clients.max(1)],
            next_read: 1 << 40,
            reads_seen: 0,
            writes_seen: 0,
            give_up: patience.max(1) * super::TICK,
            burst_writes: 0,
        }
    }

    /// Issues one to three operations, then collects outcomes.
    pub(super) fn round(&mut self, cluster: &mut Cluster<W::Machine>) {
        for _ in 0..self.rng.range(1, 4) {
            self.issue(cluster);
        }
        self.collect(cluster);
    }

    fn issue(&mut self, cluster: &mut Cluster<W::Machine>) {
        let Some(client) = self.clients.iter().position(Option::is_none) else { return };
        let now = cluster.now();
        let ids = cluster.ids();
        let read = if self.rng.chance(0.4) { self.workload.read(&mut self.rng) } else { None };
        match read {
            None => {
                let Some(leader) = cluster.leader() else { return };
                let op = self.workload.write(&mut self.rng);
                let invoked = self.invoke(cluster);
                match cluster.submit(leader, self.workload.encode(&op)) {
                    Ok(ticket) => {
                        self.writes.insert(ticket.id, (Some(client), op, invoked));
                        self.clients[client] = Some((Waiting::Write(ticket.id), now));
                    }
                    // The node died inside the step: the write may still
                    // take effect. Its outcome is unknown.
                    Err(crate::error::Error::Halted) => self.history.push(Call::unknown(Issued::write(op), invoked)),
                    // Refused: nothing was appended.
                    Err(_) => {}
                }
            }
            Some(op) => {
                let node = match cluster.leader() {
                    Some(l) if self.rng.chance(0.6) => l,
                    _ => ids[self.rng.range(0, ids.len() as u64) as usize],
                };
                self.next_read += 1;
                let id = self.next_read;
                let kind = if self.kinds.chance(0.5) { ReadKind::Lease } else { ReadKind::Index };
                let invoked = self.invoke(cluster);
                if cluster.read_query(node, id, kind, self.workload.encode(&op)).is_ok() {
                    self.reads.insert((node, id), (client, op, invoked));
                    self.clients[client] = Some((Waiting::Read(node, id), now));
                }
            }
        }
    }

    /// Moves the outcomes that arrived into the history, and lets clients
    /// give up on operations that took too long.
    pub(super) fn collect(&mut self, cluster: &mut Cluster<W::Machine>) {
        let fresh = cluster.read_outcomes().len();
        for k in self.reads_seen..fresh {
            let outcome = &cluster.read_outcomes()[k];
            let Some((client, op, invoked)) = self.reads.remove(&(outcome.node, outcome.id)) else { continue };
            self.release(client, Waiting::Read(outcome.node, outcome.id));
            if outcome.result.is_ok() {
                let output = self.workload.read_output(&op, outcome.value.as_ref());
                let completed = self.stamps.outcome(outcome.at, true, k);
                self.history.push(Call::completed(Issued::read(op), output, invoked, completed));
            }
        }
        self.reads_seen = fresh;
        let fresh = cluster.write_outcomes().len();
        for k in self.writes_seen..fresh {
            let outcome = cluster.write_outcomes()[k];
            let Some((client, op, invoked)) = self.writes.remove(&outcome.ticket.id) else { continue };
            if let Some(client) = client {
                self.release(client, Waiting::Write(outcome.ticket.id));
            }
            if !outcome.committed {
                continue;
            }
            let output = cluster.take_write_output(outcome.ticket.id).map(|o| self.workload.write_output(&op, &o));
            let completed = Some(self.stamps.outcome(outcome.at, false, k));
            // Committed without an output (it cannot happen; if it did, the
            // output is not constrained).
            self.history.push(Call { op: Issued::write(op), output, invoked, completed });
        }
        self.writes_seen = fresh;
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
    fn invoke(&mut self, cluster: &Cluster<W::Machine>) -> u64 {
        self.stamps.invoke(cluster.now(), cluster.read_outcomes().len(), cluster.write_outcomes().len())
    }

    fn release(&mut self, client: usize, what: Waiting) {
        if self.clients[client].is_some_and(|(w, _)| w == what) {
            self.clients[client] = None;
        }
    }

    /// Proposes `n` writes drawn from the workload on `node` as one batch
    /// (a fragile scene's burst), tracked like the clients' own but waited
    /// for by none of them. Returns `false` if the node refused them.
    pub(super) fn burst(&mut self, cluster: &mut Cluster<W::Machine>, node: NodeId, n: u64) -> bool {
        let invoked = self.invoke(cluster);
        let ops: Vec<W::Op> = (0..n).map(|_| self.workload.write(&mut self.bursts)).collect();
        let commands = ops.iter().map(|op| self.workload.encode(op)).collect();
        match cluster.submit_batch(node, commands) {
            Ok(tickets) => {
                self.burst_writes += tickets.len();
                for (ticket, op) in tickets.into_iter().zip(ops) {
                    self.writes.insert(ticket.id, (None, op, invoked));
                }
                true
            }
            // The node died inside the step: the writes may still take
            // effect. Their outcomes are unknown.
            Err(crate::error::Error::Halted) => {
                self.history.extend(ops.into_iter().map(|op| Call::unknown(Issued::write(op), invoked)));
                false
            }
            // Refused: nothing was appended.
            Err(_) => false,
        }
    }

    /// Writes proposed in bursts so far.
    pub(super) fn burst_writes(&self) -> usize {
        self.burst_writes
    }

    /// The history so far, with every write still pending as unknown.
    pub(super) fn history(&mut self, cluster: &mut Cluster<W::Machine>) -> Vec<Call<Issued<W::Op>, W::Output>>
    where
        W::Output: Clone,
    {
        self.collect(cluster);
        let mut history = self.history.clone();
        for (_, op, invoked) in self.writes.values() {
            history.push(Call::unknown(Issued::write(op.clone()), *invoked));
        }
        history
    }
}

impl<W: Workload> SceneClients<W::Machine> for Clients<W>
where
    W::Op: Clone,
{
    fn round(&mut self, cluster: &mut Cluster<W::Machine>) {
        Clients::round(self, cluster);
    }

    fn burst(&mut self, cluster: &mut Cluster<W::Machine>, node: NodeId, n: u64) -> bool {
        Clients::burst(self, cluster, node, n)
    }
}

/// An operation of a checked history, and whether the clients issued it as
/// a read.
#[derive(Clone)]
pub(super) struct Issued<Op> {
    pub(super) op: Op,
    read: bool,
}

impl<Op> Issued<Op> {
    fn read(op: Op) -> Self {
        Self { op, read: true }
    }

    fn write(op: Op) -> Self {
        Self { op, read: false }
    }
}

impl<Op: std::fmt::Debug> std::fmt::Debug for Issued<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.op.fmt(f)
    }
}

/// The workload's model over [`Issued`] operations, where a read is a query
/// ([`Model::is_query`]): the clients' reads are answered by
/// [`StateMachine::query`], which cannot change the state machine, and a
/// workload's model must leave its state as it is for them
/// ([`Workload::read`]).
pub(super) struct ReadsAreQueries<'a, M>(pub(super) &'a M);

impl<M: Model> Model for ReadsAreQueries<'_, M> {
    type State = M::State;
    type Op = Issued<M::Op>;
    type Output = M::Output;

    fn init(&self) -> M::State {
        self.0.init()
    }

    fn step(&self, state: &M::State, op: &Issued<M::Op>) -> (M::State, M::Output) {
        self.0.step(state, &op.op)
    }

    fn part(&self, op: &Issued<M::Op>) -> Option<u64> {
        self.0.part(&op.op)
    }

    fn is_query(&self, op: &Issued<M::Op>) -> bool {
        op.read || self.0.is_query(&op.op)
    }
}
