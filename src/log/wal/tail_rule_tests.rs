//! The tail rule (see `tail`): a damaged last record is a torn tail, cut
//! and reported, whatever its payload holds and wherever a hole lies in it,
//! while damage followed by an intact record is refused. Each torn state
//! here is what a crash during the last step's write leaves: the record
//! partly on disk and the meta file as it was before the step (whose sync
//! never returned, so the log never recorded the record as synced).

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::meta::META_FILE;
use super::tests::{append, temp, tree};
use super::*;

fn refused_with(dir: &Path, options: WalOptions) -> StorageError {
    let before = tree(dir);
    let err = match WalLog::open_with(dir, options) {
        Ok(log) => panic!("the open must be refused; it opened with {:?}", log.recovery_report()),
        Err(e) => e,
    };
    assert_eq!(tree(dir), before, "a refused open changed the directory ({err})");
    err
}

/// The meta file of the log in `dir` now.
fn meta_of(dir: &Path) -> Vec<u8> {
    fs::read(dir.join(META_FILE)).unwrap()
}

/// Drops `log` and puts back the meta file it had before its last step,
/// `before`: the state a crash during that step's sync leaves (the step's
/// record may then be torn, which the caller does).
fn crash_in_last_step(log: WalLog, before: &[u8]) {
    let dir = log.dir().to_path_buf();
    drop(log);
    fs::write(dir.join(META_FILE), before).unwrap();
}

/// A wal-db frame (`crc32c | len | payload`) that checks out, to embed in a
/// record's payload.
fn valid_frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut covered = len.to_vec();
    covered.extend_from_slice(payload);
    let mut frame = crate::crc::crc32c(&covered).to_le_bytes().to_vec();
    frame.extend_from_slice(&covered);
    frame
}

/// An entry whose data holds a valid-looking frame after `before` bytes.
fn entry_with_frame(index: Index, before: usize, after: usize) -> Entry {
    let mut data = vec![0x55; before];
    data.extend(valid_frame(b"not a record, only looks like one"));
    data.extend(vec![0x66; after]);
    Entry::normal(1, index, Bytes::from(data))
}

fn set_len(path: &Path, len: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// A log of entries 1..=5, synced, then entry 6 holding `entry` appended
/// in a step that crashed during its sync, with the record's last 100
/// bytes lost. Returns the directory, where the torn record starts and
/// ends, and its segment.
fn torn_sixth_entry(entry: Entry) -> (tempfile::TempDir, u64, u64, PathBuf) {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    append(&mut log, 1, 5);
    log.sync().unwrap();
    let start = log.wal.len();
    let before = meta_of(root.path());
    log.append(&mut vec![entry]).unwrap();
    log.sync().unwrap();
    let end = log.wal.len();
    crash_in_last_step(log, &before);
    let segment = root.path().join(format!("wal/{:020}.wal", 0));
    set_len(&segment, end - 100);
    (root, start, end, segment)
}

/// The tail rule: a damaged last record is a torn tail even when its
/// payload holds bytes that form an intact wal-db frame (wal-db's strict
/// scan alone would find that "frame" and refuse the log as damaged
/// mid-log): it is not a raft-io record.
#[test]
fn a_torn_last_record_whose_payload_holds_a_frame_is_a_torn_tail() {
    // The crash kept the embedded frame but not the record's last 100 bytes.
    let (root, start, end, segment) = torn_sixth_entry(entry_with_frame(6, 40, 300));

    let log = WalLog::open(root.path()).expect("a torn tail, not mid-log damage");
    let torn = log.recovery_report().torn_tail.clone().expect("reported");
    assert_eq!((torn.offset, torn.bytes, torn.segment), (start, end - 100 - start, segment.clone()));
    assert_eq!(log.last_index(), 5);
    assert_eq!(all_entries(&log), (1..=5).map(|i| super::tests::e(1, i)).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&segment).unwrap().len(), start, "cut back to the last intact record");
}

/// A command a client chose can make every tenth byte of the torn record
/// look like the start of a record claiming the next 200 KB (the version
/// and kind bytes, a length that fits): the open still cuts the torn tail,
/// after a scan linear in the bytes (`tail`'s unit tests count them).
/// Checking each such candidate on its own read about 38 GB here (the
/// whole test took 2.2 s in release, 0.3 s now), and the cost grew with
/// the square of the record's size.
#[test]
fn a_torn_record_whose_command_is_built_to_slow_the_scan_is_cut() {
    let mut data = super::tail::hostile(2 << 20, 200_000);
    // And one intact wal-db frame, which makes wal-db's strict scan stop
    // at the torn record and leave the verdict to the tail rule.
    data.extend(valid_frame(b"not a record"));
    data.extend([0x66; 300]);
    let (root, start, _, segment) = torn_sixth_entry(Entry::normal(1, 6, Bytes::from(data)));

    let log = WalLog::open(root.path()).expect("a torn tail");
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(log.last_index(), 5);
    assert_eq!(fs::metadata(&segment).unwrap().len(), start, "cut back to the last intact record");
}

/// wal-db's own strict scan, which runs first, reads near each candidate's
/// start and near the end it claims. With claims longer than the open's
/// read-ahead window, each of those reads used to refill the window (two
/// window-sized reads per candidate, a candidate every ten bytes: minutes
/// for a 5 MB command in the build that ships). The window now only moves
/// forward, and a read behind it goes to the file directly: what the
/// window reads stays within twice the log's bytes.
#[test]
fn claims_longer_than_the_read_ahead_window_do_not_refill_it_per_candidate() {
    let window = 256 << 10; // `store::READ_AHEAD` in unit tests
    let data = super::tail::hostile(2 * window, window as u32 + (window as u32 / 4));
    let (root, start, _, segment) = torn_sixth_entry(Entry::normal(1, 6, Bytes::from(data)));
    let wal_bytes = fs::metadata(&segment).unwrap().len();

    let log = WalLog::open(root.path()).expect("a torn tail");
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(fs::metadata(&segment).unwrap().len(), start, "cut back to the last intact record");
    let refilled = log.shared.refilled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        refilled <= 2 * wal_bytes + 2 * window as u64,
        "the read-ahead window read {refilled} bytes for a log of {wal_bytes}"
    );
}

/// Damage that does not reach the end is still refused, frame or not.
#[test]
fn a_damaged_record_before_the_last_is_still_refused() {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    log.append(&mut vec![entry_with_frame(1, 40, 300)]).unwrap();
    log.sync().unwrap();
    let start = log.wal.len();
    append(&mut log, 1, 5);
    log.sync().unwrap();
    drop(log);
    let segment = root.path().join(format!("wal/{:020}.wal", 0));
    let mut bytes = fs::read(&segment).unwrap();
    bytes[start as usize - 3] ^= 0xff; // inside the previous record
    fs::write(&segment, &bytes).unwrap();
    let err = refused_with(root.path(), WalOptions::new());
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

fn all_entries(log: &WalLog) -> Vec<Entry> {
    let mut out = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut out).unwrap();
    out
}

const SPAN_SEGMENT: u64 = 256;

/// Writes steps of one entry until the last record starts inside segment N
/// (with its whole header and a few payload bytes there) and ends in
/// segment N + 1, then crashes in that step (see [`crash_in_last_step`]).
/// Returns the record's start and end offsets and the index of its entry.
fn log_ending_in_a_spanning_record(dir: &Path, with_frame: bool) -> (u64, u64, Index) {
    let mut log = WalLog::open_with(dir, WalOptions::new().segment_size(SPAN_SEGMENT)).unwrap();
    loop {
        let start = log.wal.len();
        let before = meta_of(dir);
        let index = log.last_index() + 1;
        let entry = if with_frame { entry_with_frame(index, 8, 60) } else { super::tests::e(1, index) };
        log.append(&mut vec![entry]).unwrap();
        log.sync().unwrap();
        let end = log.wal.len();
        let (first, last) = (start / SPAN_SEGMENT, (end - 1) / SPAN_SEGMENT);
        if first != last && start % SPAN_SEGMENT + 16 <= SPAN_SEGMENT && end % SPAN_SEGMENT > 4 {
            crash_in_last_step(log, &before);
            return (start, end, index);
        }
    }
}

fn segment_of(dir: &Path, offset: u64) -> PathBuf {
    dir.join(format!("wal/{:020}.wal", offset / SPAN_SEGMENT))
}

/// A record spanning segments N and N + 1 whose part in N was lost (N is
/// short: a hole) while N + 1 reached the disk: no intact record follows, so
/// it is a torn tail.
#[test]
fn a_torn_record_with_a_hole_at_the_end_of_its_first_segment_is_cut() {
    let root = temp();
    let (start, end, index) = log_ending_in_a_spanning_record(root.path(), false);
    let first = segment_of(root.path(), start);
    let second = segment_of(root.path(), end - 1);
    set_len(&first, start % SPAN_SEGMENT + 8 + 2);

    let log = WalLog::open_with(root.path(), WalOptions::new().segment_size(SPAN_SEGMENT)).expect("a torn tail");
    let torn = log.recovery_report().torn_tail.clone().expect("reported");
    assert_eq!((torn.offset, torn.segment), (start, first.clone()));
    assert_eq!(torn.bytes, end - start, "up to the end of the written data");
    let last = log.last_index();
    assert_eq!(last, index - 1, "exactly the torn record is cut");
    assert_eq!(all_entries(&log), (1..=last).map(|i| super::tests::e(1, i)).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&first).unwrap().len(), start % SPAN_SEGMENT);
    assert!(!second.exists(), "the segment past the cut is removed");
    drop(log);
    let log = WalLog::open_with(root.path(), WalOptions::new().segment_size(SPAN_SEGMENT)).unwrap();
    assert!(log.recovery_report().torn_tail.is_none());
    assert_eq!(log.last_index(), last);
}

/// The record's first segment is complete and the last segment is torn
/// (shorter than the record), and the part that survived holds a
/// valid-looking frame: still a torn tail.
#[test]
fn a_torn_record_in_the_last_segment_after_a_complete_one_is_cut() {
    let root = temp();
    let (start, end, index) = log_ending_in_a_spanning_record(root.path(), true);
    let first = segment_of(root.path(), start);
    let second = segment_of(root.path(), end - 1);
    assert_eq!(fs::metadata(&first).unwrap().len(), SPAN_SEGMENT);
    set_len(&second, end % SPAN_SEGMENT - 4);

    let log = WalLog::open_with(root.path(), WalOptions::new().segment_size(SPAN_SEGMENT)).expect("a torn tail");
    let torn = log.recovery_report().torn_tail.clone().expect("reported");
    assert_eq!((torn.offset, torn.bytes), (start, end - 4 - start));
    assert_eq!(log.last_index(), index - 1, "exactly the torn record is cut");
    let indexes: Vec<Index> = all_entries(&log).iter().map(|e| e.index).collect();
    assert_eq!(indexes, (1..index).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&first).unwrap().len(), start % SPAN_SEGMENT);
}

/// The same spanning record, but the write into segment N was lost
/// entirely: N ends exactly where the record starts (its header is in the
/// hole) while N + 1 reached the disk. Nothing intact follows: a torn tail.
#[test]
fn a_torn_spanning_record_whose_header_is_in_the_hole_is_cut() {
    let root = temp();
    let (start, end, index) = log_ending_in_a_spanning_record(root.path(), false);
    let first = segment_of(root.path(), start);
    assert!(segment_of(root.path(), end - 1).exists());
    set_len(&first, start % SPAN_SEGMENT);

    let log = WalLog::open_with(root.path(), WalOptions::new().segment_size(SPAN_SEGMENT)).expect("a torn tail");
    assert_eq!(log.recovery_report().torn_tail.as_ref().map(|t| t.offset), Some(start));
    assert_eq!(log.last_index(), index - 1);
}

/// A bit flip in the length of a synced (acknowledged) record that is not
/// the last one: its declared length now reaches past the end of the log,
/// but an intact record follows it, so it is damage in the middle — refused, never
/// cut, and the directory is left as it was.
#[test]
fn a_bit_flip_in_the_length_of_a_synced_record_is_refused_not_cut() {
    let root = temp();
    let mut log = WalLog::open(root.path()).unwrap();
    append(&mut log, 1, 5);
    log.sync().unwrap();
    let start = log.wal.len();
    append(&mut log, 1, 1); // entry 6, synced: acknowledged
    log.sync().unwrap();
    append(&mut log, 1, 1); // entry 7, synced: acknowledged
    log.sync().unwrap();
    drop(log);
    // Bit 16 of entry 6's record length: +64 KiB, within max_record_size.
    let segment = root.path().join("wal/00000000000000000000.wal");
    let mut bytes = fs::read(&segment).unwrap();
    bytes[start as usize + 6] ^= 0x01;
    fs::write(&segment, &bytes).unwrap();

    let before = tree(root.path());
    let err = refused_with(root.path(), WalOptions::new());
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert_eq!(tree(root.path()), before);
}
