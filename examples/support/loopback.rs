//! What the TCP benchmark examples share (`net_bench`, `async_storage`,
//! `tls_bench`): a counting state machine, a 3-node cluster on loopback TCP
//! with `WalLog`s, a closed-loop client load, percentiles.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use raft_io::bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError};
use raft_io::transport::{TcpConfig, TcpTransport};
use raft_io::{RaftConfig, RaftNode, WalLog};

/// The node ids of the cluster.
pub const IDS: [u64; 3] = [1, 2, 3];

#[path = "counter.rs"]
pub mod counter;
pub use counter::Counter;

/// `<RAFT_IO_BENCH_DIR or the temp dir>/<name>-<pid>`: logs must be on the
/// disk to measure (not tmpfs).
pub fn bench_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("{name}-{}", std::process::id()))
}

/// Three nodes on loopback TCP, each on a `WalLog` under `dir` opened with
/// `options`, their configurations adjusted by `configure`.
pub fn start_cluster(
    dir: &Path,
    options: impl Fn() -> WalOptions,
    configure: impl Fn(RaftConfig) -> RaftConfig,
) -> Vec<RaftHandle<Counter>> {
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
            let log = WalLog::open_with(dir.join(format!("node-{id}")), options()).expect("open log");
            let node = RaftNode::with_log(configure(RaftConfig::new(id, IDS).seed(id)), log).expect("node");
            Runtime::new(node, t, Counter::default()).start().expect("start")
        })
        .collect()
}

/// The node that leads, waiting up to 30 s.
pub fn leader(handles: &[RaftHandle<Counter>]) -> RaftHandle<Counter> {
    counter::await_leader(handles, Duration::from_secs(30)).expect("no leader")
}

/// What a closed-loop load measured: each proposal's latency, and the
/// wall time.
pub struct Load {
    /// Latencies of the proposals that succeeded, sorted.
    pub latencies: Vec<Duration>,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl Load {
    /// Proposals per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0..=1) of the latencies, in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1e6
    }
}

/// `clients` threads propose 16-byte commands to `leader` in a closed loop
/// for `run`. A retryable refusal (a leader change on a loaded machine) is
/// retried; any other error ends the program.
pub fn propose_load(leader: &RaftHandle<Counter>, clients: usize, run: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (h, stop) = (leader.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let command = Bytes::from(vec![c as u8; 16]);
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match h.propose(command.clone()) {
                        Ok(_) => lat.push(t.elapsed()),
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
    latencies.sort_unstable();
    Load { latencies, elapsed: started.elapsed() }
}

/// The median of `values` (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() { 0.0 } else { values[values.len() / 2] }
}
