//! [`TcpHandle`]: counters and peers of a transport, from any thread,
//! whatever its connections carry.

use std::net::SocketAddr;
use std::sync::Arc;

use super::addr::PeerAddr;
use super::carrier::Carrier;
use super::shared::Shared;
#[cfg(feature = "tls")]
use super::tls;
use super::{TcpStats, lock};
use crate::types::NodeId;

/// What a handle may do with a transport, whatever its [`Carrier`].
trait Control: Send + Sync {
    fn id(&self) -> NodeId;
    fn stats(&self) -> TcpStats;
    fn local_addr(&self) -> SocketAddr;
    fn add_peer(self: Arc<Self>, id: NodeId, addr: PeerAddr) -> std::io::Result<()>;
    fn remove_peer(self: Arc<Self>, id: NodeId);
    fn peers(&self) -> Vec<(NodeId, PeerAddr)>;
    fn queued(&self, peer: NodeId) -> Option<usize>;
    #[cfg(feature = "tls")]
    fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError>;
    #[cfg(feature = "tls")]
    fn tls_material(&self) -> Option<tls::TlsConfig>;
}

impl<C: Carrier> Control for Shared<C> {
    fn id(&self) -> NodeId {
        self.cfg.id
    }

    fn stats(&self) -> TcpStats {
        self.counters.snapshot()
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn add_peer(self: Arc<Self>, id: NodeId, addr: PeerAddr) -> std::io::Result<()> {
        Shared::add_peer(&self, id, addr)
    }

    fn remove_peer(self: Arc<Self>, id: NodeId) {
        Shared::remove_peer(&self, id);
    }

    fn peers(&self) -> Vec<(NodeId, PeerAddr)> {
        lock(&self.peers).iter().map(|(&id, p)| (id, p.addr())).collect()
    }

    fn queued(&self, peer: NodeId) -> Option<usize> {
        lock(&self.peers).get(&peer).map(|p| p.queued())
    }

    #[cfg(feature = "tls")]
    fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        Shared::rotate_tls(self, tls)
    }

    #[cfg(feature = "tls")]
    fn tls_material(&self) -> Option<tls::TlsConfig> {
        self.tls.as_ref().map(|state| state.current())
    }
}

/// A cloneable handle on a [`TcpTransport`](super::TcpTransport) or a
/// [`TcpGroupTransport`](super::TcpGroupTransport): counters and peers,
/// from any thread. It does not keep the transport running: once the
/// transport is dropped or shut down, the handle only reads final counters.
#[derive(Clone)]
pub struct TcpHandle {
    shared: Arc<dyn Control>,
}

impl std::fmt::Debug for TcpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpHandle").field("id", &self.shared.id()).finish_non_exhaustive()
    }
}

impl TcpHandle {
    pub(super) fn new<C: Carrier>(shared: Arc<Shared<C>>) -> Self {
        Self { shared }
    }

    /// The transport's node id.
    pub fn id(&self) -> NodeId {
        self.shared.id()
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        self.shared.stats()
    }

    /// The listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    /// See [`TcpTransport::add_peer`](super::TcpTransport::add_peer).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::add_peer`](super::TcpTransport::add_peer): a new
    /// peer past [`TcpConfig::max_peers`](super::TcpConfig::max_peers)
    /// ([`TooManyPeers`](super::TooManyPeers)), or the peer's writer thread
    /// could not be spawned.
    pub fn add_peer(&self, id: NodeId, addr: impl Into<PeerAddr>) -> std::io::Result<()> {
        Arc::clone(&self.shared).add_peer(id, addr.into())
    }

    /// See [`TcpTransport::rotate_tls`](super::TcpTransport::rotate_tls).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::rotate_tls`](super::TcpTransport::rotate_tls).
    #[cfg(feature = "tls")]
    pub fn rotate_tls(&self, tls: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        self.shared.rotate_tls(tls)
    }

    /// The TLS material in force for new connections (`None`: the
    /// transport runs without TLS).
    #[cfg(feature = "tls")]
    pub(crate) fn tls_material(&self) -> Option<tls::TlsConfig> {
        self.shared.tls_material()
    }

    /// See [`TcpTransport::remove_peer`](super::TcpTransport::remove_peer).
    pub fn remove_peer(&self, id: NodeId) {
        Arc::clone(&self.shared).remove_peer(id);
    }

    /// The peers and the addresses they are dialed at, by id (those added
    /// by hand and those learned from configurations alike).
    pub fn peers(&self) -> Vec<(NodeId, PeerAddr)> {
        self.shared.peers()
    }

    /// Items (messages, or envelopes of a group transport) queued for
    /// `peer` and not yet written (`None` for an unknown peer).
    pub fn queued(&self, peer: NodeId) -> Option<usize> {
        self.shared.queued(peer)
    }
}
