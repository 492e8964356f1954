//! Bad input: every kind of malformed frame is a typed [`FrameError`], and
//! none of them panics or allocates in proportion to what it claims.
//!
//! Every frame is checksummed, so a malformed frame built here is sealed
//! (its checksum computed) to reach the check it is about; damage to the
//! checksum itself is in `tests/framing_checksum.rs`.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

use frame_check::{reseal, seal};

use bytes::Bytes;
use pack_io::{Encode, Encoder, SerialError};
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::{Membership, MembershipError};

fn decode(bytes: &[u8]) -> Result<raft_io::Message, FrameError> {
    framing::decode(&Bytes::copy_from_slice(bytes), &DecodeLimits::default())
}

/// A sealed frame from node 1 to node 2 in term 7 of message kind `kind`,
/// with a version-1 body made of `fields`.
fn frame(kind: u64, fields: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::new();
    for v in [1, 2, 7, kind, 1, fields.len() as u64] {
        enc.write_varint_u64(v).unwrap();
    }
    enc.write_bytes(fields).unwrap();
    seal(&enc.into_inner())
}

fn varints(values: &[u64]) -> Vec<u8> {
    let mut enc = Encoder::new();
    for &v in values {
        enc.write_varint_u64(v).unwrap();
    }
    enc.into_inner()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/wire/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).expect("fixture")
}

const APPEND: u64 = 4;
const VOTE_RESPONSE: u64 = 3;
const SNAPSHOT: u64 = 8;

#[test]
fn the_helper_builds_valid_frames() {
    // An empty AppendEntries (prev 0/0, commit 0, no entries).
    assert!(decode(&frame(APPEND, &[0, 0, 0, 0])).is_ok());
}

#[test]
fn a_frame_past_the_size_limit_is_refused_before_decoding() {
    let limits = DecodeLimits { max_frame_bytes: 13, ..DecodeLimits::default() };
    let heartbeat = Bytes::from(fixture("heartbeat"));
    assert_eq!(framing::decode(&heartbeat, &limits), Err(FrameError::TooLarge { len: 14, max: 13 }));
    // Even garbage is refused for its size alone, before its checksum.
    let garbage = Bytes::from(vec![0xFF; 14]);
    assert_eq!(framing::decode(&garbage, &limits), Err(FrameError::TooLarge { len: 14, max: 13 }));
}

/// A cut frame fails its checksum (the checksum covers the whole frame); a
/// cut frame whose checksum was recomputed is truncated where the fields
/// end early.
#[test]
fn every_proper_prefix_of_every_fixture_is_refused() {
    for (name, message) in wire_samples::samples() {
        let full = framing::encode(&message);
        for cut in 0..full.len() {
            let err = framing::decode(&full.slice(..cut), &DecodeLimits::default()).unwrap_err();
            if cut < frame_check::PREFIX {
                assert!(matches!(err, FrameError::Truncated { .. }), "{name} cut at {cut}: {err:?}");
            } else {
                assert!(matches!(err, FrameError::ChecksumMismatch { .. }), "{name} cut at {cut}: {err:?}");
            }
            let mut resealed = full[..cut].to_vec();
            reseal(&mut resealed);
            let err = decode(&resealed).unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. } | FrameError::LengthPastFrame { .. }),
                "{name} cut at {cut}, resealed: {err:?}"
            );
        }
    }
}

#[test]
fn an_empty_frame_or_one_cut_inside_its_checksum_is_truncated() {
    assert_eq!(decode(&[]), Err(FrameError::Truncated { needed: 1, remaining: 0 }));
    for len in 1..frame_check::PREFIX {
        let bytes = &fixture("heartbeat")[..len];
        assert_eq!(decode(bytes), Err(FrameError::Truncated { needed: 4, remaining: len - 1 }), "{len} bytes");
    }
}

#[test]
fn a_frame_of_another_format_is_refused() {
    let mut bytes = fixture("heartbeat");
    for version in [0, 1, 4, 0xFF] {
        bytes[0] = version;
        assert_eq!(decode(&bytes), Err(FrameError::UnsupportedFormat { version }));
        // The format byte is checked first: a checksum that covers the new
        // format byte changes nothing.
        reseal(&mut bytes);
        assert_eq!(decode(&bytes), Err(FrameError::UnsupportedFormat { version }));
    }
    // Format 3 is the batch frame, refused by name (read it with
    // `decode_batch`; tests/framing_batch_golden.rs).
    bytes[0] = 3;
    assert_eq!(decode(&bytes), Err(FrameError::BatchFrame));
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(FrameError::BatchFrame));
}

#[test]
fn wrong_kind_tags_are_refused() {
    for tag in [14, 15, 127, 128, u64::MAX] {
        let mut bytes = vec![1, 2, 7];
        bytes.extend(varints(&[tag, 1, 0]));
        assert_eq!(decode(&seal(&bytes)), Err(FrameError::UnknownKind { tag }), "tag {tag}");
    }
}

#[test]
fn body_version_zero_or_past_u32_is_refused() {
    // Past u32, including versions whose low 32 bits alone would be a
    // valid version (1 and 2): they are not truncated into one.
    for version in [0, 1 << 32, (1 << 32) + 1, (1 << 33) + 2, u64::MAX] {
        let mut bytes = vec![1, 2, 7, 6];
        bytes.extend(varints(&[version, 2, 0, 0]));
        assert_eq!(decode(&seal(&bytes)), Err(FrameError::InvalidBodyVersion { kind: "Heartbeat", version }));
    }
}

#[test]
fn lengths_past_the_frame_are_refused() {
    // A body length larger than the rest of the frame.
    let mut bytes = vec![1, 2, 7, 6, 1];
    bytes.extend(varints(&[u64::MAX, 0, 0]));
    assert!(matches!(decode(&seal(&bytes)), Err(FrameError::LengthPastFrame { declared: u64::MAX, .. })));

    // An entry whose data length runs past its body.
    let mut fields = varints(&[0, 0, 0, 1, 1, 1]);
    fields.push(0); // kind Normal
    fields.extend(varints(&[1 << 40]));
    fields.extend_from_slice(b"abc");
    assert_eq!(decode(&frame(APPEND, &fields)), Err(FrameError::LengthPastFrame { declared: 1 << 40, remaining: 3 }));

    // A snapshot chunk's data past its body.
    let mut fields = varints(&[1000, 9]);
    let membership = Membership::new([1], []).unwrap().encode();
    fields.extend(varints(&[membership.len() as u64]));
    fields.extend_from_slice(&membership);
    fields.extend(varints(&[100, 0, 50]));
    fields.extend_from_slice(&[0; 10]);
    assert_eq!(decode(&frame(SNAPSHOT, &fields)), Err(FrameError::LengthPastFrame { declared: 50, remaining: 10 }));
}

#[test]
fn entry_counts_past_the_limit_are_refused_before_allocating() {
    let limits = DecodeLimits { max_entries: 4, ..DecodeLimits::default() };
    let five = framing::encode(&wire_samples::append_of(5, 1));
    assert_eq!(framing::decode(&five, &limits), Err(FrameError::TooManyEntries { count: 5, max: 4 }));
    let four = framing::encode(&wire_samples::append_of(4, 1));
    assert!(framing::decode(&four, &limits).is_ok());

    // A hostile count: refused whatever the limit, with nothing reserved.
    let hostile = frame(APPEND, &varints(&[0, 0, 0, u64::MAX]));
    assert_eq!(decode(&hostile), Err(FrameError::TooManyEntries { count: u64::MAX, max: 4096 }));

    // A count under the limit that the remaining bytes cannot hold.
    let short = frame(APPEND, &varints(&[0, 0, 0, 4000, 1, 1]));
    assert_eq!(decode(&short), Err(FrameError::Truncated { needed: 16_000, remaining: 2 }));
}

#[test]
fn trailing_bytes_after_the_message_are_refused() {
    let mut bytes = fixture("vote");
    bytes.push(0);
    assert!(matches!(decode(&bytes), Err(FrameError::ChecksumMismatch { .. })), "the checksum covers them");
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(FrameError::TrailingBytes { remaining: 1 }));
}

#[test]
fn node_id_zero_is_refused_in_from_and_to() {
    let from = frame_check::PREFIX;
    let mut bytes = fixture("timeout_now");
    bytes[from] = 0;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(FrameError::ZeroNodeId { field: "from" }));
    let mut bytes = fixture("timeout_now");
    bytes[from + 1] = 0;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(FrameError::ZeroNodeId { field: "to" }));
}

#[test]
fn a_boolean_other_than_0_or_1_is_refused() {
    assert_eq!(decode(&frame(VOTE_RESPONSE, &[2])), Err(FrameError::InvalidBool { field: "granted", byte: 2 }));
}

#[test]
fn an_unknown_entry_kind_is_refused() {
    let mut fields = varints(&[0, 0, 0, 1, 1, 1]);
    fields.extend_from_slice(&[3, 0]); // kind 3, empty data
    assert_eq!(decode(&frame(APPEND, &fields)), Err(FrameError::UnknownEntryKind { index: 1, byte: 3 }));
}

#[test]
fn a_config_entry_must_hold_a_valid_membership() {
    let mut fields = varints(&[0, 0, 0, 1, 1, 1]);
    fields.extend_from_slice(&[2, 3, b'b', b'a', b'd']); // kind Config, 3 bytes of data
    assert!(matches!(
        decode(&frame(APPEND, &fields)),
        Err(FrameError::InvalidMembership { field: "config entry", source: MembershipError::Malformed(_) })
    ));
}

#[test]
fn a_snapshot_membership_must_be_valid() {
    // Voters [2, 1]: unsorted, which `Membership::decode` refuses.
    let mut membership = vec![1, 2, 0, 0, 0];
    membership.extend_from_slice(&2u64.to_le_bytes());
    membership.extend_from_slice(&1u64.to_le_bytes());
    membership.extend_from_slice(&[0; 8]);
    let mut fields = varints(&[1000, 9, membership.len() as u64]);
    fields.extend_from_slice(&membership);
    fields.extend(varints(&[0, 0, 0]));
    assert!(matches!(
        decode(&frame(SNAPSHOT, &fields)),
        Err(FrameError::InvalidMembership { field: "snapshot membership", .. })
    ));
}

#[test]
fn a_configuration_without_voters_is_refused_in_entries_and_snapshots() {
    // Learners only; a joint configuration whose incoming half is empty;
    // the empty configuration. None can elect a leader or commit, and no
    // leader sends one.
    let learners_only = Membership::new([], [4]).unwrap();
    let no_incoming = Membership::joint([], [], [1, 2, 3]).unwrap();
    for m in [learners_only, no_incoming, Membership::empty()] {
        let blob = m.encode();
        let mut fields = varints(&[0, 0, 0, 1, 1, 1]);
        fields.push(2); // kind Config
        fields.extend(varints(&[blob.len() as u64]));
        fields.extend_from_slice(&blob);
        assert_eq!(
            decode(&frame(APPEND, &fields)),
            Err(FrameError::InvalidMembership { field: "config entry", source: MembershipError::NoVoters }),
            "{m:?}"
        );
        let mut fields = varints(&[1000, 9, blob.len() as u64]);
        fields.extend_from_slice(&blob);
        fields.extend(varints(&[0, 0, 0]));
        assert_eq!(
            decode(&frame(SNAPSHOT, &fields)),
            Err(FrameError::InvalidMembership { field: "snapshot membership", source: MembershipError::NoVoters }),
            "{m:?}"
        );
    }
}

#[test]
fn an_over_long_varint_is_refused_as_non_canonical() {
    // Term 7 written in two bytes.
    let bytes = seal(&[1, 2, 0x87, 0x00, 10, 1, 0]);
    assert_eq!(decode(&bytes), Err(FrameError::NonCanonical { reason: "varint" }));
    // Inside a body too.
    assert_eq!(decode(&frame(6, &[0x80, 0x00, 1])), Err(FrameError::NonCanonical { reason: "varint" }));
}

#[test]
fn a_varint_wider_than_u64_is_a_codec_error() {
    let mut bytes = vec![1, 2];
    bytes.extend_from_slice(&[0xFF; 11]);
    assert_eq!(decode(&seal(&bytes)), Err(FrameError::Codec(SerialError::VarintOverflow)));
}

#[test]
fn errors_display_without_echoing_the_frame() {
    let err = decode(&seal(&[1, 2, 7, 99, 1, 0])).unwrap_err();
    assert_eq!(err.to_string(), "unknown message kind 99");
    let err = FrameError::ChecksumMismatch { expected: 0xC16A_B571, found: 0x0000_00FF };
    assert_eq!(
        err.to_string(),
        "checksum mismatch: the frame's bytes hash to 0xc16ab571, its checksum field holds 0x000000ff"
    );
}
