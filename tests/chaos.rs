//! Random fault schedules on the simulator, for cluster sizes 1 to 7: the
//! five safety properties are checked after every event (the simulator
//! panics with the seed on a violation), and liveness after the faults heal.
//!
//! * `RAFT_IO_SEEDS=N` runs N seeds per size and profile in the sweep
//!   (default 10); `PROPTEST_CASES=N` scales the proptest (default 32).
//! * `RAFT_IO_SEED=S RAFT_IO_NODES=N RAFT_IO_PROFILE=P` replays one run.
#![cfg(feature = "sim")]

use proptest::prelude::*;
use raft_io::sim::{Chaos, Cluster, FaultProfile, SimConfig};

const ROUNDS: usize = 300;
const LIVENESS_TICKS: u64 = 1_500;

fn profile_named(name: &str) -> FaultProfile {
    FaultProfile::ALL
        .into_iter()
        .find(|p| format!("{p:?}").eq_ignore_ascii_case(name))
        .unwrap_or(FaultProfile::Everything)
}

fn run(nodes: usize, seed: u64, profile: FaultProfile) {
    let config = SimConfig::new(nodes).seed(seed).tick_skew(0.2).keep_messages(64);
    let mut cluster = Cluster::new(config);
    let mut chaos = Chaos::new(profile, seed).with_filler();
    chaos.run(&mut cluster, ROUNDS);
    assert!(
        chaos.heal_and_check_liveness(&mut cluster, LIVENESS_TICKS),
        "liveness: no commit within {LIVENESS_TICKS} ticks after healing\n  replay: \
         RAFT_IO_SEED={seed} RAFT_IO_NODES={nodes} RAFT_IO_PROFILE={profile:?} cargo test --all-features --test chaos replay\n{}",
        cluster.trace()
    );
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED").and_then(|s| s.parse().ok()) else { return };
    let nodes = env("RAFT_IO_NODES").and_then(|s| s.parse().ok()).unwrap_or(3);
    let profile = env("RAFT_IO_PROFILE").map_or(FaultProfile::Everything, |p| profile_named(&p));
    run(nodes, seed, profile);
}

#[test]
fn seed_sweep_all_sizes_and_profiles() {
    let seeds: u64 = env("RAFT_IO_SEEDS").and_then(|s| s.parse().ok()).unwrap_or(10);
    for nodes in 1..=7 {
        for profile in FaultProfile::ALL {
            for seed in 0..seeds {
                run(nodes, seed * 7919 + nodes as u64, profile);
            }
        }
    }
}

fn profiles() -> impl Strategy<Value = FaultProfile> {
    proptest::sample::select(FaultProfile::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env("PROPTEST_CASES").and_then(|v| v.parse().ok()).unwrap_or(32),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_fault_schedules_are_safe_and_live(nodes in 1usize..=7, seed in any::<u64>(), profile in profiles()) {
        run(nodes, seed, profile);
    }
}
