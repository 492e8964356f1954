//! Certificate revocation lists over mutual TLS on loopback (feature
//! `tls`): a node whose certificate its CA revoked is refused by both ends
//! of a handshake while the others keep connecting; lists are reloaded
//! from their files with the rest of the material; bad lists are refused
//! when the material is built, naming the file.
#![cfg(feature = "tls")]

#[allow(dead_code)]
#[path = "support/certs.rs"]
mod certs;
#[path = "support/loopback.rs"]
mod loopback;

use std::sync::{Arc, Mutex};

use certs::{Ca, NodeCert};
use loopback::{loopback, wait_until};
use raft_io::transport::tls::{Reload, TlsConfig, TlsConfigError, TlsFailure, TlsReloader};
use raft_io::transport::{NetEvent, Refusal, TcpConfig, TcpTransport};

const CLUSTER: u64 = 0x6372;

type Events = Arc<Mutex<Vec<NetEvent>>>;

/// A transport for node `id` presenting `cert`, trusting `ca`, checking
/// the revocation lists `crls` (PEM, if any); its events in the returned
/// log.
fn node(id: u64, ca: &Ca, cert: &NodeCert, crls: Option<&str>) -> (TcpTransport, Events) {
    let mut tls = TlsConfig::from_pem(ca.pem().as_bytes(), cert.cert.as_bytes(), cert.key.as_bytes()).unwrap();
    if let Some(crls) = crls {
        tls = tls.with_crls_pem(crls.as_bytes()).unwrap();
    }
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(id, loopback())
        .cluster_id(CLUSTER)
        .tls(tls)
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    (TcpTransport::bind(config).unwrap(), events)
}

fn saw(events: &Events, wanted: impl Fn(&NetEvent) -> bool) -> bool {
    events.lock().unwrap().iter().any(wanted)
}

const REVOKED: Refusal = Refusal::Tls(TlsFailure::Revoked);

#[test]
fn a_revoked_certificate_is_refused_by_both_ends_and_the_others_keep_connecting() {
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert, three_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2), ca.node(CLUSTER, 3));
    let crl = ca.crl(1, &[&three_cert]);
    // Nodes 1 and 2 check the list; node 3, revoked, does not.
    let (one, one_events) = node(1, &ca, &one_cert, Some(&crl));
    let (two, _) = node(2, &ca, &two_cert, Some(&crl));
    let (three, three_events) = node(3, &ca, &three_cert, None);
    for (a, b) in [(&one, &two), (&one, &three), (&two, &three)] {
        a.add_peer(b.id(), b.local_addr()).unwrap();
        b.add_peer(a.id(), a.local_addr()).unwrap();
    }
    // As acceptor, node 1 refuses node 3's dial.
    wait_until("node 1 to refuse node 3 as a dialer", || {
        saw(&one_events, |e| matches!(e, NetEvent::Refused { reason, .. } if *reason == REVOKED))
    });
    // As dialer, node 1 refuses node 3 answering.
    wait_until("node 1 to refuse node 3 as an acceptor", || {
        saw(&one_events, |e| matches!(e, NetEvent::Untrusted { peer: 3, reason } if *reason == REVOKED))
    });
    // Node 3 sees the refusal of its certificate as the peer's alert.
    wait_until("node 3 to be refused", || three.stats().tls_failures >= 1);
    // Nodes 1 and 2 connect both ways, and nothing of node 3 gets in.
    wait_until("nodes 1 and 2 to connect", || one.stats().connects >= 1 && two.stats().connects >= 1);
    wait_until("node 2 to refuse node 3 as well", || two.stats().tls_failures >= 1);
    assert_eq!(three.stats().connects, 0, "node 3 connected to no one");
    assert!(one.stats().tls_failures >= 2, "{:?}", one.stats());
    assert!(!saw(&three_events, |e| matches!(e, NetEvent::Connected { .. })), "node 3 connected to no one");
    for t in [one, two, three] {
        t.shutdown();
    }
}

/// Lists reloaded from their files with the rest of the material: the
/// connections a revoked node has open are closed at once, both ways, and
/// it cannot open new ones; the other peers' connections stay open.
#[test]
fn revocation_lists_are_reloaded_from_their_files_and_close_the_revoked_nodes_connections() {
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert, three_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2), ca.node(CLUSTER, 3));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("ca.pem"), ca.pem()).unwrap();
    std::fs::write(file("node.pem"), &one_cert.cert).unwrap();
    std::fs::write(file("node.key"), &one_cert.key).unwrap();
    std::fs::write(file("ca.crl"), ca.crl(1, &[])).unwrap();
    let tls = TlsConfig::from_pem_files(file("ca.pem"), file("node.pem"), file("node.key"))
        .unwrap()
        .with_crl_files([file("ca.crl")])
        .unwrap();
    assert_eq!(tls.crl_count(), 1);
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .tls(tls)
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    let one = TcpTransport::bind(config).unwrap();
    let mut reloader =
        TlsReloader::new(one.handle(), file("ca.pem"), file("node.pem"), file("node.key")).crl_files([file("ca.crl")]);
    assert_eq!(reloader.check().unwrap(), Reload::Unchanged, "the files it was built from");

    // Nothing revoked yet: nodes 2 and 3 connect both ways with node 1.
    let (two, _) = node(2, &ca, &two_cert, None);
    let (three, _) = node(3, &ca, &three_cert, None);
    for other in [&two, &three] {
        one.add_peer(other.id(), other.local_addr()).unwrap();
        other.add_peer(1, one.local_addr()).unwrap();
    }
    wait_until("nodes 2 and 3 to connect both ways with node 1", || {
        one.stats().connects >= 2 && two.stats().connects >= 1 && three.stats().connects >= 1
    });
    let connects = one.stats().connects;
    assert_eq!(one.stats().revoked_connections, 0);

    // The CA revokes node 3; the reload puts the new list in force and
    // closes node 3's connections, the one it dialed and the one node 1
    // dialed; its next handshakes are refused.
    std::fs::write(file("ca.crl"), ca.crl(2, &[&three_cert])).unwrap();
    assert_eq!(reloader.check().unwrap(), Reload::Rotated);
    assert_eq!(reloader.check().unwrap(), Reload::Unchanged, "loaded once");
    let revoked = |inbound: bool| {
        let wanted = NetEvent::Revoked { peer: 3, inbound };
        move |e: &NetEvent| *e == wanted
    };
    wait_until("node 3's connections to be closed", || saw(&events, revoked(true)) && saw(&events, revoked(false)));
    assert_eq!(one.stats().revoked_connections, 2);
    let failures = one.stats().tls_failures;
    wait_until("node 1 to refuse node 3's next handshake", || one.stats().tls_failures > failures);
    assert_eq!(three.stats().connects, 1, "node 3 did not connect again");
    // Node 2's connections were not touched, either way.
    assert_eq!(one.stats().connects, connects, "node 1 redialled no one successfully");
    assert_eq!(two.stats().connects, 1, "node 2 did not redial");
    assert!(!saw(&events, |e| matches!(e, NetEvent::Revoked { peer: 2, .. })));

    // A list that does not parse is refused, naming its file, and the one
    // in force is kept.
    std::fs::write(file("ca.crl"), "-----BEGIN X509 CRL-----\nAAECAwQFBgcICQ==\n-----END X509 CRL-----\n").unwrap();
    let err = reloader.check().unwrap_err();
    assert!(matches!(err, TlsConfigError::MalformedCrl { .. }), "{err:?}");
    assert!(err.to_string().contains("ca.crl"), "names the file: {err}");
    for t in [one, two, three] {
        t.shutdown();
    }
}

/// A transport built without revocation lists, and a reloader watching a
/// list that already revokes node 3 (written before the reloader was
/// made): the reloader's first check puts the list in force at once, and
/// closes node 3's open connections both ways, rather than taking the file
/// for in force until it changes. Node 2 is untouched.
#[test]
fn a_reloaders_first_check_puts_the_watched_lists_in_force_and_closes_the_revoked_nodes_connections() {
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert, three_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2), ca.node(CLUSTER, 3));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("ca.pem"), ca.pem()).unwrap();
    std::fs::write(file("node.pem"), &one_cert.cert).unwrap();
    std::fs::write(file("node.key"), &one_cert.key).unwrap();
    // No lists in the transport's material.
    let tls = TlsConfig::from_pem_files(file("ca.pem"), file("node.pem"), file("node.key")).unwrap();
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(1, loopback())
        .cluster_id(CLUSTER)
        .tls(tls)
        .on_event(move |e| log.lock().unwrap().push(e.clone()));
    let one = TcpTransport::bind(config).unwrap();
    let (two, _) = node(2, &ca, &two_cert, None);
    let (three, _) = node(3, &ca, &three_cert, None);
    for other in [&two, &three] {
        one.add_peer(other.id(), other.local_addr()).unwrap();
        other.add_peer(1, one.local_addr()).unwrap();
    }
    wait_until("nodes 2 and 3 to connect both ways with node 1", || {
        one.stats().connects >= 2 && two.stats().connects >= 1 && three.stats().connects >= 1
    });

    // The CA's list revoking node 3 is on disk before the reloader is made.
    std::fs::write(file("ca.crl"), ca.crl(1, &[&three_cert])).unwrap();
    let mut reloader =
        TlsReloader::new(one.handle(), file("ca.pem"), file("node.pem"), file("node.key")).crl_files([file("ca.crl")]);
    assert_eq!(reloader.check().unwrap(), Reload::Rotated, "the list is not in force yet");
    assert_eq!(reloader.check().unwrap(), Reload::Unchanged, "loaded once");
    let revoked = |inbound: bool| {
        let wanted = NetEvent::Revoked { peer: 3, inbound };
        move |e: &NetEvent| *e == wanted
    };
    wait_until("node 3's connections to be closed", || saw(&events, revoked(true)) && saw(&events, revoked(false)));
    assert_eq!(one.stats().revoked_connections, 2);
    let failures = one.stats().tls_failures;
    wait_until("node 1 to refuse node 3's next handshake", || one.stats().tls_failures > failures);
    assert_eq!(three.stats().connects, 1, "node 3 did not connect again");
    assert_eq!(two.stats().connects, 1, "node 2 did not redial");
    assert!(!saw(&events, |e| matches!(e, NetEvent::Revoked { peer: 2, .. })));
    for t in [one, two, three] {
        t.shutdown();
    }
}

/// The same through a watch thread with a long interval: its first check
/// runs when it starts, not an interval later.
#[test]
fn a_watch_checks_its_files_when_it_starts() {
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2));
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("ca.pem"), ca.pem()).unwrap();
    std::fs::write(file("node.pem"), &one_cert.cert).unwrap();
    std::fs::write(file("node.key"), &one_cert.key).unwrap();
    std::fs::write(file("ca.crl"), ca.crl(1, &[&two_cert])).unwrap();
    let (one, one_events) = node(1, &ca, &one_cert, None);
    let (two, _) = node(2, &ca, &two_cert, None);
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    wait_until("nodes 1 and 2 to connect both ways", || one.stats().connects >= 1 && two.stats().connects >= 1);
    let watch = TlsReloader::new(one.handle(), file("ca.pem"), file("node.pem"), file("node.key"))
        .crl_files([file("ca.crl")])
        .watch(std::time::Duration::from_secs(3600))
        .unwrap();
    wait_until("the watch's first check", || watch.stats().checks >= 1);
    let stats = watch.stats();
    assert_eq!((stats.checks, stats.rotations, stats.failures), (1, 1, 0), "{stats:?}");
    wait_until("node 2's connections to be closed", || {
        saw(&one_events, |e| *e == NetEvent::Revoked { peer: 2, inbound: true })
            && saw(&one_events, |e| *e == NetEvent::Revoked { peer: 2, inbound: false })
    });
    watch.stop();
    for t in [one, two] {
        t.shutdown();
    }
}

/// The root's list revokes the intermediate authority that issued node
/// 3's certificate: every certificate of a chain is checked, not only the
/// node's own, so node 3 is refused though its own certificate is listed
/// nowhere; node 2, issued by the root, gets in.
/// A list past its next update still revokes what it names (an authority
/// late with its next list must not let revoked nodes back in:
/// SECURITY.md, "Revoking a certificate").
#[test]
fn a_list_past_its_next_update_still_revokes() {
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2));
    let stale = ca.stale_crl(1, &[&two_cert]);
    let (one, one_events) = node(1, &ca, &one_cert, Some(&stale));
    let (two, _) = node(2, &ca, &two_cert, None);
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    wait_until("node 1 to refuse node 2 as a dialer", || {
        saw(&one_events, |e| matches!(e, NetEvent::Refused { reason, .. } if *reason == REVOKED))
    });
    wait_until("node 1 to refuse node 2 as an acceptor", || {
        saw(&one_events, |e| matches!(e, NetEvent::Untrusted { peer: 2, reason } if *reason == REVOKED))
    });
    assert_eq!(two.stats().connects, 0, "node 2 connected to no one");
    for t in [one, two] {
        t.shutdown();
    }
}

#[test]
fn a_revoked_intermediate_authority_takes_the_certificates_it_issued_with_it() {
    let root = Ca::new("root CA");
    let intermediate = root.intermediate("intermediate CA");
    let crl = root.crl_revoking_ca(1, &intermediate) + &intermediate.crl(1, &[]);
    let (one, one_events) = node(1, &root, &root.node(CLUSTER, 1), Some(&crl));
    let (two, _) = node(2, &root, &root.node(CLUSTER, 2), None);
    let (three, _) = node(3, &root, &intermediate.node(CLUSTER, 3), None);
    for other in [&two, &three] {
        one.add_peer(other.id(), other.local_addr()).unwrap();
        other.add_peer(1, one.local_addr()).unwrap();
    }
    wait_until("node 1 to refuse node 3 both ways", || {
        saw(&one_events, |e| matches!(e, NetEvent::Refused { reason, .. } if *reason == REVOKED))
            && saw(&one_events, |e| matches!(e, NetEvent::Untrusted { peer: 3, reason } if *reason == REVOKED))
    });
    wait_until("node 2 to connect both ways", || two.stats().connects >= 1 && one.stats().connects >= 1);
    assert_eq!(three.stats().connects, 0);
    for t in [one, two, three] {
        t.shutdown();
    }
}

/// A list that names the CA as its issuer but is signed by another key
/// cannot be used: handshakes of that CA's certificates fail closed, on
/// both ends, as `TlsFailure::RevocationList`.
#[test]
fn a_list_not_signed_by_its_issuer_fails_closed() {
    let ca = Ca::new("cluster CA");
    let forger = Ca::new("cluster CA");
    let forged = forger.crl(1, &[]);
    let (one, one_events) = node(1, &ca, &ca.node(CLUSTER, 1), Some(&forged));
    let (two, _) = node(2, &ca, &ca.node(CLUSTER, 2), None);
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    let unusable = Refusal::Tls(TlsFailure::RevocationList);
    wait_until("node 1 to refuse node 2 both ways", || {
        saw(&one_events, |e| matches!(e, NetEvent::Refused { reason, .. } if *reason == unusable))
            && saw(&one_events, |e| matches!(e, NetEvent::Untrusted { peer: 2, reason } if *reason == unusable))
    });
    assert_eq!(one.stats().connects + two.stats().connects, 0);
    one.shutdown();
    two.shutdown();
}

/// A trust set of two CAs with a list from one of them: the other CA's
/// certificates have no list, so their status is unknown, not revoked, and
/// they get in.
#[test]
fn a_certificate_whose_issuer_has_no_list_is_not_refused_for_it() {
    let (a, b) = (Ca::new("CA a"), Ca::new("CA b"));
    let trust = a.pem() + &b.pem();
    let (one_cert, two_cert) = (a.node(CLUSTER, 1), b.node(CLUSTER, 2));
    let tls = TlsConfig::from_pem(trust.as_bytes(), one_cert.cert.as_bytes(), one_cert.key.as_bytes())
        .unwrap()
        .with_crls_pem(a.crl(1, &[]).as_bytes())
        .unwrap();
    let one = TcpTransport::bind(TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(tls)).unwrap();
    let tls = TlsConfig::from_pem(trust.as_bytes(), two_cert.cert.as_bytes(), two_cert.key.as_bytes()).unwrap();
    let two = TcpTransport::bind(TcpConfig::new(2, loopback()).cluster_id(CLUSTER).tls(tls)).unwrap();
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    wait_until("nodes 1 and 2 to connect both ways", || one.stats().connects >= 1 && two.stats().connects >= 1);
    assert_eq!(one.stats().tls_failures, 0);
    one.shutdown();
    two.shutdown();
}

#[test]
fn bad_revocation_lists_are_refused_naming_the_file() {
    let ca = Ca::new("cluster CA");
    let cert = ca.node(CLUSTER, 1);
    let material = || TlsConfig::from_pem(ca.pem().as_bytes(), cert.cert.as_bytes(), cert.key.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = file("good.crl", &ca.crl(1, &[]));
    let empty = file("empty.crl", "");
    let certificate = file("cert.crl", &cert.cert);
    let garbage = file("garbage.crl", "-----BEGIN X509 CRL-----\nAAECAwQFBgcICQ==\n-----END X509 CRL-----\n");
    let missing = dir.path().join("missing.crl");

    let err = material().with_crl_files([&good, &empty]).unwrap_err();
    assert!(matches!(err, TlsConfigError::NoCrl { .. }) && err.to_string().contains("empty.crl"), "{err}");
    let err = material().with_crl_files([&certificate]).unwrap_err();
    assert!(matches!(err, TlsConfigError::NoCrl { .. }) && err.to_string().contains("cert.crl"), "{err}");
    let err = material().with_crl_files([&good, &garbage]).unwrap_err();
    assert!(matches!(err, TlsConfigError::MalformedCrl { .. }) && err.to_string().contains("garbage.crl"), "{err}");
    let err = material().with_crl_files([&missing]).unwrap_err();
    assert!(matches!(err, TlsConfigError::Read { .. }) && err.to_string().contains("missing.crl"), "{err}");
    let err = material().with_crls_der(vec![vec![1, 2, 3]]).unwrap_err();
    assert!(matches!(err, TlsConfigError::MalformedCrl { .. }), "{err}");

    // One list per issuer: a second would never be consulted.
    let newer = file("newer.crl", &ca.crl(2, &[&cert]));
    let err = material().with_crl_files([&good, &newer]).unwrap_err();
    assert!(matches!(err, TlsConfigError::DuplicateCrlIssuer { .. }) && err.to_string().contains("newer.crl"), "{err}");

    // Lists of several issuers, in one file and over several files; none
    // clears them.
    let (b, c) = (Ca::new("CA b"), Ca::new("CA c"));
    let two = b.crl(1, &[]) + &c.crl(1, &[]);
    let both = file("both.crl", &two);
    let tls = material().with_crl_files([&good, &both]).unwrap();
    assert_eq!(tls.crl_count(), 3);
    assert_eq!(tls.with_crl_files(Vec::<std::path::PathBuf>::new()).unwrap().crl_count(), 0);
    assert_eq!(material().with_crls_pem(two.as_bytes()).unwrap().crl_count(), 2);
}

/// A list with an issuing distribution point covers only its partition:
/// the certificates of one distribution point, or only end entities, or
/// only authorities. webpki consults it for those alone, so a certificate
/// outside it would have an unknown status, and get in, though its CA
/// revoked it in another list (which, one list per issuer, could not be
/// given). SECURITY.md promises such lists are refused when the material
/// is built, naming where they came from.
#[test]
fn partitioned_revocation_lists_are_refused_when_the_material_is_built() {
    let ca = Ca::new("cluster CA");
    let cert = ca.node(CLUSTER, 1);
    let material = || TlsConfig::from_pem(ca.pem().as_bytes(), cert.cert.as_bytes(), cert.key.as_bytes()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "partitioning CA");
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let partitioned = |scope| {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2124, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: Some(rcgen::CrlIssuingDistributionPoint {
                distribution_point: rcgen::CrlDistributionPoint { uris: vec!["http://ca.invalid/1.crl".into()] },
                scope,
            }),
            revoked_certs: vec![],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
        .pem()
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    for (what, scope) in [
        ("by distribution point", None),
        ("end entities only", Some(rcgen::CrlScope::UserCertsOnly)),
        ("authorities only", Some(rcgen::CrlScope::CaCertsOnly)),
    ] {
        let path = dir.path().join("partitioned.crl");
        std::fs::write(&path, partitioned(scope)).unwrap();
        let err = material().with_crl_files([&path]).map(|tls| tls.crl_count()).unwrap_err();
        assert!(matches!(err, TlsConfigError::MalformedCrl { .. }), "{what}: {err:?}");
        assert!(err.to_string().contains("partitioned.crl"), "{what}: names the file: {err}");
    }
}

/// Two rotations at once, one by a reloader putting a list revoking node
/// 2 in force, the other by hand putting material without lists in force
/// while the first one is closing node 2's connections: once the second
/// is in force, the first must close nothing more, since the material in
/// force no longer revokes node 2. Made deterministic by the event hook:
/// the first rotation reports the inbound connection it closed from its
/// own thread, and is held there while the second rotation runs.
#[test]
fn a_rotation_replaced_while_it_closes_connections_closes_nothing_the_material_in_force_allows() {
    use std::sync::mpsc;
    use std::time::Duration;
    let ca = Ca::new("cluster CA");
    let (one_cert, two_cert) = (ca.node(CLUSTER, 1), ca.node(CLUSTER, 2));
    let allowing = || TlsConfig::from_pem(ca.pem().as_bytes(), one_cert.cert.as_bytes(), one_cert.key.as_bytes());
    let revoking = allowing().unwrap().with_crls_pem(ca.crl(1, &[&two_cert]).as_bytes()).unwrap();
    let (paused, on_pause) = mpsc::channel::<()>();
    let (resume, on_resume) = mpsc::channel::<()>();
    let hold = Mutex::new(Some((paused, on_resume)));
    let events: Events = Arc::default();
    let log = Arc::clone(&events);
    let config = TcpConfig::new(1, loopback()).cluster_id(CLUSTER).tls(allowing().unwrap()).on_event(move |e| {
        log.lock().unwrap().push(e.clone());
        let rotating = std::thread::current().name() == Some("first rotation");
        if rotating && *e == (NetEvent::Revoked { peer: 2, inbound: true }) {
            if let Some((paused, on_resume)) = hold.lock().unwrap().take() {
                paused.send(()).unwrap();
                on_resume.recv_timeout(Duration::from_secs(60)).unwrap();
            }
        }
    });
    let one = TcpTransport::bind(config).unwrap();
    let (two, _) = node(2, &ca, &two_cert, None);
    one.add_peer(2, two.local_addr()).unwrap();
    two.add_peer(1, one.local_addr()).unwrap();
    wait_until("nodes 1 and 2 to connect both ways", || one.stats().connects >= 1 && two.stats().connects >= 1);

    let handle = one.handle();
    let first =
        std::thread::Builder::new().name("first rotation".into()).spawn(move || handle.rotate_tls(revoking)).unwrap();
    // The first rotation has closed node 2's inbound connection and not
    // yet looked at the outbound one.
    on_pause.recv_timeout(Duration::from_secs(60)).unwrap();
    one.rotate_tls(allowing().unwrap()).unwrap();
    resume.send(()).unwrap();
    first.join().unwrap().unwrap();

    assert!(
        !saw(&events, |e| *e == NetEvent::Revoked { peer: 2, inbound: false }),
        "the outbound connection was closed for a list no longer in force"
    );
    assert_eq!(one.stats().revoked_connections, 1);
    one.shutdown();
    two.shutdown();
}
