//! [`FrameError`]: why a frame was refused.

use pack_io::SerialError;

use crate::membership::MembershipError;

/// Why [`decode`](super::decode) or [`decode_batch`](super::decode_batch)
/// refused a frame.
///
/// Every variant means the same thing to a transport: drop the frame (Raft
/// tolerates a lost message) and leave the node untouched. The variants exist
/// so that logs and metrics can tell a hostile or buggy peer (wrong tags,
/// impossible lengths) from a version mismatch (a newer format or message
/// kind) or a misconfigured limit.
///
/// No variant echoes the frame's contents (a checksum mismatch shows the
/// two checksums, nothing else), so an error can be logged safely.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame is longer than [`DecodeLimits::max_frame_bytes`]
    /// (checked before a single byte is decoded).
    ///
    /// [`DecodeLimits::max_frame_bytes`]: super::DecodeLimits::max_frame_bytes
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The frame (or a message body inside it) ends before the value being
    /// read.
    #[error("truncated frame: needed {needed} more byte(s), {remaining} remaining")]
    Truncated {
        /// Bytes the decoder needed at least.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix (of a body, an entry's data, a snapshot chunk, a
    /// membership) claims more bytes than the frame has left.
    #[error("declared length {declared} runs past the frame ({remaining} byte(s) remaining)")]
    LengthPastFrame {
        /// The declared length.
        declared: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The frame's format byte names a format this build does not speak: a
    /// frame from a future, incompatible version, a format-1 frame (raft-io
    /// 0.7 and earlier, which carried no checksum), a frame whose format
    /// byte was corrupted, or not a raft-io frame at all.
    #[error(
        "unsupported frame format {version} (this build speaks formats {} and {})",
        super::FORMAT_VERSION,
        super::BATCH_FORMAT_VERSION
    )]
    UnsupportedFormat {
        /// The format byte found.
        version: u8,
    },
    /// [`decode`](super::decode) was handed a batch frame (format byte
    /// [`BATCH_FORMAT_VERSION`](super::BATCH_FORMAT_VERSION)): read it with
    /// [`decode_batch`](super::decode_batch). Checked with the format byte,
    /// before the checksum.
    #[error("frame format {} is a batch frame, not a single message", super::BATCH_FORMAT_VERSION)]
    BatchFrame,
    /// [`decode_batch`](super::decode_batch) was handed a single-message
    /// frame (format byte [`FORMAT_VERSION`](super::FORMAT_VERSION)): read it
    /// with [`decode`](super::decode). Checked with the format byte, before
    /// the checksum.
    #[error("frame format {} is a single-message frame, not a batch", super::FORMAT_VERSION)]
    SingleMessageFrame,
    /// The frame's checksum does not match its bytes: the frame was
    /// corrupted (or forged without care) between the sender's encoder and
    /// this decoder. Checked right after the format byte, before any field
    /// is read or anything is allocated, so a damaged frame never becomes a
    /// message — whichever field the damage hit.
    #[error("checksum mismatch: the frame's bytes hash to {expected:#010x}, its checksum field holds {found:#010x}")]
    ChecksumMismatch {
        /// The CRC-32C of the frame's bytes, computed by the decoder.
        expected: u32,
        /// The checksum the frame carries.
        found: u32,
    },
    /// The message-kind tag names no message this build knows: a message kind
    /// added by a newer version, or garbage. Peers must negotiate new kinds
    /// before sending them (see `docs/PROTOCOL.md`).
    #[error("unknown message kind {tag}")]
    UnknownKind {
        /// The tag found.
        tag: u64,
    },
    /// A body's version is 0 (reserved) or does not fit in 32 bits.
    #[error("invalid {kind} body version {version}")]
    InvalidBodyVersion {
        /// The message kind whose body it is.
        kind: &'static str,
        /// The version found.
        version: u64,
    },
    /// An AppendEntries carries more entries than
    /// [`DecodeLimits::max_entries`] (checked before anything is allocated
    /// for them).
    ///
    /// [`DecodeLimits::max_entries`]: super::DecodeLimits::max_entries
    #[error("{count} entries exceed the limit of {max} per message")]
    TooManyEntries {
        /// The declared count.
        count: u64,
        /// The configured limit.
        max: usize,
    },
    /// A batch frame declares more items than
    /// [`DecodeLimits::max_batch_items`] (checked before anything is
    /// allocated for them).
    ///
    /// [`DecodeLimits::max_batch_items`]: super::DecodeLimits::max_batch_items
    #[error("{count} items exceed the limit of {max} per batch")]
    TooManyItems {
        /// The declared count.
        count: u64,
        /// The configured limit.
        max: usize,
    },
    /// A batch item's kind tag names no item this build knows (group
    /// message 0, quiescence notice 1, ping 2): an item kind added by a
    /// newer version, or garbage.
    #[error("unknown batch item kind {tag}")]
    UnknownItemKind {
        /// The tag found.
        tag: u64,
    },
    /// A batch item names group 0, which is reserved (invalid).
    #[error("a batch item names group 0, which is reserved")]
    ZeroGroupId,
    /// Bytes follow the message (or a batch frame's last item).
    #[error("{remaining} trailing byte(s) after the message")]
    TrailingBytes {
        /// How many.
        remaining: usize,
    },
    /// A body written at this build's own version has bytes after its last
    /// field. (A body of a newer version may, and they are skipped.)
    #[error("{remaining} unread byte(s) at the end of a {kind} body")]
    BodyTrailingBytes {
        /// The message kind whose body it is.
        kind: &'static str,
        /// How many bytes were left unread.
        remaining: usize,
    },
    /// The envelope's `from` or `to` is node id 0, which is reserved for
    /// "no node".
    #[error("`{field}` is node id 0, which is reserved")]
    ZeroNodeId {
        /// `"from"` or `"to"`.
        field: &'static str,
    },
    /// A boolean field holds a byte other than 0 or 1.
    #[error("field `{field}` holds {byte:#04x}, not a boolean")]
    InvalidBool {
        /// The field.
        field: &'static str,
        /// The byte found.
        byte: u8,
    },
    /// An entry's kind byte names no [`EntryKind`](crate::EntryKind).
    #[error("entry {index} has unknown kind {byte}")]
    UnknownEntryKind {
        /// The entry's index, as sent.
        index: u64,
        /// The kind byte found.
        byte: u8,
    },
    /// Bytes that must hold an encoded [`Membership`](crate::Membership) (a
    /// configuration entry's data, a snapshot's membership) do not.
    #[error("invalid membership in {field}: {source}")]
    InvalidMembership {
        /// Where the membership was: `"config entry"` or
        /// `"snapshot membership"`.
        field: &'static str,
        /// Why [`Membership::decode`](crate::Membership::decode) refused it.
        #[source]
        source: MembershipError,
    },
    /// The frame is not the one encoding of its value: an over-long varint
    /// (a number with redundant zero high bytes).
    #[error("non-canonical encoding: {reason}")]
    NonCanonical {
        /// What was not canonical.
        reason: &'static str,
    },
    /// Any other failure reported by the pack-io decoder.
    #[error("codec error: {0}")]
    Codec(SerialError),
}

impl From<SerialError> for FrameError {
    fn from(error: SerialError) -> Self {
        match error {
            SerialError::UnexpectedEof { needed, remaining } => Self::Truncated { needed, remaining },
            SerialError::InvalidLength { declared, remaining } => Self::LengthPastFrame { declared, remaining },
            SerialError::TrailingBytes { remaining } => Self::TrailingBytes { remaining },
            SerialError::NonCanonical { reason } => Self::NonCanonical { reason },
            other => Self::Codec(other),
        }
    }
}
