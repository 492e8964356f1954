//! With features `tls` and `tracing`, a refused TLS handshake is visible in
//! tracing: a `warn` event naming the node, the cluster and the typed
//! refusal. (Its own test binary: the subscriber is process-wide, because
//! transport events come from the transport's threads.)
#![cfg(all(feature = "tls", feature = "tracing"))]

#[path = "support/tracing_capture.rs"]
mod tracing_capture;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use raft_io::transport::tls::{NodeIdentity, TlsConfig};
use raft_io::transport::{TcpConfig, TcpTransport};
use tracing::Level;
use tracing_capture::Capture;

fn material(cluster: u64, node: u64) -> TlsConfig {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(NodeIdentity::new(cluster, node).uri().try_into().unwrap())];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    TlsConfig::from_pem(ca.pem().as_bytes(), cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
}

#[test]
fn a_refused_tls_handshake_is_a_warn_event_with_its_reason() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let node = TcpTransport::bind(TcpConfig::new(1, "127.0.0.1:0".parse().unwrap()).cluster_id(7).tls(material(7, 1)))
        .unwrap();
    // A plaintext hello to a TLS node.
    let mut rogue = TcpStream::connect(node.local_addr()).unwrap();
    rogue.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = rogue.write_all(b"RFIO\x00\x03\x00\x00 and the rest of a plaintext hello");
    let _ = rogue.read(&mut [0u8; 64]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = capture.events();
        let refused = events.iter().find(|e| {
            e.level == Level::WARN
                && e.message() == "transport connection trouble"
                && e.field("event").is_some_and(|e| e.contains("Refused") && e.contains("Tls(NotTls)"))
        });
        if let Some(e) = refused {
            assert_eq!(e.field("node"), Some("1"));
            assert_eq!(e.field("cluster"), Some("7"));
            break;
        }
        assert!(Instant::now() < deadline, "no warn event for the refusal: {events:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(node.stats().tls_failures, 1);
}
