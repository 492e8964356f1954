//! Allocation counts of encoding and decoding, measured with a counting
//! global allocator: decoding an AppendEntries costs the same small number
//! of allocations whatever its number of entries, because entry data are
//! slices of the frame, and heartbeats and votes cost none.
//!
//! Counts are per thread, so tests running in parallel do not disturb each
//! other.
#![cfg(feature = "framing")]

#[path = "support/wire_samples.rs"]
mod wire_samples;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use bytes::{Bytes, BytesMut};
use counting_alloc::{CountingAllocator, count_allocations};
use raft_io::framing::{self, DecodeLimits};
use raft_io::{Message, MessageBody};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let (out, n) = count_allocations(f);
    (n, out)
}

/// Allocations of the first decode of a frame freshly encoded (the frame's
/// `Bytes` is then still unshared, as one straight off a socket buffer is),
/// and of a second decode of the same frame.
fn decode_allocations(message: &Message) -> (u64, u64) {
    let frame = framing::encode(message);
    let limits = DecodeLimits::default();
    let (first, decoded) = allocations(|| framing::decode(&frame, &limits));
    assert_eq!(decoded.as_ref(), Ok(message));
    drop(decoded);
    let (second, decoded) = allocations(|| framing::decode(&frame, &limits));
    assert_eq!(decoded.as_ref(), Ok(message));
    (first, second)
}

#[test]
fn append_entries_decode_allocations_do_not_grow_with_entries() {
    let counts: Vec<(usize, (u64, u64))> =
        [1, 64, 512].into_iter().map(|n| (n, decode_allocations(&wire_samples::append_of(n, 16)))).collect();
    for &(n, (first, second)) in &counts {
        eprintln!("AppendEntries of {n} x 16 B: {first} allocations on first decode, {second} after");
        // The entry vector, plus making the frame's `Bytes` shared once.
        assert_eq!((first, second), (2, 1), "{n} entries");
    }
    let (first, second) = decode_allocations(&wire_samples::append_of(64, 1024));
    assert_eq!((first, second), (2, 1), "64 x 1 KiB");
}

#[test]
fn data_are_slices_of_the_frame_not_copies() {
    let frame = framing::encode(&wire_samples::append_of(64, 16));
    let range = frame.as_ptr_range();
    let Ok(Message { body: MessageBody::Append(append), .. }) = framing::decode(&frame, &DecodeLimits::default())
    else {
        panic!("not an AppendEntries");
    };
    for entry in &append.entries {
        assert!(range.contains(&entry.data.as_ptr()), "entry {} was copied", entry.index);
    }
}

#[test]
fn snapshot_chunk_data_is_a_slice_of_the_frame() {
    let (_, snapshot) = wire_samples::samples().into_iter().find(|(n, _)| *n == "snapshot").expect("sample");
    let frame = framing::encode(&snapshot);
    let Ok(Message { body: MessageBody::Snapshot(chunk), .. }) = framing::decode(&frame, &DecodeLimits::default())
    else {
        panic!("not a snapshot chunk");
    };
    assert!(frame.as_ptr_range().contains(&chunk.data.as_ptr()));
}

#[test]
fn heartbeats_and_votes_decode_without_allocating() {
    for message in [wire_samples::heartbeat(), wire_samples::vote()] {
        let (first, second) = decode_allocations(&message);
        eprintln!("{}: {first} allocations per decode", message.body.name());
        assert_eq!((first, second), (0, 0), "{}", message.body.name());
    }
}

/// A corrupted frame is refused by its checksum before anything is
/// allocated for it, however many entries it holds or claims.
#[test]
fn a_corrupted_frame_is_refused_without_allocating() {
    for message in [wire_samples::heartbeat(), wire_samples::append_of(512, 16)] {
        let mut damaged = framing::encode(&message).to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x01;
        let frame = Bytes::from(damaged);
        let (n, decoded) = allocations(|| framing::decode(&frame, &DecodeLimits::default()));
        assert!(matches!(decoded, Err(framing::FrameError::ChecksumMismatch { .. })), "{decoded:?}");
        assert_eq!(n, 0, "{}", message.body.name());
    }
}

/// `encode_into` computes the checksum over the bytes it wrote and patches
/// it in place: a buffer with room sees no allocation, the checksum
/// included.
#[test]
fn encoding_into_a_reused_buffer_allocates_nothing() {
    let messages = [wire_samples::heartbeat(), wire_samples::vote(), wire_samples::append_of(64, 16)];
    let mut buf = BytesMut::with_capacity(4096);
    for message in &messages {
        buf.clear();
        let (n, ()) = allocations(|| framing::encode_into(message, &mut buf));
        assert_eq!(n, 0, "{}", message.body.name());
        assert_eq!(buf.len(), framing::encoded_len(message));
    }
}

#[test]
fn encoding_a_fresh_frame_allocates_once() {
    for message in [wire_samples::heartbeat(), wire_samples::vote(), wire_samples::append_of(64, 1024)] {
        let (n, frame): (u64, Bytes) = allocations(|| framing::encode(&message));
        assert_eq!(n, 1, "{}", message.body.name());
        // The frame owns exactly its bytes, so sharing it later is one more
        // allocation at most (checked by the decode tests above).
        assert_eq!(frame.len(), framing::encoded_len(&message));
    }
}

#[test]
fn a_frame_split_off_a_shared_read_buffer_costs_only_the_entry_vector() {
    // What a stream transport does: read several frames into one buffer,
    // then split each one off.
    let message = wire_samples::append_of(64, 16);
    let mut read_buf = BytesMut::new();
    framing::encode_into(&message, &mut read_buf);
    framing::encode_into(&message, &mut read_buf);
    let len = framing::encoded_len(&message);
    let first = read_buf.split_to(len).freeze();
    let second = read_buf.split_to(len).freeze();
    for frame in [first, second] {
        let (n, decoded) = allocations(|| framing::decode(&frame, &DecodeLimits::default()));
        assert_eq!(decoded.as_ref(), Ok(&message));
        assert_eq!(n, 1);
    }
}
