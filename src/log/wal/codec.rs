//! Byte-level primitives of the WAL format: unsigned LEB128 varints and a
//! bounds-checked reader. Nothing here trusts a length read from disk.

use bytes::Bytes;

/// Why a record's bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// The number of bytes [`put_varint`] writes for `value`.
pub(crate) fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a record held in a [`Bytes`], handing out zero-copy slices of it.
pub(crate) struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a Bytes) -> Self {
        Self { src, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.src.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.src.get(self.pos).ok_or(DecodeError("truncated record"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, DecodeError> {
        let end = self.pos.checked_add(4).filter(|&e| e <= self.src.len()).ok_or(DecodeError("truncated record"))?;
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&self.src[self.pos..end]);
        self.pos = end;
        Ok(u32::from_le_bytes(raw))
    }

    /// An unsigned LEB128 varint in its shortest form.
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError("varint overflows u64"));
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(DecodeError("varint is not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    /// A varint that must fit in `usize`.
    pub(crate) fn len(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError("length does not fit in memory"))
    }

    /// `n` bytes as a zero-copy slice of the record.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.src.len()).ok_or(DecodeError("truncated record"))?;
        let out = self.src.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 { Ok(()) } else { Err(DecodeError("trailing bytes after the record")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: u64) {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert_eq!(buf.len(), varint_len(v), "length of {v}");
        let src = Bytes::from(buf);
        let mut r = Reader::new(&src);
        assert_eq!(r.varint(), Ok(v));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for shift in 0..64 {
            let v = 1u64 << shift;
            round_trip(v);
            round_trip(v - 1);
            round_trip(v | (v >> 1));
        }
        round_trip(u64::MAX);
    }

    #[test]
    fn malformed_varints_are_refused() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x80],
            &[0x80, 0x00],                                                 // not shortest
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], // > u64
            &[0xff; 11],
        ];
        for &c in cases {
            let src = Bytes::copy_from_slice(c);
            assert!(Reader::new(&src).varint().is_err(), "{c:?}");
        }
    }

    #[test]
    fn lengths_are_never_trusted() {
        let src = Bytes::from_static(&[1, 2, 3]);
        let mut r = Reader::new(&src);
        assert!(r.bytes(usize::MAX).is_err());
        assert!(r.bytes(4).is_err());
        assert_eq!(&r.bytes(3).unwrap()[..], &[1, 2, 3]);
        assert!(r.u8().is_err());
        assert!(r.u32_le().is_err());
    }
}
