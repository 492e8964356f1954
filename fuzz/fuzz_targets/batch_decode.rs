//! Decodes arbitrary bytes as a batch frame (format 3), under the default
//! limits and under tight ones chosen by the input's last byte: once as
//! they came (refused, almost always by the checksum) and once with the
//! checksum fixed up, so the decoder behind the checksum is fuzzed too.
//! Decoding must never panic; whatever decodes must carry the right
//! checksum, stay within the limits, be refused by the single-message
//! decoder, and re-encode canonically: to the same bytes, or (a body of a
//! newer version whose unknown trailing fields were skipped) to a frame no
//! longer than it that decodes to the same envelopes.
//!
//! The checks live in `tests/support/batch_check.rs`, which the stable
//! twins (`tests/framing_batch_props.rs`, and
//! `tests/framing_batch_golden.rs` on the seed corpus
//! `fuzz/corpus/batch_decode/`) share.
#![no_main]

#[path = "../../tests/support/frame_check.rs"]
mod frame_check;

#[path = "../../tests/support/batch_check.rs"]
mod batch_check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| batch_check::fuzz_one(data));
