//! The inbound side: the accept loop, and one reader thread per accepted
//! connection (handshake, then frames into the node's inbox).

use std::io::{BufReader, ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame::{PREFIX, StreamError, read_frame};
use super::handshake::{HELLO_LEN, Hello, ReadBy, Refusal, write_reply};
use super::stats::{NetEvent, add};
use super::{Shared, lock};
use crate::framing;
use crate::types::NodeId;

/// How often the accept loop looks for new connections and for shutdown.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Accepts connections until shutdown. The listener is non-blocking and
/// polled, so shutdown never waits on a blocked `accept`.
pub(crate) fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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

fn admit(shared: &Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let id = {
        let mut conns = lock(&shared.conns);
        if conns.open.len() >= shared.cfg.max_connections {
            add(&shared.counters.connections_over_limit, 1);
            drop(conns);
            shared.event(|| NetEvent::Refused { addr, reason: Refusal::TooManyConnections });
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let Ok(clone) = stream.try_clone() else { return };
        conns.next += 1;
        let id = conns.next;
        conns.open.insert(id, clone);
        id
    };
    let s = Arc::clone(shared);
    let name = format!("raft-io-tcp-{}-conn-{id}", shared.cfg.id);
    let spawned = shared.spawn(name, move || {
        let peer = serve(&s, &stream, addr, id);
        let mut conns = lock(&s.conns);
        conns.open.remove(&id);
        if let Some(peer) = peer {
            if conns.by_peer.get(&peer) == Some(&id) {
                conns.by_peer.remove(&peer);
            }
        }
    });
    if spawned.is_err() {
        if let Some(stream) = lock(&shared.conns).open.remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Runs one inbound connection; returns the peer once the handshake passed.
fn serve(shared: &Shared, stream: &TcpStream, addr: SocketAddr, conn: u64) -> Option<NodeId> {
    let cfg = &shared.cfg;
    let peer = match handshake(shared, stream) {
        Ok(peer) => peer,
        Err(reason) => {
            add(&shared.counters.handshake_refusals, 1);
            shared.event(|| NetEvent::Refused { addr, reason });
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        }
    };
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
    if stream.set_read_timeout(Some(cfg.idle_timeout)).is_err() {
        return Some(peer);
    }
    let reason = read_frames(shared, stream, peer);
    if !shared.is_shutdown() {
        shared.event(|| NetEvent::InboundClosed { peer, reason });
    }
    let _ = stream.shutdown(Shutdown::Both);
    Some(peer)
}

/// Reads and checks the hello, answers it; the peer's id if accepted.
fn handshake(shared: &Shared, mut stream: &TcpStream) -> Result<NodeId, Refusal> {
    let cfg = &shared.cfg;
    stream.set_read_timeout(Some(cfg.handshake_timeout)).map_err(|_| Refusal::Incomplete)?;
    stream.set_write_timeout(Some(cfg.handshake_timeout)).map_err(|_| Refusal::Incomplete)?;
    let _ = stream.set_nodelay(true);
    let mut bytes = [0u8; HELLO_LEN];
    let deadline = Instant::now() + cfg.handshake_timeout;
    ReadBy { stream, deadline }.read_exact(&mut bytes).map_err(|_| Refusal::Incomplete)?;
    let hello = Hello::decode(&bytes)?;
    match hello.check(cfg.cluster_id, cfg.id, |id| shared.is_peer(id)) {
        Ok(()) => {
            write_reply(&mut stream, cfg.id, None).map_err(|_| Refusal::Incomplete)?;
            Ok(hello.from)
        }
        Err(reason) => {
            let _ = write_reply(&mut stream, cfg.id, Some(reason));
            Err(reason)
        }
    }
}

/// Reads frames until the connection ends; returns why it ended.
fn read_frames(shared: &Shared, stream: &TcpStream, peer: NodeId) -> String {
    let cfg = &shared.cfg;
    let counters = &shared.counters;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    loop {
        match read_frame(&mut reader, cfg.limits.max_frame_bytes) {
            Ok(None) => add(&counters.bytes_received, PREFIX as u64),
            Ok(Some(frame)) => {
                add(&counters.bytes_received, (PREFIX + frame.len()) as u64);
                match framing::decode(&frame, &cfg.limits) {
                    Ok(m) if m.from == peer && m.to == cfg.id => shared.deliver(m, frame.len()),
                    Ok(_) => add(&counters.misaddressed, 1),
                    Err(error) => {
                        add(&counters.decode_errors, 1);
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
