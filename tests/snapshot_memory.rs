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

/// Whether `log` holds a partial receive of 40 bytes: a chunk that
/// continues it is taken, one after a given-up receive is refused.
fn holds_a_partial_receive(log: &mut MemoryLog) -> bool {
    log.receive_snapshot_chunk(40, b"").is_ok()
}

/// A follower that received part of a snapshot stream, then was caught up
/// by entries (the leader's log still held them, or a new leader's did),
/// gives up the partial snapshot and its bytes (here in `MemoryLog`) at its next tick; and one
/// begun under an older term's leader is given up once a newer leader is
/// known. Before, both stayed in the log until the next stream.
#[test]
fn a_partial_snapshot_the_commit_index_overtook_is_given_up_at_the_next_tick() {
    let members = raft_io::Membership::new([1, 2, 3], []).unwrap();
    let chunk = |term: u64| Message {
        from: 1,
        to: 2,
        term,
        body: raft_io::MessageBody::Snapshot(Box::new(raft_io::SnapshotChunk {
            meta: SnapshotMeta { index: 5, term: 1, membership: members.clone() },
            total_len: 100,
            offset: 0,
            data: Bytes::from(vec![7u8; 40]),
        })),
    };
    let step = |node: &mut RaftNode, e: Event| node.step(e).unwrap().for_each(drop);

    // Overtaken by the commit index.
    let mut node = RaftNode::new(RaftConfig::new(2, [1, 2, 3])).unwrap();
    step(&mut node, Event::Message(chunk(1)));
    assert!(holds_a_partial_receive(node.log_mut()));
    let entries = (1..=6).map(|i| raft_io::Entry::normal(1, i, Bytes::from_static(b"x"))).collect();
    let append = raft_io::AppendEntries { prev_log_index: 0, prev_log_term: 0, leader_commit: 6, entries };
    step(&mut node, Event::Message(Message { from: 1, to: 2, term: 1, body: raft_io::MessageBody::Append(append) }));
    assert_eq!(node.commit_index(), 6);
    step(&mut node, Event::Tick);
    assert!(!holds_a_partial_receive(node.log_mut()), "the overtaken receive is still held");

    // Begun under term 1's leader; term 2's leader is heard from.
    let mut node = RaftNode::new(RaftConfig::new(2, [1, 2, 3])).unwrap();
    step(&mut node, Event::Message(chunk(1)));
    let heartbeat = raft_io::Heartbeat { commit: 0, round: 1 };
    step(
        &mut node,
        Event::Message(Message { from: 3, to: 2, term: 2, body: raft_io::MessageBody::Heartbeat(heartbeat) }),
    );
    assert!(holds_a_partial_receive(node.log_mut()), "a tick has not passed yet");
    step(&mut node, Event::Tick);
    assert!(!holds_a_partial_receive(node.log_mut()), "an older term's receive is still held");

    // Still needed: kept across ticks.
    let mut node = RaftNode::new(RaftConfig::new(2, [1, 2, 3])).unwrap();
    step(&mut node, Event::Message(chunk(1)));
    step(&mut node, Event::Tick);
    assert!(holds_a_partial_receive(node.log_mut()), "a receive still needed was given up");
}

/// The same in a many-groups host, which defers a quiet follower's ticks
/// (counts them without a step): a follower holding a partial receive is
/// not quiet, so the host's next tick steps it and the receive is given up.
#[test]
fn a_many_groups_host_ticks_a_follower_holding_an_overtaken_receive() {
    use raft_io::multi::{HostConfig, MultiNode};
    let members = raft_io::Membership::new([1, 2, 3], []).unwrap();
    let mut host = MultiNode::new(HostConfig::new(2));
    host.create_group(9, RaftConfig::new(2, [1, 2, 3]).election_timeout(50, 60), MemoryLog::new()).unwrap();
    let chunk = raft_io::SnapshotChunk {
        meta: SnapshotMeta { index: 5, term: 1, membership: members },
        total_len: 100,
        offset: 0,
        data: Bytes::from(vec![7u8; 40]),
    };
    let message = |body| Event::Message(Message { from: 1, to: 2, term: 1, body });
    host.step(9, message(raft_io::MessageBody::Snapshot(Box::new(chunk)))).unwrap();
    let entries = (1..=6).map(|i| raft_io::Entry::normal(1, i, Bytes::from_static(b"x"))).collect();
    let append = raft_io::AppendEntries { prev_log_index: 0, prev_log_term: 0, leader_commit: 6, entries };
    host.step(9, message(raft_io::MessageBody::Append(append))).unwrap();
    let _ = host.drain_actions().count();
    assert!(holds_a_partial_receive(host.group_mut(9).unwrap().log_mut()));
    host.advance(1).unwrap();
    let _ = host.drain_actions().count();
    assert!(!holds_a_partial_receive(host.group_mut(9).unwrap().log_mut()), "the tick was deferred");
}
