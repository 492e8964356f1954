//! Writing batch frames: the header (format byte, checksum placeholder,
//! `from`, `to`), the item count, the items, then the checksum patched in.
//! Group messages go through the single-message body codec
//! ([`write_kind_and_body`]).

use bytes::BytesMut;
use pack_io::{Encode, Serialize};

use super::{BATCH_FORMAT_VERSION, BatchEncodeError, item};
use crate::framing::encode::{kind_and_body_len, seal, write_kind_and_body};
use crate::framing::wire::{CHECKSUM_LEN, Sink, WireBody, body_len, vlen, write_body};
use crate::multi::{Envelope, EnvelopeBody};
use crate::types::{Index, NodeId, Term};

/// Exact length of the frame [`encode_into`] writes for `envelopes`.
pub(crate) fn encoded_len<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
) -> Result<usize, BatchEncodeError> {
    check_nodes(from, to)?;
    let mut count = 0u64;
    let mut items = 0usize;
    for (index, envelope) in envelopes.into_iter().enumerate() {
        check(envelope, index, from, to)?;
        items += item_len(&envelope.body);
        count += 1;
    }
    Ok(header_len(from, to) + vlen(count) + items)
}

/// Appends the frame to `buf` in one pass over `envelopes`. The count
/// precedes the items but is known only after them: the items are written
/// first, then moved up by the count's few bytes (a copy of the frame, cheap
/// beside the checksum's pass over it).
pub(crate) fn encode_into<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
    buf: &mut BytesMut,
) -> Result<usize, BatchEncodeError> {
    let start = buf.len();
    let written = write_frame(from, to, envelopes, buf);
    if written.is_err() {
        buf.truncate(start);
    }
    written?;
    if let Some(frame) = buf.get_mut(start..) {
        seal(frame);
    }
    Ok(buf.len() - start)
}

fn write_frame<'a>(
    from: NodeId,
    to: NodeId,
    envelopes: impl IntoIterator<Item = &'a Envelope>,
    buf: &mut BytesMut,
) -> Result<(), BatchEncodeError> {
    check_nodes(from, to)?;
    buf.reserve(header_len(from, to) + 1);
    let mut sink = Sink(buf);
    BATCH_FORMAT_VERSION.serialize(&mut sink).map_err(BatchEncodeError::Codec)?;
    [0u8; CHECKSUM_LEN].serialize(&mut sink).map_err(BatchEncodeError::Codec)?;
    from.serialize(&mut sink).map_err(BatchEncodeError::Codec)?;
    to.serialize(&mut sink).map_err(BatchEncodeError::Codec)?;
    let items_at = buf.len();
    let mut count = 0u64;
    for (index, envelope) in envelopes.into_iter().enumerate() {
        check(envelope, index, from, to)?;
        write_item(&envelope.body, &mut Sink(buf)).map_err(BatchEncodeError::Codec)?;
        count += 1;
    }
    // Make room for the count in front of the items, then write it there.
    let count_len = vlen(count);
    buf.resize(buf.len() + count_len, 0);
    let Some(tail) = buf.get_mut(items_at..) else { return Ok(()) };
    tail.rotate_right(count_len);
    if let Some(slot) = tail.get_mut(..count_len) {
        write_varint_into(count, slot);
    }
    Ok(())
}

/// Writes `value` as an unsigned LEB128 varint into `slot`, which is
/// [`vlen`]`(value)` bytes long (the bytes pack-io writes for it).
fn write_varint_into(mut value: u64, slot: &mut [u8]) {
    for byte in slot.iter_mut() {
        let low = (value & 0x7F) as u8;
        value >>= 7;
        *byte = if value == 0 { low } else { low | 0x80 };
    }
}

/// Length of the format byte, the checksum, `from` and `to`.
fn header_len(from: NodeId, to: NodeId) -> usize {
    1 + CHECKSUM_LEN + vlen(from) + vlen(to)
}

fn check_nodes(from: NodeId, to: NodeId) -> Result<(), BatchEncodeError> {
    if from == 0 {
        return Err(BatchEncodeError::ZeroNodeId { field: "from" });
    }
    if to == 0 {
        return Err(BatchEncodeError::ZeroNodeId { field: "to" });
    }
    Ok(())
}

/// Refuses an envelope that cannot be an item of the `from`–`to` frame:
/// other nodes (on the envelope or on its message), or group 0.
fn check(envelope: &Envelope, index: usize, from: NodeId, to: NodeId) -> Result<(), BatchEncodeError> {
    if (envelope.from, envelope.to) != (from, to) {
        return Err(BatchEncodeError::OtherNodes { index, from: envelope.from, to: envelope.to });
    }
    match &envelope.body {
        EnvelopeBody::Raft { message, .. } if (message.from, message.to) != (from, to) => {
            Err(BatchEncodeError::OtherNodes { index, from: message.from, to: message.to })
        }
        EnvelopeBody::Raft { group: 0, .. } | EnvelopeBody::Quiesce { group: 0, .. } => {
            Err(BatchEncodeError::ZeroGroupId { index })
        }
        _ => Ok(()),
    }
}

fn item_len(body: &EnvelopeBody) -> usize {
    match body {
        EnvelopeBody::Raft { group, message } => {
            vlen(item::RAFT) + vlen(*group) + vlen(message.term) + kind_and_body_len(&message.body)
        }
        EnvelopeBody::Quiesce { group, term, commit } => {
            vlen(item::QUIESCE) + vlen(*group) + body_len(&QuiesceBody { term: *term, commit: *commit })
        }
        EnvelopeBody::Ping => vlen(item::PING) + body_len(&PingBody),
    }
}

fn write_item<E: Encode + ?Sized>(body: &EnvelopeBody, out: &mut E) -> pack_io::Result<()> {
    match body {
        EnvelopeBody::Raft { group, message } => {
            out.write_varint_u64(item::RAFT)?;
            group.serialize(out)?;
            message.term.serialize(out)?;
            write_kind_and_body(&message.body, out)
        }
        EnvelopeBody::Quiesce { group, term, commit } => {
            out.write_varint_u64(item::QUIESCE)?;
            group.serialize(out)?;
            write_body(&QuiesceBody { term: *term, commit: *commit }, out)
        }
        EnvelopeBody::Ping => {
            out.write_varint_u64(item::PING)?;
            write_body(&PingBody, out)
        }
    }
}

/// The fields of a quiescence notice after its group: a versioned body, so
/// fields can be added later.
struct QuiesceBody {
    term: Term,
    commit: Index,
}

impl WireBody for QuiesceBody {
    fn fields_len(&self) -> usize {
        vlen(self.term) + vlen(self.commit)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.term.serialize(out)?;
        self.commit.serialize(out)
    }
}

/// A ping has no fields; its body is still versioned (`01 00`) so that
/// fields can be added later.
struct PingBody;

impl WireBody for PingBody {
    fn fields_len(&self) -> usize {
        0
    }

    fn write_fields<E: Encode + ?Sized>(&self, _out: &mut E) -> pack_io::Result<()> {
        Ok(())
    }
}
