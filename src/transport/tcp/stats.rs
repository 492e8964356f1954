//! Counters of what the transport did and dropped, and the optional event
//! hook that reports each connection event as it happens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::handshake::Refusal;
use crate::framing::FrameError;
use crate::types::NodeId;

/// What a [`TcpTransport`](super::TcpTransport) or a
/// [`TcpGroupTransport`](super::TcpGroupTransport) did since it started. Every
/// dropped message and every refused or reset connection is counted here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpStats {
    /// Messages (envelopes, on a batch connection) written to a socket.
    pub messages_sent: u64,
    /// Messages (envelopes) received, decoded and queued for the node.
    pub messages_received: u64,
    /// Bytes written (frames and their length prefixes, keepalives).
    pub bytes_sent: u64,
    /// Frame bytes read after handshakes (length prefixes included).
    pub bytes_received: u64,
    /// Messages dropped because the peer's outbound queue was full.
    pub dropped_queue_full: u64,
    /// Messages dropped because the peer could not be reached (discarded
    /// when a connection attempt failed or a connection broke).
    pub dropped_unreachable: u64,
    /// Messages dropped because no address is known for their destination.
    pub dropped_unknown_peer: u64,
    /// Outbound messages dropped because their frame exceeds
    /// `max_frame_bytes` (the peer would refuse them).
    pub dropped_oversized: u64,
    /// Inbound messages dropped because the node's inbox was full. The
    /// inbox is shared fairly across groups like an outbound queue: those
    /// refused (of a group over its share) and those evicted to make room
    /// for a group within its share (after being counted received).
    pub dropped_inbox_full: u64,
    /// Queued items dropped to make room, when a peer's queue was full, for
    /// an item of a class within its fair share: the newest items of a
    /// class (group) over its share (`TcpGroupTransport`; see
    /// `docs/PROTOCOL.md`, "Batch connections").
    pub dropped_over_share: u64,
    /// Items refused because no peer would accept them (an envelope not
    /// from this node to its peer, or of group 0): a bug of the sender,
    /// never sent.
    pub dropped_invalid: u64,
    /// Frames written (a keepalive is not a frame). On a batch connection,
    /// fewer than `messages_sent` unless the receiver's limits forced
    /// splitting.
    pub frames_sent: u64,
    /// Inbound frames of the other kind than the connection's (a
    /// single-message frame on a batch connection, or a batch frame on a
    /// message connection): dropped, and counted in `decode_errors` too.
    pub wrong_kind_frames: u64,
    /// Inbound frames that failed to decode (dropped; the connection stays).
    pub decode_errors: u64,
    /// Inbound messages (envelopes) whose `from` or `to` did not match the
    /// handshake (dropped). Envelopes for a group this node does not host
    /// are not counted here: the transport delivers them, and
    /// [`MultiNode::receive`](crate::multi::MultiNode::receive) drops and
    /// counts them (`HostStats::unknown_group_dropped`).
    pub misaddressed: u64,
    /// Outbound connections established (handshake accepted).
    pub connects: u64,
    /// Of those, connections established after an earlier one to the same
    /// peer failed or broke.
    pub reconnects: u64,
    /// Outbound connection attempts (dials) that failed (connect, I/O or
    /// refusal): at every address of the peer, when its name gives several
    /// (an address that fails before one that works is no failed dial).
    pub connect_failures: u64,
    /// Of those, attempts whose peer's host name could not be looked up
    /// (the resolver failed or gave no address; [`PeerAddr`](super::PeerAddr)).
    pub resolve_failures: u64,
    /// Inbound connections refused at the handshake (wrong magic, version,
    /// cluster id or node id, unknown peer; with TLS, a failed TLS handshake
    /// or a certificate that does not match the hello).
    pub handshake_refusals: u64,
    /// Outbound handshakes the peer refused (at each address of a name
    /// that refuses).
    pub handshakes_rejected: u64,
    /// Inbound connections refused because `max_connections` were open.
    pub connections_over_limit: u64,
    /// Inbound connections closed at once because `max_pending_handshakes`
    /// connections were still in their handshake.
    pub handshakes_over_limit: u64,
    /// New peers refused because the transport had `max_peers` peers: one
    /// added by hand (`add_peer` returned `TooManyPeers`), or a member of a
    /// configuration it learned (not dialed; counted each time a
    /// configuration naming it is learned). Such a member waits for room:
    /// it is added when a peer is removed, which counts nothing.
    pub peers_over_limit: u64,
    /// Connections, inbound or outbound, whose TLS handshake failed (feature
    /// `tls`): no certificate, an untrusted or expired one, or no TLS at
    /// all. Inbound ones count in `handshake_refusals` too, outbound ones
    /// in `connect_failures` when no address of the peer's was reached (and
    /// in `handshakes_rejected` when the peer refused our certificate),
    /// each address of a name counted on its own.
    pub tls_failures: u64,
    /// Connections, inbound or outbound, refused because the peer's
    /// certificate did not name the node it claimed or was dialed as, in
    /// this cluster (feature `tls`). Inbound ones count in
    /// `handshake_refusals` too, outbound ones in `connect_failures` when
    /// no address of the peer's was reached (each address of a name that
    /// refuses is counted here on its own).
    pub identity_refusals: u64,
    /// Open connections, inbound or outbound, closed because TLS material
    /// put in force revokes the certificate their peer presented when they
    /// opened (feature `tls`; see `TlsConfig::with_crl_files`).
    pub revoked_connections: u64,
    /// Inbound connections closed on an oversized length prefix, an idle
    /// timeout (half-open peer) or an I/O error.
    pub inbound_resets: u64,
    /// Outbound connections closed on a write error or write timeout (a peer
    /// that does not read).
    pub outbound_resets: u64,
    /// Backoff waits begun before redialling a peer (after a failed
    /// connection attempt or a broken connection), counted as each begins.
    pub backoff_waits: u64,
    /// The delays of those waits, summed, in milliseconds: what the writers
    /// chose to wait, whether or not a wait was cut short by the peer's
    /// removal or a shutdown.
    pub backoff_wait_ms: u64,
}

/// Something that happened to a connection, reported to the hook set with
/// [`TcpConfig::on_event`](super::TcpConfig::on_event) (for logging).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// An outbound connection to `peer` was established.
    Connected {
        /// The peer.
        peer: NodeId,
        /// The address reached (for a peer addressed by name, the one of
        /// its addresses that accepted).
        addr: SocketAddr,
    },
    /// An outbound connection attempt failed (before or during the
    /// handshake); the transport retries after a backoff.
    ConnectFailed {
        /// The peer.
        peer: NodeId,
        /// The I/O error, as text.
        error: String,
    },
    /// The peer refused our handshake (at one of its addresses: the next,
    /// if its name has one, is tried at once).
    Rejected {
        /// The peer.
        peer: NodeId,
        /// Why, as reported by the peer.
        reason: Refusal,
    },
    /// We refused the peer we dialed: its TLS handshake or its
    /// certificate's identity failed our checks (feature `tls`); the
    /// transport tries the next address of the peer's name, if it has one,
    /// else retries after a backoff.
    Untrusted {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: Refusal,
    },
    /// An open connection with `peer` was closed because TLS material put
    /// in force revokes the certificate the peer presented (feature
    /// `tls`).
    Revoked {
        /// The peer.
        peer: NodeId,
        /// Whether the peer had dialed us (else we had dialed it).
        inbound: bool,
    },
    /// An outbound connection broke (write error or timeout).
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// The I/O error, as text.
        error: String,
    },
    /// An inbound connection from `peer` passed the handshake.
    Accepted {
        /// The peer.
        peer: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// An inbound connection was refused at the handshake.
    Refused {
        /// The remote address.
        addr: SocketAddr,
        /// Why.
        reason: Refusal,
    },
    /// A new peer was refused: the transport already had
    /// [`TcpConfig::max_peers`](super::TcpConfig::max_peers) peers. It is
    /// not dialed, and may not connect. A member of a configuration waits
    /// for room: it is added (and dialed) as soon as a peer is removed,
    /// with no further event.
    PeerOverLimit {
        /// The peer refused.
        peer: NodeId,
        /// The bound in force.
        max_peers: usize,
    },
    /// An inbound frame from `peer` failed to decode and was dropped.
    DecodeError {
        /// The peer.
        peer: NodeId,
        /// The decoder's error.
        error: FrameError,
    },
    /// An inbound connection was closed: the peer closed it, went silent
    /// past the idle timeout, sent an oversized length prefix, or failed.
    InboundClosed {
        /// The peer.
        peer: NodeId,
        /// Why, as text.
        reason: String,
    },
}

/// The event hook.
pub(crate) type Hook = Arc<dyn Fn(&NetEvent) + Send + Sync>;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_unreachable: AtomicU64,
    pub(crate) dropped_unknown_peer: AtomicU64,
    pub(crate) dropped_oversized: AtomicU64,
    pub(crate) dropped_inbox_full: AtomicU64,
    pub(crate) dropped_over_share: AtomicU64,
    pub(crate) dropped_invalid: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) wrong_kind_frames: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) misaddressed: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) resolve_failures: AtomicU64,
    pub(crate) handshake_refusals: AtomicU64,
    pub(crate) handshakes_rejected: AtomicU64,
    pub(crate) connections_over_limit: AtomicU64,
    pub(crate) handshakes_over_limit: AtomicU64,
    pub(crate) peers_over_limit: AtomicU64,
    pub(crate) tls_failures: AtomicU64,
    pub(crate) identity_refusals: AtomicU64,
    pub(crate) revoked_connections: AtomicU64,
    pub(crate) inbound_resets: AtomicU64,
    pub(crate) outbound_resets: AtomicU64,
    pub(crate) backoff_waits: AtomicU64,
    pub(crate) backoff_wait_ms: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TcpStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        TcpStats {
            messages_sent: g(&self.messages_sent),
            messages_received: g(&self.messages_received),
            bytes_sent: g(&self.bytes_sent),
            bytes_received: g(&self.bytes_received),
            dropped_queue_full: g(&self.dropped_queue_full),
            dropped_unreachable: g(&self.dropped_unreachable),
            dropped_unknown_peer: g(&self.dropped_unknown_peer),
            dropped_oversized: g(&self.dropped_oversized),
            dropped_inbox_full: g(&self.dropped_inbox_full),
            dropped_over_share: g(&self.dropped_over_share),
            dropped_invalid: g(&self.dropped_invalid),
            frames_sent: g(&self.frames_sent),
            wrong_kind_frames: g(&self.wrong_kind_frames),
            decode_errors: g(&self.decode_errors),
            misaddressed: g(&self.misaddressed),
            connects: g(&self.connects),
            reconnects: g(&self.reconnects),
            connect_failures: g(&self.connect_failures),
            resolve_failures: g(&self.resolve_failures),
            handshake_refusals: g(&self.handshake_refusals),
            handshakes_rejected: g(&self.handshakes_rejected),
            connections_over_limit: g(&self.connections_over_limit),
            handshakes_over_limit: g(&self.handshakes_over_limit),
            peers_over_limit: g(&self.peers_over_limit),
            tls_failures: g(&self.tls_failures),
            identity_refusals: g(&self.identity_refusals),
            revoked_connections: g(&self.revoked_connections),
            inbound_resets: g(&self.inbound_resets),
            outbound_resets: g(&self.outbound_resets),
            backoff_waits: g(&self.backoff_waits),
            backoff_wait_ms: g(&self.backoff_wait_ms),
        }
    }
}
