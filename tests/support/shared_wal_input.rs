//! Arbitrary bytes as a `SharedWal` directory, and the checks every open
//! of one must pass. Shared by the cargo-fuzz target `shared_wal_recovery`
//! (`fuzz/fuzz_targets/shared_wal_recovery.rs`) and the stable proptest
//! `tests/shared_wal_recovery_props.rs`, so both test the same thing.
//!
//! # Input format
//!
//! A sequence of files, each `selector: u8, len: u16 LE, bytes[len]` (a
//! short last file takes what is left). `selector % 8` names the file and
//! `selector / 8` (0 to 31) numbers it where a name needs a number (`n`;
//! group directories are numbered `n % 4 + 1`, snapshot files `n / 4`):
//!
//! | % 8 | file |
//! |---|---|
//! | 0 | `sharedwal.meta` |
//! | 1 | `sharedwal.meta.tmp` |
//! | 2 | `wal/head` |
//! | 3 | `wal/{n:020}.wal` (a segment) |
//! | 4 | `groups/{g:020}/snapshot-{m:020}.snap` |
//! | 5 | `groups/{g:020}/snapshot-receiving.tmp` |
//! | 6 | `raftlog.lock` |
//! | 7 | `wal/{n + 32:020}.wal` (a far segment) |
//!
//! A later file with the same name replaces an earlier one.
#![allow(dead_code)]

#[path = "input_files.rs"]
mod input_files;

use input_files::image;
pub use input_files::{Image, Outcome, read_tree, scratch, write_tree};

use std::collections::BTreeMap;
use std::path::Path;

use raft_io::log::shared::{GroupId, SharedWal};
use raft_io::{Entry, RaftLog, StorageError};

/// The file a selector byte names.
pub fn file_name(selector: u8) -> String {
    let n = u64::from(selector / 8);
    let (g, m) = (n % 4 + 1, n / 4);
    match selector % 8 {
        0 => "sharedwal.meta".into(),
        1 => "sharedwal.meta.tmp".into(),
        2 => "wal/head".into(),
        3 => format!("wal/{n:020}.wal"),
        4 => format!("groups/{g:020}/snapshot-{m:020}.snap"),
        5 => format!("groups/{g:020}/snapshot-receiving.tmp"),
        6 => "raftlog.lock".into(),
        _ => format!("wal/{:020}.wal", n + 32),
    }
}

/// The files an input describes, by relative path.
pub fn decode(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    input_files::decode(data, file_name)
}

/// The input describing `files` (each at most 65 535 bytes). Names must
/// be ones [`file_name`] produces.
pub fn encode<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    input_files::encode(files, file_name)
}

/// Every group of an open shared WAL.
pub fn images(wal: &SharedWal) -> BTreeMap<GroupId, Image> {
    wal.groups().into_iter().map(|id| (id, image(&wal.group(id).expect("a live group opens")))).collect()
}

/// Writes the directory `data` describes into the empty directory
/// `scratch` and opens it as a shared WAL. Never panics unless `SharedWal`
/// breaks a promise:
///
/// * a refused open leaves the directory exactly as it was;
/// * every group of an opened log is self-consistent, and opening it again
///   (recovery is idempotent) finds the same groups with nothing left to
///   repair;
/// * the recovered log takes a write (to an existing group and to a new
///   one) that survives another reopen.
pub fn check(data: &[u8], scratch: &Path) -> Outcome {
    check_against(data, scratch, &[])
}

/// [`check`], and when the log opens, its groups must be one of `synced`
/// (unless that is empty).
pub fn check_against(data: &[u8], scratch: &Path, synced: &[BTreeMap<GroupId, Image>]) -> Outcome {
    write_tree(scratch, &decode(data));
    let before = read_tree(scratch);
    let wal = match SharedWal::open(scratch) {
        Ok(wal) => wal,
        Err(e) => {
            assert!(!matches!(e, StorageError::Io { .. } | StorageError::Halted { .. }), "{e}");
            assert_eq!(read_tree(scratch), before, "a refused open ({e}) changed the directory");
            return Outcome::Refused;
        }
    };
    let first = images(&wal);
    assert!(
        synced.is_empty() || synced.contains(&first),
        "the log opened without records that were synced (report: {:?})",
        wal.recovery_report()
    );
    drop(wal);
    let wal = SharedWal::open(scratch).expect("a repaired log opens again");
    let report = wal.recovery_report();
    assert!(
        report.torn_tail.is_none()
            && report.removed_files.is_empty()
            && !report.completed_creation
            && !report.completed_compaction,
        "the second open repaired something: {report:?}"
    );
    assert_eq!(images(&wal), first, "the second open found another state");
    // The log takes writes: to an existing group, and to a new one.
    let existing = wal.groups().first().copied();
    let mut expect = Vec::new();
    if let Some(id) = existing {
        let mut log = wal.group(id).expect("group");
        let next = log.last_index() + 1;
        let term = log.term(log.last_index()).unwrap_or(0).max(log.hard_state().term);
        log.append(&mut vec![Entry::normal(term, next, "after".into())]).expect("append");
        log.sync().expect("sync");
        expect.push((id, next));
    }
    let fresh = (1..).find(|id| !wal.contains(*id)).expect("a free id");
    let mut log = wal.create_group(fresh).expect("create");
    log.append(&mut vec![Entry::normal(1, 1, "new".into())]).expect("append");
    log.sync().expect("sync");
    expect.push((fresh, 1));
    drop(log);
    drop(wal);
    let wal = SharedWal::open(scratch).expect("reopen after a write");
    for (id, last) in expect {
        assert_eq!(wal.group(id).expect("group").last_index(), last);
    }
    Outcome::Opened
}

/// The shared WAL directory `dir` as an input (the lock file left out).
pub fn dir_input(dir: &Path) -> Vec<u8> {
    let tree = read_tree(dir);
    encode(
        tree.iter()
            .filter(|(n, _)| !n.ends_with('/') && n.as_str() != "raftlog.lock")
            .map(|(n, b)| (n.as_str(), b.as_slice())),
    )
}
