//! [`TcpConfig`]: the transport's node, listen address, peers, bounds,
//! timeouts, TLS material and event hook.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::NetEvent;
use super::addr::{PeerAddr, Resolve, SystemResolver};
use super::stats::Hook;
#[cfg(feature = "tls")]
use super::tls;
#[cfg(doc)]
use super::{TcpStats, TcpTransport};
use crate::framing::DecodeLimits;
use crate::types::NodeId;

/// Configuration of a [`TcpTransport`] or a
/// [`TcpGroupTransport`](super::TcpGroupTransport): this node, where it listens, its
/// peers' addresses, and the bounds and timeouts.
#[derive(Clone)]
pub struct TcpConfig {
    pub(super) id: NodeId,
    pub(super) cluster_id: u64,
    pub(super) listen: SocketAddr,
    pub(super) peers: BTreeMap<NodeId, PeerAddr>,
    pub(super) resolver: Arc<dyn Resolve>,
    /// `None`: the default of the kind of connection
    /// ([`Carrier::QUEUE_CAPACITY`](super::carrier::Carrier::QUEUE_CAPACITY)).
    pub(super) queue_capacity: Option<usize>,
    pub(super) queue_bytes: usize,
    /// `None`: the default of the kind of connection.
    pub(super) inbox_capacity: Option<usize>,
    pub(super) inbox_bytes: usize,
    pub(super) limits: DecodeLimits,
    pub(super) connect_timeout: Duration,
    pub(super) handshake_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) keepalive_interval: Duration,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
    pub(super) departed_grace: Duration,
    pub(super) max_connections: usize,
    pub(super) max_pending_handshakes: usize,
    /// `None`: as many as [`max_connections`](Self::max_connections).
    pub(super) max_peers: Option<usize>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<tls::TlsConfig>,
    pub(super) hook: Option<Hook>,
}

impl std::fmt::Debug for TcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConfig")
            .field("id", &self.id)
            .field("cluster_id", &self.cluster_id)
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_bytes", &self.queue_bytes)
            .field("limits", &self.limits)
            .field("max_peers", &self.peer_limit())
            .field("tls", &self.tls_identity())
            .finish_non_exhaustive()
    }
}

impl TcpConfig {
    /// Node `id` listening on `listen` (port 0 picks a free port; see
    /// [`TcpTransport::local_addr`]). Cluster id 0 and no peers until set.
    ///
    /// Defaults: queues of 1024 messages and 16 MiB per peer, an inbox of
    /// 8192 messages and 64 MiB (for a
    /// [`TcpGroupTransport`](super::TcpGroupTransport), which carries every
    /// group: queues of 65 536 envelopes and an inbox of 131 072, so a turn
    /// in which thousands of groups each send a message or two fits; the
    /// byte budgets are the same), [`DecodeLimits::default`], connect timeout 1 s,
    /// handshake timeout 2 s, write timeout 2 s, idle timeout 10 s with a
    /// keepalive every second, reconnect backoff from 20 ms doubling to 1 s,
    /// a peer that left the configuration kept 10 s,
    /// 64 inbound connections of which at most 16 in their handshake,
    /// as many peers as inbound connections (64), plaintext (no TLS).
    pub fn new(id: NodeId, listen: SocketAddr) -> Self {
        Self {
            id,
            cluster_id: 0,
            listen,
            peers: BTreeMap::new(),
            resolver: Arc::new(SystemResolver),
            queue_capacity: None,
            queue_bytes: 16 << 20,
            inbox_capacity: None,
            inbox_bytes: 64 << 20,
            limits: DecodeLimits::default(),
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            departed_grace: Duration::from_secs(10),
            max_connections: 64,
            max_pending_handshakes: 16,
            max_peers: None,
            #[cfg(feature = "tls")]
            tls: None,
            hook: None,
        }
    }

    /// The cluster id checked at every handshake (use the one in
    /// [`RaftConfig::cluster_id`](crate::RaftConfig::cluster_id)).
    pub fn cluster_id(mut self, cluster_id: u64) -> Self {
        self.cluster_id = cluster_id;
        self
    }

    /// A peer and its address (adds or replaces): a [`SocketAddr`] or a
    /// [`PeerAddr`] (a host name, looked up at every dial with the
    /// [`resolver`](Self::resolver)). Only configured peers may connect;
    /// this node's own id is ignored.
    pub fn peer(mut self, id: NodeId, addr: impl Into<PeerAddr>) -> Self {
        self.peers.insert(id, addr.into());
        self
    }

    /// How peers addressed by host name are looked up, at every dial
    /// (default: [`SystemResolver`], the system's `getaddrinfo`). See
    /// [`Resolve`]: for a lookup with a timeout of its own, a cache, or a
    /// service registry.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Most messages queued for one peer; more are dropped and counted. For
    /// a [`TcpGroupTransport`](super::TcpGroupTransport), envelopes, the
    /// budget shared fairly across groups (as is
    /// [`queue_bytes`](Self::queue_bytes)).
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = Some(messages.max(1));
        self
    }

    /// Most bytes (encoded frames) queued for one peer; more are dropped.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1);
        self
    }

    /// Most received messages waiting for the node; more are dropped.
    pub fn inbox_capacity(mut self, messages: usize) -> Self {
        self.inbox_capacity = Some(messages.max(1));
        self
    }

    /// Most bytes (of received frames) waiting for the node; more are
    /// dropped. A single frame is always accepted into an empty inbox.
    pub fn inbox_bytes(mut self, bytes: usize) -> Self {
        self.inbox_bytes = bytes.max(1);
        self
    }

    /// Decode limits for inbound frames; `max_frame_bytes` also caps the
    /// frames this node sends (bigger ones are dropped and counted, as the
    /// peer would refuse them).
    pub fn limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Time allowed to establish a TCP connection (default 1 s). A
    /// [`shutdown`](super::TcpTransport::shutdown) or a removal of the peer
    /// ends a connect under way at once, whatever this is. (Every duration
    /// setter clamps its value to between 1 ms and one day.)
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = nonzero(timeout);
        self
    }

    /// Time allowed for the handshake, each way.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = nonzero(timeout);
        self
    }

    /// A write blocked longer than this (a peer that does not read) resets
    /// the connection.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = nonzero(timeout);
        self
    }

    /// An inbound connection silent for this long (no frame, no keepalive)
    /// is reset: it is half-open. Keep it several keepalive intervals long.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = nonzero(timeout);
        self
    }

    /// An idle outbound connection sends a keepalive this often.
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = nonzero(interval);
        self
    }

    /// Reconnect backoff: the first delay, doubled after each failure up to
    /// `max`. A connection that breaks counts as a failure unless it stayed
    /// up for at least `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = nonzero(initial);
        self.backoff_max = nonzero(max);
        self
    }

    /// How long a peer learned from the configuration is kept after it left
    /// it (default 10 s; zero: dropped at once): it is still dialed and its
    /// connections still accepted, so that when the removed node, which
    /// usually never hears of its removal, asks for votes, the members can
    /// answer with a removal notice and it stops campaigning
    /// (docs/PROTOCOL.md §7.2). A removed node campaigns within an election
    /// timeout; keep the grace above that. Peers removed by hand
    /// ([`TcpTransport::remove_peer`]) go at once.
    pub fn departed_grace(mut self, grace: Duration) -> Self {
        // Zero is allowed here (dropped at once); above, one day as for
        // every other duration.
        self.departed_grace = grace.min(LONGEST);
        self
    }

    /// Most inbound connections open at once (including ones still in their
    /// handshake); more are closed at once and counted.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Most inbound connections still in their handshake at once; more are
    /// closed at once and counted
    /// ([`TcpStats::handshakes_over_limit`]). Keep it below
    /// [`max_connections`](Self::max_connections): connections that never
    /// finish their handshake (each cut off after
    /// [`handshake_timeout`](Self::handshake_timeout)) then cannot take the
    /// slots of established peers.
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.max_pending_handshakes = n.max(1);
        self
    }

    /// Most peers at once (default: [`max_connections`](Self::max_connections),
    /// 64; at least 1): each has a writer thread and an outbound queue of
    /// its own, and each takes one of this node's inbound connections, so
    /// a peer past `max_connections` could not reach this node anyway.
    /// Peers given here ([`peer`](Self::peer)) count, and so do those
    /// added later by hand or learned from a configuration, including a
    /// departed one kept for [`departed_grace`](Self::departed_grace).
    /// Past the bound a new peer is refused, counted
    /// ([`TcpStats::peers_over_limit`]) and reported
    /// ([`NetEvent::PeerOverLimit`]): [`TcpTransport::bind`] and
    /// [`TcpTransport::add_peer`] fail with [`TooManyPeers`], and a member
    /// of a configuration is not dialed (so a configuration naming
    /// thousands of members with addresses cannot make the node start
    /// thousands of threads) until a peer is removed: then the members
    /// waiting take the room, lowest id first
    /// ([`TcpTransport::learn_peers`]). A peer already known may always change its
    /// address. Keep it above the cluster's size, with room for the
    /// members a change brings in while those it removes are kept.
    pub fn max_peers(mut self, n: usize) -> Self {
        self.max_peers = Some(n.max(1));
        self
    }

    /// The bound [`max_peers`](Self::max_peers) sets, or its default.
    pub(super) fn peer_limit(&self) -> usize {
        self.max_peers.unwrap_or(self.max_connections)
    }

    /// Runs every connection over mutually authenticated TLS with this
    /// material (feature `tls`; see [`tls`]). The certificate must name this
    /// node and cluster ([`tls::NodeIdentity`]), or
    /// [`TcpTransport::bind`] refuses it. Without this call the transport
    /// is plaintext: see the [module docs](super) for what that does not
    /// protect against.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    #[cfg(feature = "tls")]
    pub(super) fn tls_identity(&self) -> Option<tls::NodeIdentity> {
        self.tls.as_ref().map(tls::TlsConfig::identity)
    }

    #[cfg(not(feature = "tls"))]
    pub(super) fn tls_identity(&self) -> Option<()> {
        None
    }

    /// Calls `hook` for every connection event (connected, refused, decode
    /// error, ...), from the transport's threads. Keep it short; use it to
    /// log. It must not block, and must not call back into the transport or
    /// a runtime driving it (`RaftHandle::shutdown` from a hook would wait
    /// for the very thread running the hook): hand work to another thread.
    pub fn on_event(mut self, hook: impl Fn(&NetEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }
}

/// A new peer refused because the transport already has
/// [`TcpConfig::max_peers`] peers: the error [`TcpTransport::bind`] and
/// [`TcpTransport::add_peer`] return (inside an [`io::Error`](std::io::Error)
/// of kind [`InvalidInput`](std::io::ErrorKind::InvalidInput); see
/// [`TooManyPeers::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} refused: the transport already has its {max_peers} peers (TcpConfig::max_peers)")]
pub struct TooManyPeers {
    /// The peer refused.
    pub peer: NodeId,
    /// The bound in force.
    pub max_peers: usize,
}

impl TooManyPeers {
    /// The refusal `error` carries, if it is one.
    pub fn of(error: &std::io::Error) -> Option<&TooManyPeers> {
        error.get_ref().and_then(|e| e.downcast_ref())
    }
}

impl From<TooManyPeers> for std::io::Error {
    fn from(e: TooManyPeers) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// The longest duration a setter takes: no deadline computed from it can
/// overflow `Instant`.
const LONGEST: Duration = Duration::from_secs(86_400);

/// Clamps a configured duration to [1 ms, [`LONGEST`]].
pub(super) fn nonzero(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), LONGEST)
}
