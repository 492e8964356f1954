//! Lost synced records: a missing segment, or a WAL that ends before the
//! offset the meta file records as synced, is refused with
//! [`StorageError::SyncedDataLost`] (naming the file and offsets, changing
//! nothing), never cut and reported as a torn tail. A genuine torn tail (an
//! unsynced partial record) is still cut and reported, and what cannot be
//! told apart is pinned down here as documented.

use std::fs;
use std::path::{Path, PathBuf};

use super::meta::{META_FILE, Meta};
use super::tests::{append, temp, tree};
use super::*;

const SEGMENT: u64 = 256;

fn opts() -> WalOptions {
    WalOptions::new().segment_size(SEGMENT)
}

/// Steps of two entries each, every one synced, until the log spans at
/// least five segments and its last record started in the last segment
/// (so that segment was created by an earlier step). Returns the WAL
/// offset where the last record starts.
fn build(log: &mut WalLog) -> u64 {
    loop {
        let start = log.wal.len();
        append(log, 1, 2);
        log.sync().unwrap();
        let end = log.wal.len();
        if end / SEGMENT >= 5 && start / SEGMENT == (end - 1) / SEGMENT && start % SEGMENT > 0 {
            return start;
        }
    }
}

fn segment(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("wal/{index:020}.wal"))
}

fn last_segment(dir: &Path) -> (u64, PathBuf) {
    let mut names: Vec<String> =
        fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.retain(|n| n.ends_with(".wal"));
    names.sort();
    let index: u64 = names.last().unwrap().trim_end_matches(".wal").parse().unwrap();
    (index, segment(dir, index))
}

/// Opens `dir`, expects a refusal for lost synced records naming `file`,
/// and checks that nothing on disk changed.
fn refused_as_loss(dir: &Path, file: &Path) -> StorageError {
    let before = tree(dir);
    let err = match WalLog::open_with(dir, opts()) {
        Ok(log) => panic!("lost synced records must be refused; opened with {:?}", log.recovery_report()),
        Err(e) => e,
    };
    assert_eq!(tree(dir), before, "a refused open changed the directory ({err})");
    let file = file.display().to_string();
    assert!(
        matches!(&err, StorageError::SyncedDataLost { location, .. } if location.contains(&file)),
        "want SyncedDataLost at {file}, got: {err}"
    );
    err
}

/// A log closed cleanly (dropped), then a crash-free "power loss" that
/// takes the last segment file with it: all of its records were synced.
#[test]
fn a_deleted_last_segment_after_a_clean_close_is_refused_not_cut() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), opts()).unwrap();
    build(&mut log);
    let last = log.last_index();
    drop(log);
    let (_, victim) = last_segment(root.path());
    let bytes = fs::read(&victim).unwrap();
    fs::remove_file(&victim).unwrap();
    let err = refused_as_loss(root.path(), &victim);
    assert!(err.to_string().contains("missing"), "{err}");
    fs::write(&victim, &bytes).unwrap();
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert_eq!(log.last_index(), last);
    assert!(log.recovery_report().torn_tail.is_none());
}

/// The same without a clean close (the process died after its last
/// sync): the meta file recorded the last segment when a step created it.
#[test]
fn a_deleted_last_segment_after_a_crash_is_refused_not_cut() {
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
    build(&mut log);
    faults.crash_now(); // nothing more reaches the disk, not even at drop
    drop(log);
    let (_, victim) = last_segment(root.path());
    fs::remove_file(&victim).unwrap();
    refused_as_loss(root.path(), &victim);
}

/// A segment in the middle is missing: refused, with or without a clean
/// close, and whatever follows it.
#[test]
fn a_deleted_middle_segment_is_refused() {
    for clean in [true, false] {
        let root = temp();
        let faults = FaultInjector::new();
        let mut log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
        build(&mut log);
        if !clean {
            faults.crash_now();
        }
        drop(log);
        let (last, _) = last_segment(root.path());
        let victim = segment(root.path(), last - 2);
        fs::remove_file(&victim).unwrap();
        refused_as_loss(root.path(), &victim);
        // Also when it and everything after it are gone.
        for index in last - 1..=last {
            fs::remove_file(segment(root.path(), index)).unwrap();
        }
        refused_as_loss(root.path(), &victim);
    }
}

/// After a clean close the meta file records the synced end: a last
/// segment cut exactly at a record boundary (no damaged record at all), or
/// a damaged last record, is refused, not taken for a crash before a sync.
#[test]
fn a_cut_or_damaged_last_record_after_a_clean_close_is_refused() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), opts()).unwrap();
    let start = build(&mut log);
    drop(log);
    let (_, victim) = last_segment(root.path());
    let bytes = fs::read(&victim).unwrap();
    let at = (start % SEGMENT) as usize;

    fs::write(&victim, &bytes[..at]).unwrap();
    refused_as_loss(root.path(), &victim);
    fs::write(&victim, &bytes[..bytes.len() - 1]).unwrap();
    refused_as_loss(root.path(), &victim);
    let mut flipped = bytes.clone();
    flipped[at + 10] ^= 0x20;
    fs::write(&victim, &flipped).unwrap();
    refused_as_loss(root.path(), &victim);

    fs::write(&victim, &bytes).unwrap();
    assert!(WalLog::open_with(root.path(), opts()).unwrap().recovery_report().torn_tail.is_none());
}

/// A genuine torn tail: the process died during a step's write, before its
/// sync, and a power loss kept part of it. Cut and reported as before,
/// with every synced record kept, also when the torn record started a new
/// segment.
#[test]
fn an_unsynced_partial_record_is_still_a_torn_tail() {
    for roll in [false, true] {
        let root = temp();
        let faults = FaultInjector::new();
        let mut log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
        build(&mut log);
        if roll {
            while log.wal.len() % SEGMENT < SEGMENT - 40 {
                append(&mut log, 1, 1);
                log.sync().unwrap();
            }
        }
        let synced = log.last_index();
        let start = log.wal.len();
        append(&mut log, 1, 6);
        faults.crash_after(faults.operations() + 1); // the write lands, its sync fails
        assert!(log.sync().is_err());
        drop(log);
        let unsynced = faults.unsynced_bytes();
        assert!(!roll || (start + unsynced - 1) / SEGMENT > start / SEGMENT, "the record spans two segments");
        faults.lose_unsynced(unsynced - 3).unwrap();

        let log = WalLog::open_with(root.path(), opts()).expect("a torn tail opens");
        let torn = log.recovery_report().torn_tail.clone().expect("and is reported");
        assert_eq!((torn.offset, torn.bytes), (start, unsynced - 3));
        assert_eq!(log.last_index(), synced);
    }
}

/// What cannot be told apart (docs/PROTOCOL.md): after an unclean shutdown,
/// the last segment cut exactly at a record boundary past the synced end
/// the meta file recorded (when the segment was created) looks like a
/// crash before the sync of the records cut. It opens without them.
#[test]
fn after_a_crash_a_cut_at_a_record_boundary_past_the_recorded_end_opens_without_them() {
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
    let start = build(&mut log);
    let before_last = log.last_index() - 2;
    faults.crash_now();
    drop(log);
    let (_, victim) = last_segment(root.path());
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..(start % SEGMENT) as usize]).unwrap();
    let log = WalLog::open_with(root.path(), opts()).expect("indistinguishable from a crash before the sync");
    assert_eq!(log.last_index(), before_last);
    assert!(log.recovery_report().torn_tail.is_none());
}

/// A meta file in the layout of version 1 (before the synced end), as
/// builds before it wrote it: the first 40 bytes of version 2 with the
/// version set to 1, then their CRC-32C.
fn version_1(meta: &Meta) -> Vec<u8> {
    let mut b = meta.encode()[..40].to_vec();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&crate::crc::crc32c(&b).to_le_bytes());
    b
}

/// A version 1 meta file opens (nothing is known synced past its head, so
/// losses behind it go unnoticed, as before) and is rewritten in the
/// current layout with the synced end it now knows; from then on a lost
/// segment is refused.
#[test]
fn a_version_1_meta_file_opens_and_is_upgraded() {
    let root = temp();
    let mut log = WalLog::open_with(root.path(), opts()).unwrap();
    build(&mut log);
    let (last, end) = (log.last_index(), log.wal.len());
    drop(log);
    let meta_path = root.path().join(META_FILE);
    let meta = Meta::decode(&fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(meta.synced_end, end, "the clean close recorded the end");
    fs::write(&meta_path, version_1(&meta)).unwrap();

    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert!(log.recovery_report().upgraded_meta);
    assert_eq!(log.last_index(), last);
    assert_eq!(fs::read(&meta_path).unwrap(), meta.encode(), "rewritten as version 2, with the synced end");
    drop(log);
    let log = WalLog::open_with(root.path(), opts()).unwrap();
    assert!(!log.recovery_report().upgraded_meta);
    drop(log);
    let (_, victim) = last_segment(root.path());
    fs::remove_file(&victim).unwrap();
    refused_as_loss(root.path(), &victim);
}

/// The meta file is rewritten only when the synced end must move: after a
/// step that starts a new segment, at compaction and at close. Any other
/// step is still one write and one sync.
#[test]
fn the_meta_file_is_rewritten_only_when_a_step_starts_a_segment_and_at_close() {
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
    faults.record_operations();
    let mut rolls = 0;
    for _ in 0..40 {
        // The segment of the last byte written (there is always one: the
        // anchor record).
        let (ops, segment) = (faults.recorded().len(), (log.wal.len() - 1) / SEGMENT);
        append(&mut log, 1, 2);
        log.sync().unwrap();
        let step = faults.recorded()[ops..].to_vec();
        if (log.wal.len() - 1) / SEGMENT > segment {
            rolls += 1;
            let wal_dir = format!("fsync of directory {}", root.path().join("wal").display());
            let dir = format!("fsync of directory {}", root.path().display());
            let meta = ["write of a temporary file", "fsync of a temporary file", "rename", &dir];
            assert_eq!(step[..3], ["writing a record", "syncing the log", &wal_dir]);
            assert_eq!(step[3..], meta, "the meta file replaced");
        } else {
            assert_eq!(step, ["writing a record", "syncing the log"]);
        }
    }
    assert!(rolls >= 3, "{rolls} steps started a segment");
    let ops = faults.recorded().len();
    log.sync().unwrap();
    assert_eq!(faults.recorded().len(), ops, "an idle sync writes nothing");
    let end = log.wal.len();
    log.close().unwrap();
    assert_eq!(faults.recorded().len(), ops + 4, "close records the synced end: {:#?}", &faults.recorded()[ops..]);
    assert_eq!(Meta::decode(&fs::read(root.path().join(META_FILE)).unwrap()).unwrap().synced_end, end);
    let log = WalLog::open_with(root.path(), opts().fault_injector(faults.clone())).unwrap();
    let ops = faults.recorded().len();
    drop(log);
    assert_eq!(faults.recorded().len(), ops, "nothing to record at a close with nothing written");
}
