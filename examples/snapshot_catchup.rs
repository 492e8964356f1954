//! A lagging node catches up through a streamed snapshot.
//!
//! A three-node key-value store builds up more than 16 MiB of state while
//! node 3 is down. The leader compacts its log behind application snapshots,
//! so when node 3 returns it cannot be sent the entries: it receives the
//! snapshot in 1 MiB chunks (no single giant message), restores it, and
//! continues from the log. The simulator checks Raft's safety properties,
//! including equal application state at equal indexes, after every event.
//!
//! Run: `cargo run --release --example snapshot_catchup --features sim`

use std::time::Instant;

use raft_io::sim::{Cluster, KvStore, SimConfig, StateMachine};

fn main() {
    let config = SimConfig::new(3)
        .seed(5)
        .configure(|c| c.snapshot_entries(2_000).max_message_bytes(1 << 20).max_uncommitted_bytes(256 << 20));
    let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
    let leader = cluster.elect(500).expect("a leader");
    println!("node {leader} leads; node 3 goes down");
    cluster.crash(3);

    let value = vec![b'v'; 1024];
    let keys = 17 * 1024;
    for batch in 0..keys / 256 {
        let commands = (0..256).map(|i| KvStore::put(&format!("key{:05}", batch * 256 + i), &value)).collect();
        let leader = cluster.leader().expect("leader");
        cluster.propose_batch(leader, commands).expect("accepted");
        cluster.run_ticks(1);
    }
    cluster.run_ticks(5);
    let leader = cluster.leader().expect("leader");
    let node = cluster.node(leader).expect("up");
    let state = cluster.state_machine(leader).expect("sm").snapshot().len();
    println!(
        "leader applied {} entries; state {:.1} MiB; log compacted through {}",
        node.last_applied(),
        state as f64 / (1 << 20) as f64,
        raft_io::RaftLog::snapshot_meta(node.log()).index
    );
    assert!(state >= 16 << 20, "at least 16 MiB of state");

    let sent = raft_io::RaftLog::snapshot_len(node.log()).expect("snapshot");
    assert!(sent >= 16 << 20, "the snapshot to send is at least 16 MiB");
    let before = cluster.stats();
    let started = Instant::now();
    cluster.restart(3);
    assert!(cluster.run_until(2_000, |c| c.converged()), "node 3 catches up");
    let after = cluster.stats();
    println!(
        "node 3 restored a {:.1} MiB snapshot from {} chunks of at most 1 MiB in {:?} (simulated {} ticks)",
        sent as f64 / (1 << 20) as f64,
        after.snapshot_chunks - before.snapshot_chunks,
        started.elapsed(),
        cluster.now() / raft_io::sim::TICK
    );
    assert!(after.snapshot_chunks - before.snapshot_chunks >= 16);
    assert!(after.restores > before.restores);
    let digests: Vec<u64> = cluster.ids().iter().map(|&id| cluster.state_machine(id).expect("sm").digest()).collect();
    println!("state digests: {digests:x?}");
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "every node ends with the same state");
    let kv = cluster.state_machine(3).expect("sm");
    assert_eq!(kv.len(), keys);
    println!("node 3 holds all {} keys", kv.len());
}
