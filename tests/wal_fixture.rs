#![cfg(feature = "persistence")]
//! The committed log directory `tests/fixtures/wal/` (WAL format version 1,
//! meta file version 2, see `docs/PROTOCOL.md`) must keep opening with the
//! same contents, and this build must still write it byte for byte.
//! `tests/fixtures/wal-meta-v1/` is the same log as the builds before meta
//! file version 2 wrote it: it must open with the same contents, and its
//! meta file is upgraded in place.
//!
//! Regenerate `tests/fixtures/wal/` (only together with a format version
//! change; keep the old one as a fixture of its own) with
//! `RAFT_IO_REGEN_FIXTURE=1 cargo test --features persistence --test wal_fixture`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use raft_io::log::WalOptions;
use raft_io::{Entry, HardState, LogIdentity, Membership, MembershipChange, RaftLog, SnapshotMeta, WalLog};

const SEGMENT: u64 = 128;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal")
}

/// A log whose configurations carry member addresses (WAL record version 2
/// where a configuration has addresses, version 1 elsewhere).
fn fixture_addresses() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal-addresses")
}

fn addressed_members() -> Membership {
    let m = Membership::new([1, 2, 3], []).unwrap();
    let m = m.with_address(1, "127.0.0.1:7001").unwrap().with_address(2, "127.0.0.1:7002").unwrap();
    m.with_address(3, "[::1]:7003").unwrap()
}

fn with_fourth() -> Membership {
    addressed_members().apply(&MembershipChange::AddVoterAt { id: 4, address: "127.0.0.1:7004".into() }).unwrap()
}

/// The run that wrote the addresses fixture: a bootstrap configuration
/// with addresses (a version 2 step), a step of plain entries (version 1),
/// a step with a configuration entry adding node 4 at its address
/// (version 2).
fn write_addresses(dir: &Path) {
    let mut log = WalLog::open_with(dir, WalOptions::new().segment_size(SEGMENT)).unwrap();
    log.set_identity(LogIdentity { cluster_id: 7, node_id: 1 }).unwrap();
    log.install_snapshot(SnapshotMeta { index: 0, term: 0, membership: addressed_members() }, Default::default())
        .unwrap();
    log.sync().unwrap();
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    log.append(&mut vec![Entry::noop(1, 1), cmd(2), cmd(3)]).unwrap();
    log.sync().unwrap();
    log.append(&mut vec![Entry::config(1, 4, &with_fourth()), cmd(5)]).unwrap();
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 3 }).unwrap();
    log.sync().unwrap();
}

/// The first byte of each record of the addresses fixture: its version.
fn record_versions(dir: &Path) -> Vec<u8> {
    let log = WalLog::open(dir).unwrap();
    assert_eq!(log.recovery_report().records, 4);
    drop(log);
    let mut wal = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    names.sort();
    for p in names {
        let mut bytes = fs::read(&p).unwrap();
        bytes.resize(SEGMENT as usize, 0);
        wal.extend_from_slice(&bytes);
    }
    let mut versions = Vec::new();
    let mut at = 0;
    while at + 8 < wal.len() {
        let len = u32::from_le_bytes(wal[at + 4..at + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        versions.push(wal[at + 8]);
        at += 8 + len;
    }
    versions
}

#[test]
fn this_build_writes_the_addresses_fixture_byte_for_byte_and_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    write_addresses(&dir);
    if std::env::var_os("RAFT_IO_REGEN_FIXTURE").is_some() {
        let _ = fs::remove_dir_all(fixture_addresses());
        copy(&dir, &fixture_addresses());
    }
    let written = tree(&dir);
    let committed = tree(&fixture_addresses());
    assert_eq!(written.keys().collect::<Vec<_>>(), committed.keys().collect::<Vec<_>>());
    for (name, bytes) in &written {
        assert!(bytes == &committed[name], "{name} differs from the committed fixture");
    }
    let copy_dir = tmp.path().join("copy");
    copy(&fixture_addresses(), &copy_dir);
    // The empty checkpoint of the creation, the bootstrap snapshot, the
    // plain entries, the configuration entry.
    assert_eq!(record_versions(&copy_dir), vec![1, 2, 1, 2], "version 2 only where a configuration has addresses");
    let log = WalLog::open(&copy_dir).unwrap();
    assert_eq!(log.snapshot_meta().membership, addressed_members());
    assert_eq!(log.snapshot_meta().membership.address(3).map(|a| &a[..]), Some(&b"[::1]:7003"[..]));
    let mut got = Vec::new();
    log.entries(1, 6, u64::MAX, &mut got).unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(Membership::decode(&got[3].data).unwrap(), with_fourth());
}

/// The same log with the version 1 meta file that builds before meta file
/// version 2 wrote.
fn fixture_meta_v1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal-meta-v1")
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
    assert!(!log.recovery_report().upgraded_meta);
    check_contents(&log);
    drop(log);
    assert_eq!(tree(tmp.path()), before, "nor does closing it unchanged");
}

/// A log whose meta file is version 1 opens with the same contents; the
/// open rewrites the meta file, and only it, as this build writes it.
#[test]
fn the_committed_fixture_with_a_version_1_meta_file_opens_and_is_upgraded() {
    let tmp = tempfile::tempdir().unwrap();
    copy(&fixture_meta_v1(), tmp.path());
    let mut before = tree(tmp.path());
    assert_eq!(before["raftlog.meta"][8..12], 1u32.to_le_bytes(), "the fixture is version 1");
    let log = WalLog::open(tmp.path()).unwrap();
    assert!(log.recovery_report().upgraded_meta);
    check_contents(&log);
    let committed = tree(&fixture());
    before.insert("raftlog.meta".into(), committed["raftlog.meta"].clone());
    assert_eq!(tree(tmp.path()), before, "the meta file is upgraded, nothing else changes");
    drop(log);
    let log = WalLog::open(tmp.path()).unwrap();
    assert!(!log.recovery_report().upgraded_meta, "once");
    check_contents(&log);
}

/// What the fixture holds.
fn check_contents(log: &WalLog) {
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
