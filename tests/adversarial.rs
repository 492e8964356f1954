//! The combined adversarial suite (stable Rust): byte scripts drive a
//! simulated key-value cluster through every fault at once — partitions,
//! loss, crashes, snapshots, membership changes, reads and buggy peers
//! (replays, truncated appends, unknown senders, arbitrary decoded frames).
//! The simulator checks the five safety properties after every event; the
//! client history must be linearizable. This is the stable twin of the
//! `cluster` cargo-fuzz target (`fuzz/`).
//!
//! `PROPTEST_CASES=N` scales it (default 256).
#![cfg(feature = "sim")]

use proptest::prelude::*;
use raft_io::sim::ByteScript;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_script_is_safe_and_linearizable(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Safety was checked after every event (a violation panics).
        let (_cluster, history) = ByteScript::new(&bytes).run();
        if let Err(e) = history.check() {
            prop_assert!(false, "not linearizable:\n{}", e);
        }
    }
}

/// Every script of the committed `cluster` fuzz corpus. The corpus is part
/// of the repository: a missing or empty directory, or a file that cannot
/// be read, fails the test instead of passing it with nothing checked.
#[test]
fn the_committed_fuzz_corpus_is_safe() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cluster");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()));
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display())).path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_cluster, history) = ByteScript::new(&bytes).run();
        if let Err(e) = history.check() {
            panic!("{}: not linearizable\n{e}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 0, "the fuzz corpus {} is empty", dir.display());
    println!("{checked} corpus scripts checked");
}

/// Everything at once (issue 9): partitions (one-way and flapping), loss,
/// duplication and reordering, crash-restart on real `WalLog`s with torn
/// writes, membership churn with joint changes, leadership transfers,
/// snapshots and streamed installs, buggy peers, and all three read kinds;
/// the five checkers after every event, liveness after healing, and a
/// linearizable client history.
#[cfg(feature = "persistence")]
#[test]
fn everything_at_once_on_durable_logs() {
    use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, KvWorkload, SimConfig};
    let seeds: u64 = std::env::var("RAFT_IO_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    for seed in 0..seeds {
        for nodes in [3, 5] {
            let config = SimConfig::new(nodes)
                .seed(seed * 7 + nodes as u64)
                .durable(true)
                .keep_messages(64)
                .tick_skew(0.1)
                .configure(|c| c.lease_reads(true).snapshot_entries(30).max_message_bytes(512));
            let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
            let mut chaos = Chaos::new(FaultProfile::Everything, seed).with_filler();
            let mut clients = KvWorkload::new(seed, 3, true);
            chaos.run_with(&mut cluster, 200, |c| clients.round(c));
            assert!(
                chaos.heal_and_check_liveness(&mut cluster, 2_000),
                "seed {seed}, {nodes} nodes: not live after healing\n{}",
                cluster.trace()
            );
            cluster.run_ticks(40);
            if let Err(e) = clients.history(&cluster).check() {
                panic!("seed {seed}, {nodes} nodes: not linearizable\n{e}");
            }
            let stats = cluster.stats();
            assert!(stats.crashes > 0 && stats.elections > 1, "seed {seed}: the schedule did little: {stats:?}");
        }
    }
}
