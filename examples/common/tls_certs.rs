//! Certificates for the TLS examples, made at run time with rcgen (no key
//! material is committed): a CA, and for each node a certificate naming it
//! with the URI `raft-io://cluster/<cluster_id>/node/<node_id>`, written as
//! PEM files and loaded back with `TlsConfig::from_pem_files`, as a
//! deployment would load the files its own CA issued.

use std::path::{Path, PathBuf};

use raft_io::NodeId;
use raft_io::transport::tls::{NodeIdentity, TlsConfig};

/// Writes `ca.pem`, and `node-<id>.pem` and `node-<id>.key` for each id,
/// under `dir`.
pub fn write_cluster_certs(dir: &Path, cluster_id: u64, ids: &[NodeId]) -> Result<(), String> {
    let err = |e: rcgen::Error| e.to_string();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "raft-io example CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().map_err(err)?).map_err(err)?;
    write(&dir.join("ca.pem"), &ca.pem())?;
    for &id in ids {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("raft-io node {id}"));
        let uri = NodeIdentity::new(cluster_id, id).uri();
        params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().map_err(err)?)];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &ca).map_err(err)?;
        write(&dir.join(format!("node-{id}.pem")), &cert.pem())?;
        write(&dir.join(format!("node-{id}.key")), &key.serialize_pem())?;
    }
    Ok(())
}

/// Node `id`'s TLS material from the files under `dir`.
pub fn load(dir: &Path, id: NodeId) -> Result<TlsConfig, String> {
    let file = |name: String| -> PathBuf { dir.join(name) };
    TlsConfig::from_pem_files(file("ca.pem".into()), file(format!("node-{id}.pem")), file(format!("node-{id}.key")))
        .map_err(|e| e.to_string())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
