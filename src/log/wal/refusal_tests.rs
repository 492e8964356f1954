//! Bad directories: each is refused with a typed error that names the file
//! (and offset), and the directory is left byte for byte as it was. Also the
//! crash states that look alike but are legitimate, which open repairs.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use wal_db::{SegmentedStore, Wal, WalStore};

use super::meta::{META_FILE, Meta, MetaState};
use super::tests::{append, temp, tree};
use super::*;
use crate::membership::Membership;

fn opts() -> WalOptions {
    WalOptions::new().segment_size(1024)
}

/// A log with several segments, a snapshot and a compaction behind it.
fn build(dir: &Path) {
    let mut log = WalLog::open_with(dir, opts()).unwrap();
    log.set_identity(LogIdentity { cluster_id: 5, node_id: 1 }).unwrap();
    for _ in 0..10 {
        append(&mut log, 1, 20);
        log.sync().unwrap();
    }
    let meta = SnapshotMeta { index: 100, term: 1, membership: Membership::new([1], []).unwrap() };
    log.install_snapshot(meta, Bytes::from_static(b"snapshot")).unwrap();
    log.sync().unwrap();
    for _ in 0..10 {
        append(&mut log, 2, 20);
        log.sync().unwrap();
    }
}

/// Opens `dir`, expects a refusal, and checks that nothing on disk changed.
fn refused(dir: &Path) -> StorageError {
    refused_with(dir, opts())
}

fn refused_with(dir: &Path, options: WalOptions) -> StorageError {
    let before = tree(dir);
    let err = WalLog::open_with(dir, options).expect_err("the open must be refused");
    assert_eq!(tree(dir), before, "a refused open changed the directory ({err})");
    err
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_directory_of_other_files_is_not_a_log() {
    let root = temp();
    fs::write(root.path().join("notes.txt"), b"hello").unwrap();
    fs::create_dir(root.path().join("wal")).unwrap();
    let err = refused(root.path());
    assert!(matches!(err, StorageError::NotALog { .. }), "{err}");
    assert!(err.to_string().contains("has no raftlog.meta"), "{err}");
}

#[test]
fn a_file_is_not_a_log() {
    let root = temp();
    let file = root.path().join("f");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(WalLog::open(&file), Err(StorageError::NotALog { .. })));
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn an_empty_garbage_or_truncated_meta_file_is_refused() {
    let root = temp();
    build(root.path());
    let meta_path = root.path().join(META_FILE);
    let good = fs::read(&meta_path).unwrap();

    fs::write(&meta_path, b"").unwrap();
    assert!(matches!(refused(root.path()), StorageError::NotALog { .. }));
    fs::write(&meta_path, b"random garbage bytes, not a meta file at all").unwrap();
    assert!(matches!(refused(root.path()), StorageError::NotALog { .. }));
    fs::write(&meta_path, &good[..30]).unwrap();
    let err = refused(root.path());
    assert!(matches!(&err, StorageError::Corrupt { location, .. } if location.ends_with(META_FILE)), "{err}");
    let mut flipped = good.clone();
    flipped[20] ^= 1;
    fs::write(&meta_path, &flipped).unwrap();
    assert!(matches!(refused(root.path()), StorageError::Corrupt { .. }));
    let mut future = good.clone();
    future[8] = 9;
    fs::write(&meta_path, &future).unwrap();
    let err = refused(root.path());
    assert!(matches!(err, StorageError::UnsupportedFormat { found: 9, supported: 2, .. }), "{err}");

    fs::write(&meta_path, &good).unwrap();
    WalLog::open_with(root.path(), opts()).unwrap();
}

/// A meta file or head marker that grew huge (here sparse, a terabyte
/// long) is read only far enough to be refused: it used to be read whole,
/// which at this size cannot even be allocated.
#[test]
fn a_huge_meta_file_or_head_marker_is_refused_without_being_read_whole() {
    let root = temp();
    build(root.path());
    let meta_path = root.path().join(META_FILE);
    let good = fs::read(&meta_path).unwrap();
    let huge = |path: &Path, start: &[u8]| {
        fs::write(path, start).unwrap();
        fs::OpenOptions::new().write(true).open(path).unwrap().set_len(1 << 40).unwrap();
    };
    huge(&meta_path, &good);
    // (Not `refused`: its check that nothing changed reads every file whole.)
    let err = WalLog::open_with(root.path(), opts()).expect_err("a huge meta file");
    assert!(matches!(&err, StorageError::Corrupt { location, .. } if location.ends_with(META_FILE)), "{err}");
    assert_eq!(fs::metadata(&meta_path).unwrap().len(), 1 << 40, "left as it was");
    fs::write(&meta_path, &good).unwrap();
    // wal-db reads the head marker whole when it opens the WAL: a huge one
    // is refused before that.
    let marker = root.path().join("wal").join("head");
    let start = fs::read(&marker).unwrap();
    huge(&marker, &start);
    let err = WalLog::open_with(root.path(), opts()).expect_err("a huge head marker");
    assert!(matches!(&err, StorageError::Corrupt { location, .. } if location.ends_with("head")), "{err}");
    fs::write(&marker, &start).unwrap();
    WalLog::open_with(root.path(), opts()).unwrap();
}

#[test]
fn random_bytes_in_the_middle_of_the_wal_are_refused_with_their_place() {
    let root = temp();
    build(root.path());
    let lsns: Vec<u64> = {
        let wal = Wal::open_segmented(root.path().join("wal"), 1024).unwrap();
        wal.iter().unwrap().map(|r| r.unwrap().lsn().get()).collect()
    };
    let lsn = lsns[lsns.len() / 2];
    let victim = root.path().join(format!("wal/{:020}.wal", lsn / 1024));
    let at = (lsn % 1024) as usize + 12;
    let mut bytes = fs::read(&victim).unwrap();
    for b in &mut bytes[at..at + 4] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    fs::write(&victim, &bytes).unwrap();
    let err = refused(root.path());
    let StorageError::Corrupt { location, reason } = &err else { panic!("{err}") };
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(location.contains(&format!("{name} byte {} (WAL offset {lsn})", lsn % 1024)), "{location}");
    assert!(reason.contains("nothing was changed"), "{reason}");
}

#[test]
fn a_truncated_or_missing_middle_segment_is_refused() {
    let root = temp();
    build(root.path());
    let segs = segments(root.path());
    let victim = &segs[1];
    let bytes = fs::read(victim).unwrap();
    fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let err = refused(root.path());
    assert!(matches!(err, StorageError::SyncedDataLost { .. }) && err.to_string().contains("bytes long"), "{err}");
    fs::remove_file(victim).unwrap();
    let err = refused(root.path());
    assert!(matches!(err, StorageError::SyncedDataLost { .. }) && err.to_string().contains("missing"), "{err}");
}

#[test]
fn missing_segments_or_wal_directory_are_refused() {
    let root = temp();
    build(root.path());
    for s in segments(root.path()) {
        fs::remove_file(s).unwrap();
    }
    let err = refused(root.path());
    assert!(matches!(err, StorageError::SyncedDataLost { .. }) && err.to_string().contains("missing"), "{err}");
    // With nothing recorded as synced past the head (a version 1 meta
    // file), the empty WAL is still refused.
    let meta_path = root.path().join(META_FILE);
    let meta = Meta::decode(&fs::read(&meta_path).unwrap()).unwrap();
    fs::write(&meta_path, Meta { synced_end: meta.head, ..meta }.encode()).unwrap();
    let err = refused(root.path());
    assert!(err.to_string().contains("no record at the WAL head"), "{err}");
    fs::remove_dir_all(root.path().join("wal")).unwrap();
    let err = refused(root.path());
    assert!(err.to_string().contains("WAL directory is missing"), "{err}");
}

#[test]
fn a_lost_or_corrupt_head_marker_is_refused_not_trusted() {
    let root = temp();
    build(root.path());
    let marker = root.path().join("wal/head");
    let good = fs::read(&marker).unwrap();
    fs::remove_file(&marker).unwrap();
    let err = refused(root.path());
    assert!(
        matches!(&err, StorageError::Corrupt { location, reason } if location.ends_with("head") && reason.contains("missing")),
        "{err}"
    );
    fs::write(&marker, &good[..7]).unwrap();
    assert!(refused(root.path()).to_string().contains("corrupt"));
    let mut other = 0u64.to_le_bytes().to_vec();
    other.extend_from_slice(&crate::crc::crc32c(&other).to_le_bytes());
    fs::write(&marker, &other).unwrap();
    assert!(refused(root.path()).to_string().contains("at offset 0"));
    fs::write(&marker, &good).unwrap();
    assert_eq!(WalLog::open_with(root.path(), opts()).unwrap().last_index(), 400);
}

#[test]
fn wal_db_alone_would_have_wiped_this_log() {
    // The trap our head guard exists for (pitfall 1): without the marker,
    // a default wal-db open treats the missing first segment as a torn tail.
    let root = temp();
    build(root.path());
    fs::remove_file(root.path().join("wal/head")).unwrap();
    let copy = temp();
    for (path, bytes) in tree(root.path()) {
        let to = copy.path().join(path.strip_prefix(root.path()).unwrap());
        if bytes.is_empty() && path.is_dir() {
            fs::create_dir_all(&to).unwrap();
        } else {
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(&to, &bytes).unwrap();
        }
    }
    let wal = Wal::open_segmented(copy.path().join("wal"), 1024).unwrap();
    assert_eq!(wal.iter().unwrap().count(), 0, "wal-db cut every record");
    assert!(refused(root.path()).to_string().contains("missing"));
}

#[test]
fn a_lowered_record_limit_is_refused_and_a_raised_one_recorded() {
    let root = temp();
    build(root.path());
    let err = refused_with(root.path(), opts().max_record_size(1 << 20));
    assert!(matches!(err, StorageError::RecordLimitLowered { stored, requested: 1_048_576, .. } if stored == 64 << 20));
    drop(WalLog::open_with(root.path(), opts().max_record_size(128 << 20)).unwrap());
    let err = refused_with(root.path(), opts().max_record_size(super::DEFAULT_MAX_RECORD_SIZE));
    assert!(matches!(err, StorageError::RecordLimitLowered { .. }));
    // Not given, the limit is the log's own: a tool opening a node's log
    // with the defaults leaves it as the node wrote it.
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert_eq!(log.meta.max_record_size, 128 << 20);
}

#[test]
fn a_record_of_an_unknown_format_version_is_refused() {
    let root = temp();
    build(root.path());
    let store = SegmentedStore::open(root.path().join("wal"), 1024).unwrap();
    let head = fs::read(root.path().join("wal/head")).unwrap();
    drop(store);
    let wal = Wal::open_segmented(root.path().join("wal"), 1024).unwrap();
    let lsn = wal.append(&[3, 1, 0]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(fs::read(root.path().join("wal/head")).unwrap(), head);
    let err = refused(root.path());
    assert!(matches!(err, StorageError::UnsupportedFormat { found: 3, supported: 2, .. }), "{err}");
    assert!(err.to_string().contains(&format!("WAL offset {}", lsn.get())), "{err}");
}

#[test]
fn an_undecodable_record_is_refused() {
    let root = temp();
    build(root.path());
    let wal = Wal::open_segmented(root.path().join("wal"), 1024).unwrap();
    let _ = wal.append(&[1, 2, 8, 0, 5]).unwrap(); // a batch at index 0
    wal.sync().unwrap();
    drop(wal);
    let err = refused(root.path());
    assert!(err.to_string().contains("undecodable record"), "{err}");
}

#[test]
fn a_missing_or_damaged_snapshot_file_is_refused() {
    let root = temp();
    build(root.path());
    let snap = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "snap"))
        .unwrap();
    let good = fs::read(&snap).unwrap();
    fs::write(&snap, b"snapshoT").unwrap();
    assert!(refused(root.path()).to_string().contains("checksum"));
    fs::write(&snap, b"snap").unwrap();
    assert!(refused(root.path()).to_string().contains("4 bytes"));
    fs::remove_file(&snap).unwrap();
    let err = refused(root.path());
    assert!(matches!(&err, StorageError::Corrupt { location, .. } if location.ends_with(".snap")), "{err}");
    fs::write(&snap, &good).unwrap();
    WalLog::open_with(root.path(), opts()).unwrap();
}

#[test]
fn a_torn_tail_is_cut_and_reported() {
    let root = temp();
    build(root.path());
    let last = segments(root.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let mut f = fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut f, &[0xAB; 13]).unwrap();
    drop(f);
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    let torn = log.recovery_report().torn_tail.clone().unwrap();
    assert_eq!(torn.bytes, 13);
    assert_eq!(torn.segment, last);
    assert_eq!(log.last_index(), 400);
    assert_eq!(fs::metadata(&last).unwrap().len(), len, "cut back to the last record");
}

#[test]
fn a_wal_of_another_node_is_refused() {
    let root = temp();
    build(root.path());
    // Leave a torn tail and an orphan: a refused open must not repair them.
    let last = segments(root.path()).pop().unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut f, &[1; 5]).unwrap();
    fs::write(root.path().join("snapshot-00000000000000000099.snap"), b"orphan").unwrap();
    let other = LogIdentity { cluster_id: 5, node_id: 2 };
    let err = refused_with(root.path(), opts().expect_identity(other));
    assert!(
        matches!(err, StorageError::WrongIdentity { found, expected, .. }
        if found == LogIdentity { cluster_id: 5, node_id: 1 } && expected == other),
        "{err}"
    );
    let other_cluster = LogIdentity { cluster_id: 6, node_id: 1 };
    assert!(matches!(
        refused_with(root.path(), opts().expect_identity(other_cluster)),
        StorageError::WrongIdentity { .. }
    ));
    // Without the option the node does the check (Error::WrongLog); the log
    // reports whose it is.
    let log =
        WalLog::open_with(root.path(), opts().expect_identity(LogIdentity { cluster_id: 5, node_id: 1 })).unwrap();
    assert_eq!(log.identity(), Some(LogIdentity { cluster_id: 5, node_id: 1 }));
}

#[test]
fn wal_log_is_send() {
    fn send<T: Send>() {}
    send::<WalLog>();
    send::<FaultInjector>();
}

#[test]
fn records_that_disagree_on_the_owner_are_refused() {
    let root = temp();
    build(root.path());
    let mut buf = Vec::new();
    let entries: [Entry; 0] = [];
    record::encode_step(
        &mut buf,
        Some(LogIdentity { cluster_id: 5, node_id: 2 }),
        None,
        None,
        Some((301, entries.iter())),
    );
    let wal = Wal::open_segmented(root.path().join("wal"), 1024).unwrap();
    let _ = wal.append(&buf).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert!(refused(root.path()).to_string().contains("different owner"));
}

#[test]
fn an_interrupted_compaction_is_completed() {
    let root = temp();
    build(root.path());
    let meta_path = root.path().join(META_FILE);
    let mut meta = Meta::decode(&fs::read(&meta_path).unwrap()).unwrap();
    assert!(meta.head > 0);
    // The crash hit after our meta recorded the new head and while wal-db
    // rewrote its marker in place (O_TRUNC, then write): it is empty.
    meta.state = MetaState::Compacting;
    fs::write(&meta_path, meta.encode()).unwrap();
    fs::write(root.path().join("wal/head"), b"").unwrap();
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert!(log.recovery_report().completed_compaction);
    assert_eq!(log.last_index(), 400);
    drop(log);
    assert_eq!(Meta::decode(&fs::read(&meta_path).unwrap()).unwrap().state, MetaState::Ready);
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert!(!log.recovery_report().completed_compaction);
}

#[test]
fn an_interrupted_creation_is_completed() {
    let root = temp();
    let meta =
        Meta { state: MetaState::Creating, segment_size: 1024, max_record_size: 64 << 20, head: 0, synced_end: 0 };
    fs::write(root.path().join(META_FILE), meta.encode()).unwrap();
    let log = WalLog::open(root.path()).unwrap();
    assert!(log.recovery_report().completed_creation);
    assert!(!log.recovery_report().created);
    let store = SegmentedStore::open(root.path().join("wal"), 1024).unwrap();
    assert!(store.len().unwrap() > 0, "the anchor checkpoint was written");
}

#[test]
fn indexes_and_terms_that_could_overflow_are_refused() {
    let root = temp();
    build(root.path());
    let mut buf = Vec::new();
    let huge = SnapshotMeta { index: u64::MAX, term: 1, membership: Membership::empty() };
    record::encode_step::<std::slice::Iter<'_, Entry>>(
        &mut buf,
        None,
        None,
        Some((&huge, record::FileRef::EMPTY)),
        None,
    );
    let wal = Wal::open_segmented(root.path().join("wal"), 1024).unwrap();
    let _ = wal.append(&buf).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert!(refused(root.path()).to_string().contains("out of range"));
}

fn is_locked(err: &StorageError, dir: &Path) -> bool {
    matches!(err, StorageError::Locked { path } if *path == dir.display().to_string())
}

/// Two `WalLog`s never share a directory: the second open is refused with
/// `Locked` (naming the directory, changing nothing) until the first is
/// dropped.
#[test]
fn a_second_open_of_a_directory_in_use_is_refused_until_the_first_is_dropped() {
    let root = temp();
    let mut first = WalLog::open_with(root.path(), opts()).unwrap();
    append(&mut first, 1, 3);
    first.sync().unwrap();
    let before = tree(root.path());
    let err = WalLog::open_with(root.path(), opts()).expect_err("the directory is in use");
    assert!(is_locked(&err, root.path()), "{err}");
    assert!(err.to_string().contains(&root.path().display().to_string()), "{err}");
    assert_eq!(tree(root.path()), before, "the refused open changed nothing");
    // The first log works on, undisturbed.
    append(&mut first, 1, 1);
    first.sync().unwrap();
    drop(first);
    let log = WalLog::open_with(root.path(), opts()).expect("the lock went with the first log");
    assert_eq!(log.last_index(), 4);
}

/// The lock is an advisory lock on a file of the directory, so it also
/// excludes another process (here: another open file description holding
/// it, as another process would), and a log directory written before lock
/// files (none present) is locked by its first open.
#[test]
fn the_lock_excludes_other_holders_and_is_created_for_an_older_log() {
    let root = temp();
    build(root.path());
    let lock_path = root.path().join(super::lock::LOCK_FILE);
    fs::remove_file(&lock_path).unwrap();
    // An older log opens (creating the lock file) and holds it.
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert!(lock_path.exists());
    assert!(is_locked(&WalLog::open_with(root.path(), opts()).unwrap_err(), root.path()));
    drop(log);

    let other = fs::OpenOptions::new().read(true).write(true).open(&lock_path).unwrap();
    fs4::FileExt::try_lock(&other).unwrap();
    let err = refused(root.path());
    assert!(is_locked(&err, root.path()), "{err}");
    fs4::FileExt::unlock(&other).unwrap();
    assert_eq!(WalLog::open_with(root.path(), opts()).unwrap().last_index(), 400);
}
