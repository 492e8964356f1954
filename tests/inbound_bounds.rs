//! What a peer's bytes may make a node hold or dial: the inbox charges a
//! decoded message what decoding built as well as its frame bytes, in both
//! kinds of connection (found by review, red before the fix), a member
//! whose address stops parsing keeps the address learned before, and a
//! configuration naming more members than `max_peers` starts no more
//! writer threads than that (found by review, red before the fix).
#![cfg(feature = "net")]

#[path = "support/loopback.rs"]
mod loopback;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use loopback::{loopback, wait_until};
use raft_io::framing;
use raft_io::multi::{Envelope, EnvelopeBody};
use raft_io::transport::{TcpConfig, TcpGroupTransport, TcpTransport};
use raft_io::{AppendEntries, Entry, Message, MessageBody, RaftTransport};

const CLUSTER: u64 = 7;

/// An address nobody listens on (the node's writer to the fake peer fails
/// its dials, which does not matter here).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind(loopback()).unwrap();
    l.local_addr().unwrap()
}

fn hello(kind: u16, from: u64, to: u64) -> Vec<u8> {
    let mut b = b"RFIO".to_vec();
    b.extend_from_slice(&3u16.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&CLUSTER.to_be_bytes());
    b.extend_from_slice(&from.to_be_bytes());
    b.extend_from_slice(&to.to_be_bytes());
    b
}

/// Dials `addr` as node `from` (plaintext: the ids are claims; under TLS
/// the same bytes go inside the session of an authenticated member).
fn dial_raw(addr: SocketAddr, kind: u16, from: u64, to: u64) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&hello(kind, from, to)).unwrap();
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[0..4], b"RFIO");
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0, "accepted");
    s
}

fn write_frame(s: &mut TcpStream, frame: &[u8]) {
    s.write_all(&(frame.len() as u32).to_be_bytes()).unwrap();
    s.write_all(frame).unwrap();
}

/// An AppendEntries of `n` entries with no data: 4 bytes each on the wire
/// (term, index, kind, data length), 56 B each once decoded.
fn empty_entries_append(from: u64, to: u64, n: usize) -> Message {
    let entries = (0..n).map(|_| Entry::normal(1, 1, Bytes::new())).collect();
    let append = AppendEntries { prev_log_index: 0, prev_log_term: 0, leader_commit: 0, entries };
    Message { from, to, term: 1, body: MessageBody::Append(append) }
}

/// Sends `frame` 64 times on `s`, and waits until the node received or
/// dropped every one.
fn flood(s: &mut TcpStream, frame: &[u8], stats: impl Fn() -> raft_io::transport::TcpStats) {
    let frames = 64;
    for _ in 0..frames {
        write_frame(s, frame);
    }
    wait_until("every frame received or dropped", || {
        let st = stats();
        st.messages_received + st.dropped_inbox_full >= frames
    });
}

/// Heap bytes a received message holds (its entry vector; entry data are
/// empty here).
fn held_by(message: &Message) -> usize {
    match &message.body {
        MessageBody::Append(a) => a.entries.capacity() * std::mem::size_of::<Entry>(),
        _ => 0,
    }
}

/// `inbox_bytes` bounds what received messages waiting for the node hold
/// (SECURITY.md: the bounds "keep such a peer from holding slots or
/// memory"). An AppendEntries of empty entries holds 56 B of entry vector
/// per 4 bytes of frame: charged its frame length alone, as it was, a peer
/// sending such frames filled the inbox with 14 times `inbox_bytes` (about
/// 0.9 GiB at the default 64 MiB).
#[test]
fn the_inbox_holds_no_more_than_its_byte_budget_in_decoded_messages() {
    let budget = 256 << 10;
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, dead_addr()).inbox_bytes(budget);
    let mut node = TcpTransport::bind(cfg).unwrap();
    let mut s = dial_raw(node.local_addr(), 0, 2, 1);
    let frame = framing::encode(&empty_entries_append(2, 1, 4096));
    assert!(frame.len() < 4096 * 4 + 64, "{} bytes", frame.len());
    flood(&mut s, &frame, || node.stats());
    let mut held = 0;
    let mut waiting = 0;
    while let Some(m) = node.try_recv() {
        held += held_by(&m);
        waiting += 1;
    }
    eprintln!("{waiting} messages waiting, holding {held} bytes of entries, inbox_bytes {budget}");
    node.shutdown();
    assert!(held <= 2 * budget, "the inbox held {held} bytes of decoded entries with inbox_bytes = {budget}");
}

/// The same on a batch connection: an envelope is charged its item's bytes
/// and what decoding built (an item of an AppendEntries with 4096 empty
/// entries was charged its ~16 KiB and held a 224 KiB entry vector).
#[test]
fn the_batch_inbox_holds_no_more_than_its_byte_budget_in_decoded_envelopes() {
    let budget = 256 << 10;
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, dead_addr()).inbox_bytes(budget);
    let node = TcpGroupTransport::bind(cfg).unwrap();
    let mut s = dial_raw(node.local_addr(), 1, 2, 1);
    let envelope =
        Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: 1, message: empty_entries_append(2, 1, 4096) } };
    let frame = framing::encode_batch(2, 1, [&envelope]).unwrap();
    flood(&mut s, &frame, || node.stats());
    let mut held = 0;
    let mut waiting = 0;
    while let Some(e) = node.try_recv() {
        let EnvelopeBody::Raft { message, .. } = &e.body else { panic!("{e:?}") };
        held += held_by(message) + std::mem::size_of::<Envelope>();
        waiting += 1;
    }
    eprintln!("{waiting} envelopes waiting, holding {held} bytes, inbox_bytes {budget}");
    node.shutdown();
    assert!(held <= 2 * budget, "the inbox held {held} bytes with inbox_bytes = {budget}");
}

/// PROTOCOL.md §7.3: a member whose address stops parsing is not dialed at
/// the unusable address; `learn_peers` reports it, and the address learned
/// before stays in use (a mistyped `SetAddress` does not cut a working
/// link), as it does when the address is cleared.
#[test]
fn a_member_whose_address_stops_parsing_keeps_the_one_learned_before() {
    use raft_io::{Membership, MembershipChange};
    let nowhere = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { Ok(Vec::new()) };
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).resolver(nowhere).departed_grace(Duration::ZERO);
    let node = TcpTransport::bind(cfg).unwrap();
    let old = dead_addr();
    let m = Membership::new([1, 2, 3], []).unwrap().with_address(3, old.to_string()).unwrap();
    assert!(node.learn_peers(&m).unwrap().is_empty());
    assert_eq!(node.handle().peers(), vec![(3, old.into())]);
    let typo = m
        .apply(&MembershipChange::SetAddress { id: 3, address: Some(Bytes::from_static(b"raft_3.example:7001")) })
        .unwrap();
    assert_eq!(node.learn_peers(&typo).unwrap(), vec![3], "reported as not dialed at it");
    assert_eq!(node.handle().peers(), vec![(3, old.into())], "kept at the address learned before");
    let cleared = m.apply(&MembershipChange::SetAddress { id: 3, address: None }).unwrap();
    assert!(node.learn_peers(&cleared).unwrap().is_empty());
    assert_eq!(node.handle().peers(), vec![(3, old.into())]);
    node.shutdown();
}

/// A configuration of `n` voters 1..=n, each with a one-byte address
/// (19 bytes per member on the wire: its id, and id + length + byte).
fn addressed_membership(n: u64) -> raft_io::Membership {
    let mut b = vec![raft_io::membership::MEMBERSHIP_FORMAT];
    b.extend_from_slice(&(n as u32).to_le_bytes());
    for id in 1..=n {
        b.extend_from_slice(&id.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&(n as u32).to_le_bytes());
    for id in 1..=n {
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.push(b'a');
    }
    raft_io::Membership::decode(&b).unwrap()
}

/// A snapshot chunk is charged the configuration decoded in it too (its
/// ids, and each address a map slot and an allocation of its own): a peer
/// whose chunks carry many one-byte addresses held several times
/// `inbox_bytes` when only the chunk's struct was counted (found by review
/// of the fix for entries).
#[test]
fn the_inbox_budget_bounds_snapshot_chunks_with_addressed_configurations() {
    let budget = 1 << 20;
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, dead_addr()).inbox_bytes(budget);
    let mut node = TcpTransport::bind(cfg).unwrap();
    let chunk = raft_io::SnapshotChunk {
        meta: raft_io::SnapshotMeta { index: 5, term: 1, membership: addressed_membership(3000) },
        total_len: 8,
        offset: 0,
        data: Bytes::from_static(&[0; 8]),
    };
    let frame = framing::encode(&Message { from: 2, to: 1, term: 1, body: MessageBody::Snapshot(Box::new(chunk)) });
    let mut s = dial_raw(node.local_addr(), 0, 2, 1);
    flood(&mut s, &frame, || node.stats());
    // A lower bound of what decoding built, from public data only: each id
    // 8 bytes, each address map slot an id and a `Bytes`, and the address.
    let mut held = 0usize;
    while let Some(m) = node.try_recv() {
        if let MessageBody::Snapshot(c) = &m.body {
            let ms = &c.meta.membership;
            held += 8 * (ms.voters().len() + ms.learners().len() + ms.outgoing().len());
            held += ms.addresses().map(|(_, a)| std::mem::size_of::<(u64, Bytes)>() + a.len()).sum::<usize>();
        }
    }
    node.shutdown();
    assert!(
        held <= 2 * budget,
        "the inbox held at least {held} bytes of decoded configurations with inbox_bytes = {budget}"
    );
}

/// A configuration of voters 1..=n, each but node 1 carrying a host name
/// (looked up by the test's resolver, which finds nothing: no dial leaves
/// the machine).
fn named_members(n: u64) -> raft_io::Membership {
    let mut m = raft_io::Membership::new(1..=n, []).unwrap();
    for id in 2..=n {
        m = m.with_address(id, format!("node-{id}.example:7001")).unwrap();
    }
    m
}

/// The transport starts a writer thread for every peer it learns from a
/// configuration: one naming a thousand members with addresses (damaged,
/// hostile, or a mistake) made the node start a thousand threads (found by
/// review). Past `max_peers` (by default `max_connections`, 64) further
/// members are refused: not dialed, counted, reported.
#[test]
fn a_configuration_naming_more_members_than_max_peers_starts_no_more_writers() {
    use raft_io::transport::NetEvent;
    use std::sync::{Arc, Mutex};
    let nowhere = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { Ok(Vec::new()) };
    let members = named_members(1000);
    // The default: as many as inbound connections.
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).resolver(nowhere);
    let node = TcpTransport::bind(cfg).unwrap();
    assert!(node.learn_peers(&members).unwrap().is_empty());
    let peers = node.handle().peers().len();
    assert_eq!(node.stats().peers_over_limit, 999 - 64);
    node.shutdown();
    assert!(peers <= 64, "{peers} peers (a writer thread each) for 999 members");

    let refused = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&refused);
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).resolver(nowhere).max_peers(8).on_event(move |e| {
        if let NetEvent::PeerOverLimit { peer, max_peers: 8 } = e {
            seen.lock().unwrap().push(*peer);
        }
    });
    let node = TcpTransport::bind(cfg).unwrap();
    assert!(node.learn_peers(&members).unwrap().is_empty());
    assert_eq!(node.handle().peers().iter().map(|(id, _)| *id).collect::<Vec<_>>(), (2..=9).collect::<Vec<_>>());
    assert_eq!(node.stats().peers_over_limit, 991);
    assert_eq!(*refused.lock().unwrap(), (10..=1000).collect::<Vec<_>>(), "each reported");
    // Learned again (the runtime does at every configuration): still 8.
    node.learn_peers(&members).unwrap();
    assert_eq!(node.handle().peers().len(), 8);
    node.shutdown();
}

/// Past `max_peers` a peer added by hand is a typed error, and so is a
/// configuration of more peers than that at bind; a known peer may still
/// move.
#[test]
fn a_peer_added_by_hand_past_max_peers_is_a_typed_error() {
    use raft_io::transport::TooManyPeers;
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).max_peers(2).peer(2, dead_addr());
    let node = TcpTransport::bind(cfg.clone().peer(3, dead_addr())).unwrap();
    let e = node.add_peer(4, dead_addr()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(TooManyPeers::of(&e), Some(&TooManyPeers { peer: 4, max_peers: 2 }));
    assert!(node.handle().add_peer(5, dead_addr()).is_err());
    let moved = dead_addr();
    node.add_peer(3, moved).unwrap();
    let peers = node.handle().peers();
    assert_eq!(peers.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(peers[1].1, moved, "a known peer moves");
    node.remove_peer(3);
    node.add_peer(4, dead_addr()).unwrap();
    assert_eq!(node.stats().peers_over_limit, 2);
    node.shutdown();
    let too_many = cfg.peer(3, dead_addr()).peer(4, dead_addr());
    let e = TcpTransport::bind(too_many).unwrap_err();
    assert_eq!(TooManyPeers::of(&e), Some(&TooManyPeers { peer: 4, max_peers: 2 }));
    // A group transport learns one peer at a time: the same bound.
    let hosts = TcpGroupTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).max_peers(1)).unwrap();
    hosts.learn_one_peer(2, dead_addr()).unwrap();
    let e = hosts.learn_one_peer(3, dead_addr()).unwrap_err();
    assert_eq!(TooManyPeers::of(&e), Some(&TooManyPeers { peer: 3, max_peers: 1 }));
    assert_eq!(hosts.handle().peers().len(), 1);
    hosts.shutdown();
}
