//! Members refused at `TcpConfig::max_peers` wait for room: as soon as a
//! peer is removed (by hand, by a configuration without grace, or once a
//! departed member's grace is over) the waiting members are added, in
//! node id order, and dialed, with no further configuration change. Before
//! the fix (found by review) they were dialed only when another
//! configuration was learned.
#![cfg(feature = "net")]

#[path = "support/loopback.rs"]
mod loopback;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopback::{loopback, wait_until};
use raft_io::transport::{NetEvent, TcpConfig, TcpGroupTransport, TcpHandle, TcpTransport};
use raft_io::{Membership, MembershipChange, Message, MessageBody, RaftTransport};

const CLUSTER: u64 = 7;

/// An address nobody listens on: dials to it fail at once.
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind(loopback()).unwrap();
    l.local_addr().unwrap()
}

fn ids(h: &TcpHandle) -> Vec<u64> {
    h.peers().iter().map(|(id, _)| *id).collect()
}

/// The `PeerOverLimit` events a transport reports, and its configuration.
fn recorded(cfg: TcpConfig) -> (TcpConfig, Arc<Mutex<Vec<u64>>>) {
    let refused = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&refused);
    let cfg = cfg.on_event(move |e| {
        if let NetEvent::PeerOverLimit { peer, .. } = e {
            seen.lock().unwrap().push(*peer);
        }
    });
    (cfg, refused)
}

#[test]
fn members_refused_at_max_peers_are_added_in_id_order_when_a_peer_is_removed() {
    let nowhere = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { Ok(Vec::new()) };
    let cfg =
        TcpConfig::new(1, loopback()).cluster_id(CLUSTER).resolver(nowhere).max_peers(2).departed_grace(Duration::ZERO);
    let (cfg, refused) = recorded(cfg);
    let node = TcpTransport::bind(cfg).unwrap();
    let mut m = Membership::new(1..=6, []).unwrap();
    for id in 2..=6 {
        m = m.with_address(id, format!("node-{id}.example:7001")).unwrap();
    }
    node.learn_peers(&m).unwrap();
    let h = node.handle();
    assert_eq!(ids(&h), vec![2, 3]);
    assert_eq!(*refused.lock().unwrap(), vec![4, 5, 6]);
    assert_eq!(node.stats().peers_over_limit, 3);
    // Node 5 leaves while waiting: it no longer waits.
    let m = m.apply(&MembershipChange::Remove(5)).unwrap();
    node.learn_peers(&m).unwrap();
    assert_eq!(ids(&h), vec![2, 3]);
    let counted = node.stats().peers_over_limit;
    // Room frees up: the first waiting member (by id) comes in at once, no
    // configuration learned, no second report.
    node.remove_peer(3);
    assert_eq!(ids(&h), vec![2, 4]);
    h.remove_peer(2);
    assert_eq!(ids(&h), vec![4, 6], "node 5 left while it waited");
    assert_eq!(node.stats().peers_over_limit, counted, "an admission is no refusal");
    assert_eq!(refused.lock().unwrap().len() as u64, counted);
    // Nobody waits any more.
    node.remove_peer(4);
    assert_eq!(ids(&h), vec![6]);
    node.shutdown();
}

#[test]
fn a_member_refused_at_max_peers_is_dialed_once_a_departed_member_s_grace_is_over() {
    let grace = Duration::from_millis(100);
    let cfg = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .max_peers(2)
        .departed_grace(grace)
        .backoff(Duration::from_millis(10), Duration::from_millis(50));
    let node = TcpTransport::bind(cfg).unwrap();
    let mut four =
        TcpTransport::bind(TcpConfig::new(4, loopback()).cluster_id(CLUSTER).peer(1, node.local_addr())).unwrap();
    let m = Membership::new([1, 2, 3], []).unwrap();
    let m = m.with_address(2, dead_addr().to_string()).unwrap().with_address(3, dead_addr().to_string()).unwrap();
    node.learn_peers(&m).unwrap();
    // Node 2 leaves, node 4 joins: node 2 is kept for its grace, so node 4
    // finds no room.
    let m = m.apply(&MembershipChange::Remove(2)).unwrap();
    let m = m.apply(&MembershipChange::AddVoter(4)).unwrap();
    let m = m.with_address(4, four.local_addr().to_string()).unwrap();
    node.learn_peers(&m).unwrap();
    assert_eq!(node.stats().peers_over_limit, 1);
    // Once node 2's grace is over, node 4 is added and dialed, with no
    // configuration learned meanwhile.
    let h = node.handle();
    wait_until("node 4 to take node 2's place", || ids(&h) == vec![3, 4]);
    let mut node = node;
    wait_until("a message to reach node 4", || {
        let _ = node.send(Message { from: 1, to: 4, term: 1, body: MessageBody::TimeoutNow });
        std::iter::from_fn(|| four.try_recv()).any(|m| m.from == 1)
    });
    assert_eq!(node.stats().connects, 1);
    node.shutdown();
    four.shutdown();
}

#[test]
fn a_group_transport_s_waiting_members_come_in_by_id_when_a_learned_peer_is_forgotten() {
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).max_peers(1).departed_grace(Duration::ZERO);
    let (cfg, refused) = recorded(cfg);
    let hosts = TcpGroupTransport::bind(cfg).unwrap();
    hosts.learn_one_peer(2, dead_addr()).unwrap();
    for id in [5, 3, 4] {
        assert!(hosts.learn_one_peer(id, dead_addr()).is_err(), "no room for {id}");
    }
    assert_eq!(*refused.lock().unwrap(), vec![5, 3, 4]);
    // Node 3 is forgotten while it waits (no group names it any more).
    assert!(!hosts.forget_learned_peer(3), "it was never a peer");
    let h = hosts.handle();
    assert_eq!(ids(&h), vec![2]);
    assert!(hosts.forget_learned_peer(2));
    assert_eq!(ids(&h), vec![4], "the lowest id still waiting");
    // An admitted member is learned: forgetting it lets it go (and the next
    // one in).
    assert!(hosts.forget_learned_peer(4));
    assert_eq!(ids(&h), vec![5]);
    assert_eq!(hosts.stats().peers_over_limit, 3);
    hosts.shutdown();
}
