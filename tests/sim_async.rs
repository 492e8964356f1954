//! The simulator in the asynchronous storage mode (`docs/PROTOCOL.md`
//! §5.1): every fault profile, with write completions delayed, batched and
//! lost in crashes, disks that stall, on `MemoryLog` and on real `WalLog`
//! files. The five safety properties are checked after every event, and
//! liveness after the faults heal.
//!
//! * `RAFT_IO_SEEDS=N` runs N seeds per size (1 to 7) and profile
//!   (default 2; 4 per shape on real files).
//! * `RAFT_IO_SEED=S RAFT_IO_NODES=N RAFT_IO_PROFILE=P [RAFT_IO_DURABLE=1]`
//!   replays one run (`cargo test --all-features --test sim_async replay`).
#![cfg(feature = "sim")]

use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, KvWorkload, SimConfig};

const ROUNDS: usize = 300;
const LIVENESS_TICKS: u64 = 1_500;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn profile_named(name: &str) -> FaultProfile {
    FaultProfile::ALL
        .into_iter()
        .find(|p| format!("{p:?}").eq_ignore_ascii_case(name))
        .unwrap_or(FaultProfile::Everything)
}

fn config(nodes: usize, seed: u64, durable: bool) -> SimConfig {
    let config = SimConfig::new(nodes).seed(seed).tick_skew(0.2).async_storage(true);
    #[cfg(feature = "persistence")]
    let config = config.durable(durable);
    #[cfg(not(feature = "persistence"))]
    let _ = durable;
    config
}

/// One run; returns the write completions reported and the disk stalls.
fn run(nodes: usize, seed: u64, profile: FaultProfile, durable: bool) -> (u64, u64) {
    let mut cluster = Cluster::new(config(nodes, seed, durable));
    let mut chaos = Chaos::new(profile, seed).with_filler();
    chaos.run(&mut cluster, ROUNDS);
    assert!(
        chaos.heal_and_check_liveness(&mut cluster, LIVENESS_TICKS),
        "liveness: no commit within {LIVENESS_TICKS} ticks after healing\n  replay: RAFT_IO_SEED={seed} \
         RAFT_IO_NODES={nodes} RAFT_IO_PROFILE={profile:?} RAFT_IO_DURABLE={} cargo test --all-features --test \
         sim_async replay\n{}",
        u8::from(durable),
        cluster.trace()
    );
    let stats = cluster.stats();
    (stats.write_completions, stats.disk_stalls)
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED") else { return };
    let nodes = env("RAFT_IO_NODES").unwrap_or(3) as usize;
    let profile = std::env::var("RAFT_IO_PROFILE").map_or(FaultProfile::Everything, |p| profile_named(&p));
    println!("{:?}", run(nodes, seed, profile, env("RAFT_IO_DURABLE") == Some(1)));
}

#[test]
fn every_profile_in_async_mode_is_safe_and_live() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(2);
    let (mut runs, mut completions, mut stalls) = (0, 0, 0);
    for nodes in 1..=7 {
        for profile in FaultProfile::ALL {
            for k in 0..seeds {
                let seed = k * 7919 + nodes as u64;
                let (c, s) = run(nodes, seed, profile, false);
                runs += 1;
                completions += c;
                stalls += s;
            }
        }
    }
    println!("async mode: {runs} runs, {completions} write completions, {stalls} disk stalls");
    assert!(completions > 0 && stalls > 0, "the async mode and its faults were exercised");
}

#[cfg(feature = "persistence")]
#[test]
fn crashes_in_async_mode_on_real_wal_files_are_safe_and_live() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(4);
    for nodes in [3, 5] {
        for profile in [FaultProfile::Crashes, FaultProfile::Everything] {
            for k in 0..seeds {
                run(nodes, k * 7919 + nodes as u64, profile, true);
            }
        }
    }
}

/// Key-value clients (writes, compare-and-set, ReadIndex, lease and
/// follower reads) in the asynchronous mode: every history linearizable.
#[test]
fn reads_and_writes_stay_linearizable_in_async_mode() {
    let seeds = env("RAFT_IO_SEEDS").unwrap_or(2);
    let mut operations = 0;
    for k in 0..seeds * 2 {
        for nodes in [3, 5] {
            for (profile, lease) in [
                (FaultProfile::Crashes, true),
                (FaultProfile::Pauses, true),
                (FaultProfile::Everything, true),
                (FaultProfile::Everything, false),
            ] {
                let seed = k * 101 + nodes as u64;
                let config = SimConfig::new(nodes).seed(seed).tick_skew(0.1).async_storage(true).configure(move |c| {
                    let c = c.read_timeout_ticks(30).snapshot_entries(40);
                    if lease { c.lease_reads(true).lease_drift_ticks(3) } else { c.check_quorum(false) }
                });
                let mut c = Cluster::with_state_machines(config, |_| KvStore::default());
                let mut chaos = Chaos::new(profile, seed).with_filler();
                let mut clients = KvWorkload::new(seed, 3, lease);
                chaos.run_with(&mut c, 250, |c| clients.round(c));
                assert!(chaos.heal_and_check_liveness(&mut c, 1_500), "seed {seed} {nodes} {profile:?}: not live");
                c.run_ticks(40);
                let history = clients.history(&c);
                operations += history.len();
                if let Err(e) = history.check() {
                    panic!(
                        "seed {seed}, {nodes} nodes, {profile:?}, lease {lease}: not linearizable\n{e}\n{}",
                        c.trace()
                    );
                }
            }
        }
    }
    println!("async mode: {operations} operations checked");
    assert!(operations > 100);
}

/// A leader whose disk stalls steps down within an election timeout of
/// the stall (its writes make no progress), and the cluster fails over to
/// a leader that commits; a stalled follower stops acknowledging, and the
/// others commit without it.
#[test]
fn a_stalled_disk_does_not_keep_the_cluster_from_failing_over() {
    for seed in 0..4 {
        let mut c = Cluster::new(SimConfig::new(3).seed(seed).async_storage(true));
        let old = c.elect(200).expect("a leader");
        c.stall_disk(old, 1_000);
        let _ = c.propose(old, raft_io::bytes::Bytes::from_static(b"stuck"));
        // Election timeout 10..=20 ticks: the stall is noticed after 20
        // ticks, and the others elect within another timeout or two.
        let failed_over = c.run_until(100, |c| c.leader().is_some_and(|l| l != old && c.leader_ready(l)));
        assert!(failed_over, "seed {seed}: no failover from the stalled leader {old}\n{}", c.trace());
        assert!(!c.node(old).is_some_and(|n| n.is_leader()), "seed {seed}: the stalled node still leads");
        let new = c.leader().expect("a leader");
        let before = c.node(new).map_or(0, |n| n.commit_index());
        let _ = c.propose(new, raft_io::bytes::Bytes::from_static(b"after"));
        assert!(
            c.run_until(50, |c| c.node(new).is_some_and(|n| n.commit_index() > before)),
            "seed {seed}: the new leader commits"
        );
        // The stalled node acknowledged nothing meanwhile.
        let m = c.node(old).map(|n| n.metrics()).expect("up");
        assert!(m.writes_pending > 0 && m.messages_held > 0, "seed {seed}: {m:?}");
    }
}
