//! Batch frames (format 3): every envelope one host sends one peer in one
//! host turn — group messages of any number of groups, quiescence notices,
//! a ping — in one checksummed frame, with the sender and the receiver
//! written once (`docs/PROTOCOL.md`, "Batch frame").
//!
//! The group messages reuse the single-message body codec as is: an item is
//! the group id, the message's term, then exactly the kind tag and the
//! versioned body a single-message frame carries. Only `from` and `to`,
//! common to every item, are not repeated.

mod decode;
mod encode;
mod error;

use bytes::{Bytes, BytesMut};

pub use error::BatchEncodeError;

use super::{DecodeLimits, FrameError};
use crate::multi::Envelope;
use crate::types::NodeId;

/// The format byte of a batch frame. [`decode`](super::decode) refuses it
/// with [`FrameError::BatchFrame`]; builds that predate batch frames (raft-io
/// 0.7, which speaks format 1 only, and 0.8 builds before it) refuse it as
/// they refuse any format byte but their own, with
/// [`FrameError::UnsupportedFormat`]` { version: 3 }`.
///
/// The checksum, the primitives and the message bodies are those of format
/// [`FORMAT_VERSION`](super::FORMAT_VERSION) (2), which stays the format of
/// single-message frames: both are current, neither replaces the other.
pub const BATCH_FORMAT_VERSION: u8 = 3;

/// Item-kind tags of a batch frame. Frozen: a tag is never reused or
/// renumbered, and a new kind takes the next free number.
pub(crate) mod item {
    /// A group's Raft message ([`EnvelopeBody::Raft`](crate::multi::EnvelopeBody::Raft)).
    pub(crate) const RAFT: u64 = 0;
    /// A quiescence notice ([`EnvelopeBody::Quiesce`](crate::multi::EnvelopeBody::Quiesce)).
    pub(crate) const QUIESCE: u64 = 1;
    /// A liveness ping ([`EnvelopeBody::Ping`](crate::multi::EnvelopeBody::Ping)).
    pub(crate) const PING: u64 = 2;
}

/// The smallest possible encoding of one item: a ping (its tag, then an
/// empty versioned body `01 00`). Used to refuse an item count the frame
/// cannot hold before anything is allocated for it.
pub(crate) const MIN_ITEM_BYTES: usize = 3;

/// Encodes `envelopes`, all from `from` to `to`, into a new batch frame, in
/// their order (an empty batch is a valid frame).
///
/// # Errors
///
/// [`BatchEncodeError`] when an envelope cannot go in this frame: `from` or
/// `to` is node id 0, an envelope (or the Raft message inside it) is not
/// from `from` to `to`, or an item names group 0. Nothing is encoded then:
/// it is a bug of the caller, reported rather than panicked on or sent.
///
/// # Example
///
/// ```
/// use raft_io::framing::{self, DecodeLimits};
/// use raft_io::multi::{Envelope, EnvelopeBody};
/// use raft_io::{Heartbeat, Message, MessageBody};
///
/// // What host 1 sends host 2 in one turn: a heartbeat of group 7, a
/// // quiescence notice of group 9 and a ping.
/// let heartbeat = Message { from: 1, to: 2, term: 4, body: MessageBody::Heartbeat(Heartbeat { commit: 10, round: 3 }) };
/// let envelopes = vec![
///     Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group: 7, message: heartbeat } },
///     Envelope { from: 1, to: 2, body: EnvelopeBody::Quiesce { group: 9, term: 2, commit: 40 } },
///     Envelope { from: 1, to: 2, body: EnvelopeBody::Ping },
/// ];
/// let frame = framing::encode_batch(1, 2, &envelopes)?;
/// assert_eq!(frame.len(), framing::encoded_batch_len(1, 2, &envelopes)?);
///
/// // The receiver hands each envelope to `MultiNode::receive`.
/// let received = framing::decode_batch(&frame, &DecodeLimits::default())?;
/// assert_eq!(received, envelopes);
///
/// // A single-message frame is not a batch, and the reverse.
/// let single = framing::encode(&Message { from: 1, to: 2, term: 4, body: MessageBody::TimeoutNow });
/// assert_eq!(framing::decode_batch(&single, &DecodeLimits::default()), Err(framing::FrameError::SingleMessageFrame));
/// assert_eq!(framing::decode(&frame, &DecodeLimits::default()), Err(framing::FrameError::BatchFrame));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_batch<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
) -> Result<Bytes, BatchEncodeError> {
    let mut buf = BytesMut::new();
    encode_batch_into(from, to, envelopes, &mut buf)?;
    Ok(buf.freeze())
}

/// Appends the batch frame of `envelopes`, all from `from` to `to`, to
/// `buf`, and returns its length. One pass over `envelopes`; `buf` grows as
/// the items are written (reserve [`encoded_batch_len`] bytes first to make
/// it one allocation, or reuse a buffer across turns).
///
/// # Errors
///
/// As [`encode_batch`]; `buf` is then left as it was.
pub fn encode_batch_into<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
    buf: &mut BytesMut,
) -> Result<usize, BatchEncodeError> {
    encode::encode_into(from, to, envelopes, buf)
}

/// The exact length of the frame [`encode_batch`] produces for `envelopes`,
/// computed without encoding them (a transport's length prefix, a budget
/// check).
///
/// # Errors
///
/// As [`encode_batch`].
pub fn encoded_batch_len<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
) -> Result<usize, BatchEncodeError> {
    encode::encoded_len(from, to, envelopes)
}

/// Decodes one batch frame into its envelopes, in the order they were
/// encoded, within `limits`. Every envelope has the frame's `from` and `to`
/// (so do the Raft messages inside); hand each to
/// [`MultiNode::receive`](crate::multi::MultiNode::receive), which drops and
/// counts those for a group it does not host or addressed to another node.
///
/// Allocates the item vector (the item count is checked against
/// [`DecodeLimits::max_batch_items`] and the bytes present first), plus what
/// each item needs as in [`decode`](super::decode); entry data and snapshot
/// chunks are slices of `frame`.
///
/// # Errors
///
/// A [`FrameError`] for any frame that is not a valid batch frame, the whole
/// frame refused: [`FrameError::SingleMessageFrame`] for a single-message
/// frame, and for a batch frame everything [`decode`](super::decode) refuses
/// in a message, plus [`FrameError::TooManyItems`],
/// [`FrameError::UnknownItemKind`] and [`FrameError::ZeroGroupId`].
pub fn decode_batch(frame: &Bytes, limits: &DecodeLimits) -> Result<Vec<Envelope>, FrameError> {
    decode::decode(frame, limits)
}

/// [`decode_batch`], each envelope with the bytes its item took in the
/// frame: what [`encoded_batch_len`] counts for it, so a receiver that
/// charges each envelope its share of a frame reads it off the decoding
/// instead of sizing every envelope again (the TCP transport's readers).
#[cfg(feature = "net")]
pub(crate) fn decode_batch_sized(frame: &Bytes, limits: &DecodeLimits) -> Result<Vec<(Envelope, usize)>, FrameError> {
    decode::decode_with(frame, limits, |envelope, len| (envelope, len))
}
