//! Writing messages: the header, then the message body as a versioned
//! struct, then the checksum patched into the header over the bytes just
//! written (layouts in `docs/PROTOCOL.md`).

use bytes::BytesMut;
use pack_io::{Encode, Serialize};

use super::FORMAT_VERSION;
use super::wire::{CHECKSUM_LEN, Sink, WireBody, body_len, bytes_len, checksum, tag, vlen, write_body};
use crate::message::{
    AppendEntries, AppendResponse, Heartbeat, HeartbeatResponse, Message, MessageBody, ReadIndexRequest,
    ReadIndexResponse, RemovalNotice, SnapshotAck, SnapshotChunk, VoteRequest, VoteResponse,
};
use crate::types::Entry;

/// Exact length of the frame [`encode_into`] writes for `message`.
pub(crate) fn encoded_len(message: &Message) -> usize {
    header_len(message) + kind_and_body_len(&message.body)
}

/// Length of everything before the body.
fn header_len(message: &Message) -> usize {
    1 + CHECKSUM_LEN + vlen(message.from) + vlen(message.to) + vlen(message.term)
}

/// Appends the frame for `message` to `out`, with a zero checksum for
/// [`seal`] to patch.
fn write_message<E: Encode + ?Sized>(message: &Message, out: &mut E) -> pack_io::Result<()> {
    FORMAT_VERSION.serialize(out)?;
    [0u8; CHECKSUM_LEN].serialize(out)?;
    message.from.serialize(out)?;
    message.to.serialize(out)?;
    message.term.serialize(out)?;
    write_kind_and_body(&message.body, out)
}

/// Exact length of what [`write_kind_and_body`] writes for `body`.
pub(crate) fn kind_and_body_len(body: &MessageBody) -> usize {
    vlen(kind_tag(body)) + versioned_body_len(body)
}

/// Writes a message's kind tag and its versioned body: the one body codec,
/// shared by single-message frames and the group messages of a batch frame.
pub(crate) fn write_kind_and_body<E: Encode + ?Sized>(body: &MessageBody, out: &mut E) -> pack_io::Result<()> {
    out.write_varint_u64(kind_tag(body))?;
    match body {
        MessageBody::PreVote(b) | MessageBody::Vote(b) => write_body(b, out),
        MessageBody::PreVoteResponse(b) | MessageBody::VoteResponse(b) => write_body(b, out),
        MessageBody::Append(b) => write_body(b, out),
        MessageBody::AppendResponse(b) => write_body(b, out),
        MessageBody::Heartbeat(b) => write_body(b, out),
        MessageBody::HeartbeatResponse(b) => write_body(b, out),
        MessageBody::Snapshot(b) => write_body(b.as_ref(), out),
        MessageBody::SnapshotResponse(b) => write_body(b, out),
        MessageBody::TimeoutNow => write_body(&TimeoutNowBody, out),
        MessageBody::ReadIndex(b) => write_body(b, out),
        MessageBody::ReadIndexResponse(b) => write_body(b, out),
        MessageBody::Removed(b) => write_body(b, out),
    }
}

/// Appends the frame for `message` to `buf`, reserving exactly what it needs
/// (the header's few bytes here, the body's in [`write_body`]), then
/// computes the checksum over the bytes written and patches it in: the
/// frame is written once and read once more, and nothing is allocated
/// beyond the reserve.
pub(crate) fn encode_into(message: &Message, buf: &mut BytesMut) {
    let start = buf.len();
    buf.reserve(header_len(message));
    // pack-io's `Encode` for `BytesMut` has no failure path, and none of the
    // bodies reports one of its own, so this is always `Ok`. Should that
    // ever change, a partial frame must not be left behind.
    if write_message(message, &mut Sink(buf)).is_err() {
        buf.truncate(start);
        return;
    }
    if let Some(frame) = buf.get_mut(start..) {
        seal(frame);
    }
    debug_assert_eq!(buf.len() - start, encoded_len(message), "encoded_len disagrees with the writer");
}

/// Writes the checksum of `frame` (format byte, checksum field, rest) into
/// its checksum field. A frame too short to have one is left as it is.
pub(crate) fn seal(frame: &mut [u8]) {
    let Some((format, after)) = frame.split_first_mut() else { return };
    let Some((sum, rest)) = after.split_at_mut_checked(CHECKSUM_LEN) else { return };
    sum.copy_from_slice(&checksum(*format, rest).to_le_bytes());
}

fn kind_tag(body: &MessageBody) -> u64 {
    match body {
        MessageBody::PreVote(_) => tag::PRE_VOTE,
        MessageBody::PreVoteResponse(_) => tag::PRE_VOTE_RESPONSE,
        MessageBody::Vote(_) => tag::VOTE,
        MessageBody::VoteResponse(_) => tag::VOTE_RESPONSE,
        MessageBody::Append(_) => tag::APPEND,
        MessageBody::AppendResponse(_) => tag::APPEND_RESPONSE,
        MessageBody::Heartbeat(_) => tag::HEARTBEAT,
        MessageBody::HeartbeatResponse(_) => tag::HEARTBEAT_RESPONSE,
        MessageBody::Snapshot(_) => tag::SNAPSHOT,
        MessageBody::SnapshotResponse(_) => tag::SNAPSHOT_RESPONSE,
        MessageBody::TimeoutNow => tag::TIMEOUT_NOW,
        MessageBody::ReadIndex(_) => tag::READ_INDEX,
        MessageBody::ReadIndexResponse(_) => tag::READ_INDEX_RESPONSE,
        MessageBody::Removed(_) => tag::REMOVED,
    }
}

fn versioned_body_len(body: &MessageBody) -> usize {
    match body {
        MessageBody::PreVote(b) | MessageBody::Vote(b) => body_len(b),
        MessageBody::PreVoteResponse(b) | MessageBody::VoteResponse(b) => body_len(b),
        MessageBody::Append(b) => body_len(b),
        MessageBody::AppendResponse(b) => body_len(b),
        MessageBody::Heartbeat(b) => body_len(b),
        MessageBody::HeartbeatResponse(b) => body_len(b),
        MessageBody::Snapshot(b) => body_len(b.as_ref()),
        MessageBody::SnapshotResponse(b) => body_len(b),
        MessageBody::TimeoutNow => body_len(&TimeoutNowBody),
        MessageBody::ReadIndex(b) => body_len(b),
        MessageBody::ReadIndexResponse(b) => body_len(b),
        MessageBody::Removed(b) => body_len(b),
    }
}

/// `TimeoutNow` has no fields today; its body is still a versioned struct so
/// that fields can be added later.
struct TimeoutNowBody;

impl WireBody for TimeoutNowBody {
    fn fields_len(&self) -> usize {
        0
    }

    fn write_fields<E: Encode + ?Sized>(&self, _out: &mut E) -> pack_io::Result<()> {
        Ok(())
    }
}

impl WireBody for RemovalNotice {
    fn fields_len(&self) -> usize {
        vlen(self.config_index)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.config_index.serialize(out)
    }
}

impl WireBody for VoteRequest {
    fn fields_len(&self) -> usize {
        vlen(self.last_log_index) + vlen(self.last_log_term) + 1
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.last_log_index.serialize(out)?;
        self.last_log_term.serialize(out)?;
        self.transfer.serialize(out)
    }
}

impl WireBody for VoteResponse {
    fn fields_len(&self) -> usize {
        1
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.granted.serialize(out)
    }
}

impl WireBody for AppendEntries {
    fn fields_len(&self) -> usize {
        vlen(self.prev_log_index)
            + vlen(self.prev_log_term)
            + vlen(self.leader_commit)
            + vlen(self.entries.len() as u64)
            + self.entries.iter().map(entry_len).sum::<usize>()
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.prev_log_index.serialize(out)?;
        self.prev_log_term.serialize(out)?;
        self.leader_commit.serialize(out)?;
        out.write_varint_u64(self.entries.len() as u64)?;
        for entry in &self.entries {
            // The entry's header (term, index, kind, data length) is built
            // on the stack and written as one slice, then the data: two
            // writes per entry instead of one per field (each a call into
            // the buffer's copy routine).
            let mut head = EntryHead::default();
            head.varint(entry.term);
            head.varint(entry.index);
            head.byte(entry.kind.to_u8());
            head.varint(entry.data.len() as u64);
            out.write_bytes(head.as_slice())?;
            out.write_bytes(&entry.data)?;
        }
        Ok(())
    }
}

/// An entry's header as written: `varint(term) varint(index) kind
/// varint(data length)`, the same bytes as writing each field in turn.
#[derive(Default)]
struct EntryHead {
    buf: [u8; 31],
    len: usize,
}

impl EntryHead {
    fn byte(&mut self, b: u8) {
        // Three varints of at most 10 bytes and one byte: never past 31.
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Unsigned LEB128, as pack-io writes a `u64`.
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn entry_len(entry: &Entry) -> usize {
    vlen(entry.term) + vlen(entry.index) + 1 + bytes_len(entry.data.len())
}

impl WireBody for AppendResponse {
    fn fields_len(&self) -> usize {
        1 + vlen(self.index) + vlen(self.hint_term) + vlen(self.hint_index)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.success.serialize(out)?;
        self.index.serialize(out)?;
        self.hint_term.serialize(out)?;
        self.hint_index.serialize(out)
    }
}

impl WireBody for Heartbeat {
    fn fields_len(&self) -> usize {
        vlen(self.commit) + vlen(self.round)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.commit.serialize(out)?;
        self.round.serialize(out)
    }
}

impl WireBody for HeartbeatResponse {
    fn fields_len(&self) -> usize {
        vlen(self.round)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.round.serialize(out)
    }
}

impl WireBody for SnapshotChunk {
    fn fields_len(&self) -> usize {
        vlen(self.meta.index)
            + vlen(self.meta.term)
            + bytes_len(self.meta.membership.encoded_len())
            + vlen(self.total_len)
            + vlen(self.offset)
            + bytes_len(self.data.len())
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.meta.index.serialize(out)?;
        self.meta.term.serialize(out)?;
        // The membership travels in its own fixed format (the one a
        // configuration entry carries), as a length-prefixed byte string.
        self.meta.membership.encode().serialize(out)?;
        self.total_len.serialize(out)?;
        self.offset.serialize(out)?;
        self.data.serialize(out)
    }
}

impl WireBody for SnapshotAck {
    fn fields_len(&self) -> usize {
        vlen(self.index) + vlen(self.received) + 1
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.index.serialize(out)?;
        self.received.serialize(out)?;
        self.rejected.serialize(out)
    }
}

impl WireBody for ReadIndexRequest {
    fn fields_len(&self) -> usize {
        vlen(self.id)
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.id.serialize(out)
    }
}

impl WireBody for ReadIndexResponse {
    fn fields_len(&self) -> usize {
        vlen(self.id) + vlen(self.index) + 1
    }

    fn write_fields<E: Encode + ?Sized>(&self, out: &mut E) -> pack_io::Result<()> {
        self.id.serialize(out)?;
        self.index.serialize(out)?;
        self.ok.serialize(out)
    }
}
