//! The frame checksum computed independently of the crate (a bitwise
//! CRC-32C straight from its definition), helpers to seal hand-built frames,
//! and the checks the `frame_decode` fuzz target runs on every input.
//!
//! Shared by that target (`fuzz/fuzz_targets/frame_decode.rs`) and its
//! stable-Rust twins (`tests/framing_props.rs`, `tests/framing_corpus.rs`),
//! and by the tests that build frames by hand.
//!
//! Layout of the bytes before the message (`docs/PROTOCOL.md`, "Frame"):
//!
//! ```text
//! 0     format     u8 = 2
//! 1..5  checksum   u32 little-endian: CRC-32C of byte 0 and bytes 5..
//! 5..   from, to, term, kind, body
//! ```

#![allow(dead_code)]

use std::ops::Range;

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits};

/// The format byte of the frames this build writes.
pub const FORMAT: u8 = 2;

/// Where the checksum sits in a frame.
pub const CHECKSUM: Range<usize> = 1..5;

/// Bytes before the first field of the message (`from`): the format byte
/// and the checksum.
pub const PREFIX: usize = 5;

/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and
/// final XOR 0xFFFF_FFFF, one bit at a time. Slow and obviously right.
pub fn crc32c<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// The checksum `frame` should carry: the CRC-32C of its format byte and of
/// everything after the checksum field. `None` for a frame too short to
/// have a checksum.
pub fn checksum_of(frame: &[u8]) -> Option<u32> {
    let rest = frame.get(PREFIX..)?;
    Some(crc32c(frame[..1].iter().chain(rest)))
}

/// The checksum `frame` carries, if it is long enough to carry one.
pub fn stored_checksum(frame: &[u8]) -> Option<u32> {
    let field: [u8; 4] = frame.get(CHECKSUM)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

/// Writes the right checksum into `frame` (after its bytes were edited). A
/// frame too short to have a checksum is left as it is.
pub fn reseal(frame: &mut [u8]) {
    if let Some(sum) = checksum_of(frame) {
        frame[CHECKSUM].copy_from_slice(&sum.to_le_bytes());
    }
}

/// A format-2 frame around `message_bytes` (everything from `from` on):
/// the format byte, the checksum, then the bytes.
pub fn seal(message_bytes: &[u8]) -> Vec<u8> {
    let mut frame = vec![FORMAT, 0, 0, 0, 0];
    frame.extend_from_slice(message_bytes);
    reseal(&mut frame);
    frame
}

/// What the fuzz target checks on one input: the bytes as they came (almost
/// always refused, by the checksum if nothing earlier), and the same bytes
/// with their checksum fixed up (so the decoder behind the checksum is
/// exercised too), each under `limits`.
pub fn check(data: &[u8], limits: &DecodeLimits) {
    check_frame(data, limits);
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    check_frame(&sealed, limits);
}

/// Decoding `frame` never panics; whatever decodes carried the right
/// checksum and re-encodes canonically: to the same bytes when its body is
/// at this build's version (the version byte right after the header is 1),
/// otherwise (a newer body whose unknown trailing fields were skipped) to a
/// frame no longer than it that decodes to the same message.
pub fn check_frame(frame: &[u8], limits: &DecodeLimits) {
    let Ok(message) = framing::decode(&Bytes::copy_from_slice(frame), limits) else {
        return;
    };
    assert_eq!(frame[0], FORMAT, "decoded a frame of another format");
    assert_eq!(stored_checksum(frame), checksum_of(frame), "decoded a frame whose checksum is wrong");
    let again = framing::encode(&message);
    assert_eq!(again.len(), framing::encoded_len(&message));
    let kind_at =
        PREFIX + [message.from, message.to, message.term].iter().map(|&v| pack_io::varint_len(v)).sum::<usize>();
    // Every kind tag this build knows fits in one byte.
    if frame.get(kind_at + 1) == Some(&1) {
        assert_eq!(&again[..], frame, "a frame whose body is at version 1 must be canonical");
    } else {
        assert!(again.len() <= frame.len());
        assert_eq!(framing::decode(&again, &DecodeLimits::default()).as_ref(), Ok(&message));
    }
}

/// Everything the `frame_decode` fuzz target does with one input: [`check`]
/// it under the default limits, and under tight ones chosen by its last
/// byte (so the limit checks are fuzzed too).
pub fn fuzz_one(data: &[u8]) {
    check(data, &DecodeLimits::default());
    let knob = usize::from(data.last().copied().unwrap_or(0));
    check(data, &DecodeLimits { max_frame_bytes: knob * 4, max_entries: knob % 8, ..DecodeLimits::default() });
}
