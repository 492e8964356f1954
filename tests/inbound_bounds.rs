//! What a peer's bytes may make a node hold or dial (each found by review,
//! red before its fix): the inbox charges a decoded message what decoding
//! built as well as its frame bytes, in both kinds of connection, and a
//! member whose address stops parsing is no longer dialed at its old one.
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
    let frames = 64;
    for _ in 0..frames {
        write_frame(&mut s, &frame);
    }
    wait_until("every frame received or dropped", || {
        let st = node.stats();
        st.messages_received + st.dropped_inbox_full >= frames
    });
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
    let frames = 64;
    for _ in 0..frames {
        write_frame(&mut s, &frame);
    }
    wait_until("every frame received or dropped", || {
        let st = node.stats();
        st.messages_received + st.dropped_inbox_full >= frames
    });
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

/// PROTOCOL.md §7.3: "A member whose address does not parse is not dialed
/// (`learn_peers` returns it)". A member learned at one address whose
/// address is then changed (`SetAddress`) to one that does not parse is
/// reported as unusable and retired: it used to be kept as a peer, dialed
/// and accepted at its old address, which the configuration no longer
/// names.
#[test]
fn a_member_whose_address_no_longer_parses_is_not_dialed_at_its_old_one() {
    use raft_io::{Membership, MembershipChange};
    let nowhere = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { Ok(Vec::new()) };
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).resolver(nowhere).departed_grace(Duration::ZERO);
    let node = TcpTransport::bind(cfg).unwrap();
    let old = dead_addr();
    let m = Membership::new([1, 2, 3], []).unwrap().with_address(3, old.to_string()).unwrap();
    assert!(node.learn_peers(&m).unwrap().is_empty());
    assert_eq!(node.handle().peers(), vec![(3, old.into())]);
    let moved = m
        .apply(&MembershipChange::SetAddress { id: 3, address: Some(Bytes::from_static(b"raft_3.example:7001")) })
        .unwrap();
    assert_eq!(node.learn_peers(&moved).unwrap(), vec![3], "reported as not dialed");
    let peers = node.handle().peers();
    node.shutdown();
    assert!(peers.iter().all(|&(id, _)| id != 3), "node 3 is still dialed at {peers:?}");
}

/// The many-groups runtime's transport likewise: a member's address that
/// stops parsing retires the address learned before for it.
#[test]
fn a_group_transport_forgets_a_learned_address_that_stops_parsing() {
    use raft_io::runtime::multi::GroupTransport;
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).departed_grace(Duration::ZERO);
    let mut node = TcpGroupTransport::bind(cfg).unwrap();
    let old = dead_addr();
    GroupTransport::learn_peer(&mut node, 3, &Bytes::from(old.to_string()));
    assert_eq!(node.handle().peers(), vec![(3, old.into())]);
    GroupTransport::learn_peer(&mut node, 3, &Bytes::from_static(b"raft_3.example:7001"));
    let peers = node.handle().peers();
    node.shutdown();
    assert!(peers.iter().all(|&(id, _)| id != 3), "node 3 is still dialed at {peers:?}");
}
