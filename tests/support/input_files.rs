//! What the inputs of `wal_dir_input.rs` (a `WalLog` directory) and
//! `shared_wal_input.rs` (a `SharedWal` directory) have in common: the
//! decoding of arbitrary bytes into files (each names its files), the
//! directory trees, and the image of a recovered log. Included by those two
//! files as a module of their own.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use raft_io::{Entry, HardState, LogIdentity, RaftLog, SnapshotMeta};

/// The files an input describes, by relative path, named by `file_name`.
pub fn decode(mut data: &[u8], file_name: impl Fn(u8) -> String) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    while let [selector, rest @ ..] = data {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (0, &[][..]),
        };
        let len = len.min(rest.len());
        files.insert(file_name(*selector), rest[..len].to_vec());
        data = &rest[len..];
    }
    files
}

/// The input describing `files` (each at most 65 535 bytes), in the order
/// given. Names must be ones `file_name` produces.
pub fn encode<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>, file_name: impl Fn(u8) -> String) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        let selector = (0..=255u8).find(|&s| file_name(s) == name).expect("a name the format can express");
        let len = u16::try_from(bytes.len()).expect("at most 64 KiB");
        out.push(selector);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Every file under `dir` (relative path with `/`, bytes), directories as
/// empty entries ending in `/`.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                out.insert(format!("{name}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(name, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Writes `files` under `dir` (which must exist and be empty).
pub fn write_tree(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
    }
}

/// Everything a node reads from a recovered log.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    identity: Option<LogIdentity>,
    hard: HardState,
    snapshot: SnapshotMeta,
    snapshot_data: Vec<u8>,
    entries: Vec<Entry>,
}

impl Image {
    /// The state in a line: hard state, snapshot and the live entries.
    pub fn summary(&self) -> String {
        let (first, last) = match (self.entries.first(), self.entries.last()) {
            (Some(first), Some(last)) => (first.index, last.index),
            _ => (self.snapshot.index + 1, self.snapshot.index),
        };
        format!(
            "{:?}, snapshot at {} (term {}), entries {first}..={last}",
            self.hard, self.snapshot.index, self.snapshot.term
        )
    }
}

/// Reads a whole log through the `RaftLog` contract, checking it is
/// self-consistent.
pub fn image(log: &impl RaftLog) -> Image {
    let (first, last) = (log.first_index(), log.last_index());
    assert_eq!(first, log.snapshot_meta().index + 1);
    assert_eq!(log.term(log.snapshot_meta().index), Some(log.snapshot_meta().term));
    let mut entries = Vec::new();
    log.entries(first, last + 1, u64::MAX, &mut entries).expect("the live entries are readable");
    assert_eq!(entries.len() as u64, last + 1 - first);
    for (e, i) in entries.iter().zip(first..) {
        assert_eq!(e.index, i);
        assert_eq!(log.term(i), Some(e.term));
    }
    assert_eq!(log.term(last + 1), None);
    let data = log.snapshot_data().expect("the snapshot is readable");
    assert_eq!(log.snapshot_len().expect("snapshot length"), data.len() as u64);
    Image {
        identity: log.identity(),
        hard: log.hard_state(),
        snapshot: log.snapshot_meta().clone(),
        snapshot_data: data.to_vec(),
        entries,
    }
}

/// How an open of arbitrary bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with a typed error; the directory is unchanged.
    Refused,
    /// Opened (perhaps after repairing a crash state) and passed every check.
    Opened,
}

/// A fresh scratch directory under `base`.
pub fn scratch(base: &Path, n: u64) -> PathBuf {
    let dir = base.join(format!("case-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
