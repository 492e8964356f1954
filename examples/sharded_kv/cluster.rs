//! Three `MultiRuntime` nodes on loopback TCP, each on its own `SharedWal`
//! directory: start, kill (no clean shutdown), restart from disk, find and
//! balance the groups' leaders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use raft_io::log::shared::SharedWal;
use raft_io::multi::{GroupId, HostConfig, plan_transfers};
use raft_io::runtime::multi::{MultiHandle, MultiRuntime};
use raft_io::transport::{TcpConfig, TcpGroupTransport, TcpHandle, TcpStats};
use raft_io::{NodeId, RaftConfig};

use crate::kv::Kv;

pub const IDS: [NodeId; 3] = [1, 2, 3];
const CLUSTER_ID: u64 = 16;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs `f` in a scratch directory named `name` (and the process id) under
/// `RAFT_IO_BENCH_DIR`, or the temp dir, and removes the directory after.
pub fn in_scratch_dir<T>(name: &str, f: impl FnOnce(&Path) -> Result<T, Error>) -> Result<T, Error> {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("{name}-{}", std::process::id()));
    let result = f(&base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

struct Node {
    handle: MultiHandle<Kv>,
    tcp: TcpHandle,
    addr: SocketAddr,
}

/// The nodes (`None` while killed), the groups' leaders as last seen, and
/// a generation bumped whenever a node goes or comes.
pub struct Cluster {
    pub groups: u64,
    /// Whether idle groups quiesce (the default; off for comparison).
    quiescence: bool,
    dirs: Vec<PathBuf>,
    nodes: RwLock<Vec<Option<Node>>>,
    generation: AtomicU64,
    /// Index in `IDS` of each group's leader as last seen (slot 0 unused).
    leaders: Vec<AtomicUsize>,
}

/// Node `id`'s configuration of `group`.
pub fn config(id: NodeId, group: GroupId) -> RaftConfig {
    RaftConfig::new(id, IDS).election_timeout(30, 60).heartbeat_interval(5).seed(group * 7 + id)
}

fn bind(id: NodeId) -> Result<TcpGroupTransport, Error> {
    Ok(TcpGroupTransport::bind(TcpConfig::new(id, "127.0.0.1:0".parse()?).cluster_id(CLUSTER_ID))?)
}

fn start(id: NodeId, dir: &Path, transport: TcpGroupTransport, groups: u64, quiescence: bool) -> Result<Node, Error> {
    let wal = SharedWal::open(dir)?;
    let (tcp, addr) = (transport.handle(), transport.local_addr());
    let host = HostConfig::new(id).peer_timeout(30).quiescence(quiescence);
    let mut runtime = MultiRuntime::new(host, wal, transport, |_| Kv::default());
    if let Some(ms) = std::env::var("SHARDED_TICK_MS").ok().and_then(|v| v.parse().ok()) {
        // A slower clock for runs under a profiler that slows every thread
        // (valgrind): elections and timeouts keep their proportion to the
        // work. Not for measuring time.
        runtime = runtime.tick_interval(std::time::Duration::from_millis(ms));
    }
    for g in 1..=groups {
        runtime = runtime.group(g, config(id, g));
    }
    Ok(Node { handle: runtime.start()?, tcp, addr })
}

impl Cluster {
    /// Starts the three nodes, each on `base/node-<id>` (emptied first);
    /// idle groups quiesce if `quiescence`.
    pub fn start(base: &Path, groups: u64, quiescence: bool) -> Result<Self, Error> {
        let dirs: Vec<PathBuf> = IDS.iter().map(|id| base.join(format!("node-{id}"))).collect();
        for dir in &dirs {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)?;
        }
        let transports = IDS.iter().map(|&id| bind(id)).collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = transports.iter().map(|t| t.local_addr()).collect();
        for (i, t) in transports.iter().enumerate() {
            for (j, &addr) in addrs.iter().enumerate() {
                if i != j {
                    t.add_peer(IDS[j], addr)?;
                }
            }
        }
        let mut nodes = Vec::new();
        for ((&id, t), dir) in IDS.iter().zip(transports).zip(&dirs) {
            nodes.push(Some(start(id, dir, t, groups, quiescence)?));
        }
        Ok(Self {
            groups,
            quiescence,
            dirs,
            nodes: RwLock::new(nodes),
            generation: AtomicU64::new(0),
            leaders: (0..=groups).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// Every live node's transport counters (`None`: killed).
    pub fn tcp_stats(&self) -> Vec<Option<TcpStats>> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.iter().map(|n| n.as_ref().map(|n| n.tcp.stats())).collect()
    }

    /// Bumped whenever a node is killed or restarted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Every node's handle (`None`: killed).
    pub fn handles(&self) -> Vec<Option<MultiHandle<Kv>>> {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.iter().map(|n| n.as_ref().map(|n| n.handle.clone())).collect()
    }

    /// The index in `IDS` of `group`'s leader as last seen.
    pub fn leader_hint(&self, group: GroupId) -> usize {
        self.leaders[group as usize].load(Relaxed)
    }

    /// Records that `node` (an id) leads `group`, as a hint told.
    pub fn set_leader(&self, group: GroupId, node: NodeId) {
        if let Some(i) = IDS.iter().position(|&id| id == node) {
            self.leaders[group as usize].store(i, Relaxed);
        }
    }

    /// Kills node `i`: its runtime stops as in a crash (no final flush).
    pub fn kill(&self, i: usize) {
        let node = self.nodes.write().unwrap_or_else(|e| e.into_inner())[i].take();
        self.generation.fetch_add(1, Relaxed);
        if let Some(node) = node {
            node.handle.kill();
        }
    }

    /// Restarts node `i` from its directory, on a new port the others learn.
    pub fn restart(&self, i: usize) -> Result<(), Error> {
        let transport = bind(IDS[i])?;
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        for (j, other) in nodes.iter().enumerate() {
            if let Some(other) = other {
                transport.add_peer(IDS[j], other.addr)?;
                other.tcp.add_peer(IDS[i], transport.local_addr())?;
            }
        }
        nodes[i] = Some(start(IDS[i], &self.dirs[i], transport, self.groups, self.quiescence)?);
        self.generation.fetch_add(1, Relaxed);
        Ok(())
    }

    /// The leader of every group once each has one its own leader agrees
    /// on (index in `IDS`); recorded as hints.
    pub fn wait_for_leaders(&self, timeout: Duration) -> Result<BTreeMap<GroupId, usize>, Error> {
        let deadline = Instant::now() + timeout;
        let handles = self.handles();
        let mut leaders = BTreeMap::new();
        for g in 1..=self.groups {
            loop {
                let seen = handles
                    .iter()
                    .flatten()
                    .find_map(|h| h.status(g).ok().filter(|s| s.leader == Some(s.id)).map(|s| s.id));
                if let Some(id) = seen {
                    self.set_leader(g, id);
                    leaders.insert(g, self.leader_hint(g));
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("group {g} has no leader after {timeout:?}").into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(leaders)
    }

    /// Moves leaderships until each node leads about a third of the groups
    /// (`plan_transfers`), with `workers` threads; returns the groups each
    /// node leads afterwards.
    pub fn balance(&self, workers: usize) -> Result<[usize; 3], Error> {
        let leaders = self.wait_for_leaders(Duration::from_secs(120))?;
        let plan: BTreeMap<GroupId, (NodeId, Vec<NodeId>)> =
            leaders.iter().map(|(&g, &i)| (g, (IDS[i], IDS.to_vec()))).collect();
        let moves = plan_transfers(&plan);
        let handles = self.handles();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers.max(1) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Relaxed);
                        let Some(&(group, from, to)) = moves.get(k) else { break };
                        let Some(Some(h)) = handles.get((from - 1) as usize) else { continue };
                        // A failed transfer only leaves the balance rougher.
                        let _ = h.transfer_leadership(group, to);
                    }
                });
            }
        });
        let leaders = self.wait_for_leaders(Duration::from_secs(120))?;
        let mut led = [0; 3];
        for &i in leaders.values() {
            led[i] += 1;
        }
        Ok(led)
    }

    /// Stops every live node cleanly.
    pub fn shutdown(&self) {
        for h in self.handles().into_iter().flatten() {
            h.shutdown();
        }
    }
}
