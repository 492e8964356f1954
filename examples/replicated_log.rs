//! Propose commands on a three-node cluster and watch every node apply the
//! same log, in the same order.
//!
//! Run: `cargo run --release --example replicated_log`

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_io::{Action, Event, Index, MemoryTransport, NodeId, RaftConfig, RaftNode, RaftTransport};

/// One node, its network end, and its state machine (here: the list of
/// applied commands).
struct Member {
    node: RaftNode,
    transport: MemoryTransport,
    applied: Vec<(Index, Bytes)>,
}

impl Member {
    fn step(&mut self, event: Event) -> Result<(), raft_io::Error> {
        for action in self.node.step(event)? {
            match action {
                Action::Send { message, .. } => {
                    let _ = self.transport.send(message);
                }
                Action::Apply { index, command, .. } => self.applied.push((index, command)),
                _ => {}
            }
        }
        Ok(())
    }
}

struct Cluster {
    members: BTreeMap<NodeId, Member>,
}

impl Cluster {
    fn new(ids: &[NodeId]) -> Self {
        let members = MemoryTransport::cluster(ids.iter().copied())
            .into_iter()
            .map(|transport| {
                let id = transport.id();
                let node = RaftNode::new(RaftConfig::new(id, ids.iter().copied()).seed(7)).expect("valid config");
                (id, Member { node, transport, applied: Vec::new() })
            })
            .collect();
        Self { members }
    }

    /// Delivers messages until the network is quiet.
    fn settle(&mut self) -> Result<(), raft_io::Error> {
        loop {
            let mut delivered = 0;
            for m in self.members.values_mut() {
                while let Some(message) = m.transport.try_recv() {
                    m.step(Event::Message(message))?;
                    delivered += 1;
                }
            }
            if delivered == 0 {
                return Ok(());
            }
        }
    }

    fn tick(&mut self) -> Result<(), raft_io::Error> {
        for m in self.members.values_mut() {
            m.step(Event::Tick)?;
        }
        self.settle()
    }

    fn leader(&self) -> Option<NodeId> {
        self.members.values().find(|m| m.node.is_leader()).map(|m| m.node.id())
    }
}

fn main() -> Result<(), raft_io::Error> {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    while cluster.leader().is_none() {
        cluster.tick()?;
    }
    let leader = cluster.leader().expect("a leader");
    println!("node {leader} leads term {}", cluster.members[&leader].node.term());

    // 1,000 commands, proposed in batches of 50 (one sync per batch).
    let mut sent = 0;
    for batch in 0..20 {
        let commands: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("cmd {}", batch * 50 + i))).collect();
        sent += commands.len();
        let m = cluster.members.get_mut(&leader).expect("leader");
        m.step(Event::ProposeBatch(commands))?;
        cluster.settle()?;
    }
    // A heartbeat round carries the final commit index to the followers.
    for _ in 0..3 {
        cluster.tick()?;
    }

    let reference = &cluster.members[&leader].applied;
    for (id, m) in &cluster.members {
        println!(
            "node {id}: commit {}, applied {} commands, last = {:?}",
            m.node.commit_index(),
            m.applied.len(),
            m.applied.last().map(|(i, c)| (i, String::from_utf8_lossy(c).into_owned()))
        );
        assert_eq!(&m.applied, reference, "node {id} applied a different log");
    }
    assert_eq!(reference.len(), sent);
    println!("all {} nodes applied the same {sent} commands in the same order", cluster.members.len());
    Ok(())
}
