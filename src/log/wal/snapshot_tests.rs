//! Unit tests of [`WalLog`]'s snapshots: compaction behind them, their
//! files (superseded, stray, damaged) and snapshots streamed in from a
//! leader.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::tests::{append, small, temp};
use super::*;
use crate::membership::Membership;

#[test]
fn snapshots_compact_the_wal_and_survive_reopen() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    for _ in 0..40 {
        let first = log.last_index() + 1;
        log.append(&mut (first..first + 10).map(|i| Entry::normal(1, i, Bytes::from(vec![1; 100]))).collect()).unwrap();
        log.sync().unwrap();
    }
    let segments_before = fs::read_dir(root.path().join("wal")).unwrap().count();
    let members = Membership::new([1, 2], []).unwrap();
    let meta = SnapshotMeta { index: 395, term: 1, membership: members.clone() };
    log.install_snapshot(meta.clone(), Bytes::from_static(b"state at 395")).unwrap();
    log.sync().unwrap();
    assert_eq!(log.stats().compactions, 1);
    assert_eq!(log.stats().checkpoints, log.stats().compactions + 1, "the anchor and the compaction");
    let segments_after = fs::read_dir(root.path().join("wal")).unwrap().count();
    assert!(segments_after < segments_before, "{segments_after} < {segments_before}");
    assert_eq!((log.first_index(), log.last_index()), (396, 400));
    append(&mut log, 2, 1);
    log.sync().unwrap();
    drop(log);

    let log = WalLog::open_with(root.path(), small()).unwrap();
    assert_eq!(log.snapshot_meta(), &meta);
    assert_eq!(&log.snapshot_data().unwrap()[..], b"state at 395");
    assert_eq!(&log.snapshot_chunk(6, 2).unwrap()[..], b"at");
    assert_eq!((log.first_index(), log.last_index()), (396, 401));
    assert_eq!(log.term(401), Some(2));
    assert_eq!(log.recovery_report().records, 2, "checkpoint + one step");
    let snaps: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| snapshot_file::parse_name(&e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(snaps.len(), 1);
}

#[test]
fn superseded_snapshot_files_are_removed() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    for i in 1..=5u64 {
        append(&mut log, 1, 3);
        let meta = SnapshotMeta { index: log.last_index(), term: 1, membership: Membership::empty() };
        log.install_snapshot(meta, Bytes::from(vec![i as u8; 100])).unwrap();
        if i == 3 {
            // Two snapshots in one step: the first never reaches the disk.
            append(&mut log, 1, 1);
            let meta = SnapshotMeta { index: log.last_index(), term: 1, membership: Membership::empty() };
            log.install_snapshot(meta, Bytes::from(vec![33; 100])).unwrap();
        }
        log.sync().unwrap();
        let snaps = fs::read_dir(root.path())
            .unwrap()
            .filter(|e| snapshot_file::parse_name(&e.as_ref().unwrap().file_name().to_string_lossy()).is_some());
        assert_eq!(snaps.count(), 1, "after snapshot {i}");
    }
    assert_eq!(&log.snapshot_data().unwrap()[..], &[5; 100][..]);
}

/// A stray file whose name holds a snapshot id no log writes (`u64::MAX`)
/// is not taken for one of the log's (left alone, as any file not the
/// log's) and does not raise the next id: the snapshots after it are
/// written, and the log reopens.
#[test]
fn a_stray_snapshot_file_with_a_huge_id_is_removed_and_not_counted() {
    let root = temp();
    let snapshot = |log: &mut WalLog, data: &'static [u8]| {
        append(log, 1, 1);
        let meta = SnapshotMeta { index: log.last_index(), term: 1, membership: Membership::empty() };
        log.install_snapshot(meta, Bytes::from_static(data)).unwrap();
        log.sync().unwrap();
    };
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    snapshot(&mut log, b"one");
    drop(log);
    let stray = root.path().join(snapshot_file::file_name(u64::MAX));
    fs::write(&stray, b"not ours").unwrap();
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    assert!(log.recovery_report().removed_files.is_empty());
    snapshot(&mut log, b"two");
    snapshot(&mut log, b"three");
    drop(log);
    let log = WalLog::open_with(root.path(), small()).unwrap();
    assert_eq!(&log.snapshot_data().unwrap()[..], b"three");
}

#[test]
fn a_streamed_snapshot_is_received_into_a_file() {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    append(&mut log, 1, 3);
    log.sync().unwrap();
    let meta = SnapshotMeta { index: 50, term: 4, membership: Membership::new([1], []).unwrap() };
    log.begin_snapshot_receive(&meta, 10).unwrap();
    log.receive_snapshot_chunk(0, b"01234").unwrap();
    assert!(root.path().join(snapshot_file::RECEIVING).exists());
    assert!(log.receive_snapshot_chunk(3, b"x").is_err(), "out of order");
    assert!(log.receive_snapshot_chunk(5, b"567890").is_err(), "past the end");
    log.receive_snapshot_chunk(5, b"56789").unwrap();
    log.finish_snapshot_receive().unwrap();
    assert!(!root.path().join(snapshot_file::RECEIVING).exists());
    assert_eq!(&log.snapshot_data().unwrap()[..], b"0123456789");
    log.sync().unwrap();
    // A receive interrupted by a crash leaves a temporary that the next open removes.
    let next = SnapshotMeta { index: 60, ..meta.clone() };
    log.begin_snapshot_receive(&next, 4).unwrap();
    log.receive_snapshot_chunk(0, b"ab").unwrap();
    drop(log);
    let log = WalLog::open(root.path()).unwrap();
    assert_eq!(log.snapshot_meta(), &meta);
    assert_eq!((log.first_index(), log.last_index()), (51, 50));
    assert_eq!(&log.snapshot_data().unwrap()[..], b"0123456789");
    assert_eq!(log.recovery_report().removed_files, vec![root.path().join(snapshot_file::RECEIVING)]);
}

/// A receive given up (`abort_snapshot_receive`) removes its file; its
/// chunks are refused after, and the log is otherwise unchanged.
#[test]
fn a_receive_given_up_removes_its_file() {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    append(&mut log, 1, 3);
    let meta = SnapshotMeta { index: 50, term: 4, membership: Membership::new([1], []).unwrap() };
    log.begin_snapshot_receive(&meta, 10).unwrap();
    log.receive_snapshot_chunk(0, b"01234").unwrap();
    assert!(root.path().join(snapshot_file::RECEIVING).exists());
    log.abort_snapshot_receive().unwrap();
    assert!(!root.path().join(snapshot_file::RECEIVING).exists(), "the partial file is still there");
    assert!(log.receive_snapshot_chunk(5, b"56789").is_err());
    assert!(log.finish_snapshot_receive().is_err());
    assert_eq!((log.snapshot_meta().index, log.last_index()), (0, 3));
}

fn snapshot_path(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| snapshot_file::parse_name(&p.file_name().unwrap().to_string_lossy()).is_some())
        .unwrap()
}

/// `snapshot_len` answers from the record, without reading the file, and
/// `snapshot_chunk` checks the file's checksum before serving any byte of it:
/// a file damaged after the open is an error, never served bytes.
#[test]
fn a_corrupt_snapshot_file_is_never_served_and_its_length_needs_no_read() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), small()).unwrap();
    append(&mut log, 1, 3);
    let meta = SnapshotMeta { index: 3, term: 1, membership: Membership::empty() };
    let data = Bytes::from((0..200u32).map(|i| i as u8).collect::<Vec<_>>());
    log.install_snapshot(meta, data.clone()).unwrap();
    assert_eq!(log.snapshot_len().unwrap(), 200, "pending in memory");
    log.sync().unwrap();
    drop(log);

    let log = WalLog::open_with(root.path(), small()).unwrap();
    let path = snapshot_path(root.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[150] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(log.snapshot_len().unwrap(), 200);
    let err = log.snapshot_chunk(0, 16).expect_err("a damaged snapshot must not be served");
    assert!(matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("checksum")), "{err}");
    assert!(log.snapshot_chunk(160, 16).is_err(), "nor any later chunk");
    // Repaired, it is served (and verified once, not per chunk).
    bytes[150] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(log.snapshot_chunk(0, 16).unwrap(), data.slice(0..16));
    assert_eq!(log.snapshot_chunk(190, 16).unwrap(), data.slice(190..200));
    // The length needs no read: it is answered even with the file gone.
    fs::remove_file(&path).unwrap();
    assert_eq!(log.snapshot_len().unwrap(), 200);
    fs::write(&path, &bytes).unwrap();
    drop(log);

    // Damaged before an open: the open refuses it.
    bytes[0] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(WalLog::open_with(root.path(), small()), Err(StorageError::Corrupt { .. })));
}
