//! A handle of a group removed and created again under the same id (a
//! *stale* handle) touches no file of the new group, and the ids of
//! removed groups take no memory that outlives them.

use std::path::Path;

use super::tests::temp;
use super::*;
use crate::types::SnapshotMeta;

fn group_problem(r: Result<impl std::fmt::Debug, StorageError>) -> GroupProblem {
    match r {
        Err(StorageError::Group { problem, .. }) => problem,
        other => panic!("expected a group error, got {other:?}"),
    }
}

fn meta() -> SnapshotMeta {
    SnapshotMeta { index: 4, term: 1, membership: crate::Membership::new([1], []).unwrap() }
}

fn receive_file(root: &Path, id: GroupId) -> std::path::PathBuf {
    root.join(inner::GROUPS_DIR).join(inner::group_dir_name(id)).join(crate::log::wal::snapshot_file::RECEIVING)
}

/// Handle A of group 7 begins a receive; group 7 is removed and created
/// again (handle B), which begins its own receive into the same path.
/// Every receive call of A is then refused and leaves B's file alone: B
/// finishes its receive, and the group reopens with B's snapshot.
#[test]
fn a_stale_handle_leaves_the_new_groups_receive_alone() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(7).unwrap();
    a.begin_snapshot_receive(&meta(), 6).unwrap();
    a.receive_snapshot_chunk(0, b"old").unwrap();
    wal.remove_group(7).unwrap();

    let mut b = wal.create_group(7).unwrap();
    b.begin_snapshot_receive(&meta(), 6).unwrap();
    b.receive_snapshot_chunk(0, b"new").unwrap();
    let path = receive_file(root.path(), 7);
    assert!(path.exists());

    // The stale handle, between B's chunks: its own receive first (begun
    // before the removal), then a new one.
    let chunk = a.receive_snapshot_chunk(3, b"OLD");
    let aborted = a.abort_snapshot_receive();
    assert!(path.exists(), "the stale handle's abort removed the new group's receive file");
    let begun = a.begin_snapshot_receive(&meta(), 6);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3, "the stale handle truncated the new group's file");
    let chunk_after = a.receive_snapshot_chunk(0, b"OLDOLD");
    let finished = a.finish_snapshot_receive();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3);

    b.receive_snapshot_chunk(3, b"NEW").unwrap();
    b.finish_snapshot_receive().unwrap();
    b.sync().unwrap();
    assert_eq!(&b.snapshot_data().unwrap()[..], b"newNEW");
    for (what, r) in
        [("chunk", chunk), ("abort", aborted), ("begin", begun), ("chunk", chunk_after), ("finish", finished)]
    {
        assert_eq!(group_problem(r), GroupProblem::Removed, "{what}");
    }
    drop((a, b, wal));

    let wal = SharedWal::open(root.path()).unwrap();
    assert_eq!(&wal.group(7).unwrap().snapshot_data().unwrap()[..], b"newNEW");
}

/// Snapshot file ids are per group and start again at 1 for a group
/// created again, so a stale handle's snapshot names the new group's file:
/// its reads are refused rather than served from that file.
#[test]
fn a_stale_handle_reads_no_snapshot_of_the_new_group() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut a = wal.create_group(7).unwrap();
    a.install_snapshot(meta(), bytes::Bytes::from_static(b"aaaa")).unwrap();
    a.sync().unwrap();
    // Served once, so its file is verified and the check not repeated.
    assert_eq!(&a.snapshot_chunk(0, 4).unwrap()[..], b"aaaa");
    wal.remove_group(7).unwrap();

    let mut b = wal.create_group(7).unwrap();
    b.install_snapshot(meta(), bytes::Bytes::from_static(b"bbbb")).unwrap();
    b.sync().unwrap();
    assert_eq!(group_problem(a.snapshot_chunk(0, 4)), GroupProblem::Removed);
    assert_eq!(group_problem(a.snapshot_data()), GroupProblem::Removed);
    assert_eq!(&b.snapshot_data().unwrap()[..], b"bbbb");
}

/// 10 000 groups created and removed, every tenth under the id of one
/// kept handle's group: the log keeps no entry for any of them once
/// removed, and the kept stale handles are still refused, by their
/// incarnation.
#[test]
fn removed_groups_take_no_memory_and_their_handles_stay_dead() {
    let root = temp();
    let wal = SharedWal::open(root.path()).unwrap();
    let mut live = wal.create_group(1).unwrap();
    let mut first_seven = wal.create_group(7).unwrap();
    wal.remove_group(7).unwrap();
    let mut first_other = wal.create_group(100).unwrap();
    wal.remove_group(100).unwrap();
    for round in 0..10_000u64 {
        let id = if round % 10 == 0 { 7 } else { 101 + round };
        let mut g = wal.create_group(id).unwrap();
        g.submit(WriteToken::new(1, round + 1)).unwrap();
        live.submit(WriteToken::new(1, round + 1)).unwrap();
        wal.remove_group(id).unwrap();
        drop(g);
        let entries = lock(&wal.inner).entries_per_group_id();
        // The live group: its slot, and its tokens not yet taken (cut
        // to its latest past two per group and a slack).
        let bound = 1 + 2 + inner::DURABLE_SLACK;
        assert!(entries <= bound, "round {round}: {entries} entries for 1 live group");
        if round % 1000 == 999 {
            assert!(wal.flush().unwrap().iter().all(|&(g, _)| g == 1), "only the live group's tokens");
        }
    }
    let stale = [&mut first_seven, &mut first_other];
    for g in stale {
        assert_eq!(group_problem(g.sync()), GroupProblem::Removed);
        assert_eq!(group_problem(g.submit(WriteToken::new(9, 9))), GroupProblem::Removed);
        assert_eq!(group_problem(g.begin_snapshot_receive(&meta(), 1)), GroupProblem::Removed);
    }
    let mut seven = wal.create_group(7).unwrap();
    assert_eq!(group_problem(first_seven.truncate(1)), GroupProblem::Removed);
    seven.sync().unwrap();
    assert!(matches!(wal.group(100), Err(StorageError::Group { .. })));
    assert_eq!(wal.groups(), vec![1, 7]);
}
