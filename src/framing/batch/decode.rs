//! Reading batch frames: the checks every frame gets (limits, format byte,
//! checksum), `from` and `to`, the item count (bounded before the item
//! vector is allocated), then each item. Group messages go through the
//! single-message body codec ([`read_kind_and_body`]).

use bytes::Bytes;
use pack_io::Decoder;

use super::{BATCH_FORMAT_VERSION, MIN_ITEM_BYTES, item};
use crate::framing::decode::{finish, open, read_kind_and_body, read_node_id};
use crate::framing::wire::{read_body, read_u64};
use crate::framing::{DecodeLimits, FrameError};
use crate::message::Message;
use crate::multi::{Envelope, EnvelopeBody, GroupId};
use crate::types::NodeId;

/// Decodes one batch frame. See [`super::decode_batch`].
pub(crate) fn decode(frame: &Bytes, limits: &DecodeLimits) -> Result<Vec<Envelope>, FrameError> {
    decode_with(frame, limits, |envelope, _| envelope)
}

/// Decodes one batch frame into `item(envelope, length)` for each item, in
/// order: `length` is the bytes the item took in the frame, which is what
/// [`encoded_batch_len`](super::encoded_batch_len) adds for it (a receiver
/// charging each envelope its share of the frame need not size it again).
/// Nothing is returned unless the whole frame decodes.
pub(crate) fn decode_with<T>(
    frame: &Bytes,
    limits: &DecodeLimits,
    item: impl Fn(Envelope, usize) -> T,
) -> Result<Vec<T>, FrameError> {
    let mut dec = open(frame, limits, BATCH_FORMAT_VERSION)?;
    let from = read_node_id(&mut dec, "from")?;
    let to = read_node_id(&mut dec, "to")?;
    let count = read_u64(&mut dec)?;
    if count > limits.max_batch_items as u64 {
        return Err(FrameError::TooManyItems { count, max: limits.max_batch_items });
    }
    // `count <= max_batch_items`, so it fits in `usize`. Refuse a count the
    // remaining bytes cannot hold before reserving room for it.
    let count = count as usize;
    let remaining = dec.remaining();
    if count > remaining / MIN_ITEM_BYTES {
        return Err(FrameError::Truncated { needed: count.saturating_mul(MIN_ITEM_BYTES), remaining });
    }
    let items = Items { frame, limits, from, to };
    let mut envelopes = Vec::with_capacity(count);
    for _ in 0..count {
        let before = dec.remaining();
        let body = items.read(&mut dec)?;
        envelopes.push(item(Envelope { from, to, body }, before - dec.remaining()));
    }
    finish(&dec)?;
    Ok(envelopes)
}

/// What every item needs: the frame (for zero-copy slices), the limits, and
/// the pair of nodes the frame names once for all its items.
struct Items<'f> {
    frame: &'f Bytes,
    limits: &'f DecodeLimits,
    from: NodeId,
    to: NodeId,
}

impl Items<'_> {
    fn read(&self, dec: &mut Decoder<'_>) -> Result<EnvelopeBody, FrameError> {
        let tag = read_u64(dec)?;
        match tag {
            item::RAFT => {
                let group = read_group(dec)?;
                let term = read_u64(dec)?;
                let body = read_kind_and_body(dec, self.frame, self.limits)?;
                Ok(EnvelopeBody::Raft { group, message: Message { from: self.from, to: self.to, term, body } })
            }
            item::QUIESCE => {
                let group = read_group(dec)?;
                let (term, commit) = read_body(dec, "Quiesce", |d| Ok((read_u64(d)?, read_u64(d)?)))?;
                Ok(EnvelopeBody::Quiesce { group, term, commit })
            }
            item::PING => {
                read_body(dec, "Ping", |_| Ok(()))?;
                Ok(EnvelopeBody::Ping)
            }
            _ => Err(FrameError::UnknownItemKind { tag }),
        }
    }
}

fn read_group(dec: &mut Decoder<'_>) -> Result<GroupId, FrameError> {
    match read_u64(dec)? {
        0 => Err(FrameError::ZeroGroupId),
        group => Ok(group),
    }
}
