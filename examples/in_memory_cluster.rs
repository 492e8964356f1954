//! Three nodes on one process, connected by `MemoryTransport`, elect a
//! leader. This is the whole driver loop an embedder writes: tick, route
//! messages, carry out actions.
//!
//! Run: `cargo run --example in_memory_cluster`

use raft_io::{Action, Event, MemoryTransport, RaftConfig, RaftNode, RaftTransport, Role};

struct Member {
    node: RaftNode,
    transport: MemoryTransport,
}

impl Member {
    fn step(&mut self, event: Event) -> Result<(), raft_io::Error> {
        let id = self.node.id();
        for action in self.node.step(event)? {
            match action {
                Action::Send { message, .. } => {
                    // Raft tolerates loss: a message that cannot be sent is
                    // simply dropped.
                    let _ = self.transport.send(message);
                }
                Action::RoleChanged { role, term, leader } => {
                    println!("  node {id} is now {role:?} in term {term} (leader: {leader:?})");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn main() -> Result<(), raft_io::Error> {
    let ids = [1, 2, 3];
    let mut members: Vec<Member> = MemoryTransport::cluster(ids)
        .into_iter()
        .zip(ids)
        .map(|(transport, id)| {
            // Same voters on every node; a different seed per node is mixed
            // in automatically.
            let node = RaftNode::new(RaftConfig::new(id, ids).seed(2024)).expect("valid config");
            Member { node, transport }
        })
        .collect();

    for tick in 1..=100 {
        for m in &mut members {
            m.step(Event::Tick)?;
        }
        // Deliver until no message is in flight.
        loop {
            let mut delivered = false;
            for m in &mut members {
                while let Some(message) = m.transport.try_recv() {
                    m.step(Event::Message(message))?;
                    delivered = true;
                }
            }
            if !delivered {
                break;
            }
        }
        if let Some(leader) = members.iter().find(|m| m.node.role() == Role::Leader) {
            println!("tick {tick}: node {} leads term {}", leader.node.id(), leader.node.term());
            let leader_id = leader.node.id();
            assert!(members.iter().all(|m| m.node.leader() == Some(leader_id)), "everyone follows it");
            return Ok(());
        }
    }
    Err(raft_io::Error::NotLeader { leader: None, leader_address: None })
}
