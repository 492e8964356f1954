//! One peer's outbound side: a bounded queue and the thread that dials the
//! peer, handshakes, and writes queued messages as frames.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::backoff::Backoff;
use super::frame::{PREFIX, append_frame, append_keepalive};
use super::handshake::{Hello, Refusal, read_reply};
use super::link::Link;
use super::stats::{NetEvent, add};
#[cfg(feature = "tls")]
use super::tls;
use super::{Shared, TcpConfig, lock};
use crate::framing;
use crate::message::Message;
use crate::types::NodeId;

/// Write to the socket once this much is buffered, so one batch of large
/// messages does not build one huge buffer.
const FLUSH_BYTES: usize = 256 << 10;
/// A write buffer that grew past this is released after the write.
const KEEP_BUFFER: usize = 1 << 20;

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    closed: bool,
}

/// What [`Peer::push`] did with a message.
pub(crate) enum Push {
    Queued,
    /// Dropped: its frame exceeds the frame limit.
    Oversized,
    /// Refused: the queue is full.
    Full,
    /// Refused: the peer was removed or the transport shut down.
    Closed,
}

/// A peer's outbound queue and connection.
pub(crate) struct Peer {
    id: NodeId,
    addr: Mutex<SocketAddr>,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// A clone of the live connection, so `close` can unblock a write.
    stream: Mutex<Option<TcpStream>>,
}

impl Peer {
    pub(crate) fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self {
            id,
            addr: Mutex::new(addr),
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            stream: Mutex::new(None),
        }
    }

    pub(crate) fn set_addr(&self, addr: SocketAddr) {
        *lock(&self.addr) = addr;
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        *lock(&self.addr)
    }

    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).messages.len()
    }

    /// Queues `message`, or says why not. A message whose frame exceeds the
    /// frame limit is dropped at once, as the peer would refuse it.
    pub(crate) fn push(&self, message: Message, cfg: &TcpConfig) -> Push {
        let len = framing::encoded_len(&message);
        if len > cfg.limits.max_frame_bytes {
            return Push::Oversized;
        }
        let size = len + PREFIX;
        let mut q = lock(&self.queue);
        if q.closed {
            return Push::Closed;
        }
        if q.messages.len() >= cfg.queue_capacity || q.bytes.saturating_add(size) > cfg.queue_bytes {
            return Push::Full;
        }
        q.bytes += size;
        q.messages.push_back(message);
        drop(q);
        self.ready.notify_one();
        Push::Queued
    }

    /// Stops the writer: drops the queue and closes the connection.
    pub(crate) fn close(&self) {
        {
            let mut q = lock(&self.queue);
            q.closed = true;
            q.messages.clear();
            q.bytes = 0;
        }
        self.ready.notify_all();
        if let Some(stream) = lock(&self.stream).as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    /// Drops everything queued; returns how many messages that was.
    fn discard(&self) -> u64 {
        let mut q = lock(&self.queue);
        let n = q.messages.len() as u64;
        q.messages.clear();
        q.bytes = 0;
        n
    }

    /// Locks the queue once `until` holds for it, or once `wait` has passed.
    fn wait_for(&self, wait: Duration, until: impl Fn(&Queue) -> bool) -> MutexGuard<'_, Queue> {
        let q = lock(&self.queue);
        match self.ready.wait_timeout_while(q, wait, |q| !until(q)) {
            Ok((q, _)) => q,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Waits up to `wait` for messages and moves them all to `out`.
    /// Returns `false` once the peer is closed.
    fn take(&self, out: &mut Vec<Message>, wait: Duration) -> bool {
        let mut q = self.wait_for(wait, |q| !q.messages.is_empty() || q.closed);
        if q.closed {
            return false;
        }
        out.extend(q.messages.drain(..));
        q.bytes = 0;
        true
    }

    /// Sleeps for `wait` unless the peer is closed first.
    fn pause(&self, wait: Duration) {
        drop(self.wait_for(wait, |q| q.closed));
    }
}

enum DialError {
    Io(std::io::Error),
    Refused(Refusal),
}

fn dial(shared: &Shared, peer: &Peer) -> Result<Link, DialError> {
    let cfg = &shared.cfg;
    let addr = *lock(&peer.addr);
    let stream = TcpStream::connect_timeout(&addr, cfg.connect_timeout).map_err(DialError::Io)?;
    stream.set_nodelay(true).map_err(DialError::Io)?;
    // Registered before the handshake, so `close` can cut a handshake with
    // a slow peer short instead of waiting out its timeout.
    *lock(&peer.stream) = stream.try_clone().ok();
    if peer.is_closed() {
        let _ = stream.shutdown(Shutdown::Both);
        return Err(DialError::Io(std::io::Error::new(std::io::ErrorKind::Interrupted, "peer closed")));
    }
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
    let hello = Hello::new(cfg.cluster_id, cfg.id, peer.id);
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
    Ok(link)
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
pub(crate) fn run(shared: Arc<Shared>, peer: Arc<Peer>) {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut lost = false;
    let mut batch = Vec::new();
    let mut buf = BytesMut::with_capacity(64 << 10);
    while !peer.is_closed() && !shared.is_shutdown() {
        let mut link = match dial(&shared, &peer) {
            Ok(link) => link,
            Err(e) => {
                *lock(&peer.stream) = None;
                add(&counters.connect_failures, 1);
                match e {
                    DialError::Io(error) => {
                        shared.event(|| NetEvent::ConnectFailed { peer: peer.id, error: error.to_string() })
                    }
                    DialError::Refused(reason) => {
                        #[cfg(feature = "tls")]
                        match reason {
                            Refusal::Tls(_) => add(&counters.tls_failures, 1),
                            Refusal::Identity(_) => add(&counters.identity_refusals, 1),
                            _ => {}
                        }
                        if refused_by_us(reason) {
                            shared.event(|| NetEvent::Untrusted { peer: peer.id, reason });
                        } else {
                            add(&counters.handshakes_rejected, 1);
                            shared.event(|| NetEvent::Rejected { peer: peer.id, reason });
                        }
                    }
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
        let addr = *lock(&peer.addr);
        shared.event(|| NetEvent::Connected { peer: peer.id, addr });
        if peer.is_closed() {
            // Closed while dialing, maybe before the stream was registered.
            let _ = link.tcp().shutdown(Shutdown::Both);
            break;
        }
        let served = serve(&shared, &peer, &mut link, &mut batch, &mut buf);
        let _ = link.tcp().shutdown(Shutdown::Both);
        *lock(&peer.stream) = None;
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
fn back_off(shared: &Shared, peer: &Peer, delay: Duration) {
    add(&shared.counters.backoff_waits, 1);
    add(&shared.counters.backoff_wait_ms, u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    peer.pause(delay);
}

/// Writes batches (or keepalives) until the peer is closed (`Ok`) or the
/// connection fails (`Err`; the messages of the failed batch are counted
/// as unreachable).
fn serve(
    shared: &Shared,
    peer: &Peer,
    stream: &mut Link,
    batch: &mut Vec<Message>,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    let max = cfg.limits.max_frame_bytes;
    while peer.take(batch, cfg.keepalive_interval) {
        buf.clear();
        if batch.is_empty() {
            append_keepalive(buf);
        }
        let mut pending = 0u64;
        let mut result = Ok(());
        for message in batch.drain(..) {
            if result.is_err() {
                pending += 1;
                continue;
            }
            if append_frame(buf, &message, max) {
                pending += 1;
            } else {
                add(&counters.dropped_oversized, 1);
            }
            if buf.len() >= FLUSH_BYTES {
                result = flush(shared, stream, buf, &mut pending);
            }
        }
        if result.is_ok() && !buf.is_empty() {
            result = flush(shared, stream, buf, &mut pending);
        }
        if let Err(e) = result {
            add(&counters.dropped_unreachable, pending);
            return Err(e);
        }
    }
    Ok(())
}

fn flush(shared: &Shared, stream: &mut Link, buf: &mut BytesMut, pending: &mut u64) -> std::io::Result<()> {
    stream.write_all(buf)?;
    stream.flush()?;
    add(&shared.counters.bytes_sent, buf.len() as u64);
    add(&shared.counters.messages_sent, *pending);
    *pending = 0;
    buf.clear();
    Ok(())
}
