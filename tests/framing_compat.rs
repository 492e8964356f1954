//! The wire format is pack-io's, and it evolves the way pack-io versioned
//! structs do.
//!
//! * Every sample frame is byte-identical to `pack_io::encode` of a value of
//!   *derived* mirror types written straight from the layout in
//!   `docs/PROTOCOL.md`: plain structs for the frame and the envelope (the
//!   frame's checksum a `[u8; 4]`, computed by the tests' own CRC-32C over
//!   the format byte and the encoded envelope), an enum whose newtype
//!   variants hold `#[pack_io(version = 1)]` structs for the bodies.
//! * A body written by a newer node, with a field appended, decodes on this
//!   (version 1) reader: built once with a derived `version = 2` struct and
//!   once by hand.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

use frame_check::seal;

use bytes::Bytes;
use pack_io::{Deserialize, Encode, Encoder, Serialize};
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::{Heartbeat, Message, MessageBody};

/// A format-2 frame: the format byte, the checksum, the envelope.
#[derive(Serialize, Deserialize)]
struct Frame {
    format: u8,
    /// CRC-32C of `format` followed by the encoded `envelope`, little-endian.
    checksum: [u8; 4],
    envelope: Envelope,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: u64,
    to: u64,
    term: u64,
    body: BodyV1,
}

#[derive(Serialize, Deserialize)]
enum BodyV1 {
    PreVote(VoteRequestV1),
    PreVoteResponse(VoteResponseV1),
    Vote(VoteRequestV1),
    VoteResponse(VoteResponseV1),
    Append(AppendV1),
    AppendResponse(AppendResponseV1),
    Heartbeat(HeartbeatV1),
    HeartbeatResponse(HeartbeatResponseV1),
    Snapshot(SnapshotV1),
    SnapshotResponse(SnapshotAckV1),
    TimeoutNow(TimeoutNowV1),
    ReadIndex(ReadIndexV1),
    ReadIndexResponse(ReadIndexResponseV1),
    Removed(RemovedV1),
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct VoteRequestV1 {
    last_log_index: u64,
    last_log_term: u64,
    transfer: bool,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct VoteResponseV1 {
    granted: bool,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct AppendV1 {
    prev_log_index: u64,
    prev_log_term: u64,
    leader_commit: u64,
    entries: Vec<EntryV1>,
}

/// Entries are plain (unversioned) structs inside the versioned body.
#[derive(Serialize, Deserialize)]
struct EntryV1 {
    term: u64,
    index: u64,
    kind: u8,
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct AppendResponseV1 {
    success: bool,
    index: u64,
    hint_term: u64,
    hint_index: u64,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct HeartbeatV1 {
    commit: u64,
    round: u64,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct HeartbeatResponseV1 {
    round: u64,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct SnapshotV1 {
    index: u64,
    term: u64,
    /// `Membership::encode` bytes.
    membership: Vec<u8>,
    total_len: u64,
    offset: u64,
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct SnapshotAckV1 {
    index: u64,
    received: u64,
    rejected: bool,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct TimeoutNowV1 {}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct ReadIndexV1 {
    id: u64,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct ReadIndexResponseV1 {
    id: u64,
    index: u64,
    ok: bool,
}

#[derive(Serialize, Deserialize)]
#[pack_io(version = 1)]
struct RemovedV1 {
    config_index: u64,
}

fn mirror(m: &Message) -> Frame {
    let body = match &m.body {
        MessageBody::PreVote(b) => BodyV1::PreVote(vote_request(b)),
        MessageBody::PreVoteResponse(b) => BodyV1::PreVoteResponse(VoteResponseV1 { granted: b.granted }),
        MessageBody::Vote(b) => BodyV1::Vote(vote_request(b)),
        MessageBody::VoteResponse(b) => BodyV1::VoteResponse(VoteResponseV1 { granted: b.granted }),
        MessageBody::Append(b) => BodyV1::Append(AppendV1 {
            prev_log_index: b.prev_log_index,
            prev_log_term: b.prev_log_term,
            leader_commit: b.leader_commit,
            entries: b
                .entries
                .iter()
                .map(|e| EntryV1 { term: e.term, index: e.index, kind: e.kind.to_u8(), data: e.data.to_vec() })
                .collect(),
        }),
        MessageBody::AppendResponse(b) => BodyV1::AppendResponse(AppendResponseV1 {
            success: b.success,
            index: b.index,
            hint_term: b.hint_term,
            hint_index: b.hint_index,
        }),
        MessageBody::Heartbeat(b) => BodyV1::Heartbeat(HeartbeatV1 { commit: b.commit, round: b.round }),
        MessageBody::HeartbeatResponse(b) => BodyV1::HeartbeatResponse(HeartbeatResponseV1 { round: b.round }),
        MessageBody::Snapshot(b) => BodyV1::Snapshot(SnapshotV1 {
            index: b.meta.index,
            term: b.meta.term,
            membership: b.meta.membership.encode().to_vec(),
            total_len: b.total_len,
            offset: b.offset,
            data: b.data.to_vec(),
        }),
        MessageBody::SnapshotResponse(b) => {
            BodyV1::SnapshotResponse(SnapshotAckV1 { index: b.index, received: b.received, rejected: b.rejected })
        }
        MessageBody::TimeoutNow => BodyV1::TimeoutNow(TimeoutNowV1 {}),
        MessageBody::ReadIndex(b) => BodyV1::ReadIndex(ReadIndexV1 { id: b.id }),
        MessageBody::ReadIndexResponse(b) => {
            BodyV1::ReadIndexResponse(ReadIndexResponseV1 { id: b.id, index: b.index, ok: b.ok })
        }
        MessageBody::Removed(b) => BodyV1::Removed(RemovedV1 { config_index: b.config_index }),
        other => panic!("no wire mirror for {} yet: add one with the new message kind", other.name()),
    };
    let envelope = Envelope { from: m.from, to: m.to, term: m.term, body };
    let format = framing::FORMAT_VERSION;
    let covered = pack_io::encode(&envelope).expect("pack-io encode");
    let checksum = frame_check::crc32c([format].iter().chain(&covered)).to_le_bytes();
    Frame { format, checksum, envelope }
}

fn vote_request(b: &raft_io::VoteRequest) -> VoteRequestV1 {
    VoteRequestV1 { last_log_index: b.last_log_index, last_log_term: b.last_log_term, transfer: b.transfer }
}

#[test]
fn every_frame_is_the_pack_io_derive_encoding_of_the_documented_layout() {
    let mut samples = wire_samples::samples();
    samples.push(("append 64x1KiB", wire_samples::append_of(64, 1024)));
    samples.push(("append of nothing", wire_samples::append_of(0, 0)));
    for (name, message) in samples {
        let derived = pack_io::encode(&mirror(&message)).expect("pack-io encode");
        assert_eq!(framing::encode(&message)[..], derived[..], "{name}");
        assert_eq!(framing::encoded_len(&message), derived.len(), "{name}");
        // And the derive reads our frames back.
        let read: Frame = pack_io::decode(&framing::encode(&message)).expect("pack-io decode");
        assert_eq!(read.envelope.term, message.term, "{name}");
        assert_eq!(read.checksum, derived[1..5], "{name}");
    }
}

/// What a newer node might send: the heartbeat body at version 2 with a
/// field appended.
#[derive(Serialize, Deserialize)]
#[pack_io(version = 2)]
struct HeartbeatV2 {
    commit: u64,
    round: u64,
    #[pack_io(since = 2)]
    lease_ticks: u64,
}

#[test]
fn a_v2_body_with_an_appended_field_decodes_on_the_v1_reader() {
    let mut enc = Encoder::new();
    for v in [1_u64, 2, 7, 6] {
        enc.write_varint_u64(v).unwrap(); // from, to, term, kind = Heartbeat
    }
    enc.write(&HeartbeatV2 { commit: 12_345, round: 77, lease_ticks: 300 }).unwrap();
    let frame = Bytes::from(seal(&enc.into_inner()));

    let decoded = framing::decode(&frame, &DecodeLimits::default()).expect("v1 reader skips the new field");
    let expected =
        Message { from: 1, to: 2, term: 7, body: MessageBody::Heartbeat(Heartbeat { commit: 12_345, round: 77 }) };
    assert_eq!(decoded, expected);
    // Re-encoding writes this build's version: the canonical v1 frame.
    assert_eq!(framing::encode(&decoded)[..], framing::encode(&expected)[..]);
    assert!(framing::encode(&decoded).len() < frame.len());
}

#[test]
fn a_hand_built_v2_body_decodes_on_the_v1_reader_and_a_v1_body_must_be_exact() {
    #[rustfmt::skip]
    let v2 = [
        0x01, 0x02, 0x07, 0x06, // from 1, to 2, term 7, Heartbeat
        0x02,                   // body version 2
        0x06,                   // body length 6
        0xB9, 0x60,             // commit = 12345
        0x4D,                   // round = 77
        0xAC, 0x02,             // a field this reader does not know (300)
        0x00,                   // and another (0)
    ];
    let decoded = framing::decode(&Bytes::from(seal(&v2)), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.body, MessageBody::Heartbeat(Heartbeat { commit: 12_345, round: 77 }));

    // The same body claiming version 1 is not the canonical v1 encoding.
    let mut v1 = v2;
    v1[4] = 0x01;
    assert_eq!(
        framing::decode(&Bytes::from(seal(&v1)), &DecodeLimits::default()),
        Err(FrameError::BodyTrailingBytes { kind: "Heartbeat", remaining: 3 })
    );

    // A newer body still has to hold every field this reader knows.
    #[rustfmt::skip]
    let short = [0x01, 0x02, 0x07, 0x06, 0x02, 0x02, 0xB9, 0x60];
    assert!(matches!(
        framing::decode(&Bytes::from(seal(&short)), &DecodeLimits::default()),
        Err(FrameError::Truncated { .. })
    ));
}

#[test]
fn an_unknown_message_kind_is_a_typed_error() {
    // Kind 14 is the next free tag: what a newer node's new message kind
    // looks like. Its body is well formed; the reader still cannot skip it.
    let frame = Bytes::from(seal(&[0x01, 0x02, 0x07, 0x0E, 0x01, 0x00]));
    assert_eq!(framing::decode(&frame, &DecodeLimits::default()), Err(FrameError::UnknownKind { tag: 14 }));
    let far = Bytes::from(seal(&[0x01, 0x02, 0x07, 0xC8, 0x01, 0x01, 0x00]));
    assert_eq!(framing::decode(&far, &DecodeLimits::default()), Err(FrameError::UnknownKind { tag: 200 }));
}
