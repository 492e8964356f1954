//! The checks the `batch_decode` fuzz target runs on every input, shared
//! with its stable-Rust twins (`tests/framing_batch_props.rs`,
//! `tests/framing_batch_golden.rs`, which runs them on the seed corpus).
//! Needs `frame_check.rs` as a sibling module (`mod frame_check;` in the
//! crate root of the test or target): a batch frame has the same format
//! byte and checksum field as a single-message frame.

#![allow(dead_code)]

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits, FrameError};

use super::frame_check;

/// The format byte of batch frames.
pub const BATCH_FORMAT: u8 = 3;

/// A batch frame around `after_checksum` (everything from `from` on): the
/// format byte, the checksum, then the bytes.
pub fn seal(after_checksum: &[u8]) -> Vec<u8> {
    let mut frame = vec![BATCH_FORMAT, 0, 0, 0, 0];
    frame.extend_from_slice(after_checksum);
    frame_check::reseal(&mut frame);
    frame
}

/// The bytes as they came (almost always refused, by the checksum if
/// nothing earlier), and the same bytes with their checksum fixed up (so
/// the decoder behind the checksum is exercised too), each under `limits`.
pub fn check(data: &[u8], limits: &DecodeLimits) {
    check_frame(data, limits);
    let mut sealed = data.to_vec();
    frame_check::reseal(&mut sealed);
    check_frame(&sealed, limits);
}

/// Decoding `frame` as a batch never panics, and refuses what is not a
/// batch frame; whatever decodes carried the right checksum, stays within
/// the limits, and re-encodes canonically: to the
/// same bytes, or (a body of a newer version whose unknown trailing fields
/// were skipped) to a frame no longer than it that decodes to the same
/// envelopes.
pub fn check_frame(frame: &[u8], limits: &DecodeLimits) {
    let bytes = Bytes::copy_from_slice(frame);
    let envelopes = match framing::decode_batch(&bytes, limits) {
        Ok(envelopes) => envelopes,
        Err(FrameError::SingleMessageFrame) => {
            assert_eq!(frame[0], frame_check::FORMAT);
            return;
        }
        Err(_) => return,
    };
    assert_eq!(frame[0], BATCH_FORMAT, "decoded a frame of another format");
    assert_eq!(
        frame_check::stored_checksum(frame),
        frame_check::checksum_of(frame),
        "decoded a frame whose checksum is wrong"
    );
    assert!(envelopes.len() <= limits.max_batch_items);
    assert!(frame.len() <= limits.max_frame_bytes);
    assert_eq!(framing::decode(&bytes, limits).err(), Some(FrameError::BatchFrame));
    let (from, to) = envelopes.first().map_or((0, 0), |e| (e.from, e.to));
    if envelopes.is_empty() {
        return;
    }
    let again = framing::encode_batch(from, to, &envelopes).expect("decoded envelopes re-encode");
    assert_eq!(again.len(), framing::encoded_batch_len(from, to, &envelopes).expect("same input"));
    if again[..] != frame[..] {
        assert!(again.len() <= frame.len(), "a re-encoding longer than its frame");
        let relaxed = DecodeLimits { max_frame_bytes: usize::MAX, ..*limits };
        assert_eq!(framing::decode_batch(&again, &relaxed).as_ref(), Ok(&envelopes));
    }
}

/// Everything the `batch_decode` fuzz target does with one input: [`check`]
/// it under the default limits, and under tight ones chosen by its last
/// byte (so the limit checks are fuzzed too).
pub fn fuzz_one(data: &[u8]) {
    check(data, &DecodeLimits::default());
    let knob = usize::from(data.last().copied().unwrap_or(0));
    check(data, &DecodeLimits { max_frame_bytes: knob * 4, max_entries: knob % 8, max_batch_items: knob % 16 });
}
