//! The runtime's request lifecycle over real sockets: no request waits
//! forever after leadership loss or shutdown; group commit; follower reads;
//! leadership transfer; membership changes; status.
#![cfg(all(feature = "net", feature = "persistence"))]

mod net_support;

use std::sync::{Arc, Barrier};
use std::thread;

use net_support::{Cluster, Kv, wait_until};
use raft_io::runtime::RuntimeError;
use raft_io::{MembershipChange, Role};

#[test]
fn pending_proposals_fail_when_the_leader_loses_its_quorum() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let handle = cluster.handle(leader).with_timeout(None);
    for i in 0..3 {
        if i != leader {
            cluster.stop(i);
        }
    }
    // No timeout: only leadership loss (check-quorum) can end these.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let h = handle.clone();
            thread::spawn(move || h.propose(format!("k{i}=v")))
        })
        .collect();
    for c in clients {
        match c.join().unwrap() {
            Err(RuntimeError::LeadershipLost { .. }) | Err(RuntimeError::NotLeader { .. }) => {}
            other => panic!("expected a leadership error, got {other:?}"),
        }
    }
    wait_until("the old leader to step down", || !handle.is_leader());
    cluster.shutdown();
}

#[test]
fn shutdown_fails_every_in_flight_request() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let handle = cluster.handle(leader).with_timeout(None);
    let follower = (leader + 1) % 3;
    cluster.stop(follower);
    cluster.stop((leader + 2) % 3);
    let start = Arc::new(Barrier::new(9));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (h, b) = (handle.clone(), Arc::clone(&start));
            thread::spawn(move || {
                b.wait();
                if i % 2 == 0 { h.propose(format!("k{i}=v")).map(drop) } else { h.read(|_: &Kv| ()) }
            })
        })
        .collect();
    start.wait();
    cluster.stop(leader);
    for c in clients {
        let result = c.join().unwrap();
        assert!(
            matches!(
                result,
                Err(RuntimeError::ShuttingDown)
                    | Err(RuntimeError::OutcomeUnknown)
                    | Err(RuntimeError::LeadershipLost { .. })
                    | Err(RuntimeError::NotLeader { .. })
            ),
            "{result:?}"
        );
    }
    assert!(matches!(handle.propose("late=1"), Err(RuntimeError::ShuttingDown)));
}

#[test]
fn concurrent_proposals_share_batches_and_followers_read_them() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let handle = cluster.handle(leader).clone();
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let h = handle.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    let previous = h.propose(format!("c{c}-k{i}=v")).unwrap();
                    assert_eq!(previous, None, "apply output reaches the proposer");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let stats = handle.stats();
    assert_eq!(stats.proposals, 640);
    assert!(
        stats.batches < stats.proposals,
        "group commit: {} batches for {} proposals",
        stats.batches,
        stats.proposals
    );
    // A read through a follower sees every acknowledged write.
    let follower = (leader + 1) % 3;
    let n = cluster.handle(follower).read(|kv: &Kv| kv.map.len()).unwrap();
    assert_eq!(n, 640);
    assert_eq!(
        cluster.handle(follower).propose("x=1").map(drop).unwrap_err().to_string(),
        RuntimeError::NotLeader { leader: Some(cluster.ids[leader]), leader_addr: None }.to_string()
    );
    cluster.shutdown();
}

#[test]
fn leadership_transfer_and_membership_change_complete_through_the_handle() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let target = (leader + 1) % 3;
    cluster.handle(leader).transfer_leadership(cluster.ids[target]).unwrap();
    wait_until("the target to lead", || cluster.handle(target).is_leader());
    let status = cluster.handle(target).status().unwrap();
    assert_eq!(status.role, Role::Leader);

    // Remove the old leader from the configuration, then add it back as a learner.
    let removed = cluster.ids[leader];
    let membership = cluster.handle(target).change_membership(MembershipChange::Remove(removed)).unwrap();
    assert!(!membership.contains(removed));
    assert!(matches!(
        cluster.handle(target).change_membership(MembershipChange::AddLearner(removed)),
        Ok(m) if m.is_learner(removed)
    ));
    // The learner refuses linearizable reads with a typed error.
    wait_until(
        "the learner to know its role",
        || matches!(cluster.handle(leader).status(), Ok(s) if s.membership.is_learner(removed)),
    );
    assert!(matches!(cluster.handle(leader).read(|_: &Kv| ()), Err(RuntimeError::Refused(_))));
    cluster.shutdown();
}

#[test]
fn a_transport_for_another_cluster_or_node_is_refused_at_start() {
    use raft_io::runtime::Runtime;
    use raft_io::transport::{TcpConfig, TcpTransport};
    use raft_io::{RaftConfig, RaftNode};

    let loopback = "127.0.0.1:0".parse().unwrap();
    let cases = [(TcpConfig::new(1, loopback), "cluster 0"), (TcpConfig::new(2, loopback).cluster_id(7), "node 2")];
    for (tcp, named) in cases {
        let node = RaftNode::new(RaftConfig::single(1).cluster_id(7)).unwrap();
        let transport = TcpTransport::bind(tcp).unwrap();
        let err = Runtime::new(node, transport, Kv::default()).start().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(named), "{err}");
    }
}
