//! A connection's byte stream: plain TCP, or (feature `tls`) a TLS session
//! over it. Reads and writes can be held to one deadline (the handshake's),
//! however the peer splits its bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::handshake::ReadBy;

/// The socket, with an optional deadline for every read and write.
struct Sock<'a> {
    tcp: &'a TcpStream,
    deadline: Option<Instant>,
}

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.deadline {
            Some(deadline) => ReadBy { stream: self.tcp, deadline }.read(buf),
            None => (&mut &*self.tcp).read(buf),
        }
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.deadline {
            Some(deadline) => ReadBy { stream: self.tcp, deadline }.write(buf),
            None => (&mut &*self.tcp).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection's stream, after (or, for TLS, during) the handshake.
pub(crate) struct Link {
    tcp: TcpStream,
    deadline: Option<Instant>,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::Connection>>,
}

impl Link {
    /// Plain TCP.
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self {
            tcp,
            deadline: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// TLS over `tcp` (its handshake not yet run).
    #[cfg(feature = "tls")]
    pub(crate) fn tls(tcp: TcpStream, conn: rustls::Connection) -> Self {
        Self { tcp, deadline: None, tls: Some(Box::new(conn)) }
    }

    /// The socket.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Holds every read and write to `deadline` (`None`: the socket's own
    /// timeouts, as last set).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Runs the TLS handshake to its end (nothing to do on plain TCP).
    #[cfg(feature = "tls")]
    pub(crate) fn complete_tls_handshake(&mut self) -> io::Result<()> {
        let mut sock = Sock { tcp: &self.tcp, deadline: self.deadline };
        if let Some(conn) = self.tls.as_deref_mut() {
            while conn.is_handshaking() {
                conn.complete_io(&mut sock)?;
            }
        }
        Ok(())
    }

    /// The peer's certificate (TLS, after the handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn peer_certificate(&self) -> Option<&[u8]> {
        let conn = self.tls.as_deref()?;
        let certs = match conn {
            rustls::Connection::Client(c) => c.peer_certificates(),
            rustls::Connection::Server(c) => c.peer_certificates(),
        };
        certs?.first().map(|c| c.as_ref())
    }

    /// The peer's certificate chain, its own first (TLS, after the
    /// handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn peer_chain(&self) -> Option<super::tls::PeerChain> {
        let conn = self.tls.as_deref()?;
        let certs = match conn {
            rustls::Connection::Client(c) => c.peer_certificates(),
            rustls::Connection::Server(c) => c.peer_certificates(),
        }?;
        Some(super::tls::PeerChain {
            certs: certs.iter().map(|c| c.clone().into_owned()).collect(),
            at: rustls::pki_types::UnixTime::now(),
        })
    }
}

/// Reads plaintext from a TLS session, reading records from the socket as
/// needed.
#[cfg(feature = "tls")]
fn tls_read(conn: &mut rustls::Connection, sock: &mut Sock<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        // At the end of the stream the reader reports it on the next turn
        // (clean close or unexpected EOF), so this loop always ends.
        conn.read_tls(sock)?;
        if let Err(e) = conn.process_new_packets() {
            // Send the alert that says why, if the socket still takes it.
            let _ = conn.write_tls(sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

#[cfg(feature = "tls")]
fn tls_flush(conn: &mut rustls::Connection, sock: &mut Sock<'_>) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut sock = Sock { tcp: &self.tcp, deadline: self.deadline };
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_deref_mut() {
            return tls_read(conn, &mut sock, buf);
        }
        sock.read(buf)
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sock = Sock { tcp: &self.tcp, deadline: self.deadline };
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_deref_mut() {
            let n = conn.writer().write(buf)?;
            tls_flush(conn, &mut sock)?;
            return Ok(n);
        }
        sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_deref_mut() {
            let mut sock = Sock { tcp: &self.tcp, deadline: self.deadline };
            return tls_flush(conn, &mut sock);
        }
        Ok(())
    }
}
