//! Certificate revocation lists: parsed once, when material is loaded, and
//! checked by both ends of every handshake.
//!
//! The rules, the same on both ends: every certificate of the peer's chain
//! is looked up in the lists of its issuer; a certificate listed there is
//! refused ([`TlsFailure::Revoked`](super::TlsFailure::Revoked)); a
//! certificate whose issuer has no list given passes (its status is
//! unknown, not revoked, so a trust set of several CAs can revoke through
//! some of them); a list past its next-update time still counts (an
//! operator who stops refreshing the lists keeps what they revoke). A list
//! whose signature does not verify against its issuer fails the handshakes
//! of that issuer's certificates (as an `InvalidCertRevocationList` error,
//! [`TlsFailure::RevocationList`](super::TlsFailure::RevocationList)), as
//! does a list whose issuer may not sign lists. One list per issuer: a
//! second list with the same issuer name is refused when the material is
//! built, since only the first would be consulted; so is a partitioned
//! list (one with an issuing distribution point), which covers only part
//! of its issuer's certificates.

use std::sync::Arc;

use rustls::CertificateError;
use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject;
use webpki::{
    CertRevocationList, ExpirationPolicy, OwnedCertRevocationList, RevocationCheckDepth, RevocationOptions,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use super::TlsConfigError;

/// The revocation lists in force (none by default), as DER for rustls's
/// client verifier and parsed for the dialer's own check.
#[derive(Clone, Default)]
pub(super) struct Revocations {
    ders: Vec<CertificateRevocationListDer<'static>>,
    parsed: Arc<Vec<CertRevocationList<'static>>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations").field("lists", &self.ders.len()).finish()
    }
}

impl Revocations {
    /// Parses `lists`: each one CRL and where it came from.
    pub(super) fn parse(lists: Vec<(CertificateRevocationListDer<'static>, String)>) -> Result<Self, TlsConfigError> {
        let mut parsed: Vec<CertRevocationList<'static>> = Vec::with_capacity(lists.len());
        let mut ders = Vec::with_capacity(lists.len());
        for (der, origin) in lists {
            let crl = CertRevocationList::from(
                OwnedCertRevocationList::from_der(&der)
                    .map_err(|e| TlsConfigError::MalformedCrl { origin: origin.clone(), reason: e.to_string() })?,
            );
            // A list with an issuing distribution point covers only its
            // partition (one distribution point, or only end entities, or
            // only authorities): webpki skips it for the certificates
            // outside, whose status is then unknown, and lets them in. The
            // issuer's other lists could not be given (one per issuer), so
            // such a list is refused rather than trusted to cover all.
            if crl.issuing_distribution_point().is_some() {
                return Err(TlsConfigError::MalformedCrl {
                    origin,
                    reason:
                        "a partitioned list (it has an issuing distribution point); give the issuer's complete list"
                            .into(),
                });
            }
            // webpki consults the first list of a certificate's issuer
            // only: a second one would be silently ignored.
            if parsed.iter().any(|other| other.issuer() == crl.issuer()) {
                return Err(TlsConfigError::DuplicateCrlIssuer { origin });
            }
            parsed.push(crl);
            ders.push(der);
        }
        Ok(Self { ders, parsed: Arc::new(parsed) })
    }

    /// How many lists are in force.
    pub(super) fn len(&self) -> usize {
        self.ders.len()
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.ders.is_empty()
    }

    /// The lists, for rustls's client verifier.
    pub(super) fn ders(&self) -> Vec<CertificateRevocationListDer<'static>> {
        self.ders.clone()
    }

    /// The same lists, in the same order, as `other`.
    pub(super) fn same_as(&self, other: &Revocations) -> bool {
        self.ders == other.ders
    }

    /// Runs `check` with webpki's revocation options for these lists
    /// (`None` when there are none), by the rules above.
    pub(super) fn with_options<T>(&self, check: impl FnOnce(Option<RevocationOptions<'_>>) -> T) -> T {
        let refs: Vec<&CertRevocationList<'_>> = self.parsed.iter().collect();
        let options = RevocationOptionsBuilder::new(&refs).ok().map(|builder| {
            builder
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build()
        });
        check(options)
    }
}

/// Every CRL in the PEM text `bytes` from `origin` (other PEM sections are
/// skipped), each with its origin; at least one.
pub(super) fn from_pem(
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<(CertificateRevocationListDer<'static>, String)>, TlsConfigError> {
    let ders = CertificateRevocationListDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::MalformedCrl { origin: origin.to_owned(), reason: e.to_string() })?;
    if ders.is_empty() {
        return Err(TlsConfigError::NoCrl { origin: origin.to_owned() });
    }
    Ok(ders.into_iter().map(|der| (der, origin.to_owned())).collect())
}

/// webpki's verdict on a certificate as rustls reports it (as rustls maps
/// it for its own verifiers, so both ends of a handshake name a failure
/// alike).
pub(super) fn rustls_error(error: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let certificate = match error {
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::BadEncoding,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } | E::InvalidCertValidity => CertificateError::NotValidYet,
        E::CertRevoked => CertificateError::Revoked,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::UnknownRevocationStatus => CertificateError::UnknownRevocationStatus,
        E::CrlExpired { .. } => CertificateError::ExpiredRevocationList,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        E::UnsupportedSignatureAlgorithmContext(context) => CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: context.signature_algorithm_id,
            supported_algorithms: context.supported_algorithms,
        },
        E::UnsupportedSignatureAlgorithmForPublicKeyContext(context) => {
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: context.signature_algorithm_id,
                public_key_algorithm_id: context.public_key_algorithm_id,
            }
        }
        // The list's fault, not the certificate's: as rustls reports it.
        E::InvalidCrlSignatureForPublicKey
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => {
            return rustls::Error::InvalidCertRevocationList(rustls::CertRevocationListError::BadSignature);
        }
        E::IssuerNotCrlSigner => {
            return rustls::Error::InvalidCertRevocationList(rustls::CertRevocationListError::IssuerInvalidForCrl);
        }
        #[allow(deprecated)]
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(certificate)
}
