//! What the crash tests of [`WalLog`](super::WalLog)
//! (`src/log/wal/crash_tests.rs`) and of the shared WAL
//! (`src/log/shared/crash_tests.rs`) have in common: the calls a run makes
//! on a log, the image of what a restarted node reads from one, the copy of
//! a crashed directory, and the tear points tried in its unsynced bytes.

use std::fs;
use std::path::Path;

use bytes::Bytes;

use crate::error::StorageError;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::types::{Entry, HardState, Index, LogIdentity, NodeId, SnapshotMeta, Term};

/// The WAL segment size of the crash tests (small, so that records span
/// segments).
pub(crate) const SEGMENT: u64 = 256;

/// Whether `RAFT_IO_SOAK` asks for the long runs.
pub(crate) fn soak() -> bool {
    std::env::var_os("RAFT_IO_SOAK").is_some()
}

/// A concrete call on a log.
#[derive(Clone, Debug)]
pub(crate) enum Call {
    Identity(LogIdentity),
    Hard(HardState),
    Append(Vec<Entry>),
    Truncate(Index),
    Snapshot(SnapshotMeta, Bytes),
    Receive(SnapshotMeta, Bytes, usize),
    Sync,
}

/// Makes `call` on `log`.
pub(crate) fn apply(log: &mut impl RaftLog, call: &Call) -> Result<(), StorageError> {
    match call {
        Call::Identity(id) => log.set_identity(*id),
        Call::Hard(h) => log.set_hard_state(*h),
        Call::Append(es) => log.append(&mut es.clone()),
        Call::Truncate(from) => log.truncate(*from),
        Call::Snapshot(meta, data) => log.install_snapshot(meta.clone(), data.clone()),
        Call::Receive(meta, data, chunk) => {
            log.begin_snapshot_receive(meta, data.len() as u64)?;
            for (k, part) in data.chunks(*chunk).enumerate() {
                log.receive_snapshot_chunk((k * chunk) as u64, part)?;
            }
            log.finish_snapshot_receive()
        }
        Call::Sync => log.sync(),
    }
}

/// A random call on a log, made valid for the log's state by [`resolve`].
#[derive(Clone, Debug)]
pub(crate) enum LogGen {
    Append { n: u8, bump: bool, len: u8 },
    Truncate { back: u8 },
    Snapshot { ahead: u8, matching: bool },
    Receive { ahead: u8, chunk: u8 },
    Hard { vote: Option<NodeId> },
}

/// The call `g` stands for on `log` (its model) as it is now; snapshots
/// carry `snapshot_data(index, term)`.
pub(crate) fn resolve(log: &impl RaftLog, g: &LogGen, snapshot_data: fn(Index, Term) -> Bytes) -> Call {
    let last = log.last_index();
    let last_term = log.term(last).unwrap_or(0);
    let snap = log.snapshot_meta().index;
    match *g {
        LogGen::Append { n, bump, len } => {
            Call::Append(entries(last + 1, last_term + u64::from(bump), u64::from(n), usize::from(len)))
        }
        LogGen::Truncate { back } => Call::Truncate(last.saturating_sub(u64::from(back)).max(snap + 1)),
        LogGen::Snapshot { ahead, matching } => {
            let index = snap + u64::from(ahead);
            let term = if matching { log.term(index).unwrap_or(last_term + 1) } else { last_term + 1 };
            Call::Snapshot(meta(index, term), snapshot_data(index, term))
        }
        LogGen::Receive { ahead, chunk } => {
            let (index, term) = (snap + u64::from(ahead), last_term + 1);
            Call::Receive(meta(index, term), snapshot_data(index, term), usize::from(chunk))
        }
        LogGen::Hard { vote } => {
            let h = log.hard_state();
            Call::Hard(HardState { term: h.term + 1, vote, commit: last })
        }
    }
}

/// Everything a restarted node reads from its log (data as length and
/// checksum, to keep failure messages short).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Image {
    identity: Option<LogIdentity>,
    hard: HardState,
    snapshot: SnapshotMeta,
    data: (usize, u32),
    entries: Vec<(Index, Term, usize, u32)>,
}

pub(crate) fn image(log: &impl RaftLog) -> Image {
    let mut entries = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut entries).unwrap();
    let data = log.snapshot_data().unwrap();
    Image {
        identity: log.identity(),
        hard: log.hard_state(),
        snapshot: log.snapshot_meta().clone(),
        data: (data.len(), crate::crc::crc32c(&data)),
        entries: entries.iter().map(|e| (e.index, e.term, e.data.len(), crate::crc::crc32c(&e.data))).collect(),
    }
}

/// Copies directory `from` (if it exists) to `to`, recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    if !from.exists() {
        return; // the crash came before the directory was made
    }
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            fs::copy(&path, &dest).unwrap();
        }
    }
}

/// Tear points within `unsynced` bytes.
pub(crate) fn keeps(unsynced: u64) -> Vec<u64> {
    if soak() {
        return (0..=unsynced).collect();
    }
    // None, a torn frame header, a torn payload, everything.
    let mut v = vec![0, 5.min(unsynced), unsynced / 2, unsynced];
    v.dedup();
    v
}

/// `n` entries of term `term` from index `first`, each of `len` bytes.
pub(crate) fn entries(first: Index, term: Term, n: u64, len: usize) -> Vec<Entry> {
    (first..first + n).map(|i| Entry::normal(term, i, Bytes::from(vec![i as u8; len]))).collect()
}

/// Snapshot metadata at `index` and `term` with members 1, 2 and 3.
pub(crate) fn meta(index: Index, term: Term) -> SnapshotMeta {
    SnapshotMeta { index, term, membership: Membership::new([1, 2, 3], []).unwrap() }
}
