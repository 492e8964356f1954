//! [`TcpTransport`]: [`Message`]s over TCP with `std::net` and threads, no
//! async runtime (feature `net`).
//!
//! # Shape
//!
//! * A **listener** thread accepts peers. Each accepted connection gets a
//!   reader thread: it checks the handshake (cluster id, the node id it
//!   dialed, a configured peer), then reads length-prefixed frames, decodes
//!   them within [`DecodeLimits`](crate::framing::DecodeLimits) and queues them for the node.
//! * **One outbound connection per peer**, each with a writer thread fed by
//!   a bounded queue ([`TcpConfig::queue_capacity`] messages and
//!   [`TcpConfig::queue_bytes`] bytes). When the queue is full the message
//!   is dropped and counted: Raft retransmits what matters, and a peer that
//!   never reads cannot grow our memory. A failed or broken connection is
//!   retried with capped exponential backoff; what was queued for an
//!   unreachable peer is dropped (and counted) rather than delivered stale.
//! * Each direction of a pair of nodes uses its own connection: a node
//!   writes only on connections it dialed and reads only on ones it
//!   accepted.
//!
//! The byte layout (handshake, length prefix, keepalive) is normative in
//! `docs/PROTOCOL.md`, "TCP transport".
//!
//! # Security: plaintext or mutual TLS
//!
//! By default the transport is **plaintext, and authenticates nothing**.
//! The handshake's cluster id and node ids are numbers anyone can send:
//! whoever can reach a node's port can claim to be any configured peer and
//! then send any message (an AppendEntries in a higher term with commands
//! of their choosing, which followers accept and apply), and whoever is on
//! the path can read and change every message (the frame checksum catches
//! accidents, not an attacker). Use plaintext for tests, one machine, or a
//! network where every host is trusted.
//!
//! With feature `tls`, [`TcpConfig::tls`] runs every connection over
//! mutually authenticated TLS 1.3, each certificate naming its node and
//! cluster, checked against the handshake before any message is read: see
//! [`tls`] and `SECURITY.md` (the threat model: what TLS protects against,
//! and what it does not).
//!
//! # Bad input
//!
//! Nothing a peer sends can panic the process or block it forever: a wrong
//! magic, version, cluster id or node id closes the connection at the
//! handshake ([`TcpStats::handshake_refusals`]); at most
//! [`TcpConfig::max_pending_handshakes`] connections may be in their
//! handshake at once, each for at most [`TcpConfig::handshake_timeout`]; a
//! length prefix above
//! [`DecodeLimits::max_frame_bytes`](crate::framing::DecodeLimits::max_frame_bytes) resets the connection before anything
//! is allocated for it; a frame that fails to decode is dropped
//! ([`TcpStats::decode_errors`]) and the connection stays (its framing is
//! intact); a peer silent past [`TcpConfig::idle_timeout`] (a half-open
//! connection) is reset, as is an outbound connection whose writes stall past
//! [`TcpConfig::write_timeout`]. At most [`TcpConfig::max_connections`]
//! inbound connections are open at once.
//!
//! # Example
//!
//! ```
//! use raft_io::transport::{TcpConfig, TcpTransport};
//! use raft_io::{Message, MessageBody, RaftTransport};
//!
//! # fn main() -> std::io::Result<()> {
//! let loopback = "127.0.0.1:0".parse().unwrap();
//! let two = TcpTransport::bind(TcpConfig::new(2, loopback).cluster_id(7))?;
//! let mut one = TcpTransport::bind(TcpConfig::new(1, loopback).cluster_id(7).peer(2, two.local_addr()))?;
//! two.add_peer(1, one.local_addr())?;
//!
//! one.send(Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow }).unwrap();
//! let mut two = two;
//! let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
//! let received = loop {
//!     if let Some(m) = two.try_recv() {
//!         break m;
//!     }
//!     assert!(std::time::Instant::now() < deadline);
//!     std::thread::sleep(std::time::Duration::from_millis(1));
//! };
//! assert_eq!(received.from, 1);
//! assert_eq!(one.stats().connects, 1);
//! # Ok(())
//! # }
//! ```

mod backoff;
mod config;
mod frame;
mod handshake;
mod learn;
mod link;
mod reader;
mod stats;
#[cfg(feature = "tls")]
pub mod tls;
mod writer;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use config::TcpConfig;
pub use handshake::Refusal;
pub use learn::{address_bytes, address_of};
pub use stats::{NetEvent, TcpStats};

use self::stats::{Counters, add};
use self::writer::{Peer, Push};
use super::{RaftTransport, TransportError};
use crate::message::Message;
use crate::types::NodeId;

pub(crate) use crate::sync::lock;

type Waker = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct InboxQueue {
    messages: VecDeque<(Message, usize)>,
    bytes: usize,
}

/// Received messages (with their frame sizes) waiting for the node.
struct Inbox {
    queue: Mutex<InboxQueue>,
    capacity: usize,
    max_bytes: usize,
    waker: Mutex<Option<Waker>>,
}

/// Inbound connections, for replacing a peer's older connection and for
/// closing them all at shutdown.
#[derive(Default)]
struct Conns {
    next: u64,
    /// Of `open`, how many are still in their handshake.
    handshaking: usize,
    open: HashMap<u64, TcpStream>,
    by_peer: HashMap<NodeId, u64>,
}

/// State shared by the transport, its handles and its threads.
struct Shared {
    cfg: TcpConfig,
    local_addr: SocketAddr,
    peers: Mutex<BTreeMap<NodeId, Arc<Peer>>>,
    inbox: Inbox,
    conns: Mutex<Conns>,
    counters: Counters,
    #[cfg(feature = "tls")]
    tls: Option<tls::TlsState>,
    shutdown: AtomicBool,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Peers learned from configurations (`learn.rs`).
    learned: Mutex<learn::Learned>,
}

impl Shared {
    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Reports a connection event to the hook, and (feature `tracing`) as a
    /// `tracing` event: connects, accepts and closes at `info`, failures
    /// and refusals at `warn`, each with the node and cluster ids.
    fn event(&self, event: impl FnOnce() -> NetEvent) {
        #[cfg(feature = "tracing")]
        let event = {
            let e = event();
            let (id, cluster) = (self.cfg.id, self.cfg.cluster_id);
            match &e {
                NetEvent::Connected { .. } | NetEvent::Accepted { .. } | NetEvent::InboundClosed { .. } => {
                    tracing::info!(node = id, cluster, event = ?e, "transport connection")
                }
                _ => tracing::warn!(node = id, cluster, event = ?e, "transport connection trouble"),
            }
            move || e
        };
        if let Some(hook) = &self.cfg.hook {
            hook(&event());
        }
    }

    #[cfg(feature = "tls")]
    fn rotate_tls(&self, material: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        self.tls.as_ref().ok_or(tls::TlsConfigError::NotTls)?.rotate(material)
    }

    fn is_peer(&self, id: NodeId) -> bool {
        lock(&self.peers).contains_key(&id)
    }

    fn spawn(&self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = std::thread::Builder::new().name(name).spawn(f)?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        Ok(())
    }

    fn deliver(&self, message: Message, size: usize) {
        {
            let mut q = lock(&self.inbox.queue);
            let over_bytes = !q.messages.is_empty() && q.bytes.saturating_add(size) > self.inbox.max_bytes;
            if q.messages.len() >= self.inbox.capacity || over_bytes {
                add(&self.counters.dropped_inbox_full, 1);
                return;
            }
            q.bytes += size;
            q.messages.push_back((message, size));
        }
        add(&self.counters.messages_received, 1);
        if let Some(waker) = lock(&self.inbox.waker).as_ref() {
            waker();
        }
    }

    fn add_peer(self: &Arc<Self>, id: NodeId, addr: SocketAddr) -> std::io::Result<()> {
        if id == self.cfg.id || id == 0 || self.is_shutdown() {
            return Ok(());
        }
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(&id) {
            peer.set_addr(addr);
            return Ok(());
        }
        let peer = Arc::new(Peer::new(id, addr));
        let (shared, p) = (Arc::clone(self), Arc::clone(&peer));
        self.spawn(format!("raft-io-tcp-{}-to-{id}", self.cfg.id), move || writer::run(shared, p))?;
        peers.insert(id, peer);
        Ok(())
    }

    fn remove_peer(&self, id: NodeId) {
        if let Some(peer) = lock(&self.peers).remove(&id) {
            peer.close();
        }
        let conns = lock(&self.conns);
        if let Some(stream) = conns.by_peer.get(&id).and_then(|c| conns.open.get(c)) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn shutdown(&self) {
        if self.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        for peer in lock(&self.peers).values() {
            peer.close();
        }
        for stream in lock(&self.conns).open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let me = std::thread::current().id();
        if let Some(acceptor) = lock(&self.acceptor).take() {
            if acceptor.thread().id() != me {
                let _ = acceptor.join();
            }
        }
        // Readers accepted before the acceptor stopped are in the list too;
        // close their streams again in case they registered meanwhile.
        for stream in lock(&self.conns).open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
        *lock(&self.inbox.waker) = None;
    }
}

/// Raft messages over TCP. See the [module docs](self).
///
/// Dropping the transport shuts it down (as [`shutdown`](Self::shutdown)).
pub struct TcpTransport {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("id", &self.shared.cfg.id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Binds the listener, starts the accept thread and one writer thread
    /// per configured peer (each dials its peer at once and keeps retrying).
    ///
    /// # Errors
    ///
    /// Node id 0, or (feature `tls`) a certificate that does not name this
    /// node and cluster ([`io::ErrorKind::InvalidInput`], wrapping the
    /// [`tls::TlsConfigError`]), or the listener could not be bound, or a
    /// thread could not be spawned.
    pub fn bind(config: TcpConfig) -> io::Result<Self> {
        if config.id == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "node id 0 is reserved"));
        }
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(material) => {
                let expected = tls::NodeIdentity::new(config.cluster_id, config.id);
                Some(
                    tls::TlsState::new(expected, material.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                )
            }
            None => None,
        };
        let listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let peers: Vec<(NodeId, SocketAddr)> = config.peers.iter().map(|(&id, &addr)| (id, addr)).collect();
        let shared = Arc::new(Shared {
            inbox: Inbox {
                queue: Mutex::new(InboxQueue::default()),
                capacity: config.inbox_capacity,
                max_bytes: config.inbox_bytes,
                waker: Mutex::new(None),
            },
            cfg: config,
            local_addr,
            peers: Mutex::new(BTreeMap::new()),
            conns: Mutex::new(Conns::default()),
            counters: Counters::default(),
            #[cfg(feature = "tls")]
            tls,
            shutdown: AtomicBool::new(false),
            acceptor: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            learned: Mutex::new(BTreeMap::new()),
        });
        let transport = TcpTransport { shared: Arc::clone(&shared) };
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("raft-io-tcp-{}-accept", shared.cfg.id))
                .spawn(move || reader::accept_loop(shared, listener))?
        };
        *lock(&shared.acceptor) = Some(acceptor);
        for (id, addr) in peers {
            shared.add_peer(id, addr)?;
        }
        Ok(transport)
    }

    /// The address the listener is bound to (with the port the OS chose
    /// when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.cfg.id
    }

    /// The cluster id the handshake checks.
    pub fn cluster_id(&self) -> u64 {
        self.shared.cfg.cluster_id
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        self.shared.counters.snapshot()
    }

    /// A handle for adding peers and reading counters from other threads
    /// (for example after the transport was moved into a runtime).
    pub fn handle(&self) -> TcpHandle {
        TcpHandle { shared: Arc::clone(&self.shared) }
    }

    /// Adds a peer (or changes its address; the next connection uses it).
    ///
    /// # Errors
    ///
    /// The peer's writer thread could not be spawned (the peer is not
    /// added).
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) -> std::io::Result<()> {
        self.shared.add_peer(id, addr)
    }

    /// Removes a peer: its queue is dropped, its connections are closed,
    /// and it may no longer connect.
    pub fn remove_peer(&self, id: NodeId) {
        self.shared.remove_peer(id);
    }

    /// Replaces the TLS material (feature `tls`): connections opened from
    /// now on, both ways, present the new certificate and check peers
    /// against the new trust set; connections already open keep the
    /// material they were opened with until they end. To move to a new CA
    /// without downtime, first give every node a trust set holding both
    /// CAs, then new certificates, then the new CA alone (`SECURITY.md`).
    ///
    /// # Errors
    ///
    /// [`tls::TlsConfigError::WrongIdentity`] if the certificate names
    /// another node or cluster, [`tls::TlsConfigError::NotTls`] if the
    /// transport was bound without TLS. The material in force is kept.
    #[cfg(feature = "tls")]
    pub fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        self.shared.rotate_tls(tls)
    }

    /// Calls `waker` (from a reader thread) every time a message is queued
    /// for [`try_recv`](RaftTransport::try_recv), so a driver can sleep
    /// until there is work. Replaces any earlier waker.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        *lock(&self.shared.inbox.waker) = Some(Arc::new(waker));
    }

    /// Stops every thread and closes every connection, then returns. Queued
    /// messages are dropped. Idempotent; later sends fail with
    /// [`TransportError::Closed`].
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}

impl RaftTransport for TcpTransport {
    fn send(&mut self, message: Message) -> Result<(), TransportError> {
        let shared = &self.shared;
        if shared.is_shutdown() {
            return Err(TransportError::Closed);
        }
        let to = message.to;
        let Some(peer) = lock(&shared.peers).get(&to).cloned() else {
            add(&shared.counters.dropped_unknown_peer, 1);
            return Err(TransportError::UnknownPeer(to));
        };
        match peer.push(message, &shared.cfg) {
            Push::Queued => Ok(()),
            Push::Oversized => {
                add(&shared.counters.dropped_oversized, 1);
                Ok(())
            }
            Push::Full => {
                add(&shared.counters.dropped_queue_full, 1);
                Err(TransportError::QueueFull(to))
            }
            Push::Closed => Err(TransportError::Closed),
        }
    }

    fn try_recv(&mut self) -> Option<Message> {
        let mut q = lock(&self.shared.inbox.queue);
        let (message, size) = q.messages.pop_front()?;
        q.bytes -= size;
        Some(message)
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// A cloneable handle on a [`TcpTransport`]: counters and peers, from any
/// thread. It does not keep the transport running: once the transport is
/// dropped or shut down, the handle only reads final counters.
#[derive(Clone)]
pub struct TcpHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TcpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpHandle").field("id", &self.shared.cfg.id).finish_non_exhaustive()
    }
}

impl TcpHandle {
    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        self.shared.counters.snapshot()
    }

    /// The listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// See [`TcpTransport::add_peer`].
    ///
    /// # Errors
    ///
    /// The peer's writer thread could not be spawned.
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) -> std::io::Result<()> {
        self.shared.add_peer(id, addr)
    }

    /// See [`TcpTransport::rotate_tls`].
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::rotate_tls`].
    #[cfg(feature = "tls")]
    pub fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        self.shared.rotate_tls(tls)
    }

    /// See [`TcpTransport::remove_peer`].
    pub fn remove_peer(&self, id: NodeId) {
        self.shared.remove_peer(id);
    }

    /// The peers and the addresses they are dialed at, by id (those added
    /// by hand and those learned from configurations alike).
    pub fn peers(&self) -> Vec<(NodeId, SocketAddr)> {
        lock(&self.shared.peers).iter().map(|(&id, p)| (id, p.addr())).collect()
    }

    /// Messages queued for `peer` and not yet written (`None` for an unknown
    /// peer).
    pub fn queued(&self, peer: NodeId) -> Option<usize> {
        lock(&self.shared.peers).get(&peer).map(|p| p.queued())
    }
}
