//! Memory during a snapshot transfer is bounded by the chunk size and the
//! window, not by the snapshot: measured with a counting allocator that
//! tracks live bytes on this thread.
//!
//! The leader keeps its 16 MiB snapshot in its `MemoryLog` (that is the
//! application state it already has) and streams zero-copy slices of it.
//! The follower runs on a log that streams received chunks to "disk" (here:
//! a running digest), as a file-backed log does; `MemoryLog` would, by
//! definition, hold the snapshot in memory.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

mod common;

use bytes::Bytes;
use counting_alloc::{CountingAllocator, live_bytes};
use raft_io::{Action, Event, MemoryLog, Message, RaftConfig, RaftLog, RaftNode, SnapshotMeta, StorageError};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A log that streams a received snapshot through a digest instead of
/// keeping it, like a log that writes it to a file.
struct StreamingLog {
    inner: MemoryLog,
    digest: u64,
    receiving: Option<SnapshotMeta>,
}

fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

impl RaftLog for StreamingLog {
    common::forward_log!(inner, entries);
    fn begin_snapshot_receive(&mut self, meta: &SnapshotMeta, _total: u64) -> Result<(), StorageError> {
        self.receiving = Some(meta.clone());
        self.digest = 0xcbf2_9ce4_8422_2325;
        Ok(())
    }
    fn receive_snapshot_chunk(&mut self, _offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.digest = fold(self.digest, data);
        Ok(())
    }
    fn finish_snapshot_receive(&mut self) -> Result<(), StorageError> {
        let meta = self.receiving.take().expect("receiving");
        // The "file" is identified by its digest.
        self.inner.install_snapshot(meta, Bytes::copy_from_slice(&self.digest.to_le_bytes()))
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

#[test]
fn transfer_memory_is_bounded_by_chunk_and_window() {
    const SNAPSHOT: usize = 16 << 20;
    const CHUNK: u64 = 64 << 10;
    const WINDOW: usize = 4;
    // Node 2 is a learner: the leader commits alone, and the learner, which
    // never heard of the log, needs the snapshot.
    let config = |id| RaftConfig::new(id, [1]).learners([2]).seed(id).max_message_bytes(CHUNK).max_inflight(WINDOW);
    let mut leader = RaftNode::new(config(1)).unwrap();
    let follower_log = StreamingLog { inner: MemoryLog::new(), digest: 0, receiving: None };
    let mut follower = RaftNode::with_log(config(2), follower_log).unwrap();
    let mut inflight: Vec<Message> = Vec::new();
    leader.step(Event::Campaign).unwrap().for_each(drop);
    assert!(leader.is_leader());
    let state: Vec<u8> = (0..SNAPSHOT).map(|i| (i * 31 % 251) as u8).collect();
    let expected_digest = fold(0xcbf2_9ce4_8422_2325, &state);
    leader.step(Event::Snapshot { index: 1, data: Bytes::from(state) }).unwrap().for_each(drop);

    // Stream it, measuring the peak of live bytes above the start.
    let base = live_bytes();
    let mut peak = 0i64;
    let mut restored = None;
    let mut rounds = 0;
    while restored.is_none() {
        rounds += 1;
        assert!(rounds < 10_000, "transfer stalled");
        for a in leader.step(Event::Tick).unwrap() {
            if let Action::Send { message, .. } = a {
                inflight.push(message);
            }
        }
        while !inflight.is_empty() {
            peak = peak.max(live_bytes() - base);
            let batch: Vec<Message> = std::mem::take(&mut inflight);
            for m in batch {
                let node: &mut dyn FnMut(Event) -> Vec<Action> = if m.to == 1 {
                    &mut |e| leader.step(e).unwrap().collect()
                } else {
                    &mut |e| follower.step(e).unwrap().collect()
                };
                for a in node(Event::Message(m)) {
                    match a {
                        Action::Send { message, .. } => inflight.push(message),
                        Action::RestoreSnapshot { data, .. } => restored = Some(data),
                        _ => {}
                    }
                }
                peak = peak.max(live_bytes() - base);
            }
        }
    }
    let restored = restored.unwrap();
    assert_eq!(restored[..], expected_digest.to_le_bytes(), "every byte arrived, in order");
    let bound = (WINDOW as i64) * (CHUNK as i64);
    println!("16 MiB snapshot in {CHUNK} B chunks, window {WINDOW}: peak extra live memory {peak} B (bound {bound} B)");
    assert!(peak < bound, "peak {peak} B is not bounded by the window of chunks ({bound} B)");
}
