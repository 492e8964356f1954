//! Certificates made at run time with rcgen for the TLS tests: a
//! certificate authority, node certificates with known serial numbers, and
//! the authority's certificate revocation lists.

use std::sync::atomic::{AtomicU64, Ordering};

use raft_io::NodeId;
use raft_io::transport::tls::NodeIdentity;

/// Serial numbers, unique within a test process.
static SERIALS: AtomicU64 = AtomicU64::new(1);

/// A certificate authority: a root, or an intermediate with its serial
/// number and the chain above it (its own certificate first, the root
/// left out).
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    serial: u64,
    above: String,
}

/// A node's certificate and key, PEM, and the certificate's serial number.
#[derive(Clone)]
pub struct NodeCert {
    pub cert: String,
    pub key: String,
    pub serial: u64,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let (params, serial) = Self::params(name);
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        Self { issuer, serial, above: String::new() }
    }

    /// An intermediate authority this one signs.
    pub fn intermediate(&self, name: &str) -> Self {
        let (params, serial) = Self::params(name);
        let issuer =
            rcgen::CertifiedIssuer::signed_by(params, rcgen::KeyPair::generate().unwrap(), &self.issuer).unwrap();
        let above = issuer.pem() + &self.above;
        Self { issuer, serial, above }
    }

    fn params(name: &str) -> (rcgen::CertificateParams, u64) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        (params, serial)
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate naming node `node` of `cluster`.
    pub fn node(&self, cluster: u64, node: NodeId) -> NodeCert {
        self.issue(Some(NodeIdentity::new(cluster, node).uri()), false)
    }

    /// A certificate with the given URI SAN (if any), expired if asked.
    pub fn issue(&self, uri: Option<String>, expired: bool) -> NodeCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "raft-io node");
        if let Some(uri) = uri {
            params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
        }
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        // The chain: the node's certificate, then the intermediates above.
        NodeCert { cert: cert.pem() + &self.above, key: key.serialize_pem(), serial }
    }

    /// The authority's certificate revocation list number `number`,
    /// revoking `revoked` (PEM).
    pub fn crl(&self, number: u64, revoked: &[&NodeCert]) -> String {
        self.crl_of(number, &revoked.iter().map(|cert| cert.serial).collect::<Vec<_>>(), 2124)
    }

    /// As [`crl`](Self::crl), but past its next update (due in 2024).
    pub fn stale_crl(&self, number: u64, revoked: &[&NodeCert]) -> String {
        self.crl_of(number, &revoked.iter().map(|cert| cert.serial).collect::<Vec<_>>(), 2024)
    }

    /// The authority's list number `number` revoking the intermediate
    /// authority `revoked`, which it signed.
    pub fn crl_revoking_ca(&self, number: u64, revoked: &Ca) -> String {
        self.crl_of(number, &[revoked.serial], 2124)
    }

    /// A list dated 2024-01-01, its next update due on December 31st of
    /// `next_update_year`.
    fn crl_of(&self, number: u64, serials: &[u64], next_update_year: i32) -> String {
        let revoked_certs = serials
            .iter()
            .map(|&serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(serial),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(next_update_year, 12, 31),
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}
