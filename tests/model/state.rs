//! The model's state: the nodes (real `RaftNode`s, shared between states
//! until one steps), the network (a multiset of messages), the remaining
//! budgets, the clients' history, and ghost state for the properties.
//!
//! Equality and hashing go through fingerprints: a node by
//! `RaftNode::fingerprint` (its complete state), a message by
//! `message_digest` (its complete content). Two different states are
//! merged only if a 64-bit fingerprint collides.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use raft_io::sim::HashChain;
use raft_io::sim::model::{RegisterClients, message_digest};
use raft_io::{Index, MemoryLog, Message, NodeId, RaftNode, Term};

/// One node: the real node, its fingerprint, and its state machine: a
/// register and a hash chain of what it applied (what its snapshots hold).
/// The state machine is not part of the state's identity: it follows from
/// the committed log the node applied, which the properties check.
#[derive(Clone)]
pub struct Node {
    pub raft: RaftNode<MemoryLog>,
    pub fp: u64,
    /// The value its state machine holds (the last write applied).
    pub value: Option<u8>,
    pub sm: HashChain,
}

impl Node {
    pub fn new(raft: RaftNode<MemoryLog>, value: Option<u8>, sm: HashChain) -> Self {
        Self { fp: raft.fingerprint(), raft, value, sm }
    }

    pub fn id(&self) -> NodeId {
        self.raft.id()
    }
}

/// A message in flight.
#[derive(Clone)]
pub struct InFlight {
    pub digest: u64,
    pub message: Arc<Message>,
}

impl InFlight {
    pub fn new(message: Message) -> Self {
        Self { digest: message_digest(&message), message: Arc::new(message) }
    }

    /// The canonical order of the network multiset.
    pub fn key(&self) -> (NodeId, NodeId, u64) {
        (self.message.to, self.message.from, self.digest)
    }
}

/// What remains of each budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Budget {
    pub ticks: u8,
    /// Ticks a leader may take in an untimed configuration.
    pub leader_ticks: u8,
    pub timeouts: u8,
    pub crashes: u8,
    pub drops: u8,
    pub duplicates: u8,
    pub proposals: u8,
    pub reads: u8,
    /// Membership changes still to make (0, 1 or 2).
    pub changes: u8,
    /// Leadership transfers still to ask for.
    pub transfers: u8,
    /// Application snapshots still to take.
    pub compactions: u8,
}

/// What the properties remember of the past.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// The leader seen in each term.
    pub leaders: Vec<(Term, NodeId)>,
    /// The committed log as far as any node reported it: for index `i + 1`,
    /// the entry's term, a digest of its content, and the term of the node
    /// that first reported it committed.
    pub committed: Vec<(Term, u64, Term)>,
    /// The first entry applied at each index (`i + 1`): term and digest.
    pub applied: Vec<(Term, u64)>,
}

impl Ghost {
    pub fn committed_index(&self) -> Index {
        self.committed.len() as Index
    }
}

/// A whole-cluster state.
#[derive(Clone)]
pub struct State {
    /// Sorted by id.
    pub nodes: Vec<Arc<Node>>,
    /// Sorted by `InFlight::key`; copies of one message repeat.
    pub net: Vec<InFlight>,
    pub budget: Budget,
    pub clients: RegisterClients,
    pub ghost: Ghost,
    /// The next value a write carries, and the next read id.
    pub next_value: u8,
    pub next_read: u64,
    /// The first property broken on the way here: (property, detail).
    pub broken: Option<Arc<(&'static str, String)>>,
}

impl State {
    pub fn slot(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id() == id)
    }

    pub fn send(&mut self, message: Message, capacity: usize) {
        if self.net.len() >= capacity {
            return;
        }
        let m = InFlight::new(message);
        let at = self.net.partition_point(|x| x.key() <= m.key());
        self.net.insert(at, m);
    }

    pub fn break_with(&mut self, property: &'static str, detail: String) {
        if self.broken.is_none() {
            self.broken = Some(Arc::new((property, detail)));
        }
    }

    pub fn broken_property(&self) -> Option<&'static str> {
        self.broken.as_ref().map(|b| b.0)
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for n in &self.nodes {
            (n.fp, n.value).hash(h);
        }
        self.net.len().hash(h);
        for m in &self.net {
            m.key().hash(h);
        }
        (&self.budget, &self.clients, &self.ghost, self.next_value, self.next_read).hash(h);
        self.broken.as_ref().map(|b| b.0).hash(h);
    }
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        let nodes = self.nodes.len() == other.nodes.len()
            && self.nodes.iter().zip(&other.nodes).all(|(a, b)| a.fp == b.fp && a.value == b.value);
        let net = self.net.len() == other.net.len() && self.net.iter().zip(&other.net).all(|(a, b)| a.key() == b.key());
        nodes
            && net
            && self.budget == other.budget
            && self.clients == other.clients
            && self.ghost == other.ghost
            && (self.next_value, self.next_read) == (other.next_value, other.next_read)
            && self.broken_property() == other.broken_property()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.nodes {
            let r = &n.raft;
            writeln!(
                f,
                "n{} {:?} t{} commit {} last {} value {:?}",
                r.id(),
                r.role(),
                r.term(),
                r.commit_index(),
                r.last_index(),
                n.value
            )?;
        }
        for m in &self.net {
            let msg = &m.message;
            writeln!(f, "  {}->{} {} t{}", msg.from, msg.to, msg.body.name(), msg.term)?;
        }
        write!(f, "budget {:?}", self.budget)?;
        if let Some(b) = &self.broken {
            write!(f, "\nBROKEN {}: {}", b.0, b.1)?;
        }
        Ok(())
    }
}
