//! Property tests of batch frames (format 3) on stable Rust:
//!
//! * arbitrary batches of mixed envelopes (group messages of every kind,
//!   quiescence notices, pings; any group ids) round-trip, deterministically
//!   and canonically, and `encoded_batch_len` predicts the length;
//! * the encoder refuses a batch it must not write (other nodes, group 0)
//!   and then leaves the buffer as it was;
//! * a damaged frame is refused, or (when the damage cancels out) decodes to
//!   the very envelopes it was;
//! * damaged frames with their checksum fixed up, random items behind a
//!   valid header and tight limits never panic, and whatever decodes
//!   re-encodes canonically (the checks of the `batch_decode` fuzz target,
//!   `tests/support/batch_check.rs`).
//!
//! 64 cases per property by default (CI builds this with the rest); set the
//! `PROPTEST_CASES` environment variable for more, e.g.
//! `PROPTEST_CASES=20000 cargo test --release --features framing --test framing_batch_props`.
#![cfg(feature = "framing")]

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/batch_check.rs"]
mod batch_check;

#[path = "support/message_strategies.rs"]
mod message_strategies;

use bytes::BytesMut;
use message_strategies::{body, node_id, num};
use proptest::collection::vec;
use proptest::prelude::*;
use raft_io::Message;
use raft_io::framing::{self, BatchEncodeError, DecodeLimits, FrameError};
use raft_io::multi::{Envelope, EnvelopeBody};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// A group id: never 0.
fn group() -> impl Strategy<Value = u64> {
    num().prop_map(|g| g.max(1))
}

/// What an envelope carries, before it is addressed.
#[derive(Clone, Debug)]
enum Item {
    Raft { group: u64, term: u64, body: raft_io::MessageBody },
    Quiesce { group: u64, term: u64, commit: u64 },
    Ping,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (group(), num(), body()).prop_map(|(group, term, body)| Item::Raft { group, term, body }),
        1 => (group(), num(), num()).prop_map(|(group, term, commit)| Item::Quiesce { group, term, commit }),
        1 => Just(Item::Ping),
    ]
}

fn address(from: u64, to: u64, item: Item) -> Envelope {
    let body = match item {
        Item::Raft { group, term, body } => EnvelopeBody::Raft { group, message: Message { from, to, term, body } },
        Item::Quiesce { group, term, commit } => EnvelopeBody::Quiesce { group, term, commit },
        Item::Ping => EnvelopeBody::Ping,
    };
    Envelope { from, to, body }
}

/// `(from, to, envelopes)`: a batch of 0 to 12 mixed envelopes.
fn batch() -> impl Strategy<Value = (u64, u64, Vec<Envelope>)> {
    (node_id(), node_id(), vec(item(), 0..12)).prop_map(|(from, to, items)| {
        let envelopes = items.into_iter().map(|i| address(from, to, i)).collect();
        (from, to, envelopes)
    })
}

/// One way to damage a frame.
#[derive(Clone, Debug)]
enum Damage {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
    ]
}

fn apply(frame: &mut Vec<u8>, damage: &Damage) {
    let len = frame.len();
    if len == 0 {
        frame.push(0);
        return;
    }
    match *damage {
        Damage::Flip { at, bit } => frame[at % len] ^= 1 << bit,
        Damage::Set { at, byte } => frame[at % len] = byte,
        Damage::Insert { at, byte } => frame.insert(at % (len + 1), byte),
        Damage::Truncate { at } => frame.truncate(at % len),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_batch_round_trips_canonically((from, to, envelopes) in batch()) {
        let frame = framing::encode_batch(from, to, &envelopes).expect("a valid batch encodes");
        prop_assert_eq!(frame.len(), framing::encoded_batch_len(from, to, &envelopes).expect("valid"));
        prop_assert_eq!(&frame, &framing::encode_batch(from, to, &envelopes).expect("valid"), "deterministic");
        let decoded = framing::decode_batch(&frame, &DecodeLimits::default()).expect("decodes");
        prop_assert_eq!(&decoded, &envelopes);
        let again = framing::encode_batch(from, to, &decoded).expect("valid");
        prop_assert_eq!(again, frame.clone(), "encode(decode(frame)) == frame");
        batch_check::check_frame(&frame, &DecodeLimits::default());
    }

    #[test]
    fn encode_batch_into_appends_exactly_the_frame(
        (from, to, envelopes) in batch(),
        prefix in vec(any::<u8>(), 0..8),
    ) {
        let mut buf = BytesMut::from(&prefix[..]);
        let len = framing::encode_batch_into(from, to, &envelopes, &mut buf).expect("valid");
        prop_assert_eq!(&buf[..prefix.len()], &prefix[..]);
        prop_assert_eq!(len, buf.len() - prefix.len());
        prop_assert_eq!(&buf[prefix.len()..], &framing::encode_batch(from, to, &envelopes).expect("valid")[..]);
    }

    #[test]
    fn the_encoder_refuses_other_nodes_and_group_0_and_writes_nothing(
        (from, to, mut envelopes) in batch(),
        at in any::<usize>(),
        fault in 0..4u8,
        prefix in vec(any::<u8>(), 0..8),
    ) {
        let index = at % (envelopes.len() + 1);
        let stranger = (1..=3).find(|id| *id != from && *id != to).unwrap_or(1);
        let mut bad = address(from, to, Item::Quiesce { group: 5, term: 1, commit: 1 });
        let expected = match fault {
            0 => {
                bad.from = stranger;
                BatchEncodeError::OtherNodes { index, from: stranger, to }
            }
            1 => {
                bad = address(from, to, Item::Raft { group: 5, term: 1, body: raft_io::MessageBody::TimeoutNow });
                if let EnvelopeBody::Raft { message, .. } = &mut bad.body {
                    message.to = stranger;
                }
                BatchEncodeError::OtherNodes { index, from, to: stranger }
            }
            2 => {
                bad.body = EnvelopeBody::Quiesce { group: 0, term: 1, commit: 1 };
                BatchEncodeError::ZeroGroupId { index }
            }
            _ => {
                bad = address(from, to, Item::Raft { group: 0, term: 1, body: raft_io::MessageBody::TimeoutNow });
                BatchEncodeError::ZeroGroupId { index }
            }
        };
        envelopes.insert(index, bad);
        let mut buf = BytesMut::from(&prefix[..]);
        prop_assert_eq!(framing::encode_batch_into(from, to, &envelopes, &mut buf), Err(expected.clone()));
        prop_assert_eq!(&buf[..], &prefix[..], "the buffer is left as it was");
        prop_assert_eq!(framing::encoded_batch_len(from, to, &envelopes), Err(expected.clone()));
        prop_assert_eq!(framing::encode_batch(from, to, &envelopes), Err(expected));
        prop_assert_eq!(
            framing::encode_batch(0, to, &envelopes),
            Err(BatchEncodeError::ZeroNodeId { field: "from" })
        );
        prop_assert_eq!(
            framing::encode_batch(from, 0, &envelopes),
            Err(BatchEncodeError::ZeroNodeId { field: "to" })
        );
    }

    #[test]
    fn damaged_frames_are_refused_or_decode_to_the_original(
        (from, to, envelopes) in batch(),
        damages in vec(damage(), 1..4),
    ) {
        let frame = framing::encode_batch(from, to, &envelopes).expect("valid");
        let mut bytes = frame.to_vec();
        for d in &damages {
            apply(&mut bytes, d);
        }
        if let Ok(decoded) = framing::decode_batch(&bytes.into(), &DecodeLimits::default()) {
            prop_assert_eq!(decoded, envelopes);
        }
    }

    #[test]
    fn damaged_and_resealed_frames_never_panic_and_decode_canonically(
        (from, to, envelopes) in batch(),
        damages in vec(damage(), 1..4),
    ) {
        let mut bytes = framing::encode_batch(from, to, &envelopes).expect("valid").to_vec();
        for d in &damages {
            apply(&mut bytes, d);
        }
        batch_check::fuzz_one(&bytes);
    }

    #[test]
    fn random_items_behind_a_valid_header_never_panic(
        count in 0..6u8,
        items in vec(any::<u8>(), 0..96),
        tags in vec(0..4u8, 0..6),
    ) {
        // A plausible start: item tags of known kinds sprinkled in.
        let mut after = vec![1, 2, count];
        for (i, byte) in items.iter().enumerate() {
            after.push(tags.get(i % 8).copied().filter(|_| i % 8 == 0).unwrap_or(*byte));
        }
        batch_check::fuzz_one(&batch_check::seal(&after));
    }

    #[test]
    fn tight_limits_refuse_with_typed_errors(
        (from, to, envelopes) in batch(),
        max_frame_bytes in 0..1024usize,
        max_entries in 0..8usize,
        max_batch_items in 0..12usize,
    ) {
        let limits = DecodeLimits { max_frame_bytes, max_entries, max_batch_items };
        let frame = framing::encode_batch(from, to, &envelopes).expect("valid");
        match framing::decode_batch(&frame, &limits) {
            Ok(decoded) => prop_assert_eq!(decoded, envelopes),
            Err(FrameError::TooLarge { len, max }) => prop_assert!(len > max),
            Err(FrameError::TooManyItems { count, max }) => {
                prop_assert_eq!(count, envelopes.len() as u64);
                prop_assert!(count > max as u64);
            }
            Err(FrameError::TooManyEntries { count, max }) => prop_assert!(count > max as u64),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
