//! [`PeerAddr`]: where a peer is dialed — a socket address, or a host name
//! and port looked up again at every dial — and [`Resolve`], how a name
//! becomes the socket addresses to try.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;

/// The most addresses one lookup may give that a dial tries, in the order
/// the resolver gave them (each within the connect timeout).
pub(crate) const MAX_DIAL_ADDRESSES: usize = 8;

/// The longest host name, without a final dot (RFC 1035 §2.3.4).
const MAX_NAME_BYTES: usize = 253;
/// The longest label of a host name.
const MAX_LABEL_BYTES: usize = 63;

/// Where a peer is dialed: a socket address (`10.0.0.7:7001`,
/// `[::1]:7001`), or a host name and port (`raft-2.raft.svc:7001`).
///
/// A name is looked up again at every dial (the first connection, and each
/// one after a connection broke), with the transport's [`Resolve`]
/// ([`TcpConfig::resolver`](super::TcpConfig::resolver); the system's
/// resolver by default). So a peer that comes back at another IP address
/// under the same name — a restarted pod, a replaced machine — is reached
/// there without any change to the configuration. The name says where to
/// dial, never who answers: the handshake (and, under TLS, the
/// certificate) still proves the peer's node id.
///
/// Written as text (`Display`, [`FromStr`]) it is what
/// [`address_bytes`](super::address_bytes) stores in a configuration and
/// [`address_of`](super::address_of) reads back.
///
/// ```
/// use raft_io::transport::PeerAddr;
///
/// let ip: PeerAddr = "10.0.0.7:7001".parse().unwrap();
/// assert_eq!(ip.socket_addr(), Some("10.0.0.7:7001".parse().unwrap()));
///
/// let name: PeerAddr = "raft-2.raft.svc:7001".parse().unwrap();
/// assert_eq!((name.host(), name.port()), (Some("raft-2.raft.svc"), 7001));
/// assert_eq!(name.to_string(), "raft-2.raft.svc:7001");
///
/// assert!("raft-2:0".parse::<PeerAddr>().is_err(), "a name needs a port to dial");
/// assert!("1.2.3:7001".parse::<PeerAddr>().is_err(), "neither an IP address nor a host name");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Socket(SocketAddr),
    Name { host: Arc<str>, port: u16 },
}

/// Why text is not a [`PeerAddr`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The bytes are not UTF-8 text.
    #[error("an address is UTF-8 text")]
    NotUtf8,
    /// No `:port` after the host.
    #[error("{0:?} has no port: expected host:port or ip:port")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// The host is neither an IP address nor a host name: labels of ASCII
    /// letters, digits and `-` (not first or last), 1 to 63 bytes each,
    /// at most 253 in all, the last not all digits (RFC 1123 §2.1).
    #[error(
        "{0:?} is neither an IP address nor a host name (labels of letters, digits and '-', 1 to 63 bytes each, \
         253 in all, the last not all digits)"
    )]
    BadHost(String),
}

impl PeerAddr {
    /// The host name `host` at `port`, checked (see [`AddrError::BadHost`];
    /// one final dot is allowed). An IP address given as `host` is taken
    /// as one, not as a name.
    ///
    /// # Errors
    ///
    /// [`AddrError::BadHost`] or, for port 0, [`AddrError::BadPort`].
    pub fn name(host: &str, port: u16) -> Result<Self, AddrError> {
        if port == 0 {
            return Err(AddrError::BadPort("0".into()));
        }
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return Ok(Self(Kind::Socket(SocketAddr::new(ip, port))));
        }
        if !is_host_name(host) {
            return Err(AddrError::BadHost(host.into()));
        }
        Ok(Self(Kind::Name { host: host.into(), port }))
    }

    /// The socket address, when this is one (`None` for a name).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Kind::Socket(addr) => Some(*addr),
            Kind::Name { .. } => None,
        }
    }

    /// The host name, when this is one (`None` for a socket address).
    pub fn host(&self) -> Option<&str> {
        match &self.0 {
            Kind::Socket(_) => None,
            Kind::Name { host, .. } => Some(host),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match &self.0 {
            Kind::Socket(addr) => addr.port(),
            Kind::Name { port, .. } => *port,
        }
    }

    /// The socket addresses to dial, in order: this one, or what
    /// `resolver` gives for the name (at most [`MAX_DIAL_ADDRESSES`]).
    pub(crate) fn dial_targets(&self, resolver: &dyn Resolve) -> std::io::Result<Vec<SocketAddr>> {
        match &self.0 {
            Kind::Socket(addr) => Ok(vec![*addr]),
            Kind::Name { host, port } => {
                let mut found = resolver.resolve(host, *port)?;
                found.truncate(MAX_DIAL_ADDRESSES);
                if found.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{host}:{port}: the resolver gave no address"),
                    ));
                }
                Ok(found)
            }
        }
    }

    /// Reads an address from a configuration's bytes.
    ///
    /// # Errors
    ///
    /// As [`FromStr`], or [`AddrError::NotUtf8`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AddrError> {
        std::str::from_utf8(bytes).map_err(|_| AddrError::NotUtf8)?.parse()
    }
}

/// Whether `host` is a host name by RFC 1123 §2.1 (one final dot allowed),
/// whose last label is not all digits (so that it cannot be read as an
/// IPv4 address in a legacy form such as `1.2.3`).
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_NAME_BYTES {
        return false;
    }
    let label_ok = |label: &str| {
        (1..=MAX_LABEL_BYTES).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    host.split('.').all(label_ok)
        && !host.rsplit('.').next().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

impl FromStr for PeerAddr {
    type Err = AddrError;

    /// `ip:port` (`[v6]:port` for IPv6) or `host:port`.
    fn from_str(text: &str) -> Result<Self, AddrError> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self(Kind::Socket(addr)));
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(|| AddrError::NoPort(text.into()))?;
        if host.contains(':') {
            // An IPv6 address without brackets: its port cannot be told
            // from its last group.
            return Err(AddrError::BadHost(host.into()));
        }
        let port = port.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| AddrError::BadPort(port.into()))?;
        Self::name(host, port)
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self(Kind::Socket(addr))
    }
}

impl PartialEq<SocketAddr> for PeerAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.socket_addr() == Some(*other)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Socket(addr) => addr.fmt(f),
            Kind::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddr({self})")
    }
}

/// How a transport turns a peer's host name into socket addresses to dial
/// ([`TcpConfig::resolver`](super::TcpConfig::resolver)). It is called on
/// the peer's own writer thread, at every dial of a peer addressed by
/// name: a slow lookup holds back that peer's messages (queued within its
/// budget, as while it is unreachable) and the transport's shutdown, no
/// other peer's. A resolver with its own timeout, cache or service
/// registry is a closure away:
///
/// ```
/// use std::net::SocketAddr;
/// use raft_io::transport::TcpConfig;
///
/// let registry = |host: &str, port: u16| -> std::io::Result<Vec<SocketAddr>> {
///     match host {
///         "raft-2" => Ok(vec![SocketAddr::from(([10, 0, 0, 2], port))]),
///         _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not registered")),
///     }
/// };
/// let cfg = TcpConfig::new(1, "127.0.0.1:0".parse().unwrap())
///     .peer(2, "raft-2:7001".parse::<raft_io::transport::PeerAddr>().unwrap())
///     .resolver(registry);
/// # let _ = cfg;
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The socket addresses of `host` at `port`, to be tried in order.
    ///
    /// # Errors
    ///
    /// The name could not be looked up; the dial counts as failed
    /// ([`TcpStats::resolve_failures`](super::TcpStats::resolve_failures))
    /// and is retried after the usual backoff.
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
{
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self(host, port)
    }
}

/// The system's resolver (`getaddrinfo`, through the standard library):
/// the transports' default. It has no timeout of its own: the system's
/// configuration (`/etc/resolv.conf`'s `timeout` and `attempts`) bounds a
/// lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_and_names_parse_and_print_back() {
        for text in ["127.0.0.1:7001", "[::1]:7001", "localhost:7001", "raft-2.raft.svc:1", "node-2.example.:65535"] {
            let addr: PeerAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(addr.to_string(), text);
            assert_eq!(PeerAddr::from_bytes(text.as_bytes()), Ok(addr));
        }
        let name: PeerAddr = "raft-2.raft.svc:7001".parse().unwrap();
        assert_eq!((name.host(), name.port(), name.socket_addr()), (Some("raft-2.raft.svc"), 7001, None));
        let ip: PeerAddr = "10.0.0.7:7001".parse().unwrap();
        assert_eq!((ip.host(), ip.port()), (None, 7001));
        assert_eq!(ip, "10.0.0.7:7001".parse::<SocketAddr>().unwrap());
        // An IP address given as a "name" is an IP address.
        assert_eq!(PeerAddr::name("10.0.0.7", 7001), Ok(ip));
        assert_eq!(PeerAddr::name("[::1]", 7001).unwrap().socket_addr(), Some("[::1]:7001".parse().unwrap()));
    }

    #[test]
    fn what_is_neither_is_refused_with_its_reason() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}.example", ["abcdefghi"; 25].join("."));
        let cases: &[(&str, AddrError)] = &[
            ("127.0.0.1", AddrError::NoPort("127.0.0.1".into())),
            ("localhost", AddrError::NoPort("localhost".into())),
            ("1.2.3.4:99999", AddrError::BadPort("99999".into())),
            ("localhost:0", AddrError::BadPort("0".into())),
            ("localhost:http", AddrError::BadPort("http".into())),
            ("1.2.3:7001", AddrError::BadHost("1.2.3".into())),
            ("::1:7001", AddrError::BadHost("::1".into())),
            (":7001", AddrError::BadHost(String::new())),
            ("-raft:7001", AddrError::BadHost("-raft".into())),
            ("raft-:7001", AddrError::BadHost("raft-".into())),
            ("ra ft:7001", AddrError::BadHost("ra ft".into())),
            ("raft..svc:7001", AddrError::BadHost("raft..svc".into())),
            ("raft_2:7001", AddrError::BadHost("raft_2".into())),
            ("not even an address", AddrError::NoPort("not even an address".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<PeerAddr>().as_ref(), Err(expected), "{text}");
        }
        assert_eq!(format!("{long_label}:1").parse::<PeerAddr>(), Err(AddrError::BadHost(long_label)));
        assert!(long_name.len() > MAX_NAME_BYTES);
        assert_eq!(format!("{long_name}:1").parse::<PeerAddr>(), Err(AddrError::BadHost(long_name)));
        let longest = format!("{}.example", ["abcdefghi"; 24].join("."));
        assert!(longest.len() <= MAX_NAME_BYTES && format!("{longest}:1").parse::<PeerAddr>().is_ok());
        assert_eq!(PeerAddr::from_bytes(b"\xff\xfe:1"), Err(AddrError::NotUtf8));
    }

    #[test]
    fn a_name_is_dialed_at_what_the_resolver_gives_now() {
        let calls = std::sync::atomic::AtomicU16::new(0);
        let calls = Arc::new(calls);
        let seen = Arc::clone(&calls);
        let resolver = move |host: &str, port: u16| -> std::io::Result<Vec<SocketAddr>> {
            assert_eq!((host, port), ("raft-2", 7001));
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok((0..20).map(|i| SocketAddr::from(([10, 0, n as u8, i], port))).collect())
        };
        let name: PeerAddr = "raft-2:7001".parse().unwrap();
        let first = name.dial_targets(&resolver).unwrap();
        assert_eq!(first.len(), MAX_DIAL_ADDRESSES, "at most this many tried");
        assert_eq!(first[0], SocketAddr::from(([10, 0, 0, 0], 7001)));
        assert_eq!(name.dial_targets(&resolver).unwrap()[0], SocketAddr::from(([10, 0, 1, 0], 7001)), "asked again");
        let ip: PeerAddr = "10.9.9.9:1".parse().unwrap();
        assert_eq!(ip.dial_targets(&resolver).unwrap(), vec!["10.9.9.9:1".parse().unwrap()]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "a socket address is not looked up");
        let nothing = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> { Ok(Vec::new()) };
        assert_eq!(name.dial_targets(&nothing).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn the_system_resolver_finds_localhost() {
        let found = SystemResolver.resolve("localhost", 7001).unwrap();
        assert!(found.iter().any(|a| a.ip().is_loopback() && a.port() == 7001), "{found:?}");
    }
}
