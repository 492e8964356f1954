//! TcpTransport against misconfigured and misbehaving peers, over real
//! loopback sockets: every case ends in a counted refusal, drop or reset,
//! and nothing blocks forever.
#![cfg(feature = "net")]

#[path = "support/loopback.rs"]
mod loopback;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raft_io::transport::{NetEvent, Refusal, TcpConfig, TcpTransport};
use raft_io::{AppendEntries, Entry, Message, MessageBody, RaftTransport, TransportError};

use loopback::{loopback, wait_until};

fn ping(from: u64, to: u64) -> Message {
    Message { from, to, term: 1, body: MessageBody::TimeoutNow }
}

/// The transport version this build speaks (3: the hello names the
/// connection's kind, 0 for single-message frames of wire format 2).
const VERSION: u16 = 3;

fn hello(cluster: u64, from: u64, to: u64) -> Vec<u8> {
    hello_at(VERSION, cluster, from, to)
}

fn hello_at(version: u16, cluster: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = b"RFIO".to_vec();
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&cluster.to_be_bytes());
    b.extend_from_slice(&from.to_be_bytes());
    b.extend_from_slice(&to.to_be_bytes());
    b
}

fn recorder() -> (Arc<Mutex<Vec<NetEvent>>>, impl Fn(&NetEvent) + Send + Sync + 'static) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (events, move |e: &NetEvent| sink.lock().unwrap().push(e.clone()))
}

#[test]
fn messages_flow_both_ways_and_survive_a_peer_restart() {
    let a = TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(5)).unwrap();
    let b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(5)).unwrap();
    let b_addr = b.local_addr();
    a.add_peer(2, b_addr).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let (mut a, mut b) = (a, b);
    a.send(ping(1, 2)).unwrap();
    b.send(ping(2, 1)).unwrap();
    wait_until("a message at b", || b.try_recv().is_some());
    wait_until("a message at a", || a.try_recv().is_some());

    // b goes away and comes back on the same port: a reconnects.
    drop(b);
    let mut b = TcpTransport::bind(TcpConfig::new(2, b_addr).cluster_id(5).peer(1, a.local_addr())).unwrap();
    wait_until("a message after the restart", || {
        let _ = a.send(ping(1, 2));
        b.try_recv().is_some()
    });
    assert!(a.stats().reconnects >= 1 || a.stats().connects >= 2);
}

#[test]
fn a_wrong_cluster_id_or_node_id_is_refused_at_the_handshake() {
    let (events, hook) = recorder();
    let server =
        TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(5).peer(2, loopback()).on_event(hook)).unwrap();
    let addr = server.local_addr();
    let cases = [
        (hello(6, 2, 1), Refusal::WrongCluster { expected: 5, found: 6 }),
        (hello(5, 2, 3), Refusal::WrongNode { expected: 1, found: 3 }),
        (hello(5, 7, 1), Refusal::UnknownPeer(7)),
        // A raft-io 0.7 node (transport version 1, wire format 1).
        (hello_at(1, 5, 2, 1), Refusal::UnsupportedVersion(1)),
        // A raft-io 0.8 build before batch connections (version 2).
        (hello_at(2, 5, 2, 1), Refusal::UnsupportedVersion(2)),
        (b"definitely not a raft-io hello, 32+ bytes".to_vec(), Refusal::BadMagic),
    ];
    for (i, (bytes, reason)) in cases.iter().enumerate() {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(bytes).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        if *reason == Refusal::BadMagic {
            assert!(reply.is_empty(), "no reply to a stranger");
        } else {
            assert_eq!(reply.len(), 16, "a refusal reply, then close");
            assert_ne!(u16::from_be_bytes([reply[6], reply[7]]), 0);
        }
        wait_until("the refusal to be counted", || server.stats().handshake_refusals == i as u64 + 1);
        // The event follows the count (from the acceptor's reader thread).
        wait_until("the refusal's event", || {
            events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason: r, .. } if r == reason))
        });
    }

    // A misconfigured transport dialing us sees the refusal too.
    let mut wrong = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9).peer(1, addr)).unwrap();
    let _ = wrong.send(ping(2, 1));
    wait_until("the dialer to count the rejection", || wrong.stats().handshakes_rejected >= 1);
    assert_eq!(wrong.stats().connects, 0);
}

#[test]
fn a_peer_that_never_reads_is_bounded_by_the_queue() {
    // A "peer" that accepts, answers the handshake, and never reads again.
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 32];
        s.read_exact(&mut hello).unwrap();
        let mut reply = b"RFIO".to_vec();
        reply.extend_from_slice(&VERSION.to_be_bytes());
        reply.extend_from_slice(&0u16.to_be_bytes());
        reply.extend_from_slice(&2u64.to_be_bytes());
        s.write_all(&reply).unwrap();
        s // keep it open, unread
    });
    let mut t = TcpTransport::bind(
        TcpConfig::new(1, loopback())
            .peer(2, addr)
            .queue_capacity(64)
            .queue_bytes(1 << 20)
            .write_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let big = Bytes::from(vec![7u8; 64 << 10]);
    let append = |i: u64| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append(AppendEntries {
            prev_log_index: i,
            prev_log_term: 1,
            leader_commit: 0,
            entries: vec![Entry::normal(1, i + 1, big.clone())],
        }),
    };
    let handle = t.handle();
    let mut i = 0;
    wait_until("the queue to fill", || {
        i += 1;
        let full = matches!(t.send(append(i)), Err(TransportError::QueueFull(2)));
        assert!(handle.queued(2).unwrap() <= 64, "the queue is bounded");
        full
    });
    assert!(t.stats().dropped_queue_full >= 1);
    // The stalled write times out and the connection is reset.
    wait_until("the stalled connection to be reset", || t.stats().outbound_resets >= 1);
    let _kept_open = sink.join().unwrap();
    t.shutdown();
}

#[test]
fn a_half_open_inbound_connection_is_reset_after_the_idle_timeout() {
    let server =
        TcpTransport::bind(TcpConfig::new(1, loopback()).peer(2, loopback()).idle_timeout(Duration::from_millis(100)))
            .unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.write_all(&hello(0, 2, 1)).unwrap();
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply).unwrap();
    // Now silence: no frame, no keepalive.
    wait_until("the silent connection to be reset", || server.stats().inbound_resets >= 1);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed");
}

#[test]
fn keepalives_keep_an_idle_connection_open() {
    let b = TcpTransport::bind(TcpConfig::new(2, loopback()).idle_timeout(Duration::from_secs(1))).unwrap();
    let mut a = TcpTransport::bind(
        TcpConfig::new(1, loopback()).peer(2, b.local_addr()).keepalive_interval(Duration::from_millis(20)),
    )
    .unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    a.send(ping(1, 2)).unwrap();
    // Three idle timeouts' worth of keepalives (4 bytes each), with no frame.
    let start = b.stats().bytes_received;
    wait_until("keepalives", || b.stats().bytes_received >= start + 4 * 150);
    assert_eq!(b.stats().inbound_resets, 0);
    assert_eq!(a.stats().connects, 1);
}

#[test]
fn oversized_outbound_messages_are_dropped_and_unknown_peers_refused() {
    let b = TcpTransport::bind(TcpConfig::new(2, loopback())).unwrap();
    let limits = raft_io::framing::DecodeLimits { max_frame_bytes: 1024, ..Default::default() };
    let mut a = TcpTransport::bind(TcpConfig::new(1, loopback()).peer(2, b.local_addr()).limits(limits)).unwrap();
    let huge = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append(AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            leader_commit: 0,
            entries: vec![Entry::normal(1, 1, Bytes::from(vec![0u8; 4096]))],
        }),
    };
    a.send(huge).unwrap();
    wait_until("the oversized message to be dropped", || a.stats().dropped_oversized == 1);
    assert_eq!(a.send(ping(1, 3)), Err(TransportError::UnknownPeer(3)));
    a.shutdown();
    assert_eq!(a.send(ping(1, 2)), Err(TransportError::Closed));
}

#[test]
fn too_many_connections_are_refused() {
    let server = TcpTransport::bind(TcpConfig::new(1, loopback()).max_connections(2)).unwrap();
    let addr = server.local_addr();
    let _held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut third = TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0, "closed at once");
    assert_eq!(server.stats().connections_over_limit, 1);
    // Shutdown is prompt with connections in their handshake.
    server.shutdown();
}

#[test]
fn a_node_that_does_not_keep_up_is_protected_by_the_bounded_inbox() {
    // b knows a before a dials it, so no message is lost to a refusal.
    let mut a = TcpTransport::bind(TcpConfig::new(1, loopback())).unwrap();
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).inbox_capacity(4).peer(1, a.local_addr())).unwrap();
    a.add_peer(2, b.local_addr()).unwrap();
    for _ in 0..10 {
        a.send(ping(1, 2)).unwrap();
    }
    // Nobody calls `b.try_recv` meanwhile: four wait, the rest are dropped.
    wait_until("all ten to arrive or be dropped", || {
        let s = b.stats();
        s.messages_received + s.dropped_inbox_full == 10
    });
    assert_eq!(b.stats().messages_received, 4);
    let mut n = 0;
    while b.try_recv().is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
}

/// A peer that accepts the handshake and drops the connection at once is
/// redialled after the backoff, not in a tight loop. Established from the
/// transport's counters, not from a wait: once the writer has begun waiting
/// out its backoff (it counts the wait as it begins it), or has dialled
/// again, whichever comes first, it must have dialled once and chosen the
/// configured hour; after shutdown (which joins the writer) that is final.
#[test]
fn a_peer_that_accepts_then_drops_is_redialled_only_after_the_backoff() {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut hello = [0u8; 32];
            if s.read_exact(&mut hello).is_err() {
                continue;
            }
            let mut reply = b"RFIO".to_vec();
            reply.extend_from_slice(&VERSION.to_be_bytes());
            reply.extend_from_slice(&0u16.to_be_bytes());
            reply.extend_from_slice(&2u64.to_be_bytes());
            let _ = s.write_all(&reply);
            drop(s);
            if accepted_tx.send(()).is_err() {
                return;
            }
        }
    });
    let hour = Duration::from_secs(3600);
    let mut t = TcpTransport::bind(TcpConfig::new(1, loopback()).peer(2, addr).backoff(hour, hour)).unwrap();
    // The bound only turns a hang into a failure.
    accepted.recv_timeout(Duration::from_secs(60)).expect("the first dial");
    // Writing into the dropped connection fails within a few messages; the
    // writer then backs off, or (the bug) dials again at once.
    let dials = |s: &raft_io::transport::TcpStats| s.connects + s.connect_failures;
    wait_until("the writer to back off or dial again", || {
        let _ = t.send(ping(1, 2));
        let s = t.stats();
        s.backoff_waits >= 1 || dials(&s) >= 2
    });
    let s = t.stats();
    assert_eq!(dials(&s), 1, "redialled at once after the connection broke: {s:?}");
    assert_eq!((s.backoff_waits, s.backoff_wait_ms), (1, 3_600_000), "waits out the configured backoff: {s:?}");
    t.shutdown();
    let s = t.stats();
    assert_eq!((s.connects, s.connect_failures, s.outbound_resets), (1, 0, 1), "{s:?}");
}

/// Shuts `t` down on another thread and fails if that takes a minute: the
/// bound only turns a hang (waiting out `what`, an hour in these tests)
/// into a failure.
fn shuts_down_promptly(t: TcpTransport, what: &str) {
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        t.shutdown();
        let _ = done_tx.send(());
    });
    assert!(done.recv_timeout(Duration::from_secs(60)).is_ok(), "shutdown waited for {what}");
}

/// Shutting down while a dial waits for a peer's handshake reply cuts the
/// handshake short instead of waiting out its timeout.
#[test]
fn shutdown_interrupts_a_handshake_with_a_peer_that_never_replies() {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let hour = Duration::from_secs(3600);
    let config = TcpConfig::new(1, loopback()).peer(2, addr).handshake_timeout(hour);
    let t = TcpTransport::bind(config).unwrap();
    // The peer accepts the connection and reads the hello, but never replies.
    let (mut silent, _) = listener.accept().unwrap();
    let mut hello = [0u8; 32];
    silent.read_exact(&mut hello).unwrap();
    shuts_down_promptly(t, "the handshake timeout");
}

/// A listener whose accept queue is full: the kernel drops every further
/// SYN, so a connect to it waits (retransmitting) until its own timeout, as
/// with a peer behind a firewall that drops packets. A backlog of 0 holds
/// one connection on Linux; the returned stream fills it.
#[cfg(target_os = "linux")]
fn syn_sink() -> (socket2::Socket, TcpStream, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&loopback().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    // The sink works: a connect to it now waits out its timeout.
    let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    assert_eq!(probe.err().map(|e| e.kind()), Some(std::io::ErrorKind::TimedOut), "the SYN sink accepted a connection");
    (listener, filler, addr)
}

/// Sockets of this host still connecting (`SYN_SENT`) to `port` on
/// 127.0.0.1, from `/proc/net/tcp`.
#[cfg(target_os = "linux")]
fn connecting_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == remote && f[3] == "02"
        })
        .count()
}

/// A transport whose writer is connecting to a [`syn_sink`] (peer 2), with
/// an hour's connect timeout; returned once the connect is under way,
/// with the sink (kept alive) and its address.
#[cfg(target_os = "linux")]
fn dialing_a_syn_sink() -> ((socket2::Socket, TcpStream), TcpTransport, std::net::SocketAddr) {
    let (listener, filler, addr) = syn_sink();
    let hour = Duration::from_secs(3600);
    let t = TcpTransport::bind(TcpConfig::new(1, loopback()).peer(2, addr).connect_timeout(hour)).unwrap();
    wait_until("the writer's connect to be under way", || connecting_to(addr.port()) > 0);
    ((listener, filler), t, addr)
}

/// Shutting down while a dial waits on a peer that drops its SYNs cuts the
/// connect short instead of waiting out the connect timeout (an hour
/// here): the writer's socket is registered before it connects, and
/// `close` shuts it down.
#[cfg(target_os = "linux")]
#[test]
fn shutdown_interrupts_a_connect_to_a_peer_that_drops_syns() {
    let (_sink, t, addr) = dialing_a_syn_sink();
    shuts_down_promptly(t, "the connect timeout");
    assert_eq!(connecting_to(addr.port()), 0, "the aborted connect left a socket behind");
}

/// Removing a peer while its writer waits on a connect ends that connect
/// at once, and the transport's shutdown then has nothing to wait for.
#[cfg(target_os = "linux")]
#[test]
fn removing_a_peer_interrupts_its_connect() {
    let (_sink, t, addr) = dialing_a_syn_sink();
    t.remove_peer(2);
    wait_until("the connect to be aborted", || connecting_to(addr.port()) == 0);
    shuts_down_promptly(t, "the removed peer's connect");
}

/// A raft-io 0.7 node (transport version 1, wire format 1) answers this
/// build's hello with a version refusal at its own version: the dialer
/// counts and reports `UnsupportedVersion(1)`, and not one frame crosses.
/// Mixed 0.7/0.8 clusters fail here, at the handshake, not with frames
/// neither side can decode.
#[test]
fn a_0_7_peer_refuses_the_handshake_and_is_sent_no_frame() {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let old_node = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut hello = [0u8; 32];
        s.read_exact(&mut hello).unwrap();
        let mut reply = b"RFIO".to_vec();
        reply.extend_from_slice(&1u16.to_be_bytes()); // its version
        reply.extend_from_slice(&1u16.to_be_bytes()); // status 1: unsupported version
        reply.extend_from_slice(&2u64.to_be_bytes());
        s.write_all(&reply).unwrap();
        let mut after = Vec::new();
        let _ = s.read_to_end(&mut after);
        (u16::from_be_bytes([hello[4], hello[5]]), after)
    });
    let (events, hook) = recorder();
    let hour = Duration::from_secs(3600);
    let mut t =
        TcpTransport::bind(TcpConfig::new(1, loopback()).peer(2, addr).backoff(hour, hour).on_event(hook)).unwrap();
    let _ = t.send(ping(1, 2));
    wait_until("the rejection to be counted", || t.stats().handshakes_rejected == 1);
    let rejected = NetEvent::Rejected { peer: 2, reason: Refusal::UnsupportedVersion(1) };
    assert!(events.lock().unwrap().contains(&rejected));
    t.shutdown();
    let (version, after) = old_node.join().unwrap();
    assert_eq!(version, VERSION, "this build's hello");
    assert!(after.is_empty(), "{} bytes sent after the refusal", after.len());
    assert_eq!((t.stats().connects, t.stats().messages_sent), (0, 0));
}
