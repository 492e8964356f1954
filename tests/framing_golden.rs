//! Golden vectors: the committed bytes of one message of every kind. Each is
//! checked both ways — encoding the message gives exactly the fixture, and
//! the fixture decodes to exactly the message — so any change to the wire
//! format fails here.
//!
//! The fixtures are regenerated only on purpose (a deliberate, documented
//! format change; see `docs/PROTOCOL.md`):
//!
//! ```text
//! RAFT_IO_BLESS=1 cargo test --features framing --test framing_golden
//! ```
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

use std::path::PathBuf;

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire")
}

fn blessing() -> bool {
    std::env::var_os("RAFT_IO_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn every_kind_matches_its_fixture_both_ways() {
    for (name, message) in wire_samples::samples() {
        let path = fixture_dir().join(format!("{name}.bin"));
        let encoded = framing::encode(&message);
        if blessing() {
            std::fs::write(&path, &encoded).expect("write fixture");
        }
        let fixture = Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        assert_eq!(encoded, fixture, "{name}: encoding differs from the committed fixture");
        let decoded = framing::decode(&fixture, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: fixture does not decode: {e}"));
        assert_eq!(decoded, message, "{name}: fixture decodes to a different message");
    }
}

#[test]
fn there_is_one_fixture_per_message_kind_and_no_other() {
    let mut expected: Vec<String> = wire_samples::samples().iter().map(|(n, _)| format!("{n}.bin")).collect();
    expected.sort();
    let mut found: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(expected.len(), 13, "one sample per MessageBody variant");
}

/// The layout documented in `docs/PROTOCOL.md` for the heartbeat sample,
/// byte by byte, so the document and the code cannot drift apart.
#[test]
fn heartbeat_fixture_matches_the_documented_layout() {
    let fixture = std::fs::read(fixture_dir().join("heartbeat.bin")).expect("fixture");
    #[rustfmt::skip]
    let documented = [
        0x01,             // format 1
        0x01,             // from = 1
        0x02,             // to = 2
        0x07,             // term = 7
        0x06,             // kind 6: Heartbeat
        0x01,             // body version 1
        0x03,             // body length 3
        0xB9, 0x60,       // commit = 12345
        0x4D,             // round = 77
    ];
    assert_eq!(fixture, documented);
}
