//! [`TcpGroupTransport`]: the envelopes of every group two hosts share, over
//! one connection per peer (feature `net`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::batches::Batches;
use super::shared::Shared;
#[cfg(feature = "tls")]
use super::tls;
use super::{TcpConfig, TcpHandle, TcpStats};
use crate::multi::Envelope;
use crate::transport::TransportError;
use crate::types::NodeId;

/// The [`Envelope`]s of many Raft groups over TCP, for
/// [`MultiNode`](crate::multi::MultiNode) hosts: **one connection per
/// peer**, whatever the number of groups, carrying batch frames
/// ([`BATCH_FORMAT_VERSION`](crate::framing::BATCH_FORMAT_VERSION)).
///
/// It is the machinery of [`TcpTransport`](super::TcpTransport) — the same
/// [`TcpConfig`], listener, handshake, backoff, bounds, timeouts, TLS,
/// [`TcpStats`] and [`TcpHandle`] — with three differences
/// (`docs/PROTOCOL.md`, "Batch connections"):
///
/// * **The handshake says so.** Its hello names a batch connection (kind
///   1); a [`TcpTransport`](super::TcpTransport) refuses it, and this
///   transport refuses a message connection, with
///   [`Refusal::WrongKind`](super::Refusal::WrongKind) (counted on both
///   sides as any refusal).
/// * **One write, few frames.** Everything queued for a peer when its
///   writer wakes (up to 256 KiB, one item per group in turn) leaves in one
///   write, as one batch frame, or as several only when the receiver's
///   [`max_frame_bytes`](crate::framing::DecodeLimits::max_frame_bytes) or
///   [`max_batch_items`](crate::framing::DecodeLimits::max_batch_items)
///   demand it (this node's [`TcpConfig::limits`] are taken for the
///   receiver's). An envelope too large for any frame is dropped when sent
///   ([`TcpStats::dropped_oversized`]), never sent to be refused with
///   others.
/// * **A budget shared fairly across groups.** Each peer's queue
///   ([`TcpConfig::queue_capacity`] envelopes and [`TcpConfig::queue_bytes`]
///   bytes) is kept per group and drained round-robin; when it is full, an
///   envelope of a group within its fair share (the budget divided among the
///   groups with something queued) evicts the newest envelopes of a group
///   over its share ([`TcpStats::dropped_over_share`]), and an
///   envelope of a group over its share is refused
///   ([`TcpStats::dropped_queue_full`]). A group streaming snapshot chunks
///   cannot starve the heartbeats, appends, quiescence notices and pings of
///   the others. Pings are a class of their own.
///
/// Inbound, the inbox ([`TcpConfig::inbox_capacity`],
/// [`TcpConfig::inbox_bytes`]) is shared across groups by the same rule
/// (a burst of one group loses its own newest envelopes,
/// [`TcpStats::dropped_inbox_full`]) and [`try_recv`](Self::try_recv)
/// hands out one envelope per group in turn, each group's in order.
/// A batch frame is decoded whole within [`TcpConfig::limits`]; a
/// frame that fails (damaged bytes, a single-message frame) is dropped and
/// counted ([`TcpStats::decode_errors`], and
/// [`TcpStats::wrong_kind_frames`] for the latter) and the connection stays;
/// a frame not from the handshake's peer to this node is dropped
/// ([`TcpStats::misaddressed`], each envelope). Envelopes of a group this
/// node does not host are delivered: the transport does not know the
/// host's groups, and [`MultiNode::receive`](crate::multi::MultiNode::receive)
/// drops and counts them (`HostStats::unknown_group_dropped`).
///
/// Dropping the transport shuts it down (as [`shutdown`](Self::shutdown)).
///
/// # Example
///
/// ```
/// use raft_io::multi::{Envelope, EnvelopeBody};
/// use raft_io::transport::{TcpConfig, TcpGroupTransport};
/// use raft_io::{Message, MessageBody};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loopback = "127.0.0.1:0".parse()?;
/// let two = TcpGroupTransport::bind(TcpConfig::new(2, loopback).cluster_id(7))?;
/// let one = TcpGroupTransport::bind(TcpConfig::new(1, loopback).cluster_id(7).peer(2, two.local_addr()))?;
/// two.add_peer(1, one.local_addr())?;
///
/// // One host turn: messages of two groups and a ping, all for node 2.
/// let raft = |group| {
///     let message = Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow };
///     Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
/// };
/// one.send_batch(vec![raft(7), raft(9), Envelope { from: 1, to: 2, body: EnvelopeBody::Ping }])?;
///
/// let mut received = Vec::new();
/// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
/// while received.len() < 3 {
///     match two.try_recv() {
///         Some(envelope) => received.push(envelope), // for MultiNode::receive
///         None => {
///             assert!(std::time::Instant::now() < deadline);
///             std::thread::sleep(std::time::Duration::from_millis(1));
///         }
///     }
/// }
/// assert_eq!(received[0], raft(7));
/// assert_eq!(one.stats().connects, 1, "one connection, every group");
/// # Ok(())
/// # }
/// ```
pub struct TcpGroupTransport {
    pub(super) shared: Arc<Shared<Batches>>,
}

impl std::fmt::Debug for TcpGroupTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpGroupTransport")
            .field("id", &self.shared.cfg.id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpGroupTransport {
    /// Binds the listener, starts the accept thread and one writer thread
    /// per configured peer, as [`TcpTransport::bind`](super::TcpTransport::bind).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::bind`](super::TcpTransport::bind).
    pub fn bind(config: TcpConfig) -> io::Result<Self> {
        Ok(Self { shared: Shared::bind(config)? })
    }

    /// Queues `envelope` for node `envelope.to`. `Ok` does not promise
    /// delivery.
    ///
    /// # Errors
    ///
    /// [`TransportError::UnknownPeer`] (no address for `envelope.to`),
    /// [`TransportError::QueueFull`] (refused: its group is over its share
    /// of a full queue), [`TransportError::Invalid`] (not from this node,
    /// or of group 0), [`TransportError::Closed`]. Each is counted; none is
    /// fatal to a group, which treats the envelope as lost.
    pub fn send(&self, envelope: Envelope) -> Result<(), TransportError> {
        self.shared.send(envelope)
    }

    /// Queues every envelope of a host turn ([`HostAction::Send`](crate::multi::HostAction::Send)),
    /// whatever their peers: each peer's envelopes are queued together, so
    /// its writer, woken once, sends them in one write (one batch frame,
    /// unless the receiver's limits demand more). Every envelope is tried.
    ///
    /// # Errors
    ///
    /// The first error [`send`](Self::send) would have met; the envelopes
    /// concerned were dropped and counted, the others queued.
    pub fn send_batch(&self, envelopes: impl IntoIterator<Item = Envelope>) -> Result<(), TransportError> {
        self.shared.send_all(envelopes)
    }

    /// The next envelope received, without blocking; hand it to
    /// [`MultiNode::receive`](crate::multi::MultiNode::receive).
    pub fn try_recv(&self) -> Option<Envelope> {
        self.shared.try_recv()
    }

    /// Up to `max` envelopes received, appended to `out` without blocking
    /// (one lock for all of them; in the same fair order as
    /// [`try_recv`](Self::try_recv)); returns how many.
    pub fn try_recv_many(&self, out: &mut Vec<Envelope>, max: usize) -> usize {
        self.shared.try_recv_many(out, max)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.cfg.id
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        self.shared.counters.snapshot()
    }

    /// A handle for peers and counters from other threads.
    pub fn handle(&self) -> TcpHandle {
        TcpHandle::new(Arc::clone(&self.shared))
    }

    /// Adds a peer (or changes its address), as
    /// [`TcpTransport::add_peer`](super::TcpTransport::add_peer).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::add_peer`](super::TcpTransport::add_peer): a new
    /// peer past [`TcpConfig::max_peers`](super::TcpConfig::max_peers)
    /// ([`TooManyPeers`](super::TooManyPeers)), or the peer's writer thread
    /// could not be spawned.
    pub fn add_peer(&self, id: NodeId, addr: impl Into<super::PeerAddr>) -> io::Result<()> {
        self.shared.add_peer(id, addr.into())
    }

    /// Removes a peer: its queue is dropped and its connections closed.
    /// Members refused at [`TcpConfig::max_peers`](super::TcpConfig::max_peers)
    /// take the room it leaves at once, lowest id first (as for
    /// [`TcpTransport::remove_peer`](super::TcpTransport::remove_peer)).
    pub fn remove_peer(&self, id: NodeId) {
        self.shared.remove_peer(id);
    }

    /// Replaces the TLS material, as
    /// [`TcpTransport::rotate_tls`](super::TcpTransport::rotate_tls).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::rotate_tls`](super::TcpTransport::rotate_tls).
    #[cfg(feature = "tls")]
    pub fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        self.shared.rotate_tls(tls)
    }

    /// Calls `waker` (from a reader thread) every time an envelope is
    /// queued for [`try_recv`](Self::try_recv). Replaces any earlier waker.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        self.shared.set_waker(Arc::new(waker));
    }

    /// Stops every thread and closes every connection. Idempotent.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }
}

impl Drop for TcpGroupTransport {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}
