//! Addresses in the replicated configuration, over real sockets: a cluster
//! whose transports were given no peer at all finds itself through the
//! bootstrap configuration's addresses, redirects with the leader's
//! address, reaches a node added by address, drops the peer it removes,
//! and a restarted node needs no wiring either.
#![cfg(all(feature = "net", feature = "persistence"))]

mod net_support;

use std::net::SocketAddr;
use std::time::Duration;

use net_support::{CLUSTER, Kv, loopback, wait_until};
use raft_io::runtime::{RaftHandle, Runtime, RuntimeError, address_bytes};
use raft_io::transport::{TcpConfig, TcpHandle, TcpTransport};
use raft_io::{MembershipChange, NodeId, RaftConfig, RaftNode, WalLog};

struct Member {
    id: NodeId,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    handle: Option<RaftHandle<Kv>>,
    tcp: Option<TcpHandle>,
}

fn start(m: &mut Member, transport: TcpTransport, config: RaftConfig) {
    let log = WalLog::open(m.dir.path()).unwrap();
    let node = RaftNode::with_log(config.cluster_id(CLUSTER).seed(m.id).election_timeout(40, 80), log).unwrap();
    m.tcp = Some(transport.handle());
    let handle = Runtime::new(node, transport, Kv::default()).tick_interval(Duration::from_millis(5)).start().unwrap();
    m.handle = Some(handle);
}

/// A departed peer is kept 3 s: ten election timeouts of these nodes.
fn bind(id: NodeId, addr: SocketAddr) -> TcpTransport {
    TcpTransport::bind(TcpConfig::new(id, addr).cluster_id(CLUSTER).departed_grace(Duration::from_secs(3))).unwrap()
}

fn leader(members: &[Member]) -> usize {
    let mut at = 0;
    wait_until("a leader", || {
        let found = members.iter().position(|m| m.handle.as_ref().is_some_and(RaftHandle::is_leader));
        at = found.unwrap_or(0);
        found.is_some()
    });
    at
}

fn peers_of(m: &Member) -> Vec<NodeId> {
    m.tcp.as_ref().unwrap().peers().into_iter().map(|(id, _)| id).collect()
}

#[test]
fn a_cluster_wired_only_by_its_configuration_runs_grows_shrinks_and_restarts() {
    // Transports with no peer: the addresses are only in the configuration.
    let transports: Vec<TcpTransport> = (1..=3).map(|id| bind(id, loopback())).collect();
    let mut members: Vec<Member> = transports
        .iter()
        .enumerate()
        .map(|(i, t)| Member {
            id: i as u64 + 1,
            addr: t.local_addr(),
            dir: tempfile::tempdir().unwrap(),
            handle: None,
            tcp: None,
        })
        .collect();
    let addresses: Vec<_> = members.iter().map(|m| (m.id, address_bytes(m.addr))).collect();
    for (m, t) in members.iter_mut().zip(transports) {
        assert!(t.handle().peers().is_empty());
        let config = RaftConfig::new(m.id, [1, 2, 3]).addresses(addresses.clone());
        start(m, t, config);
    }
    let l = leader(&members);
    let lead = members[l].handle.clone().unwrap();
    lead.propose("a=1").unwrap();
    for m in &members {
        assert_eq!(peers_of(m).len(), 2, "node {} learned both others", m.id);
    }

    // A follower redirects with the leader's address.
    let f = (l + 1) % 3;
    wait_until("the follower to know the leader", || members[f].handle.as_ref().unwrap().leader().is_some());
    match members[f].handle.as_ref().unwrap().propose("b=2") {
        Err(RuntimeError::NotLeader { leader: Some(id), leader_addr }) => {
            assert_eq!(id, members[l].id);
            assert_eq!(leader_addr, Some(members[l].addr.into()));
        }
        other => panic!("expected a redirect with the leader's address, got {other:?}"),
    }

    // Node 4, added by address: no member is told anything else. It learns
    // the members from the configuration the change returns.
    let t4 = bind(4, loopback());
    let addr4 = t4.local_addr();
    let m = lead.change_membership(MembershipChange::AddLearnerAt { id: 4, address: address_bytes(addr4) }).unwrap();
    assert_eq!(t4.learn_peers(&m).unwrap(), Vec::<NodeId>::new());
    let mut fourth = Member { id: 4, addr: addr4, dir: tempfile::tempdir().unwrap(), handle: None, tcp: None };
    start(&mut fourth, t4, RaftConfig::joining(4));
    lead.propose("c=3").unwrap();
    let target = lead.progress().commit;
    wait_until("node 4 to catch up", || fourth.handle.as_ref().unwrap().progress().applied >= target);
    assert!(peers_of(&members[l]).contains(&4), "the leader learned node 4 from the configuration");
    members.push(fourth);

    // Remove a follower. It never receives the entry that removes it;
    // when it campaigns, the members, which keep it as a peer for the
    // grace, answer with a removal notice: it stops. Then every other
    // member drops it as a peer.
    let gone = (l + 1) % 3;
    let gone_id = members[gone].id;
    lead.change_membership(MembershipChange::Remove(gone_id)).unwrap();
    let removed = members[gone].handle.clone().unwrap();
    wait_until("the removed node to be told", || removed.removed().is_some());
    for (i, m) in members.iter().enumerate() {
        if i != gone {
            wait_until("the removed node to be dropped", || !peers_of(m).contains(&gone_id));
        }
    }
    if let Some(h) = members[gone].handle.take() {
        h.shutdown();
    }

    // Restart another follower from its log, with a transport given no
    // peer: it finds the others through the configuration it recovers.
    let again = members.iter().position(|m| m.handle.is_some() && !m.handle.as_ref().unwrap().is_leader() && m.id != 4);
    let again = again.unwrap();
    if let Some(h) = members[again].handle.take() {
        h.shutdown();
    }
    let t = bind(members[again].id, members[again].addr);
    let id = members[again].id;
    start(&mut members[again], t, RaftConfig::new(id, [1, 2, 3]));
    let mut learned = peers_of(&members[again]);
    learned.sort_unstable();
    let mut expected: Vec<NodeId> = members.iter().map(|m| m.id).filter(|&x| x != id && x != gone_id).collect();
    expected.sort_unstable();
    assert_eq!(learned, expected, "a restarted node learns its peers from its log");
    lead.propose("d=4").unwrap();
    let target = lead.progress().commit;
    let h = members[again].handle.clone().unwrap();
    wait_until("the restarted node to catch up", || h.progress().applied >= target);
    assert_eq!(h.read(|kv: &Kv| kv.map.get("d").cloned()).unwrap().as_deref(), Some("4"));
    for m in &members {
        if let Some(h) = &m.handle {
            h.shutdown();
        }
    }
}
