//! What a shared WAL refuses, each with a typed error and nothing
//! changed: bad group ids and removed groups, foreign and locked
//! directories, records naming unknown groups, damage before the tail, a
//! record limit lowered under what the WAL holds, and out-of-range values
//! one group writes (which would take every group down at the next open);
//! and a stray snapshot file of an id no log writes, which is not counted.

use std::fs;

use bytes::Bytes;

use super::tests::{all, append, e, temp};
use super::*;
use crate::log::wal::crash_support::copy_dir;
use crate::types::{HardState, SnapshotMeta};

fn group_problem(r: Result<impl std::fmt::Debug, StorageError>) -> GroupProblem {
    match r {
        Err(StorageError::Group { problem, .. }) => problem,
        other => panic!("expected a group error, got {other:?}"),
    }
}

/// Bad input is a typed error that changes nothing: id 0, a duplicate
/// creation, an unknown group, a second handle, and every call on a
/// removed group's handle.
#[test]
fn bad_group_ids_and_removed_groups_are_refused() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(group_problem(wal.create_group(0)), GroupProblem::InvalidId);
    assert_eq!(group_problem(wal.group(0)), GroupProblem::InvalidId);
    assert_eq!(group_problem(wal.remove_group(0)), GroupProblem::InvalidId);
    let mut g = wal.create_group(7).unwrap();
    assert_eq!(group_problem(wal.create_group(7)), GroupProblem::Exists);
    assert_eq!(group_problem(wal.group(7)), GroupProblem::InUse);
    assert_eq!(group_problem(wal.group(8)), GroupProblem::Unknown);
    assert_eq!(group_problem(wal.remove_group(8)), GroupProblem::Unknown);
    append(&mut g, 1, 2, 4);
    g.sync().unwrap();

    wal.remove_group(7).unwrap();
    assert!(!wal.contains(7));
    // The log keeps no list of removed ids: one is as unknown as an id
    // never created (and as after a reopen); its handle is dead.
    assert_eq!(group_problem(wal.group(7)), GroupProblem::Unknown);
    assert_eq!(group_problem(wal.remove_group(7)), GroupProblem::Unknown);
    assert_eq!(group_problem(g.append(&mut vec![e(1, 3, 4)])), GroupProblem::Removed);
    assert_eq!(group_problem(g.sync()), GroupProblem::Removed);
    assert_eq!(group_problem(g.submit(WriteToken::new(1, 1))), GroupProblem::Removed);
    assert_eq!(group_problem(g.persisted(WriteToken::new(1, 1))), GroupProblem::Removed);
    assert_eq!(group_problem(g.set_hard_state(HardState::default())), GroupProblem::Removed);
    assert_eq!(group_problem(g.truncate(1)), GroupProblem::Removed);
    assert_eq!(group_problem(g.begin_snapshot_receive(&SnapshotMeta::default(), 1)), GroupProblem::Removed);
    // Reads of the dead handle still answer from memory.
    assert_eq!(g.last_index(), 2);

    // The id may be used again: a new, empty group; the old handle stays dead.
    let mut again = wal.create_group(7).unwrap();
    assert_eq!(again.last_index(), 0);
    assert_eq!(group_problem(g.sync()), GroupProblem::Removed);
    append(&mut again, 5, 1, 4);
    again.sync().unwrap();
    drop((g, again, wal));
    let wal = SharedWal::open(root.path()).unwrap();
    let g = wal.group(7).unwrap();
    assert_eq!(all(&g), vec![e(5, 1, 4)]);
}

/// A `WalLog` directory is not a shared WAL and the other way round; a
/// second open of the same directory is refused while the first is alive.
#[test]
fn foreign_and_locked_directories_are_refused() {
    let root = temp();
    let wal_dir = root.path().join("wal-log");
    drop(crate::WalLog::open(&wal_dir).unwrap());
    assert!(matches!(SharedWal::open(&wal_dir), Err(StorageError::NotALog { .. })));
    let shared = root.path().join("shared");
    let wal = SharedWal::open(&shared).unwrap();
    assert!(matches!(SharedWal::open(&shared), Err(StorageError::Locked { .. })));
    drop(wal);
    assert!(matches!(crate::WalLog::open(&shared), Err(StorageError::NotALog { .. })));
    assert!(SharedWal::open(&shared).is_ok());
}

/// Damage to the record naming a group is refused, not skipped: a record
/// that steps an unknown group is corrupt.
#[test]
fn a_record_naming_an_unknown_group_is_refused() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut g = wal.create_group(3).unwrap();
    append(&mut g, 1, 1, 4);
    g.sync().unwrap();
    drop((g, wal));
    // Append a well-formed batch that steps group 99, which never existed.
    let mut ops = Vec::new();
    let step = crate::log::wal::record::Record::Step { identity: None, hard: None, snapshot: None, entries: None };
    record::put_op(&mut ops, 99, &record::Op::Step(step));
    let mut buf = Vec::new();
    record::encode_batch(&mut buf, 1, &ops);
    let w = wal_db::Wal::open_segmented(root.path().join("wal"), 16 << 20).unwrap();
    let _lsn = w.append_and_sync(&buf).unwrap();
    drop(w);
    let err = SharedWal::open(root.path()).unwrap_err();
    assert!(matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("unknown group 99")), "{err}");
}

/// Damage to a record in the middle of the WAL (another group's synced
/// record follows it) is refused, never cut as a torn tail — even above
/// the synced end the meta file records (an unclean shutdown in the last
/// segment) — while damage to the last record alone is a torn tail that
/// costs the other groups nothing.
#[test]
fn damage_in_the_middle_is_refused_and_only_the_last_record_is_a_torn_tail() {
    let root = temp();
    let live = root.path().join("live");
    let wal = SharedWal::open(&live).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    append(&mut a, 1, 2, 50);
    a.sync().unwrap();
    let middle = wal.wal_bytes();
    append(&mut b, 1, 2, 50);
    b.sync().unwrap();
    let end = wal.wal_bytes();
    // The copies (of a log still open) are what an unclean shutdown
    // leaves: every record was synced, but the meta file's synced end is
    // still at the creation's end.
    let (damaged, torn) = (root.path().join("damaged"), root.path().join("torn"));
    copy_dir(&live, &damaged);
    copy_dir(&live, &torn);
    drop((a, b, wal));

    let segment = |dir: &Path| dir.join("wal").join(format!("{:020}.wal", 0));
    // A byte of group 1's record (the second-to-last) flipped.
    let mut bytes = fs::read(segment(&damaged)).unwrap();
    bytes[(middle - 20) as usize] ^= 0x01;
    fs::write(segment(&damaged), &bytes).unwrap();
    let err = SharedWal::open(&damaged).expect_err("damage followed by an intact record is refused");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");

    // The last record (group 2's) cut short: a torn tail; group 1 keeps
    // its synced entries.
    let bytes = fs::read(segment(&torn)).unwrap();
    fs::write(segment(&torn), &bytes[..(end - 10) as usize]).unwrap();
    let wal = SharedWal::open(&torn).unwrap();
    assert!(wal.recovery_report().torn_tail.is_some());
    assert_eq!(wal.group(1).unwrap().last_index(), 2);
    assert_eq!(wal.group(2).unwrap().last_index(), 0);
}

/// Opened without `max_record_size`, a shared WAL keeps the limit it was
/// written with (a tool opening a node's WAL never raises it; the node's
/// own lower limit would then be refused).
#[test]
fn the_defaults_keep_the_record_limit_a_wal_was_written_with() {
    let root = tempfile::tempdir().unwrap();
    let small = || SharedWalOptions::new().max_record_size(1 << 20);
    SharedWal::open_with(root.path(), small()).unwrap().close().unwrap();
    SharedWal::open(root.path()).unwrap().close().unwrap();
    SharedWal::open_with(root.path(), small()).unwrap().close().unwrap();
    let lowered = SharedWal::open_with(root.path(), SharedWalOptions::new().max_record_size(1 << 19));
    assert!(matches!(lowered, Err(StorageError::RecordLimitLowered { stored: 1_048_576, .. })));
}

/// A value the WAL's next open would refuse as damage (a term, index or
/// snapshot above `MAX_TERM`) is refused when one group writes it, with
/// nothing changed, so it can never take every other group's durable state
/// down at the next open; nor does `u64::MAX` overflow anything.
#[test]
fn one_group_s_out_of_range_write_is_refused_and_every_group_reopens() {
    use crate::types::MAX_TERM;
    let root = temp();
    let dir = root.path().join("log");
    let meta = |index, term| SnapshotMeta { index, term, membership: crate::Membership::new([1], []).unwrap() };
    {
        let wal = SharedWal::open(&dir).unwrap();
        let mut a = wal.create_group(1).unwrap();
        append(&mut a, 1, 1, 8);
        a.sync().unwrap();
        let mut b = wal.create_group(2).unwrap();
        for past in [MAX_TERM + 1, u64::MAX] {
            let refused = |r: Result<(), StorageError>| matches!(r, Err(StorageError::InvalidWrite(_)));
            assert!(refused(b.set_hard_state(HardState { term: past, vote: None, commit: 0 })));
            assert!(refused(b.install_snapshot(meta(past, 1), Bytes::from_static(b"x"))));
            assert!(refused(b.install_snapshot(meta(1, past), Bytes::from_static(b"x"))));
            assert!(refused(b.append(&mut vec![e(past, 1, 8)])));
        }
        assert!(!b.has_unsynced_changes(), "a refused write changes nothing");
        b.set_hard_state(HardState { term: 2, vote: None, commit: 0 }).unwrap();
        b.sync().unwrap();
    }
    let wal = SharedWal::open(&dir).unwrap();
    assert_eq!(wal.group(1).unwrap().last_index(), 1);
    assert_eq!(wal.group(2).unwrap().hard_state().term, 2);
}

/// A stray file whose name holds a snapshot id no log writes (here
/// `u64::MAX`) is removed at open without raising the group's next id:
/// the group's next snapshots are written and reopen.
#[test]
fn a_stray_snapshot_file_with_a_huge_id_is_removed_and_not_counted() {
    let root = temp();
    let dir = root.path().join("log");
    let meta = |index| SnapshotMeta { index, term: 1, membership: crate::Membership::new([1], []).unwrap() };
    {
        let wal = SharedWal::open(&dir).unwrap();
        let mut g = wal.create_group(1).unwrap();
        append(&mut g, 1, 1, 8);
        g.install_snapshot(meta(1), Bytes::from_static(b"one")).unwrap();
        g.sync().unwrap();
    }
    let group_dir = dir.join("groups").join(format!("{:020}", 1));
    let stray = group_dir.join(crate::log::wal::snapshot_file::file_name(u64::MAX));
    fs::write(&stray, b"not ours").unwrap();
    {
        let wal = SharedWal::open(&dir).unwrap();
        assert!(!stray.exists(), "removed at open");
        let mut g = wal.group(1).unwrap();
        for i in 2..=3 {
            append(&mut g, 1, 1, 8);
            g.install_snapshot(meta(i), Bytes::from_static(b"more")).unwrap();
            g.sync().unwrap();
        }
    }
    let wal = SharedWal::open(&dir).unwrap();
    let g = wal.group(1).unwrap();
    assert_eq!((g.snapshot_meta().index, &g.snapshot_data().unwrap()[..]), (3, &b"more"[..]));
}
