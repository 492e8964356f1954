//! Opening a shared WAL directory: validate everything (the meta file, the
//! WAL with `WalLog`'s tail rule and synced-end check, every record by the
//! replay rules, every group's snapshot file), then sync what a crashed
//! process may have left unsynced, then repair (a torn last record, an
//! interrupted creation or compaction, orphaned files and the snapshot
//! directories of removed groups).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::GroupId;
use super::inner::{Files, GROUPS_DIR, GroupCell, Inner, SHARED_META, Slot, group_dir_name, remove_group_dir};
use super::options::{SharedRecoveryReport, SharedWalOptions, SharedWalStats};
use super::record::{self, FORMAT_VERSION, Op, SHARED_RECORDS, SharedRecord};
use crate::error::StorageError;
use crate::log::wal::FaultInjector;
use crate::log::wal::fsio::{self, list, read_optional, write_atomic};
use crate::log::wal::lock::{DirLock, LOCK_FILE};
use crate::log::wal::meta::{META_VERSION, Meta, MetaError, MetaState, WAL_DIR};
use crate::log::wal::record::Record;
use crate::log::wal::recovery::{Replayed, open_instance};
use crate::log::wal::snapshot_file;
use crate::log::wal::state::LogState;
use crate::log::wal::wal_error;
use crate::log::wal::wal_files::{
    check_marker, check_record_limit, corrupt, open_strict, repair, replay, sync_segments,
};

/// The groups rebuilt from the WAL.
struct State {
    groups: BTreeMap<GroupId, Replayed>,
    records: u64,
    /// Whether a whole checkpoint has been read (the WAL head's).
    based: bool,
    /// A checkpoint written in parts, read up to some part: the next part
    /// expected, the part count, and the groups so far.
    parts: Option<(u64, u64, BTreeMap<GroupId, Replayed>)>,
}

/// `groups` of a checkpoint (or part) rebuilt, added to `into` (group ids
/// increasing across the parts).
fn rebuild(groups: Vec<(GroupId, Record)>, into: &mut BTreeMap<GroupId, Replayed>) -> Result<(), String> {
    for (id, state) in groups {
        if into.last_key_value().is_some_and(|(&last, _)| last >= id) {
            return Err(format!("group {id} of a checkpoint part is not above the previous part's"));
        }
        let mut g = Replayed::empty();
        g.apply(state).map_err(|r| format!("group {id}: {r}"))?;
        into.insert(id, g);
    }
    Ok(())
}

impl State {
    fn apply(&mut self, record: SharedRecord) -> Result<(), String> {
        if self.parts.is_some() && !matches!(record, SharedRecord::CheckpointPart { part, .. } if part > 1) {
            // A checkpoint cut short by a crash between its parts: it
            // never took effect (the WAL prefix is dropped only once its
            // last part is durable). What follows it was written after a
            // restart, against the state before it.
            if !self.based {
                return Err("the checkpoint at the WAL head is incomplete".into());
            }
            self.parts = None;
        }
        match record {
            SharedRecord::Checkpoint(groups) => {
                let mut rebuilt = BTreeMap::new();
                rebuild(groups, &mut rebuilt)?;
                self.groups = rebuilt;
                self.based = true;
            }
            SharedRecord::CheckpointPart { part, parts, groups } => {
                let (mut next, mut so_far) = match self.parts.take() {
                    None if part == 1 => (1, BTreeMap::new()),
                    Some((next, count, so_far)) if next == part && count == parts => (next, so_far),
                    _ => return Err(format!("checkpoint part {part} of {parts} does not follow its previous part")),
                };
                rebuild(groups, &mut so_far)?;
                next += 1;
                if part == parts {
                    self.groups = so_far;
                    self.based = true;
                } else {
                    self.parts = Some((next, parts, so_far));
                }
            }
            SharedRecord::Batch(ops) => {
                if !self.based {
                    return Err("the record at the WAL head is not a checkpoint".into());
                }
                for (id, op) in ops {
                    match op {
                        Op::Create => {
                            if self.groups.contains_key(&id) {
                                return Err(format!("group {id} is created twice"));
                            }
                            let mut g = Replayed::empty();
                            g.apply(record::empty_group()).map_err(|r| format!("group {id}: {r}"))?;
                            self.groups.insert(id, g);
                        }
                        Op::Step(step) => {
                            let g =
                                self.groups.get_mut(&id).ok_or_else(|| format!("a step names unknown group {id}"))?;
                            g.apply(step).map_err(|r| format!("group {id}: {r}"))?;
                        }
                        Op::Remove => {
                            self.groups.remove(&id).ok_or_else(|| format!("a removal names unknown group {id}"))?;
                        }
                    }
                }
            }
        }
        self.records += 1;
        Ok(())
    }
}

fn not_a_log(dir: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::NotALog { path: dir.display().to_string(), reason: reason.into() }
}

/// Whether `dir` may become a new shared WAL: it does not exist, or holds
/// nothing but a lock file and a temporary meta file.
fn is_new(dir: &Path) -> Result<bool, StorageError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            Err(not_a_log(dir, "a component of its path is not a directory"))
        }
        Err(e) => Err(fsio::io_err("reading metadata of", dir, e)),
        Ok(m) if !m.is_dir() => Err(not_a_log(dir, "it is not a directory")),
        Ok(_) => {
            let tmp = format!("{}.tmp", SHARED_META.name);
            let mut names = list(dir)?;
            names.retain(|n| n != LOCK_FILE && *n != tmp);
            if names.iter().any(|n| n == SHARED_META.name) {
                return Ok(false);
            }
            if let Some(first) = names.iter().min() {
                return Err(not_a_log(
                    dir,
                    format!("the directory is not empty (it holds {first:?}) and has no {}", SHARED_META.name),
                ));
            }
            Ok(true)
        }
    }
}

/// Opens (or creates) the shared WAL in `dir`, holding its lock.
///
/// As `WalLog` does: the lock is taken first when the directory has a lock
/// file; when it has none, the read-only checks run first, so that a
/// refused open creates nothing, and the open starts over under the lock
/// at the first write it needs.
pub(super) fn open(dir: &Path, options: &SharedWalOptions) -> Result<Inner, StorageError> {
    let mut lock = DirLock::existing(dir)?;
    loop {
        let had_lock = lock.is_some();
        match open_locked(dir, options, lock.take()) {
            Ok(Some(inner)) => return Ok(inner),
            Ok(None) => lock = Some(DirLock::create(dir, options.faults.as_ref())?),
            // Checks made without the lock may have seen another open at
            // work: report that, not what it looked like.
            Err(_) if !had_lock && DirLock::held_elsewhere(dir) => {
                return Err(StorageError::Locked { path: dir.display().to_string() });
            }
            Err(e) => return Err(e),
        }
    }
}

/// One pass of [`open`]: with `lock` held, or (`None`) only until the
/// first write would be needed (then `Ok(None)`).
fn open_locked(dir: &Path, options: &SharedWalOptions, lock: Option<DirLock>) -> Result<Option<Inner>, StorageError> {
    let faults = options.faults.clone();
    let f = faults.as_ref();
    let mut report = SharedRecoveryReport::default();

    // 1. The meta file.
    let meta_path = dir.join(SHARED_META.name);
    let mut meta = match read_optional(&meta_path)? {
        None => {
            is_new(dir)?;
            if lock.is_none() {
                return Ok(None);
            }
            let tmp = dir.join(format!("{}.tmp", SHARED_META.name));
            if tmp.exists() {
                fsio::remove_file(&tmp, f)?;
                report.removed_files.push(tmp);
            }
            let meta = Meta {
                state: MetaState::Creating,
                segment_size: options.segment_size,
                max_record_size: options.max_record_size.unwrap_or(crate::log::wal::DEFAULT_MAX_RECORD_SIZE),
                head: 0,
                synced_end: 0,
            };
            write_atomic(dir, SHARED_META.name, &meta.encode_as(SHARED_META), f)?;
            report.created = true;
            meta
        }
        Some(bytes) => match Meta::decode_as(&bytes, SHARED_META) {
            Ok((meta, META_VERSION)) => meta,
            Ok((_, found)) | Err(MetaError::Version(found)) => {
                return Err(StorageError::UnsupportedFormat {
                    location: meta_path.display().to_string(),
                    found,
                    supported: META_VERSION,
                });
            }
            Err(MetaError::NotOurs) => {
                return Err(not_a_log(dir, format!("{} is not a shared WAL meta file", meta_path.display())));
            }
            Err(MetaError::Corrupt(reason)) => return Err(corrupt(meta_path.display().to_string(), reason)),
        },
    };

    // 2. The record size limit may only grow (not given: the log's own).
    let record_limit = options.max_record_size.unwrap_or(meta.max_record_size);
    check_record_limit(dir, &meta, record_limit)?;

    // 3. The WAL and group directories, and wal-db's head marker.
    let wal_dir = dir.join(WAL_DIR);
    let groups_dir = dir.join(GROUPS_DIR);
    for sub in [&wal_dir, &groups_dir] {
        if !sub.is_dir() {
            if meta.state != MetaState::Creating {
                return Err(corrupt(sub.display().to_string(), "the directory is missing"));
            }
            if lock.is_none() {
                return Ok(None);
            }
            fsio::create_dir(sub, f)?;
        }
    }
    check_marker(&wal_dir, &meta, SHARED_META)?;

    // 4. wal-db's strict open with the tail rule and the synced end.
    let segment_size = meta.segment_size;
    let opened = open_strict(&wal_dir, &meta, record_limit, faults.clone(), &SHARED_RECORDS)?;

    // 5. Replay.
    let mut state = State { groups: BTreeMap::new(), records: 0, based: false, parts: None };
    let version = |payload: &[u8]| payload.first().copied();
    replay(&opened.wal, &wal_dir, &meta, &[FORMAT_VERSION], version, record::decode, |r| state.apply(r))?;
    if state.parts.is_some() && !state.based {
        return Err(corrupt(wal_dir.display().to_string(), "the checkpoint at the WAL head is incomplete"));
    }
    for (id, g) in &state.groups {
        snapshot_file::verify(&groups_dir.join(group_dir_name(*id)), g.file)?;
    }

    // ---- Every check passed. From here on, repairs may write. ----
    let Some(lock) = lock else { return Ok(None) };
    // First make durable what a crashed process may have left unsynced.
    sync_segments(&wal_dir, segment_size, meta.head, f)?;
    for (id, g) in &state.groups {
        if g.file.id != 0 {
            let group_dir = groups_dir.join(group_dir_name(*id));
            fsio::fsync_file(&group_dir.join(snapshot_file::file_name(g.file.id)), f)?;
            fsio::fsync_dir(&group_dir, f)?;
        }
    }
    fsio::fsync_dir(&wal_dir, f)?;
    fsio::fsync_dir(&groups_dir, f)?;
    fsio::fsync_dir(dir, f)?;
    let (torn, completed) = repair(&opened, dir, &wal_dir, &mut meta, SHARED_META, f)?;
    report.torn_tail = torn;
    report.completed_compaction = completed;
    let mut stats = SharedWalStats::default();
    if state.records == 0 {
        // A fresh log: its first record is a checkpoint of no group.
        let mut buf = Vec::new();
        record::encode_empty_checkpoint(&mut buf);
        let _anchor = opened.wal.append(&buf).map_err(wal_error)?;
        opened.wal.sync().map_err(wal_error)?;
        stats.records += 1;
        stats.syncs += 1;
        stats.checkpoints += 1;
    }
    fsio::fsync_dir(&wal_dir, f)?;
    if meta.state == MetaState::Creating || record_limit > meta.max_record_size {
        report.completed_creation = meta.state == MetaState::Creating && !report.created;
        meta.state = MetaState::Ready;
        meta.max_record_size = record_limit;
        meta.synced_end = opened.wal.len();
        write_atomic(dir, SHARED_META.name, &meta.encode_as(SHARED_META), f)?;
    }

    let next_snap_ids = remove_orphans(dir, &groups_dir, &state.groups, f, &mut report)?;
    report.records = state.records;
    report.groups = state.groups.len() as u64;
    let groups = state
        .groups
        .into_iter()
        .enumerate()
        .map(|(n, (id, image))| {
            let next_snap_id = next_snap_ids.get(&id).copied().unwrap_or(1).max(image.file.id + 1);
            let state =
                LogState::new(image.identity, image.hard, image.snap, image.file, image.entries, image.live_bytes);
            let slot = Slot {
                cell: GroupCell::new(state),
                staged_live: image.live_bytes,
                incarnation: n as u64 + 1,
                checked_out: false,
                next_snap_id,
                staged_token: None,
                durable_token: None,
            };
            (id, slot)
        })
        .collect();
    let files =
        Files { dir: dir.to_path_buf(), wal_dir, groups_dir, wal: opened.wal, shared: opened.shared, _lock: lock };
    Ok(Some(Inner::new(files, meta, groups, report, stats, open_instance())))
}

/// Removes temporaries, the snapshot directories of groups that do not
/// exist, and snapshot files no live group refers to. Returns, per live
/// group, the snapshot file id after the highest found.
fn remove_orphans(
    dir: &Path,
    groups_dir: &Path,
    groups: &BTreeMap<GroupId, Replayed>,
    f: Option<&FaultInjector>,
    report: &mut SharedRecoveryReport,
) -> Result<BTreeMap<GroupId, u64>, StorageError> {
    for name in list(dir)? {
        if name.ends_with(".tmp") {
            let path = dir.join(&name);
            fsio::remove_file(&path, f)?;
            report.removed_files.push(path);
        }
    }
    let mut next = BTreeMap::new();
    for name in list(groups_dir)? {
        let path = groups_dir.join(&name);
        let live = name.parse::<GroupId>().ok().filter(|id| name == group_dir_name(*id)).and_then(|id| {
            let g = groups.get(&id)?;
            Some((id, g))
        });
        let Some((id, g)) = live.filter(|_| path.is_dir()) else {
            if path.is_dir() {
                remove_group_dir(&path, f)?;
            } else {
                fsio::remove_file(&path, f)?;
            }
            report.removed_files.push(path);
            continue;
        };
        let mut highest = g.file.id;
        for file in list(&path)? {
            let orphan = match snapshot_file::parse_name(&file) {
                Some(n) => {
                    highest = highest.max(n);
                    n != g.file.id
                }
                None => true,
            };
            if orphan {
                let p = path.join(&file);
                fsio::remove_file(&p, f)?;
                report.removed_files.push(p);
            }
        }
        next.insert(id, highest.saturating_add(1));
    }
    fsio::fsync_dir(groups_dir, f)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State { groups: BTreeMap::new(), records: 0, based: false, parts: None }
    }

    fn groups(ids: &[GroupId]) -> Vec<(GroupId, Record)> {
        ids.iter().map(|&id| (id, record::empty_group())).collect()
    }

    fn part(part: u64, parts: u64, ids: &[GroupId]) -> SharedRecord {
        SharedRecord::CheckpointPart { part, parts, groups: groups(ids) }
    }

    fn ids(s: &State) -> Vec<GroupId> {
        s.groups.keys().copied().collect()
    }

    /// The replay rules of a checkpoint in parts (PROTOCOL.md, "Shared WAL
    /// format", Replay 1–2), record by record, including the records a
    /// checkpoint cut short may be followed by: a batch, a whole
    /// checkpoint, a new first part.
    #[test]
    fn a_checkpoint_in_parts_takes_effect_at_its_last_part_and_one_cut_short_is_ignored() {
        let mut s = state();
        s.apply(part(1, 2, &[1, 2])).unwrap();
        assert!(ids(&s).is_empty(), "not before its last part");
        s.apply(part(2, 2, &[3])).unwrap();
        assert_eq!(ids(&s), vec![1, 2, 3]);
        // Cut short, then a batch: the batch applies to the state before.
        s.apply(part(1, 3, &[1])).unwrap();
        s.apply(SharedRecord::Batch(vec![(4, Op::Create)])).unwrap();
        assert_eq!(ids(&s), vec![1, 2, 3, 4]);
        // Cut short, then a whole checkpoint.
        s.apply(part(1, 2, &[1])).unwrap();
        s.apply(SharedRecord::Checkpoint(groups(&[7]))).unwrap();
        assert_eq!(ids(&s), vec![7]);
        // Cut short, then a new checkpoint in parts.
        s.apply(part(1, 2, &[1])).unwrap();
        s.apply(part(2, 2, &[2])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids(&s), vec![1, 2], "the parts of one checkpoint");
        s.apply(part(1, 3, &[5])).unwrap();
        s.apply(part(2, 3, &[6])).unwrap();
        s.apply(part(1, 2, &[8])).unwrap();
        s.apply(part(2, 2, &[9])).unwrap();
        assert_eq!(ids(&s), vec![8, 9]);
        // Cut short at the end: without effect.
        s.apply(part(1, 2, &[3])).unwrap();
        assert_eq!(ids(&s), vec![8, 9]);
    }

    #[test]
    fn parts_out_of_order_and_a_head_cut_short_are_refused() {
        let refused = |records: Vec<SharedRecord>| {
            let mut s = state();
            records.into_iter().try_for_each(|r| s.apply(r)).is_err()
        };
        assert!(refused(vec![part(2, 2, &[1])]), "a second part first");
        assert!(refused(vec![part(1, 3, &[1]), part(3, 3, &[2])]), "a part skipped");
        assert!(refused(vec![part(1, 2, &[1]), part(2, 3, &[2])]), "another count");
        assert!(refused(vec![part(1, 2, &[2]), part(2, 2, &[1])]), "group ids going down across parts");
        assert!(refused(vec![part(1, 2, &[1]), SharedRecord::Batch(vec![(4, Op::Create)])]), "a head cut short");
        assert!(refused(vec![part(1, 2, &[1]), part(1, 2, &[1])]), "a head cut short, then a part 1");
        let mut s = state();
        s.apply(part(1, 2, &[1])).unwrap();
        assert!(s.parts.is_some() && !s.based, "the open refuses a head cut short at the end of the WAL");
    }
}
