//! Unit tests of [`WalLog`]: the log contract, reopening, write counts,
//! compaction, halting, and the directories it creates (snapshot files:
//! `snapshot_tests.rs`; the asynchronous modes: `async_tests.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::*;
use crate::log::conformance;
use crate::membership::Membership;

pub(super) fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-wal-").tempdir().unwrap()
}

pub(super) fn e(term: Term, index: Index) -> Entry {
    Entry::normal(term, index, Bytes::from(format!("{term}/{index}")))
}

pub(super) fn append(log: &mut impl RaftLog, term: Term, n: u64) {
    let first = log.last_index() + 1;
    log.append(&mut (first..first + n).map(|i| e(term, i)).collect()).unwrap();
}

fn all(log: &WalLog) -> Vec<Entry> {
    let mut out = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut out).unwrap();
    out
}

/// Every file under `dir` with its bytes.
pub(super) fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, Vec::new());
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

pub(super) fn dir_size(dir: &Path) -> u64 {
    tree(dir).values().map(|b| b.len() as u64).sum()
}

pub(super) fn small() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

#[test]
fn conforms_to_the_raft_log_contract() {
    let root = temp();
    let n = AtomicU64::new(0);
    conformance::run_all(|| {
        let dir = root.path().join(n.fetch_add(1, Ordering::Relaxed).to_string());
        WalLog::open(dir).unwrap()
    });
}

#[test]
fn lends_runs_at_its_tail() {
    let dir = temp();
    conformance::lends_runs_at_its_tail(WalLog::open(dir.path().join("log")).unwrap());
}

#[test]
fn conforms_with_tiny_segments() {
    let root = temp();
    let n = AtomicU64::new(0);
    conformance::run_all(|| {
        let dir = root.path().join(n.fetch_add(1, Ordering::Relaxed).to_string());
        WalLog::open_with(dir, WalOptions::new().segment_size(64)).unwrap()
    });
}

#[test]
fn a_fresh_log_is_created_and_reported() {
    let root = temp();
    let dir = root.path().join("a/b");
    let log = WalLog::open(&dir).unwrap();
    assert!(log.recovery_report().created);
    assert_eq!(log.stats().records, 1, "the anchor checkpoint");
    drop(log);
    let log = WalLog::open(&dir).unwrap();
    assert!(!log.recovery_report().created);
    assert_eq!(log.recovery_report().records, 1);
    assert_eq!(log.last_index(), 0);
    // An existing empty directory is fine too.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(WalLog::open(&empty).unwrap().recovery_report().created);
}

#[test]
fn everything_survives_a_reopen() {
    let root = temp();
    let members = Membership::new([1, 2, 3], [4]).unwrap();
    let id = LogIdentity { cluster_id: 9, node_id: 2 };
    let hard = HardState { term: 3, vote: Some(1), commit: 4 };
    {
        let mut log = WalLog::open(root.path()).unwrap();
        log.set_identity(id).unwrap();
        log.install_snapshot(SnapshotMeta { index: 0, term: 0, membership: members.clone() }, Bytes::new()).unwrap();
        log.set_hard_state(hard).unwrap();
        append(&mut log, 1, 3);
        log.append(&mut vec![Entry::config(2, 4, &members), Entry::noop(3, 5)]).unwrap();
        log.sync().unwrap();
    }
    let log = WalLog::open(root.path()).unwrap();
    assert_eq!(log.identity(), Some(id));
    assert_eq!(log.hard_state(), hard);
    assert_eq!(log.snapshot_meta().membership, members);
    assert_eq!(log.last_index(), 5);
    let got = all(&log);
    assert_eq!(got[0], e(1, 1));
    assert_eq!(got[3], Entry::config(2, 4, &members));
    assert_eq!(got[4], Entry::noop(3, 5));
    assert_eq!(log.recovery_report().entries, 5);
}

#[test]
fn one_record_and_one_sync_per_step_and_none_when_idle() {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    let base = log.stats();
    log.sync().unwrap();
    assert_eq!(log.stats(), base, "an idle sync writes nothing");

    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    append(&mut log, 1, 10);
    log.truncate(8).unwrap();
    append(&mut log, 1, 5);
    log.sync().unwrap();
    assert_eq!((log.stats().records, log.stats().syncs), (base.records + 1, base.syncs + 1));

    // A commit-only change rides along with the next record.
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 7 }).unwrap();
    assert!(!log.has_unsynced_changes());
    log.sync().unwrap();
    assert_eq!(log.stats().records, base.records + 1);
    // Setting the same hard state again changes nothing either.
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 7 }).unwrap();
    log.sync().unwrap();
    assert_eq!(log.stats().records, base.records + 1);
    drop(log);
    let log = WalLog::open(root.path()).unwrap();
    assert_eq!(log.hard_state().commit, 0, "an unwritten commit is lost, as documented");
    assert_eq!(log.last_index(), 12);

    let mut log = log;
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 9 }).unwrap();
    log.close().unwrap();
    assert_eq!(WalLog::open(root.path()).unwrap().hard_state().commit, 9, "close writes it");
}

#[test]
fn truncation_inside_earlier_records_survives_reopen() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    for _ in 0..4 {
        append(&mut log, 1, 5);
        log.sync().unwrap();
    }
    log.truncate(7).unwrap(); // inside the second record
    append(&mut log, 2, 2);
    log.sync().unwrap();
    log.truncate(3).unwrap(); // inside the first, with nothing appended
    log.sync().unwrap();
    let want = all(&log);
    drop(log);
    let log = WalLog::open_with(root.path(), small()).unwrap();
    assert_eq!(all(&log), want);
    assert_eq!(log.last_index(), 2);
}

#[test]
fn a_failed_sync_halts_the_log() {
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path(), WalOptions::new().fault_injector(faults.clone())).unwrap();
    append(&mut log, 1, 2);
    log.sync().unwrap();
    append(&mut log, 1, 2);
    faults.fail_next_sync();
    assert!(matches!(log.sync(), Err(StorageError::Io { .. })));
    // wal-db would report the next sync as a success; we refuse instead.
    assert!(matches!(log.sync(), Err(StorageError::Halted { .. })));
    assert!(matches!(log.append(&mut vec![e(1, 5)]), Err(StorageError::Halted { .. })));
    assert_eq!(log.last_index(), 4, "reads still work");
    drop(log);
    let log = WalLog::open(root.path()).unwrap();
    assert!(log.last_index() >= 2);
}

#[test]
fn invalid_writes_do_not_halt() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), WalOptions::new().max_record_size(4096)).unwrap();
    assert!(log.append(&mut vec![e(1, 2)]).is_err());
    let big = Entry::normal(1, 1, Bytes::from(vec![0; 5000]));
    assert!(matches!(log.append(&mut vec![big]), Err(StorageError::InvalidWrite(_))));
    assert_eq!(log.last_index(), 0, "a refused append changes nothing");
    append(&mut log, 1, 1);
    log.sync().unwrap();
    log.set_identity(LogIdentity { cluster_id: 1, node_id: 1 }).unwrap();
    assert!(log.set_identity(LogIdentity { cluster_id: 1, node_id: 2 }).is_err());
    log.sync().unwrap();
}

/// Writes `10 × threshold` entries, installing a snapshot every `threshold`
/// entries as a node would, and checks that the directory stays bounded by
/// the live log instead of growing with history.
#[test]
fn disk_use_is_bounded_by_the_live_log() {
    let root = temp();
    let segment = 16 << 10;
    let threshold = 2_000u64;
    let mut log = WalLog::open_with(root.path(), WalOptions::new().segment_size(segment)).unwrap();
    let payload = Bytes::from(vec![7u8; 64]);
    let mut peak = 0;
    let mut at_threshold = 0;
    for round in 0..10 {
        for _ in 0..threshold / 20 {
            let first = log.last_index() + 1;
            log.append(&mut (first..first + 20).map(|i| Entry::normal(1, i, payload.clone())).collect()).unwrap();
            log.sync().unwrap();
            peak = peak.max(dir_size(root.path()));
        }
        if round == 0 {
            at_threshold = dir_size(root.path());
        }
        // Snapshot everything but the last 10 entries.
        let index = log.last_index() - 10;
        let meta = SnapshotMeta { index, term: 1, membership: Membership::empty() };
        log.install_snapshot(meta, Bytes::from(vec![1u8; 1024])).unwrap();
        log.sync().unwrap();
    }
    assert_eq!(log.stats().compactions, 10);
    let written = 10 * threshold * 64;
    let end = dir_size(root.path());
    // Bounded by one threshold's worth plus two segments, far below history.
    assert!(peak <= at_threshold + 2 * segment + 4096, "peak {peak}, one threshold {at_threshold}");
    assert!(end < 3 * segment, "after the last snapshot: {end}");
    assert!(peak * 5 < written, "peak {peak} vs {written} bytes of history");
    drop(log);
    let log = WalLog::open_with(root.path(), WalOptions::new().segment_size(segment)).unwrap();
    assert_eq!(log.last_index(), 10 * threshold);
    assert_eq!(log.first_index(), 10 * threshold - 9);
}

#[test]
fn truncation_churn_without_snapshots_is_compacted_too() {
    let root = temp();
    let segment = 4096;
    let mut log = WalLog::open_with(root.path(), WalOptions::new().segment_size(segment)).unwrap();
    append(&mut log, 1, 5);
    log.sync().unwrap();
    for term in 2..2000 {
        log.truncate(6).unwrap();
        append(&mut log, term, 3);
        log.sync().unwrap();
    }
    assert!(log.stats().compactions > 0);
    assert!(dir_size(root.path()) < 4 * segment, "{}", dir_size(root.path()));
    let want = all(&log);
    drop(log);
    assert_eq!(all(&WalLog::open(root.path()).unwrap()), want);
}

/// Counted at the level of durable operations (each a system call or
/// two): a step is one write and one sync, an idle or commit-only step none.
#[test]
fn a_step_costs_one_write_and_one_sync_at_the_syscall_level() {
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path(), WalOptions::new().fault_injector(faults.clone())).unwrap();
    let ops = || faults.operations();
    let before = ops();
    log.sync().unwrap();
    assert_eq!(ops(), before, "idle");
    append(&mut log, 1, 64);
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    log.sync().unwrap();
    assert_eq!(ops(), before + 2, "write + sync");
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 64 }).unwrap();
    log.sync().unwrap();
    assert_eq!(ops(), before + 2, "commit only");
    log.set_hard_state(HardState { term: 2, vote: None, commit: 64 }).unwrap();
    log.sync().unwrap();
    assert_eq!(ops(), before + 4, "a term change alone is written");
}

/// Terms up to `MAX_TERM` reopen as written; a term, index or snapshot
/// above it (which a node could never reach, and whose successor could
/// overflow) is refused when written, changing nothing, rather than
/// written and then refused as damage at the next open (the read side's
/// refusal: `refusal_tests.rs`, `indexes_and_terms_that_could_overflow_are_refused`).
#[test]
fn terms_up_to_max_term_survive_reopen_and_above_it_are_refused() {
    use crate::types::MAX_TERM;
    let root = temp();
    let hard = HardState { term: MAX_TERM, vote: Some(1), commit: 2 };
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    log.set_hard_state(hard).unwrap();
    log.append(&mut vec![Entry::normal(MAX_TERM - 1, 1, Bytes::from_static(b"a")), Entry::noop(MAX_TERM, 2)]).unwrap();
    log.close().unwrap();
    let log = WalLog::open_with(root.path(), small()).unwrap();
    assert_eq!(log.hard_state(), hard);
    assert_eq!(log.term(2), Some(MAX_TERM));
    drop(log);

    for past in [MAX_TERM + 1, u64::MAX] {
        let root = temp();
        let mut log = WalLog::open_with(root.path(), small()).unwrap();
        let refused = |r: Result<(), StorageError>| matches!(r, Err(StorageError::InvalidWrite(_)));
        assert!(refused(log.set_hard_state(HardState { term: past, vote: None, commit: 0 })));
        assert!(refused(log.append(&mut vec![Entry::normal(past, 1, Bytes::from_static(b"a"))])));
        let meta = |index, term| SnapshotMeta { index, term, membership: Membership::new([1], []).unwrap() };
        assert!(refused(log.install_snapshot(meta(past, 1), Bytes::new())));
        assert!(refused(log.install_snapshot(meta(1, past), Bytes::new())));
        assert!(!log.has_unsynced_changes(), "a refused write changes nothing");
        log.set_hard_state(HardState { term: 3, vote: None, commit: 0 }).unwrap();
        log.close().unwrap();
        let log = WalLog::open_with(root.path(), small()).unwrap();
        assert_eq!((log.hard_state().term, log.last_index(), log.snapshot_meta().index), (3, 0, 0));
    }
}

/// Every directory open creates, the missing ancestors of the log
/// directory included, is made durable by an fsync of its parent.
#[test]
fn open_fsyncs_the_parent_of_every_directory_it_creates() {
    let root = temp();
    let dir = root.path().join("a/b/log");
    let faults = FaultInjector::new();
    faults.record_operations();
    drop(WalLog::open_with(&dir, WalOptions::new().fault_injector(faults.clone())).unwrap());
    let ops = faults.recorded();
    let mut expected = Vec::new();
    for (made, parent) in [("a", ""), ("a/b", "a"), ("a/b/log", "a/b"), ("a/b/log/wal", "a/b/log")] {
        let parent = if parent.is_empty() { root.path().to_path_buf() } else { root.path().join(parent) };
        expected.push(format!("mkdir {}", root.path().join(made).display()));
        expected.push(format!("fsync of directory {}", parent.display()));
    }
    let made: Vec<&String> = ops.iter().filter(|op| op.starts_with("mkdir")).collect();
    assert_eq!(made.len(), 4, "{ops:#?}");
    for pair in expected.chunks(2) {
        let at = ops.iter().position(|op| *op == pair[0]).unwrap_or_else(|| panic!("{} in {ops:#?}", pair[0]));
        assert_eq!(ops[at + 1], pair[1], "{ops:#?}");
    }
}

/// Sibling logs opened at once under a parent path that does not exist yet
/// all open: each open creates the missing ancestors, and one that another
/// open created in between is not an error.
#[test]
fn concurrent_opens_of_sibling_directories_under_a_missing_parent_all_succeed() {
    const THREADS: usize = 16;
    for round in 0..4 {
        let root = temp();
        let parent = root.path().join(format!("round-{round}/a/b/c"));
        let barrier = std::sync::Barrier::new(THREADS);
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (dir, barrier) = (parent.join(format!("log-{t}")), &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        WalLog::open(&dir).map(drop).map_err(|e| format!("{}: {e}", dir.display()))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("panicked".into()))).collect()
        });
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "round {round}: {} of {THREADS} opens failed: {failed:#?}", failed.len());
        for t in 0..THREADS {
            assert_eq!(WalLog::open(parent.join(format!("log-{t}"))).unwrap().last_index(), 0);
        }
    }
    // A component of the path that is a file is refused, typed.
    let root = temp();
    fs::write(root.path().join("f"), b"x").unwrap();
    let err = WalLog::open(root.path().join("f/a/log")).expect_err("a file on the path");
    assert!(matches!(err, StorageError::NotALog { .. }), "{err}");
    assert_eq!(fs::read(root.path().join("f")).unwrap(), b"x");
}

/// The figure docs/PROTOCOL.md and `DecodeLimits` use for the memory of
/// 4096 decoded entries (4096 × 56 B = 224 KiB).
#[cfg(target_pointer_width = "64")]
#[test]
fn an_in_memory_entry_is_56_bytes() {
    assert_eq!(std::mem::size_of::<Entry>(), 56);
    assert_eq!(4096 * std::mem::size_of::<Entry>(), 224 << 10);
}
