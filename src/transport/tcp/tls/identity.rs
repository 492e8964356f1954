//! A node's identity in its certificate: one URI subject alternative name
//!
//! ```text
//! raft-io://cluster/<cluster_id>/node/<node_id>
//! ```
//!
//! both numbers in canonical decimal (no sign, no leading zeros, at most
//! `u64::MAX`; the node id not 0). The certificate must carry exactly one
//! such URI (other SANs, DNS names for instance, are allowed and ignored).
//!
//! The SAN is read here from the DER with a small reader of its own that
//! follows only what it needs (`tbsCertificate`, its `[3]` extensions, the
//! `subjectAltName` extension `2.5.29.17`, its `uniformResourceIdentifier`
//! names, tag `[6]`). It runs only on certificates whose chain rustls has
//! already verified, and it never panics or allocates by a length it reads.

use crate::types::NodeId;

/// The URI prefix of every identity.
pub const URI_PREFIX: &str = "raft-io://cluster/";

/// A node's identity as its certificate states it: a cluster id and a node
/// id, stated by one URI subject alternative name of the form
/// [`uri`](Self::uri) writes (see the [`tls`](super) module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeIdentity {
    /// The cluster id ([`RaftConfig::cluster_id`](crate::RaftConfig::cluster_id)).
    pub cluster_id: u64,
    /// The node id (never 0).
    pub node_id: NodeId,
}

impl NodeIdentity {
    /// The identity of node `node_id` in cluster `cluster_id`.
    pub fn new(cluster_id: u64, node_id: NodeId) -> Self {
        Self { cluster_id, node_id }
    }

    /// The URI to put in the node's certificate as a subject alternative
    /// name: `raft-io://cluster/<cluster_id>/node/<node_id>`.
    ///
    /// ```
    /// use raft_io::transport::tls::NodeIdentity;
    /// assert_eq!(NodeIdentity::new(7, 2).uri(), "raft-io://cluster/7/node/2");
    /// ```
    pub fn uri(&self) -> String {
        format!("{URI_PREFIX}{}/node/{}", self.cluster_id, self.node_id)
    }

    /// Parses a URI of the form [`uri`](Self::uri) writes; `None` for
    /// anything else (another scheme, a non-canonical number, node 0,
    /// trailing bytes).
    ///
    /// ```
    /// use raft_io::transport::tls::NodeIdentity;
    /// assert_eq!(NodeIdentity::parse("raft-io://cluster/7/node/2"), Some(NodeIdentity::new(7, 2)));
    /// assert_eq!(NodeIdentity::parse("raft-io://cluster/7/node/02"), None);
    /// ```
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix(URI_PREFIX)?;
        let (cluster, node) = rest.split_once("/node/")?;
        let node_id = canonical_u64(node)?;
        if node_id == 0 {
            return None;
        }
        Some(Self { cluster_id: canonical_u64(cluster)?, node_id })
    }
}

impl std::fmt::Display for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Decimal digits only, no leading zero (but "0"), within `u64`.
fn canonical_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// Why a certificate's identity was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The certificate carries no `raft-io://cluster/<c>/node/<n>` URI (or
    /// could not be read far enough to find one).
    #[error("the certificate names no raft-io node (no URI SAN raft-io://cluster/<c>/node/<n>)")]
    Missing,
    /// The certificate carries more than one raft-io identity.
    #[error("the certificate names more than one raft-io node")]
    Ambiguous,
    /// The certificate is for another node than the one claimed (in the
    /// handshake's hello) or dialed.
    #[error("certificate is for node {certified}, but the connection is for node {claimed}")]
    WrongNode {
        /// The node id the connection claimed or was dialed for.
        claimed: NodeId,
        /// The node id the certificate names.
        certified: NodeId,
    },
    /// The certificate is for a node of another cluster.
    #[error("certificate is for cluster {certified}, expected cluster {expected}")]
    WrongCluster {
        /// This node's cluster id.
        expected: u64,
        /// The cluster id the certificate names.
        certified: u64,
    },
}

/// Checks that `certified` is node `claimed` of cluster `cluster_id`.
pub(crate) fn check(certified: NodeIdentity, cluster_id: u64, claimed: NodeId) -> Result<(), IdentityError> {
    if certified.cluster_id != cluster_id {
        return Err(IdentityError::WrongCluster { expected: cluster_id, certified: certified.cluster_id });
    }
    if certified.node_id != claimed {
        return Err(IdentityError::WrongNode { claimed, certified: certified.node_id });
    }
    Ok(())
}

/// The identity an X.509 certificate (DER) states.
pub(crate) fn identity_of(cert_der: &[u8]) -> Result<NodeIdentity, IdentityError> {
    let mut found = None;
    for uri in uri_sans(cert_der).ok_or(IdentityError::Missing)? {
        let Some(id) = std::str::from_utf8(uri).ok().and_then(NodeIdentity::parse) else {
            continue;
        };
        match found {
            Some(seen) if seen != id => return Err(IdentityError::Ambiguous),
            _ => found = Some(id),
        }
    }
    found.ok_or(IdentityError::Missing)
}

// DER tags.
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xa3; // [3] EXPLICIT, constructed
const URI_NAME: u8 = 0x86; // [6] IMPLICIT IA5String
/// 2.5.29.17, subjectAltName.
const SAN_OID: [u8; 3] = [0x55, 0x1d, 0x11];

/// Splits one DER element off `input`: its tag, its contents, the rest.
/// `None` on anything malformed (high tag numbers, indefinite or
/// over-long lengths, a length past the input).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The contents of `input`'s single element if it has tag `tag`.
fn contents_of(input: &[u8], tag: u8) -> Option<&[u8]> {
    match element(input)? {
        (t, contents, _) if t == tag => Some(contents),
        _ => None,
    }
}

/// The elements of a constructed element's contents, stopping (without an
/// error) at the first malformed one.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, contents, rest) = element(input)?;
        input = rest;
        Some((tag, contents))
    })
}

/// Every URI subject alternative name of a certificate; `None` if the
/// certificate cannot be read as far as its extensions.
fn uri_sans(cert_der: &[u8]) -> Option<Vec<&[u8]>> {
    let cert = contents_of(cert_der, SEQUENCE)?;
    let tbs = contents_of(cert, SEQUENCE)?;
    let mut uris = Vec::new();
    let Some((_, extensions)) = elements(tbs).find(|&(tag, _)| tag == EXTENSIONS) else {
        return Some(uris);
    };
    for (tag, extension) in elements(contents_of(extensions, SEQUENCE)?) {
        if tag != SEQUENCE {
            continue;
        }
        let mut parts = elements(extension);
        if parts.next() != Some((OID, &SAN_OID[..])) {
            continue;
        }
        let mut value = parts.next();
        if matches!(value, Some((BOOLEAN, _))) {
            value = parts.next();
        }
        let Some((OCTET_STRING, names)) = value else { return None };
        uris.extend(elements(contents_of(names, SEQUENCE)?).filter(|&(t, _)| t == URI_NAME).map(|(_, uri)| uri));
    }
    Some(uris)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cert_with(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> rcgen::SanType {
        rcgen::SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn the_uri_round_trips_and_only_canonical_numbers_parse() {
        let id = NodeIdentity::new(u64::MAX, 3);
        assert_eq!(NodeIdentity::parse(&id.uri()), Some(id));
        for bad in [
            "raft-io://cluster/7/node/0",
            "raft-io://cluster/07/node/1",
            "raft-io://cluster/+7/node/1",
            "raft-io://cluster/7/node/1/",
            "raft-io://cluster//node/1",
            "raft-io://cluster/18446744073709551616/node/1",
            "spiffe://cluster/7/node/1",
            "raft-io://cluster/7/node/1x",
        ] {
            assert_eq!(NodeIdentity::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_identity_is_read_from_the_certificate() {
        let der = cert_with(vec![
            rcgen::SanType::DnsName("n2.example".try_into().unwrap()),
            uri("raft-io://cluster/7/node/2"),
        ]);
        assert_eq!(identity_of(&der), Ok(NodeIdentity::new(7, 2)));
        assert_eq!(identity_of(&cert_with(vec![])), Err(IdentityError::Missing));
        assert_eq!(identity_of(&cert_with(vec![uri("raft-io://cluster/7/node/x")])), Err(IdentityError::Missing));
        let two = cert_with(vec![uri("raft-io://cluster/7/node/2"), uri("raft-io://cluster/7/node/3")]);
        assert_eq!(identity_of(&two), Err(IdentityError::Ambiguous));
        assert_eq!(identity_of(&der[..der.len() / 2]), Err(IdentityError::Missing));
    }

    #[test]
    fn the_check_names_what_differs() {
        let id = NodeIdentity::new(7, 3);
        assert_eq!(check(id, 7, 3), Ok(()));
        assert_eq!(check(id, 7, 2), Err(IdentityError::WrongNode { claimed: 2, certified: 3 }));
        assert_eq!(check(id, 8, 3), Err(IdentityError::WrongCluster { expected: 8, certified: 7 }));
    }

    proptest! {
        /// Any bytes, and any corruption of a real certificate, give an
        /// answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = identity_of(&bytes);
        }

        #[test]
        fn corrupted_certificates_never_panic(at in 0usize..2048, byte in any::<u8>()) {
            thread_local! {
                static DER: Vec<u8> = cert_with(vec![uri("raft-io://cluster/7/node/2")]);
            }
            let mut der = DER.with(Clone::clone);
            let at = at % der.len();
            der[at] = byte;
            let _ = identity_of(&der);
        }
    }
}
