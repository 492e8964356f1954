//! Reading messages: limits first, then the format byte and the checksum,
//! then the header, then the body of the kind the header names. Entry data
//! and snapshot chunks are slices of the frame (`Bytes::slice_ref`), never
//! copies.

use bytes::Bytes;
use pack_io::{Config, Decode, Decoder, Deserialize};

use super::wire::{CHECKSUM_LEN, MIN_ENTRY_BYTES, checksum, kind_name, read_body, read_bool, read_u64, tag};
use super::{BATCH_FORMAT_VERSION, DecodeLimits, FORMAT_VERSION, FrameError};
use crate::membership::Membership;
use crate::message::{
    AppendEntries, AppendResponse, Heartbeat, HeartbeatResponse, Message, MessageBody, ReadIndexRequest,
    ReadIndexResponse, RemovalNotice, SnapshotAck, SnapshotChunk, VoteRequest, VoteResponse,
};
use crate::types::{Entry, EntryKind, NodeId, SnapshotMeta};

/// Decodes one frame. See [`super::decode`].
pub(crate) fn decode(frame: &Bytes, limits: &DecodeLimits) -> Result<Message, FrameError> {
    let mut dec = open(frame, limits, FORMAT_VERSION)?;
    let from = read_node_id(&mut dec, "from")?;
    let to = read_node_id(&mut dec, "to")?;
    let term = read_u64(&mut dec)?;
    let body = read_kind_and_body(&mut dec, frame, limits)?;
    finish(&dec)?;
    Ok(Message { from, to, term, body })
}

/// Opens `frame` for reading, checking in this order what every frame
/// format shares: its length against the limit, its format byte (which must
/// be `format`), and its checksum. Returns a canonical decoder positioned
/// right after the checksum field.
///
/// A format byte naming raft-io's *other* frame format (a batch frame where
/// a single message is expected, or the reverse) gets an error of its own
/// ([`FrameError::BatchFrame`], [`FrameError::SingleMessageFrame`]), any
/// other value [`FrameError::UnsupportedFormat`].
pub(crate) fn open<'f>(frame: &'f Bytes, limits: &DecodeLimits, format: u8) -> Result<Decoder<'f>, FrameError> {
    if frame.len() > limits.max_frame_bytes {
        return Err(FrameError::TooLarge { len: frame.len(), max: limits.max_frame_bytes });
    }
    // Canonical mode makes pack-io refuse over-long varints. No single value
    // can be longer than the frame, so the frame length is the allocation cap.
    let config = Config::new().with_canonical(true).with_max_alloc(frame.len().max(1));
    let input: &[u8] = frame;
    let mut dec = Decoder::with_config(input, config)?;
    let found = dec.read_byte()?;
    if found != format {
        return Err(match found {
            BATCH_FORMAT_VERSION => FrameError::BatchFrame,
            FORMAT_VERSION => FrameError::SingleMessageFrame,
            version => FrameError::UnsupportedFormat { version },
        });
    }
    // The checksum, before a single field is believed: a corrupted frame
    // must not become a message, however plausible its fields look.
    let stored = u32::from_le_bytes(<[u8; CHECKSUM_LEN]>::deserialize(&mut dec)?);
    let rest = input.get(1 + CHECKSUM_LEN..).unwrap_or_default();
    let expected = checksum(found, rest);
    if stored != expected {
        return Err(FrameError::ChecksumMismatch { expected, found: stored });
    }
    Ok(dec)
}

/// Refuses bytes after the last value of a frame.
pub(crate) fn finish(dec: &Decoder<'_>) -> Result<(), FrameError> {
    if dec.is_empty() { Ok(()) } else { Err(FrameError::TrailingBytes { remaining: dec.remaining() }) }
}

/// Reads a message's kind tag and the versioned body of that kind: the one
/// body codec, shared by single-message frames and the group messages of a
/// batch frame. Entry data and snapshot chunks become slices of `frame`,
/// which `dec` must be reading.
pub(crate) fn read_kind_and_body(
    dec: &mut Decoder<'_>,
    frame: &Bytes,
    limits: &DecodeLimits,
) -> Result<MessageBody, FrameError> {
    let reader = Reader { frame, limits };
    let kind = read_u64(dec)?;
    let name = kind_name(kind);
    Ok(match kind {
        tag::PRE_VOTE => MessageBody::PreVote(read_body(dec, name, read_vote_request)?),
        tag::PRE_VOTE_RESPONSE => MessageBody::PreVoteResponse(read_body(dec, name, read_vote_response)?),
        tag::VOTE => MessageBody::Vote(read_body(dec, name, read_vote_request)?),
        tag::VOTE_RESPONSE => MessageBody::VoteResponse(read_body(dec, name, read_vote_response)?),
        tag::APPEND => MessageBody::Append(read_body(dec, name, |d| reader.append(d))?),
        tag::APPEND_RESPONSE => MessageBody::AppendResponse(read_body(dec, name, read_append_response)?),
        tag::HEARTBEAT => MessageBody::Heartbeat(read_body(dec, name, read_heartbeat)?),
        tag::HEARTBEAT_RESPONSE => MessageBody::HeartbeatResponse(read_body(dec, name, read_heartbeat_response)?),
        tag::SNAPSHOT => MessageBody::Snapshot(Box::new(read_body(dec, name, |d| reader.snapshot(d))?)),
        tag::SNAPSHOT_RESPONSE => MessageBody::SnapshotResponse(read_body(dec, name, read_snapshot_ack)?),
        tag::TIMEOUT_NOW => {
            read_body(dec, name, |_| Ok(()))?;
            MessageBody::TimeoutNow
        }
        tag::READ_INDEX => MessageBody::ReadIndex(read_body(dec, name, read_read_index)?),
        tag::READ_INDEX_RESPONSE => MessageBody::ReadIndexResponse(read_body(dec, name, read_read_index_response)?),
        tag::REMOVED => {
            MessageBody::Removed(read_body(dec, name, |d| Ok(RemovalNotice { config_index: read_u64(d)? }))?)
        }
        _ => return Err(FrameError::UnknownKind { tag: kind }),
    })
}

pub(crate) fn read_node_id(dec: &mut Decoder<'_>, field: &'static str) -> Result<NodeId, FrameError> {
    match read_u64(dec)? {
        0 => Err(FrameError::ZeroNodeId { field }),
        id => Ok(id),
    }
}

/// What the bodies that borrow from the frame need: the frame itself (to
/// turn borrowed slices into `Bytes`) and the limits.
struct Reader<'f> {
    frame: &'f Bytes,
    limits: &'f DecodeLimits,
}

impl Reader<'_> {
    fn append(&self, dec: &mut Decoder<'_>) -> Result<AppendEntries, FrameError> {
        let prev_log_index = read_u64(dec)?;
        let prev_log_term = read_u64(dec)?;
        let leader_commit = read_u64(dec)?;
        let count = read_u64(dec)?;
        if count > self.limits.max_entries as u64 {
            return Err(FrameError::TooManyEntries { count, max: self.limits.max_entries });
        }
        // `count <= max_entries`, so it fits in `usize`. Refuse a count the
        // remaining bytes cannot hold before reserving room for it.
        let count = count as usize;
        let remaining = dec.remaining();
        if count > remaining / MIN_ENTRY_BYTES {
            return Err(FrameError::Truncated { needed: count.saturating_mul(MIN_ENTRY_BYTES), remaining });
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push(self.entry(dec)?);
        }
        Ok(AppendEntries { prev_log_index, prev_log_term, leader_commit, entries })
    }

    fn entry(&self, dec: &mut Decoder<'_>) -> Result<Entry, FrameError> {
        let term = read_u64(dec)?;
        let index = read_u64(dec)?;
        let byte = dec.read_byte()?;
        let kind = EntryKind::from_u8(byte).ok_or(FrameError::UnknownEntryKind { index, byte })?;
        let data = dec.read_length_prefixed_borrowed()?;
        if kind == EntryKind::Config {
            Membership::decode_with_voters(data)
                .map_err(|source| FrameError::InvalidMembership { field: "config entry", source })?;
        }
        Ok(Entry { term, index, kind, data: self.frame.slice_ref(data) })
    }

    fn snapshot(&self, dec: &mut Decoder<'_>) -> Result<SnapshotChunk, FrameError> {
        let index = read_u64(dec)?;
        let term = read_u64(dec)?;
        let membership = Membership::decode_with_voters(dec.read_length_prefixed_borrowed()?)
            .map_err(|source| FrameError::InvalidMembership { field: "snapshot membership", source })?;
        let total_len = read_u64(dec)?;
        let offset = read_u64(dec)?;
        let data = self.frame.slice_ref(dec.read_length_prefixed_borrowed()?);
        Ok(SnapshotChunk { meta: SnapshotMeta { index, term, membership }, total_len, offset, data })
    }
}

fn read_vote_request(dec: &mut Decoder<'_>) -> Result<VoteRequest, FrameError> {
    Ok(VoteRequest {
        last_log_index: read_u64(dec)?,
        last_log_term: read_u64(dec)?,
        transfer: read_bool(dec, "transfer")?,
    })
}

fn read_vote_response(dec: &mut Decoder<'_>) -> Result<VoteResponse, FrameError> {
    Ok(VoteResponse { granted: read_bool(dec, "granted")? })
}

fn read_append_response(dec: &mut Decoder<'_>) -> Result<AppendResponse, FrameError> {
    Ok(AppendResponse {
        success: read_bool(dec, "success")?,
        index: read_u64(dec)?,
        hint_term: read_u64(dec)?,
        hint_index: read_u64(dec)?,
    })
}

fn read_heartbeat(dec: &mut Decoder<'_>) -> Result<Heartbeat, FrameError> {
    Ok(Heartbeat { commit: read_u64(dec)?, round: read_u64(dec)? })
}

fn read_heartbeat_response(dec: &mut Decoder<'_>) -> Result<HeartbeatResponse, FrameError> {
    Ok(HeartbeatResponse { round: read_u64(dec)? })
}

fn read_snapshot_ack(dec: &mut Decoder<'_>) -> Result<SnapshotAck, FrameError> {
    Ok(SnapshotAck { index: read_u64(dec)?, received: read_u64(dec)?, rejected: read_bool(dec, "rejected")? })
}

fn read_read_index(dec: &mut Decoder<'_>) -> Result<ReadIndexRequest, FrameError> {
    Ok(ReadIndexRequest { id: read_u64(dec)? })
}

fn read_read_index_response(dec: &mut Decoder<'_>) -> Result<ReadIndexResponse, FrameError> {
    Ok(ReadIndexResponse { id: read_u64(dec)?, index: read_u64(dec)?, ok: read_bool(dec, "ok")? })
}
