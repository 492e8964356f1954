//! End-to-end benchmark of the network runtime: a 3-node cluster on
//! loopback TCP, each node on a WalLog on disk, proposals of 16-byte
//! commands from 1 and from 64 concurrent clients, each proposal timed from
//! `propose` to its applied result. Beside it, in the same run, the raw
//! fsync ceiling: wal-db alone appending one small record and syncing, in a
//! loop (measured before and after the cluster runs, to show the drift).
//!
//! Prints a Markdown table (the one in `docs/BENCHMARKS.md`, "Network
//! runtime").
//!
//! Run: `cargo run --release --example net_bench --features net,persistence [-- SECONDS]`
//!
//! `SECONDS` per measurement (default 5). Logs go under `RAFT_IO_BENCH_DIR`
//! if set, else the system temp dir: it must be on the disk you mean to
//! measure (not tmpfs).

#[path = "support/loopback.rs"]
mod loopback;

use std::path::Path;
use std::time::{Duration, Instant};

use loopback::{Load, leader, propose_load, start_cluster};
use raft_io::log::WalOptions;
use wal_db::Wal;

const COMMAND: usize = 16;

/// wal-db alone: append a record the size of WalLog's record for one
/// 16-byte entry, sync, repeat.
fn raw_fsync(dir: &Path, run: Duration) -> Load {
    let _ = std::fs::remove_dir_all(dir);
    let wal = Wal::open_segmented(dir, 16 << 20).expect("open wal-db");
    let record = vec![0x5a; 7 + 3 + COMMAND];
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < run {
        let t = Instant::now();
        let _lsn = wal.append(&record).expect("append");
        wal.sync().expect("sync");
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
    latencies.sort_unstable();
    Load { latencies, elapsed }
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let run = Duration::from_secs(seconds);
    let base = loopback::bench_dir("raft-io-net-bench");
    std::fs::create_dir_all(&base).expect("bench dir");
    println!("logs under {} ({} s per measurement)\n", base.display(), seconds);

    let before = raw_fsync(&base.join("raw"), run);
    let handles = start_cluster(&base, WalOptions::new, |c| c);
    let leader = leader(&handles);
    // Warm up: connections established, the leader's no-op committed.
    let _ = propose_load(&leader, 8, Duration::from_millis(500));

    let mut rows = Vec::new();
    for clients in [1usize, 64] {
        let s0 = leader.stats();
        let sample = propose_load(&leader, clients, run);
        let s1 = leader.stats();
        let per_batch = (s1.proposals - s0.proposals) as f64 / (s1.batches - s0.batches).max(1) as f64;
        rows.push((clients, sample, per_batch));
    }
    for h in &handles {
        h.shutdown();
    }
    let after = raw_fsync(&base.join("raw"), run);
    let _ = std::fs::remove_dir_all(&base);

    println!("| measurement | ops/s | p50 | p99 | proposals per batch |");
    println!("|---|---|---|---|---|");
    println!(
        "| raw fsync ceiling (wal-db append+sync), before | {:.0} | {:.0} µs | {:.0} µs | — |",
        before.rate(),
        before.percentile_us(0.5),
        before.percentile_us(0.99)
    );
    for (clients, s, per_batch) in &rows {
        println!(
            "| 3 nodes, loopback TCP, WalLog, {clients} client(s) | {:.0} | {:.0} µs | {:.0} µs | {per_batch:.1} |",
            s.rate(),
            s.percentile_us(0.5),
            s.percentile_us(0.99)
        );
    }
    println!(
        "| raw fsync ceiling, after | {:.0} | {:.0} µs | {:.0} µs | — |",
        after.rate(),
        after.percentile_us(0.5),
        after.percentile_us(0.99)
    );
}
