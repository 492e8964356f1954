//! A network partition on the simulator: the minority side cannot commit,
//! the majority elects a leader and keeps committing; after healing, the
//! old leader steps down, its uncommitted entries are replaced, and every
//! node converges. The simulator checks Raft's five safety properties after
//! every event.
//!
//! Run: `cargo run --example partition_recovery --features sim`

use bytes::Bytes;
use raft_io::sim::{Cluster, SimConfig, StateMachine};

fn status(cluster: &Cluster, label: &str) {
    println!("{label}");
    for id in cluster.ids() {
        let n = cluster.node(id).expect("up");
        println!(
            "  node {id}: {:?} term {} leader {:?} commit {} last {}",
            n.role(),
            n.term(),
            n.leader(),
            n.commit_index(),
            n.last_index()
        );
    }
}

fn main() {
    let mut cluster = Cluster::new(SimConfig::new(5).seed(11));
    let old = cluster.elect(500).expect("a leader");
    for i in 0..5 {
        cluster.propose(old, Bytes::from(format!("before {i}"))).expect("leader accepts");
    }
    cluster.run_ticks(5);
    status(&cluster, &format!("node {old} leads; 5 commands committed"));

    // Cut the leader and one follower off from the other three.
    let other = cluster.ids().into_iter().find(|&id| id != old).expect("a follower");
    let majority: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old && id != other).collect();
    cluster.partition(&[&[old, other], &majority]);
    let commit_before = cluster.node(old).expect("up").commit_index();
    for i in 0..3 {
        let _ = cluster.propose(old, Bytes::from(format!("lost {i}")));
    }
    cluster.run_ticks(40);
    let new = cluster.leader().expect("the majority elects a leader");
    for i in 0..5 {
        cluster.propose(new, Bytes::from(format!("during {i}"))).expect("new leader accepts");
    }
    cluster.run_ticks(10);
    status(&cluster, &format!("partitioned: minority {{{old}, {other}}} vs majority {majority:?}"));
    assert_eq!(cluster.node(old).expect("up").commit_index(), commit_before, "the minority committed nothing");
    assert!(!cluster.node(old).expect("up").is_leader(), "the old leader stepped down (check-quorum)");

    cluster.heal();
    assert!(cluster.run_until(500, |c| c.converged()), "the cluster converges");
    status(&cluster, "healed and converged");
    let leader = cluster.leader().expect("leader");
    let digest = cluster.state_machine(leader).expect("sm").digest();
    assert!(cluster.ids().iter().all(|&id| cluster.state_machine(id).expect("sm").digest() == digest));
    println!("every node applied the same commands; the 3 proposals on the minority side were never applied");
}
