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
