//! One peer's outbound side: a bounded queue, shared fairly between groups
//! ([`FairQueue`]), and the thread that dials the peer, handshakes, and
//! writes queued items as frames.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::addr::PeerAddr;
use super::backoff::Backoff;
use super::carrier::{Carrier, Unsendable};
use super::fair::{Admit, FairQueue};
use super::frame::append_keepalive;
use super::handshake::{Hello, Refusal, read_reply};
use super::link::Link;
use super::shared::Shared;
use super::stats::{NetEvent, add};
#[cfg(feature = "tls")]
use super::tls;
use super::{TcpConfig, lock};
use crate::types::NodeId;

/// One write takes at most this much of the queue (and at least one item):
/// an item queued meanwhile waits for one write, not for everything queued
/// before it.
const WRITE_BYTES: usize = 256 << 10;
// A take moves the fair queue's whole express lane.
const _: () = assert!(super::fair::EXPRESS_BYTES <= WRITE_BYTES);
/// A write buffer that grew past this is released after the write.
const KEEP_BUFFER: usize = 1 << 20;

struct Queue<T> {
    items: FairQueue<T>,
    closed: bool,
}

/// What [`Peer::push`] did with an item.
pub(crate) enum Push {
    /// Queued or refused by the fair queue.
    Queued(Admit),
    /// Dropped: it can never be sent.
    Unsendable(Unsendable),
    /// Refused: the peer was removed or the transport shut down.
    Closed,
}

/// A peer's outbound queue and connection.
pub(crate) struct Peer<C: Carrier> {
    id: NodeId,
    addr: Mutex<PeerAddr>,
    queue: Mutex<Queue<C::Item>>,
    ready: Condvar,
    /// A clone of the live connection, so `close` can unblock a write.
    stream: Mutex<Option<TcpStream>>,
    /// The certificate chain the peer presented on the live connection
    /// (TLS), so material put in force later can revoke it.
    #[cfg(feature = "tls")]
    chain: Mutex<Option<tls::PeerChain>>,
    /// When a peer that left the configuration is let go
    /// ([`Shared::retire_peer`]): until then it is dialed and accepted as
    /// before, so that it can still be told it was removed.
    retire_at: Mutex<Option<Instant>>,
}

impl<C: Carrier> Peer<C> {
    pub(crate) fn new(id: NodeId, addr: PeerAddr) -> Self {
        Self {
            id,
            addr: Mutex::new(addr),
            queue: Mutex::new(Queue { items: FairQueue::default(), closed: false }),
            ready: Condvar::new(),
            stream: Mutex::new(None),
            #[cfg(feature = "tls")]
            chain: Mutex::new(None),
            retire_at: Mutex::new(None),
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.id
    }

    /// Sets the address to dial (the next connection uses it); a peer being
    /// retired is kept after all.
    pub(crate) fn set_addr(&self, addr: PeerAddr) {
        *lock(&self.addr) = addr;
        *lock(&self.retire_at) = None;
    }

    /// Lets the peer go at `at` (the writer removes it then), unless it is
    /// added again before.
    pub(crate) fn retire(&self, at: Instant) {
        lock(&self.retire_at).get_or_insert(at);
    }

    /// Whether the peer is to be let go (its grace running).
    #[cfg(test)]
    pub(crate) fn retiring(&self) -> bool {
        lock(&self.retire_at).is_some()
    }

    /// Whether the peer's time to go has come.
    pub(crate) fn retire_due(&self) -> bool {
        lock(&self.retire_at).is_some_and(|at| Instant::now() >= at)
    }

    pub(crate) fn addr(&self) -> PeerAddr {
        lock(&self.addr).clone()
    }

    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).items.len()
    }

    /// Queues `items` under one lock, so the writer, woken once, finds them
    /// all (one write, as few frames as the limits allow); reports what
    /// became of each to `report`. An item whose frame would exceed the
    /// frame limit is dropped at once, as the peer would refuse it.
    /// `sized` is the caller's buffer for the items' classes and sizes
    /// (found before the lock is taken); it is left empty.
    pub(crate) fn push_all(
        &self,
        items: impl IntoIterator<Item = C::Item>,
        cfg: &TcpConfig,
        sized: &mut Vec<(u64, C::Item, usize)>,
        mut report: impl FnMut(Push),
    ) {
        sized.clear();
        for item in items {
            match C::size(&item, cfg.id, self.id, &cfg.limits) {
                Ok(size) => sized.push((C::class(&item), item, size)),
                Err(why) => report(Push::Unsendable(why)),
            }
        }
        if sized.is_empty() {
            return;
        }
        let mut q = lock(&self.queue);
        let mut queued = false;
        for (class, item, size) in sized.drain(..) {
            if q.closed {
                report(Push::Closed);
                continue;
            }
            let admit =
                q.items.push(class, item, size, cfg.queue_capacity.unwrap_or(C::QUEUE_CAPACITY), cfg.queue_bytes);
            queued |= matches!(admit, Admit::Queued { .. });
            report(Push::Queued(admit));
        }
        drop(q);
        if queued {
            self.ready.notify_one();
        }
    }

    /// Stops the writer: drops the queue and closes the connection.
    pub(crate) fn close(&self) {
        {
            let mut q = lock(&self.queue);
            q.closed = true;
            q.items.clear();
        }
        self.ready.notify_all();
        if let Some(stream) = lock(&self.stream).as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    /// The certificate chain the peer presented on the live connection.
    #[cfg(feature = "tls")]
    pub(crate) fn chain(&self) -> Option<tls::PeerChain> {
        lock(&self.chain).clone()
    }

    /// Closes the live connection if it is still the one that presented
    /// `checked` (a chain found revoked); returns whether it did. The
    /// writer then dials again, under the material in force.
    #[cfg(feature = "tls")]
    pub(crate) fn cut_if_still(&self, checked: &tls::PeerChain) -> bool {
        let chain = lock(&self.chain);
        if chain.as_ref() != Some(checked) {
            return false;
        }
        if let Some(stream) = lock(&self.stream).as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }

    /// Drops everything queued; returns how many items that was.
    fn discard(&self) -> u64 {
        lock(&self.queue).items.clear()
    }

    /// Locks the queue once `until` holds for it, or once `wait` has passed.
    fn wait_for(&self, wait: Duration, until: impl Fn(&Queue<C::Item>) -> bool) -> MutexGuard<'_, Queue<C::Item>> {
        let q = lock(&self.queue);
        match self.ready.wait_timeout_while(q, wait, |q| !until(q)) {
            Ok((q, _)) => q,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Waits up to `wait` for items and moves up to [`WRITE_BYTES`] of
    /// them to `out`, one per class in turn. Returns `false` once the peer
    /// is closed.
    fn take(&self, out: &mut Vec<(C::Item, usize)>, wait: Duration) -> bool {
        let mut q = self.wait_for(wait, |q| !q.items.is_empty() || q.closed);
        if q.closed {
            return false;
        }
        q.items.take(out, WRITE_BYTES);
        true
    }

    /// Sleeps for `wait` unless the peer is closed first.
    fn pause(&self, wait: Duration) {
        drop(self.wait_for(wait, |q| q.closed));
    }
}

enum DialError {
    /// The peer's host name could not be looked up.
    Resolve(std::io::Error),
    Io(std::io::Error),
    Refused(Refusal),
    /// The peer presented a certificate the material in force revokes
    /// (counted and reported already).
    #[cfg(feature = "tls")]
    Revoked,
}

/// Dials the peer: its socket address, or each address its name has now
/// (looked up here, at every dial), in the resolver's order, until one
/// connects and passes the handshake (TLS and identity included). So a
/// name whose first address is stale (nobody there, a process that closes
/// the connection, another node, another cluster) still reaches the peer
/// at the next one within the same dial. A refusal at an address that is
/// not the last is counted and reported at once ([`report_refusal`]);
/// other failures there are not (the dial goes on); the last address's
/// failure is the dial's. Returns the link and the address it reached.
fn dial<C: Carrier>(shared: &Shared<C>, peer: &Peer<C>) -> Result<(Link, SocketAddr), DialError> {
    let targets = peer.addr().dial_targets(&*shared.cfg.resolver).map_err(DialError::Resolve)?;
    let last = targets.len().saturating_sub(1);
    let mut failure = DialError::Io(closed_error());
    for (k, addr) in targets.into_iter().enumerate() {
        match dial_one(shared, peer, addr) {
            Ok(link) => return Ok((link, addr)),
            Err(e) => {
                *lock(&peer.stream) = None;
                if peer.is_closed() {
                    return Err(e);
                }
                if let (true, DialError::Refused(reason)) = (k < last, &e) {
                    report_refusal(shared, peer.id, *reason);
                }
                failure = e;
            }
        }
    }
    Err(failure)
}

/// One connect, which [`Peer::close`] can cut short: the socket is made
/// first and registered as the peer's stream before it connects, so a
/// close (a shutdown, a removal) that comes while a peer drops our SYNs
/// ends the wait at once instead of after `timeout` (a shutdown of a socket
/// still connecting aborts the connect and wakes its wait).
fn connect_one<C: Carrier>(peer: &Peer<C>, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    *lock(&peer.stream) = Some(TcpStream::from(socket.try_clone()?));
    // Registered, then checked: a close either finds it registered or came
    // before the check.
    if peer.is_closed() {
        return Err(closed_error());
    }
    let connected = socket.connect_timeout(&addr.into(), timeout);
    if connected.is_err() || peer.is_closed() {
        *lock(&peer.stream) = None;
        return Err(connected.err().unwrap_or_else(closed_error));
    }
    Ok(TcpStream::from(socket))
}

fn closed_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "peer closed")
}

/// Connects to one of the peer's addresses and runs the handshake there,
/// within its own deadline.
fn dial_one<C: Carrier>(shared: &Shared<C>, peer: &Peer<C>, addr: SocketAddr) -> Result<Link, DialError> {
    let cfg = &shared.cfg;
    // The stream stays registered (by `connect_one`) through the
    // handshake, so `close` can cut a handshake with a slow peer short
    // instead of waiting out its timeout.
    let stream = connect_one(peer, addr, cfg.connect_timeout).map_err(DialError::Io)?;
    stream.set_nodelay(true).map_err(DialError::Io)?;
    let deadline = Instant::now() + cfg.handshake_timeout;
    #[cfg(feature = "tls")]
    let mut link = match &shared.tls {
        Some(tls) => {
            tls::connect(&tls.current(), stream, addr, cfg.cluster_id, peer.id, deadline).map_err(|e| match e {
                tls::ConnectError::Refused(reason) => DialError::Refused(reason),
                tls::ConnectError::Io(e) => DialError::Io(e),
            })?
        }
        None => Link::plain(stream),
    };
    #[cfg(not(feature = "tls"))]
    let mut link = Link::plain(stream);
    link.set_deadline(Some(deadline));
    let hello = Hello::new(cfg.cluster_id, cfg.id, peer.id, C::KIND);
    let io_error = |e: std::io::Error| {
        #[cfg(feature = "tls")]
        if let Some(failure) = tls::failure_in(&e) {
            return DialError::Refused(Refusal::Tls(failure));
        }
        DialError::Io(e)
    };
    link.write_all(&hello.encode()).and_then(|()| link.flush()).map_err(io_error)?;
    read_reply(&mut link, &hello).map_err(io_error)?.map_err(DialError::Refused)?;
    link.set_deadline(None);
    link.tcp().set_write_timeout(Some(cfg.write_timeout)).map_err(DialError::Io)?;
    #[cfg(feature = "tls")]
    if let Some(chain) = link.peer_chain() {
        // Registered first, then checked against the material in force: a
        // rotation since the handshake either finds it registered or was
        // in force before the check.
        *lock(&peer.chain) = Some(chain.clone());
        if shared.revoked_now(peer.id, &chain, false) {
            let _ = link.tcp().shutdown(Shutdown::Both);
            *lock(&peer.chain) = None;
            return Err(DialError::Revoked);
        }
    }
    Ok(link)
}

/// Counts and reports a handshake refused at one of the peer's addresses:
/// by the peer, or by us (its TLS or identity failed our checks).
fn report_refusal<C: Carrier>(shared: &Shared<C>, peer: NodeId, reason: Refusal) {
    #[cfg(feature = "tls")]
    match reason {
        Refusal::Tls(_) => add(&shared.counters.tls_failures, 1),
        Refusal::Identity(_) => add(&shared.counters.identity_refusals, 1),
        _ => {}
    }
    if refused_by_us(reason) {
        shared.event(|| NetEvent::Untrusted { peer, reason });
    } else {
        add(&shared.counters.handshakes_rejected, 1);
        shared.event(|| NetEvent::Rejected { peer, reason });
    }
}

/// Whether a refusal was ours (the peer failed our TLS or identity checks)
/// rather than the peer's.
fn refused_by_us(reason: Refusal) -> bool {
    #[cfg(feature = "tls")]
    {
        matches!(reason, Refusal::Identity(_))
            || matches!(reason, Refusal::Tls(f) if f != tls::TlsFailure::RefusedByPeer)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = reason;
        false
    }
}

/// The writer thread of one peer.
pub(crate) fn run<C: Carrier>(shared: Arc<Shared<C>>, peer: Arc<Peer<C>>) {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut lost = false;
    let mut batch = Vec::new();
    let mut buf = BytesMut::with_capacity(64 << 10);
    while !peer.is_closed() && !shared.is_shutdown() {
        if peer.retire_due() && shared.remove_retired(&peer) {
            break;
        }
        let (mut link, addr) = match dial(&shared, &peer) {
            Ok(dialed) => dialed,
            #[cfg(feature = "tls")]
            Err(DialError::Revoked) => {
                // Counted and reported by `revoked_now`.
                lost = true;
                back_off(&shared, &peer, backoff.next_delay());
                continue;
            }
            Err(e) => {
                add(&counters.connect_failures, 1);
                match e {
                    DialError::Resolve(error) => {
                        add(&counters.resolve_failures, 1);
                        let name = peer.addr();
                        shared.event(|| NetEvent::ConnectFailed {
                            peer: peer.id,
                            error: format!("looking up {name}: {error}"),
                        })
                    }
                    DialError::Io(error) => {
                        shared.event(|| NetEvent::ConnectFailed { peer: peer.id, error: error.to_string() })
                    }
                    DialError::Refused(reason) => report_refusal(&shared, peer.id, reason),
                    #[cfg(feature = "tls")]
                    DialError::Revoked => {}
                }
                lost = true;
                add(&counters.dropped_unreachable, peer.discard());
                back_off(&shared, &peer, backoff.next_delay());
                continue;
            }
        };
        add(&counters.connects, 1);
        if lost {
            add(&counters.reconnects, 1);
        }
        let connected_at = Instant::now();
        shared.event(|| NetEvent::Connected { peer: peer.id, addr });
        if peer.is_closed() {
            // Closed while dialing, maybe before the stream was registered.
            let _ = link.tcp().shutdown(Shutdown::Both);
            break;
        }
        let served = serve(&shared, &peer, &mut link, &mut batch, &mut buf);
        let _ = link.tcp().shutdown(Shutdown::Both);
        *lock(&peer.stream) = None;
        #[cfg(feature = "tls")]
        {
            *lock(&peer.chain) = None;
        }
        if buf.capacity() > KEEP_BUFFER {
            buf = BytesMut::with_capacity(64 << 10);
        }
        if let Err(error) = served {
            add(&counters.outbound_resets, 1);
            lost = true;
            if !peer.is_closed() {
                shared.event(|| NetEvent::Disconnected { peer: peer.id, error: error.to_string() });
            }
            back_off(&shared, &peer, backoff.connection_lost(connected_at.elapsed()));
        }
    }
}

/// Waits `delay` before the next dial (counted in the statistics as the
/// wait begins), unless the peer is closed first.
fn back_off<C: Carrier>(shared: &Shared<C>, peer: &Peer<C>, delay: Duration) {
    add(&shared.counters.backoff_waits, 1);
    add(&shared.counters.backoff_wait_ms, u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    peer.pause(delay);
}

/// Writes what is queued (or keepalives) until the peer is closed (`Ok`)
/// or the connection fails (`Err`; the items of the failed write are
/// counted as unreachable). Each turn takes up to [`WRITE_BYTES`] of the
/// queue, one item per class in turn, encodes it as frames within the
/// receiver's limits ([`Carrier::append`]) and writes it at once.
fn serve<C: Carrier>(
    shared: &Shared<C>,
    peer: &Peer<C>,
    stream: &mut Link,
    batch: &mut Vec<(C::Item, usize)>,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    while peer.take(batch, cfg.keepalive_interval) {
        if batch.is_empty() && peer.retire_due() {
            // Its grace is over: the writer's loop lets it go.
            return Ok(());
        }
        buf.clear();
        let done = if batch.is_empty() {
            append_keepalive(buf);
            Default::default()
        } else {
            C::append(cfg.id, peer.id, batch, &cfg.limits, buf)
        };
        batch.clear();
        add(&counters.dropped_invalid, done.invalid);
        let written = stream.write_all(buf).and_then(|()| stream.flush());
        if let Err(e) = written {
            add(&counters.dropped_unreachable, done.items);
            return Err(e);
        }
        add(&counters.bytes_sent, buf.len() as u64);
        add(&counters.frames_sent, done.frames);
        add(&counters.messages_sent, done.items);
    }
    Ok(())
}
