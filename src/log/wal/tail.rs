//! Telling a torn tail from damage in the middle of the log.
//!
//! wal-db's strict open refuses a damaged record when it finds what looks
//! like an intact frame after it, or cannot read past it. `WalLog` writes
//! one record per sync, so a crash can tear only the last record: a damaged
//! record followed by an intact *raft-io record* was synced before that
//! record was written, and is damage in the middle of the log (refused,
//! never cut: it holds acknowledged writes). A damaged record followed by
//! nothing of the kind is the torn tail, even when its payload happens to
//! hold bytes that form a valid wal-db frame (user data can) or a hole lies
//! inside it (a segment whose end never reached the disk).
//!
//! "Intact raft-io record" means: a wal-db frame whose CRC checks out
//! (crc32c over the length and the payload) and whose payload decodes as a
//! record of this format version, lying wholly in bytes that are on disk.
//! Should a torn record's own entry data contain such a record, byte for
//! byte, the log is refused rather than cut: the rule errs on the side of
//! keeping data.
//!
//! The scan reads only the bytes on disk: a hole (a missing segment, the
//! part of a segment past its end) holds no record and is skipped, however
//! far the WAL nominally extends (a stray segment file numbered far past
//! the end makes it terabytes long).

use bytes::Bytes;
use wal_db::{SegmentedStore, WalStore};

use super::record::{self, KIND_CHECKPOINT, KIND_STEP};

/// What an intact record of one log format looks like to the tail rule:
/// the version bytes and kind bytes its payload may start with, and a full
/// decode. `WalLog` and the shared WAL (`log::shared`) differ only here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordShape {
    /// The version bytes a record payload may start with.
    pub(crate) versions: &'static [u8],
    /// The kind bytes that may follow it.
    pub(crate) kinds: &'static [u8],
    /// Whether a payload decodes as a record of the format.
    pub(crate) decodes: fn(&Bytes) -> bool,
}

/// `WalLog`'s records (see [`record`]).
pub(crate) const WAL_RECORDS: RecordShape = RecordShape {
    versions: &[record::FORMAT_V1, record::FORMAT_VERSION],
    kinds: &[KIND_CHECKPOINT, KIND_STEP],
    decodes: |payload| record::decode(payload).is_ok(),
};

/// Bytes of a wal-db frame header: CRC-32C u32, then the payload length u32.
const FRAME_HEADER: u64 = 8;
/// Bytes scanned per read.
const WINDOW: usize = 1 << 20;
/// Header plus the two payload bytes (version, kind) every record starts
/// with: what a position must show before its CRC is worth computing.
const PROBE: usize = FRAME_HEADER as usize + 2;

/// Whether an intact raft-io record starts anywhere after the damaged
/// record at `offset`, within the runs of bytes on disk `present` (as
/// [`present_runs`](super::segments::present_runs) gives them), for
/// records of `shape`.
pub(crate) fn intact_record_after(
    seg: &SegmentedStore,
    present: &[(u64, u64)],
    offset: u64,
    max_record_size: u32,
    shape: &RecordShape,
) -> wal_db::Result<bool> {
    let from = offset.saturating_add(FRAME_HEADER);
    for &(start, end) in present {
        if end > from && intact_record_in(seg, start.max(from), end, max_record_size, shape)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether an intact raft-io record lies in the run `[start, end)` of bytes
/// on disk.
fn intact_record_in(
    seg: &SegmentedStore,
    start: u64,
    end: u64,
    max_record_size: u32,
    shape: &RecordShape,
) -> wal_db::Result<bool> {
    let mut pos = start;
    let mut window = Vec::new();
    while end.saturating_sub(pos) >= PROBE as u64 {
        let want = (end - pos).min((WINDOW + PROBE) as u64) as usize;
        read_region(seg, pos, want, &mut window)?;
        let positions = (window.len() + 1 - PROBE).min(WINDOW);
        for i in 0..positions {
            let b = &window[i..i + PROBE];
            if !shape.versions.contains(&b[8]) || !shape.kinds.contains(&b[9]) {
                continue;
            }
            let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let at = pos + i as u64;
            let record_end = at.saturating_add(FRAME_HEADER).saturating_add(u64::from(len));
            if len > max_record_size || record_end > end {
                continue;
            }
            let crc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let mut payload = Vec::new();
            read_region(seg, at + FRAME_HEADER, len as usize, &mut payload)?;
            let mut digest = crate::crc::crc32c(&b[4..8]);
            digest = crate::crc::crc32c_append(digest, &payload);
            if digest == crc && (shape.decodes)(&Bytes::from(payload)) {
                return Ok(true);
            }
        }
        pos += positions as u64;
    }
    Ok(false)
}

/// Reads `len` bytes at `pos`, which the caller found on disk, into `out`;
/// zeros where a read comes back short (the file shrank since).
fn read_region(seg: &SegmentedStore, pos: u64, len: usize, out: &mut Vec<u8>) -> wal_db::Result<()> {
    out.clear();
    out.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        let got = seg.read_at(pos + filled as u64, &mut out[filled..])?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::super::tests::{append, temp};
    use super::super::{WalLog, WalOptions};
    use crate::log::RaftLog;

    /// Runs `f` on a thread and fails if it takes longer than a generous
    /// `limit` (the work is milliseconds; a regression made it hours).
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit).unwrap_or_else(|e| panic!("not done within {limit:?}: {e}"))
    }

    /// A stray segment file far past the end of the log makes the WAL
    /// nominally terabytes long; the tail scan skips the holes (a missing
    /// segment holds no record) instead of reading them as zeros, so the
    /// open ends at once, cutting the stray data as a torn tail.
    #[test]
    fn a_far_stray_segment_does_not_make_the_tail_scan_read_the_holes() {
        let root = temp();
        let mut log = WalLog::open(root.path()).unwrap();
        append(&mut log, 1, 3);
        log.sync().unwrap();
        drop(log);
        let stray = root.path().join(format!("wal/{:020}.wal", 1u64 << 30));
        fs::write(&stray, [0x5a; 100]).unwrap();
        let dir = root.path().to_path_buf();
        let (last, torn) = within(Duration::from_secs(20), move || {
            let log = WalLog::open_with(&dir, WalOptions::new()).expect("the stray bytes are a torn tail");
            (log.last_index(), log.recovery_report().torn_tail.clone())
        });
        assert_eq!(last, 3);
        assert!(torn.is_some());
        assert!(!stray.exists(), "cut");
    }
}
