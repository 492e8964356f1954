//! [`TlsConfig`]: a node's TLS material, checked once when it is loaded,
//! and the rustls client and server configurations built from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::identity::{self, IdentityError, NodeIdentity};
use super::revocation::{self, Revocations};

/// Why TLS material was refused. Every variant about material names where
/// it came from: the file's path, or `in-memory ...` for material given as
/// bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The trust set holds no certificate: no peer could ever be accepted.
    #[error("{origin}: empty trust set (no CA certificate found)")]
    EmptyTrustSet {
        /// Where the trust set came from.
        origin: String,
    },
    /// The certificate chain holds no certificate.
    #[error("{origin}: no certificate found")]
    NoCertificate {
        /// Where the chain came from.
        origin: String,
    },
    /// A certificate (or its PEM armour) could not be parsed.
    #[error("{origin}: malformed certificate: {reason}")]
    MalformedCertificate {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No private key was found.
    #[error("{origin}: no private key found")]
    NoKey {
        /// Where the key was looked for.
        origin: String,
    },
    /// The private key could not be parsed or is of an unsupported kind.
    #[error("{origin}: malformed or unsupported private key: {reason}")]
    MalformedKey {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key is not the key of the chain's first certificate.
    #[error("{key}: the private key does not match the certificate in {chain}")]
    KeyMismatch {
        /// Where the chain came from.
        chain: String,
        /// Where the key came from.
        key: String,
    },
    /// A certificate revocation list source holds no CRL.
    #[error("{origin}: no certificate revocation list found")]
    NoCrl {
        /// Where the lists were looked for.
        origin: String,
    },
    /// A certificate revocation list (or its PEM armour) could not be
    /// parsed, or is of a kind not supported (a delta CRL, an indirect CRL,
    /// a partitioned one).
    #[error("{origin}: malformed or unsupported certificate revocation list: {reason}")]
    MalformedCrl {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two certificate revocation lists name the same issuer: only the
    /// first would be consulted, so the second is refused (give the
    /// newest list of each issuer).
    #[error("{origin}: a second certificate revocation list from the same issuer (give one list per issuer)")]
    DuplicateCrlIssuer {
        /// Where the second list came from.
        origin: String,
    },
    /// The node's certificate names no raft-io node (or more than one).
    #[error("{origin}: {reason}")]
    NoIdentity {
        /// Where the chain came from.
        origin: String,
        /// What is missing.
        reason: IdentityError,
    },
    /// The node's certificate names another node or cluster than the
    /// transport it is given to.
    #[error("the certificate is for {certified}, but this transport is {expected}")]
    WrongIdentity {
        /// The transport's node and cluster.
        expected: NodeIdentity,
        /// What the certificate names.
        certified: NodeIdentity,
    },
    /// TLS material was given to a transport that was bound without TLS.
    #[error("this transport was bound without TLS; it cannot switch to TLS at run time")]
    NotTls,
    /// rustls refused to build a configuration from the material.
    #[error("TLS configuration refused: {reason}")]
    Rustls {
        /// rustls's error, as text.
        reason: String,
    },
}

/// A node's TLS material: the trusted roots (the CA set peers' certificates
/// must lead to), the node's certificate chain (its own certificate first)
/// and its private key. Checked when built, so a transport never starts
/// with material that cannot work: a malformed certificate or key, a key
/// that does not match the certificate, an empty trust set, or a
/// certificate without a raft-io identity are refused here, with the file
/// (or in-memory source) and the reason.
///
/// Certificates can be revoked before they expire with certificate
/// revocation lists (CRLs) from their issuers: see
/// [`with_crl_files`](Self::with_crl_files).
///
/// Cheap to clone (the rustls configurations are shared). Give it to
/// [`TcpConfig::tls`](crate::transport::TcpConfig::tls), or to
/// [`TcpTransport::rotate_tls`](crate::transport::TcpTransport::rotate_tls)
/// to replace the material of a running transport.
#[derive(Clone)]
pub struct TlsConfig {
    identity: NodeIdentity,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// What the configurations were built from, kept to build them again
    /// with other revocation lists.
    parts: Arc<Parts>,
    /// The two ends' certificate checks, to check open connections' peers
    /// again when this material is put in force.
    dialers: Arc<dyn ClientCertVerifier>,
    acceptors: Arc<PeerVerifier>,
}

/// The checked material a [`TlsConfig`] is built from.
struct Parts {
    /// The trusted roots as given, to compare material.
    trust: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revocations: Revocations,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// Bytes and where they came from.
struct Source<'a> {
    bytes: &'a [u8],
    origin: String,
}

/// Reads one of the material's files (an error names it).
pub(super) fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read { path: path.to_path_buf(), source })
}

impl TlsConfig {
    /// Loads PEM files: `trust` holds one or more CA certificates (the
    /// trusted roots), `chain` the node's certificate followed by any
    /// intermediates, `key` its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or any refusal of
    /// [`from_pem`](Self::from_pem), naming the file.
    pub fn from_pem_files(
        trust: impl AsRef<Path>,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsConfigError> {
        let (trust, chain, key) = (trust.as_ref(), chain.as_ref(), key.as_ref());
        let (t, c, k) = (read(trust)?, read(chain)?, read(key)?);
        Self::from_read([(trust, &t), (chain, &c), (key, &k)])
    }

    /// Builds the material from the contents of the trust, chain and key
    /// files already read, each error naming its file.
    pub(super) fn from_read(files: [(&Path, &[u8]); 3]) -> Result<Self, TlsConfigError> {
        let [(trust, t), (chain, c), (key, k)] = files;
        Self::build(
            Source { bytes: t, origin: trust.display().to_string() },
            Source { bytes: c, origin: chain.display().to_string() },
            Source { bytes: k, origin: key.display().to_string() },
        )
    }

    /// The same from PEM text in memory.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`]: an empty trust set, no certificate or key, a
    /// malformed certificate or key, a key that does not match the
    /// certificate, a certificate without a raft-io identity.
    pub fn from_pem(trust: &[u8], chain: &[u8], key: &[u8]) -> Result<Self, TlsConfigError> {
        Self::build(
            Source { bytes: trust, origin: "in-memory trust set".into() },
            Source { bytes: chain, origin: "in-memory certificate chain".into() },
            Source { bytes: key, origin: "in-memory private key".into() },
        )
    }

    /// The same from DER: trusted root certificates, the chain (the node's
    /// certificate first), and the private key (PKCS#8, PKCS#1 or SEC1,
    /// recognised by its content).
    ///
    /// # Errors
    ///
    /// As [`from_pem`](Self::from_pem).
    pub fn from_der(trust: Vec<Vec<u8>>, chain: Vec<Vec<u8>>, key: Vec<u8>) -> Result<Self, TlsConfigError> {
        let trust: Vec<CertificateDer<'static>> = trust.into_iter().map(CertificateDer::from).collect();
        let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::try_from(key).map_err(|reason| TlsConfigError::MalformedKey {
            origin: "in-memory private key".into(),
            reason: reason.into(),
        });
        Self::assemble(
            (trust, "in-memory trust set".into()),
            (chain, "in-memory certificate chain".into()),
            (key, "in-memory private key".into()),
        )
    }

    /// The node and cluster the certificate names.
    pub fn identity(&self) -> NodeIdentity {
        self.identity
    }

    pub(crate) fn server(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    pub(crate) fn client(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client)
    }

    fn build(trust: Source<'_>, chain: Source<'_>, key: Source<'_>) -> Result<Self, TlsConfigError> {
        let roots = certificates(&trust)?;
        let certs = certificates(&chain)?;
        let der = PrivateKeyDer::from_pem_slice(key.bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoKey { origin: key.origin.clone() },
            e => TlsConfigError::MalformedKey { origin: key.origin.clone(), reason: e.to_string() },
        });
        Self::assemble((roots, trust.origin), (certs, chain.origin), (der, key.origin))
    }

    fn assemble(
        (roots, trust_origin): (Vec<CertificateDer<'static>>, String),
        (chain, chain_origin): (Vec<CertificateDer<'static>>, String),
        (key, key_origin): (Result<PrivateKeyDer<'static>, TlsConfigError>, String),
    ) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Trust set.
        if roots.is_empty() {
            return Err(TlsConfigError::EmptyTrustSet { origin: trust_origin });
        }
        let mut store = RootCertStore::empty();
        for root in roots.iter().cloned() {
            store.add(root).map_err(|e| TlsConfigError::MalformedCertificate {
                origin: trust_origin.clone(),
                reason: e.to_string(),
            })?;
        }
        let (roots_der, roots) = (roots, Arc::new(store));
        // The node's chain and its identity.
        let leaf = chain.first().ok_or_else(|| TlsConfigError::NoCertificate { origin: chain_origin.clone() })?;
        ParsedCertificate::try_from(leaf).map_err(|e| TlsConfigError::MalformedCertificate {
            origin: chain_origin.clone(),
            reason: e.to_string(),
        })?;
        let identity = identity::identity_of(leaf)
            .map_err(|reason| TlsConfigError::NoIdentity { origin: chain_origin.clone(), reason })?;
        // The key, and that it is the certificate's.
        let key = key?;
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| TlsConfigError::MalformedKey { origin: key_origin.clone(), reason: e.to_string() })?;
        match CertifiedKey::new(chain.clone(), signing).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(TlsConfigError::KeyMismatch { chain: chain_origin, key: key_origin });
            }
            Err(e) => return Err(TlsConfigError::MalformedCertificate { origin: chain_origin, reason: e.to_string() }),
        }
        Self::configure(identity, Parts { trust: roots_der, roots, chain, key, revocations: Revocations::default() })
    }

    /// Builds the rustls configurations from checked `parts`.
    fn configure(identity: NodeIdentity, parts: Parts) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let rustls_error = |e: &dyn std::fmt::Display| TlsConfigError::Rustls { reason: e.to_string() };
        // Acceptor: client certificates required, from the trusted roots,
        // not revoked (`revocation.rs` has the rules).
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&parts.roots), Arc::clone(&provider));
        if !parts.revocations.is_empty() {
            verifier = verifier.with_crls(parts.revocations.ders()).allow_unknown_revocation_status();
        }
        let verifier = verifier.build().map_err(|e| rustls_error(&e))?;
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| rustls_error(&e))?
            .with_client_cert_verifier(Arc::clone(&verifier))
            .with_single_cert(parts.chain.clone(), parts.key.clone_key())
            .map_err(|e| rustls_error(&e))?;
        server.send_tls13_tickets = 0;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        // Dialer: the acceptor's chain is verified by `PeerVerifier`; its
        // identity after the handshake.
        let peer_verifier = Arc::new(PeerVerifier {
            roots: Arc::clone(&parts.roots),
            algorithms: provider.signature_verification_algorithms,
            revocations: parts.revocations.clone(),
        });
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| rustls_error(&e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&peer_verifier) as Arc<dyn ServerCertVerifier>)
            .with_client_auth_cert(parts.chain.clone(), parts.key.clone_key())
            .map_err(|e| rustls_error(&e))?;
        client.enable_sni = false;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            identity,
            server: Arc::new(server),
            client: Arc::new(client),
            parts: Arc::new(parts),
            dialers: verifier,
            acceptors: peer_verifier,
        })
    }

    /// Whether this material's revocation lists revoke the certificate
    /// chain a peer presented when it opened a connection: as dialer
    /// (`dialed_us`) or as acceptor. Checked as of the handshake, so a
    /// certificate that expired since is still found revoked (webpki
    /// checks validity before revocation).
    pub(crate) fn revokes(&self, chain: &super::PeerChain, dialed_us: bool) -> bool {
        let Some((end_entity, intermediates)) = chain.certs.split_first() else { return false };
        if self.parts.revocations.is_empty() {
            return false;
        }
        let now = chain.at;
        let verdict = if dialed_us {
            self.dialers.verify_client_cert(end_entity, intermediates, now).map(|_| ())
        } else {
            // The name is not checked (`PeerVerifier`).
            let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            self.acceptors.verify_server_cert(end_entity, intermediates, &name, &[], now).map(|_| ())
        };
        matches!(verdict, Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)))
    }

    /// Whether `other` is this very material (a clone of it), not only
    /// the same.
    pub(super) fn is(&self, other: &TlsConfig) -> bool {
        Arc::ptr_eq(&self.parts, &other.parts)
    }

    /// Whether `other` is the same material: the same trusted roots,
    /// chain, key and revocation lists, in the same order.
    pub(super) fn same_as(&self, other: &TlsConfig) -> bool {
        let (a, b) = (&self.parts, &other.parts);
        Arc::ptr_eq(a, b)
            || (a.trust == b.trust
                && a.chain == b.chain
                && a.key.secret_der() == b.key.secret_der()
                && a.revocations.same_as(&b.revocations))
    }

    /// The same material checking peers' certificates against the
    /// certificate revocation lists (CRLs) in `files`, PEM files of one or
    /// more `X509 CRL` sections each (as `openssl ca -gencrl` writes them),
    /// instead of the lists it had. No files: no lists.
    ///
    /// Both ends of every handshake check them: a dialer whose
    /// certificate is revoked is refused by the acceptor, and an acceptor
    /// whose certificate is revoked by the dialer, both counted as
    /// [`TlsFailure::Revoked`](super::TlsFailure::Revoked). Every
    /// certificate of a peer's chain is looked up in its issuer's lists;
    /// one whose issuer has no list given is not refused for it; a list
    /// past its next update still counts. A running transport takes new
    /// lists with [`rotate_tls`](crate::transport::TcpTransport::rotate_tls)
    /// (or a [`TlsReloader`](super::TlsReloader) watching the files).
    ///
    /// # Errors
    ///
    /// A file that cannot be read ([`TlsConfigError::Read`]), holds no CRL
    /// ([`TlsConfigError::NoCrl`]) or a malformed or unsupported one
    /// ([`TlsConfigError::MalformedCrl`]: delta, indirect and partitioned
    /// lists are not supported), or a second list from the same issuer
    /// ([`TlsConfigError::DuplicateCrlIssuer`]), naming the file.
    pub fn with_crl_files<P: AsRef<Path>>(self, files: impl IntoIterator<Item = P>) -> Result<Self, TlsConfigError> {
        let mut read_files = Vec::new();
        for file in files {
            let path = file.as_ref().to_path_buf();
            let bytes = read(&path)?;
            read_files.push((path, bytes));
        }
        self.with_crls_read(read_files.iter().map(|(path, bytes)| (path.as_path(), bytes.as_slice())))
    }

    /// The same with lists from files already read, each error naming its
    /// file.
    pub(super) fn with_crls_read<'a>(
        self,
        files: impl IntoIterator<Item = (&'a Path, &'a [u8])>,
    ) -> Result<Self, TlsConfigError> {
        let mut lists = Vec::new();
        for (path, bytes) in files {
            lists.extend(revocation::from_pem(bytes, &path.display().to_string())?);
        }
        self.with_revocations(Revocations::parse(lists)?)
    }

    /// [`with_crl_files`](Self::with_crl_files) from PEM text in memory
    /// holding one or more CRLs.
    ///
    /// ```
    /// use raft_io::transport::tls::{NodeIdentity, TlsConfig, TlsConfigError};
    ///
    /// // A CA, node 1's certificate, and the CA's list revoking node 2's
    /// // (made here with rcgen; any CA tooling writes the same PEM).
    /// let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    /// ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    /// ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    /// let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    /// let mut node = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    /// node.subject_alt_names = vec![rcgen::SanType::URI(NodeIdentity::new(7, 1).uri().try_into().unwrap())];
    /// let key = rcgen::KeyPair::generate().unwrap();
    /// let cert = node.signed_by(&key, &ca).unwrap();
    /// let list = |number: u64| {
    ///     rcgen::CertificateRevocationListParams {
    ///         this_update: rcgen::date_time_ymd(2024, 1, 1),
    ///         next_update: rcgen::date_time_ymd(2124, 1, 1),
    ///         crl_number: rcgen::SerialNumber::from(number),
    ///         issuing_distribution_point: None,
    ///         revoked_certs: vec![rcgen::RevokedCertParams {
    ///             serial_number: rcgen::SerialNumber::from(2u64),
    ///             revocation_time: rcgen::date_time_ymd(2024, 1, 1),
    ///             reason_code: Some(rcgen::RevocationReason::KeyCompromise),
    ///             invalidity_date: None,
    ///         }],
    ///         key_identifier_method: rcgen::KeyIdMethod::Sha256,
    ///     }
    ///     .signed_by(&ca)
    ///     .unwrap()
    ///     .pem()
    ///     .unwrap()
    /// };
    ///
    /// let tls = TlsConfig::from_pem(ca.pem().as_bytes(), cert.pem().as_bytes(), key.serialize_pem().as_bytes())?;
    /// let tls = tls.with_crls_pem(list(1).as_bytes())?;
    /// assert_eq!(tls.crl_count(), 1);
    /// // One list per issuer: the newest, not both.
    /// let both = list(1) + &list(2);
    /// let err = tls.with_crls_pem(both.as_bytes()).unwrap_err();
    /// assert!(matches!(err, TlsConfigError::DuplicateCrlIssuer { .. }));
    /// # Ok::<(), TlsConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoCrl`], [`TlsConfigError::MalformedCrl`],
    /// [`TlsConfigError::DuplicateCrlIssuer`].
    pub fn with_crls_pem(self, pem: &[u8]) -> Result<Self, TlsConfigError> {
        let lists = revocation::from_pem(pem, "in-memory certificate revocation lists")?;
        self.with_revocations(Revocations::parse(lists)?)
    }

    /// [`with_crl_files`](Self::with_crl_files) from DER, one list each
    /// (none: no lists).
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::MalformedCrl`].
    pub fn with_crls_der(self, crls: Vec<Vec<u8>>) -> Result<Self, TlsConfigError> {
        let origin = "in-memory certificate revocation list";
        let lists = crls.into_iter().map(|der| (CertificateRevocationListDer::from(der), origin.to_owned())).collect();
        self.with_revocations(Revocations::parse(lists)?)
    }

    /// How many certificate revocation lists the material checks peers
    /// against.
    pub fn crl_count(&self) -> usize {
        self.parts.revocations.len()
    }

    fn with_revocations(self, revocations: Revocations) -> Result<Self, TlsConfigError> {
        let parts = Parts {
            trust: self.parts.trust.clone(),
            roots: Arc::clone(&self.parts.roots),
            chain: self.parts.chain.clone(),
            key: self.parts.key.clone_key(),
            revocations,
        };
        Self::configure(self.identity, parts)
    }
}

/// Every PEM certificate in `source` (other PEM sections are skipped).
fn certificates(source: &Source<'_>) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    CertificateDer::pem_slice_iter(source.bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::MalformedCertificate { origin: source.origin.clone(), reason: e.to_string() })
}

/// The dialer's check of the acceptor's certificate: the full webpki chain
/// verification against the trusted roots (signatures, validity period,
/// key usage) and the revocation lists, as rustls's own verifier does, but
/// without its DNS-name match: a node is identified by the raft-io URI in
/// its certificate, which the transport checks right after the handshake.
#[derive(Debug)]
struct PeerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    revocations: Revocations,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(revocation::rustls_error)?;
        self.revocations.with_options(|revocation| {
            cert.verify_for_usage(
                self.algorithms.all,
                &self.roots.roots,
                intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                revocation,
                None,
            )
            .map(|_| ServerCertVerified::assertion())
            .map_err(revocation::rustls_error)
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
