//! A one-node cluster: tick until it leads, propose, and see the commands
//! come back as `Action::Apply`.
//!
//! Run: `cargo run --example single_node`

use bytes::Bytes;
use raft_io::{Action, Event, RaftConfig, RaftNode};

fn main() -> Result<(), raft_io::Error> {
    let mut node = RaftNode::new(RaftConfig::single(1))?;

    // Time is an input: the driver decides how long a tick is.
    let mut ticks = 0;
    while !node.is_leader() {
        node.step(Event::Tick)?.for_each(drop);
        ticks += 1;
    }
    println!("node 1 leads term {} after {ticks} ticks", node.term());
    println!("its no-op entry committed: commit index {}", node.commit_index());

    for command in ["set x = 1", "set y = 2", "del x"] {
        let actions: Vec<Action> = node.step(Event::Propose(Bytes::from(command)))?.collect();
        // Where it went: the node says, right after the step.
        if let Some(p) = node.last_proposal() {
            println!("proposed {command:?} at index {} (term {})", p.first, p.term);
        }
        for action in actions {
            if let Action::Apply { index, command, .. } = action {
                println!("apply #{index}: {}", String::from_utf8_lossy(&command));
            }
        }
    }

    // A batch is one log append and one sync, however many commands.
    let batch: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("batch {i}"))).collect();
    let applied = node.step(Event::ProposeBatch(batch))?.filter(|a| matches!(a, Action::Apply { .. })).count();
    println!("a batch of 5 applied {applied} commands in one step");
    println!("commit index {}, last applied {}", node.commit_index(), node.last_applied());
    assert_eq!(node.commit_index(), node.last_applied());
    Ok(())
}
