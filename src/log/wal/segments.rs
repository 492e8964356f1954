//! The WAL's segment files as they are on disk: their names, which exist
//! and how long they are, and the runs of WAL offsets whose bytes they hold.

use std::path::{Path, PathBuf};

use super::fsio::{io_err, list};
use crate::error::StorageError;

/// A segment file found in the WAL directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Segment {
    /// Its number: it holds WAL offsets `[index·S, (index + 1)·S)`.
    pub(super) index: u64,
    /// Its length in bytes.
    pub(super) len: u64,
}

/// The file name of segment `index`.
pub(super) fn segment_name(index: u64) -> String {
    format!("{index:020}.wal")
}

/// The segment file holding WAL offset `offset`.
pub(super) fn segment_path(wal_dir: &Path, segment_size: u64, offset: u64) -> PathBuf {
    wal_dir.join(segment_name(offset / segment_size))
}

/// Names a WAL offset: segment file, byte within it, and the offset.
pub(crate) fn locate(wal_dir: &Path, segment_size: u64, offset: u64) -> String {
    format!(
        "{} byte {} (WAL offset {offset})",
        segment_path(wal_dir, segment_size, offset).display(),
        offset % segment_size
    )
}

/// The index of a wal-db segment file name (`{index:020}.wal`).
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `wal_dir`, by index.
pub(super) fn list_segments(wal_dir: &Path) -> Result<Vec<Segment>, StorageError> {
    let mut segments = Vec::new();
    for name in list(wal_dir)? {
        if let Some(index) = parse_segment_name(&name) {
            let path = wal_dir.join(&name);
            let len = std::fs::metadata(&path).map_err(|e| io_err("reading metadata of", &path, e))?.len();
            segments.push(Segment { index, len });
        }
    }
    segments.sort_by_key(|s| s.index);
    Ok(segments)
}

/// The runs `[start, end)` of WAL offsets below `written` whose bytes are
/// on disk, in order and merged where one segment's bytes run on into the
/// next. What lies between runs (a missing segment, the part of a segment
/// past its end) is a hole: it holds no byte of any record.
pub(super) fn present_runs(segments: &[Segment], segment_size: u64, written: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for s in segments {
        // wal-db reads no byte of a segment past the segment size.
        let Some(start) = s.index.checked_mul(segment_size) else { continue };
        let end = start.saturating_add(s.len.min(segment_size)).min(written);
        if end <= start {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    runs
}

/// Refuses segment files that cannot hold every record synced up to
/// `synced_end` (see [`Meta::synced_end`](super::meta::Meta::synced_end)):
/// each segment from the head's to the one holding byte `synced_end - 1`
/// must exist and reach as far as the synced records in it do.
/// `segments` is sorted by index.
pub(super) fn check_synced(
    segments: &[Segment],
    wal_dir: &Path,
    segment_size: u64,
    head: u64,
    synced_end: u64,
) -> Result<(), StorageError> {
    if synced_end <= head {
        return Ok(());
    }
    let (first, last) = (head / segment_size, (synced_end - 1) / segment_size);
    let lost = |offset: u64, reason: String| StorageError::SyncedDataLost {
        location: locate(wal_dir, segment_size, offset),
        synced_end,
        reason,
    };
    let mut expect = first;
    for s in segments.iter().filter(|s| (first..=last).contains(&s.index)) {
        // No overflow: the segment starts at or below `synced_end`.
        let start = expect * segment_size;
        if s.index != expect {
            return Err(lost(start.max(head), "the segment file is missing".into()));
        }
        let need = synced_end.min(start.saturating_add(segment_size)) - start;
        if s.len < need {
            return Err(lost(
                start + s.len,
                format!("the segment file is {} bytes long, but synced records fill its first {need}", s.len),
            ));
        }
        expect += 1;
    }
    if expect <= last {
        return Err(lost((expect * segment_size).max(head), "the segment file is missing".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_contiguous_segments_and_skip_holes() {
        let seg = |index, len| Segment { index, len };
        let segments = [seg(1, 10), seg(2, 4), seg(4, 10), seg(5, 0), seg(6, 12), seg(u64::MAX, 3)];
        assert_eq!(present_runs(&segments, 10, 1000), vec![(10, 24), (40, 50), (60, 70)]);
        assert_eq!(present_runs(&segments, 10, 45), vec![(10, 24), (40, 45)]);
        assert_eq!(present_runs(&[], 10, 45), vec![]);
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
    }

    #[test]
    fn synced_segments_must_exist_and_be_long_enough() {
        let seg = |index, len| Segment { index, len };
        let dir = Path::new("w");
        let ok = [seg(0, 10), seg(1, 10), seg(2, 10), seg(3, 4)];
        assert!(check_synced(&ok, dir, 10, 15, 34).is_ok());
        assert!(check_synced(&ok[1..], dir, 10, 15, 34).is_ok(), "segments before the head's are not needed");
        assert!(check_synced(&ok, dir, 10, 15, 15).is_ok(), "nothing synced past the head");
        assert!(check_synced(&[], dir, 10, 0, 0).is_ok());
        let missing = |segments: &[Segment], at: &str| {
            let err = check_synced(segments, dir, 10, 15, 34).unwrap_err();
            let at = format!("{} byte", Path::new("w").join(at).display());
            assert!(
                matches!(&err, StorageError::SyncedDataLost { location, synced_end: 34, .. } if location.starts_with(&at)),
                "{err}"
            );
            err.to_string()
        };
        assert!(missing(&[ok[0].clone(), ok[2].clone(), ok[3].clone()], &segment_name(1)).contains("missing"));
        assert!(missing(&ok[..3], &segment_name(3)).contains("missing"));
        assert!(missing(&[], &segment_name(1)).contains("missing"));
        let short = [seg(1, 10), seg(2, 10), seg(3, 3)];
        assert!(missing(&short, &segment_name(3)).contains("3 bytes long"));
        let short = [seg(1, 10), seg(2, 9), seg(3, 4)];
        assert!(missing(&short, &segment_name(2)).contains("9 bytes long"));
        // A damaged meta file's huge synced end costs one pass over the files.
        assert!(check_synced(&ok, dir, 1, 0, u64::MAX).is_err());
    }
}
