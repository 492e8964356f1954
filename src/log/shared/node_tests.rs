//! Real nodes on group logs: three processes, each with one [`SharedWal`]
//! holding a replica of every one of 20 groups, each replica a
//! `RaftNode::with_log(config.async_storage(true), group_log)`. A host turn
//! of a process delivers every message queued for any of its groups, then
//! flushes its shared WAL **once** and reports each durable token to its
//! group's node as `Event::Persisted`. Every group elects, commits and
//! applies; every turn costs at most one fsync per process; and after all
//! processes restart from their directories every replica still holds
//! every committed entry.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::tests::temp;
use super::*;
use crate::{Action, Event, Message, NodeId, RaftConfig, RaftNode};

const GROUPS: u64 = 20;
pub(super) const PROCESSES: [NodeId; 3] = [1, 2, 3];

/// A group's node configuration on process `p` (asynchronous storage).
pub(super) fn config(p: NodeId, g: GroupId) -> RaftConfig {
    RaftConfig::new(p, PROCESSES).election_timeout(10, 20).heartbeat_interval(3).seed(g * 10 + p).async_storage(true)
}

/// A process: its shared WAL and one node per group.
pub(super) struct Process {
    pub(super) wal: SharedWal,
    pub(super) nodes: BTreeMap<GroupId, RaftNode<GroupLog>>,
}

struct Cluster {
    procs: BTreeMap<NodeId, Process>,
    inbox: VecDeque<(GroupId, Message)>,
    applied: BTreeMap<(NodeId, GroupId), Vec<Bytes>>,
    /// The most fsyncs one host turn of one process made.
    max_syncs_per_turn: u64,
    turns_with_a_sync: u64,
}

impl Cluster {
    fn start(root: &std::path::Path, fresh: bool) -> Cluster {
        let mut procs = BTreeMap::new();
        for p in PROCESSES {
            let wal = SharedWal::open(root.join(format!("p{p}"))).unwrap();
            let mut nodes = BTreeMap::new();
            for g in 1..=GROUPS {
                let log = if fresh { wal.create_group(g).unwrap() } else { wal.group(g).unwrap() };
                nodes.insert(g, RaftNode::with_log(config(p, g), log).unwrap());
            }
            procs.insert(p, Process { wal, nodes });
        }
        Cluster { procs, inbox: VecDeque::new(), applied: BTreeMap::new(), max_syncs_per_turn: 0, turns_with_a_sync: 0 }
    }

    fn step(&mut self, p: NodeId, g: GroupId, event: Event) {
        let node = self.procs.get_mut(&p).unwrap().nodes.get_mut(&g).unwrap();
        let actions: Vec<Action> = node.step(event).unwrap().collect();
        for a in actions {
            match a {
                Action::Send { message, .. } => self.inbox.push_back((g, message)),
                Action::Apply { command, .. } => self.applied.entry((p, g)).or_default().push(command),
                _ => {}
            }
        }
    }

    /// One host turn of process `p`: deliver what is queued for it, one
    /// flush, report the durable tokens.
    fn turn(&mut self, p: NodeId) {
        let mine: VecDeque<(GroupId, Message)> = {
            let (mine, rest) = self.inbox.drain(..).partition(|(_, m)| m.to == p);
            self.inbox = rest;
            mine
        };
        for (g, m) in mine {
            self.step(p, g, Event::Message(m));
        }
        let before = self.procs[&p].wal.stats().syncs;
        let durable = self.procs[&p].wal.flush().unwrap();
        let syncs = self.procs[&p].wal.stats().syncs - before;
        self.max_syncs_per_turn = self.max_syncs_per_turn.max(syncs);
        self.turns_with_a_sync += syncs;
        let mut latest = BTreeMap::new();
        for (g, token) in durable {
            latest.insert(g, token);
        }
        for (g, token) in latest {
            self.step(p, g, Event::Persisted(token));
        }
    }

    fn settle(&mut self) {
        for _ in 0..500 {
            for p in PROCESSES {
                self.turn(p);
            }
            if self.inbox.is_empty() {
                return;
            }
        }
        panic!("did not settle");
    }

    fn leader(&self, g: GroupId) -> Option<NodeId> {
        PROCESSES.into_iter().find(|p| self.procs[p].nodes[&g].is_leader())
    }
}

#[test]
fn groups_of_real_nodes_share_one_fsync_per_host_turn_and_survive_a_restart() {
    let root = temp();
    let mut c = Cluster::start(root.path(), true);
    for g in 1..=GROUPS {
        c.step(1 + g % 3, g, Event::Campaign);
    }
    c.settle();
    for g in 1..=GROUPS {
        assert_eq!(c.leader(g), Some(1 + g % 3), "group {g}");
    }
    for round in 0..3u64 {
        for g in 1..=GROUPS {
            let leader = c.leader(g).unwrap();
            c.step(leader, g, Event::Propose(Bytes::from(format!("g{g}-r{round}"))));
        }
        c.settle();
    }
    // Heartbeats carry the last commit index to the followers.
    for _ in 0..3 {
        for p in PROCESSES {
            for g in 1..=GROUPS {
                c.step(p, g, Event::Tick);
            }
        }
        c.settle();
    }
    assert_eq!(c.max_syncs_per_turn, 1, "one fsync per host turn of a process, for all its groups");
    // Every replica of every group applied every command, in order.
    for g in 1..=GROUPS {
        let want: Vec<Bytes> = (0..3).map(|r| Bytes::from(format!("g{g}-r{r}"))).collect();
        for p in PROCESSES {
            let got: Vec<Bytes> = c.applied[&(p, g)].iter().filter(|b| !b.is_empty()).cloned().collect();
            assert_eq!(got, want, "process {p} group {g}");
        }
    }
    // Far fewer fsyncs than group steps that wrote.
    let writes: u64 = PROCESSES.iter().map(|p| c.procs[p].wal.stats().operations).sum();
    assert!(writes > 5 * c.turns_with_a_sync, "{writes} group writes in {} fsyncs", c.turns_with_a_sync);
    let commits: BTreeMap<GroupId, u64> = (1..=GROUPS).map(|g| (g, c.procs[&1].nodes[&g].commit_index())).collect();

    // Every process restarts from its directory.
    drop(c);
    let c = Cluster::start(root.path(), false);
    for g in 1..=GROUPS {
        for p in PROCESSES {
            let node = &c.procs[&p].nodes[&g];
            assert!(node.log().last_index() >= commits[&g], "process {p} group {g} lost committed entries");
        }
    }
}

/// Creating many groups' nodes in the asynchronous mode costs no fsync:
/// each node's initialization waits for the next flush, which writes them
/// all in one record (PROTOCOL.md §5.1, "A new node's initialization").
#[test]
fn creating_many_group_nodes_costs_one_fsync_for_all() {
    let root = temp();
    let dir = root.path().join("p1");
    let wal = SharedWal::open(&dir).unwrap();
    let syncs = wal.stats().syncs;
    let nodes: Vec<RaftNode<GroupLog>> = (1..=200)
        .map(|g| RaftNode::with_log(config(1, g).pre_vote(false), wal.create_group(g).unwrap()).unwrap())
        .collect();
    assert_eq!(wal.stats().syncs, syncs, "no fsync per new node");
    // A crash now forgets the groups (their creation was never flushed).
    drop(nodes);
    drop(wal);
    let wal = SharedWal::open(&dir).unwrap();
    assert!(wal.group(1).is_err(), "an unflushed creation is forgotten");
    let mut nodes: Vec<RaftNode<GroupLog>> = (1..=200)
        .map(|g| RaftNode::with_log(config(1, g).pre_vote(false), wal.create_group(g).unwrap()).unwrap())
        .collect();
    // The first write of each node carries its initialization; one flush
    // makes all of them durable.
    for node in &mut nodes {
        node.step(Event::Campaign).unwrap().for_each(drop);
    }
    let syncs = wal.stats().syncs;
    let durable = wal.flush().unwrap();
    assert_eq!(durable.len(), 200);
    assert_eq!(wal.stats().syncs, syncs + 1, "one fsync for every group's first write");
    drop(nodes);
    drop(wal);
    let wal = SharedWal::open(&dir).unwrap();
    for g in 1..=200 {
        let node = RaftNode::with_log(config(1, g).pre_vote(false), wal.group(g).unwrap()).unwrap();
        assert_eq!(node.term(), 1, "group {g}");
        assert_eq!(node.membership().voters().len(), 3, "group {g}");
    }
}
