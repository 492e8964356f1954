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
///
/// An item that took less than half of the frame gets its payload (its
/// entries' data, its snapshot chunk's bytes) copied into a buffer of its
/// own. Borrowed, it would keep the whole frame in memory for as long as
/// it lives — queued, then in its group's log — while charged only its own
/// bytes: a peer could pin a frame of megabytes with a few bytes each. So
/// no envelope keeps more than twice what it is charged, and at most one
/// item of a frame (at least half of it) borrows from it: at most one copy
/// of the rest of the frame.
#[cfg(feature = "net")]
pub(crate) fn decode_batch_sized(frame: &Bytes, limits: &DecodeLimits) -> Result<Vec<(Envelope, usize)>, FrameError> {
    let whole = frame.len();
    decode::decode_with(frame, limits, |mut envelope, len| {
        if len.saturating_mul(2) < whole {
            own_payload(&mut envelope);
        }
        (envelope, len)
    })
}

/// Gives `envelope`'s payload bytes one buffer of their own (see
/// [`decode_batch_sized`]).
#[cfg(feature = "net")]
fn own_payload(envelope: &mut Envelope) {
    use crate::message::MessageBody;
    use crate::multi::EnvelopeBody;
    let EnvelopeBody::Raft { message, .. } = &mut envelope.body else { return };
    match &mut message.body {
        MessageBody::Append(append) => {
            let total: usize = append.entries.iter().map(|e| e.data.len()).sum();
            if total == 0 {
                return;
            }
            let mut own = BytesMut::with_capacity(total);
            for e in &append.entries {
                own.extend_from_slice(&e.data);
            }
            let mut own = own.freeze();
            for e in &mut append.entries {
                e.data = own.split_to(e.data.len());
            }
        }
        MessageBody::Snapshot(chunk) => chunk.data = Bytes::copy_from_slice(&chunk.data),
        _ => {}
    }
}

#[cfg(all(test, feature = "net"))]
mod tests {
    use super::*;
    use crate::message::{AppendEntries, Message, MessageBody, SnapshotChunk};
    use crate::multi::EnvelopeBody;
    use crate::types::Entry;

    fn raft(group: u64, body: MessageBody) -> Envelope {
        let message = Message { from: 1, to: 2, term: 1, body };
        Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
    }

    fn append(group: u64, sizes: &[usize]) -> Envelope {
        let entries = sizes.iter().zip(1..).map(|(&n, i)| Entry::normal(1, i, Bytes::from(vec![i as u8; n]))).collect();
        raft(
            group,
            MessageBody::Append(AppendEntries { prev_log_index: 0, prev_log_term: 0, leader_commit: 0, entries }),
        )
    }

    fn chunk(group: u64, n: usize) -> Envelope {
        let data = Bytes::from(vec![7; n]);
        // A leader's snapshot names its configuration (one without voters
        // is refused at decode).
        let membership = crate::Membership::new([1, 2], []).expect("a configuration");
        let meta = crate::SnapshotMeta { index: 5, term: 1, membership };
        raft(
            group,
            MessageBody::Snapshot(Box::new(SnapshotChunk { meta, total_len: n as u64, data, ..Default::default() })),
        )
    }

    /// The payloads an envelope holds.
    fn payloads(e: &Envelope) -> Vec<Bytes> {
        let EnvelopeBody::Raft { message, .. } = &e.body else { return Vec::new() };
        match &message.body {
            MessageBody::Append(a) => a.entries.iter().map(|e| e.data.clone()).collect(),
            MessageBody::Snapshot(c) => vec![c.data.clone()],
            _ => Vec::new(),
        }
    }

    fn inside(b: &Bytes, frame: &Bytes) -> bool {
        let (start, end) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
        (start..end).contains(&(b.as_ptr() as usize))
    }

    /// Only an item of at least half the frame borrows the frame's memory;
    /// a smaller one, whether an append or a snapshot chunk, holds a copy,
    /// so that it never keeps the whole frame alive, and decodes equal.
    #[test]
    fn only_an_item_of_half_the_frame_or_more_borrows_it() {
        let limits = DecodeLimits::default();
        for big in [append(9, &[3000, 1000]), chunk(9, 4000)] {
            let sent = vec![append(1, &[1, 16]), chunk(2, 8), big];
            let frame = encode_batch(1, 2, &sent).unwrap();
            let got = decode_batch_sized(&frame, &limits).unwrap();
            assert_eq!(got.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(), sent);
            for (e, len) in &got {
                let borrowed = payloads(e).iter().filter(|b| inside(b, &frame)).count();
                if len * 2 >= frame.len() {
                    assert_eq!(borrowed, payloads(e).len(), "the large item borrows");
                } else {
                    assert_eq!(borrowed, 0, "an item of {len} bytes in a frame of {} holds a copy", frame.len());
                }
            }
        }
        // A frame of one item is that item: it borrows.
        let frame = encode_batch(1, 2, &[append(1, &[5, 6])]).unwrap();
        let got = decode_batch_sized(&frame, &limits).unwrap();
        assert!(payloads(&got[0].0).iter().all(|b| inside(b, &frame)));
    }
}
