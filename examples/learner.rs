//! Add a learner, let it catch up without changing the quorum, then promote
//! it to a voter.
//!
//! Run: `cargo run --example learner --features sim`

use bytes::Bytes;
use raft_io::MembershipChange;
use raft_io::sim::{Cluster, SimConfig};

fn main() {
    let mut cluster = Cluster::new(SimConfig::new(3).seed(8));
    let leader = cluster.elect(500).expect("leader");
    for i in 0..200 {
        cluster.propose(leader, Bytes::from(format!("cmd {i}"))).expect("accepted");
    }
    cluster.run_ticks(5);
    println!("node {leader} leads; log at {}", cluster.node(leader).expect("up").last_index());

    cluster.add_node(4);
    cluster.change_membership(leader, MembershipChange::AddLearner(4)).expect("accepted");
    cluster.run_ticks(1);
    let m = cluster.node(leader).expect("up").membership().clone();
    println!("node 4 added as a learner: voters {:?} learners {:?}", m.voters(), m.learners());
    assert_eq!(m.voters(), &[1, 2, 3], "the quorum is unchanged");

    // The learner catches up while the three voters keep committing alone.
    assert!(cluster.run_until(300, |c| {
        c.node(4).is_some_and(|n| n.last_applied() == c.node(leader).map_or(0, |l| l.last_index()))
    }));
    let caught = cluster.node(4).expect("up");
    println!("node 4 caught up: applied {} (a {:?})", caught.last_applied(), caught.role());

    cluster.change_membership(leader, MembershipChange::Promote(4)).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    let m = cluster.node(4).expect("up").membership().clone();
    println!("node 4 promoted: voters {:?} learners {:?}", m.voters(), m.learners());
    assert_eq!(m.voters(), &[1, 2, 3, 4]);

    // Now it counts: with two of the original voters down, 1 + node 4 are
    // still only 2 of 4 — no quorum — but with one down, 3 of 4 commit.
    let down = [1, 2, 3].into_iter().find(|&id| id != leader).expect("a follower");
    cluster.crash(down);
    cluster.propose(leader, Bytes::from_static(b"with node 4 in the quorum")).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    println!("committed with node {down} down: node 4 is part of the quorum");
}
