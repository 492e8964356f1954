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

#[test]
fn the_committed_fuzz_corpus_is_safe() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cluster");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let (_cluster, history) = ByteScript::new(&bytes).run();
        assert!(history.check().is_ok(), "{}", entry.path().display());
    }
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
            let mut chaos = Chaos::new(FaultProfile::Everything, seed);
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
