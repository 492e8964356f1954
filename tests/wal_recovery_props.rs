//! WAL recovery from arbitrary bytes, on stable: the same checks as the
//! cargo-fuzz target `wal_recovery` (`tests/support/wal_dir_input.rs`),
//! driven by proptest over random directories, over mutations of the
//! committed fixture (flipped bytes, cut, removed and added files, meta
//! fields rewritten with a valid checksum), and over the committed fuzz
//! seeds. `WalLog::open` must never panic, a refusal must leave the
//! directory as it was, and whatever opens must be consistent, idempotent
//! and writable, and must hold every record that was synced: damage that
//! loses one must make the open refuse.
//!
//! Each case runs on its own thread and fails if it takes longer than
//! [`CASE_LIMIT`] (it takes milliseconds; a damaged meta file once made
//! recovery run for hours): the input is saved, and
//! `RAFT_IO_WAL_CASE=<file> cargo test --features persistence --test
//! wal_recovery_props replay_a_saved_case` replays it.
//!
//! `PROPTEST_CASES=N` scales each property (default 64) for soak runs. The
//! random seed is fixed, so every run tries the same cases; it is printed
//! with each property, and `PROPTEST_RNG_SEED=S` sets another.
//! `RAFT_IO_REGEN_FUZZ_SEEDS=1` rewrites `fuzz/corpus/wal_recovery/`.
#![cfg(feature = "persistence")]

#[path = "support/wal_dir_input.rs"]
mod wal_dir_input;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use wal_dir_input::{Image, Outcome, check_against, decode, dir_input, encode, fixture_input, recovered, scratch};

/// How long one case may take before the test fails: generous, since a
/// case takes milliseconds, but the machine may be shared.
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// The proptest seed unless `PROPTEST_RNG_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5741_4c5f_7265_636f;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SEED)
}

/// The properties' configuration; prints the seed (shown with a failure).
fn config() -> ProptestConfig {
    let (cases, seed) = (cases(), seed());
    eprintln!("proptest: {cases} cases from seed {seed} (replay: PROPTEST_RNG_SEED={seed} PROPTEST_CASES={cases})");
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        // A hanging case costs CASE_LIMIT per shrinking step.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-wal-props-").tempdir().expect("temp dir")
}

fn run(data: &[u8]) -> Outcome {
    run_against(data, &[])
}

/// [`check_against`] on a fresh scratch directory, on a thread of its own,
/// failing the test if it takes longer than [`CASE_LIMIT`].
fn run_against(data: &[u8], synced: &[Image]) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let (input, synced) = (data.to_vec(), synced.to_vec());
    let worker = std::thread::spawn(move || {
        let tmp = temp();
        let outcome = check_against(&input, &scratch(tmp.path(), 0), &synced);
        // Removed before the outcome goes: the test may end, and the
        // process with it, as soon as the last outcome arrives.
        drop(tmp);
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the case ended without an outcome"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let saved = save_case(data);
            panic!(
                "a case ran for more than {CASE_LIMIT:?}: recovery hangs on it (seed {}). Its input is in {}; \
                 replay: RAFT_IO_WAL_CASE={} cargo test --features persistence --test wal_recovery_props replay_a_saved_case",
                seed(),
                saved.display(),
                saved.display()
            )
        }
    }
}

/// Saves a case's input under the target directory; returns the file.
fn save_case(data: &[u8]) -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wal-recovery-case-{:08x}.bin", crc32c::crc32c(data)));
    if let Err(e) = std::fs::write(&path, data) {
        eprintln!("could not save the case to {}: {e}", path.display());
    }
    path
}

/// Replays the input a failed run saved (see the module docs).
#[test]
fn replay_a_saved_case() {
    let Some(path) = std::env::var_os("RAFT_IO_WAL_CASE") else { return };
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
    eprintln!("{:?}", run(&data));
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
    /// Set a field of the meta file (`field` % 5: state, segment size, max
    /// record size, head, synced end) and update its checksum: damage that
    /// checks out, as a bug or a fuzzer's checksum-aware mutation writes.
    MetaField { field: u8, value: u64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![0u64..4, 1u64..2048, Just(u64::MAX), any::<u64>(), (1u32..63).prop_map(|b| 1u64 << b)];
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(file, at, mask)| Mutation::Flip { file, at, mask }),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(file, len)| Mutation::Cut { file, len }),
        1 => any::<usize>().prop_map(|file| Mutation::Remove { file }),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(selector, bytes)| Mutation::Add { selector, bytes }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(file, bytes)| Mutation::Extend { file, bytes }),
        1 => (any::<u8>(), value).prop_map(|(field, value)| Mutation::MetaField { field, value }),
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
        Mutation::MetaField { field, value } => {
            if let Some(meta) = files.get_mut("raftlog.meta").filter(|m| m.len() == META_LEN) {
                let le = value.to_le_bytes();
                match field % 5 {
                    0 => meta[12] = le[0] % 4,
                    1 => meta[16..24].copy_from_slice(&le),
                    2 => meta[24..28].copy_from_slice(&le[..4]),
                    3 => meta[32..40].copy_from_slice(&le),
                    _ => meta[40..48].copy_from_slice(&le),
                }
                reseal(meta);
            }
        }
    }
}

fn input_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    encode(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
}

/// Length of a meta file (version 2; layout in docs/PROTOCOL.md).
const META_LEN: usize = 52;

/// Updates a meta file's CRC-32C after a change to its fields.
fn reseal(meta: &mut [u8]) {
    let crc = crc32c::crc32c(&meta[..48]);
    meta[48..52].copy_from_slice(&crc.to_le_bytes());
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn segment_name(index: u64) -> String {
    format!("wal/{index:020}.wal")
}

/// The WAL of `files` cut at offset `at`: the segment holding it shortened,
/// every later one removed.
fn cut_wal(files: &mut BTreeMap<String, Vec<u8>>, at: u64) {
    let segment_size = u64_at(&files["raftlog.meta"], 16);
    files.retain(|name, _| !name.ends_with(".wal") || *name <= segment_name(at / segment_size));
    if let Some(segment) = files.get_mut(&segment_name(at / segment_size)) {
        segment.truncate((at % segment_size) as usize);
    }
}

/// The fixture as a crash would have left it: its last step's record
/// written but its sync never returned (and no clean close), so the meta
/// file records the synced end where the compaction before it did, at the
/// end of the checkpoint at the head. Returns it with that offset.
fn crashed_fixture() -> (BTreeMap<String, Vec<u8>>, u64) {
    let mut files = decode(&fixture_input(root()));
    let meta = &files["raftlog.meta"];
    let (segment_size, head) = (u64_at(meta, 16), u64_at(meta, 32));
    let segment = &files[&segment_name(head / segment_size)];
    let at = (head % segment_size) as usize;
    let len = u32::from_le_bytes(segment[at + 4..at + 8].try_into().expect("a frame header in one segment"));
    let checkpoint_end = head + 8 + u64::from(len);
    let meta = files.get_mut("raftlog.meta").expect("a meta file");
    meta[40..48].copy_from_slice(&checkpoint_end.to_le_bytes());
    reseal(meta);
    (files, checkpoint_end)
}

/// What the fixture recovers to, with every record, and without the
/// records after the synced end of [`crashed_fixture`] (all a crash may
/// lose).
fn fixture_images() -> &'static [Image; 2] {
    static IMAGES: OnceLock<[Image; 2]> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let tmp = temp();
        let full = recovered(&fixture_input(root()), &scratch(tmp.path(), 0));
        let (mut crashed, synced_end) = crashed_fixture();
        cut_wal(&mut crashed, synced_end);
        let without_last = recovered(&input_of(&crashed), &scratch(tmp.path(), 1));
        assert_ne!(full, without_last);
        [full, without_last]
    })
}

proptest! {
    #![proptest_config(config())]

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

    /// The committed fixture, as its clean close left it (every record
    /// synced) or as a crash before its last sync leaves it, with a few
    /// mutations: near-valid logs, where the interesting refusals and
    /// repairs are. A log that opens holds every synced record: all of the
    /// clean fixture's, all but the last record of the crashed one (or
    /// either, when a mutation rewrote the meta file's fields, and with it
    /// what counts as synced).
    #[test]
    fn mutated_fixtures_are_refused_untouched_or_open_with_every_synced_record(
        crashed in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut files = if crashed { crashed_fixture().0 } else { decode(&fixture_input(root())) };
        for m in &mutations {
            mutate(&mut files, m);
        }
        let meta_rewritten = mutations.iter().any(|m| matches!(m, Mutation::MetaField { .. }));
        let images = fixture_images();
        let synced = if crashed || meta_rewritten { &images[..] } else { &images[..1] };
        run_against(&input_of(&files), synced);
    }
}

/// Every cut of the fixture's last segment: after its clean close every
/// record is synced, so each cut is refused as lost synced data; in the
/// crashed fixture, a cut inside the record after the synced end is a torn
/// tail and opens without that record, and a cut below it is refused.
#[test]
fn every_cut_of_the_last_segment_is_refused_after_a_clean_close_and_a_torn_tail_after_a_crash() {
    let [full, without_last] = fixture_images();
    assert_eq!(run_against(&fixture_input(root()), std::slice::from_ref(full)), Outcome::Opened);
    let clean = decode(&fixture_input(root()));
    let (crashed, synced_end) = crashed_fixture();
    let last = clean.keys().filter(|n| n.ends_with(".wal")).max().cloned().expect("a segment");
    let segment_size = u64_at(&clean["raftlog.meta"], 16);
    let base = last["wal/".len()..last.len() - ".wal".len()].parse::<u64>().expect("a segment number") * segment_size;
    let full_len = clean[&last].len();
    let mut opened = 0;
    // Every fourth length, and every one near the synced end and in the
    // last record's header and tail.
    let near = |len: usize| (base + len as u64).abs_diff(synced_end) <= 9;
    for len in (0..full_len).filter(|&l| l % 4 == 0 || near(l) || l + 9 >= full_len) {
        let mut cut = clean.clone();
        cut.get_mut(&last).unwrap().truncate(len);
        let outcome = run_against(&input_of(&cut), std::slice::from_ref(full));
        assert_eq!(outcome, Outcome::Refused, "a clean close synced everything; cut at {len} of {full_len}");
        let mut cut = crashed.clone();
        cut.get_mut(&last).unwrap().truncate(len);
        let outcome = run_against(&input_of(&cut), std::slice::from_ref(without_last));
        let want = if base + len as u64 >= synced_end { Outcome::Opened } else { Outcome::Refused };
        assert_eq!(outcome, want, "crashed, cut at {len} of {full_len} (synced end at {} of it)", synced_end - base);
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
    // A meta file that checks out but records a far larger segment size
    // (and nothing synced past the head): the WAL is then nominally
    // terabytes long, and recovery used to read it all as zeros.
    let mut huge_segments = fixture.clone();
    let meta = huge_segments.get_mut("raftlog.meta").unwrap();
    meta[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let head = meta[32..40].to_vec();
    meta[40..48].copy_from_slice(&head);
    reseal(meta);
    let mut orphans = fixture.clone();
    orphans.insert("snapshot-receiving.tmp".into(), b"half a snapshot".to_vec());
    orphans.insert("raftlog.meta.tmp".into(), b"half a meta".to_vec());
    vec![
        ("fixture.bin", fixture_input(root()), Outcome::Opened),
        ("meta_v1.bin", dir_input(&root().join("tests/fixtures/wal-meta-v1")), Outcome::Opened),
        ("torn_tail.bin", input_of(&torn), Outcome::Opened),
        ("synced_cut.bin", input_of(&synced_cut), Outcome::Refused),
        ("no_last_segment.bin", input_of(&no_last_segment), Outcome::Refused),
        ("orphan_files.bin", input_of(&orphans), Outcome::Opened),
        ("no_head_marker.bin", input_of(&no_head), Outcome::Refused),
        ("damaged_meta.bin", input_of(&bad_meta), Outcome::Refused),
        ("meta_huge_segments.bin", input_of(&huge_segments), Outcome::Refused),
        ("empty.bin", Vec::new(), Outcome::Opened),
    ]
}

/// The committed corpus is exactly the seeds above, current, and each
/// behaves as its name says. A missing or empty corpus fails: the seeds are
/// part of the repository (a packaged crate, which leaves out `fuzz/`, does
/// not run this test suite).
#[test]
fn the_committed_fuzz_seeds_are_current_and_behave_as_named() {
    let dir = seeds_dir();
    if std::env::var_os("RAFT_IO_REGEN_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input, _) in seeds() {
            std::fs::write(dir.join(name), input).unwrap();
        }
    }
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the fuzz corpus {} cannot be read ({e}); restore it from the repository, or regenerate it with \
                 RAFT_IO_REGEN_FUZZ_SEEDS=1",
                dir.display()
            )
        })
        .map(|entry| entry.expect("a corpus entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !committed.is_empty(),
        "the fuzz corpus {} is empty; regenerate it with RAFT_IO_REGEN_FUZZ_SEEDS=1",
        dir.display()
    );
    let named: BTreeSet<String> = seeds().iter().map(|(name, ..)| name.to_string()).collect();
    assert_eq!(committed, named, "the fuzz corpus {} must hold exactly the seeds", dir.display());
    for (name, input, outcome) in seeds() {
        let committed = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(committed == input, "{name} is stale: rerun with RAFT_IO_REGEN_FUZZ_SEEDS=1");
        assert_eq!(run(&input), outcome, "{name}");
    }
}
