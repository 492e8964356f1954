//! The simulator with many groups per node (`raft_io::sim::MultiCluster`):
//! every node a `MultiNode` host of every group; faults per pair of nodes;
//! a crash takes down every group replica of a node and loses every write
//! not yet flushed (in the asynchronous mode); quiescence and wake-ups
//! under faults; the five properties checked per group after every event,
//! every group's client history (register writes, ReadIndex reads)
//! checked for linearizability, and liveness of every group after healing.
//!
//! * `RAFT_IO_SEEDS=N` runs N seeds per shape (default 3).
//! * `RAFT_IO_SEED=S RAFT_IO_NODES=N RAFT_IO_GROUPS=G RAFT_IO_ASYNC=0|1`
//!   replays one run (`cargo test --all-features --test sim_multi replay`).
#![cfg(feature = "sim")]

use raft_io::sim::{MultiCluster, MultiSimConfig, MultiSimStats};

static OPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static UNDECIDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn run(nodes: usize, groups: u64, seed: u64, asynchronous: bool) -> MultiSimStats {
    let replay = format!(
        "replay: RAFT_IO_SEED={seed} RAFT_IO_NODES={nodes} RAFT_IO_GROUPS={groups} RAFT_IO_ASYNC={} cargo test \
         --all-features --test sim_multi replay",
        u8::from(asynchronous)
    );
    let mut c = MultiCluster::new(MultiSimConfig::new(nodes, groups).seed(seed).async_storage(asynchronous));
    if let Err(v) = c.chaos(200) {
        panic!("{v}\n  {replay}");
    }
    match c.heal_and_check_liveness(2_000) {
        Ok(true) => {}
        Ok(false) => panic!("liveness: not every group committed after healing\n  {replay}"),
        Err(v) => panic!("{v}\n  {replay}"),
    }
    let (operations, unknown) = c.check_histories().unwrap_or_else(|v| panic!("{v}\n  {replay}"));
    assert!(operations > 0, "{replay}");
    OPS.fetch_add(operations as u64, std::sync::atomic::Ordering::Relaxed);
    UNDECIDED.fetch_add(unknown as u64, std::sync::atomic::Ordering::Relaxed);
    c.stats()
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED") else { return };
    let stats = run(
        env("RAFT_IO_NODES").unwrap_or(3) as usize,
        env("RAFT_IO_GROUPS").unwrap_or(8),
        seed,
        env("RAFT_IO_ASYNC") == Some(1),
    );
    println!("{stats:?}");
}

#[test]
fn many_groups_per_node_are_safe_and_live_under_faults() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(3);
    let mut total = MultiSimStats::default();
    let mut runs = 0;
    for nodes in [1, 3, 5] {
        for asynchronous in [false, true] {
            for k in 0..seeds {
                let s = run(nodes, 8, k * 7919 + nodes as u64, asynchronous);
                runs += 1;
                total.crashes += s.crashes;
                total.delivered += s.delivered;
                total.flushes += s.flushes;
                total.completions += s.completions;
                total.quiesces += s.quiesces;
                total.wakes += s.wakes;
                total.woken_by_peer_loss += s.woken_by_peer_loss;
            }
        }
    }
    let ops = OPS.load(std::sync::atomic::Ordering::Relaxed);
    let undecided = UNDECIDED.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{runs} runs of 8 groups: {total:?}; {ops} register operations checked, {undecided} group histories undecided"
    );
    assert!(total.crashes > 0 && total.quiesces > 0 && total.wakes > 0, "faults and quiescence were exercised");
    assert!(total.completions > total.flushes, "one flush covers the writes of several groups");
}
