//! CRC-32C (Castagnoli), the one checksum of the crate: wire frames, WAL
//! records, the WAL's meta file and snapshot files.
//!
//! Computed by `crc-fast`, which folds with carry-less multiplication
//! (PCLMULQDQ, and VPCLMULQDQ where the CPU has AVX-512 and the compiler
//! is Rust 1.89 or later) and picks the fastest kernel at run time;
//! measured here at 1.5–1.6x the `crc32c` crate at 64 B and 1 KiB and 2.2x
//! at 65 KiB (docs/BENCHMARKS.md, "Checksums"). The values are the standard
//! CRC-32C's: every format is unchanged.

use crc_fast::{CrcAlgorithm, Digest};

/// The CRC-32C of `data`.
#[inline]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // A CRC-32 fits in the low 32 bits of crc-fast's u64.
    crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// The CRC-32C of the bytes whose CRC-32C is `crc`, followed by `data`:
/// `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
#[inline]
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    // The running state is the finished value before its final inversion.
    let mut digest = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(data);
    digest.finalize() as u32
}

#[cfg(feature = "persistence")]
pub(crate) use span::{crc32c_append_short, crc32c_shift};

/// Span CRCs from prefix CRCs, for the WAL's tail scan
/// (`log::wal::tail`).
#[cfg(feature = "persistence")]
mod span {
    /// CRC-32C's polynomial, bit-reflected (bit 31 is the coefficient of
    /// x^0, as the reflected CRC processes bits).
    const POLY: u32 = 0x82F6_3B78;

    /// `a(x) * b(x) mod P(x)` for polynomials in the reflected order.
    const fn mul_mod(a: u32, mut b: u32) -> u32 {
        let mut product = 0;
        let mut bit = 32;
        while bit > 0 {
            bit -= 1;
            // Bit `bit` of `a` is the coefficient of x^(31 - bit); `b` holds
            // the other factor times x^(31 - bit) by now.
            if (a >> bit) & 1 == 1 {
                product ^= b;
            }
            b = if b & 1 == 1 { (b >> 1) ^ POLY } else { b >> 1 };
        }
        product
    }

    /// `x^(2^k) mod P(x)` for `k` in `0..64`, reflected.
    const SQUARES: [u32; 64] = {
        let mut t = [0u32; 64];
        t[0] = 1 << 30; // x^1
        let mut k = 1;
        while k < 64 {
            t[k] = mul_mod(t[k - 1], t[k - 1]);
            k += 1;
        }
        t
    };

    /// What `n` zero bytes do to a CRC-32C: the value with which
    /// `crc32c(a ++ b) == crc32c_shift(crc32c(a), b.len()) ^ crc32c(b)` for
    /// every `a` and `b`. So the CRC-32C of any span of a buffer follows from
    /// two prefix CRCs, `crc32c(s[..j]) ^ crc32c_shift(crc32c(s[..i]), j - i)`
    /// for `s[i..j]`, without reading the span again. Costs at most 61
    /// polynomial products (one per set bit of `n`); `n` below 2^61.
    pub(crate) fn crc32c_shift(crc: u32, n: u64) -> u32 {
        debug_assert!(n < 1 << 61);
        // x^(8n) = the product of x^(2^(i+3)) over the set bits i of n.
        let mut power = 1u32 << 31; // x^0
        let mut rest = n;
        let mut k = 3;
        while rest != 0 && k < 64 {
            if rest & 1 == 1 {
                power = mul_mod(power, SQUARES[k]);
            }
            rest >>= 1;
            k += 1;
        }
        mul_mod(power, crc)
    }

    /// The CRC-32C of the bytes whose CRC-32C is `crc`, followed by `data`,
    /// a byte at a time: [`crc32c_append`](super::crc32c_append) for the short pieces of a prefix
    /// scan, where each call's setup would cost more than its bytes.
    pub(crate) fn crc32c_append_short(crc: u32, data: &[u8]) -> u32 {
        const TABLE: [u32; 256] = {
            let mut t = [0u32; 256];
            let mut i = 0;
            while i < 256 {
                let mut c = i as u32;
                let mut j = 0;
                while j < 8 {
                    c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
                    j += 1;
                }
                t[i] = c;
                i += 1;
            }
            t
        };
        let mut state = !crc;
        for &b in data {
            state = (state >> 8) ^ TABLE[((state ^ u32::from(b)) & 0xff) as usize];
        }
        !state
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        use super::super::{crc32c, crc32c_append};
        use super::{crc32c_append_short, crc32c_shift};

        proptest! {
            /// The byte-at-a-time update agrees with the vectorized one.
            #[test]
            fn the_short_update_agrees(
                data in proptest::collection::vec(any::<u8>(), 0..300),
                split in any::<prop::sample::Index>(),
            ) {
                let at = split.index(data.len() + 1);
                let (a, b) = data.split_at(at);
                prop_assert_eq!(crc32c_append_short(crc32c(a), b), crc32c(&data));
            }

            /// A span's CRC from two prefix CRCs: `crc32c(b)` is
            /// `crc32c(a ++ b) ^ crc32c_shift(crc32c(a), b.len())`.
            #[test]
            fn a_span_crc_follows_from_two_prefix_crcs(
                data in proptest::collection::vec(any::<u8>(), 0..2200),
                split in any::<prop::sample::Index>(),
            ) {
                let at = split.index(data.len() + 1);
                let (a, b) = data.split_at(at);
                prop_assert_eq!(crc32c(b), crc32c(&data) ^ crc32c_shift(crc32c(a), b.len() as u64));
            }
        }

        /// Shifts over lengths past any buffer a test builds: zeros
        /// appended in two parts agree with shifting by their sum.
        #[test]
        fn shifts_compose_over_large_lengths() {
            let c = crc32c(b"raft-io");
            for n in [1u64 << 20, (1 << 33) + 12_345, (1 << 60) + 7] {
                let (h, l) = (n / 2, n - n / 2);
                assert_eq!(crc32c_shift(crc32c_shift(c, h), l), crc32c_shift(c, n), "{n}");
            }
            assert_eq!(crc32c_shift(c, 0), c);
            // Shifting equals appending zero bytes.
            let zeros = vec![0u8; 3000];
            assert_eq!(crc32c_shift(c, 3000), crc32c_append(c, &zeros) ^ crc32c(&zeros));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{crc32c, crc32c_append};

    #[test]
    fn the_check_value_of_the_standard() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
    }

    proptest! {
        /// Another implementation (the `crc32c` crate, a dev-dependency)
        /// agrees on random buffers of up to 2 200 bytes (past the
        /// kernels' block sizes), and appending equals checksumming the
        /// concatenation, split at a random point.
        #[test]
        fn agrees_with_an_independent_implementation(
            data in proptest::collection::vec(any::<u8>(), 0..2200),
            split in any::<prop::sample::Index>(),
        ) {
            prop_assert_eq!(crc32c(&data), ::crc32c::crc32c(&data));
            let at = split.index(data.len() + 1);
            let (a, b) = data.split_at(at);
            prop_assert_eq!(crc32c_append(crc32c(a), b), ::crc32c::crc32c(&data));
        }
    }
}
