//! Unit tests of [`SharedWal`] and [`GroupLog`]: the log contract on
//! interleaved groups, one fsync per flush for every group, recovery,
//! removal and the space it reclaims (refusals: `refusal_tests.rs`).

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

pub(super) fn all(log: &impl RaftLog) -> Vec<Entry> {
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

/// A receive given up (`abort_snapshot_receive`: the stream can no longer
/// finish) removes the group's receive file; its chunks are refused after,
/// and a new receive starts afresh.
#[test]
fn a_receive_given_up_removes_its_file() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut g = wal.create_group(3).unwrap();
    let meta = SnapshotMeta { index: 4, term: 1, membership: crate::Membership::new([1], []).unwrap() };
    let receiving = |root: &Path| {
        let found = |dir: &Path| dir.join(crate::log::wal::snapshot_file::RECEIVING).exists();
        std::fs::read_dir(root.join("groups")).map(|d| d.flatten().any(|e| found(&e.path()))).unwrap_or(false)
    };
    g.begin_snapshot_receive(&meta, 6).unwrap();
    g.receive_snapshot_chunk(0, b"abc").unwrap();
    assert!(receiving(root.path()));
    g.abort_snapshot_receive().unwrap();
    assert!(!receiving(root.path()), "the partial file is still there");
    assert!(g.receive_snapshot_chunk(3, b"def").is_err());
    g.abort_snapshot_receive().unwrap();
    g.begin_snapshot_receive(&meta, 3).unwrap();
    g.receive_snapshot_chunk(0, b"xyz").unwrap();
    g.finish_snapshot_receive().unwrap();
    assert_eq!(&g.snapshot_data().unwrap()[..], b"xyz");
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

/// A driver that reports each write itself (`persisted`) and never takes
/// the tokens `flush` returns: the list of tokens made durable stays
/// bounded by the groups, and what `flush` returns at last still holds
/// each group's latest token.
#[test]
fn tokens_never_taken_stay_bounded_by_the_groups() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut groups: Vec<GroupLog> = (1..=3).map(|id| wal.create_group(id).unwrap()).collect();
    for round in 1..=500 {
        for g in &mut groups {
            append(g, 1, 1, 8);
            g.submit(WriteToken::new(1, round)).unwrap();
            g.persisted(WriteToken::new(1, round)).unwrap();
        }
        let listed = crate::sync::lock(&wal.inner).durable.len();
        assert!(listed <= 2 * 3 + inner::DURABLE_SLACK + 1, "round {round}: {listed} tokens listed");
    }
    let returned = wal.flush().unwrap();
    assert!(returned.len() <= 2 * 3 + inner::DURABLE_SLACK + 1);
    for id in 1..=3 {
        let latest = returned.iter().filter(|(g, _)| *g == id).map(|(_, t)| t.seq()).max();
        assert_eq!(latest, Some(500), "group {id}: {returned:?}");
    }
}
