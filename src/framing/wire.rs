//! The frozen constants of wire format 2, its frame checksum, and the
//! versioned-body envelope shared by every message kind.
//!
//! A body is written the way pack-io writes a `#[pack_io(version = N)]`
//! struct: `varint(version) varint(body_len) fields`. The encoder and the
//! decoder of every kind go through [`write_body`] and [`read_body`], so the
//! evolution rules of `docs/PROTOCOL.md` are implemented in one place.

use bytes::{BufMut, BytesMut};
use pack_io::{Decode, Decoder, Encode, varint_len};

use super::FrameError;

/// A `BytesMut` as what the encoders write to. pack-io writes a varint of
/// two bytes or more through a small slice copy (a call to `memmove` per
/// field: a third of the time of encoding a heartbeat); this sink writes
/// it byte by byte. The bytes are the same.
pub(crate) struct Sink<'a>(pub(crate) &'a mut BytesMut);

impl Encode for Sink<'_> {
    #[inline]
    fn write_byte(&mut self, byte: u8) -> pack_io::Result<()> {
        self.0.put_u8(byte);
        Ok(())
    }

    #[inline]
    fn write_bytes(&mut self, bytes: &[u8]) -> pack_io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    #[inline]
    fn write_varint_u64(&mut self, mut value: u64) -> pack_io::Result<()> {
        while value >= 0x80 {
            self.0.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.put_u8(value as u8);
        Ok(())
    }
}

/// Message-kind tags. Frozen: a tag is never reused or renumbered, and a new
/// kind takes the next free number (see `docs/PROTOCOL.md`).
pub(crate) mod tag {
    pub(crate) const PRE_VOTE: u64 = 0;
    pub(crate) const PRE_VOTE_RESPONSE: u64 = 1;
    pub(crate) const VOTE: u64 = 2;
    pub(crate) const VOTE_RESPONSE: u64 = 3;
    pub(crate) const APPEND: u64 = 4;
    pub(crate) const APPEND_RESPONSE: u64 = 5;
    pub(crate) const HEARTBEAT: u64 = 6;
    pub(crate) const HEARTBEAT_RESPONSE: u64 = 7;
    pub(crate) const SNAPSHOT: u64 = 8;
    pub(crate) const SNAPSHOT_RESPONSE: u64 = 9;
    pub(crate) const TIMEOUT_NOW: u64 = 10;
    pub(crate) const READ_INDEX: u64 = 11;
    pub(crate) const READ_INDEX_RESPONSE: u64 = 12;
    pub(crate) const REMOVED: u64 = 13;
}

/// Length of the frame checksum, which follows the format byte: a CRC-32C,
/// little-endian.
pub(crate) const CHECKSUM_LEN: usize = 4;

/// The frame checksum: the CRC-32C (Castagnoli) of the format byte followed
/// by every byte after the checksum field — every byte of the frame but the
/// checksum's own.
pub(crate) fn checksum(format: u8, rest: &[u8]) -> u32 {
    crate::crc::crc32c_append(crate::crc::crc32c(&[format]), rest)
}

/// The version every body is written at by this build. Each kind has its own
/// version; they all start at 1 (and are unchanged by format 2, which only
/// added the frame checksum). When a kind gains a field, its constant moves
/// on its own (and this single constant becomes one per kind).
pub(crate) const BODY_VERSION: u32 = 1;

/// The smallest possible encoding of one log entry: term, index, kind and a
/// data length of one byte each. Used to refuse an entry count the frame
/// cannot hold before anything is allocated for it.
pub(crate) const MIN_ENTRY_BYTES: usize = 4;

/// The length of a varint-encoded `value`.
pub(crate) fn vlen(value: u64) -> usize {
    varint_len(value)
}

/// The length of a length-prefixed byte string of `len` bytes.
pub(crate) fn bytes_len(len: usize) -> usize {
    vlen(len as u64) + len
}

/// A message body as a versioned struct: its fields, their exact length, and
/// how to write them.
pub(crate) trait WireBody {
    /// Exact number of bytes [`WireBody::write_fields`] writes.
    fn fields_len(&self) -> usize;

    /// Writes the fields, in order, with no envelope.
    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()>;
}

/// Length of `body` with its version and length prefix.
pub(crate) fn body_len<B: WireBody + ?Sized>(body: &B) -> usize {
    let fields = body.fields_len();
    vlen(u64::from(BODY_VERSION)) + vlen(fields as u64) + fields
}

/// Writes `body` as a versioned struct, reserving room for it first (the
/// fields are measured once, for both the length prefix and the reserve).
pub(crate) fn write_body<B: WireBody + ?Sized, E: Encode + ?Sized>(body: &B, out: &mut E) -> pack_io::Result<()> {
    let fields = body.fields_len();
    out.reserve(vlen(u64::from(BODY_VERSION)) + vlen(fields as u64) + fields);
    out.write_varint_u64(u64::from(BODY_VERSION))?;
    out.write_varint_u64(fields as u64)?;
    body.write_fields(out)
}

/// Reads a versioned body of message kind `kind` and hands its bytes, in a
/// decoder of their own, to `read_fields`.
///
/// * Version 0 or a version past `u32` is refused.
/// * A body at this build's version must be consumed exactly.
/// * A body of a newer version may carry fields appended after the ones this
///   build knows; they are skipped, which is what lets a newer node add a
///   field without breaking older ones.
///
/// The body decoder borrows from the same frame, so slices it yields can be
/// turned into `Bytes` with `Bytes::slice_ref` on the frame.
///
/// When a kind first gains a field (its body version becomes 2), its field
/// reader must also learn the wire version: read the new field only from a
/// body of version 2 or later, and give it its default for a version-1 body.
pub(crate) fn read_body<'a, T>(
    dec: &mut Decoder<'a>,
    kind: &'static str,
    read_fields: impl FnOnce(&mut Decoder<'a>) -> Result<T, FrameError>,
) -> Result<T, FrameError> {
    let raw_version = dec.read_varint_u64()?;
    let version = match u32::try_from(raw_version) {
        Ok(v) if v > 0 => v,
        _ => return Err(FrameError::InvalidBodyVersion { kind, version: raw_version }),
    };
    let fields = dec.read_length_prefixed_borrowed()?;
    let mut body = Decoder::with_config(fields, dec.config())?;
    let value = read_fields(&mut body)?;
    if version <= BODY_VERSION && !body.is_empty() {
        return Err(FrameError::BodyTrailingBytes { kind, remaining: body.remaining() });
    }
    Ok(value)
}

/// Reads a strict boolean (0 or 1), naming `field` on error.
pub(crate) fn read_bool(dec: &mut Decoder<'_>, field: &'static str) -> Result<bool, FrameError> {
    match dec.read_byte()? {
        0 => Ok(false),
        1 => Ok(true),
        byte => Err(FrameError::InvalidBool { field, byte }),
    }
}

/// Reads a varint `u64`.
pub(crate) fn read_u64(dec: &mut Decoder<'_>) -> Result<u64, FrameError> {
    Ok(dec.read_varint_u64()?)
}

/// The name of a message kind, for errors.
pub(crate) fn kind_name(tag: u64) -> &'static str {
    match tag {
        tag::PRE_VOTE => "PreVote",
        tag::PRE_VOTE_RESPONSE => "PreVoteResponse",
        tag::VOTE => "Vote",
        tag::VOTE_RESPONSE => "VoteResponse",
        tag::APPEND => "Append",
        tag::APPEND_RESPONSE => "AppendResponse",
        tag::HEARTBEAT => "Heartbeat",
        tag::HEARTBEAT_RESPONSE => "HeartbeatResponse",
        tag::SNAPSHOT => "Snapshot",
        tag::SNAPSHOT_RESPONSE => "SnapshotResponse",
        tag::TIMEOUT_NOW => "TimeoutNow",
        tag::READ_INDEX => "ReadIndex",
        tag::READ_INDEX_RESPONSE => "ReadIndexResponse",
        tag::REMOVED => "Removed",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use pack_io::Encode;
    use proptest::prelude::*;

    use super::Sink;

    proptest! {
        /// The sink writes the bytes pack-io writes, for every kind of write.
        #[test]
        fn the_sink_writes_what_pack_io_writes(values in proptest::collection::vec(any::<u64>(), 0..32), bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut ours = BytesMut::new();
            // pack-io's own `Encode` for `BytesMut`.
            let mut theirs = BytesMut::new();
            for &v in &values {
                // Small values too: most fields are one byte.
                for v in [v, v >> 57, v >> 50, v >> 36] {
                    Sink(&mut ours).write_varint_u64(v).unwrap();
                    theirs.write_varint_u64(v).unwrap();
                }
            }
            Sink(&mut ours).write_bytes(&bytes).unwrap();
            theirs.write_bytes(&bytes).unwrap();
            Sink(&mut ours).write_byte(7).unwrap();
            theirs.write_byte(7).unwrap();
            prop_assert_eq!(&ours[..], &theirs[..]);
        }
    }
}
