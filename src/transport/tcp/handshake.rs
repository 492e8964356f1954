//! The connection handshake: a fixed 32-byte hello from the dialer, a fixed
//! 16-byte reply from the acceptor (`docs/PROTOCOL.md`, "TCP transport").
//!
//! ```text
//! hello  = "RFIO" version:u16 kind:u16     cluster_id:u64 from:u64 to:u64   (big-endian)
//! reply  = "RFIO" version:u16 status:u16   node:u64                         (big-endian)
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::types::NodeId;

/// Reads from a stream with one deadline for the whole handshake, however
/// the peer splits its bytes: each read may wait only for the time left, so
/// a peer trickling its hello a byte at a time cannot hold the connection
/// (and its slot) much past the handshake timeout.
pub(crate) struct ReadBy<'a> {
    /// The stream.
    pub(crate) stream: &'a TcpStream,
    /// When the handshake must be complete.
    pub(crate) deadline: Instant,
}

impl Read for ReadBy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake not complete within its timeout"));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf).map_err(|e| match e.kind() {
            // A read timeout is `WouldBlock` on Unix, `TimedOut` on Windows.
            io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, e),
            _ => e,
        })
    }
}

impl Write for ReadBy<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake not complete within its timeout"));
        }
        self.stream.set_write_timeout(Some(left))?;
        (&mut &*self.stream).write(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, e),
            _ => e,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The four bytes every connection starts with.
pub(crate) const MAGIC: [u8; 4] = *b"RFIO";
/// The transport protocol version this build speaks. Version 3 (raft-io
/// 0.8) names in the hello what the connection carries ([`KIND_MESSAGES`]:
/// single-message frames, format 2; [`KIND_BATCHES`]: batch frames, format
/// 3). Version 2 (0.8 builds before batch connections) left that field
/// reserved and ignored it, so a batch connection to such a node would have
/// been misread: the version was bumped instead, and the two refuse each
/// other at the handshake with a typed [`Refusal::UnsupportedVersion`].
/// Version 1 (0.7) carried format 1, which this build refuses the same way.
pub(crate) const VERSION: u16 = 3;
/// Hello `kind`: a connection of single-message frames (`TcpTransport`).
pub(crate) const KIND_MESSAGES: u16 = 0;
/// Hello `kind`: a connection of batch frames (`TcpGroupTransport`).
pub(crate) const KIND_BATCHES: u16 = 1;
/// Length of the dialer's hello.
pub(crate) const HELLO_LEN: usize = 32;
/// Length of the acceptor's reply.
pub(crate) const REPLY_LEN: usize = 16;

/// Why a handshake was refused, by the acceptor (inbound) or as reported by
/// the peer (outbound).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The connection did not start with the magic bytes: not a raft-io
    /// peer. Closed without a reply.
    #[error("not a raft-io connection (bad magic)")]
    BadMagic,
    /// The peer speaks another transport version.
    #[error("unsupported transport version {0}")]
    UnsupportedVersion(u16),
    /// The peer belongs to another cluster. (When the dialer learns of it
    /// from a refusal, both fields hold the id it sent: the acceptor does
    /// not reveal its own.)
    #[error("wrong cluster id {found} (expected {expected})")]
    WrongCluster {
        /// This node's cluster id.
        expected: u64,
        /// The id the peer sent.
        found: u64,
    },
    /// The peer dialed another node id than the one listening here (or the
    /// peer that answered is not the node we dialed).
    #[error("wrong node id {found} (expected {expected})")]
    WrongNode {
        /// The node id that should have been named.
        expected: NodeId,
        /// The node id named.
        found: NodeId,
    },
    /// The dialer's node id is not a configured peer of this node.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The dialer asked for another kind of connection than the acceptor
    /// serves: a `TcpGroupTransport` (batch frames, kind 1) dialing a
    /// `TcpTransport` (single messages, kind 0), or the reverse, or a kind
    /// this build does not know. Reply status 7.
    #[error("wrong connection kind {found} (this node serves kind {expected})")]
    WrongKind {
        /// The kind this node serves (the acceptor's; when the dialer
        /// learns of it from a refusal, the kind it sent).
        expected: u16,
        /// The kind the dialer asked for.
        found: u16,
    },
    /// The acceptor has too many connections open.
    #[error("too many connections")]
    TooManyConnections,
    /// The acceptor has too many connections still in their handshake
    /// ([`TcpConfig::max_pending_handshakes`](super::TcpConfig::max_pending_handshakes)).
    /// Closed at once, without a reply.
    #[error("too many handshakes in progress")]
    TooManyHandshakes,
    /// The TLS handshake failed (feature `tls`): no certificate, an
    /// untrusted or expired one, or no TLS at all. Closed without a
    /// raft-io reply (TLS reports it with an alert).
    #[cfg(feature = "tls")]
    #[error("TLS handshake failed: {0}")]
    Tls(super::tls::TlsFailure),
    /// The peer's certificate does not name the node it claims in its hello
    /// (inbound) or the node we dialed (outbound), or names another cluster
    /// (feature `tls`). Reply status 6.
    #[cfg(feature = "tls")]
    #[error("certificate identity refused: {0}")]
    Identity(super::tls::IdentityError),
    /// The acceptor refused our certificate's identity for the node id and
    /// cluster our hello named (reply status 6, feature `tls`).
    #[cfg(feature = "tls")]
    #[error("the peer refused our certificate's identity")]
    IdentityRejected,
    /// The connection closed, failed or stalled past the handshake timeout
    /// before a complete hello arrived.
    #[error("incomplete hello")]
    Incomplete,
    /// The reply carried a status this build does not know.
    #[error("refused with unknown status {0}")]
    Unknown(u16),
}

impl Refusal {
    fn status(self) -> u16 {
        match self {
            Refusal::BadMagic | Refusal::Incomplete | Refusal::Unknown(_) => 0xffff,
            #[cfg(feature = "tls")]
            Refusal::Tls(_) => 0xffff,
            Refusal::UnsupportedVersion(_) => 1,
            Refusal::WrongCluster { .. } => 2,
            Refusal::WrongNode { .. } => 3,
            Refusal::UnknownPeer(_) => 4,
            Refusal::TooManyConnections | Refusal::TooManyHandshakes => 5,
            #[cfg(feature = "tls")]
            Refusal::Identity(_) | Refusal::IdentityRejected => 6,
            Refusal::WrongKind { .. } => 7,
        }
    }
}

/// The dialer's hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) version: u16,
    /// What the connection carries: [`KIND_MESSAGES`] or [`KIND_BATCHES`].
    pub(crate) kind: u16,
    pub(crate) cluster_id: u64,
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
}

impl Hello {
    pub(crate) fn new(cluster_id: u64, from: NodeId, to: NodeId, kind: u16) -> Self {
        Self { version: VERSION, kind, cluster_id, from, to }
    }

    pub(crate) fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_be_bytes());
        b[6..8].copy_from_slice(&self.kind.to_be_bytes());
        b[8..16].copy_from_slice(&self.cluster_id.to_be_bytes());
        b[16..24].copy_from_slice(&self.from.to_be_bytes());
        b[24..32].copy_from_slice(&self.to.to_be_bytes());
        b
    }

    /// Parses a hello; only the magic is checked here.
    pub(crate) fn decode(b: &[u8; HELLO_LEN]) -> Result<Self, Refusal> {
        if b[0..4] != MAGIC {
            return Err(Refusal::BadMagic);
        }
        Ok(Self {
            version: u16::from_be_bytes([b[4], b[5]]),
            kind: u16::from_be_bytes([b[6], b[7]]),
            cluster_id: u64_at(b, 8),
            from: u64_at(b, 16),
            to: u64_at(b, 24),
        })
    }

    /// The acceptor's checks, in order: version, connection kind (`kind`
    /// is the one this node serves), cluster, addressed node, known dialer.
    /// `known` tells whether a node id is a configured peer.
    pub(crate) fn check(
        &self,
        cluster_id: u64,
        me: NodeId,
        kind: u16,
        known: impl Fn(NodeId) -> bool,
    ) -> Result<(), Refusal> {
        if self.version != VERSION {
            return Err(Refusal::UnsupportedVersion(self.version));
        }
        if self.kind != kind {
            return Err(Refusal::WrongKind { expected: kind, found: self.kind });
        }
        if self.cluster_id != cluster_id {
            return Err(Refusal::WrongCluster { expected: cluster_id, found: self.cluster_id });
        }
        if self.to != me {
            return Err(Refusal::WrongNode { expected: me, found: self.to });
        }
        if self.from == 0 || self.from == me || !known(self.from) {
            return Err(Refusal::UnknownPeer(self.from));
        }
        Ok(())
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(w)
}

/// Writes the acceptor's reply: accepted (`None`) or refused.
pub(crate) fn write_reply(w: &mut impl Write, me: NodeId, refusal: Option<Refusal>) -> std::io::Result<()> {
    let mut b = [0u8; REPLY_LEN];
    b[0..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_be_bytes());
    b[6..8].copy_from_slice(&refusal.map_or(0, Refusal::status).to_be_bytes());
    b[8..16].copy_from_slice(&me.to_be_bytes());
    w.write_all(&b)
}

/// Reads and checks the acceptor's reply on the dialer's side.
pub(crate) fn read_reply(r: &mut impl Read, hello: &Hello) -> Result<Result<(), Refusal>, std::io::Error> {
    let mut b = [0u8; REPLY_LEN];
    r.read_exact(&mut b)?;
    if b[0..4] != MAGIC {
        return Ok(Err(Refusal::BadMagic));
    }
    let version = u16::from_be_bytes([b[4], b[5]]);
    let status = u16::from_be_bytes([b[6], b[7]]);
    let node = u64_at(&b, 8);
    let refusal = match status {
        0 if version != VERSION => Refusal::UnsupportedVersion(version),
        0 if node != hello.to => Refusal::WrongNode { expected: hello.to, found: node },
        0 => return Ok(Ok(())),
        1 => Refusal::UnsupportedVersion(version),
        // The acceptor's view; the ids are ours, as we sent them.
        2 => Refusal::WrongCluster { expected: hello.cluster_id, found: hello.cluster_id },
        3 => Refusal::WrongNode { expected: node, found: hello.to },
        4 => Refusal::UnknownPeer(hello.from),
        5 => Refusal::TooManyConnections,
        #[cfg(feature = "tls")]
        6 => Refusal::IdentityRejected,
        7 => Refusal::WrongKind { expected: hello.kind, found: hello.kind },
        other => Refusal::Unknown(other),
    };
    Ok(Err(refusal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_is_checked_in_order() {
        let hello = Hello::new(7, 2, 1, KIND_MESSAGES);
        let decoded = Hello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        let m = KIND_MESSAGES;
        assert_eq!(decoded.check(7, 1, m, |id| id == 2), Ok(()));
        assert_eq!(decoded.check(8, 1, m, |_| true), Err(Refusal::WrongCluster { expected: 8, found: 7 }));
        assert_eq!(decoded.check(7, 3, m, |_| true), Err(Refusal::WrongNode { expected: 3, found: 1 }));
        assert_eq!(decoded.check(7, 1, m, |_| false), Err(Refusal::UnknownPeer(2)));
        let future = Hello { version: 9, ..hello };
        assert_eq!(future.check(7, 1, m, |_| true), Err(Refusal::UnsupportedVersion(9)));
        // A raft-io 0.7 dialer (transport version 1, wire format 1), and a
        // 0.8 build before batch connections (version 2, no kind).
        for version in [1, 2] {
            let old = Hello { version, ..hello };
            assert_eq!(old.check(7, 1, m, |_| true), Err(Refusal::UnsupportedVersion(version)));
        }
        // A batch connection at a message node, and the reverse.
        assert_eq!(decoded.check(7, 1, KIND_BATCHES, |_| true), Err(Refusal::WrongKind { expected: 1, found: 0 }));
        let batches = Hello::new(7, 2, 1, KIND_BATCHES);
        assert_eq!(batches.check(7, 1, KIND_BATCHES, |_| true), Ok(()));
        assert_eq!(batches.check(7, 1, m, |_| true), Err(Refusal::WrongKind { expected: 0, found: 1 }));
        let mut garbage = hello.encode();
        garbage[0] = b'G';
        assert_eq!(Hello::decode(&garbage), Err(Refusal::BadMagic));
    }

    #[test]
    fn replies_name_the_refusal() {
        let hello = Hello::new(7, 2, 1, KIND_MESSAGES);
        let mut buf = Vec::new();
        write_reply(&mut buf, 1, None).unwrap();
        assert_eq!(read_reply(&mut buf.as_slice(), &hello).unwrap(), Ok(()));
        buf.clear();
        write_reply(&mut buf, 3, None).unwrap();
        assert_eq!(read_reply(&mut buf.as_slice(), &hello).unwrap(), Err(Refusal::WrongNode { expected: 1, found: 3 }));
        buf.clear();
        write_reply(&mut buf, 1, Some(Refusal::UnknownPeer(2))).unwrap();
        assert_eq!(read_reply(&mut buf.as_slice(), &hello).unwrap(), Err(Refusal::UnknownPeer(2)));
        buf.clear();
        write_reply(&mut buf, 1, Some(Refusal::WrongKind { expected: 1, found: 0 })).unwrap();
        assert_eq!(read_reply(&mut buf.as_slice(), &hello).unwrap(), Err(Refusal::WrongKind { expected: 0, found: 0 }));
        // What a raft-io 0.7 acceptor answers this build's hello: status 1
        // at its own version; and an "accepted" at version 1 is refused too.
        for (version, status) in [(1u16, 1u16), (1, 0), (2, 1), (2, 0)] {
            let mut old = Vec::from(MAGIC);
            old.extend_from_slice(&version.to_be_bytes());
            old.extend_from_slice(&status.to_be_bytes());
            old.extend_from_slice(&1u64.to_be_bytes());
            assert_eq!(read_reply(&mut old.as_slice(), &hello).unwrap(), Err(Refusal::UnsupportedVersion(version)));
        }
        assert!(read_reply(&mut &buf[..5], &hello).is_err(), "a short reply is an I/O error");
    }

    /// A peer that sends its hello one byte at a time, each within the
    /// handshake timeout, is still cut off when the whole timeout passes.
    #[test]
    fn a_trickled_hello_runs_into_one_deadline_for_the_whole_handshake() {
        use std::net::TcpListener;
        use std::time::Duration;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let trickle = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            for byte in Hello::new(7, 2, 1, KIND_MESSAGES).encode() {
                // The adversary's pacing: 20 ms per byte, 640 ms in all.
                if s.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let (stream, _) = listener.accept().unwrap();
        let mut hello = [0u8; HELLO_LEN];
        let deadline = Instant::now() + Duration::from_millis(150);
        let result = ReadBy { stream: &stream, deadline }.read_exact(&mut hello);
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        drop(stream);
        trickle.join().unwrap();
    }
}
