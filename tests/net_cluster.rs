//! A three-node cluster over real loopback sockets with WalLog on disk:
//! a leader kill, a restart, no acknowledged write lost, convergence; a
//! peer sending garbage (and a frame corrupted in its term) is disconnected
//! while the cluster keeps serving.
#![cfg(all(feature = "net", feature = "persistence"))]

mod net_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use net_support::{Cluster, wait_until};
use raft_io::runtime::RuntimeError;
use raft_io::{AppendResponse, Message, MessageBody, framing};

#[test]
fn a_cluster_survives_a_leader_kill_and_a_restart_without_losing_acknowledged_writes() {
    let mut cluster = Cluster::start(3);
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let write = |cluster: &Cluster, acked: &mut BTreeMap<String, String>, key: String, value: String| {
        if cluster.put(&key, &value).is_ok() {
            acked.insert(key, value);
        }
    };

    let first = cluster.wait_for_leader();
    for i in 0..50 {
        write(&cluster, &mut acked, format!("k{i}"), format!("v{i}"));
    }
    assert_eq!(acked.len(), 50, "a healthy cluster acknowledges every write");

    cluster.stop(first);
    let second = cluster.wait_for_leader();
    assert_ne!(second, first);
    for i in 25..100 {
        write(&cluster, &mut acked, format!("k{i}"), format!("w{i}"));
    }

    cluster.restart(first);
    for i in 100..120 {
        write(&cluster, &mut acked, format!("k{i}"), format!("x{i}"));
    }
    // The restarted node catches up: it applies everything the leader has
    // committed, and a linearizable read through it sees every acknowledged
    // write.
    let leader = cluster.wait_for_leader();
    let commit = cluster.handle(leader).progress().commit;
    wait_until("the restarted node to catch up", || cluster.handle(first).progress().applied >= commit);
    for i in 0..3 {
        let kv = cluster.read_all(i).unwrap();
        for (k, v) in &acked {
            assert_eq!(kv.map.get(k), Some(v), "node {} lost acknowledged write {k}={v}", i + 1);
        }
    }
    // Convergence: once every node applied the same index, all states agree.
    let commit = cluster.handle(leader).progress().commit;
    wait_until("every node to apply the leader's commit", || {
        (0..3).all(|i| cluster.handle(i).progress().applied >= commit)
    });
    let states: Vec<_> = (0..3).map(|i| cluster.handle(i).read(|kv: &net_support::Kv| kv.clone()).unwrap()).collect();
    let last = states.iter().map(|s| s.applied).max().unwrap();
    wait_until("identical applied indexes", || {
        (0..3).all(|i| cluster.handle(i).read(move |kv: &net_support::Kv| kv.applied).unwrap() >= last)
    });
    let states: Vec<_> = (0..3).map(|i| cluster.read_all(i).unwrap()).collect();
    assert!(states.windows(2).all(|w| w[0].map == w[1].map), "state machines diverged");
    cluster.shutdown();
}

#[test]
fn a_node_restarted_after_compaction_catches_up_from_a_snapshot() {
    // Snapshots every 16 entries: by the time the stopped node returns, the
    // leader has compacted the entries it lacks and must send a snapshot,
    // which the runtime hands to `StateMachine::restore`.
    let mut cluster = Cluster::start_configured(3, |c| c, |c| c.snapshot_entries(16));
    let first = cluster.wait_for_leader();
    let down = (first + 1) % 3;
    cluster.stop(down);
    let mut acked = BTreeMap::new();
    for i in 0..200 {
        if cluster.put(&format!("s{i}"), &format!("{i}")).is_ok() {
            acked.insert(format!("s{i}"), format!("{i}"));
        }
    }
    let leader = cluster.wait_for_leader();
    wait_until("the leader to compact", || cluster.handle(leader).status().unwrap().snapshot_index > 16);
    cluster.restart(down);
    let commit = cluster.handle(leader).progress().commit;
    wait_until("the restarted node to catch up", || cluster.handle(down).progress().applied >= commit);
    let kv = cluster.read_all(down).unwrap();
    for (k, v) in &acked {
        assert_eq!(kv.map.get(k), Some(v), "lost acknowledged write {k}");
    }
    assert!(cluster.handle(down).status().unwrap().snapshot_index > 0, "installed a snapshot");
    assert!(cluster.handle(leader).stats().snapshots > 0);
    cluster.shutdown();
}

#[test]
fn a_peer_sending_garbage_is_disconnected_while_the_cluster_keeps_serving() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let target = (leader + 1) % 3;
    let addr = cluster.addrs[target];

    // Garbage from the first byte: refused at the handshake, connection closed.
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n and more bytes than a hello").unwrap();
    let mut buf = [0u8; 64];
    let n = garbage.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a refused connection is closed without a reply");
    let tcp = &cluster.nodes[target].as_ref().unwrap().tcp;
    wait_until("the refusal to be counted", || tcp.stats().handshake_refusals >= 1);

    // A configured peer (id 99, whose address is dead) that passes the
    // handshake, then sends frames that fail to decode (dropped, counted),
    // then an absurd length prefix (reset).
    let dead = std::net::TcpListener::bind(net_support::loopback()).unwrap().local_addr().unwrap();
    tcp.add_peer(99, dead).unwrap();
    let peer = 99u64;
    let mut evil = TcpStream::connect(addr).unwrap();
    evil.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut hello = Vec::new();
    hello.extend_from_slice(b"RFIO");
    hello.extend_from_slice(&3u16.to_be_bytes()); // transport version 3
    hello.extend_from_slice(&0u16.to_be_bytes());
    hello.extend_from_slice(&net_support::CLUSTER.to_be_bytes());
    hello.extend_from_slice(&peer.to_be_bytes());
    hello.extend_from_slice(&cluster.ids[target].to_be_bytes());
    evil.write_all(&hello).unwrap();
    let mut reply = [0u8; 16];
    evil.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[0..4], b"RFIO");
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0, "accepted");
    for _ in 0..3 {
        evil.write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00]).unwrap();
    }
    wait_until("the decode errors to be counted", || tcp.stats().decode_errors >= 3);

    // The bug wire format 2 fixes: a real message whose term was corrupted
    // in transit into a huge, valid varint (2^62 - 1, just below
    // `MAX_TERM`), under the checksum its sender computed. Decoded, it
    // would make the node adopt that term. Refused by the checksum instead,
    // counted, and the node's term is untouched.
    let term = cluster.handle(target).status().unwrap().term;
    let answer = |term| Message {
        from: peer,
        to: cluster.ids[target],
        term,
        body: MessageBody::AppendResponse(AppendResponse::default()),
    };
    let sent = framing::encode(&answer(term));
    let mut corrupted = framing::encode(&answer((1 << 62) - 1)).to_vec();
    corrupted[1..5].copy_from_slice(&sent[1..5]);
    evil.write_all(&(corrupted.len() as u32).to_be_bytes()).unwrap();
    evil.write_all(&corrupted).unwrap();
    wait_until("the corrupted frame to be counted", || tcp.stats().decode_errors >= 4);
    assert!(cluster.handle(target).status().unwrap().term < 1 << 32, "the corrupted term was adopted");
    evil.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let n = evil.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "an oversized length prefix resets the connection");
    wait_until("the reset to be counted", || tcp.stats().inbound_resets >= 1);

    // The cluster kept serving throughout.
    assert!(cluster.put("after", "garbage").is_ok());
    let kv = cluster.read_all(target).unwrap();
    assert_eq!(kv.map.get("after").map(String::as_str), Some("garbage"));
    cluster.shutdown();
}

#[test]
fn requests_after_shutdown_fail_at_once() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader();
    let handle = cluster.handle(leader).clone();
    cluster.stop(leader);
    assert!(matches!(handle.propose("k=v"), Err(RuntimeError::ShuttingDown)));
    assert!(matches!(handle.read(|_| ()), Err(RuntimeError::ShuttingDown)));
    assert!(matches!(handle.status(), Err(RuntimeError::ShuttingDown)));
    assert!(!handle.is_running());
    handle.shutdown(); // idempotent
    cluster.shutdown();
}
