//! Frames on a byte stream: a big-endian `u32` length, then that many bytes
//! of one [`framing`](crate::framing) frame. Length 0 is a keepalive.

use std::io::{self, Read};

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the length prefix.
pub(crate) const PREFIX: usize = 4;

/// Why a stream of frames cannot be read further.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The socket failed, timed out or was closed.
    Io(io::Error),
    /// A length prefix above the limit: the stream is not trusted further.
    Oversized { len: u64, max: usize },
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Io(e) => write!(f, "{e}"),
            StreamError::Oversized { len, max } => write!(f, "length prefix {len} exceeds the limit of {max}"),
        }
    }
}

/// Reads the next frame: `Ok(None)` for a keepalive. The length is checked
/// against `max` before any byte is allocated for the frame, and the buffer
/// then grows only as bytes actually arrive.
pub(crate) fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Bytes>, StreamError> {
    let mut prefix = [0u8; PREFIX];
    r.read_exact(&mut prefix).map_err(StreamError::Io)?;
    let len = u32::from_be_bytes(prefix) as u64;
    if len == 0 {
        return Ok(None);
    }
    if len > max as u64 {
        return Err(StreamError::Oversized { len, max });
    }
    // `len <= max`, so it fits in usize. Start small: a peer that announces
    // a large frame and stalls holds only what it sent.
    let mut buf = Vec::with_capacity((len as usize).min(64 << 10));
    let read = r.take(len).read_to_end(&mut buf).map_err(StreamError::Io)?;
    if (read as u64) < len {
        return Err(StreamError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a frame")));
    }
    Ok(Some(Bytes::from(buf)))
}

/// Appends a keepalive (an empty frame).
pub(crate) fn append_keepalive(buf: &mut BytesMut) {
    buf.put_u32(0);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::framing;
    use crate::message::{Message, MessageBody};
    use crate::transport::tcp::carrier::{Carrier, Messages};

    proptest! {
        /// Whatever a peer sends, reading frames and decoding them ends in
        /// frames, keepalives or typed errors: never a panic, and never a
        /// buffer larger than the limit or the bytes that arrived.
        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r: &[u8] = &bytes;
            let limits = crate::framing::DecodeLimits { max_frame_bytes: 64, ..Default::default() };
            loop {
                match read_frame(&mut r, limits.max_frame_bytes) {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= 64);
                        let _ = framing::decode(&frame, &limits);
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            if let Ok(hello) = <[u8; super::super::handshake::HELLO_LEN]>::try_from(&bytes[..bytes.len().min(32)]) {
                if let Ok(h) = super::super::handshake::Hello::decode(&hello) {
                    let _ = h.check(1, 1, 0, |_| true);
                }
            }
        }
    }

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let m = Message { from: 1, to: 2, term: 3, body: MessageBody::TimeoutNow };
        let mut buf = BytesMut::new();
        let limits = framing::DecodeLimits::default();
        let size = Messages::size(&m, 1, 2, &limits).unwrap();
        Messages::append(1, 2, &[(m.clone(), size)], &limits, &mut buf);
        append_keepalive(&mut buf);
        let tiny = framing::DecodeLimits { max_frame_bytes: 2, ..limits };
        assert!(Messages::size(&m, 1, 2, &tiny).is_err(), "an oversized frame is refused");
        let mut r: &[u8] = &buf;
        let frame = read_frame(&mut r, 1 << 20).unwrap().unwrap();
        assert_eq!(framing::decode(&frame, &Default::default()).unwrap(), m);
        assert!(read_frame(&mut r, 1 << 20).unwrap().is_none(), "keepalive");
        assert!(matches!(read_frame(&mut r, 1 << 20), Err(StreamError::Io(_))), "end of stream");

        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut &huge[..], 1 << 20), Err(StreamError::Oversized { .. })));
        let short = [0, 0, 0, 9, 1, 2];
        assert!(matches!(read_frame(&mut &short[..], 1 << 20), Err(StreamError::Io(_))));
    }
}
