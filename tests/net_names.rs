//! Peers addressed by host name (`PeerAddr`): looked up at every dial, so a
//! peer back at another address under its name is reached there; a name
//! that does not resolve is a counted, retried dial failure; a lookup's
//! addresses are tried in order, past one that refuses the connection,
//! closes it at the handshake, or (TLS) presents another node's
//! certificate. Over real loopback sockets.
#![cfg(feature = "net")]

#[cfg(feature = "tls")]
#[allow(dead_code)]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/loopback.rs"]
mod loopback;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use raft_io::transport::{NetEvent, PeerAddr, TcpConfig, TcpTransport};
use raft_io::{Message, MessageBody, RaftTransport};

use loopback::{loopback, wait_until};

fn ping(from: u64, to: u64, term: u64) -> Message {
    Message { from, to, term, body: MessageBody::TimeoutNow }
}

/// Sends pings from `a` to node 2 until `b` receives one of `term`.
fn deliver(a: &mut TcpTransport, b: &mut TcpTransport, term: u64) {
    wait_until("a ping over the connection", || {
        let _ = a.send(ping(1, 2, term));
        std::iter::from_fn(|| b.try_recv()).any(|m| m.term == term)
    });
}

/// A resolver whose answer the test changes, counting its lookups.
#[derive(Clone)]
struct Registry {
    answer: Arc<Mutex<std::io::Result<Vec<SocketAddr>>>>,
    lookups: Arc<AtomicUsize>,
}

impl Default for Registry {
    fn default() -> Self {
        Self { answer: Arc::new(Mutex::new(Ok(Vec::new()))), lookups: Arc::default() }
    }
}

impl Registry {
    fn set(&self, answer: std::io::Result<Vec<SocketAddr>>) {
        *self.answer.lock().unwrap() = answer;
    }

    fn config(&self, id: u64) -> TcpConfig {
        let me = self.clone();
        TcpConfig::new(id, loopback()).cluster_id(9).resolver(move |host: &str, _port: u16| {
            assert_eq!(host, "raft-2.raft.svc");
            me.lookups.fetch_add(1, Ordering::SeqCst);
            match &*me.answer.lock().unwrap() {
                Ok(addrs) => Ok(addrs.clone()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            }
        })
    }
}

#[test]
fn a_peer_added_by_name_is_reached_through_the_system_resolver() {
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    let name: PeerAddr = format!("localhost:{}", b.local_addr().port()).parse().unwrap();
    assert_eq!(name.host(), Some("localhost"));
    let mut a = TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(9).peer(2, name.clone())).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut b, 1);
    assert_eq!(a.handle().peers(), vec![(2, name)], "the peer keeps its name, not what it resolved to");
    assert_eq!(a.stats().resolve_failures, 0);
}

#[test]
fn a_name_is_looked_up_again_when_its_peer_comes_back_elsewhere() {
    let registry = Registry::default();
    let (events, hook) = {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        (events, move |e: &NetEvent| sink.lock().unwrap().push(e.clone()))
    };
    let mut first = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    registry.set(Ok(vec![first.local_addr()]));
    let mut a = TcpTransport::bind(registry.config(1).on_event(hook)).unwrap();
    a.add_peer(2, "raft-2.raft.svc:7001".parse::<PeerAddr>().unwrap()).unwrap();
    first.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut first, 1);
    let lookups = registry.lookups.load(Ordering::SeqCst);
    assert!(lookups >= 1);

    // Node 2 goes away and comes back at another port under the same
    // name: nothing is told to `a` but the resolver's new answer.
    let old = first.local_addr();
    first.shutdown();
    drop(first);
    let mut second = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    assert_ne!(second.local_addr(), old);
    registry.set(Ok(vec![second.local_addr()]));
    second.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut second, 2);
    assert!(registry.lookups.load(Ordering::SeqCst) > lookups, "looked up again at the redial");
    let reached: Vec<SocketAddr> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            NetEvent::Connected { peer: 2, addr } => Some(*addr),
            _ => None,
        })
        .collect();
    assert_eq!(reached.first(), Some(&old));
    assert_eq!(reached.last(), Some(&second.local_addr()), "the event names the address reached");
    assert!(a.stats().reconnects >= 1);
}

#[test]
fn a_name_that_does_not_resolve_is_a_counted_failure_and_is_retried() {
    let registry = Registry::default();
    registry.set(Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such host")));
    let (events, hook) = {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        (events, move |e: &NetEvent| sink.lock().unwrap().push(e.clone()))
    };
    let mut a = TcpTransport::bind(registry.config(1).on_event(hook)).unwrap();
    a.add_peer(2, "raft-2.raft.svc:7001".parse::<PeerAddr>().unwrap()).unwrap();
    wait_until("two failed lookups", || a.stats().resolve_failures >= 2);
    let s = a.stats();
    assert!(s.connect_failures >= s.resolve_failures && s.connects == 0, "{s:?}");
    assert!(
        events.lock().unwrap().iter().any(|e| matches!(
            e,
            NetEvent::ConnectFailed { peer: 2, error } if error.contains("looking up raft-2.raft.svc:7001")
        )),
        "the event names the lookup"
    );

    // An empty answer is a failure too.
    let before = a.stats().resolve_failures;
    registry.set(Ok(Vec::new()));
    wait_until("a failure on an empty answer", || a.stats().resolve_failures > before + 1);

    // The name resolves at last: connected, with no call to the transport.
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    registry.set(Ok(vec![b.local_addr()]));
    deliver(&mut a, &mut b, 3);
    assert_eq!(a.stats().connects, 1);
}

#[test]
fn a_lookup_s_addresses_are_tried_in_order_until_one_accepts() {
    // An address where nothing listens: a socket bound and never put to
    // listen, kept for the whole test, so a dial is refused at once and no
    // other process (tests run side by side) can take the port meanwhile.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&loopback().into()).unwrap();
    let closed = socket.local_addr().unwrap().as_socket().unwrap();
    let registry = Registry::default();
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    registry.set(Ok(vec![closed, b.local_addr()]));
    let mut a = TcpTransport::bind(registry.config(1)).unwrap();
    a.add_peer(2, "raft-2.raft.svc:7001".parse::<PeerAddr>().unwrap()).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut b, 1);
    let s = a.stats();
    assert_eq!((s.connects, s.resolve_failures), (1, 0), "one dial, its second address: {s:?}");
}

/// An address that accepts connections and closes each at once, before
/// any reply; and how many it closed.
fn closing_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&closed);
    // Left running for the rest of the test binary.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, closed)
}

/// A name whose first address accepts the connection and closes it at the
/// handshake: the dial goes on to the next address (it backed off and
/// redialed the first address, for good, before the fix: found by review).
#[test]
fn a_lookup_s_next_address_is_tried_when_the_first_closes_at_the_handshake() {
    let (closer, closed) = closing_listener();
    let registry = Registry::default();
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9)).unwrap();
    registry.set(Ok(vec![closer, b.local_addr()]));
    let mut a = TcpTransport::bind(registry.config(1)).unwrap();
    a.add_peer(2, "raft-2.raft.svc:7001".parse::<PeerAddr>().unwrap()).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut b, 1);
    let s = a.stats();
    assert!(closed.load(Ordering::SeqCst) >= 1, "the first address was tried");
    assert_eq!((s.connects, s.connect_failures), (1, 0), "one dial, its second address: {s:?}");
}

/// A name whose first address is another node, presenting its own
/// certificate: the dialer refuses it (counted, reported) and goes on to
/// the next address within the same dial (before the fix it backed off and
/// redialed the impostor, for good: found by review).
#[cfg(feature = "tls")]
#[test]
fn a_lookup_s_next_address_is_tried_when_the_first_presents_another_node_s_certificate() {
    use raft_io::transport::Refusal;
    use raft_io::transport::tls::{IdentityError, TlsConfig};
    let ca = certs::Ca::new("cluster CA");
    let material = |id: u64| {
        let cert = ca.node(9, id);
        TlsConfig::from_pem(ca.pem().as_bytes(), cert.cert.as_bytes(), cert.key.as_bytes()).unwrap()
    };
    let three = TcpTransport::bind(TcpConfig::new(3, loopback()).cluster_id(9).tls(material(3))).unwrap();
    let mut b = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(9).tls(material(2))).unwrap();
    let registry = Registry::default();
    registry.set(Ok(vec![three.local_addr(), b.local_addr()]));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let cfg = registry.config(1).tls(material(1)).on_event(move |e| sink.lock().unwrap().push(e.clone()));
    let mut a = TcpTransport::bind(cfg).unwrap();
    a.add_peer(2, "raft-2.raft.svc:7001".parse::<PeerAddr>().unwrap()).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    deliver(&mut a, &mut b, 1);
    let s = a.stats();
    assert_eq!((s.connects, s.connect_failures), (1, 0), "one dial, its second address: {s:?}");
    assert!(s.identity_refusals >= 1, "node 3 refused as node 2: {s:?}");
    let refused = Refusal::Identity(IdentityError::WrongNode { claimed: 2, certified: 3 });
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, NetEvent::Untrusted { peer: 2, reason } if *reason == refused)),
        "the refusal is reported"
    );
    three.shutdown();
}
