//! The simulator in durable mode: every node on a real `WalLog` in a temp
//! dir; a crash drops the log, loses every unsynced WAL byte but a random
//! prefix (a torn last write) and reopens the directory. Random crash and
//! restart schedules (`Chaos` with `Crashes` and `Everything`), plus crashes
//! in the middle of a node's write, for cluster sizes 1, 3 and 5: the
//! simulator checks the five safety properties after every event, and
//! liveness is checked after the faults heal.
//!
//! * `RAFT_IO_SEEDS=N` runs N seeds per size and profile (default 2);
//!   `RAFT_IO_DURABLE_ROUNDS=N` sets the rounds per run (default 120).
//! * `RAFT_IO_SEED=S RAFT_IO_NODES=N RAFT_IO_PROFILE=P` replays one run.
//! * The logs live under the system temp dir; set `TMPDIR` to choose the
//!   disk (fsync is the cost of this test).
#![cfg(all(feature = "sim", feature = "persistence"))]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use raft_io::RaftLog;
use raft_io::sim::{Chaos, Cluster, FaultProfile, Rng, SimBackend, SimConfig, SimWal};

const LIVENESS_TICKS: u64 = 1_500;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn wal(cluster: &Cluster, id: u64) -> Option<&SimWal> {
    match cluster.node(id)?.log().backend() {
        SimBackend::Wal(w) => Some(w),
        _ => None,
    }
}

/// What a run's durable logs went through.
#[derive(Debug, Default)]
struct Totals {
    crashes: u64,
    torn: u64,
    lost_bytes: u64,
}

fn run(nodes: usize, seed: u64, profile: FaultProfile) -> Totals {
    let rounds = env("RAFT_IO_DURABLE_ROUNDS").unwrap_or(120) as usize;
    println!("durable run: RAFT_IO_SEED={seed} RAFT_IO_NODES={nodes} RAFT_IO_PROFILE={profile:?}");
    let config = SimConfig::new(nodes).seed(seed).tick_skew(0.2).durable(true).configure(|c| c.snapshot_entries(30));
    let mut cluster = Cluster::new(config);
    let mut chaos = Chaos::new(profile, seed).with_filler();
    let mut rng = Rng::new(seed ^ 0xD15C);
    chaos.run_with(&mut cluster, rounds, |c| {
        if rng.chance(0.1) {
            let ids = c.ids();
            let victim = ids[rng.range(0, ids.len() as u64) as usize];
            c.crash_mid_write(victim);
        }
    });
    // Healing crashes every node whose armed crash is still pending (it has
    // not written since), at a step boundary, then restarts every node.
    assert!(
        chaos.heal_and_check_liveness(&mut cluster, LIVENESS_TICKS),
        "liveness: no commit within {LIVENESS_TICKS} ticks after healing\n  replay: RAFT_IO_SEED={seed} \
         RAFT_IO_NODES={nodes} RAFT_IO_PROFILE={profile:?} cargo test --all-features --test sim_durable replay\n{}",
        cluster.trace()
    );
    let mut totals = Totals::default();
    for id in cluster.ids() {
        let w = wal(&cluster, id).expect("every node is up on a WalLog after healing");
        totals.crashes += w.crashes();
        totals.torn += w.torn_writes();
        totals.lost_bytes += w.lost_bytes();
    }
    totals
}

fn profile_named(name: &str) -> FaultProfile {
    FaultProfile::ALL
        .into_iter()
        .find(|p| format!("{p:?}").eq_ignore_ascii_case(name))
        .unwrap_or(FaultProfile::Everything)
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED") else { return };
    let nodes = env("RAFT_IO_NODES").unwrap_or(3) as usize;
    let profile = std::env::var("RAFT_IO_PROFILE").map_or(FaultProfile::Everything, |p| profile_named(&p));
    println!("{:?}", run(nodes, seed, profile));
}

#[test]
fn random_crash_schedules_on_durable_nodes_are_safe_and_live() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(2);
    let mut runs = Vec::new();
    for nodes in [1, 3, 5] {
        for profile in [FaultProfile::Crashes, FaultProfile::Everything] {
            runs.extend((0..seeds).map(|k| (nodes, k * 7919 + nodes as u64, profile)));
        }
    }
    // Runs wait on fsync, not on the CPU: a few at once.
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(Totals::default());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(&(nodes, seed, profile)) = runs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = run(nodes, seed, profile);
                    let mut totals = totals.lock().unwrap();
                    totals.crashes += t.crashes;
                    totals.torn += t.torn;
                    totals.lost_bytes += t.lost_bytes;
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap();
    println!("{} runs: {totals:?}", runs.len());
    assert!(totals.crashes >= 20 * seeds, "{totals:?}");
    assert!(totals.torn >= 2 * seeds && totals.lost_bytes > 0, "crashes tore writes: {totals:?}");
}

#[test]
fn a_crash_mid_write_loses_the_unsynced_record_and_the_node_recovers() {
    let mut cluster = Cluster::new(SimConfig::new(3).seed(11).durable(true));
    let leader = cluster.elect(500).expect("a leader");
    let follower = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let acked = cluster.node(follower).unwrap().last_index();
    cluster.crash_mid_write(follower);
    assert!(wal(&cluster, follower).unwrap().crash_pending());
    // Appends reach the follower, which dies writing one of the next two
    // (at a write, its sync, or the write after).
    for k in 0..3 {
        if !cluster.is_up(follower) {
            break;
        }
        assert!(k < 2, "the follower crashed");
        cluster.propose(leader, "x".into()).unwrap();
        cluster.run_ticks(5);
    }
    cluster.restart(follower);
    let w = wal(&cluster, follower).unwrap();
    assert_eq!(w.crashes(), 1);
    assert!(w.lost_bytes() > 0, "the unsynced record was lost (all or part of it)");
    assert!(!w.crash_pending());
    let log = cluster.node(follower).unwrap().log();
    assert!(log.last_index() >= acked, "what it synced before survived");
    assert!(cluster.run_until(500, |c| c.converged()));
    let dir = wal(&cluster, follower).unwrap().dir().to_path_buf();
    assert!(dir.exists());
    drop(cluster);
    assert!(!dir.exists(), "the temp dirs go with the cluster");
}

#[test]
fn a_durable_run_replays_exactly() {
    let once = || {
        let config = SimConfig::new(3).seed(5).durable(true);
        let mut cluster = Cluster::new(config);
        let mut chaos = Chaos::new(FaultProfile::Crashes, 5).with_filler();
        let mut k = 0;
        chaos.run_with(&mut cluster, 60, |c| {
            k += 1;
            if k % 7 == 0 {
                let id = c.leader().unwrap_or(1);
                c.crash_mid_write(id);
            }
        });
        let logs: Vec<_> = cluster
            .ids()
            .into_iter()
            .map(|id| cluster.node(id).map(|n| (n.term(), n.last_index(), n.commit_index())))
            .collect();
        (cluster.stats(), logs, cluster.now())
    };
    assert_eq!(once(), once());
}
