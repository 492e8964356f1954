//! Steady-state allocations of `TcpGroupTransport` on the node's thread,
//! with a counting global allocator (per thread, so the transport's own
//! reader and writer threads are not counted): once warm, handing a turn
//! of envelopes for a hundred groups to `send_batch` and taking a turn
//! in with `try_recv_many` allocate nothing. A group's queue in the peer
//! queue and in the inbox is reused when the group starts again, and the
//! transport sorts a turn by peer in buffers it keeps (docs/TESTING.md,
//! "Buffers kept between turns").
#![cfg(feature = "net")]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::time::{Duration, Instant};

use counting_alloc::{CountingAllocator, allocations};
use raft_io::multi::{Envelope, EnvelopeBody, GroupId};
use raft_io::transport::{TcpConfig, TcpGroupTransport};
use raft_io::{Heartbeat, Message, MessageBody};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const CLUSTER: u64 = 7;

fn heartbeat(from: u64, to: u64, group: GroupId, round: u64) -> Envelope {
    let message = Message { from, to, term: 1, body: MessageBody::Heartbeat(Heartbeat { commit: 0, round }) };
    Envelope { from, to, body: EnvelopeBody::Raft { group, message } }
}

#[test]
fn a_warm_turn_allocates_nothing_on_the_nodes_thread() {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback).cluster_id(CLUSTER)).unwrap();
    let a = TcpGroupTransport::bind(TcpConfig::new(1, loopback).cluster_id(CLUSTER).peer(2, b.local_addr())).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let mut turn_out: Vec<Envelope> = Vec::with_capacity(256);
    let mut turn_in: Vec<Envelope> = Vec::with_capacity(1024);
    let mut counts = Vec::new();
    for turn in 0..40u64 {
        turn_out.extend((1..=100).map(|g| heartbeat(1, 2, g, turn)));
        let before = allocations();
        a.send_batch(turn_out.drain(..)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while turn_in.len() < 100 {
            assert!(Instant::now() < deadline, "turn {turn}: gave up waiting");
            if b.try_recv_many(&mut turn_in, 1024) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        counts.push(allocations() - before);
        assert_eq!(turn_in.len(), 100, "turn {turn}: every envelope once");
        turn_in.clear();
    }
    eprintln!("allocations per turn on the node's thread: {counts:?}");
    // The first turns connect and size the queues and buffers.
    assert!(counts[10..].iter().all(|&n| n == 0), "a warm turn allocates nothing: {counts:?}");
    a.shutdown();
    b.shutdown();
}
