//! The wire format of [`Message`]: [`encode`] a message into a frame,
//! [`decode`] a frame back into a message (feature `framing`); and of the
//! envelopes [`MultiNode`](crate::multi::MultiNode) hosts exchange:
//! [`encode_batch`] every envelope of a host turn for one peer into one
//! *batch frame*, [`decode_batch`] it back into envelopes.
//!
//! A *frame* is the bytes of exactly one message (format
//! [`FORMAT_VERSION`]), or of one batch of envelopes between two nodes
//! (format [`BATCH_FORMAT_VERSION`]; each decoder refuses the other's
//! frames by name). Delimiting frames on a
//! byte stream (a length prefix on TCP, one datagram, one queue item) is the
//! transport's job; this module only turns messages into bytes and back.
//! Everything below holds for batch frames too.
//! The byte layout of every message, and the rules for evolving it, are in
//! `docs/PROTOCOL.md` ("Wire format"); the fixtures in
//! `tests/fixtures/wire/` freeze it.
//!
//! # Properties
//!
//! * **Checksummed.** Every frame carries a CRC-32C of all its other bytes,
//!   right after the format byte. [`decode`] checks it before reading a
//!   single field ([`FrameError::ChecksumMismatch`]), so a frame damaged
//!   anywhere (a flipped bit in a term, a length, an entry's data) is
//!   refused instead of becoming a different, plausible message. A single
//!   flipped bit anywhere, and any burst of up to 32 bits within the
//!   checksummed bytes, is always caught; other damage slips through with a
//!   probability of about 2^-32.
//! * **Built on pack-io 2.** Every field is a pack-io value (LEB128 varints,
//!   strict booleans, length-prefixed byte strings) and every message body is
//!   laid out as a pack-io versioned struct: `version, body_len, fields`.
//! * **Deterministic and canonical.** Equal messages encode to equal bytes.
//!   A frame whose bodies are all at this build's version is accepted only
//!   in its one canonical encoding (minimal varints, no bytes after the last
//!   field), so `encode(&decode(frame)?) == frame`. A body of a *newer*
//!   version is accepted too (its extra trailing fields are skipped) and
//!   re-encodes at this build's version.
//! * **Zero-copy.** The data of decoded entries and snapshot chunks are
//!   [`Bytes`] slices of the frame ([`Bytes::slice_ref`]), not copies.
//!   Decoding an AppendEntries costs O(1) allocations whatever the number of
//!   entries: the entry vector, plus one if the frame's `Bytes` must first
//!   become shared (a `Bytes` built from a `Vec` does, once). Configuration
//!   entries are additionally checked with [`Membership::decode`], which
//!   allocates while it runs.
//! * **Bounded.** [`DecodeLimits`] caps the frame length and the entries per
//!   message; both are checked before anything is allocated for them, and no
//!   length prefix is trusted beyond the bytes actually present.
//! * **Never panics.** Every malformed frame is a [`FrameError`]; a transport
//!   drops the frame and the node never sees it.
//!
//! # What decoding checks, and what it leaves to the node
//!
//! The decoder checks what only bytes can get wrong: the format byte, the
//! checksum, the kind tag, body versions, lengths, counts, booleans,
//! canonical varints, trailing bytes, entry kinds, that a configuration
//! entry's data and a snapshot's membership are valid [`Membership`]
//! encodings, and that `from` and `to` are not the reserved node id 0. It does **not** check
//! relations between fields or against the receiver's state (that entries
//! are contiguous and follow `prev_log_index`, that `to` is the receiver,
//! that a snapshot chunk lies within `total_len`): messages from an
//! in-process transport never pass through here, so the node checks those
//! itself.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use raft_io::framing::{self, DecodeLimits};
//! use raft_io::{AppendEntries, Entry, Message, MessageBody};
//!
//! let message = Message {
//!     from: 1,
//!     to: 2,
//!     term: 3,
//!     body: MessageBody::Append(AppendEntries {
//!         prev_log_index: 0,
//!         prev_log_term: 0,
//!         leader_commit: 0,
//!         entries: vec![Entry::normal(3, 1, Bytes::from_static(b"set x=1"))],
//!     }),
//! };
//! let frame: Bytes = framing::encode(&message);
//! let decoded = framing::decode(&frame, &DecodeLimits::default()).unwrap();
//! assert_eq!(decoded, message);
//! ```

mod batch;
mod decode;
mod encode;
mod error;
mod wire;

use bytes::{Bytes, BytesMut};

#[cfg(feature = "net")]
pub(crate) use batch::decode_batch_sized;
pub use batch::{
    BATCH_FORMAT_VERSION, BatchEncodeError, decode_batch, encode_batch, encode_batch_into, encoded_batch_len,
};
pub use error::FrameError;
pub use pack_io::SerialError;

#[cfg(doc)]
use crate::membership::Membership;
use crate::message::Message;

/// The format byte every single-message frame starts with. [`decode`]
/// refuses a batch frame ([`BATCH_FORMAT_VERSION`]) with
/// [`FrameError::BatchFrame`] and any other value with
/// [`FrameError::UnsupportedFormat`]. It changes only for an
/// incompatible change of the envelope, which peers must negotiate first.
///
/// Format 2 (raft-io 0.8) added the frame checksum. Format-1 frames (raft-io
/// 0.7 and earlier) are refused, not read unchecked: accepting them would
/// leave a 0.7 node's frames unprotected, and let damage confined to the
/// format byte (two bits turn 2 into 1) skip the checksum. A 0.7 and a 0.8
/// node cannot talk; the TCP transport refuses the pair at its handshake
/// (`docs/PROTOCOL.md`, "Upgrading from format 1").
pub const FORMAT_VERSION: u8 = 2;

/// Limits a decoder enforces before it allocates anything for a frame.
///
/// The defaults accept everything a peer running with the default
/// [`RaftConfig`](crate::RaftConfig) sends (at most 512 entries and about
/// 1 MiB of entries per AppendEntries), with room to spare:
///
/// | limit | default | bounds |
/// |---|---|---|
/// | [`max_frame_bytes`](Self::max_frame_bytes) | 4 MiB | the frame a transport may hand over |
/// | [`max_entries`](Self::max_entries) | 4096 | the entry vector: 4096 × 56 B (an in-memory `Entry`) = 224 KiB |
/// | [`max_batch_items`](Self::max_batch_items) | 16384 | the item vector of a batch frame: 16384 × 96 B (an in-memory [`Envelope`](crate::multi::Envelope)) = 1.5 MiB |
///
/// Set them at least as high as the senders' `max_message_bytes` (plus a
/// few bytes of header per entry) and `max_entries_per_message`, or their
/// largest messages will be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeLimits {
    /// Largest frame accepted, in bytes ([`FrameError::TooLarge`] beyond).
    pub max_frame_bytes: usize,
    /// Most entries accepted in one AppendEntries
    /// ([`FrameError::TooManyEntries`] beyond).
    pub max_entries: usize,
    /// Most items accepted in one batch frame ([`decode_batch`];
    /// [`FrameError::TooManyItems`] beyond). The entry limit applies to each
    /// AppendEntries item on its own.
    pub max_batch_items: usize,
}

impl DecodeLimits {
    /// Default of [`max_frame_bytes`](Self::max_frame_bytes): 4 MiB.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;
    /// Default of [`max_entries`](Self::max_entries): 4096.
    pub const DEFAULT_MAX_ENTRIES: usize = 4096;
    /// Default of [`max_batch_items`](Self::max_batch_items): 16384.
    pub const DEFAULT_MAX_BATCH_ITEMS: usize = 16384;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_batch_items: Self::DEFAULT_MAX_BATCH_ITEMS,
        }
    }
}

/// Encodes `message` into a new frame: one allocation, sized exactly (a
/// snapshot chunk takes one more, for its membership blob).
///
/// Any [`Message`] can be encoded. A message no correct node sends (node id
/// 0 in `from` or `to`, a configuration entry whose data is not a valid
/// membership) encodes, but [`decode`] refuses it.
pub fn encode(message: &Message) -> Bytes {
    let mut buf = BytesMut::with_capacity(encoded_len(message));
    encode_into(message, &mut buf);
    buf.freeze()
}

/// Appends the frame for `message` to `buf`. Allocates nothing when `buf`
/// already has [`encoded_len`] bytes of spare capacity (except the
/// membership blob of a snapshot chunk), so a transport can reuse one
/// buffer for every message.
pub fn encode_into(message: &Message, buf: &mut BytesMut) {
    encode::encode_into(message, buf);
}

/// The exact length of the frame [`encode`] produces for `message`, computed
/// without encoding it.
pub fn encoded_len(message: &Message) -> usize {
    encode::encoded_len(message)
}

/// Decodes one frame into a message, within `limits`.
///
/// The data of decoded entries and snapshot chunks share `frame`'s memory;
/// the frame's allocation lives as long as any of them does.
///
/// # Errors
///
/// A [`FrameError`] for any frame that is not a valid encoding of one
/// message (see the variants). The caller drops such a frame.
pub fn decode(frame: &Bytes, limits: &DecodeLimits) -> Result<Message, FrameError> {
    decode::decode(frame, limits)
}

/// The memory a decoded message holds beyond the frame bytes it borrows or
/// copies: the message itself and its entries' vector (an entry with no
/// data is 4 bytes on the wire and 56 in memory), or its boxed snapshot
/// chunk and the configuration decoded in it (ids and addresses: a member
/// with a one-byte address is 19 bytes on the wire). A receiver that
/// bounds what it keeps by bytes charges each message its frame bytes plus
/// this, so that a peer cannot hold many times the budget in decoded
/// structures (the TCP transport's inbox).
#[cfg(feature = "net")]
pub(crate) fn decoded_overhead(message: &Message) -> usize {
    use std::mem::size_of;
    size_of::<Message>()
        + match &message.body {
            crate::message::MessageBody::Append(a) => a.entries.capacity() * size_of::<crate::types::Entry>(),
            crate::message::MessageBody::Snapshot(c) => {
                size_of::<crate::message::SnapshotChunk>() + c.meta.membership.heap_bytes()
            }
            _ => 0,
        }
}

/// Turns `unsealed` — a frame with its checksum field left out: the format
/// byte, then everything that follows the checksum — into a frame with the
/// checksum inserted and computed. For the simulator's byte scripts, whose
/// arbitrary frames would otherwise almost never get past the checksum.
#[cfg(feature = "sim")]
pub(crate) fn seal(unsealed: &[u8]) -> Bytes {
    let Some((&format, rest)) = unsealed.split_first() else {
        return Bytes::new();
    };
    let mut frame = BytesMut::with_capacity(unsealed.len() + wire::CHECKSUM_LEN);
    frame.extend_from_slice(&[format]);
    frame.extend_from_slice(&wire::checksum(format, rest).to_le_bytes());
    frame.extend_from_slice(rest);
    frame.freeze()
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::message::MessageBody;

    /// `seal` of a frame with its checksum field cut out gives the frame.
    #[test]
    fn seal_restores_the_checksum_a_script_leaves_out() {
        let message = Message { from: 1, to: 2, term: 3, body: MessageBody::TimeoutNow };
        let frame = encode(&message);
        let mut unsealed = frame[..1].to_vec();
        unsealed.extend_from_slice(&frame[1 + wire::CHECKSUM_LEN..]);
        assert_eq!(seal(&unsealed), frame);
        assert_eq!(decode(&seal(&unsealed), &DecodeLimits::default()), Ok(message));
        assert_eq!(seal(&[]), Bytes::new());
        assert_eq!(seal(&[FORMAT_VERSION]).len(), 1 + wire::CHECKSUM_LEN);
    }
}
