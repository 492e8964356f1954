//! A replicated key-value store over real loopback sockets, with WalLog on
//! disk: the harness of the `net_*` tests.
#![allow(dead_code)]

#[path = "../support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError, StateMachine};
use raft_io::transport::{TcpConfig, TcpHandle, TcpTransport};
use raft_io::{NodeId, RaftConfig, RaftNode, WalLog};

pub use loopback::{loopback, wait_until};

pub const CLUSTER: u64 = 0x6b76;

/// `key=value` commands; apply returns the previous value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pub map: BTreeMap<String, String>,
    pub applied: u64,
}

impl StateMachine for Kv {
    type Output = Option<String>;

    fn apply(&mut self, index: u64, command: &Bytes) -> Option<String> {
        self.applied = index;
        let text = String::from_utf8_lossy(command);
        let (k, v) = text.split_once('=')?;
        self.map.insert(k.to_string(), v.to_string())
    }

    fn snapshot(&self) -> Bytes {
        let mut out = String::new();
        for (k, v) in &self.map {
            out.push_str(&format!("{k}={v}\n"));
        }
        out.into()
    }

    fn restore(&mut self, data: &Bytes) {
        self.map.clear();
        for line in String::from_utf8_lossy(data).lines() {
            if let Some((k, v)) = line.split_once('=') {
                self.map.insert(k.to_string(), v.to_string());
            }
        }
    }
}

pub struct Node {
    pub handle: RaftHandle<Kv>,
    pub tcp: TcpHandle,
}

/// A cluster of nodes 1..=n on loopback, each with a WalLog in a temp dir.
pub struct Cluster {
    pub ids: Vec<NodeId>,
    pub dirs: Vec<tempfile::TempDir>,
    pub addrs: Vec<SocketAddr>,
    pub nodes: Vec<Option<Node>>,
    pub tcp_config: fn(TcpConfig) -> TcpConfig,
    pub raft_config: fn(RaftConfig) -> RaftConfig,
}

impl Cluster {
    pub fn start(n: u64) -> Self {
        Self::start_with(n, |c| c)
    }

    pub fn start_with(n: u64, tcp_config: fn(TcpConfig) -> TcpConfig) -> Self {
        Self::start_configured(n, tcp_config, |c| c)
    }

    pub fn start_configured(
        n: u64,
        tcp_config: fn(TcpConfig) -> TcpConfig,
        raft_config: fn(RaftConfig) -> RaftConfig,
    ) -> Self {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut c = Cluster {
            dirs: ids.iter().map(|_| tempfile::tempdir().unwrap()).collect(),
            addrs: Vec::new(),
            nodes: ids.iter().map(|_| None).collect(),
            ids,
            tcp_config,
            raft_config,
        };
        // Bind every listener first (port 0), then tell each node the others.
        let transports: Vec<TcpTransport> = c
            .ids
            .iter()
            .map(|&id| TcpTransport::bind(tcp_config(TcpConfig::new(id, loopback()).cluster_id(CLUSTER))).unwrap())
            .collect();
        c.addrs = transports.iter().map(TcpTransport::local_addr).collect();
        for (i, t) in transports.into_iter().enumerate() {
            c.launch(i, t);
        }
        c
    }

    /// A cluster of nodes 1..=n on transports bound by the caller (node
    /// `i + 1` on `transports[i]`, with the cluster id [`CLUSTER`]), for
    /// configurations a `fn` cannot make (TLS material). `restart` rebinds
    /// without them.
    pub fn from_transports(transports: Vec<TcpTransport>) -> Self {
        let ids: Vec<NodeId> = (1..=transports.len() as u64).collect();
        let mut c = Cluster {
            dirs: ids.iter().map(|_| tempfile::tempdir().unwrap()).collect(),
            addrs: transports.iter().map(TcpTransport::local_addr).collect(),
            nodes: ids.iter().map(|_| None).collect(),
            ids,
            tcp_config: |c| c,
            raft_config: |c| c,
        };
        for (i, t) in transports.into_iter().enumerate() {
            c.launch(i, t);
        }
        c
    }

    fn launch(&mut self, i: usize, transport: TcpTransport) {
        for (j, &peer) in self.ids.iter().enumerate() {
            if j != i {
                transport.add_peer(peer, self.addrs[j]).unwrap();
            }
        }
        let id = self.ids[i];
        // Elections after 200-400 ms of silence (5 ms ticks): a leader
        // change needs a real failure, not a slow fsync on a loaded CI
        // machine, so a healthy cluster acknowledges every write.
        let base = RaftConfig::new(id, self.ids.clone()).cluster_id(CLUSTER).seed(id).election_timeout(40, 80);
        let config = (self.raft_config)(base);
        let log = WalLog::open(self.dirs[i].path()).unwrap();
        let node = RaftNode::with_log(config, log).unwrap();
        let tcp = transport.handle();
        let handle =
            Runtime::new(node, transport, Kv::default()).tick_interval(Duration::from_millis(5)).start().unwrap();
        self.nodes[i] = Some(Node { handle, tcp });
    }

    /// Restarts a stopped node on its old port, from its log on disk.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none());
        let id = self.ids[i];
        let config = (self.tcp_config)(TcpConfig::new(id, self.addrs[i]).cluster_id(CLUSTER));
        let transport = TcpTransport::bind(config).unwrap();
        self.launch(i, transport);
    }

    pub fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.handle.shutdown();
        }
    }

    pub fn handle(&self, i: usize) -> &RaftHandle<Kv> {
        &self.nodes[i].as_ref().expect("node is running").handle
    }

    pub fn running(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// The position of the node every running node agrees leads.
    pub fn wait_for_leader(&self) -> usize {
        let mut leader = 0;
        wait_until("a leader every running node knows", || {
            let leaders: Vec<Option<NodeId>> = self.running().map(|(_, n)| n.handle.leader()).collect();
            match leaders.first() {
                Some(Some(l)) if leaders.iter().all(|x| x == &Some(*l)) => {
                    match self.ids.iter().position(|id| id == l) {
                        Some(i) if self.nodes[i].as_ref().is_some_and(|n| n.handle.is_leader()) => {
                            leader = i;
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            }
        });
        leader
    }

    /// Writes through whichever node leads, following redirects and retrying
    /// errors whose outcome is known to be "not appended". Returns once
    /// acknowledged (`Ok`) or once the outcome is unknown (`Err`).
    pub fn put(&self, key: &str, value: &str) -> Result<Option<String>, RuntimeError> {
        let command = format!("{key}={value}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut at = self.running().next().map(|(i, _)| i).unwrap();
        loop {
            assert!(Instant::now() < deadline, "could not write {key}");
            let result = match &self.nodes[at] {
                Some(n) => n.handle.propose(command.clone()),
                None => Err(RuntimeError::NotLeader { leader: None, leader_addr: None }),
            };
            match result {
                Err(e @ (RuntimeError::NotLeader { .. } | RuntimeError::ShuttingDown)) => {
                    let leader = match e {
                        RuntimeError::NotLeader { leader, .. } => leader,
                        _ => None,
                    };
                    at = leader
                        .and_then(|l| self.ids.iter().position(|&id| id == l))
                        .filter(|&i| self.nodes[i].is_some())
                        .unwrap_or_else(|| (at + 1) % self.ids.len());
                    if leader.is_none() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Err(RuntimeError::Busy) => std::thread::sleep(Duration::from_millis(5)),
                other => return other,
            }
        }
    }

    /// The state machine of node `i`, read linearizably through it.
    pub fn read_all(&self, i: usize) -> Result<Kv, RuntimeError> {
        self.handle(i).read(|kv: &Kv| kv.clone())
    }

    pub fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}
