//! Decodes arbitrary bytes as a frame, under the default limits and under
//! tight ones chosen by the input's last byte. Decoding must never panic,
//! and whatever decodes must re-encode canonically: to the same bytes when
//! the body is at this build's version, otherwise (a newer body whose
//! unknown trailing fields were skipped) to a frame that decodes to the same
//! message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raft_io::framing::{self, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    check(&frame, &DecodeLimits::default());
    let knob = usize::from(data.last().copied().unwrap_or(0));
    check(&frame, &DecodeLimits { max_frame_bytes: knob * 4, max_entries: knob % 8 });
});

fn check(frame: &Bytes, limits: &DecodeLimits) {
    let Ok(message) = framing::decode(frame, limits) else {
        return;
    };
    let again = framing::encode(&message);
    assert_eq!(again.len(), framing::encoded_len(&message));
    let header = 2 + [message.from, message.to, message.term].iter().map(|&v| pack_io::varint_len(v)).sum::<usize>();
    if frame.get(header) == Some(&1) {
        assert_eq!(again, *frame, "a version-1 frame must be canonical");
    } else {
        assert!(again.len() <= frame.len());
        assert_eq!(framing::decode(&again, &DecodeLimits::default()).as_ref(), Ok(&message));
    }
}
