//! Snapshots under faults in the simulator: every node snapshots at random
//! points and on policy hints, followers stay down long enough to need a
//! streamed install, and the safety checkers (State Machine Safety compares
//! application state) watch every event.
#![cfg(feature = "sim")]

use bytes::Bytes;
use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, SimConfig, StateMachine};

fn seeds() -> u64 {
    std::env::var("RAFT_IO_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

#[test]
fn a_follower_down_past_compaction_installs_a_snapshot() {
    for seed in 0..seeds() {
        let config = SimConfig::new(5).seed(seed).configure(|c| c.snapshot_entries(50).max_message_bytes(512));
        let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
        let leader = cluster.elect(500).expect("leader");
        let victim = cluster.ids().into_iter().find(|&id| id != leader).expect("follower");
        cluster.crash(victim);
        for i in 0..400 {
            let Some(leader) = cluster.leader() else {
                cluster.run_ticks(1);
                continue;
            };
            let _ = cluster.propose(leader, KvStore::put(&format!("k{}", i % 37), format!("v{i}").as_bytes()));
            if i % 20 == 0 {
                cluster.run_ticks(1);
            }
        }
        cluster.run_ticks(10);
        let restores = cluster.stats().restores;
        cluster.restart(victim);
        assert!(cluster.run_until(1_000, |c| c.converged()), "seed {seed}: no convergence");
        assert!(cluster.stats().restores > restores, "seed {seed}: node {victim} did not need a snapshot");
        assert!(cluster.stats().snapshot_chunks > 1, "seed {seed}: the snapshot came in chunks");
        let digest = cluster.state_machine(victim).unwrap().digest();
        assert!(cluster.ids().iter().all(|&id| cluster.state_machine(id).unwrap().digest() == digest));
    }
}

#[test]
fn chaos_with_frequent_snapshots_is_safe_and_installs_happen() {
    let mut restores = 0;
    let mut chunks = 0;
    for seed in 0..seeds() {
        for nodes in [3, 5] {
            for profile in [FaultProfile::Crashes, FaultProfile::Everything] {
                let config = SimConfig::new(nodes)
                    .seed(seed * 31 + nodes as u64)
                    .tick_skew(0.2)
                    .configure(|c| c.snapshot_entries(15).max_message_bytes(256));
                let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
                let mut chaos = Chaos::new(profile, seed).with_filler();
                chaos.run(&mut cluster, 300);
                assert!(
                    chaos.heal_and_check_liveness(&mut cluster, 1_500),
                    "seed {seed} nodes {nodes} {profile:?}: not live after healing"
                );
                restores += cluster.stats().restores;
                chunks += cluster.stats().snapshot_chunks;
            }
        }
    }
    println!("{restores} snapshot restores, {chunks} chunks delivered");
    assert!(restores > 0 && chunks > 0, "the schedules exercised snapshot installs");
}

#[test]
fn user_commands_with_binary_payloads_survive_snapshots() {
    let config = SimConfig::new(3).seed(3).configure(|c| c.snapshot_entries(10));
    let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
    let leader = cluster.elect(500).unwrap();
    for i in 0u8..60 {
        cluster.propose(leader, KvStore::put("bin", &[i, 0, 255, i])).unwrap();
        cluster.run_ticks(1);
    }
    assert!(cluster.run_until(500, |c| c.converged()));
    for id in cluster.ids() {
        assert_eq!(cluster.state_machine(id).unwrap().get("bin"), Some(&Bytes::from_static(&[59, 0, 255, 59])));
    }
}
