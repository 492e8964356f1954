//! Mutually authenticated TLS for the TCP transport (feature `tls`).
//!
//! Each connection runs TLS 1.3 ([rustls], `ring` provider) **before** the
//! raft-io handshake, which then travels inside the TLS session unchanged.
//! Both ends present a certificate chain that must lead to one of the
//! configured trusted roots and be valid now, and each certificate names its
//! node with one URI subject alternative name (see [`NodeIdentity`]):
//!
//! ```text
//! raft-io://cluster/<cluster_id>/node/<node_id>
//! ```
//!
//! * The **dialer** checks that the acceptor's certificate names the node it
//!   dialed in its own cluster, before it sends its hello.
//! * The **acceptor** checks that the dialer's certificate names the node
//!   the hello claims (`from`) in its own cluster, and refuses the
//!   connection otherwise (reply status 6) before reading any frame.
//!
//! Node certificates are used as server and as client certificates, so if
//! they carry an extended key usage it must include both `serverAuth` and
//! `clientAuth`. Session resumption and session tickets are off: every
//! connection is a full handshake, checked against the material in force
//! when it starts. [`TcpTransport::rotate_tls`](super::TcpTransport::rotate_tls)
//! replaces that material at run time; open connections keep theirs, except
//! those whose peer's certificate the new revocation lists revoke, which are
//! closed.
//!
//! What TLS protects against, and what it does not, is in `SECURITY.md`.
//!
//! ```
//! use raft_io::transport::tls::{NodeIdentity, TlsConfig, TlsConfigError};
//!
//! // Files that do not exist: the error names the file and the reason.
//! let err = TlsConfig::from_pem_files("/no/ca.pem", "/no/node.pem", "/no/node.key").unwrap_err();
//! assert!(matches!(err, TlsConfigError::Read { .. }));
//! assert!(err.to_string().contains("/no/ca.pem"));
//! assert_eq!(NodeIdentity::new(7, 1).uri(), "raft-io://cluster/7/node/1");
//! ```

mod config;
mod identity;
mod reload;
mod revocation;
mod rotation;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

pub use config::{TlsConfig, TlsConfigError};
pub use identity::{IdentityError, NodeIdentity, URI_PREFIX};
pub use reload::{Reload, TlsReloader, TlsWatch, TlsWatchStats};
pub(crate) use rotation::TlsState;

use super::handshake::Refusal;
use super::link::Link;

/// Why a TLS handshake failed. Carried by
/// [`Refusal::Tls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoCertificate,
    /// The peer's certificate does not lead to a trusted root.
    #[error("the peer's certificate is not issued by a trusted root")]
    UnknownIssuer,
    /// The peer's certificate has expired or is not valid yet.
    #[error("the peer's certificate has expired or is not yet valid")]
    Expired,
    /// The peer's certificate (or one of its chain) is revoked by a
    /// certificate revocation list in force
    /// ([`TlsConfig::with_crl_files`]).
    #[error("the peer's certificate is revoked")]
    Revoked,
    /// A certificate revocation list in force could not be used for the
    /// peer's certificate: its signature does not verify against its
    /// issuer, or the issuer may not sign lists (fail closed).
    #[error("a certificate revocation list for the peer's certificate is unusable")]
    RevocationList,
    /// The peer's certificate has an extended key usage that does not
    /// allow its role here: node certificates serve as server and as
    /// client certificates, so one with an extended key usage needs both
    /// `serverAuth` and `clientAuth`.
    #[error("the peer's certificate's extended key usage does not allow it (a node needs serverAuth and clientAuth)")]
    WrongKeyUsage,
    /// The peer presented a certificate authority's certificate
    /// (basicConstraints `CA:TRUE`) as its own: a node's certificate must
    /// not be a CA's, even one naming the node.
    #[error("the peer's certificate is a certificate authority's (CA:TRUE), not a node's")]
    CaCertificate,
    /// A certificate of the peer's chain is signed with an algorithm this
    /// build does not verify (with the `ring` provider: ECDSA P-256 or
    /// P-384 with SHA-256 or SHA-384, Ed25519, RSA PKCS#1 or PSS with
    /// SHA-256, SHA-384 or SHA-512), or with one that does not fit its
    /// issuer's key.
    #[error("the peer's certificate is signed with an unsupported signature algorithm")]
    UnsupportedSignatureAlgorithm,
    /// The peer's certificate is unusable otherwise (bad signature, key
    /// usage, unparseable, ...).
    #[error("the peer's certificate is invalid")]
    BadCertificate,
    /// The peer aborted the handshake with an alert: it refused our
    /// certificate (or our TLS).
    #[error("the peer aborted the TLS handshake (it refused our certificate?)")]
    RefusedByPeer,
    /// The peer's bytes are not well-formed TLS: a plaintext raft-io node,
    /// for one.
    #[error("the peer does not speak TLS")]
    NotTls,
    /// Any other TLS protocol failure.
    #[error("TLS protocol failure")]
    Protocol,
}

impl TlsFailure {
    fn of(error: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        match error {
            rustls::Error::NoCertificatesPresented => TlsFailure::NoCertificate,
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => TlsFailure::UnknownIssuer,
            rustls::Error::InvalidCertificate(
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
            ) => TlsFailure::Expired,
            rustls::Error::InvalidCertificate(C::Revoked) => TlsFailure::Revoked,
            rustls::Error::InvalidCertRevocationList(_) => TlsFailure::RevocationList,
            rustls::Error::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
                TlsFailure::WrongKeyUsage
            }
            #[allow(deprecated)]
            rustls::Error::InvalidCertificate(
                C::UnsupportedSignatureAlgorithm
                | C::UnsupportedSignatureAlgorithmContext { .. }
                | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
            ) => TlsFailure::UnsupportedSignatureAlgorithm,
            // rustls has no variant of its own for it: webpki's error, as is.
            rustls::Error::InvalidCertificate(C::Other(rustls::OtherError(other)))
                if matches!(other.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)) =>
            {
                TlsFailure::CaCertificate
            }
            rustls::Error::InvalidCertificate(_) => TlsFailure::BadCertificate,
            rustls::Error::AlertReceived(_) => TlsFailure::RefusedByPeer,
            rustls::Error::InvalidMessage(_) => TlsFailure::NotTls,
            _ => TlsFailure::Protocol,
        }
    }
}

/// The certificate chain a peer presented (its own first) and when its
/// handshake ended, kept for the life of the connection so that material
/// put in force later can revoke it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PeerChain {
    pub(crate) certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub(crate) at: rustls::pki_types::UnixTime,
}

/// The TLS failure inside an I/O error that rustls raised, if it is one.
pub(crate) fn failure_in(error: &io::Error) -> Option<TlsFailure> {
    error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).map(TlsFailure::of)
}

/// The acceptor's TLS handshake, to completion by `deadline`: the link and
/// the identity the dialer's certificate states (checked against its hello
/// by the caller). A socket failure or timeout is
/// [`Refusal::Incomplete`], as for a plaintext hello.
pub(crate) fn accept(
    tls: &TlsConfig,
    tcp: TcpStream,
    deadline: Instant,
) -> Result<(Link, Result<NodeIdentity, IdentityError>), Refusal> {
    let conn = rustls::ServerConnection::new(tls.server()).map_err(|e| Refusal::Tls(TlsFailure::of(&e)))?;
    let mut link = Link::tls(tcp, conn.into());
    link.set_deadline(Some(deadline));
    link.complete_tls_handshake().map_err(|e| failure_in(&e).map_or(Refusal::Incomplete, Refusal::Tls))?;
    // rustls already refused a dialer without a certificate; checked again
    // here so that no path reads a hello from an unauthenticated peer.
    let leaf = link.peer_certificate().ok_or(Refusal::Tls(TlsFailure::NoCertificate))?;
    let identity = identity::identity_of(leaf);
    Ok((link, identity))
}

/// Why the dialer's TLS handshake did not give a link.
pub(crate) enum ConnectError {
    /// TLS or the identity check refused the acceptor (or it refused us).
    Refused(Refusal),
    /// The socket failed, closed or timed out.
    Io(io::Error),
}

/// The dialer's TLS handshake with node `peer` of cluster `cluster_id` at
/// `addr`: refused unless the acceptor's certificate names that node.
pub(crate) fn connect(
    tls: &TlsConfig,
    tcp: TcpStream,
    addr: SocketAddr,
    cluster_id: u64,
    peer: crate::types::NodeId,
    deadline: Instant,
) -> Result<Link, ConnectError> {
    let refused = |reason| ConnectError::Refused(reason);
    // The name is not checked (the identity below is) and not sent (SNI
    // is off); rustls needs one.
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn =
        rustls::ClientConnection::new(tls.client(), name).map_err(|e| refused(Refusal::Tls(TlsFailure::of(&e))))?;
    let mut link = Link::tls(tcp, conn.into());
    link.set_deadline(Some(deadline));
    link.complete_tls_handshake().map_err(|e| match failure_in(&e) {
        Some(failure) => refused(Refusal::Tls(failure)),
        None => ConnectError::Io(e),
    })?;
    let leaf = link.peer_certificate().ok_or(refused(Refusal::Tls(TlsFailure::NoCertificate)))?;
    let identity = identity::identity_of(leaf).map_err(|e| refused(Refusal::Identity(e)))?;
    identity::check(identity, cluster_id, peer).map_err(|e| refused(Refusal::Identity(e)))?;
    Ok(link)
}

/// Checks the dialer's certified identity against the node its hello
/// claims, in this node's cluster.
pub(crate) fn check_claim(
    certified: Result<NodeIdentity, IdentityError>,
    cluster_id: u64,
    claimed: crate::types::NodeId,
) -> Result<(), Refusal> {
    certified.and_then(|id| identity::check(id, cluster_id, claimed)).map_err(Refusal::Identity)
}
