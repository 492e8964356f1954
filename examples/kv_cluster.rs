//! A replicated key-value store on three nodes over real TCP on loopback,
//! each with its log on disk (WalLog in a temp dir), each driven by the
//! threaded runtime.
//!
//! It writes and reads keys through the handles, stops the leader, shows a
//! new leader elected and writes continuing, restarts the stopped node from
//! its log, shows it catch up, checks that every acknowledged write is on
//! every node, and prints a summary with throughput and latency.
//!
//! Run: `cargo run --release --example kv_cluster --features net,persistence`
//!
//! With `-- --tls` (and feature `tls`) every connection runs over mutually
//! authenticated TLS: the example makes a CA and one certificate per node
//! (rcgen), writes them as PEM files beside the logs, and loads them with
//! `TlsConfig::from_pem_files`:
//! `cargo run --release --example kv_cluster --features net,persistence,tls -- --tls`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError, StateMachine};
use raft_io::transport::{TcpConfig, TcpHandle, TcpTransport};
use raft_io::{NodeId, RaftConfig, RaftNode, WalLog};

#[cfg(feature = "tls")]
#[path = "common/tls_certs.rs"]
mod tls_certs;

const CLUSTER_ID: u64 = 0x6b765f636c757374;
const IDS: [NodeId; 3] = [1, 2, 3];
const CLIENTS: usize = 16;
const WRITES_PER_PHASE: usize = 2000;

/// The application: a map from keys to values. A command is `key=value`;
/// applying it returns the value it replaced.
#[derive(Default)]
struct KvStore {
    map: BTreeMap<String, String>,
}

impl StateMachine for KvStore {
    type Output = Option<String>;

    fn apply(&mut self, _index: u64, command: &Bytes) -> Option<String> {
        let text = String::from_utf8_lossy(command);
        let (key, value) = text.split_once('=')?;
        self.map.insert(key.to_owned(), value.to_owned())
    }

    fn snapshot(&self) -> Bytes {
        self.map.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>().into()
    }

    fn restore(&mut self, data: &Bytes) {
        self.map = String::from_utf8_lossy(data)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
    }
}

/// One node: where it listens, where its log lives, its handle while up.
struct Node {
    id: NodeId,
    addr: SocketAddr,
    dir: PathBuf,
    handle: Option<RaftHandle<KvStore>>,
    /// Counters of its latest transport.
    tcp: Option<TcpHandle>,
}

/// The transport configuration of node `id`: plaintext, or TLS with the
/// certificates under `certs`.
fn transport_config(id: NodeId, addr: SocketAddr, certs: Option<&Path>) -> Result<TcpConfig, String> {
    let config = TcpConfig::new(id, addr).cluster_id(CLUSTER_ID);
    match certs {
        None => Ok(config),
        #[cfg(feature = "tls")]
        Some(dir) => Ok(config.tls(tls_certs::load(dir, id)?)),
        #[cfg(not(feature = "tls"))]
        Some(_) => Err("--tls needs feature tls".into()),
    }
}

fn start(
    node: &mut Node,
    listener: Option<TcpTransport>,
    peers: &[(NodeId, SocketAddr)],
    certs: Option<&Path>,
) -> Result<(), String> {
    let transport = match listener {
        Some(t) => t,
        None => TcpTransport::bind(transport_config(node.id, node.addr, certs)?)
            .map_err(|e| format!("bind {}: {e}", node.addr))?,
    };
    for &(id, addr) in peers.iter().filter(|(id, _)| *id != node.id) {
        transport.add_peer(id, addr).map_err(|e| format!("add peer {id}: {e}"))?;
    }
    node.tcp = Some(transport.handle());
    let log = WalLog::open(&node.dir).map_err(|e| format!("open log: {e}"))?;
    let config = RaftConfig::new(node.id, IDS).cluster_id(CLUSTER_ID).seed(node.id);
    let raft = RaftNode::with_log(config, log).map_err(|e| format!("recover node: {e}"))?;
    let handle = Runtime::new(raft, transport, KvStore::default())
        .tick_interval(Duration::from_millis(10))
        .start()
        .map_err(|e| format!("start runtime: {e}"))?;
    node.handle = Some(handle);
    Ok(())
}

/// Routes a write to the leader, following redirects, and sends it again
/// only when it is known not to have been appended. `Err` when its outcome
/// is unknown, or after a minute.
///
/// `NotLeader`, `Busy` and `ShuttingDown` mean the command was not
/// appended: sending it again, to the leader named or to another node,
/// cannot apply it twice. An error whose `outcome_unknown()` (leadership
/// lost while the write was pending, a timeout) means it was appended and
/// may still commit: sent again, it could apply twice, which for a command
/// that is not idempotent (an increment, an append) is a wrong result. So
/// it is returned, and the caller reports it and does not count the write
/// as acknowledged; an application that must know re-reads the key (a
/// linearizable read) once a new leader is in place, or makes its
/// commands idempotent, before deciding to write again.
fn put(nodes: &[RaftHandle<KvStore>], key: &str, value: &str) -> Result<Duration, RuntimeError> {
    let command = format!("{key}={value}");
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut at = 0;
    loop {
        let started = Instant::now();
        match nodes[at].propose(command.clone()) {
            Ok(_) => return Ok(started.elapsed()),
            Err(e) if e.outcome_unknown() => return Err(e),
            Err(RuntimeError::NotLeader { leader, .. }) if Instant::now() < give_up => {
                match leader.and_then(|l| nodes.iter().position(|h| h.id() == l)) {
                    Some(i) => at = i,
                    // No leader known, or one this client has no handle on
                    // (a node stopped, not yet known to be gone): the next.
                    None => {
                        at = (at + 1) % nodes.len();
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            Err(RuntimeError::ShuttingDown) | Err(RuntimeError::Busy) if Instant::now() < give_up => {
                at = (at + 1) % nodes.len();
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a write phase did.
struct Phase {
    /// The latencies of the acknowledged writes.
    latencies: Vec<Duration>,
    /// The keys acknowledged, with their values.
    acked: Vec<(String, String)>,
    /// Writes whose outcome is unknown: neither counted nor sent again.
    unknown: usize,
    elapsed: Duration,
}

/// Writes `count` keys from `CLIENTS` threads.
fn write_phase(nodes: &[RaftHandle<KvStore>], phase: &str, count: usize) -> Phase {
    let nodes = Arc::new(nodes.to_vec());
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let nodes = Arc::clone(&nodes);
            let phase = phase.to_owned();
            std::thread::spawn(move || {
                let (mut lat, mut acked, mut unknown) = (Vec::new(), Vec::new(), 0);
                for i in (c..count).step_by(CLIENTS) {
                    let (k, v) = (format!("{phase}-{i:05}"), format!("value-{i}"));
                    match put(&nodes, &k, &v) {
                        Ok(d) => {
                            lat.push(d);
                            acked.push((k, v));
                        }
                        Err(e) if e.outcome_unknown() => unknown += 1,
                        Err(_) => {}
                    }
                }
                (lat, acked, unknown)
            })
        })
        .collect();
    let mut out = Phase { latencies: Vec::new(), acked: Vec::new(), unknown: 0, elapsed: Duration::ZERO };
    for w in workers {
        if let Ok((l, a, u)) = w.join() {
            out.latencies.extend(l);
            out.acked.extend(a);
            out.unknown += u;
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// `, n with an unknown outcome (...)` when there were any.
fn unknown_note(unknown: usize) -> String {
    match unknown {
        0 => String::new(),
        n => format!(", {n} with an unknown outcome (leadership changed or a timeout: not counted, not sent again)"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> Result<(T, Duration), String> {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok((v, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("gave up waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn leader_of(handles: &[RaftHandle<KvStore>]) -> Option<NodeId> {
    handles.iter().find(|h| h.is_leader()).map(|h| h.id())
}

fn up(nodes: &[Node]) -> Vec<RaftHandle<KvStore>> {
    nodes.iter().filter_map(|n| n.handle.clone()).collect()
}

fn run(base: &Path, tls: bool) -> Result<(), String> {
    let certs = tls.then(|| base.join("tls"));
    let certs = certs.as_deref();
    #[cfg(feature = "tls")]
    if let Some(dir) = certs {
        tls_certs::write_cluster_certs(dir, CLUSTER_ID, &IDS)?;
        println!("mutual TLS: CA and node certificates in {}", dir.display());
    }
    // Bind every listener on an OS-chosen port first, so each node knows
    // the others' addresses before it starts.
    let loopback: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "address")?;
    let mut listeners = Vec::new();
    let mut nodes = Vec::new();
    for id in IDS {
        let t = TcpTransport::bind(transport_config(id, loopback, certs)?).map_err(|e| e.to_string())?;
        nodes.push(Node { id, addr: t.local_addr(), dir: base.join(format!("node-{id}")), handle: None, tcp: None });
        listeners.push(t);
    }
    let peers: Vec<(NodeId, SocketAddr)> = nodes.iter().map(|n| (n.id, n.addr)).collect();
    for (node, t) in nodes.iter_mut().zip(listeners) {
        start(node, Some(t), &peers, certs)?;
        println!("node {} listening on {}, log in {}", node.id, node.addr, node.dir.display());
    }

    let (leader, took) = wait_for("a leader", || leader_of(&up(&nodes)))?;
    println!("\nnode {leader} elected leader after {} ms", took.as_millis());

    // Phase 1: writes from 16 client threads; reads through every node.
    let p1 = write_phase(&up(&nodes), "a", WRITES_PER_PHASE);
    let (mut latencies, mut acked, t1) = (p1.latencies, p1.acked, p1.elapsed);
    println!("phase 1: {} writes acknowledged in {} ms{}", acked.len(), t1.as_millis(), unknown_note(p1.unknown));
    for h in up(&nodes) {
        let v = h.read(|kv: &KvStore| kv.map.get("a-00042").cloned()).map_err(|e| e.to_string())?;
        println!("  read a-00042 through node {}: {v:?}", h.id());
    }

    // Stop the leader.
    let stopped = nodes.iter().position(|n| n.id == leader).ok_or("leader")?;
    println!("\nstopping node {leader} (the leader)");
    if let Some(h) = nodes[stopped].handle.take() {
        h.shutdown();
    }
    let (new_leader, took) = wait_for("a new leader", || leader_of(&up(&nodes)))?;
    println!("node {new_leader} elected leader {} ms after the stop", took.as_millis());

    // Phase 2: writes continue on the two remaining nodes.
    let p2 = write_phase(&up(&nodes), "b", WRITES_PER_PHASE);
    let t2 = p2.elapsed;
    println!(
        "phase 2: {} writes acknowledged in {} ms with node {leader} down{}",
        p2.acked.len(),
        t2.as_millis(),
        unknown_note(p2.unknown)
    );
    latencies.extend(p2.latencies);
    acked.extend(p2.acked);

    // Restart the stopped node from its log; it catches up.
    println!("\nrestarting node {leader} from its log");
    start(&mut nodes[stopped], None, &peers, certs)?;
    let restarted = nodes[stopped].handle.clone().ok_or("restarted")?;
    let leader_handle = up(&nodes).into_iter().find(|h| h.id() == new_leader).ok_or("leader handle")?;
    let target = leader_handle.progress().commit;
    let (_, took) =
        wait_for("the restarted node to catch up", || (restarted.progress().applied >= target).then_some(()))?;
    println!("node {leader} applied through index {target} {} ms after its restart", took.as_millis());
    let v = restarted.read(|kv: &KvStore| kv.map.get("b-01999").cloned()).map_err(|e| e.to_string())?;
    println!("  read b-01999 through node {leader}: {v:?}");

    // Every acknowledged write is on every node (linearizable reads).
    let acked_map: BTreeMap<String, String> = acked.iter().cloned().collect();
    for h in up(&nodes) {
        let expected = acked_map.clone();
        let missing = h
            .read(move |kv: &KvStore| expected.iter().filter(|(k, v)| kv.map.get(*k) != Some(*v)).count())
            .map_err(|e| e.to_string())?;
        if missing != 0 {
            return Err(format!("node {} is missing {missing} acknowledged writes", h.id()));
        }
    }

    latencies.sort();
    let total = t1 + t2;
    let stats = leader_handle.stats();
    println!("\nsummary");
    println!("  acknowledged writes  {} (all present on all 3 nodes)", acked.len());
    println!(
        "  throughput           {:.0} writes/s ({CLIENTS} clients, 3 nodes, fsync per batch)",
        acked.len() as f64 / total.as_secs_f64()
    );
    println!(
        "  latency              p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3
    );
    if stats.batches > 0 {
        println!(
            "  group commit         {:.1} proposals per batch on node {new_leader} (largest {})",
            stats.proposals as f64 / stats.batches as f64,
            stats.max_batch
        );
    }
    for n in &nodes {
        if let Some(t) = n.tcp.as_ref().map(TcpHandle::stats) {
            println!(
                "  node {} transport     {} msgs sent, {} received, {} reconnects, {} dropped (queue full {}, peer unreachable {}), {} handshakes refused",
                n.id,
                t.messages_sent,
                t.messages_received,
                t.reconnects,
                t.dropped_queue_full + t.dropped_unreachable,
                t.dropped_queue_full,
                t.dropped_unreachable,
                t.handshake_refusals
            );
        }
    }
    for h in up(&nodes) {
        h.shutdown();
    }
    Ok(())
}

fn main() -> ExitCode {
    let base = std::env::temp_dir().join(format!("raft-io-kv-cluster-{}", std::process::id()));
    let tls = std::env::args().skip(1).any(|a| a == "--tls");
    let result = run(&base, tls);
    let _ = std::fs::remove_dir_all(&base);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv_cluster failed: {e}");
            ExitCode::FAILURE
        }
    }
}
