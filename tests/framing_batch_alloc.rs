//! Allocation counts of decoding batch frames, with a counting global
//! allocator: the item vector, plus what each item needs (an AppendEntries
//! its entry vector, whatever its number of entries; a heartbeat, a
//! quiescence notice or a ping nothing), so O(items); and a frame refused
//! for its item count allocates nothing, whatever the count it claims.
//!
//! Counts are per thread, so tests running in parallel do not disturb each
//! other.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/frame_check.rs"]
mod frame_check;

#[path = "support/batch_check.rs"]
mod batch_check;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use bytes::Bytes;
use counting_alloc::{CountingAllocator, count_allocations};
use raft_io::framing::{self, DecodeLimits, FrameError};
use raft_io::multi::{Envelope, EnvelopeBody};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn raft(group: u64, message: raft_io::Message) -> Envelope {
    Envelope { from: 1, to: 2, body: EnvelopeBody::Raft { group, message } }
}

/// Allocations of a second decode of `envelopes`' frame (the first also
/// makes the frame's `Bytes` shared, once, when it has data to slice).
fn decode_allocations(envelopes: &[Envelope]) -> u64 {
    let frame = framing::encode_batch(1, 2, envelopes).expect("valid");
    let limits = DecodeLimits::default();
    drop(framing::decode_batch(&frame, &limits));
    let (decoded, n) = count_allocations(|| framing::decode_batch(&frame, &limits));
    assert_eq!(decoded.as_deref(), Ok(envelopes));
    n
}

#[test]
fn heartbeats_quiesce_notices_and_pings_cost_the_item_vector_alone() {
    for n in [1u64, 64, 4096] {
        let envelopes: Vec<Envelope> = (1..=n)
            .map(|g| match g % 3 {
                0 => Envelope { from: 1, to: 2, body: EnvelopeBody::Ping },
                1 => Envelope { from: 1, to: 2, body: EnvelopeBody::Quiesce { group: g, term: 3, commit: 9 } },
                _ => raft(g, wire_samples::heartbeat()),
            })
            .collect();
        assert_eq!(decode_allocations(&envelopes), 1, "{n} items");
    }
}

#[test]
fn appends_cost_one_entry_vector_each_whatever_their_entries() {
    for (groups, entries) in [(1u64, 1usize), (1, 512), (16, 1), (16, 64)] {
        let envelopes: Vec<Envelope> = (1..=groups).map(|g| raft(g, wire_samples::append_of(entries, 16))).collect();
        assert_eq!(decode_allocations(&envelopes), 1 + groups, "{groups} appends of {entries} entries");
    }
}

#[test]
fn a_refused_item_count_allocates_nothing() {
    let limits = DecodeLimits::default();
    // Past the limit.
    let mut after = vec![1, 2];
    after.extend_from_slice(&[0xFF; 9]);
    after.push(0x01);
    let huge = Bytes::from(batch_check::seal(&after));
    let (result, n) = count_allocations(|| framing::decode_batch(&huge, &limits));
    assert!(matches!(result, Err(FrameError::TooManyItems { .. })));
    assert_eq!(n, 0);
    // Within the limit (16384 = 0x80 0x80 0x01), but not in the bytes present.
    let claims = Bytes::from(batch_check::seal(&[1, 2, 0x80, 0x80, 0x01, 2, 1, 0]));
    let (result, n) = count_allocations(|| framing::decode_batch(&claims, &limits));
    assert!(matches!(result, Err(FrameError::Truncated { .. })));
    assert_eq!(n, 0);
}

/// The item vector's bound documented on `DecodeLimits`: 16384 items of at
/// most 96 bytes each (on 64-bit targets).
#[test]
fn an_envelope_is_at_most_the_documented_size() {
    eprintln!("size_of::<Envelope>() = {}", std::mem::size_of::<Envelope>());
    assert!(std::mem::size_of::<Envelope>() <= 96);
}
