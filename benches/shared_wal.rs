//! The shared WAL's cost per group write, with many groups (feature
//! `persistence`; not criterion).
//!
//! What a many-groups driver asks of its storage for each group that has a
//! write in a turn, without the node, the transport or the threads: one
//! [`GroupLog`] per group, and per turn, for every group in turn, one
//! 40-byte entry appended, the hard state's commit moved on, and the step
//! submitted with a write token; then one flush of the shared WAL for the
//! whole turn. The groups are visited round-robin, so a group's state is
//! as cold in the cache as a driver with that many groups finds it.
//!
//! Each round times [`WRITES`] group writes (as many turns as that takes);
//! the medians of nanoseconds per group write, and per turn, are printed
//! for 1, 100 and 1 000 groups. The logs grow (nothing is compacted); each
//! round starts from fresh logs.
//!
//! Temp dirs are made under `RAFT_IO_BENCH_DIR` if set, else the system
//! temp dir. To measure the CPU cost rather than the disk, point it at a
//! tmpfs (`/dev/shm`), where fdatasync costs next to nothing.
//!
//! `RAFT_IO_BENCH_DIR=/dev/shm cargo bench --features persistence --bench
//! shared_wal` (`RAFT_IO_BENCH_ROUNDS` sets the rounds, default 7;
//! `RAFT_IO_BENCH_GROUPS` the group counts, default `1,100,1000`).

#[path = "support/bench_env.rs"]
mod bench_env;

use std::time::Instant;

use bench_env::{base_dir, median};
use bytes::Bytes;
use raft_io::log::WriteToken;
use raft_io::log::shared::{GroupLog, SharedWal};
use raft_io::{Entry, RaftLog};

/// Writes timed per round, whatever the number of groups.
const WRITES: u64 = 400_000;

/// One round at `groups` groups: nanoseconds per group write, and the
/// turns made.
fn round(groups: u64) -> (f64, u64) {
    let dir = tempfile::Builder::new().prefix("raft-io-bench-shared-").tempdir_in(base_dir()).unwrap();
    let wal = SharedWal::open(dir.path()).unwrap();
    let mut logs: Vec<GroupLog> = (1..=groups).map(|id| wal.create_group(id).unwrap()).collect();
    wal.flush().unwrap();
    let command = Bytes::from(vec![7u8; 40]);
    let mut durable = Vec::new();
    let mut batch = Vec::with_capacity(1);
    let turns = WRITES.div_ceil(groups);
    let start = Instant::now();
    for turn in 1..=turns {
        for log in &mut logs {
            batch.push(Entry::normal(1, turn, command.clone()));
            log.append(&mut batch).unwrap();
            let mut hard = log.hard_state();
            hard.term = 1;
            hard.commit = turn - 1;
            log.set_hard_state(hard).unwrap();
            let _ = log.submit(WriteToken::new(1, turn)).unwrap();
        }
        durable.clear();
        wal.flush_into(&mut durable).unwrap();
        assert_eq!(durable.len() as u64, groups);
    }
    let elapsed = start.elapsed();
    (elapsed.as_nanos() as f64 / (turns * groups) as f64, turns)
}

fn main() {
    let rounds: usize = std::env::var("RAFT_IO_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let counts: Vec<u64> = std::env::var("RAFT_IO_BENCH_GROUPS")
        .ok()
        .and_then(|v| v.split(',').map(|g| g.trim().parse().ok().filter(|&g| g > 0)).collect())
        .unwrap_or_else(|| vec![1, 100, 1000]);
    let mut per_write: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut turns = vec![0u64; counts.len()];
    // Interleaved: every count in each round, so all see the same load.
    for _ in 0..rounds {
        for (i, &groups) in counts.iter().enumerate() {
            let (ns, t) = round(groups);
            per_write[i].push(ns);
            turns[i] = t;
        }
    }
    println!("| groups | turns per round | ns per group write (median of {rounds}) | ns per turn |");
    println!("|---:|---:|---:|---:|");
    for (i, &groups) in counts.iter().enumerate() {
        let ns = median(std::mem::take(&mut per_write[i]));
        println!("| {groups} | {} | {ns:.0} | {:.0} |", turns[i], ns * groups as f64);
    }
}
