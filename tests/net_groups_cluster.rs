//! Three `MultiNode` hosts of 30 groups each over `TcpGroupTransport` on
//! loopback, driven by one polling loop: every group elects a leader and
//! commits a write on every replica, and each host dials exactly one
//! connection per peer, whatever the number of groups.
#![cfg(feature = "net")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::multi::{GroupId, HostAction, HostConfig, MultiNode};
use raft_io::transport::{TcpConfig, TcpGroupTransport};
use raft_io::{Action, Event, MemoryLog, NodeId, RaftConfig};

const IDS: [NodeId; 3] = [1, 2, 3];
const GROUPS: GroupId = 30;
const CLUSTER: u64 = 0x6d67;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn command(group: GroupId) -> Bytes {
    Bytes::from(format!("write of group {group}"))
}

struct Host {
    node: MultiNode<MemoryLog>,
    net: TcpGroupTransport,
}

#[test]
fn thirty_groups_on_three_hosts_elect_and_commit_over_one_connection_per_peer() {
    let mut hosts: BTreeMap<NodeId, Host> = BTreeMap::new();
    for id in IDS {
        let mut node = MultiNode::new(HostConfig::new(id).ping_interval(3).peer_timeout(30));
        for g in 1..=GROUPS {
            let cfg = RaftConfig::new(id, IDS).election_timeout(10, 20).heartbeat_interval(3).seed(g * 31 + id);
            node.create_group(g, cfg, MemoryLog::new()).unwrap();
        }
        let net = TcpGroupTransport::bind(TcpConfig::new(id, loopback()).cluster_id(CLUSTER)).unwrap();
        hosts.insert(id, Host { node, net });
    }
    let addrs: BTreeMap<NodeId, SocketAddr> = hosts.iter().map(|(&id, h)| (id, h.net.local_addr())).collect();
    for (id, host) in &hosts {
        for (&peer, &addr) in &addrs {
            if peer != *id {
                host.net.add_peer(peer, addr).unwrap();
            }
        }
    }

    let mut applied: BTreeSet<(NodeId, GroupId)> = BTreeSet::new();
    let mut proposed: BTreeMap<GroupId, (NodeId, u64)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_tick = Instant::now();
    while applied.len() < IDS.len() * GROUPS as usize {
        assert!(Instant::now() < deadline, "gave up: {} of 90 replicas applied their group's write", applied.len());
        // The clock: one tick every 5 ms of wall time (the pace only; the
        // test waits for outcomes, never for a time).
        let tick = last_tick.elapsed() >= Duration::from_millis(5);
        if tick {
            last_tick = Instant::now();
        }
        for (&id, host) in hosts.iter_mut() {
            while let Some(envelope) = host.net.try_recv() {
                host.node.receive(envelope);
            }
            if tick {
                host.node.tick().unwrap();
            }
            // Propose each group's write at its leader, again after a
            // leader change.
            for g in 1..=GROUPS {
                let Some(n) = host.node.group(g) else { continue };
                if n.is_leader() && proposed.get(&g) != Some(&(id, n.term())) {
                    proposed.insert(g, (id, n.term()));
                    let _ = host.node.step(g, Event::Propose(command(g)));
                }
            }
            let mut out = Vec::new();
            for action in host.node.drain_actions() {
                match action {
                    HostAction::Send(envelope) => out.push(envelope),
                    HostAction::Group { group, action: Action::Apply { command: c, .. } } if c == command(group) => {
                        applied.insert((id, group));
                    }
                    _ => {}
                }
            }
            // One host turn's envelopes, every peer and group at once.
            let _ = host.net.send_batch(out);
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    for (id, host) in &hosts {
        let stats = host.net.stats();
        assert_eq!(stats.connects, 2, "node {id} dials one connection per peer for {GROUPS} groups: {stats:?}");
        assert_eq!(stats.decode_errors, 0);
        assert!(stats.messages_sent > stats.frames_sent, "envelopes share frames: {stats:?}");
        assert_eq!(host.node.stats().unknown_group_dropped, 0);
    }
    for host in hosts.values() {
        host.net.shutdown();
    }
}
