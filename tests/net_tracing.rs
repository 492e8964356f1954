//! With features `net` and `tracing`: a peer that repeats undecodable
//! frames, and a stranger that repeats refused connections, do not flood
//! the node's log. Each kind is logged at its 1st, 2nd, 4th, … occurrence,
//! with the count so far; the hook still receives every event and the
//! stats count them all. (Its own test binary: the subscriber is
//! process-wide, because transport events come from the transport's
//! threads.)
#![cfg(all(feature = "net", feature = "tracing"))]

#[path = "support/tracing_capture.rs"]
mod tracing_capture;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use raft_io::transport::{NetEvent, TcpConfig, TcpTransport};
use tracing::Level;
use tracing_capture::Capture;

const CLUSTER: u64 = 0x6b76;
const FRAMES: u64 = 100;
const STRANGERS: u64 = 5;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `occurrences` of the warn events whose `NetEvent` names `kind`.
fn occurrences(capture: &Capture, kind: &str) -> Vec<u64> {
    capture
        .events()
        .iter()
        .filter(|e| e.level == Level::WARN && e.field("event").is_some_and(|e| e.starts_with(kind)))
        .map(|e| e.field("occurrences").and_then(|n| n.parse().ok()).expect("a count of the flood so far"))
        .collect()
}

#[test]
fn repeated_decode_errors_and_refusals_are_logged_at_powers_of_two() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let (decode_errors, refusals) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (d, r) = (Arc::clone(&decode_errors), Arc::clone(&refusals));
    // Peer 99's address is dead: only its inbound connection is used.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let node = TcpTransport::bind(
        TcpConfig::new(1, "127.0.0.1:0".parse().unwrap()).cluster_id(CLUSTER).peer(99, dead).on_event(move |e| {
            match e {
                NetEvent::DecodeError { .. } => d.fetch_add(1, Ordering::SeqCst),
                NetEvent::Refused { .. } => r.fetch_add(1, Ordering::SeqCst),
                _ => 0,
            };
        }),
    )
    .unwrap();

    // Strangers: a connection that is not raft-io's, again and again.
    for _ in 0..STRANGERS {
        let mut s = TcpStream::connect(node.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n and more bytes than a hello").unwrap();
        let _ = s.read(&mut [0u8; 64]);
    }

    // Peer 99 passes the handshake, then sends frames that fail to decode.
    let mut evil = TcpStream::connect(node.local_addr()).unwrap();
    evil.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut hello = Vec::new();
    hello.extend_from_slice(b"RFIO");
    hello.extend_from_slice(&3u16.to_be_bytes()); // transport version 3
    hello.extend_from_slice(&0u16.to_be_bytes());
    hello.extend_from_slice(&CLUSTER.to_be_bytes());
    hello.extend_from_slice(&99u64.to_be_bytes());
    hello.extend_from_slice(&1u64.to_be_bytes());
    evil.write_all(&hello).unwrap();
    let mut reply = [0u8; 16];
    evil.read_exact(&mut reply).unwrap();
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0, "accepted");
    for _ in 0..FRAMES {
        evil.write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00]).unwrap();
    }

    // The hook runs after the event is logged: once it saw them all, the
    // log holds everything it will.
    wait_until("every event to reach the hook", || {
        decode_errors.load(Ordering::SeqCst) == FRAMES && refusals.load(Ordering::SeqCst) == STRANGERS
    });
    let stats = node.stats();
    assert_eq!((stats.decode_errors, stats.handshake_refusals), (FRAMES, STRANGERS));
    assert_eq!(occurrences(&capture, "DecodeError"), [1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(occurrences(&capture, "Refused"), [1, 2, 4]);
}
