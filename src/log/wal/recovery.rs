//! Opening a log directory: validate everything, then repair what a crash
//! legitimately leaves (a torn last record, an interrupted creation or
//! compaction, orphaned files), then rebuild the in-memory state in one pass.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::faults::FaultInjector;
use super::fsio::{self, io_err, list, read_optional, write_atomic};
use super::lock::{self, DirLock, LOCK_FILE};
use super::meta::{META_FILE, META_VERSION, Meta, MetaError, MetaState, WAL_DIR, WAL_META};
use super::record::{self, FORMAT_VERSION, FileRef, Record, entry_len};
use super::snapshot_file;
use super::state::LogState;
use super::tail::WAL_RECORDS;
use super::wal_files::{check_marker, check_record_limit, corrupt, open_strict, repair, replay, sync_segments};
use super::{WalLog, WalOptions, WalStats, wal_error};
use crate::error::StorageError;
use crate::log::chunked::Chunked;
use crate::types::{HardState, Index, LogIdentity, SnapshotMeta};

/// What [`WalLog::open`] found and did. Everything it repaired is listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The directory held no log, so a fresh one was created.
    pub created: bool,
    /// WAL records replayed.
    pub records: u64,
    /// Live entries recovered.
    pub entries: u64,
    /// An incomplete last record (a crash mid-write) that was cut.
    pub torn_tail: Option<TornTail>,
    /// A creation interrupted by a crash was completed.
    pub completed_creation: bool,
    /// A compaction interrupted by a crash was completed.
    pub completed_compaction: bool,
    /// The meta file was in an older layout (version 1, written before
    /// the synced end was recorded) and was rewritten in the current one.
    pub upgraded_meta: bool,
    /// Orphaned files removed (temporaries, superseded snapshots).
    pub removed_files: Vec<PathBuf>,
}

/// A torn last record cut by recovery. It was never synced, so no
/// acknowledged write was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// WAL offset where the torn record started (the new end of the WAL).
    pub offset: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// The segment file holding `offset`.
    pub segment: PathBuf,
}

/// Indexes and terms above this are refused as corrupt, so that no
/// arithmetic on values read from disk can overflow (the node adds to
/// terms when it campaigns; see [`MAX_TERM`]).
const LIMIT: u64 = crate::types::MAX_TERM;

/// The state rebuilt from the WAL (for the shared WAL: one group's).
#[derive(Clone, Debug)]
pub(crate) struct Replayed {
    pub(crate) identity: Option<LogIdentity>,
    pub(crate) hard: HardState,
    pub(crate) snap: SnapshotMeta,
    pub(crate) file: FileRef,
    pub(crate) entries: Chunked,
    pub(crate) records: u64,
    pub(crate) checkpoint_snap: Index,
    /// Exact record bytes of the live entries ([`entry_len`]).
    pub(crate) live_bytes: u64,
}

impl Replayed {
    /// The state before the first record: nothing.
    pub(crate) fn empty() -> Self {
        Replayed {
            identity: None,
            hard: HardState::default(),
            snap: SnapshotMeta::default(),
            file: FileRef::EMPTY,
            entries: Chunked::default(),
            records: 0,
            checkpoint_snap: 0,
            live_bytes: 0,
        }
    }
}

impl Replayed {
    /// Applies one record by the replay rules (`docs/PROTOCOL.md`, "WAL
    /// format", Replay), or says which rule it breaks.
    pub(crate) fn apply(&mut self, record: Record) -> Result<(), &'static str> {
        match record {
            Record::Checkpoint { identity, hard, snapshot, file, entries } => {
                if self.records == 0 || identity == self.identity || self.identity.is_none() {
                    self.identity = identity;
                } else {
                    return Err("a checkpoint names a different owner than earlier records");
                }
                if entries.iter().any(|e| e.term > LIMIT) {
                    return Err("an index or term is out of range");
                }
                self.hard = hard;
                self.checkpoint_snap = snapshot.index;
                self.snap = snapshot;
                self.file = file;
                self.live_bytes = entries.iter().map(entry_len).sum();
                self.entries = Chunked::from_vec(entries);
            }
            Record::Step { identity, hard, snapshot, entries } => {
                if self.records == 0 {
                    return Err("the record at the WAL head is not a checkpoint");
                }
                if let Some(id) = identity {
                    if self.identity.is_some_and(|old| old != id) {
                        return Err("a record names a different owner than earlier records");
                    }
                    self.identity = Some(id);
                }
                if let Some(hard) = hard {
                    self.hard = hard;
                }
                if let Some((meta, file)) = snapshot {
                    self.install(meta, file)?;
                }
                if let Some((from, batch)) = entries {
                    let last = self.snap.index + self.entries.len() as Index;
                    if from <= self.snap.index || from > last.saturating_add(1) {
                        return Err("an entry batch does not attach to the log");
                    }
                    if batch.iter().any(|e| e.term > LIMIT) {
                        return Err("an index or term is out of range");
                    }
                    let cut = (from - self.snap.index - 1) as usize;
                    let mut removed = 0;
                    self.entries.truncate_with(cut, |e| removed += entry_len(&e));
                    let added: u64 = batch.iter().map(entry_len).sum();
                    self.live_bytes = self.live_bytes.saturating_sub(removed).saturating_add(added);
                    let mut batch = batch;
                    self.entries.append(&mut batch);
                }
            }
        }
        self.records += 1;
        let last = self.snap.index.saturating_add(self.entries.len() as Index);
        if last > LIMIT || self.hard.term > LIMIT || self.hard.commit > LIMIT || self.snap.term > LIMIT {
            return Err("an index or term is out of range");
        }
        Ok(())
    }

    fn install(&mut self, meta: SnapshotMeta, file: FileRef) -> Result<(), &'static str> {
        if meta.index < self.snap.index {
            return Err("a snapshot is older than the one before it");
        }
        if meta.index > LIMIT || meta.term > LIMIT {
            return Err("an index or term is out of range");
        }
        let keep = if meta.index == self.snap.index {
            meta.term == self.snap.term
        } else {
            self.entries.get((meta.index - self.snap.index - 1) as usize).is_some_and(|e| e.term == meta.term)
        };
        let drop =
            if keep { ((meta.index - self.snap.index) as usize).min(self.entries.len()) } else { self.entries.len() };
        let mut removed = 0;
        self.entries.drain_front(drop, |e| {
            removed += entry_len(&e);
            true
        });
        self.live_bytes = self.live_bytes.saturating_sub(removed);
        self.snap = meta;
        self.file = file;
        Ok(())
    }
}

/// Opens (or creates) the log in `dir`, holding its lock.
///
/// The lock is taken first when the directory has a lock file. When it has
/// none (a new directory, or a log written before lock files), the
/// read-only checks run first, so that a refused open still creates
/// nothing; the lock file is created at the first write, and the open then
/// starts over under the lock, since another `WalLog` may have changed the
/// directory in between.
pub(super) fn open(dir: &Path, options: WalOptions) -> Result<WalLog, StorageError> {
    let mut lock = DirLock::existing(dir)?;
    loop {
        let had_lock = lock.is_some();
        match open_locked(dir, &options, lock.take()) {
            Ok(Opening::Done(log)) => return Ok(*log),
            Ok(Opening::NeedsLock) => lock = Some(DirLock::create(dir, options.faults.as_ref())?),
            // Checks made without the lock may have seen another WalLog
            // at work: report that, not what it looked like.
            Err(_) if !had_lock && DirLock::held_elsewhere(dir) => return Err(lock::locked(dir)),
            Err(e) => return Err(e),
        }
    }
}

/// What one pass of [`open_locked`] came to.
enum Opening {
    Done(Box<WalLog>),
    /// The directory must be written to, so the lock must be held first.
    NeedsLock,
}

/// One pass of [`open`]: with `lock` held, or (`None`) only until the
/// first write would be needed.
fn open_locked(dir: &Path, options: &WalOptions, lock: Option<DirLock>) -> Result<Opening, StorageError> {
    let faults = options.faults.clone();
    let f = faults.as_ref();
    let mut report = RecoveryReport::default();

    // 1. The directory and its meta file.
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Created together with its lock file.
            if lock.is_none() {
                return Ok(Opening::NeedsLock);
            }
            fsio::create_dir_all(dir, f)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(not_a_log(dir, "a component of its path is not a directory"));
        }
        Err(e) => return Err(io_err("reading metadata of", dir, e)),
        Ok(m) if !m.is_dir() => return Err(not_a_log(dir, "it is not a directory")),
        Ok(_) => {}
    }
    let meta_path = dir.join(META_FILE);
    let mut meta_version = META_VERSION;
    let meta = match read_optional(&meta_path)? {
        None => {
            // A crash while the meta file of a new log was written leaves
            // only its temporary: the directory is still new. (The lock
            // file does not count.)
            let tmp = format!("{META_FILE}.tmp");
            let mut names = list(dir)?;
            names.retain(|n| n != LOCK_FILE);
            if (names.is_empty() || names == [tmp.as_str()]) && lock.is_none() {
                return Ok(Opening::NeedsLock);
            }
            if names == [tmp.as_str()] {
                let path = dir.join(&tmp);
                fsio::remove_file(&path, f)?;
                report.removed_files.push(path);
                names.clear();
            }
            if !names.is_empty() {
                names.sort();
                return Err(not_a_log(
                    dir,
                    format!("the directory is not empty (it holds {:?}) and has no {META_FILE}", names[0]),
                ));
            }
            let meta = Meta {
                state: MetaState::Creating,
                segment_size: options.segment_size,
                max_record_size: options.max_record_size.unwrap_or(super::DEFAULT_MAX_RECORD_SIZE),
                head: 0,
                synced_end: 0,
            };
            write_atomic(dir, META_FILE, &meta.encode(), f)?;
            report.created = true;
            Ok(meta)
        }
        Some(bytes) => Meta::decode_versioned(&bytes).map(|(meta, version)| {
            meta_version = version;
            meta
        }),
    };
    let mut meta = meta.map_err(|e| match e {
        MetaError::NotOurs => not_a_log(dir, format!("{} is not a raft-io meta file", meta_path.display())),
        MetaError::Version(found) => StorageError::UnsupportedFormat {
            location: meta_path.display().to_string(),
            found,
            supported: META_VERSION,
        },
        MetaError::Corrupt(reason) => corrupt(meta_path.display().to_string(), reason),
    })?;

    // 2. The record size limit may only grow (not given: the log's own).
    let record_limit = options.max_record_size.unwrap_or(meta.max_record_size);
    check_record_limit(dir, &meta, record_limit)?;

    // 3. The WAL directory and wal-db's head marker.
    let wal_dir = dir.join(WAL_DIR);
    if !wal_dir.is_dir() {
        if meta.state != MetaState::Creating {
            return Err(corrupt(wal_dir.display().to_string(), "the WAL directory is missing"));
        }
        if lock.is_none() {
            return Ok(Opening::NeedsLock);
        }
        fsio::create_dir(&wal_dir, f)?;
    }
    check_marker(&wal_dir, &meta, WAL_META)?;

    // 4. wal-db's strict open over our store (which writes nothing yet).
    let segment_size = meta.segment_size;
    let opened = open_strict(&wal_dir, &meta, record_limit, faults.clone(), &WAL_RECORDS)?;
    let wal = &opened.wal;

    // 5. Replay.
    let mut state = Replayed::empty();
    let versions = [record::FORMAT_V1, FORMAT_VERSION];
    replay(wal, &wal_dir, &meta, &versions, record::version, record::decode, |r| state.apply(r))?;
    snapshot_file::verify(dir, state.file)?;
    if let (Some(found), Some(expected)) = (state.identity, options.expect_identity) {
        if found != expected {
            return Err(StorageError::WrongIdentity { path: dir.display().to_string(), found, expected });
        }
    }

    // ---- Every check passed. From here on, repairs may write. ----
    let Some(lock) = lock else { return Ok(Opening::NeedsLock) };
    // First make durable what a crashed process may have left in the page
    // cache: the data just validated is about to be served and repaired
    // around (a cut, a removed orphan), and must not vanish in a power loss.
    sync_existing(dir, &wal_dir, segment_size, meta.head, state.file, f)?;
    let (torn, completed) = repair(&opened, dir, &wal_dir, &mut meta, WAL_META, f)?;
    report.torn_tail = torn;
    report.completed_compaction = completed;
    let mut stats = WalStats::default();
    if state.records == 0 {
        // A fresh log: its first record is an empty checkpoint (the anchor).
        let mut buf = Vec::new();
        record::encode_checkpoint(&mut buf, None, &state.hard, &state.snap, state.file, [].iter());
        let _anchor = wal.append(&buf).map_err(wal_error)?;
        wal.sync().map_err(wal_error)?;
        stats.records += 1;
        stats.syncs += 1;
        stats.checkpoints += 1;
    }
    fsio::fsync_dir(&wal_dir, f)?;
    let upgrade = meta_version != META_VERSION;
    if meta.state == MetaState::Creating || record_limit > meta.max_record_size || upgrade {
        report.completed_creation = meta.state == MetaState::Creating && !report.created;
        report.upgraded_meta = upgrade;
        meta.state = MetaState::Ready;
        meta.max_record_size = record_limit;
        // Everything in the WAL is synced by now (above, or the anchor).
        meta.synced_end = wal.len();
        write_atomic(dir, META_FILE, &meta.encode(), f)?;
    }

    // Orphans: temporaries and snapshot files the log does not refer to.
    let mut next_snap_id = state.file.id + 1;
    for name in list(dir)? {
        let orphan = match snapshot_file::parse_name(&name) {
            Some(id) => {
                next_snap_id = next_snap_id.max(id.saturating_add(1));
                id != state.file.id
            }
            None => name.ends_with(".tmp"),
        };
        if orphan {
            let path = dir.join(&name);
            fsio::remove_file(&path, f)?;
            report.removed_files.push(path);
        }
    }

    report.records = state.records;
    report.entries = state.entries.len() as u64;
    Ok(Opening::Done(Box::new(WalLog {
        _lock: lock,
        dir: dir.to_path_buf(),
        wal_dir,
        dir_synced_segment: wal.len().saturating_sub(1) / segment_size,
        wal: Arc::new(opened.wal),
        shared: opened.shared,
        meta,
        state: LogState::new(state.identity, state.hard, state.snap, state.file, state.entries, state.live_bytes),
        checkpoint_snap: state.checkpoint_snap,
        garbage_floor: 0,
        next_snap_id,
        buf: Vec::new(),
        async_writes: None,
        instance: open_instance(),
        prefer_sync_thread: options.sync_thread,
        synced_to: 0,
        halted: None,
        report,
        stats,
    })))
}

/// fsyncs every segment file from the head's segment to the last, the
/// snapshot file `file`, the WAL directory and the log directory. Run by
/// every open before any repair: the previous process may have crashed
/// before syncing what it wrote, and recovery must not build on (or
/// acknowledge, or delete files because of) data a power loss could still
/// take away.
fn sync_existing(
    dir: &Path,
    wal_dir: &Path,
    segment_size: u64,
    head: u64,
    file: FileRef,
    f: Option<&FaultInjector>,
) -> Result<(), StorageError> {
    sync_segments(wal_dir, segment_size, head, f)?;
    if file.id != 0 {
        fsio::fsync_file(&dir.join(snapshot_file::file_name(file.id)), f)?;
    }
    fsio::fsync_dir(wal_dir, f)?;
    fsio::fsync_dir(dir, f)
}

fn not_a_log(dir: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::NotALog { path: dir.display().to_string(), reason: reason.into() }
}

/// A value that differs between opens ([`RaftLog::instance`]): the process,
/// the time, and the standard library's per-process random hash keys.
pub(crate) fn open_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::types::{Entry, Term};
    use proptest::prelude::*;

    fn empty() -> Replayed {
        Replayed::empty()
    }

    fn normal(term: Term, index: Index) -> Entry {
        Entry::normal(term, index, Bytes::from_static(b"x"))
    }

    /// The state after a checkpoint whose snapshot ends at `snap` (term 1)
    /// followed by entries `snap + 1 ..= snap + n` of the given terms.
    fn after_checkpoint(snap: Index, terms: &[Term]) -> Replayed {
        let mut state = empty();
        let entries = terms.iter().zip(snap + 1..).map(|(&t, i)| normal(t, i)).collect();
        let snapshot = SnapshotMeta { index: snap, term: 1, ..SnapshotMeta::default() };
        let hard = HardState { term: 3, vote: None, commit: snap };
        state
            .apply(Record::Checkpoint { identity: None, hard, snapshot, file: FileRef::EMPTY, entries })
            .expect("a checkpoint");
        state
    }

    fn step_entries(from: Index, entries: Vec<Entry>) -> Record {
        Record::Step { identity: None, hard: None, snapshot: None, entries: Some((from, entries)) }
    }

    fn terms(state: &Replayed) -> Vec<(Index, Term)> {
        state.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn an_entry_batch_attaches_after_the_snapshot_and_at_most_one_past_the_last_entry() {
        // Snapshot at 5, entries 6 and 7.
        for from in [0, 1, 5, 9, 100] {
            let mut state = after_checkpoint(5, &[1, 1]);
            let batch = vec![normal(2, from.max(1))];
            assert_eq!(
                state.apply(step_entries(from, batch)),
                Err("an entry batch does not attach to the log"),
                "a batch from {from}"
            );
            assert_eq!(terms(&state), [(6, 1), (7, 1)], "a refused batch changes nothing");
        }
        // From 6 (everything after the snapshot replaced), 7 (the last
        // replaced) and 8 (appended).
        for (from, expect) in [(6, vec![(6, 2)]), (7, vec![(6, 1), (7, 2)]), (8, vec![(6, 1), (7, 1), (8, 2)])] {
            let mut state = after_checkpoint(5, &[1, 1]);
            state.apply(step_entries(from, vec![normal(2, from)])).unwrap();
            assert_eq!(terms(&state), expect, "a batch from {from}");
        }
    }

    #[test]
    fn an_entry_term_past_the_limit_is_refused_in_a_step_and_in_a_checkpoint() {
        let mut state = after_checkpoint(0, &[1]);
        assert_eq!(state.apply(step_entries(2, vec![normal(LIMIT, 2)])), Ok(()));
        for term in [LIMIT + 1, u64::MAX] {
            let mut state = after_checkpoint(0, &[1]);
            assert_eq!(state.apply(step_entries(2, vec![normal(term, 2)])), Err("an index or term is out of range"));
            let mut fresh = empty();
            let checkpoint = Record::Checkpoint {
                identity: None,
                hard: HardState::default(),
                snapshot: SnapshotMeta::default(),
                file: FileRef::EMPTY,
                entries: vec![normal(1, 1), normal(term, 2)],
            };
            assert_eq!(fresh.apply(checkpoint), Err("an index or term is out of range"));
        }
    }

    #[test]
    fn a_snapshot_keeps_the_entries_after_it_only_when_its_term_matches_the_log() {
        let snapshot = |term| Record::Step {
            identity: None,
            hard: None,
            snapshot: Some((SnapshotMeta { index: 2, term, ..SnapshotMeta::default() }, FileRef::EMPTY)),
            entries: None,
        };
        // Entries 1..=3 at term 1: a snapshot at 2 of term 1 is that log's
        // prefix, and entry 3 follows it.
        let mut state = after_checkpoint(0, &[1, 1, 1]);
        state.apply(snapshot(1)).unwrap();
        assert_eq!(terms(&state), [(3, 1)]);
        assert_eq!(state.live_bytes, entry_len(&normal(1, 3)));
        // A snapshot at 2 of term 2 is another history: nothing after it is kept.
        let mut state = after_checkpoint(0, &[1, 1, 1]);
        state.apply(snapshot(2)).unwrap();
        assert_eq!(terms(&state), []);
        assert_eq!((state.snap.index, state.snap.term, state.live_bytes), (2, 2, 0));
    }

    proptest! {
        /// Whatever bytes a record holds, replay refuses or applies them;
        /// it never panics.
        #[test]
        fn replaying_arbitrary_records_never_panics(records in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..20)
        ) {
            let mut state = empty();
            let mut buf = Vec::new();
            record::encode_checkpoint(&mut buf, None, &HardState::default(), &SnapshotMeta::default(), FileRef::EMPTY, [].iter());
            let anchor = record::decode(&Bytes::from(buf)).unwrap();
            state.apply(anchor).unwrap();
            for raw in records {
                // Give most inputs a valid version and kind so they get past the first bytes.
                let mut payload = vec![FORMAT_VERSION, 2];
                payload.extend_from_slice(&raw);
                for bytes in [payload, raw] {
                    if let Ok(rec) = record::decode(&Bytes::from(bytes)) {
                        let _ = state.apply(rec);
                    }
                }
            }
        }
    }
}
