//! A message-by-message test harness: nodes on `MemoryLog`, a queue of
//! messages the test delivers, drops, duplicates or reorders explicitly, so
//! every scenario reads like a protocol trace.
#![allow(dead_code)]

/// The `RaftLog` methods a test log wrapping a `MemoryLog` in its field
/// `$inner` hands over unchanged: identity, hard state, snapshot meta and
/// data, last index, terms, appends, truncations and installs; with
/// `entries`, reads of entries too; with `receive`, a streamed snapshot's
/// receipt. Each wrapper writes, beside it, the methods it changes.
#[allow(unused_macros)]
macro_rules! forward_log {
    ($inner:ident, entries $(, $more:ident)*) => {
        fn entries(
            &self,
            lo: raft_io::Index,
            hi: raft_io::Index,
            max_bytes: u64,
            out: &mut Vec<raft_io::Entry>,
        ) -> Result<(), raft_io::StorageError> {
            self.$inner.entries(lo, hi, max_bytes, out)
        }
        $crate::common::forward_log!($inner $(, $more)*);
    };
    ($inner:ident, receive $(, $more:ident)*) => {
        fn begin_snapshot_receive(
            &mut self,
            meta: &raft_io::SnapshotMeta,
            total_len: u64,
        ) -> Result<(), raft_io::StorageError> {
            self.$inner.begin_snapshot_receive(meta, total_len)
        }
        fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), raft_io::StorageError> {
            self.$inner.receive_snapshot_chunk(offset, data)
        }
        fn finish_snapshot_receive(&mut self) -> Result<(), raft_io::StorageError> {
            self.$inner.finish_snapshot_receive()
        }
        fn abort_snapshot_receive(&mut self) -> Result<(), raft_io::StorageError> {
            self.$inner.abort_snapshot_receive()
        }
        $crate::common::forward_log!($inner $(, $more)*);
    };
    ($inner:ident) => {
        fn identity(&self) -> Option<raft_io::LogIdentity> {
            self.$inner.identity()
        }
        fn set_identity(&mut self, identity: raft_io::LogIdentity) -> Result<(), raft_io::StorageError> {
            self.$inner.set_identity(identity)
        }
        fn hard_state(&self) -> raft_io::HardState {
            self.$inner.hard_state()
        }
        fn set_hard_state(&mut self, state: raft_io::HardState) -> Result<(), raft_io::StorageError> {
            self.$inner.set_hard_state(state)
        }
        fn snapshot_meta(&self) -> &raft_io::SnapshotMeta {
            self.$inner.snapshot_meta()
        }
        fn last_index(&self) -> raft_io::Index {
            self.$inner.last_index()
        }
        fn term(&self, index: raft_io::Index) -> Option<raft_io::Term> {
            self.$inner.term(index)
        }
        fn append(&mut self, entries: &mut Vec<raft_io::Entry>) -> Result<(), raft_io::StorageError> {
            self.$inner.append(entries)
        }
        fn truncate(&mut self, from: raft_io::Index) -> Result<(), raft_io::StorageError> {
            self.$inner.truncate(from)
        }
        fn snapshot_data(&self) -> Result<bytes::Bytes, raft_io::StorageError> {
            self.$inner.snapshot_data()
        }
        fn install_snapshot(
            &mut self,
            meta: raft_io::SnapshotMeta,
            data: bytes::Bytes,
        ) -> Result<(), raft_io::StorageError> {
            self.$inner.install_snapshot(meta, data)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use forward_log;

pub mod failing_log;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use raft_io::{
    Action, AppendEntries, Entry, Event, Index, MemoryLog, Message, MessageBody, NodeId, RaftConfig, RaftLog, RaftNode,
    Role, Term,
};

pub struct Harness {
    pub nodes: BTreeMap<NodeId, RaftNode>,
    configs: BTreeMap<NodeId, RaftConfig>,
    down: BTreeMap<NodeId, MemoryLog>,
    pub queue: VecDeque<Message>,
    cut: BTreeSet<(NodeId, NodeId)>,
    pub applied: BTreeMap<NodeId, Vec<(Index, Term, Bytes)>>,
    pub actions: Vec<(NodeId, Action)>,
}

pub fn cmd(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// An AppendEntries from `from` to `to` in `term`, with `prev` as
/// `(prev_log_index, prev_log_term)` and `commit` as the leader's commit.
pub fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    commit: Index,
    entries: Vec<Entry>,
) -> Message {
    Message {
        from,
        to,
        term,
        body: MessageBody::Append(AppendEntries {
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            leader_commit: commit,
            entries,
        }),
    }
}

impl Harness {
    /// `n` voters 1..=n with a deterministic default configuration adjusted
    /// by `configure`.
    pub fn new(n: u64, configure: impl Fn(RaftConfig) -> RaftConfig) -> Self {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut h = Self::empty();
        for &id in &ids {
            let config = configure(RaftConfig::new(id, ids.clone()).seed(id * 7919));
            h.add(id, config, MemoryLog::new());
        }
        h
    }

    pub fn empty() -> Self {
        Self {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            down: BTreeMap::new(),
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    pub fn add(&mut self, id: NodeId, config: RaftConfig, log: MemoryLog) {
        let node = RaftNode::with_log(config.clone(), log).expect("valid node");
        self.nodes.insert(id, node);
        self.configs.insert(id, config);
        self.applied.entry(id).or_default();
    }

    pub fn node(&self, id: NodeId) -> &RaftNode {
        &self.nodes[&id]
    }

    /// Steps `id`; messages go to the queue (unless the link is cut),
    /// applies are recorded, all actions are kept in `actions`.
    pub fn step(&mut self, id: NodeId, event: Event) -> raft_io::Result<Vec<Action>> {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(Vec::new()) };
        let actions: Vec<Action> = node.step(event)?.collect();
        for a in &actions {
            match a {
                Action::Send { to, message } if !self.cut.contains(&(id, *to)) => {
                    self.queue.push_back(message.clone());
                }
                Action::Apply { index, term, command } => {
                    self.applied.entry(id).or_default().push((*index, *term, command.clone()))
                }
                _ => {}
            }
            self.actions.push((id, a.clone()));
        }
        Ok(actions)
    }

    pub fn tick(&mut self, id: NodeId, times: u64) {
        for _ in 0..times {
            self.step(id, Event::Tick).unwrap();
        }
    }

    /// Ticks every live node `times` times, delivering after each round.
    pub fn tick_all(&mut self, times: u64) {
        for _ in 0..times {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.step(id, Event::Tick).unwrap();
            }
            self.deliver_all();
        }
    }

    /// Delivers one message (if its destination is up and the link is not
    /// cut). Returns it.
    pub fn deliver_one(&mut self) -> Option<Message> {
        let m = self.queue.pop_front()?;
        if !self.cut.contains(&(m.from, m.to)) && self.nodes.contains_key(&m.to) {
            self.step(m.to, Event::Message(m.clone())).unwrap();
        }
        Some(m)
    }

    /// Delivers until the queue is empty; returns how many were delivered.
    pub fn deliver_all(&mut self) -> usize {
        let mut n = 0;
        while self.deliver_one().is_some() {
            n += 1;
            assert!(n < 10_000_000, "message storm");
        }
        n
    }

    pub fn take_queue(&mut self) -> Vec<Message> {
        self.queue.drain(..).collect()
    }

    pub fn deliver(&mut self, m: Message) {
        let to = m.to;
        self.step(to, Event::Message(m)).unwrap();
    }

    /// Delivers every queued message, and what those deliveries send, until
    /// the queue is empty, except the messages `hold` picks: those are taken
    /// out of the queue undelivered and returned, in order.
    pub fn deliver_holding(&mut self, hold: impl Fn(&Message) -> bool) -> Vec<Message> {
        let mut held = Vec::new();
        while let Some(m) = self.queue.pop_front() {
            if hold(&m) {
                held.push(m);
            } else {
                self.deliver(m);
            }
        }
        held
    }

    /// Makes node `id` the leader, ticking the others meanwhile: with lease
    /// reads on, freshly started nodes refuse votes for one minimum
    /// election timeout (a restarted node must not cut a lease short).
    pub fn elect(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&n| n != id).collect();
        let mut ticks = 0;
        while !self.node(id).is_leader() {
            self.campaign(id);
            self.tick(id, 1);
            self.deliver_all();
            for &other in &others {
                self.step(other, Event::Tick).unwrap();
            }
            ticks += 1;
            assert!(ticks < 30, "node {id} was not elected");
        }
    }

    /// Asks node `id` to campaign (a refusal, say inside a lease, is left
    /// to the caller's later assertions) and delivers everything.
    pub fn campaign(&mut self, id: NodeId) {
        match self.step(id, Event::Campaign) {
            Ok(_) | Err(raft_io::Error::CannotCampaign(_)) => {}
            Err(e) => panic!("node {id} campaign: {e}"),
        }
        self.deliver_all();
    }

    pub fn propose(&mut self, id: NodeId, s: &str) -> raft_io::Result<Vec<Action>> {
        self.step(id, Event::Propose(cmd(s)))
    }

    /// Cuts both directions between `a` and every other node.
    pub fn isolate(&mut self, a: NodeId) {
        let ids: Vec<NodeId> = self.configs.keys().copied().collect();
        for b in ids {
            if a != b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        self.cut.clear();
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i != j {
                    for &a in *g {
                        for &b in *h {
                            self.cut.insert((a, b));
                        }
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes `id`: only what its log synced survives.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.remove(&id) {
            self.down.insert(id, node.into_log().durable());
        }
    }

    /// The synced log of crashed node `id`, to change offline (`None` if
    /// it is not down).
    pub fn crashed_log(&mut self, id: NodeId) -> Option<&mut MemoryLog> {
        self.down.get_mut(&id)
    }

    /// Crashed node `id` is gone for good: its log is dropped.
    pub fn destroy(&mut self, id: NodeId) {
        self.down.remove(&id);
    }

    pub fn restart(&mut self, id: NodeId) {
        if let Some(log) = self.down.remove(&id) {
            let config = self.configs[&id].clone();
            self.nodes.insert(id, RaftNode::with_log(config, log).expect("restart"));
        }
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes.values().filter(|n| n.role() == Role::Leader).max_by_key(|n| n.term()).map(|n| n.id())
    }

    pub fn log_terms(&self, id: NodeId) -> Vec<Term> {
        let n = self.node(id);
        (n.log().first_index()..=n.last_index()).map(|i| n.log().term(i).unwrap()).collect()
    }

    /// Messages sent, by kind name, since the last call to `clear_actions`.
    pub fn sent(&self, kind: &str) -> usize {
        self.actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Send { message, .. } if message.body.name() == kind))
            .count()
    }

    /// The messages node `from` sent since the last call to
    /// `clear_actions`, in order.
    pub fn sent_by(&self, from: NodeId) -> impl Iterator<Item = &Message> {
        self.actions.iter().filter_map(move |(id, a)| match a {
            Action::Send { message, .. } if *id == from => Some(message),
            _ => None,
        })
    }

    pub fn clear_actions(&mut self) {
        self.actions.clear();
    }
}

/// A log holding entries of the given terms from index 1, synced, for
/// building divergent histories.
pub fn log_with_terms(id: NodeId, voters: &[NodeId], terms: &[Term], hard_term: Term) -> MemoryLog {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry::normal(t, i as u64 + 1, cmd(&format!("{t}.{}", i + 1))))
        .collect();
    log_with_entries(id, voters, entries, hard_term)
}

/// A log of node `id` with voters `voters` holding `entries` from index 1,
/// at term `hard_term` with no vote, synced.
pub fn log_with_entries(id: NodeId, voters: &[NodeId], mut entries: Vec<Entry>, hard_term: Term) -> MemoryLog {
    use raft_io::{HardState, LogIdentity, Membership, SnapshotMeta};
    let mut log = MemoryLog::new();
    log.set_identity(LogIdentity { cluster_id: 0, node_id: id }).unwrap();
    let meta = SnapshotMeta { index: 0, term: 0, membership: Membership::new(voters.iter().copied(), []).unwrap() };
    log.install_snapshot(meta, Bytes::new()).unwrap();
    log.append(&mut entries).unwrap();
    log.set_hard_state(HardState { term: hard_term, vote: None, commit: 0 }).unwrap();
    log.sync().unwrap();
    log
}
