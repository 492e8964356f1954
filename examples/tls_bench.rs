//! What mutual TLS costs: two 3-node clusters on loopback TCP, each node on
//! a WalLog on disk, one plaintext and one with mutual TLS (certificates
//! made at run time), measured in the same run with 64 clients proposing
//! 16-byte commands in a closed loop. The measurements are interleaved
//! (plaintext, TLS, TLS, plaintext, ...) so that drift of the machine
//! (page cache, other load) falls on both alike; the table gives every
//! round, the medians, and TLS throughput as a share of plaintext (the
//! ratio of the medians, and the median of the per-round ratios).
//!
//! Run: `cargo run --release --example tls_bench --features net,persistence,tls [-- ROUNDS SECONDS]`
//!
//! Defaults: 6 rounds of 3 s per cluster. Logs go under `RAFT_IO_BENCH_DIR`
//! if set, else the system temp dir.

#[path = "common/tls_certs.rs"]
mod tls_certs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raft_io::runtime::{RaftHandle, Runtime};
use raft_io::transport::{TcpConfig, TcpHandle, TcpTransport};
use raft_io::{RaftConfig, RaftNode, WalLog};

const IDS: [u64; 3] = [1, 2, 3];
#[path = "support/loopback.rs"]
mod loopback;

use loopback::Counter;
use loopback::counter::await_leader;

const CLUSTER_ID: u64 = 0x746c73;
const CLIENTS: usize = 64;

struct Cluster {
    name: &'static str,
    handles: Vec<RaftHandle<Counter>>,
    tcp: Vec<TcpHandle>,
}

impl Cluster {
    fn start(name: &'static str, dir: &Path, certs: Option<&Path>) -> Result<Self, String> {
        let loopback: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "address")?;
        let mut transports = Vec::new();
        for id in IDS {
            let mut config = TcpConfig::new(id, loopback).cluster_id(CLUSTER_ID);
            if let Some(certs) = certs {
                config = config.tls(tls_certs::load(certs, id)?);
            }
            transports.push(TcpTransport::bind(config).map_err(|e| format!("bind: {e}"))?);
        }
        let addrs: Vec<SocketAddr> = transports.iter().map(TcpTransport::local_addr).collect();
        let mut handles = Vec::new();
        let mut tcp = Vec::new();
        for (i, t) in transports.into_iter().enumerate() {
            for (j, &peer) in IDS.iter().enumerate() {
                if j != i {
                    t.add_peer(peer, addrs[j]).map_err(|e| format!("add peer: {e}"))?;
                }
            }
            tcp.push(t.handle());
            let id = IDS[i];
            let log = WalLog::open(dir.join(format!("node-{id}"))).map_err(|e| format!("open log: {e}"))?;
            let node = RaftNode::with_log(RaftConfig::new(id, IDS).cluster_id(CLUSTER_ID).seed(id), log)
                .map_err(|e| format!("node: {e}"))?;
            handles.push(Runtime::new(node, t, Counter::default()).start().map_err(|e| format!("start: {e}"))?);
        }
        Ok(Self { name, handles, tcp })
    }

    fn leader(&self) -> Result<RaftHandle<Counter>, String> {
        await_leader(&self.handles, Duration::from_secs(30)).ok_or_else(|| format!("{}: no leader", self.name))
    }

    /// Proposals per second from `CLIENTS` clients in a closed loop.
    fn measure(&self, run: Duration) -> Result<f64, String> {
        let leader = self.leader()?;
        Ok(loopback::propose_load(&leader, CLIENTS, run).rate())
    }

    fn shutdown(self) {
        for h in self.handles {
            h.shutdown();
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn run(base: &Path, rounds: usize, seconds: Duration) -> Result<(), String> {
    let certs = base.join("tls");
    tls_certs::write_cluster_certs(&certs, CLUSTER_ID, &IDS)?;
    let plain = Cluster::start("plaintext", &base.join("plain"), None)?;
    let tls = Cluster::start("TLS", &base.join("tls-logs"), Some(&certs))?;
    // Warm up both: connections established, no-ops committed.
    plain.measure(Duration::from_millis(500))?;
    tls.measure(Duration::from_millis(500))?;

    let (mut p, mut t) = (Vec::new(), Vec::new());
    println!("| round | plaintext ops/s | TLS ops/s | TLS / plaintext |");
    println!("|---|---|---|---|");
    for round in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = plain.measure(seconds)?;
            (a, tls.measure(seconds)?)
        } else {
            let b = tls.measure(seconds)?;
            (plain.measure(seconds)?, b)
        };
        println!("| {} | {a:.0} | {b:.0} | {:.1}% |", round + 1, 100.0 * b / a);
        p.push(a);
        t.push(b);
    }
    let (mp, mt) = (median(&p), median(&t));
    let ratios: Vec<f64> = p.iter().zip(&t).map(|(a, b)| b / a).collect();
    println!("| **median** | **{mp:.0}** | **{mt:.0}** | **{:.1}%** |", 100.0 * mt / mp);
    println!("\nmedian of the per-round ratios: {:.1}%", 100.0 * median(&ratios));
    // Refusals at start-up are dials that reached a node before it was
    // told about its peers (unknown peer), retried after a backoff.
    for c in [&plain, &tls] {
        let refused: u64 = c.tcp.iter().map(|t| t.stats().handshake_refusals).sum();
        let connects: u64 = c.tcp.iter().map(|t| t.stats().connects).sum();
        println!("{} cluster: {connects} connections established, {refused} handshakes refused", c.name);
    }
    plain.shutdown();
    tls.shutdown();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(6).max(1);
    let seconds = Duration::from_secs_f64(args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0));
    let base: PathBuf = std::env::var_os("RAFT_IO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("raft-io-tls-bench-{}", std::process::id()));
    println!(
        "{CLIENTS} clients, 3 nodes per cluster, loopback TCP, WalLog under {}; {rounds} rounds of {:.1} s each\n",
        base.display(),
        seconds.as_secs_f64()
    );
    let result = run(&base, rounds, seconds);
    let _ = std::fs::remove_dir_all(&base);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
