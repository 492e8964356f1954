//! Moving [`Message`]s between nodes: the [`RaftTransport`] trait and the
//! in-process [`MemoryTransport`]. With feature `net`, `TcpTransport` carries
//! the same messages over TCP.
//!
//! A transport is best effort, as Raft expects: it may drop, delay, duplicate
//! or reorder messages, and the protocol stays safe. It must not corrupt
//! them (the TCP transport checks framing and drops what fails to decode).

mod memory;
#[cfg(feature = "net")]
pub mod tcp;

pub use memory::MemoryTransport;
#[cfg(feature = "tls")]
pub use tcp::tls;
#[cfg(feature = "net")]
pub use tcp::{
    AddrError, NetEvent, PeerAddr, Refusal, Resolve, SystemResolver, TcpConfig, TcpGroupTransport, TcpHandle, TcpStats,
    TcpTransport, TooManyPeers, address_bytes, address_of,
};

use crate::message::Message;
use crate::types::NodeId;

/// Why a transport could not take a message. None of these is fatal to the
/// node: Raft treats an unsent message as a lost one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No route to this node.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The peer's outbound queue is full; the message was dropped.
    #[error("queue to {0} is full; message dropped")]
    QueueFull(NodeId),
    /// The transport is shut down.
    #[error("transport is closed")]
    Closed,
    /// No peer would accept this item (an envelope not from this node to
    /// the node named, or of group 0); it was dropped.
    #[error("an item for {0} that no peer would accept; dropped")]
    Invalid(NodeId),
}

/// Carries messages between nodes.
pub trait RaftTransport {
    /// Hands `message` over for delivery to `message.to`. Returning `Ok` does
    /// not promise delivery.
    fn send(&mut self, message: Message) -> Result<(), TransportError>;

    /// The next message received for this node, without blocking.
    fn try_recv(&mut self) -> Option<Message>;
}
