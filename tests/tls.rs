//! Mutual TLS on loopback (feature `tls`): a three-node cluster with
//! WalLog, its certificates made here with rcgen, attacked by impostors
//! (no certificate, another CA, an expired certificate, a valid certificate
//! for node 3 claiming node 2, a certificate of another cluster, a rogue
//! plaintext client) while it keeps committing; certificate rotation at
//! run time; bad material refused at configuration time; the handshake
//! bounded in time and number.
#![cfg(all(feature = "tls", feature = "persistence"))]

#[allow(dead_code)]
#[path = "support/certs.rs"]
mod certs;
mod net_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use certs::{Ca, NodeCert};
use net_support::{CLUSTER, Cluster, loopback, wait_until};
use raft_io::runtime::address_bytes;
use raft_io::transport::tls::{
    IdentityError, NodeIdentity, Reload, TlsConfig, TlsConfigError, TlsFailure, TlsReloader,
};
use raft_io::transport::{NetEvent, Refusal, TcpConfig, TcpHandle, TcpTransport};
use raft_io::{AppendEntries, Entry, EntryKind, MembershipChange, Message, MessageBody, NodeId, framing};

/// TLS material trusting `cas`, presenting `cert`.
fn material(cas: &[&Ca], cert: &NodeCert) -> TlsConfig {
    let trust: String = cas.iter().map(|ca| ca.pem()).collect();
    TlsConfig::from_pem(trust.as_bytes(), cert.cert.as_bytes(), cert.key.as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------
// The cluster.

type Events = Arc<Mutex<Vec<NetEvent>>>;

struct TlsCluster {
    cluster: Cluster,
    events: Vec<Events>,
}

impl TlsCluster {
    /// Nodes 1..=3 with certificates from `ca`, trusting `ca` alone.
    fn start(ca: &Ca) -> Self {
        let mut events = Vec::new();
        let transports = (1..=3)
            .map(|id| {
                let log: Events = Arc::default();
                events.push(Arc::clone(&log));
                let config = TcpConfig::new(id, loopback())
                    .cluster_id(CLUSTER)
                    .tls(material(&[ca], &ca.node(CLUSTER, id)))
                    .on_event(move |e| log.lock().unwrap().push(e.clone()));
                TcpTransport::bind(config).unwrap()
            })
            .collect();
        let cluster = Cluster::from_transports(transports);
        cluster.wait_for_leader();
        Self { cluster, events }
    }

    fn tcp(&self, i: usize) -> &TcpHandle {
        &self.cluster.nodes[i].as_ref().unwrap().tcp
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.cluster.addrs[i]
    }

    /// Waits for node `i` to report an inbound refusal for `reason`.
    fn wait_refused(&self, i: usize, reason: Refusal) {
        wait_until(&format!("node {} to refuse with {reason:?}", i + 1), || {
            self.events[i]
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, NetEvent::Refused { reason: r, .. } if *r == reason))
        });
    }

    /// Runs `attack` while a client keeps writing (at least 20 writes, the
    /// last ones after the attack), then checks that every acknowledged
    /// write is on every node, that no node applied the impostors'
    /// command, and that no node took their term.
    fn under_attack(&self, attack: impl FnOnce()) {
        let stop = AtomicBool::new(false);
        let acked = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Acquire) || i < 20 {
                    let key = format!("w{i}");
                    if self.cluster.put(&key, "v").is_ok() {
                        acked.push(key);
                    }
                    i += 1;
                }
                acked
            });
            // The writer stops even if the attack fails, so a failure is
            // reported instead of hanging.
            let attacked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(attack));
            stop.store(true, Ordering::Release);
            let acked = writer.join().unwrap();
            if let Err(panic) = attacked {
                std::panic::resume_unwind(panic);
            }
            acked
        });
        assert!(acked.len() >= 20, "the cluster kept committing: {} of 20+ writes acknowledged", acked.len());
        for i in 0..3 {
            let kv = self.cluster.read_all(i).unwrap();
            for key in &acked {
                assert!(kv.map.contains_key(key), "node {} lost {key}", i + 1);
            }
            assert!(!kv.map.contains_key("evil"), "node {} applied an impostor's command", i + 1);
            let term = self.cluster.handle(i).status().unwrap().term;
            assert!(term < ROGUE_TERM, "node {} took the impostor's term", i + 1);
        }
    }
}

// ---------------------------------------------------------------------------
// Rogue peers, written with rustls directly.

const ROGUE_TERM: u64 = 1_000_000;

/// A rogue's TLS client: presents `cert` (or nothing), trusts anything.
fn rogue_tls(cert: Option<&NodeCert>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAnything(provider)));
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(c.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

#[derive(Debug)]
struct TrustAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TrustAnything {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a rogue got back.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A raft-io reply with this status (0: accepted).
    Reply(u16),
    /// No reply: the connection failed or closed.
    Closed,
}

/// Connects to `addr` (over TLS with `tls`, else in plaintext), sends a
/// hello from `from` to `to` of [`CLUSTER`] and, without waiting, a
/// well-formed AppendEntries in term [`ROGUE_TERM`] carrying `evil=1` and
/// committing it; returns what came back.
fn rogue(addr: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>, from: NodeId, to: NodeId) -> Outcome {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut bytes = Vec::from(*b"RFIO");
    bytes.extend_from_slice(&3u16.to_be_bytes());
    bytes.extend_from_slice(&0u16.to_be_bytes());
    bytes.extend_from_slice(&CLUSTER.to_be_bytes());
    bytes.extend_from_slice(&from.to_be_bytes());
    bytes.extend_from_slice(&to.to_be_bytes());
    let append = Message {
        from,
        to,
        term: ROGUE_TERM,
        body: MessageBody::Append(AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            leader_commit: 1,
            entries: vec![Entry { term: ROGUE_TERM, index: 1, kind: EntryKind::Normal, data: Bytes::from("evil=1") }],
        }),
    };
    let frame = framing::encode(&append);
    bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&frame);
    let exchange = |s: &mut dyn ReadWrite| {
        // Writes may fail once the node closes: what counts is the reply.
        let _ = s.write_all(&bytes).and_then(|()| s.flush());
        let mut reply = [0u8; 16];
        match s.read_exact(&mut reply) {
            Ok(()) if &reply[0..4] == b"RFIO" => Outcome::Reply(u16::from_be_bytes([reply[6], reply[7]])),
            _ => Outcome::Closed,
        }
    };
    match tls {
        None => exchange(&mut { tcp }),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("raft-io.invalid").unwrap();
            let conn = rustls::ClientConnection::new(config, name).unwrap();
            exchange(&mut rustls::StreamOwned::new(conn, tcp))
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

// ---------------------------------------------------------------------------
// Impostors.

#[test]
fn a_peer_without_a_certificate_is_refused() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    c.under_attack(|| {
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(None)), 2, 1), Outcome::Closed);
        c.wait_refused(0, Refusal::Tls(TlsFailure::NoCertificate));
    });
    let stats = c.tcp(0).stats();
    assert!(stats.tls_failures >= 1 && stats.handshake_refusals >= 1, "{stats:?}");
    c.cluster.shutdown();
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ca = Ca::new("cluster CA");
    let other = Ca::new("another CA");
    let c = TlsCluster::start(&ca);
    c.under_attack(|| {
        let forged = other.node(CLUSTER, 2);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&forged))), 2, 1), Outcome::Closed);
        c.wait_refused(0, Refusal::Tls(TlsFailure::UnknownIssuer));
    });
    assert!(c.tcp(0).stats().tls_failures >= 1);
    c.cluster.shutdown();
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    c.under_attack(|| {
        let expired = ca.issue(Some(NodeIdentity::new(CLUSTER, 2).uri()), true);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&expired))), 2, 1), Outcome::Closed);
        c.wait_refused(0, Refusal::Tls(TlsFailure::Expired));
    });
    assert!(c.tcp(0).stats().tls_failures >= 1);
    c.cluster.shutdown();
}

#[test]
fn a_valid_certificate_for_node_3_claiming_node_2_is_refused_before_any_message_is_read() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    c.under_attack(|| {
        // Node 3's own, valid certificate; the hello says node 2.
        let node3 = ca.node(CLUSTER, 3);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&node3))), 2, 1), Outcome::Reply(6));
        c.wait_refused(0, Refusal::Identity(IdentityError::WrongNode { claimed: 2, certified: 3 }));
        // A valid certificate for node 2, of another cluster.
        let elsewhere = ca.node(CLUSTER + 1, 2);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&elsewhere))), 2, 1), Outcome::Reply(6));
        c.wait_refused(0, Refusal::Identity(IdentityError::WrongCluster { expected: CLUSTER, certified: CLUSTER + 1 }));
        // A certificate from the right CA that names no node.
        let anonymous = ca.issue(None, false);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&anonymous))), 2, 1), Outcome::Reply(6));
        c.wait_refused(0, Refusal::Identity(IdentityError::Missing));
    });
    let stats = c.tcp(0).stats();
    assert!(stats.identity_refusals >= 3, "{stats:?}");
    assert_eq!(stats.decode_errors + stats.misaddressed, 0, "no frame of the impostors was read");
    c.cluster.shutdown();
}

#[test]
fn a_rogue_plaintext_client_sending_append_entries_to_a_tls_node_changes_nothing() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    c.under_attack(|| {
        for target in 0..3 {
            let from = if target == 0 { 2 } else { 1 };
            assert_eq!(rogue(c.addr(target), None, from, target as NodeId + 1), Outcome::Closed);
            c.wait_refused(target, Refusal::Tls(TlsFailure::NotTls));
        }
    });
    c.cluster.shutdown();
}

#[test]
fn a_dialer_refuses_an_acceptor_whose_certificate_names_another_node() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    // Node 1 is told that peer 2 lives at node 3's address: node 3's
    // certificate does not name node 2, so node 1 refuses it before saying
    // anything (node 3 never sees a hello for node 2).
    c.tcp(0).remove_peer(2);
    c.tcp(0).add_peer(2, c.addr(2)).unwrap();
    let untrusted = |e: &NetEvent| {
        matches!(
            e,
            NetEvent::Untrusted {
                peer: 2,
                reason: Refusal::Identity(IdentityError::WrongNode { claimed: 2, certified: 3 })
            }
        )
    };
    wait_until("node 1 to refuse node 3 as node 2", || c.events[0].lock().unwrap().iter().any(untrusted));
    assert!(c.tcp(0).stats().identity_refusals >= 1);
    // Pointed back at the real node 2, it connects again.
    let connects = c.tcp(0).stats().connects;
    c.tcp(0).remove_peer(2);
    c.tcp(0).add_peer(2, c.addr(1)).unwrap();
    wait_until("node 1 to reconnect to node 2", || c.tcp(0).stats().connects > connects);
    assert!(c.cluster.put("after", "redirect").is_ok());
    c.cluster.shutdown();
}

/// A peer learned from the replicated configuration is checked like one
/// wired by hand: the configuration says where to dial, the certificate
/// says who answers. Told (by a committed `SetAddress`) that node 2 lives
/// at node 3's address, the other nodes refuse node 3 as node 2; set back,
/// they reconnect.
#[test]
fn a_peer_learned_from_the_configuration_is_held_to_its_certificate() {
    let ca = Ca::new("cluster CA");
    let c = TlsCluster::start(&ca);
    let mut leader = c.cluster.wait_for_leader();
    if leader == 1 {
        // Not node 2 itself: it would lose its followers with its address.
        c.cluster.handle(1).transfer_leadership(1).unwrap();
        leader = c.cluster.wait_for_leader();
    }
    let wrong = MembershipChange::SetAddress { id: 2, address: Some(address_bytes(c.addr(2))) };
    c.cluster.handle(leader).change_membership(wrong).unwrap();
    let untrusted = |e: &NetEvent| {
        matches!(
            e,
            NetEvent::Untrusted {
                peer: 2,
                reason: Refusal::Identity(IdentityError::WrongNode { claimed: 2, certified: 3 })
            }
        )
    };
    wait_until("a node to refuse node 3 as node 2", || {
        [0, 2].iter().any(|&i| c.events[i].lock().unwrap().iter().any(untrusted))
    });
    // Set back (through whichever node leads now), the cluster is whole.
    let right = MembershipChange::SetAddress { id: 2, address: Some(address_bytes(c.addr(1))) };
    wait_until("the address to be set back", || {
        let l = c.cluster.wait_for_leader();
        c.cluster.handle(l).change_membership(right.clone()).is_ok()
    });
    for i in [0, 2] {
        wait_until("node 2 at its own address again", || {
            c.tcp(i).peers().iter().any(|(id, a)| *id == 2 && *a == c.addr(1))
        });
    }
    assert!(c.cluster.put("after", "set back").is_ok());
    // Node 2 serves linearizable reads again (retried while its links are
    // redialed after the move back).
    wait_until("a read through node 2", || {
        c.cluster.read_all(1).is_ok_and(|kv| kv.map.get("after").map(String::as_str) == Some("set back"))
    });
    c.cluster.shutdown();
}

// ---------------------------------------------------------------------------
// Rotation.

#[test]
fn certificates_and_trust_rotate_at_run_time_without_dropping_connections() {
    let old = Ca::new("old CA");
    let new = Ca::new("new CA");
    let c = TlsCluster::start(&old);
    assert!(c.cluster.put("before", "rotation").is_ok());
    let connects: Vec<u64> = (0..3).map(|i| c.tcp(i).stats().connects).collect();
    let new_certs: Vec<NodeCert> = (1..=3).map(|id| new.node(CLUSTER, id)).collect();
    // Trust both CAs, switch to the new certificates, then trust the new
    // CA alone: at every step each pair of nodes trusts each other.
    for i in 0..3 {
        c.tcp(i).rotate_tls(material(&[&old, &new], &old.node(CLUSTER, i as NodeId + 1))).unwrap();
    }
    for (i, cert) in new_certs.iter().enumerate() {
        c.tcp(i).rotate_tls(material(&[&old, &new], cert)).unwrap();
    }
    for (i, cert) in new_certs.iter().enumerate() {
        c.tcp(i).rotate_tls(material(&[&new], cert)).unwrap();
    }
    // Connections opened before rotation are still the ones in use.
    c.under_attack(|| {
        // New connections use the new trust set: a valid certificate of
        // the old CA no longer gets in.
        let stale = old.node(CLUSTER, 2);
        assert_eq!(rogue(c.addr(0), Some(rogue_tls(Some(&stale))), 2, 1), Outcome::Closed);
        c.wait_refused(0, Refusal::Tls(TlsFailure::UnknownIssuer));
    });
    for (i, &before) in connects.iter().enumerate() {
        assert_eq!(c.tcp(i).stats().connects, before, "node {} redialled on rotation", i + 1);
    }
    // New connections present the new certificate: node 1 redials its
    // peers, who now trust the new CA alone.
    for peer in [2, 3] {
        c.tcp(0).remove_peer(peer);
        c.tcp(0).add_peer(peer, c.addr(peer as usize - 1)).unwrap();
    }
    wait_until("node 1 to reconnect with its new certificate", || c.tcp(0).stats().connects >= connects[0] + 2);
    c.under_attack(|| {});
    // Material for another node is refused, and the material in force kept.
    let err = c.tcp(0).rotate_tls(material(&[&new], &new_certs[1])).unwrap_err();
    assert!(matches!(err, TlsConfigError::WrongIdentity { .. }), "{err}");
    assert!(c.cluster.put("after", "rotation").is_ok());
    c.cluster.shutdown();
}

#[test]
fn a_plaintext_transport_cannot_be_rotated_and_bind_checks_the_identity() {
    let ca = Ca::new("cluster CA");
    let plain = TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER)).unwrap();
    let err = plain.rotate_tls(material(&[&ca], &ca.node(CLUSTER, 1))).unwrap_err();
    assert!(matches!(err, TlsConfigError::NotTls), "{err}");
    let wrong = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(material(&[&ca], &ca.node(CLUSTER, 2)));
    let err = TcpTransport::bind(wrong).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("raft-io://cluster/27510/node/2"), "{err}");
}

// ---------------------------------------------------------------------------
// Reloading from files.

/// Writes the trust set of `cas`, `cert` and `key` (PEM) into `dir`.
fn write_files(dir: &std::path::Path, cas: &[&Ca], cert: &str, key: &str) {
    let trust: String = cas.iter().map(|ca| ca.pem()).collect();
    std::fs::write(dir.join("ca.pem"), trust).unwrap();
    std::fs::write(dir.join("node.pem"), cert).unwrap();
    std::fs::write(dir.join("node.key"), key).unwrap();
}

#[test]
fn material_is_reloaded_from_its_files_when_they_change_and_kept_when_they_are_bad() {
    let (old, new) = (Ca::new("old CA"), Ca::new("new CA"));
    let dir = tempfile::tempdir().unwrap();
    let mine = old.node(CLUSTER, 1);
    write_files(dir.path(), &[&old], &mine.cert, &mine.key);
    let files = |name: &str| dir.path().join(name);
    let tls = TlsConfig::from_pem_files(files("ca.pem"), files("node.pem"), files("node.key")).unwrap();
    let one = TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(tls)).unwrap();
    let mut reloader = TlsReloader::new(one.handle(), files("ca.pem"), files("node.pem"), files("node.key"));
    assert_eq!(reloader.check().unwrap(), Reload::Unchanged, "the files it was built from");

    // Node 2's certificate comes from the new CA: node 1 refuses it.
    let two_cert = new.node(CLUSTER, 2);
    let two =
        TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).tls(material(&[&old, &new], &two_cert)))
            .unwrap();
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    wait_until("node 1 to refuse node 2's certificate", || one.stats().tls_failures >= 1);
    assert_eq!(two.stats().connects, 0);

    // Half-written: a certificate with another key. Refused; nothing changes.
    let renewed = old.node(CLUSTER, 1);
    write_files(dir.path(), &[&old, &new], &renewed.cert, &mine.key);
    let err = reloader.check().unwrap_err();
    assert!(err.to_string().contains("node.pem") || err.to_string().contains("node.key"), "names the file: {err}");
    assert!(reloader.check().is_err(), "still refused: bad files are never taken as loaded");
    // The key arrives: the new trust set is in force, node 2 gets in.
    write_files(dir.path(), &[&old, &new], &renewed.cert, &renewed.key);
    assert_eq!(reloader.check().unwrap(), Reload::Rotated);
    assert_eq!(reloader.check().unwrap(), Reload::Unchanged, "loaded once");
    wait_until("node 2 to connect to node 1", || two.stats().connects >= 1);

    // Material naming another node is refused by the transport and kept out.
    let other = new.node(CLUSTER, 3);
    write_files(dir.path(), &[&new], &other.cert, &other.key);
    assert!(matches!(reloader.check().unwrap_err(), TlsConfigError::WrongIdentity { .. }));
    // A file that disappears is a failed check, not a crash.
    std::fs::remove_file(files("node.key")).unwrap();
    assert!(matches!(reloader.check().unwrap_err(), TlsConfigError::Read { .. }));

    // The watch thread does the same at an interval.
    let next = new.node(CLUSTER, 1);
    write_files(dir.path(), &[&old, &new], &next.cert, &next.key);
    let watch = reloader.watch(Duration::from_millis(5)).unwrap();
    wait_until("the watch to reload the files", || watch.stats().rotations == 1);
    std::fs::write(files("node.key"), "not a key").unwrap();
    wait_until("the watch to fail on a bad key", || watch.stats().failures >= 1);
    let stats = watch.stats();
    assert_eq!(stats.rotations, 1, "the bad key kept out: {stats:?}");
    assert!(stats.last_error.is_some_and(|e| e.contains("node.key")), "names the file");
    watch.stop();
    one.shutdown();
    two.shutdown();
}

// ---------------------------------------------------------------------------
// Bad material, refused at configuration time.

#[test]
fn bad_material_is_refused_at_configuration_time_naming_the_file_and_the_reason() {
    let ca = Ca::new("cluster CA");
    let good = ca.node(CLUSTER, 1);
    let other = ca.node(CLUSTER, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_pem = file("ca.pem", &ca.pem());
    let cert = file("node.pem", &good.cert);
    let key = file("node.key", &good.key);
    assert_eq!(TlsConfig::from_pem_files(&ca_pem, &cert, &key).unwrap().identity(), NodeIdentity::new(CLUSTER, 1));

    let garbage_der = |label: &str| format!("-----BEGIN {label}-----\nAAECAwQFBgcICQ==\n-----END {label}-----\n");
    let cases: Vec<(&str, std::path::PathBuf, std::path::PathBuf, std::path::PathBuf, &str)> = vec![
        ("unreadable trust set", dir.path().join("missing.pem"), cert.clone(), key.clone(), "missing.pem"),
        ("a directory as the key", ca_pem.clone(), cert.clone(), dir.path().to_path_buf(), ""),
        ("empty trust set", file("empty.pem", ""), cert.clone(), key.clone(), "empty.pem"),
        ("trust set of keys only", file("keys.pem", &good.key), cert.clone(), key.clone(), "keys.pem"),
        (
            "broken PEM",
            file("broken.pem", "-----BEGIN CERTIFICATE-----\n!!!\n"),
            cert.clone(),
            key.clone(),
            "broken.pem",
        ),
        ("garbage CA", file("bad-ca.pem", &garbage_der("CERTIFICATE")), cert.clone(), key.clone(), "bad-ca.pem"),
        ("no certificate", ca_pem.clone(), file("nocert.pem", &good.key), key.clone(), "nocert.pem"),
        (
            "garbage certificate",
            ca_pem.clone(),
            file("bad-cert.pem", &garbage_der("CERTIFICATE")),
            key.clone(),
            "bad-cert.pem",
        ),
        ("no key", ca_pem.clone(), cert.clone(), file("nokey.pem", &good.cert), "nokey.pem"),
        ("garbage key", ca_pem.clone(), cert.clone(), file("bad.key", &garbage_der("PRIVATE KEY")), "bad.key"),
        ("key of another certificate", ca_pem.clone(), cert.clone(), file("other.key", &other.key), "other.key"),
        (
            "certificate without identity",
            ca_pem.clone(),
            file("anon.pem", &ca.issue(None, false).cert),
            key.clone(),
            "anon.pem",
        ),
    ];
    for (what, trust, chain, key, named) in cases {
        let err = TlsConfig::from_pem_files(&trust, &chain, &key).map(|c| c.identity()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(named), "{what}: {text:?} does not name {named}");
        let kind_ok = match what {
            "unreadable trust set" | "a directory as the key" => matches!(err, TlsConfigError::Read { .. }),
            "empty trust set" | "trust set of keys only" => matches!(err, TlsConfigError::EmptyTrustSet { .. }),
            "broken PEM" | "garbage CA" | "garbage certificate" => {
                matches!(err, TlsConfigError::MalformedCertificate { .. })
            }
            "no certificate" => matches!(err, TlsConfigError::NoCertificate { .. }),
            "no key" => matches!(err, TlsConfigError::NoKey { .. }),
            "garbage key" => matches!(err, TlsConfigError::MalformedKey { .. }),
            "key of another certificate" => matches!(err, TlsConfigError::KeyMismatch { .. }),
            "certificate without identity" => matches!(err, TlsConfigError::NoIdentity { .. }),
            _ => false,
        };
        assert!(kind_ok, "{what}: unexpected {err:?}");
    }
    // In memory, the same checks, named as in-memory sources.
    let err = TlsConfig::from_pem(b"", good.cert.as_bytes(), good.key.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsConfigError::EmptyTrustSet { .. }) && err.to_string().contains("in-memory trust set"));
    let err = TlsConfig::from_der(vec![], vec![], vec![1, 2, 3]).unwrap_err();
    assert!(matches!(err, TlsConfigError::EmptyTrustSet { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Slots: the handshake is bounded in time and in number.

#[test]
fn silent_connections_are_cut_off_and_cannot_take_every_slot() {
    let ca = Ca::new("cluster CA");
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .tls(material(&[&ca], &ca.node(CLUSTER, 1)))
        .max_pending_handshakes(2)
        .handshake_timeout(Duration::from_secs(3600))
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    let node = TcpTransport::bind(config).unwrap();
    // Two connections that never speak hold the two handshake slots; the
    // third is closed at once.
    let silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(node.local_addr()).unwrap()).collect();
    let mut third = TcpStream::connect(node.local_addr()).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(third.read(&mut [0u8; 16]).unwrap_or(0), 0, "closed without a reply");
    wait_until("the third handshake to be refused", || node.stats().handshakes_over_limit == 1);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, NetEvent::Refused { reason: Refusal::TooManyHandshakes, .. }))
    );
    drop(silent);
    drop(node);

    // With a short handshake timeout, a silent connection is cut off and
    // counted, and its slot freed.
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .tls(material(&[&ca], &ca.node(CLUSTER, 1)))
        .max_pending_handshakes(1)
        .handshake_timeout(Duration::from_millis(50))
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    let node = TcpTransport::bind(config).unwrap();
    let mut slow = TcpStream::connect(node.local_addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(slow.read(&mut [0u8; 16]).unwrap_or(0), 0, "cut off");
    wait_until("the silent handshake to be refused", || node.stats().handshake_refusals == 1);
    // The event follows the count (from the acceptor's reader thread).
    wait_until("the refusal's event", || {
        events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason: Refusal::Incomplete, .. }))
    });
    let mut next = TcpStream::connect(node.local_addr()).unwrap();
    next.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(next.read(&mut [0u8; 16]).unwrap_or(0), 0);
    wait_until("the next one to get the freed slot (and be cut off too)", || node.stats().handshake_refusals == 2);
    assert_eq!(node.stats().handshakes_over_limit, 0);
}

// ---------------------------------------------------------------------------
// Plaintext and TLS do not mix.

#[test]
fn a_tls_node_and_a_plaintext_node_refuse_each_other() {
    let ca = Ca::new("cluster CA");
    let plain_events: Events = Arc::default();
    let log = Arc::clone(&plain_events);
    let plain = TcpTransport::bind(
        TcpConfig::new(2, loopback()).cluster_id(CLUSTER).on_event(move |e| log.lock().unwrap().push(e.clone())),
    )
    .unwrap();
    let tls = TcpTransport::bind(
        TcpConfig::new(1, loopback())
            .cluster_id(CLUSTER)
            .tls(material(&[&ca], &ca.node(CLUSTER, 1)))
            .peer(2, plain.local_addr()),
    )
    .unwrap();
    plain.add_peer(1, tls.local_addr()).unwrap();
    // The TLS node's ClientHello is not a raft-io hello; the plaintext
    // node's hello is not TLS.
    wait_until("the plaintext node to refuse the TLS dialer", || {
        plain_events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason: Refusal::BadMagic, .. }))
    });
    wait_until("the TLS node to refuse the plaintext dialer", || tls.stats().tls_failures >= 1);
    assert_eq!(tls.stats().connects + plain.stats().connects, 0);
}

#[test]
fn material_loads_alike_from_pem_and_der_and_never_prints_its_key() {
    use rustls::pki_types::pem::PemObject;
    let ca = Ca::new("cluster CA");
    let cert = ca.node(CLUSTER, 3);
    let from_pem = material(&[&ca], &cert);
    let der = |pem: &str| rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
    let from_der = TlsConfig::from_der(vec![der(&ca.pem())], vec![der(&cert.cert)], key.secret_der().to_vec()).unwrap();
    assert_eq!(from_pem.identity(), NodeIdentity::new(CLUSTER, 3));
    assert_eq!(from_der.identity(), from_pem.identity());
    let shown = format!("{from_der:?}");
    assert!(shown.contains("node_id: 3") && !shown.contains("PRIVATE"), "{shown}");
    // A DER key of another certificate is refused as from PEM.
    let other = ca.node(CLUSTER, 2);
    let other_key = rustls::pki_types::PrivateKeyDer::from_pem_slice(other.key.as_bytes()).unwrap();
    let err =
        TlsConfig::from_der(vec![der(&ca.pem())], vec![der(&cert.cert)], other_key.secret_der().to_vec()).unwrap_err();
    assert!(matches!(err, TlsConfigError::KeyMismatch { .. }), "{err}");
}

/// The group transport (batch connections) runs over the same mutual TLS:
/// two nodes with certificates exchange envelopes of several groups over
/// one connection each way; a node whose certificate is from another CA is
/// refused at the TLS handshake.
#[test]
fn the_group_transport_runs_over_mutual_tls() {
    use raft_io::multi::{Envelope, EnvelopeBody};
    use raft_io::transport::TcpGroupTransport;

    let ca = Ca::new("cluster CA");
    let tls = |node| material(&[&ca], &ca.node(CLUSTER, node));
    let b = TcpGroupTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).tls(tls(2))).unwrap();
    let a =
        TcpGroupTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(tls(1)).peer(2, b.local_addr()))
            .unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    let envelope = |group| {
        let message = Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow };
        Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
    };
    a.send_batch((1..=20).map(envelope)).unwrap();
    let mut got = 0;
    wait_until("every envelope over TLS", || {
        got += std::iter::from_fn(|| b.try_recv()).count();
        got == 20
    });
    assert_eq!(a.stats().connects, 1);

    let other = Ca::new("another CA");
    let hour = Duration::from_secs(3600);
    let impostor_tls = material(&[&other], &other.node(CLUSTER, 1));
    let impostor = TcpGroupTransport::bind(
        TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(impostor_tls).peer(2, b.local_addr()).backoff(hour, hour),
    )
    .unwrap();
    let _ = impostor.send(envelope(1));
    wait_until("the impostor refused", || impostor.stats().tls_failures >= 1);
    assert_eq!(impostor.stats().connects, 0);
    impostor.shutdown();
    a.shutdown();
    b.shutdown();
}

// ---------------------------------------------------------------------------
// A misconfigured extended key usage is named.

/// Node certificates serve as server and as client certificates, so an
/// extended key usage must allow both (SECURITY.md, "Issuing node
/// certificates"). One that allows only one is a common mistake (a web
/// server's profile); each end that refuses it says so, rather than that
/// the certificate is merely "invalid".
#[test]
fn a_certificate_without_both_key_usages_is_refused_naming_its_key_usage() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let node = |id: NodeId, usages: Vec<rcgen::ExtendedKeyUsagePurpose>| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(NodeIdentity::new(CLUSTER, id).uri().try_into().unwrap())];
        params.extended_key_usages = usages;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let tls = TlsConfig::from_pem(ca.pem().as_bytes(), cert.pem().as_bytes(), key.serialize_pem().as_bytes());
        let events: Events = Arc::default();
        let log = Arc::clone(&events);
        let config = TcpConfig::new(id, loopback())
            .cluster_id(CLUSTER)
            .tls(tls.unwrap())
            .on_event(move |e| log.lock().unwrap().push(e.clone()));
        (TcpTransport::bind(config).unwrap(), events)
    };
    let (one, one_events) = node(1, vec![ServerAuth, ClientAuth]);
    // Node 2 cannot be a client, node 3 cannot be a server.
    let (two, _) = node(2, vec![ServerAuth]);
    let (three, _) = node(3, vec![ClientAuth]);
    for other in [&two, &three] {
        one.add_peer(other.id(), other.local_addr()).unwrap();
        other.add_peer(1, one.local_addr()).unwrap();
    }
    let named = |reason: &Refusal| {
        *reason == Refusal::Tls(TlsFailure::WrongKeyUsage) && reason.to_string().contains("key usage")
    };
    wait_until("node 1 to refuse node 2's dial, naming the key usage", || {
        one_events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason, .. } if named(reason)))
    });
    wait_until("node 1 to refuse node 3 answering, naming the key usage", || {
        one_events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Untrusted { peer: 3, reason } if named(reason)))
    });
    for t in [one, two, three] {
        t.shutdown();
    }
}

/// A transport for node `id` from DER material, its events in the log.
fn node_from_der(id: NodeId, trust: &[u8], cert: &[u8], key: &[u8]) -> (TcpTransport, Events) {
    let tls = TlsConfig::from_der(vec![trust.to_vec()], vec![cert.to_vec()], key.to_vec()).unwrap();
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(id, loopback())
        .cluster_id(CLUSTER)
        .tls(tls)
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    (TcpTransport::bind(config).unwrap(), events)
}

/// Waits until `one` (node 1) has refused node `peer` both ways, as a
/// dialer (`Refused`) and as an acceptor (`Untrusted`), for `failure`.
fn wait_refused_both_ways(events: &Events, peer: NodeId, failure: TlsFailure) {
    let wanted = Refusal::Tls(failure);
    wait_until(&format!("node 1 to refuse node {peer}'s dial with {failure:?}"), || {
        events.lock().unwrap().iter().any(|e| matches!(e, NetEvent::Refused { reason, .. } if *reason == wanted))
    });
    wait_until(&format!("node 1 to refuse node {peer} answering with {failure:?}"), || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, NetEvent::Untrusted { peer: p, reason } if *p == peer && *reason == wanted))
    });
}

/// The DER of `cert` with its signature algorithm, ecdsa-with-SHA256
/// (1.2.840.10045.4.3.2), made ecdsa-with-SHA512 (1.2.840.10045.4.3.4),
/// which the `ring` provider does not verify: in the signed part and in
/// the outer one, which must agree.
fn with_ecdsa_sha512(cert: &[u8]) -> Vec<u8> {
    const SHA256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut der = cert.to_vec();
    let mut patched = 0;
    let mut i = 0;
    while i + SHA256.len() <= der.len() {
        if der[i..i + SHA256.len()] == SHA256 {
            der[i + SHA256.len() - 1] = 0x04;
            patched += 1;
        }
        i += 1;
    }
    assert_eq!(patched, 2, "the algorithm is named twice");
    der
}

/// A certificate authority's certificate presented as a node's
/// (basicConstraints CA:TRUE, though it names a node), and a node
/// certificate signed with an algorithm the `ring` provider does not
/// support: each is refused by both ends for what it is, not as a merely
/// "invalid" certificate.
#[test]
fn a_ca_certificate_as_a_nodes_and_an_unsupported_signature_algorithm_are_refused_for_what_they_are() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let cert = |id: NodeId, is_ca: bool| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(NodeIdentity::new(CLUSTER, id).uri().try_into().unwrap())];
        params.extended_key_usages = vec![ServerAuth, ClientAuth];
        if is_ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    };
    let (one_cert, one_key) = cert(1, false);
    let (one, one_events) = node_from_der(1, ca.der(), &one_cert, &one_key);
    let (two_cert, two_key) = cert(2, true);
    let (two, _) = node_from_der(2, ca.der(), &two_cert, &two_key);
    let (three_cert, three_key) = cert(3, false);
    let (three, _) = node_from_der(3, ca.der(), &with_ecdsa_sha512(&three_cert), &three_key);
    for other in [&two, &three] {
        one.add_peer(other.id(), other.local_addr()).unwrap();
        other.add_peer(1, one.local_addr()).unwrap();
    }
    wait_refused_both_ways(&one_events, 2, TlsFailure::CaCertificate);
    wait_refused_both_ways(&one_events, 3, TlsFailure::UnsupportedSignatureAlgorithm);
    let text = Refusal::Tls(TlsFailure::CaCertificate).to_string();
    assert!(text.contains("certificate authority"), "{text}");
    let text = Refusal::Tls(TlsFailure::UnsupportedSignatureAlgorithm).to_string();
    assert!(text.contains("signature algorithm"), "{text}");
    assert_eq!(two.stats().connects + three.stats().connects, 0);
    for t in [one, two, three] {
        t.shutdown();
    }
}
