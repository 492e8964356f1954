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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError, StateMachine};
use raft_io::transport::{TcpConfig, TcpTransport};
use raft_io::{RaftConfig, RaftNode, WalLog};

const IDS: [u64; 3] = [1, 2, 3];
const COMMAND: usize = 16;

/// Counts applied commands; returns the index.
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Output = u64;
    fn apply(&mut self, index: u64, _command: &Bytes) -> u64 {
        self.0 += 1;
        index
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_be_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
    }
}

/// One measurement: throughput and latency percentiles.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    fsyncs_per_op: f64,
}

fn base_dir() -> PathBuf {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("raft-io-async-storage-{}", std::process::id()))
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

fn start_cluster(dir: &Path, mode: Mode) -> Vec<RaftHandle<Counter>> {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let transports: Vec<TcpTransport> =
        IDS.iter().map(|&id| TcpTransport::bind(TcpConfig::new(id, loopback)).expect("bind")).collect();
    let addrs: Vec<SocketAddr> = transports.iter().map(TcpTransport::local_addr).collect();
    transports
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            for (j, &peer) in IDS.iter().enumerate() {
                if j != i {
                    t.add_peer(peer, addrs[j]).expect("add peer");
                }
            }
            let id = IDS[i];
            let options = WalOptions::new().sync_thread(mode == Mode::AsyncThread);
            let log = WalLog::open_with(dir.join(format!("node-{id}")), options).expect("open log");
            let config = RaftConfig::new(id, IDS).seed(id).async_storage(mode != Mode::Sync);
            let node = RaftNode::with_log(config, log).expect("node");
            Runtime::new(node, t, Counter::default()).start().expect("start")
        })
        .collect()
}

/// `clients` threads propose in a closed loop for `run`.
fn propose_load(
    handles: &[RaftHandle<Counter>],
    leader: &RaftHandle<Counter>,
    clients: usize,
    run: Duration,
) -> Sample {
    let syncs = |hs: &[RaftHandle<Counter>]| {
        hs.iter().map(|h| h.metrics().ok().and_then(|m| m.log_fsyncs).unwrap_or(0)).sum::<u64>()
    };
    let syncs_before = syncs(handles);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (h, stop) = (leader.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let command = Bytes::from(vec![c as u8; COMMAND]);
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match h.propose(command.clone()) {
                        Ok(_) => lat.push(t.elapsed()),
                        // A loaded machine may see a leader change: the
                        // load measures the leader it started with.
                        Err(RuntimeError::Busy) => std::thread::yield_now(),
                        Err(e) if e.is_retryable() => std::thread::sleep(Duration::from_millis(1)),
                        Err(e) => panic!("propose failed: {e}"),
                    }
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.join().expect("client"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
    };
    let fsyncs = syncs(handles) - syncs_before;
    Sample {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        fsyncs_per_op: fsyncs as f64 / latencies.len().max(1) as f64,
    }
}

/// One round of one mode: a fresh cluster, 1 client, then 64.
fn round(base: &Path, mode: Mode, run: Duration, k: usize) -> (Sample, Sample) {
    let dir = base.join(format!("{mode:?}-{k}"));
    let handles = start_cluster(&dir, mode);
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(h) = handles.iter().find(|h| h.is_leader()) {
            break h.clone();
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(5));
    };
    // Warm up: connections established, the leader's no-op committed.
    let _ = propose_load(&handles, &leader, 8, Duration::from_millis(300));
    let one = propose_load(&handles, &leader, 1, run);
    let many = propose_load(&handles, &leader, 64, run);
    for h in &handles {
        h.shutdown();
    }
    let _ = std::fs::remove_dir_all(&dir);
    (one, many)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let run = Duration::from_secs_f64(seconds);
    let base = base_dir();
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
