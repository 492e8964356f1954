//! TcpGroupTransport (one batch connection per peer, every group on it):
//! the fair per-peer budget, frame splitting, and bad input — groups the
//! node does not host, another cluster, a burst past the budget, damaged
//! batch frames, frames of the other kind, old-version and wrong-kind
//! handshakes. Each case ends in a counted drop or refusal, never in
//! unbounded memory or a disturbed group. Deterministic: where a queue's
//! content matters, the peer holds the handshake until everything is queued.
//! A per-thread counting allocator shows that a warm turn allocates nothing
//! on the node's thread.
#![cfg(feature = "net")]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits};
use raft_io::multi::{Envelope, EnvelopeBody, GroupId, HostConfig, MultiNode};
use raft_io::transport::{NetEvent, Refusal, TcpConfig, TcpGroupTransport, TcpTransport};
use raft_io::{AppendEntries, Entry, Heartbeat, MemoryLog, Message, MessageBody, RaftConfig, RaftTransport};

use loopback::{loopback, wait_until};

#[global_allocator]
static GLOBAL: counting_alloc::CountingAllocator = counting_alloc::CountingAllocator;

const CLUSTER: u64 = 7;

fn heartbeat(from: u64, to: u64, group: GroupId, round: u64) -> Envelope {
    let message = Message { from, to, term: 1, body: MessageBody::Heartbeat(Heartbeat { commit: 0, round }) };
    Envelope { from, to, body: EnvelopeBody::Raft { group, message } }
}

/// An AppendEntries of `group` carrying one entry of `bytes` bytes.
fn big_append(from: u64, to: u64, group: GroupId, index: u64, bytes: usize) -> Envelope {
    let entries = vec![Entry::normal(1, index, Bytes::from(vec![0xab; bytes]))];
    let append = AppendEntries { prev_log_index: index - 1, prev_log_term: 1, leader_commit: 0, entries };
    let message = Message { from, to, term: 1, body: MessageBody::Append(append) };
    Envelope { from, to, body: EnvelopeBody::Raft { group, message } }
}

fn group_of(e: &Envelope) -> GroupId {
    match &e.body {
        EnvelopeBody::Raft { group, .. } | EnvelopeBody::Quiesce { group, .. } => *group,
        _ => 0,
    }
}

fn hello(version: u16, kind: u16, cluster: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = b"RFIO".to_vec();
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&cluster.to_be_bytes());
    b.extend_from_slice(&from.to_be_bytes());
    b.extend_from_slice(&to.to_be_bytes());
    b
}

fn reply_status(s: &mut TcpStream) -> u16 {
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[0..4], b"RFIO");
    u16::from_be_bytes([reply[6], reply[7]])
}

/// Dials `addr` as node `from` with a version-3 hello of `kind`; returns
/// the connection once accepted.
fn dial_raw(addr: SocketAddr, kind: u16, from: u64, to: u64) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&hello(3, kind, CLUSTER, from, to)).unwrap();
    assert_eq!(reply_status(&mut s), 0, "accepted");
    s
}

fn write_frame(s: &mut TcpStream, frame: &[u8]) {
    s.write_all(&(frame.len() as u32).to_be_bytes()).unwrap();
    s.write_all(frame).unwrap();
}

/// A peer (node `me`) that accepts one connection, checks it is a batch
/// connection, holds the handshake reply until `release` fires, then reads
/// batch frames and sends their envelopes on, in order.
fn held_peer(me: u64) -> (SocketAddr, mpsc::Sender<()>, mpsc::Receiver<Envelope>) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, released) = mpsc::channel::<()>();
    let (deliver, delivered) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut h = [0u8; 32];
        s.read_exact(&mut h).unwrap();
        assert_eq!(u16::from_be_bytes([h[4], h[5]]), 3, "version 3");
        assert_eq!(u16::from_be_bytes([h[6], h[7]]), 1, "a batch connection");
        if released.recv().is_err() {
            return;
        }
        let mut reply = b"RFIO".to_vec();
        reply.extend_from_slice(&3u16.to_be_bytes());
        reply.extend_from_slice(&0u16.to_be_bytes());
        reply.extend_from_slice(&me.to_be_bytes());
        s.write_all(&reply).unwrap();
        loop {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let len = u32::from_be_bytes(len) as usize;
            if len == 0 {
                continue;
            }
            let mut frame = vec![0u8; len];
            if s.read_exact(&mut frame).is_err() {
                return;
            }
            let envelopes = framing::decode_batch(&Bytes::from(frame), &DecodeLimits::default()).unwrap();
            for e in envelopes {
                if deliver.send(e).is_err() {
                    return;
                }
            }
        }
    });
    (addr, release, delivered)
}

fn recv_all(delivered: &mpsc::Receiver<Envelope>, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| delivered.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("envelope {i} of {n}")))
        .collect()
}

/// One group streams appends (64 KiB ones, and small ones that fill the
/// budget to its last bytes) far past the 1 MiB per-peer budget while 50
/// other groups send heartbeats: every heartbeat arrives, each group's in
/// order, the first round of the write carries every group, and the
/// flooding group's losses are counted.
#[test]
fn a_flooding_group_cannot_starve_fifty_others() {
    let (addr, release, delivered) = held_peer(2);
    let cfg = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .peer(2, addr)
        .queue_bytes(1 << 20)
        .queue_capacity(4096)
        .handshake_timeout(Duration::from_secs(120));
    let a = TcpGroupTransport::bind(cfg).unwrap();
    let (rounds, floods_per_round) = (20u64, 10u64 + 500);
    let mut flood_index = 0;
    for round in 1..=rounds {
        for i in 0..floods_per_round {
            flood_index += 1;
            let bytes = if i < 10 { 64 << 10 } else { 100 };
            let _ = a.send(big_append(1, 2, 1, flood_index, bytes));
        }
        let heartbeats: Vec<Envelope> = (2..=51).map(|g| heartbeat(1, 2, g, round)).collect();
        a.send_batch(heartbeats).expect("no heartbeat is refused");
    }
    let stats = a.stats();
    let flood_dropped = stats.dropped_over_share + stats.dropped_queue_full;
    assert!(stats.dropped_over_share > 0, "heartbeats made room: {stats:?}");
    assert!(stats.dropped_queue_full > 0, "the flood went past its share: {stats:?}");
    let queued = a.handle().queued(2).unwrap();
    assert_eq!(queued as u64, 50 * rounds + rounds * floods_per_round - flood_dropped, "every drop is counted");

    release.send(()).unwrap();
    let got = recv_all(&delivered, queued);
    // The first round of the first write: one item of every group.
    let first: std::collections::BTreeSet<GroupId> = got[..51].iter().map(group_of).collect();
    assert_eq!(first.len(), 51, "the flood delays the others by one item, not by its backlog");
    let mut by_group: BTreeMap<GroupId, Vec<u64>> = BTreeMap::new();
    for e in &got {
        if let EnvelopeBody::Raft { group, message } = &e.body {
            if let MessageBody::Heartbeat(h) = &message.body {
                by_group.entry(*group).or_default().push(h.round);
            }
        }
    }
    assert_eq!(by_group.len(), 50);
    for (group, rounds_seen) in by_group {
        assert_eq!(rounds_seen, (1..=rounds).collect::<Vec<_>>(), "group {group}: every heartbeat, in order");
    }
    let flood_arrived = got.iter().filter(|e| group_of(e) == 1).count() as u64;
    assert_eq!(flood_arrived, rounds * floods_per_round - flood_dropped);
    wait_until("the counters", || a.stats().messages_sent == queued as u64);
    a.shutdown();
}

/// A burst of one group past the item budget: the queue never holds more
/// than the budget, the group over its share loses its newest envelopes
/// (counted), and the other groups lose nothing.
#[test]
fn a_burst_past_the_item_budget_is_bounded_and_disturbs_no_other_group() {
    let (addr, release, delivered) = held_peer(2);
    let cfg = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .peer(2, addr)
        .queue_capacity(256)
        .handshake_timeout(Duration::from_secs(120));
    let a = TcpGroupTransport::bind(cfg).unwrap();
    for round in 1..=5 {
        for i in 0..2000 {
            let _ = a.send(heartbeat(1, 2, 1, round * 10_000 + i));
            assert!(a.handle().queued(2).unwrap() <= 256, "bounded");
        }
        for g in 2..=11 {
            a.send(heartbeat(1, 2, g, round)).expect("within its share");
        }
    }
    let stats = a.stats();
    assert_eq!(stats.dropped_over_share + stats.dropped_queue_full, 5 * 2000 + 50 - 256);
    release.send(()).unwrap();
    let got = recv_all(&delivered, 256);
    let others = got.iter().filter(|e| group_of(e) != 1).count();
    assert_eq!(others, 50, "every envelope of groups 2..=11");
    a.shutdown();
}

/// Envelopes of a group the receiving host does not host are delivered by
/// the transport and dropped and counted by the host; the host's own
/// groups are untouched.
#[test]
fn envelopes_for_groups_the_node_does_not_host_are_counted_by_the_host() {
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER)).unwrap();
    let a = TcpGroupTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr())).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let mut host = MultiNode::new(HostConfig::new(2));
    host.create_group(5, RaftConfig::new(2, [1, 2, 3]), MemoryLog::new()).unwrap();
    a.send_batch(vec![heartbeat(1, 2, 99, 1), heartbeat(1, 2, 5, 1), heartbeat(1, 2, 100, 1)]).unwrap();
    let mut received = 0;
    wait_until("three envelopes", || {
        while let Some(e) = b.try_recv() {
            host.receive(e);
            received += 1;
        }
        received == 3
    });
    assert_eq!(host.stats().unknown_group_dropped, 2);
    assert_eq!(host.group(5).unwrap().term(), 1, "group 5 took its heartbeat");
    assert_eq!(b.stats().misaddressed, 0);
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_peer_of_another_cluster_is_refused_at_the_handshake() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let b_cfg =
        TcpConfig::new(2, loopback()).cluster_id(CLUSTER).on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let b = TcpGroupTransport::bind(b_cfg).unwrap();
    let hour = Duration::from_secs(3600);
    let a = TcpGroupTransport::bind(
        TcpConfig::new(1, loopback()).cluster_id(8).peer(2, b.local_addr()).backoff(hour, hour),
    )
    .unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let _ = a.send(heartbeat(1, 2, 1, 1));
    wait_until("the refusal on both sides", || b.stats().handshake_refusals == 1 && a.stats().handshakes_rejected == 1);
    assert_eq!(a.stats().connects, 0);
    assert!(b.try_recv().is_none());
    // The event follows the count (from the acceptor's reader thread).
    let wrong = Refusal::WrongCluster { expected: CLUSTER, found: 8 };
    wait_until("the refusal's event", || {
        events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason, .. } if *reason == wrong))
    });
    a.shutdown();
    b.shutdown();
}

/// A damaged batch frame is dropped and counted, and the connection stays:
/// the next frame on it is delivered. A single-message frame on a batch
/// connection is refused by name (`wrong_kind_frames`), as is a batch frame
/// on a message connection.
#[test]
fn damaged_frames_and_frames_of_the_other_kind_are_dropped_and_counted() {
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).peer(9, loopback())).unwrap();
    let mut s = dial_raw(b.local_addr(), 1, 9, 2);
    let good = framing::encode_batch(9, 2, &[heartbeat(9, 2, 4, 1), heartbeat(9, 2, 6, 1)]).unwrap();
    let mut damaged = good.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x10;
    write_frame(&mut s, &damaged);
    let single = framing::encode(&Message { from: 9, to: 2, term: 1, body: MessageBody::TimeoutNow });
    write_frame(&mut s, &single);
    write_frame(&mut s, &good);
    let mut got = Vec::new();
    wait_until("the good frame after the bad ones", || {
        got.extend(std::iter::from_fn(|| b.try_recv()));
        got.len() == 2
    });
    let stats = b.stats();
    assert_eq!((stats.decode_errors, stats.wrong_kind_frames, stats.inbound_resets), (2, 1, 0));
    // A frame from 9 that claims to be from node 8: dropped per envelope.
    write_frame(&mut s, &framing::encode_batch(8, 2, &[heartbeat(8, 2, 4, 1)]).unwrap());
    wait_until("the misaddressed frame", || b.stats().misaddressed == 1);
    b.shutdown();

    // The reverse: a batch frame on a message connection.
    let mut m = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).peer(9, loopback())).unwrap();
    let mut s = dial_raw(m.local_addr(), 0, 9, 2);
    write_frame(&mut s, &good);
    write_frame(&mut s, &single);
    wait_until("the message after the batch frame", || m.try_recv().is_some());
    let stats = m.stats();
    assert_eq!((stats.decode_errors, stats.wrong_kind_frames, stats.inbound_resets), (1, 1, 0));
    m.shutdown();
}

/// The hello names the connection's kind: a message transport and a group
/// transport refuse each other with a typed `WrongKind`, counted on both
/// sides; an old (version 2) hello, without a kind, is refused as
/// `UnsupportedVersion(2)` and nothing is read from it.
#[test]
fn wrong_kind_and_old_version_handshakes_are_refused_by_name() {
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).peer(1, loopback())).unwrap();
    let hour = Duration::from_secs(3600);
    let mut m = TcpTransport::bind(
        TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr()).backoff(hour, hour),
    )
    .unwrap();
    let _ = m.send(Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow });
    wait_until("the kind refusal", || b.stats().handshake_refusals == 1 && m.stats().handshakes_rejected == 1);
    assert_eq!(m.stats().connects, 0);

    for (version, kind, status) in [(2u16, 0u16, 1u16), (2, 1, 1), (3, 0, 7), (3, 9, 7)] {
        let mut s = TcpStream::connect(b.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&hello(version, kind, CLUSTER, 1, 2)).unwrap();
        assert_eq!(reply_status(&mut s), status, "version {version} kind {kind}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "closed after the refusal");
    }
    wait_until("every refusal counted", || b.stats().handshake_refusals == 5);
    m.shutdown();
    b.shutdown();
}

/// A receiver's small `max_batch_items` and `max_frame_bytes` split one
/// write into several batch frames; every envelope arrives.
#[test]
fn a_write_is_split_into_frames_the_receiver_accepts() {
    let limits = DecodeLimits { max_batch_items: 16, max_frame_bytes: 4096, ..DecodeLimits::default() };
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).limits(limits)).unwrap();
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr()).limits(limits);
    let a = TcpGroupTransport::bind(cfg).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let mut batch: Vec<Envelope> = (1..=200).map(|g| heartbeat(1, 2, g, 1)).collect();
    batch.push(big_append(1, 2, 300, 1, 3000));
    a.send_batch(batch).unwrap();
    let mut got = 0;
    wait_until("every envelope", || {
        got += std::iter::from_fn(|| b.try_recv()).count();
        got == 201
    });
    // The writer counts after its write returns, maybe after the reader:
    // 200 items at 16 a frame, and the large one, make 13 frames at least.
    wait_until("the counters", || a.stats().messages_sent == 201 && a.stats().frames_sent >= 13);
    let sb = b.stats();
    assert_eq!((sb.decode_errors, sb.inbound_resets), (0, 0));
    // One that fits in no frame is dropped when sent, alone.
    a.send(big_append(1, 2, 301, 1, 8000)).unwrap();
    assert_eq!(a.stats().dropped_oversized, 1);
    a.shutdown();
    b.shutdown();
}

/// A peer's burst for one group past the receiver's inbox: the inbox stays
/// within its budget, the burst's group loses its newest envelopes
/// (`dropped_inbox_full`), and the other groups' envelopes all wait for the
/// node.
#[test]
fn an_inbound_burst_for_one_group_does_not_push_out_the_others() {
    let cfg = TcpConfig::new(2, loopback()).cluster_id(CLUSTER).peer(9, loopback()).inbox_capacity(100);
    let b = TcpGroupTransport::bind(cfg).unwrap();
    let mut s = dial_raw(b.local_addr(), 1, 9, 2);
    for frame in 0..10 {
        let burst: Vec<Envelope> = (0..100).map(|i| heartbeat(9, 2, 1, frame * 100 + i)).collect();
        write_frame(&mut s, &framing::encode_batch(9, 2, &burst).unwrap());
    }
    let others: Vec<Envelope> = (2..=11).map(|g| heartbeat(9, 2, g, 1)).collect();
    write_frame(&mut s, &framing::encode_batch(9, 2, &others).unwrap());
    // Every envelope is either waiting (at most 100) or dropped and counted.
    wait_until("all 1010 envelopes handled", || b.stats().dropped_inbox_full == 1010 - 100);
    // Taken in two calls (one lock each), in the inbox's fair order.
    let mut got: Vec<Envelope> = Vec::new();
    assert_eq!(b.try_recv_many(&mut got, 60), 60);
    assert_eq!(b.try_recv_many(&mut got, 1000), 40);
    assert_eq!(got.len(), 100, "the inbox holds its budget");
    let first_round: std::collections::BTreeSet<_> = got[..11].iter().map(group_of).collect();
    assert_eq!(first_round.len(), 11, "one per group in turn");
    for g in 2..=11 {
        assert_eq!(got.iter().filter(|e| group_of(e) == g).count(), 1, "group {g}");
    }
    b.shutdown();
}

/// A host turn handed over with `send_batch` is queued per peer under one
/// lock: the writer finds it whole and sends it as one batch frame.
#[test]
fn a_host_turn_leaves_as_one_frame() {
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER)).unwrap();
    let a = TcpGroupTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr())).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    a.send(heartbeat(1, 2, 1, 0)).unwrap();
    wait_until("the connection", || b.try_recv().is_some());
    wait_until("its counters", || a.stats().messages_sent == 1 && a.stats().frames_sent == 1);
    for turn in 1..=5u64 {
        let before = a.stats().frames_sent;
        let mut envelopes: Vec<Envelope> = (1..=100).map(|g| heartbeat(1, 2, g, turn)).collect();
        envelopes.push(Envelope { from: 1, to: 2, body: EnvelopeBody::Ping });
        a.send_batch(envelopes).unwrap();
        let mut got = 0;
        wait_until("the turn", || {
            got += std::iter::from_fn(|| b.try_recv()).count();
            got == 101
        });
        wait_until("the counters", || a.stats().messages_sent == 1 + 101 * turn && a.stats().frames_sent > before);
        assert_eq!(a.stats().frames_sent - before, 1, "turn {turn}: one frame");
    }
    a.shutdown();
    b.shutdown();
}

/// A host turn for several peers, interleaved, and for a peer with no
/// address: each known peer gets its envelopes in the order they were
/// handed over (one after the other, however the turn mixed them), and
/// the unknown peer's are counted and reported, not sent.
#[test]
fn a_turn_for_several_peers_reaches_each_in_order_and_counts_the_unknown() {
    let bind = |id: u64| TcpGroupTransport::bind(TcpConfig::new(id, loopback()).cluster_id(CLUSTER)).unwrap();
    let (b, c) = (bind(2), bind(3));
    let cfg = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr()).peer(3, c.local_addr());
    let a = TcpGroupTransport::bind(cfg).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    c.add_peer(1, a.local_addr()).unwrap();
    for turn in 1..=3u64 {
        // Groups 1..=30 to peers 3, 9 (unknown), 2, 3, 9, 2, ...
        let to = |g: u64| [3, 9, 2][(g % 3) as usize];
        let envelopes: Vec<Envelope> = (1..=30).map(|g| heartbeat(1, to(g), g, turn)).collect();
        assert_eq!(
            a.send_batch(envelopes),
            Err(raft_io::transport::TransportError::UnknownPeer(9)),
            "turn {turn}: the unknown peer is reported"
        );
        assert_eq!(a.stats().dropped_unknown_peer, 10 * turn);
        for (peer, id) in [(&b, 2), (&c, 3)] {
            let mut got = Vec::new();
            wait_until("the turn", || {
                got.extend(std::iter::from_fn(|| peer.try_recv()));
                got.len() == 10
            });
            let groups: Vec<GroupId> = got.iter().map(group_of).collect();
            let want: Vec<GroupId> = (1..=30).filter(|&g| to(g) == id).collect();
            assert_eq!(groups, want, "turn {turn}: peer {id}'s envelopes, in order");
            assert!(got.iter().all(|e| e.to == id && e.from == 1));
            assert_eq!(peer.stats().messages_received, 10 * turn, "peer {id} counts each envelope");
        }
    }
    for t in [a, b, c] {
        t.shutdown();
    }
}

/// Once warm, handing a turn of envelopes for a hundred groups to
/// `send_batch` and taking a turn in with `try_recv_many` allocate nothing
/// on the node's thread (the transport's reader and writer threads are not
/// counted): a group's queue in the peer queue and in the inbox is reused
/// when the group starts again, and the transport sorts a turn by peer in
/// buffers it keeps (docs/TESTING.md, "Buffers kept between turns").
#[test]
fn a_warm_turn_allocates_nothing_on_the_nodes_thread() {
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER)).unwrap();
    let a = TcpGroupTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).peer(2, b.local_addr())).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let mut turn_out: Vec<Envelope> = Vec::with_capacity(256);
    let mut turn_in: Vec<Envelope> = Vec::with_capacity(1024);
    let mut counts = Vec::new();
    for turn in 0..40u64 {
        turn_out.extend((1..=100).map(|g| heartbeat(1, 2, g, turn)));
        let before = counting_alloc::allocations();
        a.send_batch(turn_out.drain(..)).unwrap();
        wait_until("the turn", || {
            b.try_recv_many(&mut turn_in, 1024);
            turn_in.len() >= 100
        });
        counts.push(counting_alloc::allocations() - before);
        assert_eq!(turn_in.len(), 100, "turn {turn}: every envelope once");
        turn_in.clear();
    }
    eprintln!("allocations per turn on the node's thread: {counts:?}");
    // The first turns connect and size the queues and buffers.
    assert!(counts[10..].iter().all(|&n| n == 0), "a warm turn allocates nothing: {counts:?}");
    a.shutdown();
    b.shutdown();
}

/// A peer learned from a configuration is forgotten when asked; one added
/// by hand is not (the many-groups runtime forgets the peers its groups no
/// longer name, `tests/multi_runtime.rs`).
#[test]
fn only_learned_peers_are_forgotten() {
    // No grace: a forgotten peer goes at once (the grace has its own test,
    // `transport::tcp::learn`).
    let net = TcpGroupTransport::bind(TcpConfig::new(1, loopback()).departed_grace(Duration::ZERO)).unwrap();
    let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
    net.add_peer(2, a).unwrap();
    net.learn_one_peer(3, b).unwrap();
    net.learn_one_peer(1, b).unwrap();
    let ids = |net: &TcpGroupTransport| net.handle().peers().into_iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(ids(&net), [2, 3], "its own id is no peer");
    assert!(!net.forget_learned_peer(2), "added by hand");
    assert!(net.forget_learned_peer(3));
    assert!(!net.forget_learned_peer(3), "forgotten once");
    assert_eq!(ids(&net), [2]);
    // A peer added by hand and then given an address by a configuration
    // is learned: a later departure removes it.
    net.learn_one_peer(2, b).unwrap();
    assert_eq!(net.handle().peers(), [(2, b.into())], "moved to the configuration's address");
    assert!(net.forget_learned_peer(2));
    assert_eq!(ids(&net), []);
    net.shutdown();
}
