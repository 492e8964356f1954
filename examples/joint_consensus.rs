//! Replace two of three voters in one change: the leader enters a joint
//! configuration (old and new voter sets must both agree), then leaves it
//! automatically once it commits. Both transitions are observable as
//! actions.
//!
//! Run: `cargo run --example joint_consensus --features sim`

use bytes::Bytes;
use raft_io::sim::{Cluster, SimConfig};
use raft_io::{Action, MembershipChange};

fn main() {
    let mut cluster = Cluster::new(SimConfig::new(3).seed(4).record_actions(true));
    let leader = cluster.elect(500).expect("leader");
    println!("voters [1, 2, 3], node {leader} leads; replacing the other two by nodes 4 and 5");
    cluster.add_node(4);
    cluster.add_node(5);
    cluster.drain_actions();

    let change = MembershipChange::Replace { voters: vec![leader, 4, 5], learners: vec![] };
    cluster.change_membership(leader, change).expect("accepted");
    assert!(cluster.run_until(300, |c| {
        c.leader()
            .and_then(|l| c.node(l))
            .is_some_and(|n| !n.membership().is_joint() && n.commit_index() == n.last_index())
    }));

    // What the leader reported, in order.
    let mut transitions = Vec::new();
    for (node, action) in cluster.drain_actions() {
        match action {
            Action::MembershipChanged { index, membership } if node == leader => {
                println!(
                    "  index {index}: in effect  voters {:?} outgoing {:?}",
                    membership.voters(),
                    membership.outgoing()
                );
                transitions.push(membership.is_joint());
            }
            Action::MembershipCommitted { index, membership } if node == leader => {
                println!(
                    "  index {index}: committed  voters {:?} outgoing {:?}",
                    membership.voters(),
                    membership.outgoing()
                );
            }
            _ => {}
        }
    }
    assert_eq!(transitions, vec![true, false], "entered the joint configuration, then left it");
    let m = cluster.node(leader).expect("up").membership().clone();
    println!("final voters {:?}", m.voters());
    let mut expected = [leader, 4, 5];
    expected.sort_unstable();
    assert_eq!(m.voters(), &expected[..]);

    // The replaced voters are gone; the new configuration works without them.
    for old in [1, 2, 3].into_iter().filter(|&id| id != leader) {
        cluster.crash(old);
    }
    cluster.propose(leader, Bytes::from_static(b"new config")).expect("accepted");
    assert!(cluster.run_until(300, |c| c.converged()));
    println!("committed with the two replaced voters down");
}
