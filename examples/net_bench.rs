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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError, StateMachine};
use raft_io::transport::{TcpConfig, TcpTransport};
use raft_io::{RaftConfig, RaftNode, WalLog};
use wal_db::Wal;

const IDS: [u64; 3] = [1, 2, 3];
const COMMAND: usize = 16;

/// Counts applied commands; returns the index (the cheapest useful apply).
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

struct Sample {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1e6
    }
}

fn base_dir() -> PathBuf {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("raft-io-net-bench-{}", std::process::id()))
}

/// wal-db alone: append a record the size of WalLog's record for one
/// 16-byte entry, sync, repeat.
fn raw_fsync(dir: &Path, run: Duration) -> Sample {
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
    Sample { ops: latencies.len(), elapsed, latencies }
}

fn start_cluster(base: &Path) -> Vec<RaftHandle<Counter>> {
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
            let log = WalLog::open(base.join(format!("node-{id}"))).expect("open log");
            let node = RaftNode::with_log(RaftConfig::new(id, IDS).seed(id), log).expect("node");
            Runtime::new(node, t, Counter::default()).start().expect("start")
        })
        .collect()
}

/// `clients` threads propose in a closed loop for `run`.
fn propose_load(leader: &RaftHandle<Counter>, clients: usize, run: Duration) -> Sample {
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
                        Err(RuntimeError::Busy) => std::thread::yield_now(),
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
    Sample { ops: latencies.len(), elapsed: started.elapsed(), latencies }
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let run = Duration::from_secs(seconds);
    let base = base_dir();
    std::fs::create_dir_all(&base).expect("bench dir");
    println!("logs under {} ({} s per measurement)\n", base.display(), seconds);

    let mut before = raw_fsync(&base.join("raw"), run);
    let handles = start_cluster(&base);
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(h) = handles.iter().find(|h| h.is_leader()) {
            break h.clone();
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(5));
    };
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
    let mut after = raw_fsync(&base.join("raw"), run);
    let _ = std::fs::remove_dir_all(&base);

    println!("| measurement | ops/s | p50 | p99 | proposals per batch |");
    println!("|---|---|---|---|---|");
    println!(
        "| raw fsync ceiling (wal-db append+sync), before | {:.0} | {:.0} µs | {:.0} µs | — |",
        before.rate(),
        before.pct(0.5),
        before.pct(0.99)
    );
    for (clients, s, per_batch) in &mut rows {
        println!(
            "| 3 nodes, loopback TCP, WalLog, {clients} client(s) | {:.0} | {:.0} µs | {:.0} µs | {per_batch:.1} |",
            s.rate(),
            s.pct(0.5),
            s.pct(0.99)
        );
    }
    println!(
        "| raw fsync ceiling, after | {:.0} | {:.0} µs | {:.0} µs | — |",
        after.rate(),
        after.pct(0.5),
        after.pct(0.99)
    );
}
