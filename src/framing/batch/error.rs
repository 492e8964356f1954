//! [`BatchEncodeError`]: why envelopes could not be put in one batch frame.

use crate::types::NodeId;

/// Why [`encode_batch`](crate::framing::encode_batch) (or
/// [`encode_batch_into`](crate::framing::encode_batch_into),
/// [`encoded_batch_len`](crate::framing::encoded_batch_len)) refused its
/// input. Each is a bug of the caller, which built a batch no peer would
/// accept; nothing is encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchEncodeError {
    /// The frame's `from` or `to` is node id 0, which is reserved.
    #[error("the batch's `{field}` is node id 0, which is reserved")]
    ZeroNodeId {
        /// `"from"` or `"to"`.
        field: &'static str,
    },
    /// An envelope, or the Raft message it carries, is not from the frame's
    /// `from` to its `to`: a batch carries one pair of nodes, written once.
    #[error("envelope {index} goes from {from} to {to}, not the batch's pair of nodes")]
    OtherNodes {
        /// Its position among the envelopes.
        index: usize,
        /// Its sender (the message's, if that is the one that differs).
        from: NodeId,
        /// Its receiver (the message's, if that is the one that differs).
        to: NodeId,
    },
    /// An envelope names group 0, which is reserved.
    #[error("envelope {index} names group 0, which is reserved")]
    ZeroGroupId {
        /// Its position among the envelopes.
        index: usize,
    },
    /// The pack-io encoder failed. Writing to a `BytesMut` has no failure
    /// path today, so this is never returned; it exists so that a failure
    /// would be reported rather than leave a partial frame.
    #[error("codec error: {0}")]
    Codec(pack_io::SerialError),
}
