//! Golden vectors: the committed bytes of one message of every kind. Each is
//! checked both ways — encoding the message gives exactly the fixture, and
//! the fixture decodes to exactly the message — so any change to the wire
//! format fails here.
//!
//! `tests/fixtures/wire/*.bin` are the vectors of this build's format (2,
//! checksummed). `tests/fixtures/wire/format1/` keeps the same messages in
//! format 1 (raft-io 0.7, no checksum): frozen, decode-only vectors that
//! must be refused as an unsupported format.
//!
//! The fixtures are regenerated only on purpose (a deliberate, documented
//! format change; see `docs/PROTOCOL.md`):
//!
//! ```text
//! RAFT_IO_BLESS=1 cargo test --features framing --test framing_golden
//! ```
//!
//! Blessing rewrites the current-format vectors only; the format-1 vectors
//! are never regenerated.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::PathBuf;

use fixtures::{blessing, files_in, read};

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits, FrameError};

/// Message kinds added after format 1: they have no format-1 vector.
const NEWER_THAN_FORMAT_1: &[&str] = &["removed"];

/// The samples that existed in format 1.
fn format_1_samples() -> Vec<(&'static str, raft_io::Message)> {
    wire_samples::samples().into_iter().filter(|(name, _)| !NEWER_THAN_FORMAT_1.contains(name)).collect()
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire")
}

#[test]
fn every_kind_matches_its_fixture_both_ways() {
    for (name, message) in wire_samples::samples() {
        let path = fixture_dir().join(format!("{name}.bin"));
        let encoded = framing::encode(&message);
        if blessing() {
            std::fs::write(&path, &encoded).expect("write fixture");
        }
        let fixture = Bytes::from(read(&path));
        assert_eq!(encoded, fixture, "{name}: encoding differs from the committed fixture");
        let decoded = framing::decode(&fixture, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: fixture does not decode: {e}"));
        assert_eq!(decoded, message, "{name}: fixture decodes to a different message");
    }
}

/// Membership blob version 2 (member addresses), inside a configuration
/// entry and a snapshot chunk: frozen both ways like the others. The same
/// messages without addresses are the version 1 blobs of `append.bin` and
/// `snapshot.bin`, which this build still writes and reads unchanged.
#[test]
fn configurations_with_addresses_match_their_fixtures_both_ways() {
    let dir = fixture_dir().join("membership2");
    if blessing() {
        std::fs::create_dir_all(&dir).expect("fixture dir");
    }
    let mut names = Vec::new();
    for (name, message) in wire_samples::addressed_samples() {
        let path = dir.join(format!("{name}.bin"));
        let encoded = framing::encode(&message);
        if blessing() {
            std::fs::write(&path, &encoded).expect("write fixture");
        }
        let fixture = Bytes::from(read(&path));
        assert_eq!(encoded, fixture, "{name}: encoding differs from the committed fixture");
        let decoded = framing::decode(&fixture, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: fixture does not decode: {e}"));
        assert_eq!(decoded, message, "{name}: fixture decodes to a different message");
        names.push(format!("{name}.bin"));
    }
    names.sort();
    assert_eq!(files_in(&dir), names);
    // The blob inside starts with version 2 and ends with the addresses.
    let blob = wire_samples::addressed_membership().encode();
    assert_eq!(blob[0], 2);
    assert!(blob.ends_with(b"node-3.example:7001"));
    let snapshot = read(&dir.join("snapshot_with_addresses.bin"));
    assert!(snapshot.windows(blob.len()).any(|w| w == &blob[..]), "the snapshot carries the blob as is");
}

#[test]
fn there_is_one_fixture_per_message_kind_and_no_other() {
    let mut expected: Vec<String> = wire_samples::samples().iter().map(|(n, _)| format!("{n}.bin")).collect();
    expected.sort();
    assert_eq!(files_in(&fixture_dir()), expected);
    let mut format1: Vec<String> = format_1_samples().iter().map(|(n, _)| format!("{n}.bin")).collect();
    format1.sort();
    assert_eq!(files_in(&fixture_dir().join("format1")), format1, "one format-1 vector per kind it had");
    assert_eq!(expected.len(), 14, "one sample per MessageBody variant");
}

/// The checksum is CRC-32C as documented: the reference implementation of
/// the tests (bitwise, from the definition) gives the standard check value,
/// and agrees with the checksum of every fixture, computed over the format
/// byte and every byte after the checksum field.
#[test]
fn every_fixture_carries_the_crc32c_of_its_other_bytes() {
    assert_eq!(frame_check::crc32c(b"123456789"), 0xE306_9283, "the CRC-32C check value");
    for (name, _) in wire_samples::samples() {
        let fixture = read(&fixture_dir().join(format!("{name}.bin")));
        assert_eq!(fixture[0], framing::FORMAT_VERSION, "{name}");
        assert_eq!(frame_check::stored_checksum(&fixture), frame_check::checksum_of(&fixture), "{name}");
    }
}

/// Old-version vectors: the format-1 frames raft-io 0.7 sent are refused
/// with `UnsupportedFormat { version: 1 }` (read unchecked, a flipped
/// format bit would bypass the checksum). And format 2 is format 1 with the
/// checksum inserted after the format byte: nothing else moved.
#[test]
fn format_1_vectors_are_refused_and_differ_only_by_the_checksum() {
    for (name, message) in format_1_samples() {
        let v1 = read(&fixture_dir().join("format1").join(format!("{name}.bin")));
        assert_eq!(v1[0], 1, "{name}: a format-1 vector");
        assert_eq!(
            framing::decode(&Bytes::from(v1.clone()), &DecodeLimits::default()),
            Err(FrameError::UnsupportedFormat { version: 1 }),
            "{name}"
        );
        let v2 = framing::encode(&message);
        assert_eq!(v2.len(), v1.len() + 4, "{name}");
        assert_eq!(v2[frame_check::PREFIX..], v1[1..], "{name}: the message bytes are format 1's");
        assert_eq!(v2[..], frame_check::seal(&v1[1..])[..], "{name}");
    }
}

/// The layout documented in `docs/PROTOCOL.md` for the heartbeat sample,
/// byte by byte, so the document and the code cannot drift apart.
#[test]
fn heartbeat_fixture_matches_the_documented_layout() {
    let fixture = read(&fixture_dir().join("heartbeat.bin"));
    #[rustfmt::skip]
    let documented = [
        0x02,                   // format 2
        0x71, 0xB5, 0x6A, 0xC1, // checksum 0xC16AB571: CRC-32C of every other byte, LE
        0x01,                   // from = 1
        0x02,                   // to = 2
        0x07,                   // term = 7
        0x06,                   // kind 6: Heartbeat
        0x01,                   // body version 1
        0x03,                   // body length 3
        0xB9, 0x60,             // commit = 12345
        0x4D,                   // round = 77
    ];
    assert_eq!(fixture, documented);
}
