//! The committed seed corpus of the `frame_decode` fuzz target
//! (`fuzz/corpus/frame_decode/`), on stable Rust:
//!
//! * every file in it goes through exactly what the fuzz target does with
//!   an input (`tests/support/frame_check.rs`): no panic, and whatever
//!   decodes carried the right checksum and re-encodes canonically;
//! * the seeds are current: one valid frame of this build's format per
//!   message kind (the golden samples), plus a heartbeat whose body is at a
//!   newer version, so the fuzzer starts from frames that get past the
//!   checksum.
//!
//! A missing or empty corpus fails: nothing passes silently. Regenerate the
//! seeds after a format change with
//! `RAFT_IO_REGEN_FUZZ_SEEDS=1 cargo test --features framing --test framing_corpus`.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

use std::path::PathBuf;

use bytes::Bytes;
use raft_io::framing::{self, DecodeLimits};
use raft_io::{Heartbeat, MessageBody};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame_decode")
}

/// A heartbeat (from 1 to 2, term 7, commit 12345, round 77) whose body is
/// at version 2, with a field this build does not know appended (300) and
/// another (0): what a newer node may send.
const HEARTBEAT_V2_BODY: [u8; 12] = [0x01, 0x02, 0x07, 0x06, 0x02, 0x06, 0xB9, 0x60, 0x4D, 0xAC, 0x02, 0x00];

/// `(file name, bytes)` of every seed.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = wire_samples::samples()
        .into_iter()
        .map(|(name, message)| (format!("{name}.bin"), framing::encode(&message).to_vec()))
        .collect();
    seeds.push(("heartbeat_v2_body.bin".to_owned(), frame_check::seal(&HEARTBEAT_V2_BODY)));
    seeds
}

#[test]
fn the_seeds_are_current_valid_frames() {
    let dir = corpus_dir();
    let regen = std::env::var_os("RAFT_IO_REGEN_FUZZ_SEEDS").is_some();
    for (name, seed) in seeds() {
        let path = dir.join(&name);
        if regen {
            std::fs::write(&path, &seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == seed, "{name} is stale: rerun with RAFT_IO_REGEN_FUZZ_SEEDS=1");
        let decoded = framing::decode(&Bytes::from(committed), &DecodeLimits::default());
        assert!(decoded.is_ok(), "seed {name} does not decode: {decoded:?}");
        if name == "heartbeat_v2_body.bin" {
            let body = decoded.map(|m| m.body);
            assert_eq!(body, Ok(MessageBody::Heartbeat(Heartbeat { commit: 12_345, round: 77 })));
        }
    }
}

#[test]
fn every_file_of_the_corpus_passes_the_fuzz_target_checks() {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("the fuzz corpus {}: {e}", dir.display()));
    let mut files = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        frame_check::fuzz_one(&data);
        files += 1;
    }
    assert!(files >= seeds().len(), "the fuzz corpus {} holds {files} files, fewer than its seeds", dir.display());
}
