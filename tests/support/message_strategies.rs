//! Strategies for arbitrary messages of every kind, with field values
//! biased towards the varint length boundaries. Shared by the property tests
//! of single-message frames (`tests/framing_props.rs`) and of batch frames
//! (`tests/framing_batch_props.rs`).

#![allow(dead_code)]

use bytes::Bytes;
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use raft_io::{
    AppendEntries, AppendResponse, Entry, EntryKind, Heartbeat, HeartbeatResponse, Membership, Message, MessageBody,
    ReadIndexRequest, ReadIndexResponse, SnapshotAck, SnapshotChunk, SnapshotMeta, VoteRequest, VoteResponse,
};

/// Any `u64`, biased towards the varint length boundaries.
pub fn num() -> impl Strategy<Value = u64> {
    prop_oneof![0..200u64, (0..64u32).prop_map(|s| 1u64 << s), (1..64u32).prop_map(|s| (1u64 << s) - 1), any::<u64>(),]
}

pub fn node_id() -> impl Strategy<Value = u64> {
    prop_oneof![1..10u64, 1..=u64::MAX]
}

pub fn data() -> impl Strategy<Value = Bytes> {
    prop_oneof![vec(any::<u8>(), 0..16), vec(any::<u8>(), 120..300)].prop_map(Bytes::from)
}

/// A valid membership: voters (at least one, as a message must carry) and
/// learners drawn from disjoint ranges, sometimes joint.
pub fn membership() -> impl Strategy<Value = Membership> {
    (btree_set(1..50u64, 1..5), btree_set(50..100u64, 0..3), btree_set(1..u64::MAX, 0..4)).prop_map(
        |(voters, learners, outgoing)| {
            Membership::joint(voters, learners, outgoing).expect("disjoint, non-zero, sorted ids")
        },
    )
}

pub fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (num(), num(), data()).prop_map(|(t, i, d)| Entry::normal(t, i, d)),
        (num(), num(), data()).prop_map(|(t, i, d)| Entry { term: t, index: i, kind: EntryKind::Noop, data: d }),
        (num(), num(), membership()).prop_map(|(t, i, m)| Entry::config(t, i, &m)),
    ]
}

pub fn vote_request() -> impl Strategy<Value = VoteRequest> {
    (num(), num(), any::<bool>()).prop_map(|(last_log_index, last_log_term, transfer)| VoteRequest {
        last_log_index,
        last_log_term,
        transfer,
    })
}

pub fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        vote_request().prop_map(MessageBody::PreVote),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse(VoteResponse { granted })),
        vote_request().prop_map(MessageBody::Vote),
        any::<bool>().prop_map(|granted| MessageBody::VoteResponse(VoteResponse { granted })),
        (num(), num(), num(), vec(entry(), 0..12)).prop_map(
            |(prev_log_index, prev_log_term, leader_commit, entries)| {
                MessageBody::Append(AppendEntries { prev_log_index, prev_log_term, leader_commit, entries })
            }
        ),
        (any::<bool>(), num(), num(), num()).prop_map(|(success, index, hint_term, hint_index)| {
            MessageBody::AppendResponse(AppendResponse { success, index, hint_term, hint_index })
        }),
        (num(), num()).prop_map(|(commit, round)| MessageBody::Heartbeat(Heartbeat { commit, round })),
        num().prop_map(|round| MessageBody::HeartbeatResponse(HeartbeatResponse { round })),
        (num(), num(), membership(), num(), num(), data()).prop_map(
            |(index, term, membership, total_len, offset, data)| {
                MessageBody::Snapshot(Box::new(SnapshotChunk {
                    meta: SnapshotMeta { index, term, membership },
                    total_len,
                    offset,
                    data,
                }))
            }
        ),
        (num(), num(), any::<bool>()).prop_map(|(index, received, rejected)| {
            MessageBody::SnapshotResponse(SnapshotAck { index, received, rejected })
        }),
        Just(MessageBody::TimeoutNow),
        num().prop_map(|id| MessageBody::ReadIndex(ReadIndexRequest { id })),
        (num(), num(), any::<bool>()).prop_map(|(id, index, ok)| MessageBody::ReadIndexResponse(ReadIndexResponse {
            id,
            index,
            ok
        })),
    ]
}

pub fn message() -> impl Strategy<Value = Message> {
    (node_id(), node_id(), num(), body()).prop_map(|(from, to, term, body)| Message { from, to, term, body })
}
