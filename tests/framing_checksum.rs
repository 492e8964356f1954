//! The frame checksum (format 2): a corrupted frame is refused before it can
//! become a message.
//!
//! The bug it fixes: a frame whose term varint was corrupted into another
//! valid varint used to decode, the receiver adopted the huge term and the
//! cluster wedged. Each test here fails with the checksum check taken out
//! of the decoder.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

use bytes::Bytes;
use frame_check::{PREFIX, checksum_of, reseal, stored_checksum};
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::{Message, MessageBody};

fn decode(bytes: &[u8]) -> Result<Message, FrameError> {
    framing::decode(&Bytes::copy_from_slice(bytes), &DecodeLimits::default())
}

/// The error a frame with a wrong checksum must get: the checksum of its
/// bytes, and the one it carries.
fn mismatch(frame: &[u8]) -> FrameError {
    FrameError::ChecksumMismatch {
        expected: checksum_of(frame).expect("long enough"),
        found: stored_checksum(frame).expect("long enough"),
    }
}

/// Every single-bit flip of every byte of every sample frame is refused: in
/// the format byte as an unsupported format (or, 2 turned 3, as a batch
/// frame), anywhere else (the checksum
/// itself included) as a checksum mismatch. None decodes to any message.
#[test]
fn every_single_bit_flip_of_every_sample_is_refused() {
    let mut samples = wire_samples::samples();
    samples.push(("append 8x16B", wire_samples::append_of(8, 16)));
    let mut flips = 0;
    for (name, message) in samples {
        let frame = framing::encode(&message).to_vec();
        for at in 0..frame.len() {
            for bit in 0..8 {
                let mut damaged = frame.clone();
                damaged[at] ^= 1 << bit;
                let expected = match damaged[0] {
                    // 2 -> 3: the batch format, refused by name.
                    3 if at == 0 => FrameError::BatchFrame,
                    version if at == 0 => FrameError::UnsupportedFormat { version },
                    _ => mismatch(&damaged),
                };
                assert_eq!(decode(&damaged), Err(expected), "{name}: bit {bit} of byte {at} flipped");
                flips += 1;
            }
        }
    }
    assert!(flips > 8 * 500, "{flips} flips: the samples cover every kind");
}

/// The observed bug, byte for byte: the term varint of a frame replaced by
/// another valid varint — of the same length (a flipped bit) or longer (a
/// huge term) — is refused with the checksum error. The same bytes with a
/// recomputed checksum decode to a message with the altered term: the
/// checksum is all that stands between the damage and the node.
#[test]
fn a_term_corrupted_into_another_valid_varint_is_refused() {
    let heartbeat = framing::encode(&wire_samples::samples()[6].1).to_vec();
    assert_eq!(decode(&heartbeat).map(|m| m.body.name()), Ok("Heartbeat"));
    let term_at = PREFIX + 2; // after from = 1 and to = 2
    assert_eq!(heartbeat[term_at], 0x07, "term 7");

    // 2^62 - 1: just below `MAX_TERM`, so a node would adopt it.
    let huge = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F];
    let cases: [(&[u8], u64); 3] = [(&[0x47], 71), (&[0x7F], 127), (&huge, (1 << 62) - 1)];
    for (varint, term) in cases {
        let mut damaged = heartbeat[..term_at].to_vec();
        damaged.extend_from_slice(varint);
        damaged.extend_from_slice(&heartbeat[term_at + 1..]);
        assert_eq!(decode(&damaged), Err(mismatch(&damaged)), "term {term}");
        assert_eq!(stored_checksum(&damaged), stored_checksum(&heartbeat), "the sender's checksum");

        reseal(&mut damaged);
        let forged = decode(&damaged).expect("a valid frame once resealed");
        assert_eq!(forged.term, term);
    }

    // A multi-byte term (the vote sample's 2^40, last varint byte 0x20)
    // with one bit flipped in its last byte: still a canonical varint, a
    // term three times larger.
    let (_, vote) = wire_samples::samples().swap_remove(2);
    assert_eq!(vote.term, 1 << 40);
    let mut damaged = framing::encode(&vote).to_vec();
    let last_term_byte = PREFIX + 2 + pack_io::varint_len(vote.term) - 1;
    assert_eq!(damaged[last_term_byte], 0x20);
    damaged[last_term_byte] ^= 0x40;
    assert_eq!(decode(&damaged), Err(mismatch(&damaged)));
    reseal(&mut damaged);
    assert_eq!(decode(&damaged).map(|m| m.term), Ok(3 << 40));
}

/// What is checked before the checksum: the size limit (so an oversized
/// frame is not even hashed) and the format byte (so a frame of another
/// format is named as such). Everything else comes after it.
#[test]
fn the_checksum_is_checked_after_the_size_and_the_format_and_before_any_field() {
    let mut frame = framing::encode(&wire_samples::heartbeat()).to_vec();
    frame[PREFIX] = 0; // from = 0, which the decoder refuses once it reads it
    let tight = DecodeLimits { max_frame_bytes: frame.len() - 1, ..DecodeLimits::default() };
    assert!(matches!(framing::decode(&Bytes::from(frame.clone()), &tight), Err(FrameError::TooLarge { .. })));
    assert_eq!(decode(&frame), Err(mismatch(&frame)), "the checksum, not the zero node id");
    reseal(&mut frame);
    assert_eq!(decode(&frame), Err(FrameError::ZeroNodeId { field: "from" }));

    // An AppendEntries claiming 4000 entries, corrupted: refused by its
    // checksum before the count is read (let alone reserved for).
    let mut append = framing::encode(&wire_samples::append_of(1, 4)).to_vec();
    let count_at = PREFIX + 4 + 2 + 3; // from, to, term, kind; body version, length; prev index, term, commit
    assert_eq!(append[count_at], 1);
    append[count_at] = 0xA0;
    append.insert(count_at + 1, 0x1F); // 4000 as a varint
    assert_eq!(decode(&append), Err(mismatch(&append)));
}

/// A frame with the checksum of another frame, or a checksum of zero, is
/// refused: the checksum is over the frame's own bytes.
#[test]
fn a_checksum_from_another_frame_or_zero_is_refused() {
    let a = framing::encode(&wire_samples::heartbeat()).to_vec();
    let b = framing::encode(&wire_samples::vote()).to_vec();
    let mut swapped = a.clone();
    swapped[frame_check::CHECKSUM].copy_from_slice(&b[frame_check::CHECKSUM]);
    assert_eq!(decode(&swapped), Err(mismatch(&swapped)));
    let mut zero = a;
    zero[frame_check::CHECKSUM].fill(0);
    assert_eq!(decode(&zero), Err(mismatch(&zero)));
    assert!(matches!(
        decode(&zero),
        Err(FrameError::ChecksumMismatch { found: 0, expected }) if expected != 0
    ));
}

/// `TimeoutNow` has no fields and the shortest frame; even there, each
/// header byte is covered.
#[test]
fn the_shortest_frame_is_covered_too() {
    let frame = framing::encode(&Message { from: 1, to: 2, term: 3, body: MessageBody::TimeoutNow }).to_vec();
    assert_eq!(frame.len(), PREFIX + 6);
    for at in PREFIX..frame.len() {
        let mut damaged = frame.clone();
        damaged[at] = damaged[at].wrapping_add(1);
        assert_eq!(decode(&damaged), Err(mismatch(&damaged)), "byte {at}");
    }
}
