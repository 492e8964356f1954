//! Batch frames (format 3) on a connection: the [`Carrier`] of
//! [`TcpGroupTransport`](super::TcpGroupTransport), and the splitter that
//! cuts one write's envelopes into as few batch frames as the receiver's
//! limits allow.
//!
//! A batch frame is `header, count, items`: the header (format byte,
//! checksum, `from`, `to`) is fixed for a pair of nodes, the count is a
//! varint, and each item's length does not depend on the others. So the
//! length of a frame of any run of items is known without encoding it, and
//! a frame is closed just before the item that would take it past
//! `max_frame_bytes` or `max_batch_items`. An item that fits in no frame is
//! refused when it is queued (`dropped_oversized`), never sent to be
//! refused whole with the rest of its frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::carrier::{Appended, Carrier, Unsendable};
use super::frame::PREFIX;
use super::handshake::KIND_BATCHES;
use crate::framing::{self, DecodeLimits, FrameError};
use crate::multi::{Envelope, EnvelopeBody};
use crate::types::NodeId;

/// Envelopes of many groups, in batch frames.
pub(crate) struct Batches;

/// Length of a LEB128 varint.
fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// The length of an empty batch frame from `from` to `to` (its count is one
/// byte), or `None` if no batch frame can join them (node id 0).
fn empty_len(from: NodeId, to: NodeId) -> Option<usize> {
    framing::encoded_batch_len(from, to, []).ok()
}

/// The largest frame a receiver with `limits` accepts, and a length prefix
/// can state.
fn max_frame(limits: &DecodeLimits) -> usize {
    limits.max_frame_bytes.min(u32::MAX as usize)
}

/// Cuts `sizes` (item lengths, in order) into runs that each make a frame
/// within the limits: returns the end of each run. An item too large for a
/// frame of its own still gets one (the caller refused such items earlier).
pub(crate) fn split(empty: usize, sizes: impl IntoIterator<Item = usize>, limits: &DecodeLimits) -> Vec<usize> {
    let (max, max_items) = (max_frame(limits), limits.max_batch_items.max(1));
    let mut ends = Vec::new();
    let (mut count, mut bytes, mut at) = (0usize, 0usize, 0usize);
    for size in sizes {
        let len = empty - 1 + varint_len(count as u64 + 1) + bytes.saturating_add(size);
        if count > 0 && (count + 1 > max_items || len > max) {
            ends.push(at);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes = bytes.saturating_add(size);
        at += 1;
    }
    if count > 0 {
        ends.push(at);
    }
    ends
}

impl Carrier for Batches {
    type Item = Envelope;
    const KIND: u16 = KIND_BATCHES;
    // Every group's envelopes share these: a turn of thousands of groups
    // sends thousands of envelopes to each peer at once.
    const QUEUE_CAPACITY: usize = 1 << 16;
    const INBOX_CAPACITY: usize = 1 << 17;

    fn to(item: &Envelope) -> NodeId {
        item.to
    }

    fn class(item: &Envelope) -> u64 {
        match &item.body {
            EnvelopeBody::Raft { group, .. } | EnvelopeBody::Quiesce { group, .. } => *group,
            // Group ids start at 1: pings are a class of their own.
            _ => 0,
        }
    }

    fn size(item: &Envelope, from: NodeId, to: NodeId, limits: &DecodeLimits) -> Result<usize, Unsendable> {
        let empty = empty_len(from, to).ok_or(Unsendable::Invalid)?;
        let alone = framing::encoded_batch_len(from, to, [item]).map_err(|_| Unsendable::Invalid)?;
        if alone > max_frame(limits) || limits.max_batch_items == 0 {
            return Err(Unsendable::Oversized);
        }
        // `alone` = header + count (1 byte) + item.
        Ok(alone - empty)
    }

    fn append(
        from: NodeId,
        to: NodeId,
        items: &[(Envelope, usize)],
        limits: &DecodeLimits,
        buf: &mut BytesMut,
    ) -> Appended {
        let mut done = Appended::default();
        let Some(empty) = empty_len(from, to) else {
            done.invalid = items.len() as u64;
            return done;
        };
        let mut start = 0;
        for end in split(empty, items.iter().map(|(_, size)| *size), limits) {
            let run = items.get(start..end).unwrap_or_default();
            let n = run.len() as u64;
            start = end;
            let at = buf.len();
            buf.put_u32(0);
            match framing::encode_batch_into(from, to, run.iter().map(|(e, _)| e), buf) {
                Ok(len) => {
                    let prefix = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
                    if let Some(slot) = buf.get_mut(at..at + PREFIX) {
                        slot.copy_from_slice(&prefix);
                    }
                    done.items += n;
                    done.frames += 1;
                }
                Err(_) => {
                    buf.truncate(at);
                    done.invalid += n;
                }
            }
        }
        done
    }

    fn decode(
        frame: &Bytes,
        limits: &DecodeLimits,
        peer: NodeId,
        me: NodeId,
        deliver: &mut dyn FnMut(Envelope, usize),
    ) -> Result<u64, FrameError> {
        let envelopes = framing::decode_batch_sized(frame, limits)?;
        // Every envelope of a batch has the frame's `from` and `to`.
        if envelopes.first().is_some_and(|(e, _)| e.from != peer || e.to != me) {
            return Ok(envelopes.len() as u64);
        }
        // Each is charged the bytes its item took (so a heartbeat beside a
        // snapshot chunk counts as small: what `size` charged it on the
        // sending side) plus what decoding it built (an entry of no data is
        // 4 bytes on the wire, 56 in memory). It holds no more than twice
        // that: an item under half the frame holds a copy of its payload,
        // not the frame (`decode_batch_sized`).
        for (envelope, len) in envelopes {
            let charge = received_charge(&envelope, len);
            deliver(envelope, charge);
        }
        Ok(0)
    }
}

/// What the inbox charges a received envelope whose item took `len` bytes
/// of its frame: those bytes (at least one) and what decoding built.
fn received_charge(envelope: &Envelope, len: usize) -> usize {
    let built = match &envelope.body {
        EnvelopeBody::Raft { message, .. } => framing::decoded_overhead(message),
        _ => 0,
    };
    len.max(1) + built + std::mem::size_of::<Envelope>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, MessageBody};

    fn heartbeat(group: u64) -> Envelope {
        let message = Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow };
        Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
    }

    #[test]
    fn frames_are_cut_at_the_receivers_limits_and_each_decodes() {
        let items: Vec<(Envelope, usize)> = (1..=300u64)
            .map(|g| {
                let e = heartbeat(g);
                let size = Batches::size(&e, 1, 2, &DecodeLimits::default()).unwrap();
                (e, size)
            })
            .collect();
        for limits in [
            DecodeLimits { max_batch_items: 7, ..Default::default() },
            DecodeLimits { max_frame_bytes: 200, ..Default::default() },
            DecodeLimits::default(),
        ] {
            let mut buf = BytesMut::new();
            let done = Batches::append(1, 2, &items, &limits, &mut buf);
            assert_eq!(done.items, 300);
            let mut r: &[u8] = &buf;
            let mut got = Vec::new();
            let mut frames = 0;
            while let Ok(Some(frame)) = super::super::frame::read_frame(&mut r, limits.max_frame_bytes) {
                frames += 1;
                got.extend(framing::decode_batch(&frame, &limits).unwrap());
            }
            assert_eq!(frames, done.frames);
            assert_eq!(got, items.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
            if limits == DecodeLimits::default() {
                assert_eq!(frames, 1, "one frame when the limits allow");
            } else {
                assert!(frames > 1);
            }
        }
    }

    /// The receiver charges each envelope the bytes its item took, read off
    /// the decoding: for every kind of item it is what the sender charged.
    #[test]
    fn a_received_envelope_is_charged_what_its_sender_charged_and_what_decoding_built() {
        use crate::message::{AppendEntries, AppendResponse};
        use crate::types::Entry;
        let append = |group: u64, n: u64, len: usize| {
            let entries = (1..=n).map(|i| Entry::normal(7, 1000 + i, Bytes::from(vec![b'x'; len]))).collect();
            let body = AppendEntries { prev_log_index: 1000, prev_log_term: 7, leader_commit: 999, entries };
            let message = Message { from: 1, to: 2, term: 7, body: MessageBody::Append(body) };
            Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
        };
        let answer = Message {
            from: 1,
            to: 2,
            term: 300,
            body: MessageBody::AppendResponse(AppendResponse { success: true, index: 1 << 40, ..Default::default() }),
        };
        let items = [
            heartbeat(1),
            append(2, 0, 0),
            append(3, 1, 16),
            append(1 << 20, 64, 200),
            Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group: 9, message: answer } },
            Envelope { from: 1, to: 2, body: EnvelopeBody::Quiesce { group: 5, term: 3, commit: 1 << 30 } },
            Envelope { from: 1, to: 2, body: EnvelopeBody::Ping },
        ];
        let limits = DecodeLimits::default();
        let sized: Vec<(Envelope, usize)> =
            items.iter().map(|e| (e.clone(), Batches::size(e, 1, 2, &limits).unwrap())).collect();
        let mut buf = BytesMut::new();
        assert_eq!(Batches::append(1, 2, &sized, &limits, &mut buf).frames, 1);
        let mut r: &[u8] = &buf;
        let frame = super::super::frame::read_frame(&mut r, limits.max_frame_bytes).unwrap().unwrap();
        let mut got = Vec::new();
        let refused = Batches::decode(&frame, &limits, 1, 2, &mut |e, len| got.push((e, len))).unwrap();
        assert_eq!(refused, 0);
        let expected: Vec<(Envelope, usize)> = sized
            .into_iter()
            .map(|(e, len)| {
                let charge = received_charge(&e, len);
                assert!(charge > len, "{e:?}");
                (e, charge)
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn an_item_no_frame_can_hold_is_refused_and_a_bad_one_is_invalid() {
        let tiny = DecodeLimits { max_frame_bytes: 10, ..Default::default() };
        assert_eq!(Batches::size(&heartbeat(1), 1, 2, &tiny), Err(Unsendable::Oversized));
        assert_eq!(Batches::size(&heartbeat(0), 1, 2, &DecodeLimits::default()), Err(Unsendable::Invalid));
        assert_eq!(Batches::size(&heartbeat(1), 3, 2, &DecodeLimits::default()), Err(Unsendable::Invalid));
    }

    #[test]
    fn varints_are_measured_like_the_encoder_writes_them() {
        for (n, len) in [(0u64, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (u64::MAX, 10)] {
            assert_eq!(varint_len(n), len, "{n}");
        }
        let empty = empty_len(1, 2).unwrap();
        let items: Vec<Envelope> = (1..=200).map(heartbeat).collect();
        let sizes: u64 = items.iter().map(|e| Batches::size(e, 1, 2, &DecodeLimits::default()).unwrap() as u64).sum();
        let exact = framing::encoded_batch_len(1, 2, &items).unwrap() as u64;
        assert_eq!(exact, empty as u64 - 1 + varint_len(200) as u64 + sizes);
    }
}
