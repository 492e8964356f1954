//! The state one transport shares with its handles and threads, generic
//! over what its connections carry ([`Carrier`]).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::addr::PeerAddr;
use super::carrier::{Carrier, Unsendable};
use super::config::TooManyPeers;
use super::fair::{Admit, FairQueue};
#[cfg(feature = "tracing")]
use super::floods;
use super::stats::{Counters, add};
#[cfg(feature = "tls")]
use super::tls;
use super::writer::{Peer, Push};
use super::{NetEvent, TcpConfig, learn, lock, reader, writer};
use crate::transport::TransportError;
use crate::types::NodeId;

pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// Received items (with the frame bytes they hold) waiting for the node,
/// kept per class (group) like an outbound queue: a peer's burst for one
/// group evicts that group's newest items, not other groups' (see
/// [`FairQueue`]), and [`Shared::try_recv`] takes one item per group in
/// turn.
pub(crate) struct Inbox<T> {
    pub(crate) queue: Mutex<FairQueue<T>>,
    capacity: usize,
    max_bytes: usize,
    pub(crate) waker: Mutex<Option<Waker>>,
}

/// Why [`Shared::try_add_peer`] did not add a peer.
#[derive(Debug)]
pub(crate) enum NotAdded {
    /// The transport had [`TcpConfig::max_peers`] peers (counted and
    /// reported already).
    Full(TooManyPeers),
    /// Its writer thread could not be spawned.
    Spawn(io::Error),
}

/// What [`Shared::admit`] did with a member waiting for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// It is a peer now: its writer dials it.
    Added,
    /// It was a peer already (added by hand meanwhile): left as it is.
    Known,
    /// Not added: no room, the transport shut down, or its writer could not
    /// be spawned.
    No,
}

impl From<NotAdded> for io::Error {
    fn from(e: NotAdded) -> Self {
        match e {
            NotAdded::Full(refused) => refused.into(),
            NotAdded::Spawn(e) => e,
        }
    }
}

/// Inbound connections, for replacing a peer's older connection and for
/// closing them all at shutdown.
#[derive(Default)]
pub(crate) struct Conns {
    pub(crate) next: u64,
    /// Of `open`, how many are still in their handshake.
    pub(crate) handshaking: usize,
    pub(crate) open: HashMap<u64, TcpStream>,
    pub(crate) by_peer: HashMap<NodeId, u64>,
    /// The peer and its certificate chain of each open connection that
    /// passed a TLS handshake, to close those that material put in force
    /// later revokes.
    #[cfg(feature = "tls")]
    pub(crate) chains: HashMap<u64, (NodeId, tls::PeerChain)>,
}

/// [`Shared::send_all`]'s buffers, kept between calls: a loaded node sends
/// a batch every turn, and sorting it by peer then allocates nothing.
pub(crate) struct Outgoing<T> {
    /// The batch not yet handed to its peers.
    items: Vec<T>,
    /// What one pass over `items` left for the peers after.
    rest: Vec<T>,
    /// One peer's items.
    mine: Vec<T>,
    /// The batch's peers, ascending.
    peers: Vec<NodeId>,
    /// One peer's items with their class and size ([`Peer::push_all`]).
    sized: Vec<(u64, T, usize)>,
}

impl<T> Default for Outgoing<T> {
    fn default() -> Self {
        Self { items: Vec::new(), rest: Vec::new(), mine: Vec::new(), peers: Vec::new(), sized: Vec::new() }
    }
}

impl<T> Outgoing<T> {
    /// Items a buffer keeps room for between batches; a larger burst's
    /// room is given back.
    const KEEP: usize = 4096;

    fn trim(&mut self) {
        for v in [&mut self.items, &mut self.rest, &mut self.mine] {
            if v.capacity() > Self::KEEP {
                *v = Vec::new();
            }
        }
        if self.sized.capacity() > Self::KEEP {
            self.sized = Vec::new();
        }
    }
}

/// State shared by the transport, its handles and its threads.
pub(crate) struct Shared<C: Carrier> {
    pub(crate) cfg: TcpConfig,
    pub(crate) local_addr: SocketAddr,
    pub(crate) peers: Mutex<BTreeMap<NodeId, Arc<Peer<C>>>>,
    pub(crate) inbox: Inbox<C::Item>,
    outgoing: Mutex<Outgoing<C::Item>>,
    pub(crate) conns: Mutex<Conns>,
    pub(crate) counters: Counters,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tls::TlsState>,
    shutdown: AtomicBool,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Peers learned from configurations (`learn.rs`).
    pub(crate) learned: Mutex<learn::Learned>,
    /// Which repeated events reach `tracing` ([`floods`]).
    #[cfg(feature = "tracing")]
    floods: floods::Floods,
}

impl<C: Carrier> Shared<C> {
    /// Binds the listener, starts the accept thread and one writer thread
    /// per configured peer.
    pub(crate) fn bind(config: TcpConfig) -> io::Result<Arc<Self>> {
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
        let peers: Vec<(NodeId, PeerAddr)> = config.peers.iter().map(|(&id, addr)| (id, addr.clone())).collect();
        let shared = Arc::new(Shared {
            inbox: Inbox {
                queue: Mutex::new(FairQueue::default()),
                capacity: config.inbox_capacity.unwrap_or(C::INBOX_CAPACITY),
                max_bytes: config.inbox_bytes,
                waker: Mutex::new(None),
            },
            outgoing: Mutex::new(Outgoing::default()),
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
            learned: Mutex::new(learn::Learned::default()),
            #[cfg(feature = "tracing")]
            floods: floods::Floods::default(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("raft-io-tcp-{}-accept", shared.cfg.id))
                .spawn(move || reader::accept_loop(shared, listener))?
        };
        *lock(&shared.acceptor) = Some(acceptor);
        for (id, addr) in peers {
            if let Err(e) = shared.add_peer(id, addr) {
                shared.shutdown();
                return Err(e);
            }
        }
        Ok(shared)
    }

    /// Queues `item` for its peer, or says why not (each drop counted).
    pub(crate) fn send(&self, item: C::Item) -> Result<(), TransportError> {
        self.send_all([item])
    }

    /// Queues `items`, each peer's under one lock (so its writer finds them
    /// together); returns the first error met (every drop is counted).
    pub(crate) fn send_all(&self, items: impl IntoIterator<Item = C::Item>) -> Result<(), TransportError> {
        if self.is_shutdown() {
            return Err(TransportError::Closed);
        }
        let mut outgoing = lock(&self.outgoing);
        let Outgoing { items: batch, rest, mine, peers, sized } = &mut *outgoing;
        // Empty unless a call panicked halfway: nothing of it is sent now.
        for v in [&mut *batch, &mut *rest, &mut *mine] {
            v.clear();
        }
        peers.clear();
        batch.extend(items);
        // A batch goes to a few peers: a pass over it per peer (but the
        // last, which takes what is left) is cheaper than a map of per-peer
        // vectors, and allocates nothing.
        for item in batch.iter() {
            let to = C::to(item);
            if !peers.contains(&to) {
                peers.push(to);
            }
        }
        peers.sort_unstable();
        let mut first = Ok(());
        for (k, &to) in peers.iter().enumerate() {
            if k + 1 == peers.len() {
                std::mem::swap(mine, batch);
            } else {
                for item in batch.drain(..) {
                    if C::to(&item) == to { mine.push(item) } else { rest.push(item) }
                }
                std::mem::swap(batch, rest);
            }
            let Some(peer) = lock(&self.peers).get(&to).cloned() else {
                add(&self.counters.dropped_unknown_peer, mine.len() as u64);
                mine.clear();
                first = first.and(Err(TransportError::UnknownPeer(to)));
                continue;
            };
            peer.push_all(mine.drain(..), &self.cfg, sized, |push| first = first.clone().and(self.count(to, push)));
        }
        debug_assert!(batch.is_empty() && rest.is_empty() && mine.is_empty());
        outgoing.trim();
        first
    }

    /// Counts what became of one item; the error to report, if any.
    fn count(&self, to: NodeId, push: Push) -> Result<(), TransportError> {
        match push {
            Push::Queued(Admit::Queued { evicted }) => {
                add(&self.counters.dropped_over_share, evicted);
                Ok(())
            }
            Push::Queued(Admit::Refused { evicted }) => {
                add(&self.counters.dropped_over_share, evicted);
                add(&self.counters.dropped_queue_full, 1);
                Err(TransportError::QueueFull(to))
            }
            Push::Unsendable(Unsendable::Oversized) => {
                add(&self.counters.dropped_oversized, 1);
                Ok(())
            }
            Push::Unsendable(Unsendable::Invalid) => {
                add(&self.counters.dropped_invalid, 1);
                Err(TransportError::Invalid(to))
            }
            Push::Closed => Err(TransportError::Closed),
        }
    }

    /// The next item received, without blocking.
    pub(crate) fn try_recv(&self) -> Option<C::Item> {
        lock(&self.inbox.queue).pop()
    }

    /// Calls `waker` whenever an item is queued in the inbox (replacing any
    /// earlier one).
    pub(crate) fn set_waker(&self, waker: Waker) {
        *lock(&self.inbox.waker) = Some(waker);
    }

    /// Up to `max` received items, under one lock; returns how many.
    pub(crate) fn try_recv_many(&self, out: &mut Vec<C::Item>, max: usize) -> usize {
        let before = out.len();
        lock(&self.inbox.queue).take_items(out, max);
        out.len() - before
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Reports a connection event to the hook, and (feature `tracing`) as a
    /// `tracing` event: connects, accepts and closes at `info`, failures
    /// and refusals at `warn`, each with the node and cluster ids; of the
    /// events a remote party can repeat at will, only some ([`floods`]).
    pub(crate) fn event(&self, event: impl FnOnce() -> NetEvent) {
        #[cfg(feature = "tracing")]
        let event = {
            let e = event();
            let (id, cluster) = (self.cfg.id, self.cfg.cluster_id);
            match (&e, self.floods.count(&e)) {
                (NetEvent::Connected { .. } | NetEvent::Accepted { .. } | NetEvent::InboundClosed { .. }, _) => {
                    tracing::info!(node = id, cluster, event = ?e, "transport connection")
                }
                (_, floods::Logged::Always) => {
                    tracing::warn!(node = id, cluster, event = ?e, "transport connection trouble")
                }
                (_, floods::Logged::Nth(occurrences)) => {
                    tracing::warn!(node = id, cluster, event = ?e, occurrences, "transport connection trouble")
                }
                (_, floods::Logged::Skipped) => {}
            }
            move || e
        };
        if let Some(hook) = &self.cfg.hook {
            hook(&event());
        }
    }

    /// Puts `material` in force for new connections, and closes the open
    /// ones whose peer's certificate it revokes, as long as it stays in
    /// force: a rotation that replaces it meanwhile closes what its own
    /// material revokes, and nothing more is closed for this one.
    #[cfg(feature = "tls")]
    pub(crate) fn rotate_tls(&self, material: tls::TlsConfig) -> Result<(), tls::TlsConfigError> {
        let state = self.tls.as_ref().ok_or(tls::TlsConfigError::NotTls)?;
        state.rotate(material.clone())?;
        // The chains are copied out and checked (signatures: the slow
        // part) outside the locks that accepting and sending take. A
        // connection registered after the copy checks itself against the
        // material now in force (`revoked_now`).
        let inbound: Vec<(u64, NodeId, tls::PeerChain)> =
            lock(&self.conns).chains.iter().map(|(&conn, (peer, chain))| (conn, *peer, chain.clone())).collect();
        let peers: Vec<Arc<Peer<C>>> = lock(&self.peers).values().cloned().collect();
        for (conn, peer, chain) in inbound {
            // Connection ids are never reused: still open, it is the one
            // checked.
            // Checked (the slow part) outside every lock, closed under the
            // material's: a rotation replacing it waits for the close.
            let closed = material.revokes(&chain, true)
                && state
                    .while_in_force(&material, || {
                        lock(&self.conns).open.get(&conn).map(|stream| stream.shutdown(Shutdown::Both)).is_some()
                    })
                    .unwrap_or(false);
            if closed {
                self.report_revoked(peer, true);
            }
        }
        for peer in peers {
            let Some(chain) = peer.chain() else { continue };
            if material.revokes(&chain, false)
                && state.while_in_force(&material, || peer.cut_if_still(&chain)).unwrap_or(false)
            {
                self.report_revoked(peer.id(), false);
            }
        }
        Ok(())
    }

    /// Counts and reports a connection closed for a revocation.
    #[cfg(feature = "tls")]
    fn report_revoked(&self, peer: NodeId, inbound: bool) {
        add(&self.counters.revoked_connections, 1);
        self.event(|| NetEvent::Revoked { peer, inbound });
    }

    /// Whether the material in force revokes `chain`, presented by a peer
    /// that dialed us (`inbound`) or that we dialed; counted and reported
    /// if so. A connection registers its chain first, then asks: a
    /// rotation either finds the chain registered or was in force before
    /// the question.
    #[cfg(feature = "tls")]
    pub(crate) fn revoked_now(&self, peer: NodeId, chain: &tls::PeerChain, inbound: bool) -> bool {
        let revoked = self.tls.as_ref().is_some_and(|tls| tls.current().revokes(chain, inbound));
        if revoked {
            self.report_revoked(peer, inbound);
        }
        revoked
    }

    pub(crate) fn is_peer(&self, id: NodeId) -> bool {
        lock(&self.peers).contains_key(&id)
    }

    pub(crate) fn spawn(&self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = std::thread::Builder::new().name(name).spawn(f)?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        Ok(())
    }

    /// Queues a frame's items (with their sizes) in the inbox, taking them
    /// out of `items`: under one lock, then one wake-up of the node, so the
    /// node finds the frame whole and the reader does not contend with it
    /// item by item.
    pub(crate) fn deliver_all(&self, items: &mut Vec<(C::Item, usize)>) {
        if items.is_empty() {
            return;
        }
        let mut queued = 0;
        {
            let mut q = lock(&self.inbox.queue);
            for (item, size) in items.drain(..) {
                // A single item is always accepted into an empty inbox.
                let max_bytes = if q.is_empty() { usize::MAX } else { self.inbox.max_bytes };
                let class = C::class(&item);
                match q.push(class, item, size, self.inbox.capacity, max_bytes) {
                    Admit::Queued { evicted } => {
                        add(&self.counters.dropped_inbox_full, evicted);
                        queued += 1;
                    }
                    Admit::Refused { evicted } => add(&self.counters.dropped_inbox_full, evicted + 1),
                }
            }
            // Counted before the node can take them: whoever received an
            // item finds it counted.
            add(&self.counters.messages_received, queued);
        }
        if queued == 0 {
            return;
        }
        if let Some(waker) = lock(&self.inbox.waker).as_ref() {
            waker();
        }
    }

    /// [`try_add_peer`](Self::try_add_peer), its refusal an [`io::Error`].
    pub(crate) fn add_peer(self: &Arc<Self>, id: NodeId, addr: PeerAddr) -> io::Result<()> {
        self.try_add_peer(id, addr).map_err(io::Error::from)
    }

    /// Makes `id` a peer at `addr` (a known one only changes its address);
    /// a new one past [`TcpConfig::max_peers`] is refused, counted and
    /// reported: each peer is a writer thread, and a configuration may name
    /// any number of members.
    pub(crate) fn try_add_peer(self: &Arc<Self>, id: NodeId, addr: PeerAddr) -> Result<(), NotAdded> {
        if id == self.cfg.id || id == 0 || self.is_shutdown() {
            return Ok(());
        }
        let max_peers = self.cfg.peer_limit();
        {
            let mut peers = lock(&self.peers);
            if let Some(peer) = peers.get(&id) {
                peer.set_addr(addr);
                return Ok(());
            }
            if peers.len() < max_peers {
                let peer = Arc::new(Peer::new(id, addr));
                let (shared, p) = (Arc::clone(self), Arc::clone(&peer));
                self.spawn(format!("raft-io-tcp-{}-to-{id}", self.cfg.id), move || writer::run(shared, p))
                    .map_err(NotAdded::Spawn)?;
                peers.insert(id, peer);
                return Ok(());
            }
        }
        // Reported outside the peers' lock, which the hook need not wait
        // behind.
        add(&self.counters.peers_over_limit, 1);
        self.event(|| NetEvent::PeerOverLimit { peer: id, max_peers });
        Err(NotAdded::Full(TooManyPeers { peer: id, max_peers }))
    }

    /// Adds `id` at `addr` if there is room under [`TcpConfig::max_peers`],
    /// for a member that was refused for want of it: nothing is counted or
    /// reported either way.
    pub(crate) fn admit(self: &Arc<Self>, id: NodeId, addr: PeerAddr) -> Admitted {
        let mut peers = lock(&self.peers);
        // Under the peers' lock, which `shutdown` takes after setting the
        // flag to close every peer: a peer added here is closed by it.
        if self.is_shutdown() || peers.len() >= self.cfg.peer_limit() {
            return Admitted::No;
        }
        if peers.contains_key(&id) {
            return Admitted::Known;
        }
        let peer = Arc::new(Peer::new(id, addr));
        let (shared, p) = (Arc::clone(self), Arc::clone(&peer));
        match self.spawn(format!("raft-io-tcp-{}-to-{id}", self.cfg.id), move || writer::run(shared, p)) {
            Ok(()) => {
                peers.insert(id, peer);
                Admitted::Added
            }
            Err(_) => Admitted::No,
        }
    }

    /// Lets peer `id` go once [`TcpConfig::departed_grace`] has passed: it
    /// left the configuration, and until then it is still dialed and
    /// accepted, so that a member can answer its vote requests with a
    /// removal notice. Adding it again keeps it. With no grace it goes at
    /// once; the caller, which holds the learned peers, lets the members
    /// waiting for room in ([`learn::admit_waiting`]).
    pub(crate) fn retire_peer(&self, id: NodeId) {
        let grace = self.cfg.departed_grace;
        if grace.is_zero() {
            return self.drop_peer(id);
        }
        if let Some(peer) = lock(&self.peers).get(&id) {
            // Its writer checks at every wake-up (a keepalive interval at
            // most while connected, a backoff wait while not).
            peer.retire(std::time::Instant::now() + grace);
        }
    }

    /// Removes `peer` if its grace is over — checked under the peers'
    /// lock, which adding it again takes too, so a peer taken back at that
    /// moment stays — and it is still the one under its id. Returns whether
    /// its writer should stop: it was removed, or replaced. A removal lets
    /// the members waiting for room in.
    pub(crate) fn remove_retired(self: &Arc<Self>, peer: &Arc<Peer<C>>) -> bool {
        {
            let mut peers = lock(&self.peers);
            if !peers.get(&peer.id()).is_some_and(|p| Arc::ptr_eq(p, peer)) {
                return true;
            }
            if !peer.retire_due() {
                return false;
            }
            peers.remove(&peer.id());
        }
        peer.close();
        self.close_inbound(peer.id());
        learn::admit_waiting(self, &mut lock(&self.learned));
        true
    }

    /// Removes peer `id` (by hand), then lets the members waiting for room
    /// under [`TcpConfig::max_peers`] in, lowest id first. Not to be called
    /// with the learned peers locked (see [`drop_peer`](Self::drop_peer)).
    pub(crate) fn remove_peer(self: &Arc<Self>, id: NodeId) {
        self.drop_peer(id);
        learn::admit_waiting(self, &mut lock(&self.learned));
    }

    /// Removes peer `id`: its queue is dropped, its connections closed.
    /// Waiting members are left to the caller.
    pub(crate) fn drop_peer(&self, id: NodeId) {
        if let Some(peer) = lock(&self.peers).remove(&id) {
            peer.close();
        }
        self.close_inbound(id);
    }

    /// Closes the connection peer `id` opened to us, if any.
    fn close_inbound(&self, id: NodeId) {
        let conns = lock(&self.conns);
        if let Some(stream) = conns.by_peer.get(&id).and_then(|c| conns.open.get(c)) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn shutdown(&self) {
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
