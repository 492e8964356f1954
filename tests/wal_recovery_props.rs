//! WAL recovery from arbitrary bytes, on stable: the same checks as the
//! cargo-fuzz target `wal_recovery` (`tests/support/wal_dir_input.rs`),
//! driven by proptest over random directories, over mutations of the
//! committed fixture (flipped bytes, cut, removed and added files), and over
//! the committed fuzz seeds. `WalLog::open` must never panic, a refusal
//! must leave the directory as it was, and whatever opens must be
//! consistent, idempotent and writable.
//!
//! `PROPTEST_CASES=N` scales each property (default 64).
//! `RAFT_IO_REGEN_FUZZ_SEEDS=1` rewrites `fuzz/corpus/wal_recovery/`.
#![cfg(feature = "persistence")]

#[path = "support/wal_dir_input.rs"]
mod wal_dir_input;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use wal_dir_input::{Outcome, check, decode, dir_input, encode, fixture_input, scratch};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-wal-props-").tempdir().expect("temp dir")
}

fn run(data: &[u8]) -> Outcome {
    let tmp = temp();
    check(data, &scratch(tmp.path(), 0))
}

/// One change to a directory's files.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte of the `file`-th file.
    Flip { file: usize, at: usize, mask: u8 },
    /// Cut the `file`-th file to `len` bytes (at most its length).
    Cut { file: usize, len: usize },
    /// Remove the `file`-th file.
    Remove { file: usize },
    /// Add (or replace) a file named by `selector`.
    Add { selector: u8, bytes: Vec<u8> },
    /// Append bytes to the `file`-th file.
    Extend { file: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(file, at, mask)| Mutation::Flip { file, at, mask }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(file, len)| Mutation::Cut { file, len }),
        1 => any::<usize>().prop_map(|file| Mutation::Remove { file }),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(selector, bytes)| Mutation::Add { selector, bytes }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(file, bytes)| Mutation::Extend { file, bytes }),
    ]
}

fn mutate(files: &mut BTreeMap<String, Vec<u8>>, m: &Mutation) {
    let names: Vec<String> = files.keys().cloned().collect();
    let pick = |i: usize| (!names.is_empty()).then(|| names[i % names.len()].clone());
    match m {
        Mutation::Flip { file, at, mask } => {
            if let Some(bytes) = pick(*file).and_then(|n| files.get_mut(&n)) {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] ^= mask;
                }
            }
        }
        Mutation::Cut { file, len } => {
            if let Some(bytes) = pick(*file).and_then(|n| files.get_mut(&n)) {
                let len = len % (bytes.len() + 1);
                bytes.truncate(len);
            }
        }
        Mutation::Remove { file } => {
            if let Some(name) = pick(*file) {
                files.remove(&name);
            }
        }
        Mutation::Add { selector, bytes } => {
            files.insert(wal_dir_input::file_name(*selector), bytes.clone());
        }
        Mutation::Extend { file, bytes } => {
            if let Some(b) = pick(*file).and_then(|n| files.get_mut(&n)) {
                b.extend_from_slice(bytes);
            }
        }
    }
}

fn input_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    encode(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Raw arbitrary bytes (what the fuzzer starts from without seeds).
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        run(&data);
    }

    /// Arbitrary files under every name recovery looks at.
    #[test]
    fn arbitrary_files_never_panic(
        files in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..6),
    ) {
        let files: BTreeMap<String, Vec<u8>> =
            files.into_iter().map(|(selector, bytes)| (wal_dir_input::file_name(selector), bytes)).collect();
        let input = input_of(&files);
        run(&input);
    }

    /// The committed fixture with a few mutations: near-valid logs, where
    /// the interesting refusals and repairs are.
    #[test]
    fn mutated_fixtures_are_refused_untouched_or_open_consistently(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut files = decode(&fixture_input(root()));
        for m in &mutations {
            mutate(&mut files, m);
        }
        run(&input_of(&files));
    }
}

/// The fixture's meta file with the synced end moved to `end` (and its
/// CRC-32C updated; layout in docs/PROTOCOL.md).
fn with_synced_end(meta: &[u8], end: u64) -> Vec<u8> {
    let mut b = meta.to_vec();
    b[40..48].copy_from_slice(&end.to_le_bytes());
    let crc = crc32c::crc32c(&b[..48]);
    b[48..52].copy_from_slice(&crc.to_le_bytes());
    b
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The fixture as a crash would have left it: its last step's record
/// written but its sync never returned (and no clean close), so the meta
/// file records the synced end where the compaction before it did, at the
/// end of the checkpoint at the head. Returns it with that offset.
fn crashed_fixture() -> (BTreeMap<String, Vec<u8>>, u64) {
    let mut files = decode(&fixture_input(root()));
    let meta = &files["raftlog.meta"];
    let (segment_size, head) = (u64_at(meta, 16), u64_at(meta, 32));
    let segment = &files[&format!("wal/{:020}.wal", head / segment_size)];
    let at = (head % segment_size) as usize;
    let len = u32::from_le_bytes(segment[at + 4..at + 8].try_into().expect("a frame header in one segment"));
    let checkpoint_end = head + 8 + u64::from(len);
    let meta = with_synced_end(meta, checkpoint_end);
    files.insert("raftlog.meta".into(), meta);
    (files, checkpoint_end)
}

/// Every cut of the fixture's last segment: after its clean close every
/// record is synced, so each cut is refused as lost synced data; in the
/// crashed fixture, a cut inside the record after the synced end is a torn
/// tail and opens without that record, and a cut below it is refused.
#[test]
fn every_cut_of_the_last_segment_is_refused_after_a_clean_close_and_a_torn_tail_after_a_crash() {
    assert_eq!(run(&fixture_input(root())), Outcome::Opened);
    let clean = decode(&fixture_input(root()));
    let (crashed, synced_end) = crashed_fixture();
    let last = clean.keys().filter(|n| n.ends_with(".wal")).max().cloned().expect("a segment");
    let segment_size = u64_at(&clean["raftlog.meta"], 16);
    let base: u64 =
        last["wal/".len()..last.len() - ".wal".len()].parse::<u64>().expect("a segment number") * segment_size;
    let tmp = temp();
    let full = clean[&last].len();
    let mut opened = 0;
    // Every fourth length, and every one near the synced end and in the
    // last record's header and tail.
    let near = |len: usize, at: u64| (base + len as u64).abs_diff(at) <= 9;
    for len in (0..full).filter(|&l| l % 4 == 0 || near(l, synced_end) || l + 9 >= full) {
        let mut cut = clean.clone();
        cut.get_mut(&last).unwrap().truncate(len);
        let outcome = check(&input_of(&cut), &scratch(tmp.path(), 0));
        assert_eq!(outcome, Outcome::Refused, "a clean close synced everything; cut at {len} of {full}");
        let mut cut = crashed.clone();
        cut.get_mut(&last).unwrap().truncate(len);
        let outcome = check(&input_of(&cut), &scratch(tmp.path(), 1));
        let want = if base + len as u64 >= synced_end { Outcome::Opened } else { Outcome::Refused };
        assert_eq!(outcome, want, "crashed, cut at {len} of {full} (synced end at {} of it)", synced_end - base);
        opened += usize::from(outcome == Outcome::Opened);
    }
    assert!(opened > 0, "torn tails after a crash open");
}

fn seeds_dir() -> PathBuf {
    root().join("fuzz/corpus/wal_recovery")
}

/// The fuzz seeds: `(file name, input, expected outcome)`.
fn seeds() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    let fixture = decode(&fixture_input(root()));
    let last = fixture.keys().filter(|n| n.ends_with(".wal")).max().cloned().expect("a segment");
    let (mut torn, _) = crashed_fixture();
    let len = torn[&last].len();
    torn.get_mut(&last).unwrap().truncate(len - 3);
    let mut synced_cut = fixture.clone();
    synced_cut.get_mut(&last).unwrap().truncate(len - 3);
    let mut no_last_segment = fixture.clone();
    no_last_segment.remove(&last);
    let mut no_head = fixture.clone();
    no_head.remove("wal/head");
    let mut bad_meta = fixture.clone();
    bad_meta.get_mut("raftlog.meta").unwrap()[12] ^= 0x40;
    let mut orphans = fixture.clone();
    orphans.insert("snapshot-receiving.tmp".into(), b"half a snapshot".to_vec());
    orphans.insert("raftlog.meta.tmp".into(), b"half a meta".to_vec());
    vec![
        ("fixture.bin", fixture_input(root()), Outcome::Opened),
        ("torn_tail.bin", input_of(&torn), Outcome::Opened),
        ("synced_cut.bin", input_of(&synced_cut), Outcome::Refused),
        ("no_last_segment.bin", input_of(&no_last_segment), Outcome::Refused),
        ("meta_v1.bin", dir_input(&root().join("tests/fixtures/wal-meta-v1")), Outcome::Opened),
        ("orphan_files.bin", input_of(&orphans), Outcome::Opened),
        ("no_head_marker.bin", input_of(&no_head), Outcome::Refused),
        ("damaged_meta.bin", input_of(&bad_meta), Outcome::Refused),
        ("empty.bin", Vec::new(), Outcome::Opened),
    ]
}

#[test]
fn the_committed_fuzz_seeds_are_current_and_behave_as_named() {
    let dir = seeds_dir();
    if std::env::var_os("RAFT_IO_REGEN_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input, _) in seeds() {
            std::fs::write(dir.join(name), input).unwrap();
        }
    }
    if !dir.is_dir() {
        return; // a packaged crate ships without fuzz/
    }
    for (name, input, outcome) in seeds() {
        let committed = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(committed == input, "{name} is stale: rerun with RAFT_IO_REGEN_FUZZ_SEEDS=1");
        assert_eq!(run(&input), outcome, "{name}");
    }
}
