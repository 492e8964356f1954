//! What a connection carries: the one thing that differs between
//! [`TcpTransport`](super::TcpTransport) (Raft [`Message`]s, one per
//! single-message frame) and [`TcpGroupTransport`](super::TcpGroupTransport)
//! ([`Envelope`](crate::multi::Envelope)s of many groups, in batch frames).
//! Everything else — listener, handshake, backoff, queues, limits, TLS,
//! timeouts, statistics — is one mechanism, generic over a [`Carrier`].

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::PREFIX;
use super::handshake::KIND_MESSAGES;
use crate::framing::{self, DecodeLimits, FrameError};
use crate::message::Message;
use crate::types::NodeId;

/// Why an item cannot be queued for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsendable {
    /// Its frame would exceed `max_frame_bytes`: the peer would refuse it.
    Oversized,
    /// No peer would accept it (a batch item not from this node to the
    /// peer, or of group 0).
    Invalid,
}

/// What frames came to for one write.
#[derive(Debug, Default)]
pub(crate) struct Appended {
    /// Items written into frames.
    pub(crate) items: u64,
    /// Frames written.
    pub(crate) frames: u64,
    /// Items that could not be encoded after all (counted as invalid).
    pub(crate) invalid: u64,
}

/// What one kind of connection carries (see the [module docs](self)).
pub(crate) trait Carrier: Send + Sync + 'static {
    /// An item: what the node sends and receives.
    type Item: Send + 'static;
    /// The hello's `kind` for this kind of connection.
    const KIND: u16;
    /// Items queued per peer unless [`TcpConfig::queue_capacity`](super::TcpConfig::queue_capacity) says.
    const QUEUE_CAPACITY: usize;
    /// Items waiting in the inbox unless [`TcpConfig::inbox_capacity`](super::TcpConfig::inbox_capacity) says.
    const INBOX_CAPACITY: usize;

    /// The peer the item goes to.
    fn to(item: &Self::Item) -> NodeId;

    /// The fair queue's class of the item (its group; 0 when there is one
    /// class).
    fn class(item: &Self::Item) -> u64;

    /// The bytes the item takes in a frame from `from` to `to` (the queue
    /// budget charges it these plus a share of the framing), or why it
    /// cannot be sent.
    fn size(item: &Self::Item, from: NodeId, to: NodeId, limits: &DecodeLimits) -> Result<usize, Unsendable>;

    /// Appends `items` (with their [`size`](Self::size)s) to `buf` as
    /// length-prefixed frames within `limits`, in order.
    fn append(
        from: NodeId,
        to: NodeId,
        items: &[(Self::Item, usize)],
        limits: &DecodeLimits,
        buf: &mut BytesMut,
    ) -> Appended;

    /// Decodes one frame from `peer` to `me`, handing each item to
    /// `deliver`; returns how many items were misaddressed (not from
    /// `peer`, or not to `me`: dropped).
    ///
    /// # Errors
    ///
    /// The frame does not decode: it is dropped whole.
    fn decode(
        frame: &Bytes,
        limits: &DecodeLimits,
        peer: NodeId,
        me: NodeId,
        deliver: &mut dyn FnMut(Self::Item, usize),
    ) -> Result<u64, FrameError>;
}

/// Single-message frames (format 2), one [`Message`] each.
pub(crate) struct Messages;

impl Carrier for Messages {
    type Item = Message;
    const KIND: u16 = KIND_MESSAGES;
    const QUEUE_CAPACITY: usize = 1024;
    const INBOX_CAPACITY: usize = 8192;

    fn to(item: &Message) -> NodeId {
        item.to
    }

    fn class(_: &Message) -> u64 {
        0
    }

    fn size(item: &Message, _: NodeId, _: NodeId, limits: &DecodeLimits) -> Result<usize, Unsendable> {
        let len = framing::encoded_len(item);
        if len > limits.max_frame_bytes || len > u32::MAX as usize {
            return Err(Unsendable::Oversized);
        }
        Ok(len + PREFIX)
    }

    fn append(_: NodeId, _: NodeId, items: &[(Message, usize)], _: &DecodeLimits, buf: &mut BytesMut) -> Appended {
        let mut done = Appended::default();
        for (message, size) in items {
            let len = size.saturating_sub(PREFIX);
            buf.reserve(*size);
            buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
            framing::encode_into(message, buf);
            done.items += 1;
            done.frames += 1;
        }
        done
    }

    fn decode(
        frame: &Bytes,
        limits: &DecodeLimits,
        peer: NodeId,
        me: NodeId,
        deliver: &mut dyn FnMut(Message, usize),
    ) -> Result<u64, FrameError> {
        let m = framing::decode(frame, limits)?;
        if m.from == peer && m.to == me {
            // Charged its frame and what decoding it built.
            let charge = frame.len() + framing::decoded_overhead(&m);
            deliver(m, charge);
            Ok(0)
        } else {
            Ok(1)
        }
    }
}
