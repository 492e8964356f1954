//! Golden vectors of batch frames (format 3): the committed bytes of a few
//! batches, checked both ways (encoding the envelopes gives exactly the
//! fixture, the fixture decodes to exactly the envelopes), the documented
//! layout byte by byte, the behaviour towards the single-message format
//! (format 2) and format 1, and the `batch_decode` fuzz seed corpus.
//!
//! Regenerate the vectors only on purpose (a deliberate, documented format
//! change; see `docs/PROTOCOL.md`), and the fuzz seeds after one:
//!
//! ```text
//! RAFT_IO_BLESS=1 cargo test --features framing --test framing_batch_golden
//! RAFT_IO_REGEN_FUZZ_SEEDS=1 cargo test --features framing --test framing_batch_golden
//! ```
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/fixtures.rs"]
mod fixtures;

#[path = "support/batch_samples.rs"]
mod batch_samples;

#[path = "support/batch_check.rs"]
mod batch_check;

use std::path::PathBuf;

use fixtures::{blessing, files_in, read};

use bytes::Bytes;
use raft_io::MessageBody;
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::multi::EnvelopeBody;

fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire")
}

fn batch_dir() -> PathBuf {
    wire_dir().join("batch")
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch_decode")
}

#[test]
fn every_batch_matches_its_fixture_both_ways() {
    let bless = blessing();
    let mut names = Vec::new();
    for (name, envelopes) in batch_samples::samples() {
        let path = batch_dir().join(format!("{name}.bin"));
        let encoded = framing::encode_batch(batch_samples::FROM, batch_samples::TO, &envelopes).expect("encodes");
        if bless {
            std::fs::create_dir_all(batch_dir()).expect("fixture dir");
            std::fs::write(&path, &encoded).expect("write fixture");
        }
        let fixture = Bytes::from(read(&path));
        assert_eq!(encoded, fixture, "{name}: encoding differs from the committed fixture");
        let decoded = framing::decode_batch(&fixture, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: fixture does not decode: {e}"));
        assert_eq!(decoded, envelopes, "{name}: fixture decodes to different envelopes");
        names.push(format!("{name}.bin"));
    }
    names.sort();
    assert_eq!(files_in(&batch_dir()), names, "one fixture per sample batch and no other");
}

/// The layout documented in `docs/PROTOCOL.md` ("Batch frame") for the
/// small sample, byte by byte, so the document and the code cannot drift.
#[test]
fn the_small_fixture_matches_the_documented_layout() {
    let fixture = read(&batch_dir().join("small.bin"));
    let checksum = frame_check::checksum_of(&fixture).expect("long enough").to_le_bytes();
    #[rustfmt::skip]
    let documented = [
        0x03,                                                   // format 3: batch
        checksum[0], checksum[1], checksum[2], checksum[3],     // CRC-32C, as in format 2
        0x01, 0x02,                                             // from 1, to 2
        0x03,                                                   // 3 items
        0x00, 0x07, 0x04, 0x06, 0x01, 0x02, 0x0A, 0x03,         // group message: group 7, term 4, kind 6 Heartbeat, body v1 2 bytes: commit 10, round 3
        0x01, 0x09, 0x01, 0x02, 0x02, 0x28,                     // quiesce: group 9, body v1 2 bytes: term 2, commit 40
        0x02, 0x01, 0x00,                                       // ping: body v1, no fields
    ];
    assert_eq!(fixture, documented);
    assert_eq!(&checksum, &[0x84, 0xE8, 0xDC, 0xF7], "the checksum PROTOCOL.md shows: 0xF7DCE884");
}

/// Every fixture carries the CRC-32C (computed by the tests' own bitwise
/// implementation) of its format byte and every byte after the checksum.
#[test]
fn every_fixture_carries_the_crc32c_of_its_other_bytes() {
    for (name, _) in batch_samples::samples() {
        let fixture = read(&batch_dir().join(format!("{name}.bin")));
        assert_eq!(fixture[0], framing::BATCH_FORMAT_VERSION, "{name}");
        assert_eq!(frame_check::stored_checksum(&fixture), frame_check::checksum_of(&fixture), "{name}");
    }
}

/// A group message in a batch is the single-message frame's kind tag and
/// body, byte for byte: one body codec for both formats.
#[test]
fn group_messages_carry_the_single_message_body_bytes() {
    let frame = framing::encode_batch(1, 2, &batch_samples::every_kind()).expect("encodes");
    for envelope in batch_samples::every_kind() {
        let EnvelopeBody::Raft { group, message } = &envelope.body else { continue };
        let single = framing::encode(message);
        let header = frame_check::PREFIX
            + [message.from, message.to, message.term].map(pack_io::varint_len).iter().sum::<usize>();
        let mut item = vec![0x00];
        item.extend(varint(*group));
        item.extend(varint(message.term));
        item.extend_from_slice(&single[header..]);
        assert!(frame.windows(item.len()).any(|w| w == &item[..]), "group {group}: not the single-message body");
    }
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The previous version. Single-message frames (format 2) are unchanged:
/// their vectors still decode with `decode`, and `decode_batch` refuses
/// them as `SingleMessageFrame`; `decode` refuses a batch frame as
/// `BatchFrame`; format-1 frames (raft-io 0.7) are refused by both as
/// `UnsupportedFormat { version: 1 }`. (A 0.7 reader refuses a batch frame
/// the same way, `UnsupportedFormat { version: 3 }`: its decoder accepts
/// only its own format byte, 1.)
#[test]
fn each_decoder_refuses_the_other_format_by_name() {
    let limits = DecodeLimits::default();
    for (name, message) in wire_samples::samples() {
        let single = Bytes::from(read(&wire_dir().join(format!("{name}.bin"))));
        assert_eq!(framing::decode(&single, &limits), Ok(message), "{name}: format 2 is unchanged");
        assert_eq!(framing::decode_batch(&single, &limits), Err(FrameError::SingleMessageFrame), "{name}");
    }
    for (name, _) in batch_samples::samples() {
        let batch = Bytes::from(read(&batch_dir().join(format!("{name}.bin"))));
        assert_eq!(framing::decode(&batch, &limits), Err(FrameError::BatchFrame), "{name}");
    }
    let format1 = Bytes::from(read(&wire_dir().join("format1/heartbeat.bin")));
    assert_eq!(framing::decode_batch(&format1, &limits), Err(FrameError::UnsupportedFormat { version: 1 }));
}

/// Entry data and snapshot chunks of a decoded batch are slices of the
/// frame, not copies.
#[test]
fn decoded_data_shares_the_frame() {
    let frame = Bytes::from(read(&batch_dir().join("every_kind.bin")));
    let range = frame.as_ptr_range();
    let mut slices = 0;
    for envelope in framing::decode_batch(&frame, &DecodeLimits::default()).expect("decodes") {
        let EnvelopeBody::Raft { message, .. } = envelope.body else { continue };
        let data: Vec<Bytes> = match message.body {
            MessageBody::Append(append) => append.entries.into_iter().map(|e| e.data).collect(),
            MessageBody::Snapshot(chunk) => vec![chunk.data],
            _ => continue,
        };
        for d in data.into_iter().filter(|d| !d.is_empty()) {
            assert!(range.contains(&d.as_ptr()), "a copy, not a slice of the frame");
            slices += 1;
        }
    }
    assert!(slices >= 3);
}

/// The `batch_decode` fuzz target's seeds: one file per golden batch, plus
/// a batch whose quiescence body is at a newer version (an appended field),
/// so the fuzzer starts past the checksum; each is current and passes the
/// target's checks, as does every other file of the corpus.
#[test]
fn the_fuzz_seeds_are_current_and_pass_the_target_checks() {
    let dir = corpus_dir();
    let regen = std::env::var_os("RAFT_IO_REGEN_FUZZ_SEEDS").is_some();
    let mut seeds: Vec<(String, Vec<u8>)> = batch_samples::samples()
        .into_iter()
        .map(|(name, e)| (format!("{name}.bin"), framing::encode_batch(1, 2, &e).expect("encodes").to_vec()))
        .collect();
    // from 1, to 2, 1 item: quiesce group 9, body version 2, 3 bytes: term 2, commit 40, a newer field 5.
    seeds.push(("quiesce_v2_body.bin".into(), batch_check::seal(&[1, 2, 1, 1, 9, 2, 3, 2, 40, 5])));
    if regen {
        std::fs::create_dir_all(&dir).expect("corpus dir");
    }
    for (name, seed) in &seeds {
        let path = dir.join(name);
        if regen {
            std::fs::write(&path, seed).expect("write seed");
        }
        assert!(read(&path) == *seed, "{name} is stale: rerun with RAFT_IO_REGEN_FUZZ_SEEDS=1");
        assert!(framing::decode_batch(&Bytes::from(seed.clone()), &DecodeLimits::default()).is_ok(), "{name}");
    }
    let files = files_in(&dir);
    assert!(files.len() >= seeds.len(), "the corpus is missing");
    for name in files {
        batch_check::fuzz_one(&read(&dir.join(name)));
    }
}
