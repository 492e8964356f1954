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
use wal_dir_input::{Outcome, check, decode, encode, fixture_input, scratch};

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

#[test]
fn the_fixture_opens_and_every_cut_of_its_last_segment_opens_or_is_refused() {
    assert_eq!(run(&fixture_input(root())), Outcome::Opened);
    let files = decode(&fixture_input(root()));
    let last = files.keys().filter(|n| n.ends_with(".wal")).max().cloned().expect("a segment");
    let tmp = temp();
    let mut opened = 0;
    let full = files[&last].len();
    // Every fifth length and the last 9 (a torn frame header or payload of
    // the last record).
    for len in (0..full).filter(|&l| l % 5 == 0 || l + 9 >= full) {
        let mut cut = files.clone();
        cut.get_mut(&last).unwrap().truncate(len);
        if check(&input_of(&cut), &scratch(tmp.path(), len as u64)) == Outcome::Opened {
            opened += 1;
        }
    }
    // Cuts inside the last record are torn tails and open; cuts before it
    // lose synced data the meta or head marker still points past, or not,
    // depending on where they fall.
    assert!(opened > 0, "torn tails of the last segment open");
}

fn seeds_dir() -> PathBuf {
    root().join("fuzz/corpus/wal_recovery")
}

/// The fuzz seeds: `(file name, input, expected outcome)`.
fn seeds() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    let fixture = decode(&fixture_input(root()));
    let last = fixture.keys().filter(|n| n.ends_with(".wal")).max().cloned().expect("a segment");
    let mut torn = fixture.clone();
    let len = torn[&last].len();
    torn.get_mut(&last).unwrap().truncate(len - 3);
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
