//! A replicated key-value store on three nodes: writes go through the log,
//! reads through ReadIndex, lease reads and follower reads. It prints what
//! each read saw, then shows a deposed leader refusing to serve a stale read.
//!
//! Run: `cargo run --example kv_store --features sim`

use bytes::Bytes;
use raft_io::ReadKind;
use raft_io::sim::{Cluster, KvStore, SimConfig};

fn show(cluster: &Cluster<KvStore>, how: &str) {
    let o = cluster.read_outcomes().last().expect("an outcome");
    match &o.result {
        Ok(index) => println!(
            "  {how:<28} on node {}: read index {index}, saw {:?}",
            o.node,
            o.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
        ),
        Err(reason) => println!("  {how:<28} on node {}: failed ({reason:?})", o.node),
    }
}

/// Issues a read and runs the cluster until it has an outcome.
fn read(cluster: &mut Cluster<KvStore>, node: u64, id: u64, kind: ReadKind, key: &str, how: &str) {
    let before = cluster.read_outcomes().len();
    match cluster.read_query(node, id, kind, Bytes::copy_from_slice(key.as_bytes())) {
        Ok(()) => {
            cluster.run_until(200, |c| c.read_outcomes().len() > before);
            show(cluster, how);
        }
        Err(e) => println!("  {how:<28} on node {node}: refused ({e})"),
    }
}

fn main() {
    let config = SimConfig::new(3).seed(17).configure(|c| c.lease_reads(true));
    let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
    let leader = cluster.elect(500).expect("a leader");
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    println!("node {leader} leads; node {follower} follows");

    println!("write color = red");
    cluster.submit(leader, KvStore::put("color", b"red")).expect("accepted");
    cluster.run_ticks(3);
    read(&mut cluster, leader, 1, ReadKind::Index, "color", "ReadIndex (leader)");
    read(&mut cluster, leader, 2, ReadKind::Lease, "color", "lease read (leader)");
    read(&mut cluster, follower, 3, ReadKind::Index, "color", "follower read");

    println!("write color = blue, and wait for the acknowledgement");
    let ticket = cluster.submit(leader, KvStore::put("color", b"blue")).expect("accepted");
    assert!(cluster.run_until(100, |c| c.write_outcomes().iter().any(|w| w.ticket == ticket && w.committed)));
    // Read at once on the follower, which may not have applied the write
    // yet: the read waits until it has applied the leader's commit index,
    // so it cannot return "red" after "blue" was acknowledged.
    read(&mut cluster, follower, 4, ReadKind::Index, "color", "follower read, right after");
    assert_eq!(cluster.read_outcomes().last().and_then(|o| o.value.clone()), Some(Bytes::from_static(b"blue")));

    println!("the leader is cut off; the others elect a new leader and write color = green");
    cluster.isolate(leader);
    assert!(cluster.run_until(200, |c| c.leader().is_some_and(|l| l != leader && c.leader_ready(l))));
    let new = cluster.leader().expect("new leader");
    cluster.submit(new, KvStore::put("color", b"green")).expect("accepted");
    cluster.run_ticks(2);
    read(&mut cluster, new, 5, ReadKind::Index, "color", "ReadIndex (new leader)");
    // The old leader's lease ran out before the new leader could exist, and
    // its ReadIndex cannot reach a quorum: it never answers "blue".
    read(&mut cluster, leader, 6, ReadKind::Index, "color", "ReadIndex (deposed leader)");
    let stale = cluster.read_outcomes().iter().any(|o| o.node == leader && o.id == 6 && o.result.is_ok());
    assert!(!stale, "a deposed leader served a read");

    cluster.heal();
    assert!(cluster.run_until(300, |c| c.converged()));
    read(&mut cluster, leader, 7, ReadKind::Index, "color", "follower read after healing");
    assert_eq!(cluster.read_outcomes().last().and_then(|o| o.value.clone()), Some(Bytes::from_static(b"green")));
}
