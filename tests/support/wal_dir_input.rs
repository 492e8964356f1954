//! Arbitrary bytes as a `WalLog` directory, and the checks every open of
//! one must pass. Shared by the cargo-fuzz target `wal_recovery`
//! (`fuzz/fuzz_targets/wal_recovery.rs`) and the stable proptest
//! `tests/wal_recovery_props.rs`, so both test the same thing.
//!
//! # Input format
//!
//! A sequence of files, each `selector: u8, len: u16 LE, bytes[len]` (a
//! short last file takes what is left). `selector % 8` names the file and
//! `selector / 8` (0 to 31) numbers it where a name needs a number:
//!
//! | % 8 | file |
//! |---|---|
//! | 0 | `raftlog.meta` |
//! | 1 | `raftlog.meta.tmp` |
//! | 2 | `wal/head` |
//! | 3 | `wal/{n:020}.wal` (a segment) |
//! | 4 | `snapshot-{n:020}.snap` |
//! | 5 | `snapshot-receiving.tmp` |
//! | 6 | `snapshot-{n:020}.snap.tmp` |
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

use raft_io::log::WalOptions;
use raft_io::{Entry, RaftLog, StorageError, WalLog};

/// The file a selector byte names.
pub fn file_name(selector: u8) -> String {
    let n = u64::from(selector / 8);
    match selector % 8 {
        0 => "raftlog.meta".into(),
        1 => "raftlog.meta.tmp".into(),
        2 => "wal/head".into(),
        3 => format!("wal/{n:020}.wal"),
        4 => format!("snapshot-{n:020}.snap"),
        5 => "snapshot-receiving.tmp".into(),
        6 => format!("snapshot-{n:020}.snap.tmp"),
        _ => format!("wal/{:020}.wal", n + 32),
    }
}

/// The files an input describes, by relative path.
pub fn decode(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    input_files::decode(data, file_name)
}

/// The input describing `files` (each at most 65 535 bytes), in the order given. Names must
/// be ones [`file_name`] produces.
pub fn encode<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    input_files::encode(files, file_name)
}

/// Writes the directory `data` describes into the empty directory
/// `scratch` and opens it. Never panics unless `WalLog` breaks a promise:
///
/// * a refused open leaves the directory exactly as it was;
/// * an opened log is self-consistent, and opening it again (recovery is
///   idempotent) finds the same state with nothing left to repair;
/// * the recovered log takes a write that survives another reopen.
pub fn check(data: &[u8], scratch: &Path) -> Outcome {
    check_against(data, scratch, &[])
}

/// The state the log directory `data` describes recovers to (written into
/// the empty directory `scratch`); panics if it does not open.
pub fn recovered(data: &[u8], scratch: &Path) -> Image {
    write_tree(scratch, &decode(data));
    let log = WalLog::open_with(scratch, WalOptions::new()).unwrap_or_else(|e| panic!("the log must open: {e}"));
    image(&log)
}

/// [`check`], and when the log opens, the state it recovers must be one of
/// `synced` (unless that is empty): a log that opens must hold every record
/// that was synced, whatever happened to its files; losing one must make
/// the open refuse.
pub fn check_against(data: &[u8], scratch: &Path, synced: &[Image]) -> Outcome {
    let files = decode(data);
    write_tree(scratch, &files);
    let before = read_tree(scratch);
    let options = WalOptions::new;
    let log = match WalLog::open_with(scratch, options()) {
        Ok(log) => log,
        Err(e) => {
            assert!(!matches!(e, StorageError::Io { .. } | StorageError::Halted { .. }), "{e}");
            assert_eq!(read_tree(scratch), before, "a refused open ({e}) changed the directory");
            return Outcome::Refused;
        }
    };
    let first = image(&log);
    assert!(
        synced.is_empty() || synced.contains(&first),
        "the log opened without records that were synced (report: {:?}):\n got {}\n want one of {:?}",
        log.recovery_report(),
        first.summary(),
        synced.iter().map(Image::summary).collect::<Vec<_>>()
    );
    drop(log);
    let mut log = WalLog::open_with(scratch, options()).expect("a repaired log opens again");
    let report = log.recovery_report();
    assert!(
        report.torn_tail.is_none()
            && report.removed_files.is_empty()
            && !report.completed_creation
            && !report.completed_compaction
            && !report.upgraded_meta,
        "the second open repaired something: {report:?}"
    );
    assert_eq!(image(&log), first, "the second open found another state");
    // The log takes a write.
    let next = log.last_index() + 1;
    let term = log.term(log.last_index()).unwrap_or(0).max(log.hard_state().term);
    log.append(&mut vec![Entry::normal(term, next, "after".into())]).expect("append");
    log.sync().expect("sync");
    drop(log);
    let log = WalLog::open_with(scratch, options()).expect("reopen after a write");
    assert_eq!(log.last_index(), next);
    assert_eq!(log.term(next), Some(term));
    Outcome::Opened
}

/// The committed fixture (`tests/fixtures/wal`) as an input.
pub fn fixture_input(root: &Path) -> Vec<u8> {
    dir_input(&root.join("tests/fixtures/wal"))
}

/// The log directory `dir` as an input.
pub fn dir_input(dir: &Path) -> Vec<u8> {
    let tree = read_tree(dir);
    encode(tree.iter().filter(|(n, _)| !n.ends_with('/')).map(|(n, b)| (n.as_str(), b.as_slice())))
}
