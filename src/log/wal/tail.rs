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
use crate::crc::{crc32c_append, crc32c_append_short, crc32c_shift};

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
///
/// Every position whose header shows a record's version and kind bytes and
/// a length that fits is a candidate, and a candidate's checksum covers up
/// to `max_record_size` bytes after it. Checksumming each candidate's span
/// on its own would be quadratic in bytes a client chose: a run of command
/// data can make every position a candidate (a torn record's own payload
/// is scanned too). So the candidates of a window of positions are checked
/// together, in time linear in the bytes read: one pass over the window
/// gives each candidate's prefix CRC where its span starts, one forward
/// pass (in the order of the spans' ends) gives the prefix CRC where it
/// ends, and the span's CRC follows from the two ([`crc32c_shift`]). Only a
/// candidate whose CRC checks out is read and decoded.
fn intact_record_in<S: WalStore>(
    seg: &S,
    start: u64,
    end: u64,
    max_record_size: u32,
    shape: &RecordShape,
) -> wal_db::Result<bool> {
    let mut pos = start;
    let mut window = Vec::new();
    let mut candidates = Vec::new();
    let mut by_end = Vec::new();
    let mut undecodable = 0;
    while end.saturating_sub(pos) >= PROBE as u64 {
        let want = (end - pos).min((WINDOW + PROBE) as u64) as usize;
        read_region(seg, pos, want, &mut window)?;
        let positions = (window.len() + 1 - PROBE).min(WINDOW);
        candidates.clear();
        // Prefix CRCs from `pos`: `q` is the CRC-32C of `window[..at]`.
        let (mut q, mut at) = (0u32, 0usize);
        for i in 0..positions {
            let b = &window[i..i + PROBE];
            if !shape.versions.contains(&b[8]) || !shape.kinds.contains(&b[9]) {
                continue;
            }
            let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let record_end = (pos + i as u64).saturating_add(FRAME_HEADER).saturating_add(u64::from(len));
            if len > max_record_size || record_end > end {
                continue;
            }
            // The checksum covers the length field and the payload.
            q = crc32c_advance(q, &window[at..i + 4]);
            at = i + 4;
            let crc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            candidates.push(Candidate { span_start: pos + at as u64, span_end: record_end, start_crc: q, crc });
        }
        if !candidates.is_empty() {
            by_end.clear();
            by_end.extend(0..candidates.len());
            by_end.sort_unstable_by_key(|&c| candidates[c].span_end);
            let mut sweep = Sweep::new(seg, pos, end);
            for &c in &by_end {
                let cand = &candidates[c];
                let end_crc = sweep.crc_to(cand.span_end)?;
                let span = end_crc ^ crc32c_shift(cand.start_crc, cand.span_end - cand.span_start);
                if span != cand.crc {
                    continue;
                }
                let mut payload = Vec::new();
                let payload_at = cand.span_start + 4;
                read_region(seg, payload_at, (cand.span_end - payload_at) as usize, &mut payload)?;
                if (shape.decodes)(&Bytes::from(payload)) {
                    return Ok(true);
                }
                // A frame whose checksum holds but which is no record of
                // ours: rare in data (it takes a 32-bit match), so many of
                // them are built to slow the scan, and each costs a decode.
                // Past the limit the scan errs on the side of keeping data,
                // as for a record found in a torn record's own payload.
                undecodable += 1;
                if undecodable > MAX_UNDECODABLE_FRAMES {
                    return Ok(true);
                }
            }
        }
        pos += positions as u64;
    }
    Ok(false)
}

/// Frames with a checksum that holds but a payload that decodes as no
/// record, after which [`intact_record_in`] stops and reports an intact
/// record (refusing the open rather than cutting).
const MAX_UNDECODABLE_FRAMES: u32 = 1024;

/// A position whose frame header could start a record: the span its
/// checksum covers (the length field and the payload) and the CRC-32C of
/// the window's bytes before the span.
struct Candidate {
    span_start: u64,
    span_end: u64,
    start_crc: u32,
    crc: u32,
}

/// The CRC-32C of the bytes from `origin` to positions taken in increasing
/// order, each computed from the last, reading a chunk at a time (never
/// past `limit`, the end of the bytes on disk).
struct Sweep<'a, S> {
    seg: &'a S,
    limit: u64,
    /// The position reached and the CRC-32C of the bytes before it.
    at: u64,
    crc: u32,
    chunk: Vec<u8>,
    /// Where `chunk` starts.
    chunk_at: u64,
}

impl<'a, S: WalStore> Sweep<'a, S> {
    fn new(seg: &'a S, origin: u64, limit: u64) -> Self {
        Self { seg, limit, at: origin, crc: 0, chunk: Vec::new(), chunk_at: origin }
    }

    /// The CRC-32C of the bytes from the origin to `to` (at or past the
    /// last position asked for, at most `limit`).
    fn crc_to(&mut self, to: u64) -> wal_db::Result<u32> {
        debug_assert!(to >= self.at && to <= self.limit);
        while self.at < to {
            let chunk_end = self.chunk_at + self.chunk.len() as u64;
            if self.at >= chunk_end {
                self.chunk_at = self.at;
                let len = (self.limit - self.at).min(WINDOW as u64) as usize;
                read_region(self.seg, self.at, len, &mut self.chunk)?;
                continue;
            }
            let from = (self.at - self.chunk_at) as usize;
            let upto = (to.min(chunk_end) - self.chunk_at) as usize;
            self.crc = crc32c_advance(self.crc, &self.chunk[from..upto]);
            self.at += (upto - from) as u64;
        }
        Ok(self.crc)
    }
}

/// `crc32c_append`, a byte at a time for short pieces (where the
/// vectorized kernel's setup would cost more than the bytes).
fn crc32c_advance(crc: u32, data: &[u8]) -> u32 {
    if data.len() < 64 { crc32c_append_short(crc, data) } else { crc32c_append(crc, data) }
}

/// Reads `len` bytes at `pos`, which the caller found on disk, into `out`;
/// zeros where a read comes back short (the file shrank since).
fn read_region<S: WalStore>(seg: &S, pos: u64, len: usize, out: &mut Vec<u8>) -> wal_db::Result<()> {
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

/// Bytes a client could put in a command: a header every ten bytes
/// that passes the quick look (version and kind bytes, a length that
/// fits), each claiming `len` bytes after it; none checksums.
#[cfg(test)]
pub(super) fn hostile(bytes: usize, len: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes);
    while v.len() < bytes {
        v.extend_from_slice(&[0xAA, 0xBB, 0xCC, 0xDD]);
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&[record::FORMAT_V1, KIND_STEP]);
    }
    v.truncate(bytes);
    v
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use bytes::Bytes;
    use proptest::prelude::*;
    use wal_db::{MemStore, WalStore};

    use super::super::record::{FORMAT_V1, KIND_STEP, encode_step};
    use super::super::tests::{append, temp};
    use super::super::{WalLog, WalOptions};
    use super::{PROBE, RecordShape, WAL_RECORDS, hostile, intact_record_in};
    use crate::crc::{crc32c, crc32c_append};
    use crate::log::RaftLog;
    use crate::types::Entry;

    /// The scan as first written: every candidate's span read and
    /// checksummed on its own (quadratic). The reference the linear scan
    /// must agree with.
    fn reference(bytes: &[u8], max_record_size: u32, shape: &RecordShape) -> bool {
        (0..(bytes.len() + 1).saturating_sub(PROBE)).any(|at| {
            let b = &bytes[at..at + PROBE];
            let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let end = at as u64 + 8 + u64::from(len);
            shape.versions.contains(&b[8])
                && shape.kinds.contains(&b[9])
                && len <= max_record_size
                && end <= bytes.len() as u64
                && crc32c_append(crc32c(&b[4..8]), &bytes[at + 8..end as usize])
                    == u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                && (shape.decodes)(&Bytes::copy_from_slice(&bytes[at + 8..end as usize]))
        })
    }

    /// A store that counts the bytes read from it.
    struct Counting {
        inner: MemStore,
        read: AtomicU64,
    }

    impl WalStore for Counting {
        fn write_at(&self, offset: u64, bytes: &[u8]) -> wal_db::Result<()> {
            self.inner.write_at(offset, bytes)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> wal_db::Result<usize> {
            let n = self.inner.read_at(offset, buf)?;
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
        fn truncate(&self, len: u64) -> wal_db::Result<()> {
            self.inner.truncate(len)
        }
        fn sync(&self) -> wal_db::Result<()> {
            self.inner.sync()
        }
        fn len(&self) -> wal_db::Result<u64> {
            self.inner.len()
        }
    }

    fn scan(bytes: &[u8], max_record_size: u32) -> (bool, u64) {
        let store = Counting { inner: MemStore::from_bytes(bytes.to_vec()), read: AtomicU64::new(0) };
        let found = intact_record_in(&store, 0, bytes.len() as u64, max_record_size, &WAL_RECORDS).unwrap();
        (found, store.read.load(Ordering::Relaxed))
    }

    /// A wal-db frame (CRC-32C over the length and the payload, then the
    /// length, then the payload) around `payload`.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c_append(crc32c(&len), payload);
        [&crc.to_le_bytes()[..], &len, payload].concat()
    }

    /// A real step record holding one entry with `data`.
    fn step_record(index: u64, data: &[u8]) -> Vec<u8> {
        let e = Entry::normal(1, index, Bytes::copy_from_slice(data));
        let mut buf = Vec::new();
        encode_step(&mut buf, None, None, None, Some((index, std::iter::once(&e))));
        buf
    }

    /// Bytes where every position passes the quick look are scanned in
    /// time linear in their size: the bytes read stay a small multiple of
    /// the region, where checksumming each candidate on its own read
    /// about 200 000 candidates times 200 KB (40 GB, most of an hour).
    #[test]
    fn candidates_everywhere_are_checked_in_linear_time() {
        let region = hostile(2 << 20, 200_000);
        let (found, read) = scan(&region, 64 << 20);
        assert!(!found);
        assert!(read <= 4 * region.len() as u64, "read {read} bytes of a {}-byte region", region.len());
        // A real record after them is still found.
        let mut with_record = region.clone();
        with_record.extend(frame(&step_record(7, b"after the hostile bytes")));
        let (found, read) = scan(&with_record, 64 << 20);
        assert!(found);
        assert!(read <= 4 * with_record.len() as u64, "read {read} bytes of a {}-byte region", with_record.len());
    }

    /// Frames whose checksum holds but whose payload is no record are each
    /// read and decoded; past `MAX_UNDECODABLE_FRAMES` of them the scan
    /// stops and reports a record (refusing, never cutting).
    #[test]
    fn many_checksummed_frames_that_are_no_record_refuse_the_cut() {
        let junk = frame(&[FORMAT_V1, KIND_STEP, 0xFF, 0xFF, 0xFF]);
        let few: Vec<u8> = junk.repeat(10);
        assert!(!scan(&few, 1 << 20).0);
        let many: Vec<u8> = junk.repeat(super::MAX_UNDECODABLE_FRAMES as usize + 1);
        assert!(scan(&many, 1 << 20).0);
    }

    /// One piece of a region for the agreement property.
    #[derive(Clone, Debug)]
    enum Piece {
        Noise(Vec<u8>),
        Record(Vec<u8>),
        /// A record with one byte flipped (a damaged record).
        Damaged(Vec<u8>, usize),
        /// A frame whose checksum holds around bytes that are no record.
        Junk(Vec<u8>),
        Hostile(usize, u32),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Noise),
            proptest::collection::vec(any::<u8>(), 0..48).prop_map(Piece::Record),
            (proptest::collection::vec(any::<u8>(), 0..48), any::<usize>()).prop_map(|(d, i)| Piece::Damaged(d, i)),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Piece::Junk),
            (1usize..200, 0u32..300).prop_map(|(n, len)| Piece::Hostile(n, len)),
        ]
    }

    fn render(pieces: &[Piece]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            match p {
                Piece::Noise(b) => out.extend(b),
                Piece::Record(d) => out.extend(frame(&step_record(i as u64 + 1, d))),
                Piece::Damaged(d, at) => {
                    let mut f = frame(&step_record(i as u64 + 1, d));
                    let at = at % f.len();
                    f[at] ^= 0x40;
                    out.extend(f);
                }
                Piece::Junk(b) => out.extend(frame(&[&[FORMAT_V1, KIND_STEP][..], b].concat())),
                Piece::Hostile(n, len) => out.extend(hostile(*n, *len)),
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
        /// The linear scan finds an intact record exactly where checking
        /// every candidate on its own does, on regions of noise, records,
        /// damaged records, checksummed junk and hostile headers, under
        /// record size limits small enough to refuse some of them.
        #[test]
        fn the_linear_scan_agrees_with_checking_every_candidate(
            pieces in proptest::collection::vec(piece(), 0..12),
            max in prop_oneof![Just(64u32 << 20), 0u32..200],
        ) {
            let bytes = render(&pieces);
            prop_assert_eq!(scan(&bytes, max).0, reference(&bytes, max, &WAL_RECORDS), "{:?}", pieces);
        }
    }

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
