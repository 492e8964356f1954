//! Grow, shrink and hand over a running cluster: add a node, remove a node,
//! transfer leadership. The new node starts with `RaftConfig::joining`: no
//! configuration of its own, it learns it from the leader.
//!
//! Run: `cargo run --example membership --features sim`

use bytes::Bytes;
use raft_io::MembershipChange;
use raft_io::sim::{Cluster, SimConfig};

fn show(cluster: &Cluster, what: &str) {
    let leader = cluster.leader().expect("leader");
    let m = cluster.node(leader).expect("up").membership();
    println!("{what}: leader {leader}, voters {:?}, learners {:?}", m.voters(), m.learners());
}

fn main() {
    let mut cluster = Cluster::new(SimConfig::new(3).seed(21));
    let leader = cluster.elect(500).expect("leader");
    show(&cluster, "start");

    // Add node 4: it joins with no configuration, the leader adds it.
    cluster.add_node(4);
    cluster.change_membership(leader, MembershipChange::AddVoter(4)).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    show(&cluster, "after adding node 4");
    assert_eq!(cluster.node(4).expect("up").membership().voters(), &[1, 2, 3, 4]);

    // Remove a follower.
    let victim = [1, 2, 3].into_iter().find(|&id| id != leader).expect("a follower");
    cluster.change_membership(leader, MembershipChange::Remove(victim)).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    show(&cluster, &format!("after removing node {victim}"));

    // Hand leadership to node 4; it is brought up to date, then elected.
    cluster.propose(leader, Bytes::from_static(b"before transfer")).expect("accepted");
    cluster.transfer_leadership(leader, 4).expect("accepted");
    assert!(cluster.run_until(200, |c| c.leader() == Some(4)));
    show(&cluster, "after transferring leadership to node 4");
    // A new leader changes the configuration only once an entry of its own
    // term has committed.
    assert!(cluster.run_until(100, |c| c.leader_ready(4)));

    // Remove the old leader too: the cluster keeps working.
    cluster.change_membership(4, MembershipChange::Remove(leader)).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    cluster.propose(4, Bytes::from_static(b"after")).expect("accepted");
    assert!(cluster.run_until(200, |c| c.converged()));
    show(&cluster, &format!("after removing node {leader}"));
    assert_eq!(cluster.node(4).expect("up").membership().voters().len(), 2);
}
