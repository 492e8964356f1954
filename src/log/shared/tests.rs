//! Unit tests of [`SharedWal`] and [`GroupLog`]: the log contract on
//! interleaved groups, one fsync per flush for every group, recovery,
//! removal and the space it reclaims, and refusal of bad input.

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::log::wal::crash_support::copy_dir;
use crate::log::{Submitted, conformance};
use crate::types::{Entry, HardState, Index, SnapshotMeta, Term};

pub(super) fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-shared-").tempdir().unwrap()
}

pub(super) fn e(term: Term, index: Index, len: usize) -> Entry {
    Entry::normal(term, index, Bytes::from(vec![(index % 251) as u8; len]))
}

pub(super) fn append(log: &mut impl RaftLog, term: Term, n: u64, len: usize) {
    let first = log.last_index() + 1;
    log.append(&mut (first..first + n).map(|i| e(term, i, len)).collect()).unwrap();
}

/// One round of a busy group: two 100-byte entries, a snapshot every
/// tenth round (keeping the last entry), then a submit.
fn busy_round(g: &mut GroupLog, round: u64) {
    append(g, 1, 2, 100);
    if round % 10 == 9 {
        let at = g.last_index() - 1;
        let meta = SnapshotMeta { index: at, term: 1, membership: crate::Membership::new([1], []).unwrap() };
        g.install_snapshot(meta, Bytes::from(vec![1u8; 10])).unwrap();
    }
    g.submit(WriteToken::new(1, round + 1)).unwrap();
}

fn all(log: &impl RaftLog) -> Vec<Entry> {
    let mut out = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut out).unwrap();
    out
}

/// Bytes of every file under `dir`.
pub(super) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                total += fs::metadata(&path).unwrap().len();
            }
        }
    }
    total
}

/// Closes `wal` and its `groups` (ids from 1), reopens `dir` with
/// `options`, and checks every group's entries and snapshot are as they
/// were.
fn reopens_the_same(dir: &Path, wal: SharedWal, groups: Vec<GroupLog>, options: SharedWalOptions) {
    let images: Vec<_> = groups.iter().map(|g| (all(g), g.snapshot_meta().clone())).collect();
    drop(groups);
    drop(wal);
    let wal = SharedWal::open_with(dir, options).unwrap();
    for (id, image) in (1..).zip(images) {
        let g = wal.group(id).unwrap();
        assert_eq!((all(&g), g.snapshot_meta().clone()), image, "group {id}");
    }
}

fn group_problem(r: Result<impl std::fmt::Debug, StorageError>) -> GroupProblem {
    match r {
        Err(StorageError::Group { problem, .. }) => problem,
        other => panic!("expected a group error, got {other:?}"),
    }
}

/// The [`RaftLog`] contract on group logs, each a new group of one shared
/// WAL, while a neighbour group keeps writing between them (so every flush
/// of a group under test carries another group's step too). The
/// neighbour's every write survives a reopen.
#[test]
fn group_logs_pass_the_conformance_suite_interleaved_in_one_wal() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let neighbour = RefCell::new(wal.create_group(u64::MAX).unwrap());
    let next = RefCell::new(1u64);
    conformance::run_all(|| {
        let mut n = neighbour.borrow_mut();
        append(&mut *n, 1, 1, 5);
        let seq = n.last_index();
        n.submit(WriteToken::new(1, seq)).unwrap();
        let id = *next.borrow();
        *next.borrow_mut() += 1;
        wal.create_group(id).unwrap()
    });
    let written = neighbour.borrow().last_index();
    assert!(written >= 10);
    drop(neighbour);
    wal.flush().unwrap();
    drop(wal);
    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(wal.group(u64::MAX).unwrap().last_index(), written);
    assert!(wal.groups().len() >= 11, "{:?}", wal.groups());
}

/// One step of 1,000 groups, each appending and submitting, then one
/// flush: exactly one record and one fsync, every token returned, and
/// every group's entries recovered after a reopen.
#[test]
fn a_thousand_groups_share_one_fsync_per_flush() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut groups: Vec<GroupLog> = (1..=1000).map(|id| wal.create_group(id).unwrap()).collect();
    let before = wal.stats();
    for g in &mut groups {
        append(g, 1, 3, 16);
        assert_eq!(g.submit(WriteToken::new(g.id(), 1)).unwrap(), Submitted::Pending);
    }
    assert_eq!(wal.stats().syncs, before.syncs, "submit does not sync");
    let durable = wal.flush().unwrap();
    let after = wal.stats();
    assert_eq!(after.syncs - before.syncs, 1, "one fsync for a thousand groups");
    assert_eq!(after.records - before.records, 1, "one record");
    assert_eq!(groups[0].fsyncs(), Some(after.syncs));
    let want: Vec<(GroupId, WriteToken)> = (1..=1000).map(|id| (id, WriteToken::new(id, 1))).collect();
    assert_eq!(durable, want);
    assert_eq!(wal.flush().unwrap(), vec![], "reported once");
    assert_eq!(wal.stats().syncs, after.syncs, "an empty flush makes no fsync");
    drop(groups);
    drop(wal);
    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(wal.groups().len(), 1000);
    for id in [1, 500, 1000] {
        let g = wal.group(id).unwrap();
        assert_eq!(all(&g), (1..=3).map(|i| e(1, i, 16)).collect::<Vec<_>>());
    }
}

/// A group's `sync` flushes every group's staged writes with it, and the
/// tokens it made durable are still returned by the next `flush`.
#[test]
fn a_group_sync_flushes_everything_staged() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    append(&mut a, 1, 2, 8);
    a.submit(WriteToken::new(5, 1)).unwrap();
    append(&mut b, 1, 1, 8);
    let syncs = wal.stats().syncs;
    b.sync().unwrap();
    assert_eq!(wal.stats().syncs, syncs + 1);
    assert_eq!(wal.flush().unwrap(), vec![(1, WriteToken::new(5, 1))]);
    // persisted() of a token already durable makes no fsync; of one still
    // staged, it flushes.
    a.persisted(WriteToken::new(5, 1)).unwrap();
    assert_eq!(wal.stats().syncs, syncs + 1);
    append(&mut a, 1, 1, 8);
    a.submit(WriteToken::new(5, 2)).unwrap();
    a.persisted(WriteToken::new(5, 2)).unwrap();
    assert_eq!(wal.stats().syncs, syncs + 2);
    drop((a, b, wal));
    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(wal.group(1).unwrap().last_index(), 3);
    assert_eq!(wal.group(2).unwrap().last_index(), 1);
}

/// A shared WAL whose group 1 holds an entry and has submitted token
/// `(3, 1)`, and whose group 2 (returned) holds an entry.
fn group_one_with_a_token(root: &Path) -> (SharedWal, GroupLog) {
    let wal = SharedWal::open(root).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    append(&mut a, 1, 1, 8);
    a.submit(WriteToken::new(3, 1)).unwrap();
    append(&mut b, 1, 1, 8);
    (wal, b)
}

/// A removed group's staged token is never reported durable, even once
/// its id is a new group's: the flush that writes the removal makes the
/// other groups' tokens durable, and the next `flush` returns those only.
/// (A host that reported it would step `Persisted` on a group that is
/// gone, or with the id reused, on a new group that never wrote it.)
#[test]
fn a_removed_groups_staged_token_is_not_reported_even_when_its_id_is_reused() {
    let root = temp();
    let (wal, mut b) = group_one_with_a_token(root.path());
    b.submit(WriteToken::new(4, 1)).unwrap();
    wal.remove_group(1).unwrap();
    let again = wal.create_group(1).unwrap();
    assert_eq!(wal.flush().unwrap(), vec![(2, WriteToken::new(4, 1))], "group 1's token left with it");
    assert_eq!(again.last_index(), 0);
    assert_eq!(wal.flush().unwrap(), vec![], "reported once");
}

/// Nor is a token that became durable (through another group's sync)
/// before its group was removed, and not yet returned by `flush`: it left
/// with its group, and a new group under the same id never wrote it.
#[test]
fn a_removed_groups_durable_token_not_yet_flushed_is_not_reported() {
    let root = temp();
    let (wal, mut b) = group_one_with_a_token(root.path());
    b.sync().unwrap();
    wal.remove_group(1).unwrap();
    let _again = wal.create_group(1).unwrap();
    assert_eq!(wal.flush().unwrap(), vec![], "group 1's durable token left with it");
}

/// Every group comes back with its own entries, hard state, identity and
/// snapshot (file included), after truncations and snapshots.
#[test]
fn each_group_recovers_its_own_state() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(10).unwrap();
    let mut b = wal.create_group(20).unwrap();
    a.set_identity(crate::types::LogIdentity { cluster_id: 1, node_id: 1 }).unwrap();
    b.set_identity(crate::types::LogIdentity { cluster_id: 2, node_id: 3 }).unwrap();
    a.set_hard_state(HardState { term: 3, vote: Some(1), commit: 0 }).unwrap();
    append(&mut a, 1, 5, 10);
    append(&mut b, 2, 7, 10);
    a.sync().unwrap();
    a.truncate(4).unwrap();
    append(&mut a, 3, 2, 10);
    let meta = SnapshotMeta { index: 5, term: 2, membership: crate::Membership::new([1, 2], []).unwrap() };
    b.install_snapshot(meta.clone(), Bytes::from_static(b"b-state")).unwrap();
    a.submit(WriteToken::new(1, 1)).unwrap();
    b.submit(WriteToken::new(1, 1)).unwrap();
    wal.flush().unwrap();
    let (ia, ib) = (all(&a), all(&b));
    drop((a, b, wal));

    let wal = SharedWal::open(root.path()).unwrap();
    let a = wal.group(10).unwrap();
    let b = wal.group(20).unwrap();
    assert_eq!(all(&a), ia);
    assert_eq!(all(&b), ib);
    assert_eq!(a.hard_state(), HardState { term: 3, vote: Some(1), commit: 0 });
    assert_eq!(b.identity().unwrap().node_id, 3);
    assert_eq!(b.snapshot_meta(), &meta);
    assert_eq!(&b.snapshot_data().unwrap()[..], b"b-state");
    assert_eq!(&b.snapshot_chunk(2, 3).unwrap()[..], b"sta");
    assert_eq!(a.term(4), Some(3));
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
    assert_eq!(group_problem(wal.group(7)), GroupProblem::Removed);
    assert_eq!(group_problem(wal.remove_group(7)), GroupProblem::Removed);
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

/// A removed group's snapshot files go at once, and its WAL space at the
/// next checkpoint: the directory shrinks back to about what the live
/// groups hold.
#[test]
fn removing_groups_reclaims_their_space() {
    let root = temp();
    let options = SharedWalOptions::new().segment_size(16 << 10);
    let wal = SharedWal::open_with(root.path(), options.clone()).unwrap();
    let mut groups: Vec<GroupLog> = (1..=20).map(|id| wal.create_group(id).unwrap()).collect();
    for round in 0..20 {
        for g in &mut groups {
            append(g, 1, 4, 200);
            g.submit(WriteToken::new(1, round + 1)).unwrap();
        }
        wal.flush().unwrap();
    }
    let meta = SnapshotMeta { index: 10, term: 1, membership: crate::Membership::new([1], []).unwrap() };
    groups[0].install_snapshot(meta, Bytes::from(vec![7u8; 50_000])).unwrap();
    groups[0].sync().unwrap();
    let full = dir_size(root.path());
    assert!(full > 300_000, "{full}");
    let group_dir = root.path().join("groups").join(format!("{:020}", 1));
    assert!(group_dir.is_dir());

    // Remove all but the last group.
    let kept = groups.pop().unwrap();
    drop(groups);
    for id in 1..=19 {
        wal.remove_group(id).unwrap();
    }
    assert!(!group_dir.exists(), "the removed group's snapshot directory is gone");
    // The amortized rule may have checkpointed already (the live data
    // shrank with each removal); an explicit checkpoint does it now.
    wal.checkpoint().unwrap();
    let after = dir_size(root.path());
    let live: u64 = 20 * 4 * 210;
    assert!(after < live + 3 * (16 << 10) + 4096, "{after} bytes left of {full}");
    assert!(wal.stats().compactions >= 1);
    drop(kept);
    drop(wal);
    let wal = SharedWal::open_with(root.path(), options).unwrap();
    assert_eq!(wal.groups(), vec![20]);
    assert_eq!(wal.group(20).unwrap().last_index(), 80);
}

/// Without an explicit checkpoint, the amortized rule checkpoints and
/// compacts on its own: a long run of writes and snapshots keeps the WAL
/// bounded.
#[test]
fn checkpoints_keep_the_wal_bounded() {
    let root = temp();
    let wal = SharedWal::open_with(root.path(), SharedWalOptions::new().segment_size(8 << 10)).unwrap();
    let mut groups: Vec<GroupLog> = (1..=5).map(|id| wal.create_group(id).unwrap()).collect();
    for round in 0..200u64 {
        for g in &mut groups {
            busy_round(g, round);
        }
        wal.flush().unwrap();
    }
    let stats = wal.stats();
    assert!(stats.compactions >= 3, "{stats:?}");
    assert!(wal.wal_bytes() < 64 << 10, "{}", wal.wal_bytes());
    reopens_the_same(root.path(), wal, groups, SharedWalOptions::new());
}

/// Live entries of all groups together far above the record size limit
/// (each group's well below it): checkpoints are written in parts, and the
/// WAL is compacted and stays bounded as it is with one-record checkpoints.
#[test]
fn a_wal_whose_live_state_exceeds_a_record_is_still_compacted() {
    let root = temp();
    let options = || SharedWalOptions::new().segment_size(8 << 10).max_record_size(8 << 10);
    let wal = SharedWal::open_with(root.path(), options()).unwrap();
    let mut groups: Vec<GroupLog> = (1..=16).map(|id| wal.create_group(id).unwrap()).collect();
    let mut most = 0;
    for round in 0..200u64 {
        for g in &mut groups {
            busy_round(g, round);
        }
        wal.flush().unwrap();
        let live: u64 = groups.iter().map(|g| all(g).iter().map(|e| e.data.len() as u64).sum::<u64>()).sum();
        most = most.max(live);
        if round % 10 == 8 {
            // The live entries are at their most, some 30 KiB: a
            // checkpoint asked for now takes several records.
            let before = wal.stats();
            wal.checkpoint().unwrap();
            let after = wal.stats();
            assert_eq!(after.compactions, before.compactions + 1, "round {round}: {after:?}");
            assert!(after.checkpoint_parts >= before.checkpoint_parts + 3, "round {round}: {after:?}");
        }
    }
    assert!(most > 3 * (8 << 10), "live entries at most {most} B: several records' worth");
    let stats = wal.stats();
    assert!(stats.compactions >= 20, "{stats:?}");
    assert!(wal.wal_bytes() < 256 << 10, "{}", wal.wal_bytes());
    reopens_the_same(root.path(), wal, groups, options());
}

/// Streamed snapshots land in the group's own directory and survive a
/// reopen; a group's files never touch another's.
#[test]
fn streamed_snapshots_are_per_group() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    for (g, data) in [(&mut a, &b"aaaaaa"[..]), (&mut b, &b"bbbb"[..])] {
        let meta = SnapshotMeta { index: 4, term: 1, membership: crate::Membership::new([1], []).unwrap() };
        g.begin_snapshot_receive(&meta, data.len() as u64).unwrap();
        for (k, part) in data.chunks(3).enumerate() {
            g.receive_snapshot_chunk(k as u64 * 3, part).unwrap();
        }
        g.finish_snapshot_receive().unwrap();
        g.sync().unwrap();
    }
    drop((a, b, wal));
    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(&wal.group(1).unwrap().snapshot_data().unwrap()[..], b"aaaaaa");
    assert_eq!(&wal.group(2).unwrap().snapshot_data().unwrap()[..], b"bbbb");
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

/// A failed sync halts every group of the log: the flush reports no token,
/// and every later write of every group fails with `Halted` until the log
/// is reopened.
#[test]
fn a_failed_sync_halts_every_group_and_reports_no_token() {
    let root = temp();
    let faults = crate::log::wal::FaultInjector::new();
    let wal = SharedWal::open_with(root.path(), SharedWalOptions::new().fault_injector(faults.clone())).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    append(&mut a, 1, 1, 4);
    a.submit(WriteToken::new(1, 1)).unwrap();
    faults.fail_next_sync();
    assert!(matches!(wal.flush(), Err(StorageError::Io { .. })));
    assert!(matches!(wal.flush(), Err(StorageError::Halted { .. })), "no token, ever");
    assert!(matches!(a.persisted(WriteToken::new(1, 1)), Err(StorageError::Halted { .. })));
    assert!(matches!(b.append(&mut vec![e(1, 1, 4)]), Err(StorageError::Halted { .. })));
    assert!(matches!(b.sync(), Err(StorageError::Halted { .. })));
    assert!(matches!(wal.create_group(3), Err(StorageError::Halted { .. })));
    drop((a, b, wal));
    let wal = SharedWal::open(root.path()).unwrap();
    assert!(wal.groups().len() <= 2);
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

/// A checkpoint holds exactly what was staged, whatever the groups changed
/// since (appends, hard state, a commit index): a crash right after it
/// recovers the staged state. Only when memory no longer holds what a group
/// staged (it truncated staged entries, or installed a snapshot, without
/// staging that yet) does the checkpoint wait, and it is written once that
/// group stages.
#[test]
fn a_checkpoint_holds_what_was_staged_and_nothing_since() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(1).unwrap();
    let mut b = wal.create_group(2).unwrap();
    append(&mut a, 1, 3, 8);
    a.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    append(&mut b, 1, 3, 8);
    a.sync().unwrap();
    b.sync().unwrap();
    // Changes nobody staged: appends, a new term and vote, a commit index.
    append(&mut a, 1, 4, 8);
    a.set_hard_state(HardState { term: 2, vote: Some(2), commit: 3 }).unwrap();
    append(&mut b, 1, 2, 8);
    let before = wal.stats().checkpoints;
    wal.checkpoint().unwrap();
    assert_eq!(wal.stats().checkpoints, before + 1);
    let copy = root.path().with_extension("copy");
    copy_dir(root.path(), &copy);
    {
        let wal = SharedWal::open(&copy).unwrap();
        let a = wal.group(1).unwrap();
        assert_eq!(a.last_index(), 3, "unstaged entries are not in the checkpoint");
        assert_eq!(a.hard_state(), HardState { term: 1, vote: Some(1), commit: 0 });
        assert_eq!(wal.group(2).unwrap().last_index(), 3);
    }
    let _ = fs::remove_dir_all(&copy);

    // `b` replaces an entry it staged (truncation, then an entry of a new
    // term at the same index) and does not stage that: memory no longer
    // holds the staged log, so the checkpoint waits.
    b.truncate(3).unwrap();
    append(&mut b, 2, 1, 8);
    assert_eq!(b.last_index(), 3);
    wal.checkpoint().unwrap();
    assert_eq!(wal.stats().checkpoints, before + 1, "a checkpoint wrote a truncation nobody staged");
    assert_eq!(wal.stats().checkpoints_deferred, 1);
    b.submit(WriteToken::new(1, 1)).unwrap();
    wal.checkpoint().unwrap();
    assert_eq!(wal.stats().checkpoints, before + 2);
    drop((a, b, wal));
}

/// A group whose handle keeps changes it never stages does not hold back
/// the compaction of the others (nor its own staged state).
#[test]
fn an_idle_handle_with_unstaged_changes_does_not_block_compaction() {
    let root = temp();
    let wal = SharedWal::open_with(root.path(), SharedWalOptions::new().segment_size(8 << 10)).unwrap();
    let mut idle = wal.create_group(1).unwrap();
    let mut busy = wal.create_group(2).unwrap();
    append(&mut idle, 1, 1, 8);
    idle.sync().unwrap();
    append(&mut idle, 1, 1, 8); // never staged
    for round in 0..400u64 {
        busy_round(&mut busy, round);
        wal.flush().unwrap();
    }
    let stats = wal.stats();
    assert!(stats.compactions >= 3, "{stats:?} wal_bytes={}", wal.wal_bytes());
    assert!(wal.wal_bytes() < 64 << 10, "{}", wal.wal_bytes());
    assert_eq!(idle.last_index(), 2, "the handle keeps its own changes");
}

/// What a dropped handle changed and did not stage is forgotten, as a crash
/// would: the group's next handle starts from what was staged.
#[test]
fn a_dropped_handle_s_unstaged_changes_are_forgotten() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut g = wal.create_group(4).unwrap();
    append(&mut g, 2, 3, 8);
    g.set_hard_state(HardState { term: 2, vote: Some(1), commit: 1 }).unwrap();
    g.sync().unwrap();
    append(&mut g, 2, 2, 8);
    g.set_hard_state(HardState { term: 3, vote: None, commit: 3 }).unwrap();
    drop(g);
    let again = wal.group(4).unwrap();
    assert_eq!(all(&again), (1..=3).map(|i| e(2, i, 8)).collect::<Vec<_>>());
    assert_eq!(again.hard_state(), HardState { term: 2, vote: Some(1), commit: 1 });
    assert!(!again.has_unsynced_changes());
}

/// A handle that panicked while holding its group's state leaves the lock
/// poisoned for good: checkpoints still take that group as last staged
/// instead of waiting forever.
#[test]
fn a_poisoned_group_state_does_not_hold_checkpoints_back() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut g = wal.create_group(1).unwrap();
    append(&mut g, 1, 3, 8);
    g.sync().unwrap();
    let cell = std::sync::Arc::clone(&crate::sync::lock(&wal.inner).groups.get(&1).expect("group 1").cell);
    let poisoner = std::thread::spawn(move || {
        let _held = cell.state.lock();
        panic!("a handle's owner panicked holding the state (expected in this test)");
    });
    assert!(poisoner.join().is_err());
    let before = wal.stats().checkpoints;
    wal.checkpoint().unwrap();
    assert_eq!(wal.stats().checkpoints, before + 1);
    assert_eq!(wal.stats().checkpoints_deferred, 0);
    assert_eq!(g.last_index(), 3, "the handle still reads its state");
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
