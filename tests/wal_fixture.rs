#![cfg(feature = "persistence")]
//! The committed log directory `tests/fixtures/wal/` (WAL format version 1,
//! see `docs/PROTOCOL.md`) must keep opening with the same contents, and
//! this build must still write it byte for byte.
//!
//! Regenerate it (only together with a format version change) with
//! `RAFT_IO_REGEN_FIXTURE=1 cargo test --features persistence --test wal_fixture`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use raft_io::log::WalOptions;
use raft_io::{Entry, HardState, LogIdentity, Membership, RaftLog, SnapshotMeta, WalLog};

const SEGMENT: u64 = 128;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal")
}

fn cmd(i: u64) -> Entry {
    Entry::normal(if i <= 40 { 2 } else { 3 }, i, format!("cmd-{i}").into())
}

/// The run that wrote the fixture.
fn write(dir: &Path) {
    let members = Membership::new([1, 2, 3], []).unwrap();
    let mut log = WalLog::open_with(dir, WalOptions::new().segment_size(SEGMENT)).unwrap();
    log.set_identity(LogIdentity { cluster_id: 7, node_id: 1 }).unwrap();
    log.install_snapshot(SnapshotMeta { index: 0, term: 0, membership: members.clone() }, Default::default()).unwrap();
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    let mut first: Vec<Entry> = (1..=5).map(|i| Entry::normal(1, i, format!("old-{i}").into())).collect();
    first.push(Entry::config(1, 6, &members));
    log.append(&mut first).unwrap();
    log.sync().unwrap();
    // A new leader overwrites 5 and 6.
    log.truncate(5).unwrap();
    log.append(&mut vec![Entry::noop(2, 5), cmd(6), cmd(7)]).unwrap();
    log.set_hard_state(HardState { term: 2, vote: Some(2), commit: 4 }).unwrap();
    log.sync().unwrap();
    for start in (8..=40).step_by(11) {
        log.append(&mut (start..start + 11).map(cmd).collect()).unwrap();
        log.sync().unwrap();
    }
    let meta = SnapshotMeta { index: 30, term: 2, membership: members };
    log.install_snapshot(meta, "fixture state machine at 30".into()).unwrap();
    log.sync().unwrap();
    log.append(&mut (41..=45).map(cmd).collect()).unwrap();
    log.set_hard_state(HardState { term: 3, vote: Some(3), commit: 41 }).unwrap();
    log.sync().unwrap();
    // A commit-only change is not written by sync.
    log.set_hard_state(HardState { term: 3, vote: Some(3), commit: 44 }).unwrap();
    log.sync().unwrap();
}

/// The files of a log directory, except the lock file (empty, created by
/// the first open, not part of the format).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["", "wal"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && !path.ends_with("raftlog.lock") {
                let name = path.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(name, fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn copy(from: &Path, to: &Path) {
    for (name, bytes) in tree(from) {
        let path = to.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

#[test]
fn this_build_writes_the_committed_fixture_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    write(&dir);
    if std::env::var_os("RAFT_IO_REGEN_FIXTURE").is_some() {
        let _ = fs::remove_dir_all(fixture());
        copy(&dir, &fixture());
    }
    let written = tree(&dir);
    let committed = tree(&fixture());
    assert_eq!(written.keys().collect::<Vec<_>>(), committed.keys().collect::<Vec<_>>());
    for (name, bytes) in &written {
        assert!(bytes == &committed[name], "{name} differs from the committed fixture");
    }
}

#[test]
fn the_committed_fixture_opens_with_its_contents() {
    let tmp = tempfile::tempdir().unwrap();
    copy(&fixture(), tmp.path());
    let before = tree(tmp.path());
    let log = WalLog::open(tmp.path()).unwrap();
    assert_eq!(tree(tmp.path()), before, "a clean open writes nothing");
    let report = log.recovery_report();
    assert!(report.torn_tail.is_none() && report.removed_files.is_empty() && !report.created);
    assert_eq!(report.records, 2, "the checkpoint at the head and one step");

    assert_eq!(log.identity(), Some(LogIdentity { cluster_id: 7, node_id: 1 }));
    assert_eq!(log.hard_state(), HardState { term: 3, vote: Some(3), commit: 41 });
    let meta = log.snapshot_meta();
    assert_eq!((meta.index, meta.term), (30, 2));
    assert_eq!(meta.membership, Membership::new([1, 2, 3], []).unwrap());
    assert_eq!(&log.snapshot_data().unwrap()[..], b"fixture state machine at 30");
    assert_eq!((log.first_index(), log.last_index()), (31, 45));
    let mut got = Vec::new();
    log.entries(31, 46, u64::MAX, &mut got).unwrap();
    assert_eq!(got, (31..=45).map(cmd).collect::<Vec<_>>());
    assert_eq!(log.term(30), Some(2));
    assert_eq!(log.term(41), Some(3));
}
