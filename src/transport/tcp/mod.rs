//! [`TcpTransport`]: [`Message`]s over TCP with `std::net` and threads, no
//! async runtime (feature `net`); and [`TcpGroupTransport`]: the
//! [`Envelope`](crate::multi::Envelope)s of every group two
//! [`MultiNode`](crate::multi::MultiNode) hosts share, over one connection
//! per peer in batch frames, with a send budget shared fairly across groups.
//! Both are one mechanism (what follows holds for both), generic over what
//! a connection carries; the hello names it, and a transport refuses a
//! connection of the other kind ([`Refusal::WrongKind`]).
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
//! * A peer is addressed by a socket address or by a host name
//!   ([`PeerAddr`]); a name is looked up again at every dial, with the
//!   [`Resolve`] of [`TcpConfig::resolver`], so a peer back at another IP
//!   address under its name is reached there. The addresses a name gives
//!   are tried in order, each through the whole handshake (TLS and the
//!   certificate's identity included), until one works: an address that
//!   refuses, closes the connection or answers as another node does not
//!   hold the dial back.
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
//! With feature `tls`, `TcpConfig::tls` runs every connection over
//! mutually authenticated TLS 1.3, each certificate naming its node and
//! cluster, checked against the handshake before any message is read: see
//! the `tls` module and `SECURITY.md` (the threat model: what TLS protects against,
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
//! inbound connections are open at once, and at most
//! [`TcpConfig::max_peers`] peers (a writer thread each) are known, however
//! many members a configuration names.
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

mod addr;
mod backoff;
mod batches;
mod carrier;
mod config;
mod fair;
#[cfg(feature = "tracing")]
mod floods;
mod frame;
mod group;
mod handle;
mod handshake;
mod learn;
mod link;
mod reader;
mod shared;
mod stats;
#[cfg(feature = "tls")]
pub mod tls;
mod writer;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use addr::{AddrError, PeerAddr, Resolve, SystemResolver};
pub use config::{TcpConfig, TooManyPeers};
pub use group::TcpGroupTransport;
pub use handle::TcpHandle;
pub use handshake::Refusal;
pub use learn::{address_bytes, address_of};
pub use stats::{NetEvent, TcpStats};

use self::carrier::Messages;
use self::shared::Shared;
use super::{RaftTransport, TransportError};
use crate::message::Message;
use crate::types::NodeId;

pub(crate) use crate::sync::lock;

/// Raft messages over TCP. See the [module docs](self).
///
/// Dropping the transport shuts it down (as [`shutdown`](Self::shutdown)).
pub struct TcpTransport {
    shared: Arc<Shared<Messages>>,
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
    /// Node id 0, or more peers configured than
    /// [`TcpConfig::max_peers`] ([`io::ErrorKind::InvalidInput`], wrapping
    /// a [`TooManyPeers`]), or (feature `tls`) a certificate that does not name this
    /// node and cluster ([`io::ErrorKind::InvalidInput`], wrapping the
    /// `tls::TlsConfigError`), or the listener could not be bound, or a
    /// thread could not be spawned.
    pub fn bind(config: TcpConfig) -> io::Result<Self> {
        Ok(TcpTransport { shared: Shared::bind(config)? })
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
        TcpHandle::new(Arc::clone(&self.shared))
    }

    /// Adds a peer (or changes its address; the next connection uses it).
    /// `addr` is a [`SocketAddr`] or a [`PeerAddr`] (a host name is looked
    /// up at every dial).
    ///
    /// # Errors
    ///
    /// A new peer when the transport already has [`TcpConfig::max_peers`]
    /// peers ([`io::ErrorKind::InvalidInput`], wrapping a [`TooManyPeers`];
    /// see [`TooManyPeers::of`]; counted in
    /// [`TcpStats::peers_over_limit`]), or the peer's writer thread could
    /// not be spawned (the peer is not added).
    pub fn add_peer(&self, id: NodeId, addr: impl Into<PeerAddr>) -> std::io::Result<()> {
        self.shared.add_peer(id, addr.into())
    }

    /// Removes a peer: its queue is dropped, its connections are closed,
    /// and it may no longer connect. Members of a configuration refused at
    /// [`TcpConfig::max_peers`] take the room it leaves at once, lowest id
    /// first (see [`learn_peers`](Self::learn_peers)).
    pub fn remove_peer(&self, id: NodeId) {
        self.shared.remove_peer(id);
    }

    /// Replaces the TLS material (feature `tls`): connections opened from
    /// now on, both ways, present the new certificate and check peers
    /// against the new trust set; connections already open keep the
    /// material they were opened with until they end, except those whose
    /// peer's certificate the new material's revocation lists revoke: they
    /// are closed at once (`TcpStats::revoked_connections`,
    /// [`NetEvent::Revoked`]), as long as this material stays in force: a
    /// rotation made meanwhile (by hand while a
    /// [`TlsReloader`](tls::TlsReloader) rotates, say) closes what its own
    /// lists revoke, and nothing more is closed for this one. To move to a new CA
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
        self.shared.set_waker(Arc::new(waker));
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
        self.shared.send(message)
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.shared.try_recv()
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}
