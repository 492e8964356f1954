//! Shared WAL recovery from arbitrary bytes, on stable: the same checks as
//! the cargo-fuzz target `shared_wal_recovery`
//! (`tests/support/shared_wal_input.rs`), driven by proptest over random
//! directories, over mutations of a directory a real multi-group run left
//! (flipped bytes, cut and removed files), and over the committed fuzz
//! seeds. `SharedWal::open` must never panic, a refusal must leave the
//! directory as it was, and whatever opens must be consistent, idempotent
//! and writable, and must hold every group's synced writes: damage that
//! loses one must make the open refuse.
//!
//! `PROPTEST_CASES=N` scales each property (default 48).
//! `RAFT_IO_REGEN_FUZZ_SEEDS=1` rewrites `fuzz/corpus/shared_wal_recovery/`.
#![cfg(feature = "persistence")]

#[path = "support/shared_wal_input.rs"]
mod shared_wal_input;

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use raft_io::log::shared::{GroupId, SharedWal, SharedWalOptions};
use raft_io::{Entry, HardState, Membership, RaftLog, SnapshotMeta, WriteToken};
use shared_wal_input::{Image, Outcome, check, check_against, decode, dir_input, encode, images, scratch};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        rng_seed: RngSeed::Fixed(0x5348_4152_4544),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-shared-props-").tempdir().expect("temp dir")
}

/// A directory a clean multi-group run leaves: three groups (one removed
/// along the way, one with a snapshot), records over several segments, a
/// compaction. Returns its input and the groups it must recover.
fn sample() -> (Vec<u8>, BTreeMap<GroupId, Image>) {
    static SAMPLE: std::sync::OnceLock<(Vec<u8>, BTreeMap<GroupId, Image>)> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(make_sample).clone()
}

/// The sample written with records of at most 600 bytes, checkpointed
/// by hand after the ninth round and at the end: its head is a checkpoint
/// in parts (each group's state fits a record, all of them do not).
fn parts_sample() -> (Vec<u8>, BTreeMap<GroupId, Image>) {
    static SAMPLE: std::sync::OnceLock<(Vec<u8>, BTreeMap<GroupId, Image>)> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| write_sample(Some(600))).clone()
}

fn make_sample() -> (Vec<u8>, BTreeMap<GroupId, Image>) {
    write_sample(None)
}

fn write_sample(max_record: Option<u32>) -> (Vec<u8>, BTreeMap<GroupId, Image>) {
    let root = temp();
    let dir = root.path().join("log");
    let options = SharedWalOptions::new().segment_size(512);
    let options = match max_record {
        Some(max) => options.max_record_size(max),
        None => options,
    };
    let wal = SharedWal::open_with(&dir, options).expect("open");
    let mut logs: Vec<_> = (1..=4).map(|id| wal.create_group(id).expect("create")).collect();
    for round in 0..12u64 {
        for log in &mut logs {
            let next = log.last_index() + 1;
            log.append(&mut vec![Entry::normal(1, next, vec![round as u8; 30].into())]).expect("append");
            log.set_hard_state(HardState { term: 1, vote: Some(1), commit: next - 1 }).expect("hard state");
            log.submit(WriteToken::new(1, round + 1)).expect("submit");
        }
        wal.flush().expect("flush");
        if max_record.is_some() && round == 8 {
            wal.checkpoint().expect("checkpoint");
        }
        if round == 5 {
            let meta = SnapshotMeta { index: 4, term: 1, membership: Membership::new([1, 2], []).expect("members") };
            logs[1].install_snapshot(meta, vec![9u8; 100].into()).expect("snapshot");
            logs[1].sync().expect("sync");
        }
    }
    logs.remove(2);
    wal.remove_group(3).expect("remove");
    drop(logs);
    if max_record.is_some() {
        wal.checkpoint().expect("checkpoint");
        let stats = wal.stats();
        assert!(stats.checkpoint_parts >= 4 && stats.compactions >= 2, "checkpoints in parts: {stats:?}");
    }
    let want = images(&wal);
    wal.close().expect("close");
    (dir_input(&dir), want)
}

fn run(data: &[u8], synced: &[BTreeMap<GroupId, Image>]) -> Outcome {
    let root = temp();
    let dir = scratch(root.path(), 0);
    check_against(data, &dir, synced)
}

#[test]
fn the_sample_recovers_every_group() {
    let (input, want) = sample();
    assert_eq!(want.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4]);
    assert_eq!(run(&input, &[want]), Outcome::Opened);
}

#[test]
fn the_sample_with_checkpoints_in_parts_recovers_every_group() {
    let (input, want) = parts_sample();
    assert_eq!(want.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4]);
    assert_eq!(run(&input, &[want]), Outcome::Opened);
}

/// A crash state: the sample with a torn record appended (never synced) —
/// opens, cutting it, with every group intact.
fn torn_sample() -> Vec<u8> {
    let (input, _) = sample();
    let mut files = decode(&input);
    let last = files.keys().filter(|n| n.starts_with("wal/0")).max().cloned().expect("a segment");
    if let Some(bytes) = files.get_mut(&last) {
        bytes.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x40, 0, 0, 0, 1, 17, 1]);
    }
    encode(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

#[test]
fn a_torn_last_record_costs_no_group_anything() {
    let (_, want) = sample();
    assert_eq!(run(&torn_sample(), &[want]), Outcome::Opened);
}

/// Every file of the committed seed corpus goes through the fuzz target's
/// checks.
#[test]
fn the_committed_fuzz_seeds_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/shared_wal_recovery");
    if std::env::var_os("RAFT_IO_REGEN_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join("sample"), sample().0).expect("seed");
        std::fs::write(dir.join("torn"), torn_sample()).expect("seed");
        std::fs::write(dir.join("parts"), parts_sample().0).expect("seed");
        std::fs::write(dir.join("empty"), b"").expect("seed");
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        let root = temp();
        check(&data, &scratch(root.path(), 0));
        n += 1;
    }
    assert!(n >= 3, "the seed corpus {} is short", dir.display());
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes never make the open panic, and a refusal changes
    /// nothing.
    #[test]
    fn random_directories(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = run(&data, &[]);
    }

    /// Damage to a directory whose groups were all synced (one of the two
    /// samples, the second with checkpoints in parts): an open that
    /// succeeds still holds every group exactly (the damage was refused,
    /// or touched nothing a group needs).
    #[test]
    fn damaged_samples_never_lose_a_synced_write(
        parts in any::<bool>(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        how in 0u8..3,
        bit in 0u8..8,
    ) {
        let (input, want) = if parts { parts_sample() } else { sample() };
        let mut files = decode(&input);
        let names: Vec<String> = files.keys().cloned().collect();
        let name = which.get(&names).clone();
        match how {
            0 => {
                if let Some(bytes) = files.get_mut(&name).filter(|b| !b.is_empty()) {
                    let i = at.index(bytes.len());
                    bytes[i] ^= 1 << bit;
                }
            }
            1 => {
                if let Some(bytes) = files.get_mut(&name) {
                    let keep = at.index(bytes.len().max(1));
                    bytes.truncate(keep);
                }
            }
            _ => {
                files.remove(&name);
            }
        }
        let damaged = encode(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
        let _ = run(&damaged, &[want]);
    }
}
