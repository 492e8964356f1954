//! One representative message of every kind, with non-default field values
//! (multi-byte varints, both booleans, every entry kind, a joint
//! membership). Shared by the golden-vector tests, the pack-io cross-check,
//! the benches and the fuzz seed corpus.

#![allow(dead_code)]

use bytes::Bytes;
use raft_io::{
    AppendEntries, AppendResponse, Entry, Heartbeat, HeartbeatResponse, Membership, Message, MessageBody,
    ReadIndexRequest, ReadIndexResponse, RemovalNotice, SnapshotAck, SnapshotChunk, SnapshotMeta, VoteRequest,
    VoteResponse,
};

/// A message from node 1 to node 2 in term 7 (every sample's envelope,
/// except where a kind is sent the other way).
pub fn message(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message { from, to, term, body }
}

/// A joint configuration: voters {1,2,4}, learner {5}, outgoing {1,2,3}.
pub fn joint_membership() -> Membership {
    Membership::joint([1, 2, 4], [5], [1, 2, 3]).expect("valid joint membership")
}

/// `(fixture name, message)` for every message kind, in tag order.
pub fn samples() -> Vec<(&'static str, Message)> {
    vec![
        (
            "pre_vote",
            message(
                1,
                2,
                8,
                MessageBody::PreVote(VoteRequest { last_log_index: 300, last_log_term: 7, transfer: false }),
            ),
        ),
        ("pre_vote_response", message(2, 1, 8, MessageBody::PreVoteResponse(VoteResponse { granted: true }))),
        (
            "vote",
            message(
                1,
                3,
                1 << 40,
                MessageBody::Vote(VoteRequest { last_log_index: 1_000_000, last_log_term: 129, transfer: true }),
            ),
        ),
        ("vote_response", message(3, 1, 1 << 40, MessageBody::VoteResponse(VoteResponse { granted: false }))),
        (
            "append",
            message(
                1,
                2,
                7,
                MessageBody::Append(AppendEntries {
                    prev_log_index: 41,
                    prev_log_term: 6,
                    leader_commit: 40,
                    entries: vec![
                        Entry::normal(6, 42, Bytes::from_static(b"put k=v")),
                        Entry::noop(7, 43),
                        Entry::config(7, 44, &joint_membership()),
                        Entry::normal(7, 45, Bytes::from(vec![0xAB; 130])),
                    ],
                }),
            ),
        ),
        (
            "append_response",
            message(
                2,
                1,
                7,
                MessageBody::AppendResponse(AppendResponse { success: false, index: 44, hint_term: 5, hint_index: 30 }),
            ),
        ),
        ("heartbeat", message(1, 2, 7, MessageBody::Heartbeat(Heartbeat { commit: 12_345, round: 77 }))),
        ("heartbeat_response", message(2, 1, 7, MessageBody::HeartbeatResponse(HeartbeatResponse { round: 77 }))),
        (
            "snapshot",
            message(
                1,
                4,
                9,
                MessageBody::Snapshot(Box::new(SnapshotChunk {
                    meta: SnapshotMeta {
                        index: 1000,
                        term: 9,
                        membership: Membership::new([1, 2, 3], [4]).expect("valid membership"),
                    },
                    total_len: 1 << 20,
                    offset: 65_536,
                    data: Bytes::from_static(b"snapshot chunk bytes"),
                })),
            ),
        ),
        (
            "snapshot_response",
            message(
                4,
                1,
                9,
                MessageBody::SnapshotResponse(SnapshotAck { index: 1000, received: 131_072, rejected: false }),
            ),
        ),
        ("timeout_now", message(1, 3, 9, MessageBody::TimeoutNow)),
        ("read_index", message(3, 1, 9, MessageBody::ReadIndex(ReadIndexRequest { id: 0xDEAD_BEEF }))),
        (
            "read_index_response",
            message(
                1,
                3,
                9,
                MessageBody::ReadIndexResponse(ReadIndexResponse { id: 0xDEAD_BEEF, index: 5000, ok: true }),
            ),
        ),
        ("removed", message(2, 5, 9, MessageBody::Removed(RemovalNotice { config_index: 4321 }))),
    ]
}

/// An AppendEntries of `count` normal entries of `size` bytes each.
pub fn append_of(count: usize, size: usize) -> Message {
    let data = Bytes::from(vec![0x5A; size]);
    let entries = (0..count as u64).map(|i| Entry::normal(3, 101 + i, data.clone())).collect();
    message(
        1,
        2,
        3,
        MessageBody::Append(AppendEntries { prev_log_index: 100, prev_log_term: 3, leader_commit: 99, entries }),
    )
}

/// A heartbeat as a leader sends it in steady state.
pub fn heartbeat() -> Message {
    message(1, 2, 3, MessageBody::Heartbeat(Heartbeat { commit: 100_000, round: 4242 }))
}

/// A vote request as a candidate sends it.
pub fn vote() -> Message {
    message(1, 2, 4, MessageBody::Vote(VoteRequest { last_log_index: 100_000, last_log_term: 3, transfer: false }))
}

/// A configuration whose members carry addresses (membership blob version
/// 2): voters {1,2,3} at IPv4, IPv6 and a host name, learner 4 without one.
pub fn addressed_membership() -> Membership {
    let m = Membership::new([1, 2, 3], [4]).expect("valid membership");
    let m = m.with_address(1, "10.0.0.1:7001").expect("address");
    let m = m.with_address(2, "[2001:db8::2]:7001").expect("address");
    m.with_address(3, "node-3.example:7001").expect("address")
}

/// `(fixture name, message)` of the messages that carry a configuration
/// with addresses (membership blob version 2), in
/// `tests/fixtures/wire/membership2/`.
pub fn addressed_samples() -> Vec<(&'static str, Message)> {
    vec![
        (
            "append_config_with_addresses",
            message(
                1,
                2,
                7,
                MessageBody::Append(AppendEntries {
                    prev_log_index: 43,
                    prev_log_term: 7,
                    leader_commit: 43,
                    entries: vec![Entry::config(7, 44, &addressed_membership())],
                }),
            ),
        ),
        (
            "snapshot_with_addresses",
            message(
                1,
                4,
                9,
                MessageBody::Snapshot(Box::new(SnapshotChunk {
                    meta: SnapshotMeta { index: 1000, term: 9, membership: addressed_membership() },
                    total_len: 20,
                    offset: 0,
                    data: Bytes::from_static(b"snapshot chunk bytes"),
                })),
            ),
        ),
    ]
}
