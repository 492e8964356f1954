//! Asynchronous storage writes against synchronous ones, side by side in one
//! run: 3 nodes on loopback TCP, each on a `WalLog` on the same disk (real
//! fdatasync), proposals of 16-byte commands from 1 and from 64 concurrent
//! clients, each timed from `propose` to its applied result.
//!
//! In the synchronous mode a leader's appends leave only after its own
//! fsync; in the asynchronous mode (`RaftConfig::async_storage`) they leave
//! at once and the leader's fsync runs on `WalLog`'s sync thread while the
//! followers write theirs (docs/PROTOCOL.md §5.1).
//!
//! The modes alternate, round after round (the order flips every round),
//! on fresh logs, and the medians of the rounds are compared. The last
//! line has the form
//! `async/sync: 1-client throughput 1.62x, p50 latency 0.58x, 64-client throughput 1.25x`.
//!
//! Run: `cargo run --release --example async_storage --features net,persistence [-- SECONDS [ROUNDS]]`
//! (default 2 s per measurement, 3 rounds). Logs go under
//! `RAFT_IO_BENCH_DIR` if set, else the system temp dir: it must be on the
//! disk you mean to measure (not tmpfs).

#[path = "support/loopback.rs"]
mod loopback;

use std::path::Path;
use std::time::Duration;

use loopback::{leader, median, propose_load, start_cluster};
use raft_io::log::WalOptions;
use raft_io::runtime::RaftHandle;

/// One measurement: throughput and latency percentiles.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    fsyncs_per_op: f64,
}

/// The storage modes compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sync,
    /// `WalLog`'s sync thread reports completions.
    AsyncThread,
    /// The driver reports each turn's writes; `WalLog` syncs them then.
    AsyncDeferred,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::AsyncThread => "async, sync thread",
            Mode::AsyncDeferred => "async, deferred syncs",
        }
    }
}

/// `clients` clients for `run`, with the fsyncs the three nodes made.
fn measure(handles: &[RaftHandle<loopback::Counter>], clients: usize, run: Duration) -> Sample {
    let syncs = |hs: &[RaftHandle<loopback::Counter>]| {
        hs.iter().map(|h| h.metrics().ok().and_then(|m| m.log_fsyncs).unwrap_or(0)).sum::<u64>()
    };
    let before = syncs(handles);
    let load = propose_load(&leader(handles), clients, run);
    let fsyncs = syncs(handles) - before;
    Sample {
        rate: load.rate(),
        p50_us: load.percentile_us(0.5),
        p99_us: load.percentile_us(0.99),
        fsyncs_per_op: fsyncs as f64 / load.latencies.len().max(1) as f64,
    }
}

/// One round of one mode: a fresh cluster, 1 client, then 64.
fn round(base: &Path, mode: Mode, run: Duration, k: usize) -> (Sample, Sample) {
    let dir = base.join(format!("{mode:?}-{k}"));
    let handles = start_cluster(
        &dir,
        || WalOptions::new().sync_thread(mode == Mode::AsyncThread),
        |c| c.async_storage(mode != Mode::Sync),
    );
    // Warm up: connections established, the leader's no-op committed.
    let _ = measure(&handles, 8, Duration::from_millis(300));
    let one = measure(&handles, 1, run);
    let many = measure(&handles, 64, run);
    for h in &handles {
        h.shutdown();
    }
    let _ = std::fs::remove_dir_all(&dir);
    (one, many)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let run = Duration::from_secs_f64(seconds);
    let base = loopback::bench_dir("raft-io-async-storage");
    std::fs::create_dir_all(&base).expect("bench dir");
    println!("logs under {} ({seconds} s per measurement, {rounds} rounds, modes interleaved)", base.display());

    let modes = [Mode::Sync, Mode::AsyncThread, Mode::AsyncDeferred];
    let mut runs: Vec<Vec<(Sample, Sample)>> = vec![Vec::new(); modes.len()];
    for k in 0..rounds {
        for j in 0..modes.len() {
            let m = (j + k) % modes.len();
            runs[m].push(round(&base, modes[m], run, k));
        }
    }
    let _ = std::fs::remove_dir_all(&base);

    let med = |runs: &[(Sample, Sample)], f: &dyn Fn(&(Sample, Sample)) -> f64| median(runs.iter().map(f).collect());
    println!();
    println!("| mode | clients | writes/s | p50 | p99 | fsyncs per write (3 nodes) |");
    println!("|---|---|---|---|---|---|");
    for (m, runs) in modes.iter().zip(&runs) {
        let name = m.name();
        for (clients, pick) in [(1, 0usize), (64, 1)] {
            let s = |r: &(Sample, Sample)| if pick == 0 { r.0 } else { r.1 };
            println!(
                "| {name} | {clients} | {:.0} | {:.0} µs | {:.0} µs | {:.2} |",
                med(runs, &|r| s(r).rate),
                med(runs, &|r| s(r).p50_us),
                med(runs, &|r| s(r).p99_us),
                med(runs, &|r| s(r).fsyncs_per_op),
            );
        }
    }
    let ratio = |a: &[(Sample, Sample)], f: &dyn Fn(&(Sample, Sample)) -> f64| {
        med(a, f) / med(&runs[0], f).max(f64::MIN_POSITIVE)
    };
    println!();
    for (m, r) in modes.iter().zip(&runs).skip(1) {
        println!(
            "{}: 1-client throughput {:.2}x, p50 latency {:.2}x, 64-client throughput {:.2}x",
            m.name(),
            ratio(r, &|r| r.0.rate),
            ratio(r, &|r| r.0.p50_us),
            ratio(r, &|r| r.1.rate),
        );
    }
    // The runtime's default engine with `WalLog` (deferred syncs) last.
    let r = &runs[2];
    println!(
        "async/sync: 1-client throughput {:.2}x, p50 latency {:.2}x, 64-client throughput {:.2}x",
        ratio(r, &|r| r.0.rate),
        ratio(r, &|r| r.0.p50_us),
        ratio(r, &|r| r.1.rate),
    );
}
