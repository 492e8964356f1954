//! Property tests of the wire format on stable Rust, so CI covers the decode
//! path without the nightly fuzzer:
//!
//! * every message kind, with arbitrary field values, round-trips, and its
//!   frame is canonical (decoding and re-encoding gives the same bytes);
//! * a mutated frame is refused, or (when the mutations cancel out) decodes
//!   to the very message it was: damage never yields another message;
//! * mutated frames with their checksum fixed up, truncated and random
//!   frames never panic, and whatever decodes re-encodes canonically (the
//!   checks of the `frame_decode` fuzz target, `tests/support/frame_check.rs`).
//!
//! Case counts use proptest's defaults (256 per property); raise them with
//! the `PROPTEST_CASES` environment variable, e.g.
//! `PROPTEST_CASES=20000 cargo test --release --features framing --test framing_props`.
#![cfg(feature = "framing")]

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/message_strategies.rs"]
mod message_strategies;

use bytes::Bytes;
use message_strategies::message;
use proptest::collection::vec;
use proptest::prelude::*;
use raft_io::framing::{self, DecodeLimits, FrameError};

/// One way to damage a frame.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
    ]
}

fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    let len = frame.len();
    match mutation {
        Mutation::Flip { at, bit } if len > 0 => frame[at % len] ^= 1 << bit,
        Mutation::Set { at, byte } if len > 0 => frame[at % len] = *byte,
        Mutation::Insert { at, byte } => frame.insert(at % (len + 1), *byte),
        Mutation::Remove { at } if len > 0 => {
            frame.remove(at % len);
        }
        Mutation::Truncate { at } => frame.truncate(at % (len + 1)),
        Mutation::Append(tail) => frame.extend_from_slice(tail),
        _ => {}
    }
}

proptest! {
    #[test]
    fn every_message_round_trips_canonically(message in message()) {
        let frame = framing::encode(&message);
        prop_assert_eq!(frame.len(), framing::encoded_len(&message));
        let decoded = framing::decode(&frame, &DecodeLimits::default());
        prop_assert_eq!(decoded.as_ref(), Ok(&message));
        prop_assert_eq!(framing::encode(&message), frame);
    }

    #[test]
    fn encode_into_appends_exactly_the_frame(message in message(), prefix in vec(any::<u8>(), 0..8)) {
        let mut buf = bytes::BytesMut::from(&prefix[..]);
        framing::encode_into(&message, &mut buf);
        prop_assert_eq!(&buf[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&buf[prefix.len()..], &framing::encode(&message)[..]);
    }

    /// The property the checksum exists for: however a frame is damaged,
    /// it never decodes to a message other than the one sent. (Mutations
    /// can cancel out, e.g. a byte set to its own value; such a frame
    /// decodes to the original, which is fine.) Without the checksum most
    /// cases fail: a flipped bit in a term, an index or entry data decodes
    /// to a different, valid message.
    #[test]
    fn mutated_frames_are_refused_or_decode_to_the_original(
        message in message(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut frame = framing::encode(&message).to_vec();
        for m in &mutations {
            apply(&mut frame, m);
        }
        if let Ok(decoded) = framing::decode(&Bytes::from(frame), &DecodeLimits::default()) {
            prop_assert_eq!(decoded, message, "a damaged frame became another message");
        }
    }

    /// The decoder behind the checksum: mutated frames whose checksum was
    /// recomputed (damage the checksum cannot see, or a buggy sender) never
    /// panic, and whatever decodes re-encodes canonically.
    #[test]
    fn mutated_and_resealed_frames_never_panic_and_decode_canonically(
        message in message(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut frame = framing::encode(&message).to_vec();
        for m in &mutations {
            apply(&mut frame, m);
        }
        frame_check::check(&frame, &DecodeLimits::default());
    }

    #[test]
    fn every_truncation_is_an_error(message in message(), cut in any::<usize>()) {
        let frame = framing::encode(&message);
        let cut = cut % frame.len();
        let err = framing::decode(&frame.slice(..cut), &DecodeLimits::default()).unwrap_err();
        prop_assert!(
            matches!(err, FrameError::Truncated { .. } | FrameError::ChecksumMismatch { .. }),
            "{:?}",
            err
        );
        let mut resealed = frame[..cut].to_vec();
        frame_check::reseal(&mut resealed);
        let err = framing::decode(&Bytes::from(resealed), &DecodeLimits::default()).unwrap_err();
        prop_assert!(matches!(err, FrameError::Truncated { .. } | FrameError::LengthPastFrame { .. }), "{:?}", err);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        frame_check::check(&bytes, &DecodeLimits::default());
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        kind in 0..14u8,
        version in 0..4u8,
        body in vec(any::<u8>(), 0..128),
    ) {
        let mut fields = vec![1, 2, 7, kind, version];
        fields.push(body.len() as u8 & 0x7F);
        fields.extend_from_slice(&body);
        frame_check::check_frame(&frame_check::seal(&fields), &DecodeLimits::default());
    }

    #[test]
    fn tight_limits_refuse_with_typed_errors(
        message in message(),
        max_frame_bytes in 0..512usize,
        max_entries in 0..8usize,
    ) {
        let limits = DecodeLimits { max_frame_bytes, max_entries, ..DecodeLimits::default() };
        let frame = framing::encode(&message);
        match framing::decode(&frame, &limits) {
            Ok(decoded) => prop_assert_eq!(decoded, message),
            Err(FrameError::TooLarge { len, max }) => prop_assert!(len > max),
            Err(FrameError::TooManyEntries { count, max }) => prop_assert!(count > max as u64),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
