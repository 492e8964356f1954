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
/// then grows only as bytes actually arrive, to exactly the frame's length
/// (see [`read_body`]).
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
    // `len <= max`, so it fits in usize.
    let buf = read_body(r, len as usize).map_err(StreamError::Io)?;
    Ok(Some(Bytes::from(buf)))
}

/// The frame buffer's first allocation, at most: a peer that announces a
/// large frame and stalls holds this, or twice what it sent.
const FIRST_ROOM: usize = 64 << 10;

/// Reads a frame's `len` bytes into a buffer of exactly `len` bytes' room.
///
/// The room grows only as bytes arrive, doubling what arrived (at first
/// [`FIRST_ROOM`]) but never past `len`, each step reserved exactly, so
/// that a peer announcing a large frame and stalling holds only about what
/// it sent, and a frame read whole keeps no slack: `read_to_end`'s own
/// doubling could leave a frame nearly twice its length, and an envelope
/// borrowing from the frame keeps all of it.
fn read_body(r: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    while buf.len() < len {
        let filled = buf.len();
        let room = filled.max(FIRST_ROOM).min(len - filled);
        buf.try_reserve_exact(room).map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "no room for a frame"))?;
        // Read into the room reserved, not zeroed first; with exactly
        // `room` left to read and `room` reserved, `read_to_end` does not
        // grow the vector.
        let got = r.by_ref().take(room as u64).read_to_end(&mut buf)?;
        if got < room {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a frame"));
        }
    }
    Ok(buf)
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

    /// Hands out its bytes a segment at a time, as a socket does, and
    /// records the most room it was offered beyond what it had handed out
    /// (the buffer allocated ahead of the bytes).
    struct Segments<'a> {
        bytes: &'a [u8],
        handed: usize,
        /// `(handed out, handed out + room offered)` at the read that
        /// offered the most room.
        widest: (usize, usize),
    }

    impl Read for Segments<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.handed + buf.len() > self.widest.1 {
                self.widest = (self.handed, self.handed + buf.len());
            }
            let n = buf.len().min(1460).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            self.handed += n;
            Ok(n)
        }
    }

    /// A frame's buffer holds exactly its length: no slack from doubling,
    /// which would stay allocated as long as any envelope borrows from the
    /// frame. Lengths around the powers of two the buffer grows through.
    #[test]
    fn a_frame_buffer_holds_exactly_its_length() {
        let sizes = [
            1,
            100,
            1460,
            (64 << 10) - 1,
            64 << 10,
            (64 << 10) + 1,
            (128 << 10) + 1,
            (1 << 20) + 1,
            (4 << 20) - 1,
            4 << 20,
        ];
        for n in sizes {
            let bytes: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut r = Segments { bytes: &bytes, handed: 0, widest: (0, 0) };
            let buf = read_body(&mut r, n).unwrap();
            assert_eq!(buf, bytes, "{n} bytes");
            assert_eq!(buf.capacity(), n, "the buffer of a {n}-byte frame");
        }
    }

    /// A peer that announces a large frame then sends little holds little:
    /// the buffer grows at most to twice what arrived (or the first
    /// 64 KiB), never to the announced length ahead of the bytes.
    #[test]
    fn a_frame_buffer_grows_only_as_bytes_arrive() {
        for sent in [0, 10, 64 << 10, (64 << 10) + 1, 300 << 10] {
            let bytes = vec![7u8; sent];
            let mut r = Segments { bytes: &bytes, handed: 0, widest: (0, 0) };
            let err = read_body(&mut r, 4 << 20).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            let (handed, allocated) = r.widest;
            assert!(allocated <= (2 * handed).max(FIRST_ROOM), "{allocated} bytes allocated for {handed} sent");
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
