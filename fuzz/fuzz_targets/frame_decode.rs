//! Decodes arbitrary bytes as a frame, under the default limits and under
//! tight ones chosen by the input's last byte: once as they came (refused,
//! almost always by the checksum) and once with the checksum fixed up, so
//! the decoder behind the checksum is fuzzed too. Decoding must never
//! panic; whatever decodes must carry the right checksum and re-encode
//! canonically: to the same bytes when the body is at this build's version,
//! otherwise (a newer body whose unknown trailing fields were skipped) to a
//! frame that decodes to the same message.
//!
//! The checks live in `tests/support/frame_check.rs`, which the stable
//! twins (`tests/framing_props.rs`, `tests/framing_corpus.rs`) share.
#![no_main]

#[path = "../../tests/support/frame_check.rs"]
mod frame_check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| frame_check::fuzz_one(data));
