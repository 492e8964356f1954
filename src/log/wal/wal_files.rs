//! Opening and repairing the segmented wal-db WAL of a log directory: the
//! steps `WalLog` and the shared WAL (`log::shared`) have in common. Each
//! log keeps its own meta file kind ([`MetaFile`]) and record format
//! ([`RecordShape`]); everything else — the head marker check, wal-db's
//! strict open with the tail rule, the synced-end check, the syncs before
//! any repair, the torn-tail cut, the completion of an interrupted
//! compaction — is here, once.

use std::io;
use std::path::Path;
use std::sync::Arc;

use wal_db::{Lsn, OpenPolicy, SegmentedStore, Wal, WalConfig, WalError, WalStore};

use bytes::Bytes;

use super::codec::DecodeError;
use super::faults::{FaultInjector, guarded};
use super::fsio::{self, SMALL_FILE_MAX, io_err, read_optional, write_atomic};
use super::meta::{HEAD_MARKER, Marker, Meta, MetaFile, MetaState, parse_marker};
use super::recovery::TornTail;
use super::segments::{check_synced, list_segments, locate, present_runs, segment_name, segment_path};
use super::store::{Shared, Store};
use super::tail::{self, RecordShape};
use super::wal_error;
use crate::error::StorageError;

/// A WAL opened by [`open_strict`], not repaired yet.
pub(crate) struct OpenedWal {
    /// The WAL, ending before a torn tail (if any).
    pub(crate) wal: Wal<Store>,
    /// The segment files under it.
    pub(crate) seg: Arc<SegmentedStore>,
    /// What the store shares with its log.
    pub(crate) shared: Arc<Shared>,
    /// The WAL's length on disk, torn tail included.
    pub(crate) written: u64,
}

pub(crate) fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt { location: location.into(), reason: reason.into() }
}

/// Refuses a wal-db head marker that disagrees with the meta file `meta`
/// (of kind `file`), outside state *compacting*.
pub(crate) fn check_marker(wal_dir: &Path, meta: &Meta, file: MetaFile) -> Result<(), StorageError> {
    let marker_path = wal_dir.join(HEAD_MARKER);
    let bytes = read_optional(&marker_path)?;
    if bytes.as_ref().is_some_and(|b| b.len() as u64 > SMALL_FILE_MAX) {
        // Damage: wal-db, which opens the WAL next, would read it whole.
        return Err(corrupt(
            marker_path.display().to_string(),
            format!("the segment head marker is over {SMALL_FILE_MAX} bytes long (it holds 12)"),
        ));
    }
    let marker = parse_marker(bytes.as_deref());
    if meta.state == MetaState::Compacting {
        return Ok(());
    }
    let ok = match marker {
        Marker::Absent => meta.head == 0,
        Marker::Head(h) => h == meta.head,
        Marker::Corrupt => false,
    };
    if ok {
        return Ok(());
    }
    let found = match marker {
        Marker::Absent => "missing".to_string(),
        Marker::Corrupt => "corrupt".to_string(),
        Marker::Head(h) => format!("at offset {h}"),
    };
    Err(corrupt(
        marker_path.display().to_string(),
        format!("the segment head marker is {found}, but {} records head {}", file.name, meta.head),
    ))
}

/// wal-db's strict open over our store (which writes nothing yet): every
/// segment holding synced records must be there in full, a damaged record
/// is a torn tail only when no intact record of `shape` follows it (the
/// tail rule), and the intact records must reach the synced end.
pub(crate) fn open_strict(
    wal_dir: &Path,
    meta: &Meta,
    max_record_size: u32,
    faults: Option<FaultInjector>,
    shape: &RecordShape,
) -> Result<OpenedWal, StorageError> {
    let segment_size = meta.segment_size;
    let seg = Arc::new(SegmentedStore::open(wal_dir, segment_size).map_err(wal_error)?);
    let written = seg.len().map_err(wal_error)?;
    let segments = list_segments(wal_dir)?;
    // Every segment that holds records the meta file records as synced
    // must be there in full: a missing one is lost data, not a torn tail.
    check_synced(&segments, wal_dir, segment_size, meta.head, meta.synced_end)?;
    let present = present_runs(&segments, segment_size, written);
    let shared = Shared::new(meta.head, faults);
    let config = WalConfig::new().with_max_record_size(max_record_size).with_open_policy(OpenPolicy::Strict);
    let open_wal = || Wal::with_store_and_config(Store::new(Arc::clone(&seg), Arc::clone(&shared)), config);
    let wal = match open_wal() {
        Ok(wal) => wal,
        // wal-db's strict scan refused a damaged record because it found
        // what looks like an intact frame after it, or could not read past
        // it. With one record per sync only the last record can be torn, so
        // unless an intact record follows it (then it is damage in the
        // middle, refused), it is the torn tail (see `tail`). wal-db
        // reopens the WAL as if it ended at the record (the cut itself
        // waits, like any repair).
        Err(WalError::Corruption { offset, .. })
            if !tail::intact_record_after(&seg, &present, offset, max_record_size, shape).map_err(wal_error)? =>
        {
            shared.cut_at(offset);
            open_wal().map_err(|e| open_error(e, wal_dir, segment_size))?
        }
        Err(e) => return Err(open_error(e, wal_dir, segment_size)),
    };
    // Intact records must reach the synced end: a record below it that is
    // damaged or missing was synced, so it is lost data, not a torn tail.
    if wal.len() < meta.synced_end {
        return Err(StorageError::SyncedDataLost {
            location: locate(wal_dir, segment_size, wal.len()),
            synced_end: meta.synced_end,
            reason: format!(
                "the intact records end here, {} bytes short (a damaged or missing record)",
                meta.synced_end - wal.len()
            ),
        });
    }
    Ok(OpenedWal { wal, seg, shared, written })
}

/// fsyncs every segment file from the head's segment to the last: what a
/// crashed process may have left in the page cache must be durable before
/// recovery builds on it.
pub(crate) fn sync_segments(
    wal_dir: &Path,
    segment_size: u64,
    head: u64,
    f: Option<&FaultInjector>,
) -> Result<(), StorageError> {
    let head_segment = head / segment_size;
    for s in list_segments(wal_dir)?.iter().filter(|s| s.index >= head_segment) {
        fsio::fsync_file(&wal_dir.join(segment_name(s.index)), f)?;
    }
    Ok(())
}

/// The repairs of the WAL once every check passed (and what it holds was
/// synced): cuts a torn tail, attaches the fault injector, and completes an
/// interrupted compaction (rewriting the meta file, of kind `file`, in
/// `dir`). Returns the torn tail cut, and whether a compaction was
/// completed.
pub(crate) fn repair(
    opened: &OpenedWal,
    dir: &Path,
    wal_dir: &Path,
    meta: &mut Meta,
    file: MetaFile,
    faults: Option<&FaultInjector>,
) -> Result<(Option<TornTail>, bool), StorageError> {
    let OpenedWal { wal, seg, shared, written } = opened;
    let mut torn = None;
    if let Some(cut) = shared.finish_open() {
        guarded(faults, "cut of a torn tail", || seg.truncate(cut).and_then(|()| seg.sync()).map_err(io::Error::other))
            .map_err(|e| io_err("cutting the torn tail of", wal_dir, e))?;
        torn = Some(TornTail {
            offset: cut,
            bytes: written.saturating_sub(cut),
            segment: segment_path(wal_dir, meta.segment_size, cut),
        });
    }
    if let Some(faults) = faults {
        faults.attach(wal_dir.to_path_buf(), meta.segment_size, wal.len());
    }
    let mut completed = false;
    if meta.state == MetaState::Compacting {
        // The marker may be absent, torn or old; our head is authoritative
        // (it was written only after the checkpoint there was durable).
        let got = wal.truncate_before(Lsn::new(meta.head)).map_err(wal_error)?;
        if got.get() != meta.head {
            return Err(corrupt(wal_dir.join(HEAD_MARKER).display().to_string(), "wal-db refused the recorded head"));
        }
        fsio::fsync_dir(wal_dir, faults)?;
        meta.state = MetaState::Ready;
        meta.synced_end = wal.len(); // all of it was synced before the repairs
        write_atomic(dir, file.name, &meta.encode_as(file), faults)?;
        completed = true;
    }
    Ok((torn, completed))
}

/// Refuses a record size limit (`requested`) lower than the one in the
/// meta file `meta` of the log in `dir`: the limit may only grow.
pub(crate) fn check_record_limit(dir: &Path, meta: &Meta, requested: u32) -> Result<(), StorageError> {
    if requested < meta.max_record_size {
        return Err(StorageError::RecordLimitLowered {
            path: dir.display().to_string(),
            stored: meta.max_record_size,
            requested,
        });
    }
    Ok(())
}

/// Replays every record of `wal` (in `wal_dir`, the meta file `meta`'s):
/// each must carry format version `supported` (read by `version`), decode
/// by `decode` and apply by `apply`; otherwise the error names the record.
/// A WAL without a record is refused unless its creation was interrupted.
pub(crate) fn replay<R, E: Into<String>>(
    wal: &Wal<Store>,
    wal_dir: &Path,
    meta: &Meta,
    supported: &[u8],
    version: impl Fn(&[u8]) -> Option<u8>,
    decode: impl Fn(&Bytes) -> Result<R, DecodeError>,
    mut apply: impl FnMut(R) -> Result<(), E>,
) -> Result<(), StorageError> {
    let segment_size = meta.segment_size;
    let mut records = 0u64;
    for item in wal.iter().map_err(wal_error)? {
        let rec = item.map_err(|e| open_error(e, wal_dir, segment_size))?;
        let lsn = rec.lsn().get();
        let payload = Bytes::from(rec.into_data());
        match version(&payload) {
            Some(v) if supported.contains(&v) => {}
            found => {
                return Err(StorageError::UnsupportedFormat {
                    location: locate(wal_dir, segment_size, lsn),
                    found: found.map_or(0, u32::from),
                    supported: supported.iter().copied().max().map_or(0, u32::from),
                });
            }
        }
        let decoded = decode(&payload)
            .map_err(|e| corrupt(locate(wal_dir, segment_size, lsn), format!("undecodable record: {}", e.0)))?;
        apply(decoded).map_err(|reason| corrupt(locate(wal_dir, segment_size, lsn), reason))?;
        records += 1;
    }
    if records == 0 && meta.state != MetaState::Creating {
        return Err(corrupt(
            locate(wal_dir, segment_size, meta.head),
            "no record at the WAL head: segments are missing or empty",
        ));
    }
    Ok(())
}

/// Maps a wal-db open error to one that names the segment file and byte.
pub(crate) fn open_error(e: WalError, wal_dir: &Path, segment_size: u64) -> StorageError {
    match e {
        WalError::Corruption { offset, reason } => corrupt(
            locate(wal_dir, segment_size, offset),
            format!("{reason} (a damaged record followed by more data, or a missing segment); nothing was changed"),
        ),
        other => wal_error(other),
    }
}

/// Records in the meta file `meta` (of kind `file`, in `dir`) that the WAL
/// is synced up to `end`, if that is further than it records. Call it only
/// where the WAL is synced that far.
pub(crate) fn record_synced_end(
    dir: &Path,
    meta: &mut Meta,
    file: MetaFile,
    end: u64,
    faults: Option<&FaultInjector>,
) -> Result<(), StorageError> {
    if end <= meta.synced_end {
        return Ok(());
    }
    let next = Meta { synced_end: end, ..*meta };
    write_atomic(dir, file.name, &next.encode_as(file), faults)?;
    *meta = next;
    Ok(())
}

/// Drops the WAL prefix before the durable checkpoint at `head`; the WAL
/// is synced through `synced` (the checkpoint's end, or later). The meta
/// file (of kind `file`, in `dir`) goes through state *compacting*, so a
/// crash at any point is completed by the next open.
#[allow(clippy::too_many_arguments)] // the pieces of a log both logs keep in different places
pub(crate) fn compact(
    wal: &Wal<Store>,
    dir: &Path,
    wal_dir: &Path,
    meta: &mut Meta,
    file: MetaFile,
    head: u64,
    synced: u64,
    faults: Option<&FaultInjector>,
) -> Result<(), StorageError> {
    if head <= meta.head {
        // A later checkpoint was compacted to first (a `sync` between an
        // asynchronous checkpoint's submission and its report): the prefix
        // is gone already, and the head never moves back.
        return record_synced_end(dir, meta, file, synced, faults);
    }
    let synced_end = synced.max(meta.synced_end);
    let mut next = Meta { state: MetaState::Compacting, head, synced_end, ..*meta };
    write_atomic(dir, file.name, &next.encode_as(file), faults)?;
    let got = wal.truncate_before(Lsn::new(head)).map_err(wal_error)?;
    if got.get() != head {
        return Err(corrupt(
            wal_dir.display().to_string(),
            format!("wal-db moved the head to {} instead of {head}", got.get()),
        ));
    }
    fsio::fsync_dir(wal_dir, faults)?;
    next.state = MetaState::Ready;
    write_atomic(dir, file.name, &next.encode_as(file), faults)?;
    *meta = next;
    Ok(())
}
