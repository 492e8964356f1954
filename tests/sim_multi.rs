//! The simulator with many groups per node (`raft_io::sim::MultiCluster`):
//! every node a `MultiNode` host of every group, under every
//! `FaultProfile` (partitions and loss per pair of nodes; crashes that take
//! down every group replica of a node and lose every write not yet flushed;
//! per-group membership churn, leadership transfers and rebalancing; buggy
//! peers; host pauses; the fragile scenes in many groups at once);
//! quiescence and wake-ups under each; the five properties checked per
//! group after every event, every group's client history (register
//! writes, ReadIndex reads) checked for linearizability, and liveness of
//! every group after healing.
//!
//! * `RAFT_IO_SEEDS=N` runs N seeds per profile and shape (default 1).
//! * `RAFT_IO_PROFILE=P RAFT_IO_SEED=S RAFT_IO_NODES=N RAFT_IO_GROUPS=G
//!   RAFT_IO_ASYNC=0|1 [RAFT_IO_MAX_CAMPAIGNS=M]` replays one run (`cargo
//!   test --all-features --test sim_multi replay`).
#![cfg(feature = "sim")]

use std::time::Instant;

use raft_io::sim::{FaultProfile, MultiCluster, MultiSimConfig, MultiSimStats};

const ROUNDS: usize = 150;
const GROUPS: u64 = 8;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn profile_from_env() -> FaultProfile {
    let name = std::env::var("RAFT_IO_PROFILE").unwrap_or_else(|_| "Everything".to_owned());
    FaultProfile::ALL
        .into_iter()
        .find(|p| format!("{p:?}").eq_ignore_ascii_case(&name))
        .unwrap_or_else(|| panic!("RAFT_IO_PROFILE={name}: not a fault profile"))
}

/// What one run went through, and its histories: register operations
/// checked, and groups whose check ran out of budget.
struct Ran {
    stats: MultiSimStats,
    operations: u64,
    undecided: u64,
}

fn run(profile: FaultProfile, nodes: usize, groups: u64, seed: u64, asynchronous: bool) -> Ran {
    run_paced(profile, nodes, groups, seed, asynchronous, raft_io::multi::DEFAULT_MAX_CAMPAIGNS)
}

fn run_paced(
    profile: FaultProfile,
    nodes: usize,
    groups: u64,
    seed: u64,
    asynchronous: bool,
    max_campaigns: usize,
) -> Ran {
    let replay = format!(
        "replay: RAFT_IO_PROFILE={profile:?} RAFT_IO_SEED={seed} RAFT_IO_NODES={nodes} RAFT_IO_GROUPS={groups} \
         RAFT_IO_ASYNC={} RAFT_IO_MAX_CAMPAIGNS={max_campaigns} cargo test --all-features --test sim_multi replay",
        u8::from(asynchronous)
    );
    let cfg = MultiSimConfig::new(nodes, groups)
        .seed(seed)
        .async_storage(asynchronous)
        .profile(profile)
        .max_campaigns(max_campaigns);
    let mut c = MultiCluster::new(cfg);
    if let Err(v) = c.chaos(ROUNDS) {
        panic!("{v}\n  {replay}");
    }
    match c.heal_and_check_liveness(2_000) {
        Ok(true) => {}
        Ok(false) => panic!("liveness: not every group committed after healing\n  {replay}"),
        Err(v) => panic!("{v}\n  {replay}"),
    }
    let (operations, unknown) = c.check_histories().unwrap_or_else(|v| panic!("{v}\n  {replay}"));
    assert!(operations > 0, "no client operation: {replay}");
    Ran { stats: c.stats(), operations: operations as u64, undecided: unknown as u64 }
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED") else { return };
    let ran = run_paced(
        profile_from_env(),
        env("RAFT_IO_NODES").unwrap_or(3) as usize,
        env("RAFT_IO_GROUPS").unwrap_or(GROUPS),
        seed,
        env("RAFT_IO_ASYNC") == Some(1),
        env("RAFT_IO_MAX_CAMPAIGNS").map_or(raft_io::multi::DEFAULT_MAX_CAMPAIGNS, |m| m as usize),
    );
    println!("{:?}", ran.stats);
}

#[test]
fn many_groups_per_node_are_safe_and_live_under_every_fault_profile() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(1);
    let started = Instant::now();
    let (mut all, mut runs, mut ops, mut undecided) = (MultiSimStats::default(), 0, 0, 0);
    for profile in FaultProfile::ALL {
        let t = Instant::now();
        let mut total = MultiSimStats::default();
        for nodes in [1, 3, 5] {
            for asynchronous in [false, true] {
                for k in 0..seeds {
                    let ran = run(profile, nodes, GROUPS, k * 7919 + nodes as u64, asynchronous);
                    runs += 1;
                    total.add(&ran.stats);
                    ops += ran.operations;
                    undecided += ran.undecided;
                }
            }
        }
        println!("{profile:?}: {} runs, {:.1?}: {total:?}", 6 * seeds, t.elapsed());
        assert!(total.quiesces > 0 && total.wakes > 0, "{profile:?}: groups quiesced and woke");
        let p = |list: &[FaultProfile]| list.contains(&profile);
        use FaultProfile::*;
        if p(&[Crashes, Everything, Fragile]) {
            assert!(total.crashes > 0, "{profile:?}: nodes crashed");
        }
        if p(&[Membership, Everything]) {
            assert!(total.membership_changes > 0 && total.transfers > 0, "{profile:?}: membership churned");
        }
        if p(&[BuggyPeers, Everything]) {
            assert!(total.replayed > 0 && total.dropped > 0, "{profile:?}: buggy peers were heard and dropped");
        }
        if p(&[Pauses, Everything]) {
            assert!(total.pauses > 0 && total.woken_by_peer_loss > 0, "{profile:?}: paused hosts went silent");
        }
        all.add(&total);
    }
    println!(
        "{runs} runs of {GROUPS} groups, {ROUNDS} rounds each, {:.1?}: {all:?}; {ops} register operations \
         checked, {undecided} group histories undecided",
        started.elapsed()
    );
    assert!(all.completions > all.flushes, "one flush covers the writes of several groups");
}

/// Campaign pacing under every fault profile: one campaign slot per node
/// for 8 groups, so elections are held back whenever two groups of a node
/// fall due together. Safety, linearizability and liveness after healing
/// as in every run.
#[test]
fn paced_campaigns_are_safe_and_live_under_every_fault_profile() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(1);
    let mut all = MultiSimStats::default();
    for profile in FaultProfile::ALL {
        for nodes in [3, 5] {
            for asynchronous in [false, true] {
                for k in 0..seeds {
                    all.add(&run_paced(profile, nodes, GROUPS, k * 6007 + nodes as u64, asynchronous, 1).stats);
                }
            }
        }
    }
    println!("paced: {all:?}");
    assert!(all.campaigns_held > 0, "elections were held back");
}
