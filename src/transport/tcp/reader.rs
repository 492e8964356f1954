//! The inbound side: the accept loop, and one reader thread per accepted
//! connection (handshake, then frames into the node's inbox).

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::carrier::Carrier;
use super::frame::{PREFIX, StreamError, read_frame};
use super::handshake::{HELLO_LEN, Hello, Refusal, write_reply};
use super::link::Link;
use super::lock;
use super::shared::Shared;
use super::stats::{NetEvent, add};
#[cfg(feature = "tls")]
use super::tls;
use crate::framing::FrameError;
use crate::types::NodeId;

/// How often the accept loop looks for new connections and for shutdown.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Accepts connections until shutdown. The listener is non-blocking and
/// polled, so shutdown never waits on a blocked `accept`.
pub(crate) fn accept_loop<C: Carrier>(shared: Arc<Shared<C>>, listener: TcpListener) {
    while !shared.is_shutdown() {
        match listener.accept() {
            Ok((stream, addr)) => admit(&shared, stream, addr),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // WouldBlock: nothing pending. Anything else (out of file
            // descriptors, a connection reset before accept) is retried.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn admit<C: Carrier>(shared: &Arc<Shared<C>>, stream: TcpStream, addr: SocketAddr) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let id = {
        let mut conns = lock(&shared.conns);
        let over = if conns.open.len() >= shared.cfg.max_connections {
            Some((&shared.counters.connections_over_limit, Refusal::TooManyConnections))
        } else if conns.handshaking >= shared.cfg.max_pending_handshakes {
            Some((&shared.counters.handshakes_over_limit, Refusal::TooManyHandshakes))
        } else {
            None
        };
        if let Some((counter, reason)) = over {
            add(counter, 1);
            drop(conns);
            shared.event(|| NetEvent::Refused { addr, reason });
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let Ok(clone) = stream.try_clone() else { return };
        conns.next += 1;
        conns.handshaking += 1;
        let id = conns.next;
        conns.open.insert(id, clone);
        id
    };
    let s = Arc::clone(shared);
    let name = format!("raft-io-tcp-{}-conn-{id}", shared.cfg.id);
    let spawned = shared.spawn(name, move || {
        let peer = serve(&s, stream, addr, id);
        let mut conns = lock(&s.conns);
        conns.open.remove(&id);
        #[cfg(feature = "tls")]
        conns.chains.remove(&id);
        if let Some(peer) = peer {
            if conns.by_peer.get(&peer) == Some(&id) {
                conns.by_peer.remove(&peer);
            }
        }
    });
    if spawned.is_err() {
        let mut conns = lock(&shared.conns);
        conns.handshaking -= 1;
        if let Some(stream) = conns.open.remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Runs one inbound connection; returns the peer once the handshake passed.
fn serve<C: Carrier>(shared: &Shared<C>, stream: TcpStream, addr: SocketAddr, conn: u64) -> Option<NodeId> {
    let cfg = &shared.cfg;
    let shaken = handshake(shared, stream);
    lock(&shared.conns).handshaking -= 1;
    let (peer, mut link) = match shaken {
        Ok(done) => done,
        Err(reason) => {
            add(&shared.counters.handshake_refusals, 1);
            count_refusal(shared, reason);
            shared.event(|| NetEvent::Refused { addr, reason });
            if let Some(stream) = lock(&shared.conns).open.get(&conn) {
                let _ = stream.shutdown(Shutdown::Both);
            }
            return None;
        }
    };
    let stream = link.tcp();
    #[cfg(feature = "tls")]
    if let Some(chain) = link.peer_chain() {
        // Registered first, then checked against the material in force: a
        // rotation since the handshake either finds it registered or was
        // in force before the check. Before it may replace the peer's
        // older connection, which a revoked dialer must not close.
        lock(&shared.conns).chains.insert(conn, (peer, chain.clone()));
        if shared.revoked_now(peer, &chain, true) {
            let _ = stream.shutdown(Shutdown::Both);
            return Some(peer);
        }
    }
    {
        // The newest connection from a peer wins: the older one is
        // half-open (the peer restarted or reconnected).
        let mut conns = lock(&shared.conns);
        // Checked again under the lock `remove_peer` takes after removing
        // the peer: a peer removed during the handshake is either seen
        // here or finds this connection registered, and closes it.
        if !shared.is_peer(peer) {
            drop(conns);
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        }
        if let Some(old) = conns.by_peer.insert(peer, conn) {
            if let Some(old) = conns.open.get(&old) {
                let _ = old.shutdown(Shutdown::Both);
            }
        }
    }
    shared.event(|| NetEvent::Accepted { peer, addr });
    let timeouts = stream
        .set_read_timeout(Some(cfg.idle_timeout))
        .and_then(|()| stream.set_write_timeout(Some(cfg.write_timeout)));
    if timeouts.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
        return Some(peer);
    }
    link.set_deadline(None);
    let reason = read_frames(shared, &mut link, peer);
    if !shared.is_shutdown() {
        shared.event(|| NetEvent::InboundClosed { peer, reason });
    }
    let _ = link.tcp().shutdown(Shutdown::Both);
    Some(peer)
}

/// Counts the TLS and identity refusals apart (feature `tls`).
fn count_refusal<C: Carrier>(shared: &Shared<C>, reason: Refusal) {
    #[cfg(feature = "tls")]
    match reason {
        Refusal::Tls(_) => add(&shared.counters.tls_failures, 1),
        Refusal::Identity(_) => add(&shared.counters.identity_refusals, 1),
        _ => {}
    }
    #[cfg(not(feature = "tls"))]
    let _ = (shared, reason);
}

/// Runs the TLS handshake if configured, then reads and checks the hello
/// and answers it; the peer's id and the link if accepted. Everything up to
/// the reply must be done within one `handshake_timeout`.
fn handshake<C: Carrier>(shared: &Shared<C>, stream: TcpStream) -> Result<(NodeId, Link), Refusal> {
    let cfg = &shared.cfg;
    let deadline = Instant::now() + cfg.handshake_timeout;
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    let (mut link, certified) = match &shared.tls {
        Some(tls) => {
            let (link, certified) = tls::accept(&tls.current(), stream, deadline)?;
            (link, Some(certified))
        }
        None => (Link::plain(stream), None),
    };
    #[cfg(not(feature = "tls"))]
    let mut link = Link::plain(stream);
    link.set_deadline(Some(deadline));
    let mut bytes = [0u8; HELLO_LEN];
    link.read_exact(&mut bytes).map_err(|_| Refusal::Incomplete)?;
    let hello = Hello::decode(&bytes)?;
    #[allow(unused_mut)]
    let mut checked = hello.check(cfg.cluster_id, cfg.id, C::KIND, |id| shared.is_peer(id));
    #[cfg(feature = "tls")]
    if let (Ok(()), Some(certified)) = (checked, certified) {
        checked = tls::check_claim(certified, cfg.cluster_id, hello.from);
    }
    match checked {
        Ok(()) => {
            write_reply(&mut link, cfg.id, None).and_then(|()| link.flush()).map_err(|_| Refusal::Incomplete)?;
            Ok((hello.from, link))
        }
        Err(reason) => {
            let _ = write_reply(&mut link, cfg.id, Some(reason)).and_then(|()| link.flush());
            Err(reason)
        }
    }
}

/// Items of one frame whose room a reader keeps for the next frame (a
/// frame of up to `max_batch_items` gives the rest back).
const KEEP_DECODED: usize = 1024;

/// Reads frames until the connection ends; returns why it ended.
fn read_frames<C: Carrier>(shared: &Shared<C>, stream: &mut Link, peer: NodeId) -> String {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    // A frame's items, handed to the inbox together (kept between frames).
    let mut decoded = Vec::new();
    loop {
        match read_frame(&mut reader, cfg.limits.max_frame_bytes) {
            Ok(None) => add(&counters.bytes_received, PREFIX as u64),
            Ok(Some(frame)) => {
                add(&counters.bytes_received, (PREFIX + frame.len()) as u64);
                let result = C::decode(&frame, &cfg.limits, peer, cfg.id, &mut |item, size| decoded.push((item, size)));
                shared.deliver_all(&mut decoded);
                if decoded.capacity() > KEEP_DECODED {
                    // A large frame's room is given back.
                    decoded = Vec::new();
                }
                match result {
                    Ok(misaddressed) => add(&counters.misaddressed, misaddressed),
                    Err(error) => {
                        add(&counters.decode_errors, 1);
                        // A frame of the other kind: a peer that does not
                        // speak what its handshake announced.
                        if matches!(error, FrameError::BatchFrame | FrameError::SingleMessageFrame) {
                            add(&counters.wrong_kind_frames, 1);
                        }
                        shared.event(|| NetEvent::DecodeError { peer, error });
                    }
                }
            }
            Err(StreamError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                return "closed by the peer".into();
            }
            Err(e) => {
                if !shared.is_shutdown() {
                    add(&counters.inbound_resets, 1);
                }
                return match e {
                    StreamError::Io(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        format!("silent for {:?} (half-open?)", cfg.idle_timeout)
                    }
                    e => e.to_string(),
                };
            }
        }
    }
}
