//! The log directory's own small files: `raftlog.meta` (who the directory
//! belongs to, the WAL geometry, our authoritative copy of the WAL head,
//! and how far the WAL is known to be synced) and the parser of wal-db's
//! `wal/head` marker.

/// Name of the meta file inside the log directory.
pub(crate) const META_FILE: &str = "raftlog.meta";
/// Name of the wal-db segment directory inside the log directory.
pub(crate) const WAL_DIR: &str = "wal";
/// Name of wal-db's head marker inside [`WAL_DIR`].
pub(crate) const HEAD_MARKER: &str = "head";

const MAGIC: [u8; 8] = *b"RAFTIOWL";

/// A kind of meta file: its name in the log directory and the magic it
/// starts with. `WalLog` writes [`WAL_META`]; the shared WAL
/// (`log::shared`) writes the same layout under another name and magic, so
/// that neither log opens the other's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MetaFile {
    /// The file name inside the log directory.
    pub(crate) name: &'static str,
    /// The 8 bytes the file starts with.
    pub(crate) magic: [u8; 8],
}

/// `WalLog`'s meta file, `raftlog.meta`.
pub(crate) const WAL_META: MetaFile = MetaFile { name: META_FILE, magic: MAGIC };
/// Version of the meta file layout this build writes. It reads version 1
/// too (see [`Meta::decode_versioned`]).
pub(crate) const META_VERSION: u32 = 2;
/// Length of an encoded meta file.
pub(crate) const META_LEN: usize = 52;
/// Length of a version 1 meta file (no synced end).
const META_V1_LEN: usize = 44;

/// The lifecycle state recorded in the meta file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaState {
    /// The directory is being created: the WAL may lack its first record.
    Creating = 0,
    /// Normal state: wal-db's head marker equals `Meta::head`.
    Ready = 1,
    /// A compaction to `Meta::head` may be half done: the head marker may be
    /// absent, torn, or still name the previous head.
    Compacting = 2,
}

/// The decoded meta file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) state: MetaState,
    pub(crate) segment_size: u64,
    pub(crate) max_record_size: u32,
    /// Offset of the checkpoint record the WAL starts at.
    pub(crate) head: u64,
    /// The WAL holds intact records at least from `head` to this offset,
    /// every one synced: the end of the WAL when it was last recorded (when
    /// the log was created or closed, a step started a new segment, or a
    /// compaction). At least `head`.
    pub(crate) synced_end: u64,
}

/// Why meta file bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaError {
    /// Not a raft-io meta file at all.
    NotOurs,
    /// A raft-io meta file of a layout this version cannot read.
    Version(u32),
    /// A raft-io meta file that is damaged.
    Corrupt(&'static str),
}

impl Meta {
    /// The fixed 52-byte layout (version 2): magic `RAFTIOWL`, version u32,
    /// state u8, 3 zero bytes, segment size u64, max record size u32, 4 zero
    /// bytes, head u64, synced end u64, CRC-32C of the preceding 48 bytes as
    /// u32. Little-endian.
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        self.encode_as(WAL_META)
    }

    /// [`encode`](Self::encode) with the magic of `file`.
    pub(crate) fn encode_as(&self, file: MetaFile) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(&file.magic);
        b[8..12].copy_from_slice(&META_VERSION.to_le_bytes());
        b[12] = self.state as u8;
        b[16..24].copy_from_slice(&self.segment_size.to_le_bytes());
        b[24..28].copy_from_slice(&self.max_record_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.head.to_le_bytes());
        b[40..48].copy_from_slice(&self.synced_end.to_le_bytes());
        let crc = crate::crc::crc32c(&b[..48]);
        b[48..52].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[cfg(test)]
    pub(crate) fn decode(b: &[u8]) -> Result<Meta, MetaError> {
        Self::decode_versioned(b).map(|(meta, _)| meta)
    }

    /// Decodes a meta file of version 2 or 1, returning the version found.
    /// Version 1 is version 2's first 40 bytes and its CRC-32C at 40..44:
    /// it records no synced end, which then reads as `head` (nothing is
    /// known to be synced past the head record).
    pub(crate) fn decode_versioned(b: &[u8]) -> Result<(Meta, u32), MetaError> {
        Self::decode_as(b, WAL_META)
    }

    /// [`decode_versioned`](Self::decode_versioned) for a meta file of
    /// kind `file` (its magic).
    pub(crate) fn decode_as(b: &[u8], file: MetaFile) -> Result<(Meta, u32), MetaError> {
        if b.len() < 12 || b[0..8] != file.magic {
            return Err(MetaError::NotOurs);
        }
        let version = u32_at(b, 8);
        let len = match version {
            1 => META_V1_LEN,
            META_VERSION => META_LEN,
            _ => return Err(MetaError::Version(version)),
        };
        if b.len() != len {
            return Err(MetaError::Corrupt("wrong length"));
        }
        if crate::crc::crc32c(&b[..len - 4]) != u32_at(b, len - 4) {
            return Err(MetaError::Corrupt("checksum mismatch"));
        }
        if b[13..16] != [0; 3] || b[28..32] != [0; 4] {
            return Err(MetaError::Corrupt("reserved bytes are not zero"));
        }
        let state = match b[12] {
            0 => MetaState::Creating,
            1 => MetaState::Ready,
            2 => MetaState::Compacting,
            _ => return Err(MetaError::Corrupt("unknown state")),
        };
        let segment_size = u64_at(b, 16);
        if segment_size == 0 {
            return Err(MetaError::Corrupt("segment size is zero"));
        }
        let head = u64_at(b, 32);
        let synced_end = if version == 1 { head } else { u64_at(b, 40) };
        if synced_end < head {
            return Err(MetaError::Corrupt("the synced end lies before the head"));
        }
        Ok((Meta { state, segment_size, max_record_size: u32_at(b, 24), head, synced_end }, version))
    }
}

/// What wal-db's head marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Absent,
    /// Present but too short or failing its checksum.
    Corrupt,
    Head(u64),
}

/// Parses wal-db's 12-byte head marker: the head as u64 LE, then CRC-32C of
/// those 8 bytes as u32 LE (read exactly as wal-db 1.1 reads it).
pub(crate) fn parse_marker(bytes: Option<&[u8]>) -> Marker {
    let Some(b) = bytes else { return Marker::Absent };
    if b.len() < 12 {
        return Marker::Corrupt;
    }
    if crate::crc::crc32c(&b[..8]) != u32_at(b, 8) {
        return Marker::Corrupt;
    }
    Marker::Head(u64_at(b, 0))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_meta() {
        let meta = Meta {
            state: MetaState::Ready,
            segment_size: 1 << 20,
            max_record_size: 1 << 16,
            head: 0x1234,
            synced_end: 0x5678,
        };
        let b = meta.encode();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            &hex[..96],
            concat!(
                "52414654494f574c", // RAFTIOWL
                "02000000",         // version 2
                "01000000",         // state Ready, reserved
                "0000100000000000", // segment size 1 MiB
                "0000010000000000", // max record 64 KiB, reserved
                "3412000000000000", // head
                "7856000000000000", // synced end
            )
        );
        assert_eq!(Meta::decode_versioned(&b), Ok((meta, 2)));
    }

    /// A version 1 file (what builds before the synced end wrote) decodes,
    /// with the synced end at the head.
    #[test]
    fn version_1_meta_decodes_with_the_synced_end_at_the_head() {
        let mut v1 = Vec::new();
        for hex in
            ["52414654494f574c", "01000000", "01000000", "0000100000000000", "0000010000000000", "3412000000000000"]
        {
            v1.extend((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()));
        }
        v1.extend_from_slice(&crate::crc::crc32c(&v1).to_le_bytes());
        let want = Meta {
            state: MetaState::Ready,
            segment_size: 1 << 20,
            max_record_size: 1 << 16,
            head: 0x1234,
            synced_end: 0x1234,
        };
        assert_eq!(Meta::decode_versioned(&v1), Ok((want, 1)));
        assert_eq!(Meta::decode(&v1[..43]), Err(MetaError::Corrupt("wrong length")));
        v1[20] ^= 1;
        assert_eq!(Meta::decode(&v1), Err(MetaError::Corrupt("checksum mismatch")));
    }

    #[test]
    fn damaged_meta_is_refused() {
        let meta = Meta { state: MetaState::Compacting, segment_size: 8, max_record_size: 9, head: 10, synced_end: 11 };
        let b = meta.encode();
        for at in 0..META_LEN {
            let mut m = b;
            m[at] ^= 0x40;
            let err = Meta::decode(&m).unwrap_err();
            match at {
                0..8 => assert_eq!(err, MetaError::NotOurs),
                8..12 => assert!(matches!(err, MetaError::Version(_))),
                _ => assert!(matches!(err, MetaError::Corrupt(_))),
            }
        }
        assert_eq!(Meta::decode(&b[..51]), Err(MetaError::Corrupt("wrong length")));
        assert_eq!(Meta::decode(b"garbage"), Err(MetaError::NotOurs));
        let before_head = Meta { synced_end: 9, ..meta }.encode();
        assert_eq!(Meta::decode(&before_head), Err(MetaError::Corrupt("the synced end lies before the head")));
    }

    /// A reserved byte that is set under a valid checksum (a file from a
    /// newer format, or one written wrong) is refused, not ignored.
    #[test]
    fn a_reserved_byte_set_under_a_valid_checksum_is_refused() {
        let meta = Meta { state: MetaState::Ready, segment_size: 8, max_record_size: 9, head: 10, synced_end: 11 };
        for at in (13..16).chain(28..32) {
            let mut b = meta.encode();
            b[at] = 1;
            let crc = crate::crc::crc32c(&b[..48]);
            b[48..52].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(Meta::decode(&b), Err(MetaError::Corrupt("reserved bytes are not zero")), "byte {at}");
        }
    }

    #[test]
    fn head_marker() {
        let mut b = 77u64.to_le_bytes().to_vec();
        b.extend_from_slice(&crate::crc::crc32c(&b).to_le_bytes());
        assert_eq!(parse_marker(Some(&b)), Marker::Head(77));
        assert_eq!(parse_marker(Some(&b[..11])), Marker::Corrupt);
        b[0] = 78;
        assert_eq!(parse_marker(Some(&b)), Marker::Corrupt);
        assert_eq!(parse_marker(None), Marker::Absent);
    }
}
