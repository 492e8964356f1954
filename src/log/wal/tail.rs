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
//! record of this format version. Should a torn record's own entry data
//! contain such a record, byte for byte, the log is refused rather than cut:
//! the rule errs on the side of keeping data.

use bytes::Bytes;
use wal_db::{SegmentedStore, WalStore};

use super::record::{self, FORMAT_VERSION, KIND_CHECKPOINT, KIND_STEP};

/// Bytes of a wal-db frame header: CRC-32C u32, then the payload length u32.
const FRAME_HEADER: u64 = 8;
/// Bytes scanned per read.
const WINDOW: usize = 1 << 20;
/// Header plus the two payload bytes (version, kind) every record starts
/// with: what a position must show before its CRC is worth computing.
const PROBE: usize = FRAME_HEADER as usize + 2;

/// Whether an intact raft-io record starts anywhere after the damaged
/// record at `offset` and before `written`, the end of the written data.
pub(super) fn intact_record_after(
    seg: &SegmentedStore,
    offset: u64,
    written: u64,
    segment_size: u64,
    max_record_size: u32,
) -> wal_db::Result<bool> {
    let mut pos = offset.saturating_add(FRAME_HEADER);
    let mut window = Vec::new();
    while written.saturating_sub(pos) >= PROBE as u64 {
        let want = (written - pos).min((WINDOW + PROBE) as u64) as usize;
        read_region(seg, pos, want, segment_size, &mut window)?;
        let positions = (window.len() + 1 - PROBE).min(WINDOW);
        for i in 0..positions {
            let b = &window[i..i + PROBE];
            if b[8] != FORMAT_VERSION || (b[9] != KIND_CHECKPOINT && b[9] != KIND_STEP) {
                continue;
            }
            let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let at = pos + i as u64;
            let end = at.saturating_add(FRAME_HEADER).saturating_add(u64::from(len));
            if len > max_record_size || end > written {
                continue;
            }
            let crc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let mut payload = Vec::new();
            read_region(seg, at + FRAME_HEADER, len as usize, segment_size, &mut payload)?;
            let mut digest = crc32c::crc32c(&b[4..8]);
            digest = crc32c::crc32c_append(digest, &payload);
            if digest == crc && record::decode(&Bytes::from(payload)).is_ok() {
                return Ok(true);
            }
        }
        pos += positions as u64;
    }
    Ok(false)
}

/// Reads `len` bytes at `pos` into `out`, as zeros where the store has none
/// (a short or missing segment): a hole can hold no record.
fn read_region(seg: &SegmentedStore, pos: u64, len: usize, segment_size: u64, out: &mut Vec<u8>) -> wal_db::Result<()> {
    out.clear();
    out.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        let at = pos + filled as u64;
        let got = seg.read_at(at, &mut out[filled..])?;
        if got > 0 {
            filled += got;
        } else {
            // Nothing here: skip to the next segment's first byte.
            let next = (at / segment_size.max(1) + 1).saturating_mul(segment_size.max(1));
            filled = len.min(usize::try_from(next - pos).unwrap_or(usize::MAX));
        }
    }
    Ok(())
}
