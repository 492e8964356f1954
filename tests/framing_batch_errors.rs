//! Bad input to `decode_batch`: every kind of malformed batch frame is a
//! typed [`FrameError`] (the whole frame refused, nothing allocated in
//! proportion to what it claims), and `decode_batch` never panics.
//!
//! Frames built here are sealed (their checksum computed) to reach the
//! check they are about, except where the checksum is the point.
#![cfg(feature = "framing")]

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/batch_check.rs"]
mod batch_check;

use batch_check::seal;
use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::multi::{Envelope, EnvelopeBody};

fn decode(bytes: &[u8]) -> Result<Vec<Envelope>, FrameError> {
    framing::decode_batch(&Bytes::copy_from_slice(bytes), &DecodeLimits::default())
}

/// `from 1, to 2`, then `count`, then the items' bytes, sealed.
fn batch(count: u8, items: &[u8]) -> Vec<u8> {
    let mut after = vec![1, 2, count];
    after.extend_from_slice(items);
    seal(&after)
}

const PING: [u8; 3] = [2, 1, 0];
const QUIESCE_9: [u8; 6] = [1, 9, 1, 2, 2, 40];
/// Group 7, term 4, kind 10 (TimeoutNow), empty body.
const TIMEOUT_NOW_7: [u8; 6] = [0, 7, 4, 10, 1, 0];

#[test]
fn the_helper_builds_valid_frames() {
    let envelopes = decode(&batch(3, &[&PING[..], &QUIESCE_9, &TIMEOUT_NOW_7].concat())).expect("valid");
    assert_eq!(envelopes.len(), 3);
    assert!(envelopes.iter().all(|e| (e.from, e.to) == (1, 2)));
    let EnvelopeBody::Raft { group: 7, message } = &envelopes[2].body else { panic!("{envelopes:?}") };
    assert_eq!((message.from, message.to, message.term), (1, 2, 4), "the message gets the frame's nodes");
}

#[test]
fn a_damaged_checksum_is_a_checksum_mismatch() {
    let mut frame = batch(1, &PING);
    frame[frame_check::CHECKSUM.start] ^= 1;
    assert!(matches!(decode(&frame), Err(FrameError::ChecksumMismatch { .. })));
    // Damage elsewhere, the checksum left as it was.
    let mut frame = batch(1, &PING);
    *frame.last_mut().expect("not empty") ^= 0x80;
    assert!(matches!(decode(&frame), Err(FrameError::ChecksumMismatch { .. })));
}

#[test]
fn every_truncation_is_an_error_and_ends_are_truncated() {
    let frame = batch(2, &[QUIESCE_9, TIMEOUT_NOW_7].concat());
    for len in 0..frame.len() {
        let mut cut = frame[..len].to_vec();
        frame_check::reseal(&mut cut);
        assert!(decode(&cut).is_err(), "{len} bytes decoded");
    }
    assert_eq!(decode(&[]), Err(FrameError::Truncated { needed: 1, remaining: 0 }));
    // The last item cut inside its body.
    let cut = batch(2, &[&QUIESCE_9[..], &PING].concat()[..8]);
    assert!(matches!(decode(&cut), Err(FrameError::Truncated { .. } | FrameError::LengthPastFrame { .. })));
}

#[test]
fn too_many_items_are_refused_before_anything_is_allocated() {
    let limits = DecodeLimits { max_batch_items: 2, ..DecodeLimits::default() };
    let frame = Bytes::from(batch(3, &[PING, PING, PING].concat()));
    assert_eq!(framing::decode_batch(&frame, &limits), Err(FrameError::TooManyItems { count: 3, max: 2 }));
    assert!(framing::decode_batch(&frame, &DecodeLimits::default()).is_ok());
    // A count past any limit: a 10-byte varint.
    let mut after = vec![1, 2];
    after.extend_from_slice(&[0xFF; 9]);
    after.push(0x01);
    assert_eq!(decode(&seal(&after)), Err(FrameError::TooManyItems { count: u64::MAX, max: 16384 }));
}

#[test]
fn a_count_the_bytes_cannot_hold_is_truncated_before_anything_is_allocated() {
    // 100 items declared (within the limit), 3 bytes present: one ping.
    assert_eq!(decode(&batch(100, &PING)), Err(FrameError::Truncated { needed: 300, remaining: 3 }));
}

#[test]
fn group_0_is_refused() {
    assert_eq!(decode(&batch(1, &[0, 0, 4, 10, 1, 0])), Err(FrameError::ZeroGroupId));
    assert_eq!(decode(&batch(1, &[1, 0, 1, 2, 2, 40])), Err(FrameError::ZeroGroupId));
}

#[test]
fn node_id_0_is_refused() {
    assert_eq!(decode(&seal(&[0, 2, 0])), Err(FrameError::ZeroNodeId { field: "from" }));
    assert_eq!(decode(&seal(&[1, 0, 0])), Err(FrameError::ZeroNodeId { field: "to" }));
}

#[test]
fn bytes_after_the_last_item_are_trailing() {
    assert_eq!(decode(&batch(1, &[PING[0], PING[1], PING[2], 0])), Err(FrameError::TrailingBytes { remaining: 1 }));
    assert_eq!(decode(&batch(0, &PING)), Err(FrameError::TrailingBytes { remaining: 3 }));
}

#[test]
fn non_canonical_varints_are_refused() {
    // The count 1 as two bytes.
    assert!(matches!(decode(&seal(&[1, 2, 0x81, 0x00, 2, 1, 0])), Err(FrameError::NonCanonical { .. })));
    // A group id 9 as two bytes.
    assert!(matches!(decode(&batch(1, &[1, 0x89, 0x00, 1, 2, 2, 40])), Err(FrameError::NonCanonical { .. })));
    // An item tag 2 (ping) as two bytes.
    assert!(matches!(decode(&batch(1, &[0x82, 0x00, 1, 0])), Err(FrameError::NonCanonical { .. })));
}

#[test]
fn unknown_item_kinds_are_refused() {
    for tag in [3u8, 4, 127] {
        assert_eq!(decode(&batch(1, &[tag, 1, 0])), Err(FrameError::UnknownItemKind { tag: u64::from(tag) }));
    }
    assert_eq!(decode(&batch(1, &[0x80, 0x01, 1, 0])), Err(FrameError::UnknownItemKind { tag: 128 }));
}

#[test]
fn bad_bodies_are_refused_by_the_shared_message_codec() {
    // An unknown message kind inside a group message.
    assert_eq!(decode(&batch(1, &[0, 7, 4, 14, 1, 0])), Err(FrameError::UnknownKind { tag: 14 }));
    // A TimeoutNow body with a field this version does not have.
    assert_eq!(
        decode(&batch(1, &[0, 7, 4, 10, 1, 1, 0])),
        Err(FrameError::BodyTrailingBytes { kind: "TimeoutNow", remaining: 1 })
    );
}

#[test]
fn quiesce_and_ping_bodies_are_versioned() {
    assert_eq!(decode(&batch(1, &[2, 0, 0])), Err(FrameError::InvalidBodyVersion { kind: "Ping", version: 0 }));
    assert_eq!(
        decode(&batch(1, &[1, 9, 1, 3, 2, 40, 5])),
        Err(FrameError::BodyTrailingBytes { kind: "Quiesce", remaining: 1 })
    );
    // A newer version's extra field is skipped.
    let envelopes = decode(&batch(1, &[1, 9, 2, 3, 2, 40, 5])).expect("a newer body decodes");
    assert_eq!(envelopes[0].body, EnvelopeBody::Quiesce { group: 9, term: 2, commit: 40 });
}

#[test]
fn a_frame_over_the_size_limit_is_refused_first() {
    let frame = Bytes::from(batch(1, &PING));
    let limits = DecodeLimits { max_frame_bytes: frame.len() - 1, ..DecodeLimits::default() };
    assert_eq!(
        framing::decode_batch(&frame, &limits),
        Err(FrameError::TooLarge { len: frame.len(), max: frame.len() - 1 })
    );
}

/// The checksum covers the format byte: a single-message frame whose format
/// byte was damaged into 3 does not get past `decode_batch`'s checksum, nor
/// a batch frame damaged into 2 past `decode`'s.
#[test]
fn a_format_byte_flipped_into_the_other_format_fails_the_checksum() {
    let mut single =
        framing::encode(&raft_io::Message { from: 1, to: 2, term: 4, body: raft_io::MessageBody::TimeoutNow }).to_vec();
    single[0] ^= 1;
    assert!(matches!(decode(&single), Err(FrameError::ChecksumMismatch { .. })));
    let mut frame = batch(1, &PING);
    frame[0] ^= 1;
    assert!(matches!(
        framing::decode(&Bytes::from(frame), &DecodeLimits::default()),
        Err(FrameError::ChecksumMismatch { .. })
    ));
}

#[test]
fn other_formats_are_refused_by_name_or_as_unsupported() {
    let mut frame = batch(1, &PING);
    frame[0] = 2;
    frame_check::reseal(&mut frame);
    assert_eq!(decode(&frame), Err(FrameError::SingleMessageFrame));
    for version in [0, 1, 4, 0xFF] {
        frame[0] = version;
        frame_check::reseal(&mut frame);
        assert_eq!(decode(&frame), Err(FrameError::UnsupportedFormat { version }));
    }
}

/// One peer's burst for one group past the receiver's item budget costs
/// the receiver nothing but the refusal; the next frame, within it, decodes.
#[test]
fn a_burst_past_the_item_budget_is_refused_whole_and_the_next_frame_is_not_disturbed() {
    let limits = DecodeLimits { max_batch_items: 64, ..DecodeLimits::default() };
    let burst: Vec<u8> = (0..65).flat_map(|_| TIMEOUT_NOW_7).collect();
    let frame = Bytes::from(batch(65, &burst));
    assert_eq!(framing::decode_batch(&frame, &limits), Err(FrameError::TooManyItems { count: 65, max: 64 }));
    let next = Bytes::from(batch(2, &[QUIESCE_9, TIMEOUT_NOW_7].concat()));
    assert_eq!(framing::decode_batch(&next, &limits).map(|e| e.len()), Ok(2));
}
