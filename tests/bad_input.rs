//! Bad input never panics and never loses a committed entry: each case is
//! ignored or refused with a typed error, and the node keeps working.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{Harness, append, cmd};
use proptest::prelude::*;
use raft_io::{
    AppendEntries, AppendResponse, Entry, EntryKind, Error, Event, Heartbeat, HeartbeatResponse, MAX_TERM, Message,
    MessageBody, RaftConfig, RaftLog, ReadIndexResponse, SnapshotAck, SnapshotChunk, SnapshotMeta, VoteRequest,
    VoteResponse,
};

fn elected() -> Harness {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.propose(1, "a").unwrap();
    h.deliver_all();
    h.tick_all(1);
    assert_eq!(h.node(2).commit_index(), 2);
    h
}

/// The cluster still replicates and commits after whatever happened.
fn still_works(h: &mut Harness) {
    let leader = h.leader().expect("leader");
    let before = h.node(leader).commit_index();
    h.propose(leader, "after").unwrap();
    h.deliver_all();
    h.tick_all(2);
    for id in 1..=3 {
        assert!(h.node(id).commit_index() > before, "node {id} did not advance");
    }
}

#[test]
fn misaddressed_foreign_and_self_messages_are_dropped() {
    let mut h = elected();
    let status = h.node(2).status();
    let hb = MessageBody::Heartbeat(Heartbeat { commit: 99, round: 1 });
    for (from, to) in [(1, 3), (2, 2), (0, 2)] {
        let actions = h.step(2, Event::Message(Message { from, to, term: 1, body: hb.clone() })).unwrap();
        assert!(actions.is_empty());
    }
    let after = h.node(2).status();
    assert_eq!(after.commit, status.commit);
    assert_eq!(after.dropped_messages, status.dropped_messages + 3);
    // Answers from a node the leader does not know change nothing.
    let unknown = Message {
        from: 99,
        to: 1,
        term: 1,
        body: MessageBody::AppendResponse(AppendResponse { success: true, index: 2, ..Default::default() }),
    };
    h.step(1, Event::Message(unknown)).unwrap();
    let hb_resp =
        Message { from: 99, to: 1, term: 1, body: MessageBody::HeartbeatResponse(HeartbeatResponse { round: 7 }) };
    h.step(1, Event::Message(hb_resp)).unwrap();
    still_works(&mut h);
}

/// A term above `MAX_TERM` is dropped as invalid, so `term + 1` can never
/// overflow; a node pushed to `MAX_TERM` itself stops campaigning instead of
/// overflowing, however long it ticks.
#[test]
fn terms_past_the_maximum_are_dropped_and_the_maximum_never_overflows() {
    let mut h = elected();
    let status = h.node(2).status();
    for term in [MAX_TERM + 1, u64::MAX] {
        let vote = MessageBody::Vote(VoteRequest { last_log_index: 99, last_log_term: 1, transfer: true });
        let actions = h.step(2, Event::Message(Message { from: 3, to: 2, term, body: vote })).unwrap();
        assert!(actions.is_empty());
    }
    assert_eq!(h.node(2).term(), status.term);
    assert_eq!(h.node(2).status().dropped_messages, status.dropped_messages + 2);
    still_works(&mut h);

    // A faulty peer cannot drag node 3 to the maximum term: a term that far
    // ahead is dropped (the jump limit, `tests/hardening.rs`).
    let hb = MessageBody::Heartbeat(Heartbeat { commit: 0, round: 1 });
    h.step(3, Event::Message(Message { from: 2, to: 3, term: MAX_TERM, body: hb })).unwrap();
    assert_eq!(h.node(3).term(), status.term);
    still_works(&mut h);
}

/// Node `id`'s log from its first index through `through`.
fn entries_through(h: &Harness, id: u64, through: u64) -> Vec<Entry> {
    let log = h.node(id).log();
    let mut out = Vec::new();
    log.entries(log.first_index(), through + 1, u64::MAX, &mut out).unwrap();
    out
}

#[test]
fn an_append_conflicting_with_the_committed_prefix_is_refused() {
    let mut h = elected();
    let commit = h.node(2).commit_index();
    let before = entries_through(&h, 2, commit);
    assert_eq!(before.iter().map(|e| e.term).collect::<Vec<_>>(), [1, 1]);
    // Claims the committed indexes 1..=2 hold term 1 (as they do) but
    // different content: the entries at or below commit are skipped, never
    // rewritten.
    let forged = vec![Entry::normal(1, 1, cmd("evil")), Entry::normal(1, 2, cmd("evil"))];
    h.step(2, Event::Message(append(1, 2, 1, (0, 0), 2, forged))).unwrap();
    assert_eq!(entries_through(&h, 2, commit), before);
    assert_eq!(h.applied[&2].iter().filter(|(_, _, c)| c == &cmd("evil")).count(), 0);

    // A node claiming to lead term 2 sends a different term (2) at the
    // committed index 2 (term 1): the sender does not hold our committed
    // log, so the whole message is dropped: nothing truncated, rewritten or
    // appended, the commit index stays, nothing is applied again — even
    // when it carries a new entry and a commit index covering it.
    let applied = h.applied[&2].clone();
    let cases = [
        // Only the committed index.
        append(3, 2, 2, (1, 1), 3, vec![Entry::normal(2, 2, cmd("x"))]),
        // The conflicting committed entry, then a new one it would commit.
        append(3, 2, 2, (1, 1), 3, vec![Entry::normal(2, 2, cmd("x")), Entry::normal(2, 3, cmd("y"))]),
        // From the start of the log: every committed index conflicts.
        append(
            3,
            2,
            2,
            (0, 0),
            3,
            vec![Entry::normal(2, 1, cmd("x")), Entry::normal(2, 2, cmd("x")), Entry::normal(2, 3, cmd("y"))],
        ),
        // A matching committed entry after a conflicting `prev_log_term`.
        append(3, 2, 2, (1, 2), 3, vec![Entry::normal(2, 2, cmd("x")), Entry::normal(2, 3, cmd("y"))]),
    ];
    for (i, m) in cases.into_iter().enumerate() {
        let dropped = h.node(2).status().dropped_messages;
        h.step(2, Event::Message(m)).unwrap();
        let node = h.node(2);
        assert_eq!(node.last_index(), commit, "case {i}: nothing truncated or appended");
        assert_eq!(entries_through(&h, 2, commit), before, "case {i}: committed entries unchanged");
        assert_eq!(node.commit_index(), commit, "case {i}: commit index unchanged");
        assert_eq!(node.status().dropped_messages, dropped + 1, "case {i}: dropped");
        assert_eq!(h.applied[&2], applied, "case {i}: nothing applied again");
    }
    // Node 2 moved to term 2 on the way: let the cluster elect a leader of a
    // later term, then check it still works.
    h.take_queue();
    h.tick_all(60);
    assert_eq!(entries_through(&h, 2, commit), before);
    still_works(&mut h);
}

#[test]
fn malformed_appends_are_dropped() {
    let mut h = elected();
    let last = h.node(2).last_index();
    let cases = vec![
        // Gap in indexes.
        append(1, 2, 1, (2, 1), 2, vec![Entry::normal(1, 4, cmd("x"))]),
        // Entry term above the message term.
        append(1, 2, 1, (2, 1), 2, vec![Entry::normal(5, 3, cmd("x"))]),
        // Terms going backwards.
        append(1, 2, 1, (2, 1), 2, vec![Entry::normal(1, 3, cmd("x")), Entry::normal(0, 4, cmd("y"))]),
        // A configuration entry that does not decode.
        append(
            1,
            2,
            1,
            (2, 1),
            2,
            vec![Entry { term: 1, index: 3, kind: EntryKind::Config, data: Bytes::from_static(b"\x07garbage") }],
        ),
        // Index arithmetic at the limit.
        append(1, 2, 1, (u64::MAX, 1), 2, vec![Entry::normal(1, 0, cmd("x"))]),
        // prev_log_term above the message term.
        append(1, 2, 1, (2, 9), 2, vec![]),
    ];
    for m in cases {
        h.step(2, Event::Message(m)).unwrap();
        assert_eq!(h.node(2).last_index(), last);
        assert_eq!(h.node(2).commit_index(), 2);
    }
    still_works(&mut h);
}

#[test]
fn an_index_beyond_the_log_is_rejected_with_a_hint() {
    let mut h = elected();
    let actions = h.step(2, Event::Message(append(1, 2, 1, (1_000_000, 1), 5, vec![]))).unwrap();
    let hint = actions.iter().find_map(|a| match a {
        raft_io::Action::Send { message: Message { body: MessageBody::AppendResponse(r), .. }, .. } => Some(*r),
        _ => None,
    });
    let r = hint.expect("a rejection");
    assert!(!r.success);
    assert_eq!((r.hint_term, r.hint_index), (0, h.node(2).last_index() + 1));
    assert_eq!(h.node(2).commit_index(), 2);
    still_works(&mut h);
}

#[test]
fn bogus_answers_to_the_leader_move_nothing_backwards() {
    let mut h = elected();
    h.tick_all(2);
    let matched = |h: &Harness| h.node(1).status().peers.iter().map(|p| p.matched).collect::<Vec<_>>();
    let before = matched(&h);
    let commit = h.node(1).commit_index();
    let bogus = [
        // A match beyond the leader's log.
        MessageBody::AppendResponse(AppendResponse { success: true, index: 1_000, ..Default::default() }),
        // A stale success for an old index.
        MessageBody::AppendResponse(AppendResponse { success: true, index: 0, ..Default::default() }),
        // A rejection of an index at or below the match.
        MessageBody::AppendResponse(AppendResponse { success: false, index: 1, hint_term: 0, hint_index: 0 }),
        // An answer to a round that never existed.
        MessageBody::HeartbeatResponse(HeartbeatResponse { round: u64::MAX }),
        // A snapshot acknowledgement nobody asked for.
        MessageBody::SnapshotResponse(SnapshotAck { index: 77, received: 5, rejected: false }),
        // An unsolicited read answer and vote answers.
        MessageBody::ReadIndexResponse(ReadIndexResponse { id: 3, index: 9, ok: true }),
        MessageBody::VoteResponse(VoteResponse { granted: true }),
        MessageBody::PreVoteResponse(VoteResponse { granted: true }),
    ];
    for body in bogus {
        h.step(1, Event::Message(Message { from: 2, to: 1, term: 1, body })).unwrap();
        assert!(matched(&h).iter().zip(&before).all(|(a, b)| a >= b));
        assert_eq!(h.node(1).commit_index(), commit);
        assert!(h.node(1).is_leader());
    }
    h.take_queue();
    still_works(&mut h);
}

#[test]
fn bad_proposals_are_refused_and_append_nothing() {
    let mut h = Harness::new(1, |c| c.max_message_bytes(1024).max_uncommitted_bytes(4096));
    h.campaign(1);
    let last = h.node(1).last_index();
    assert!(matches!(h.step(1, Event::Propose(Bytes::new())), Err(Error::EmptyProposal)));
    assert!(matches!(h.step(1, Event::ProposeBatch(vec![])), Err(Error::EmptyProposal)));
    assert!(matches!(h.step(1, Event::ProposeBatch(vec![cmd("ok"), Bytes::new()])), Err(Error::EmptyProposal)));
    assert!(matches!(
        h.step(1, Event::Propose(Bytes::from(vec![0; 1025]))),
        Err(Error::ProposalTooLarge { size: 1025, max: 1024 })
    ));
    assert_eq!(h.node(1).last_index(), last, "nothing appended");
    // Followers refuse with a redirect hint.
    let mut h3 = elected();
    assert!(matches!(h3.propose(2, "x"), Err(Error::NotLeader { leader: Some(1), .. })));
}

#[test]
fn backpressure_refuses_past_max_uncommitted_bytes() {
    let mut h = Harness::new(3, |c| c.max_uncommitted_bytes(2_000));
    h.campaign(1);
    h.tick_all(1);
    h.isolate(1);
    // Nothing commits while isolated: uncommitted bytes accumulate.
    let mut accepted = 0;
    let refused = loop {
        match h.step(1, Event::Propose(Bytes::from(vec![1u8; 100]))) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100);
    };
    assert!(matches!(refused, Error::Busy { limit: 2_000, .. }), "{refused:?}");
    let last = h.node(1).last_index();
    assert!(h.step(1, Event::Propose(Bytes::from(vec![1u8; 100]))).is_err());
    assert_eq!(h.node(1).last_index(), last, "a refused proposal appends nothing");
    // Once entries commit, proposals are accepted again.
    h.heal();
    h.take_queue();
    h.tick_all(4);
    h.step(1, Event::Propose(Bytes::from(vec![1u8; 100]))).unwrap();
}

/// What commits and is applied gives its bytes back to the limit, however
/// the node hands committed commands over: a stream of proposals, each
/// applied before the next, many times the limit in all, is never refused.
#[test]
fn applied_commands_give_their_bytes_back_to_the_limit_by_apply_or_by_range() {
    for nodes in [1, 3] {
        for ranges in [false, true] {
            let mut h = Harness::new(nodes, |c| c.max_uncommitted_bytes(1_000).apply_ranges(ranges));
            h.campaign(1);
            h.tick_all(1);
            h.deliver_all();
            for k in 0..100 {
                let outcome = h.step(1, Event::Propose(Bytes::from(vec![1u8; 100])));
                assert!(outcome.is_ok(), "{nodes} nodes, ranges {ranges}: proposal {k} refused: {outcome:?}");
                h.deliver_all();
                assert_eq!(h.node(1).last_applied(), h.node(1).last_index(), "applied before the next");
            }
        }
    }
}

#[test]
fn a_snapshot_chunk_past_its_declared_size_or_too_large_is_refused() {
    let mut h = Harness::new(3, |c| c.max_snapshot_bytes(1_000));
    h.campaign(1);
    h.tick_all(1);
    let meta = SnapshotMeta { index: 50, term: 1, membership: h.node(1).membership().clone() };
    let past = SnapshotChunk { meta: meta.clone(), total_len: 10, offset: 8, data: Bytes::from_static(b"abcd") };
    h.step(2, Event::Message(Message { from: 1, to: 2, term: 1, body: MessageBody::Snapshot(Box::new(past)) }))
        .unwrap();
    let huge = SnapshotChunk { meta, total_len: 1_000_000, offset: 0, data: Bytes::from_static(b"abcd") };
    let actions = h
        .step(2, Event::Message(Message { from: 1, to: 2, term: 1, body: MessageBody::Snapshot(Box::new(huge)) }))
        .unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        raft_io::Action::Send { message: Message { body: MessageBody::SnapshotResponse(ack), .. }, .. } if ack.rejected)));
    assert_eq!(h.node(2).log().snapshot_meta().index, 0, "nothing half-installed");
    h.take_queue();
    still_works(&mut h);
}

/// A snapshot no leader sends — at an index past `MAX_TERM` (a log the node
/// could not start on again; a `WalLog` would refuse the write and halt
/// it), or without a configuration (the follower would know none and
/// refuse every append for good) — is dropped whole, even complete in one
/// chunk from the real leader in its term: nothing installed, nothing
/// answered, and the cluster goes on.
#[test]
fn a_snapshot_past_the_index_bound_or_without_a_configuration_is_dropped() {
    let mut h = elected();
    let membership = h.node(1).membership().clone();
    for meta in [
        SnapshotMeta { index: MAX_TERM + 1, term: 1, membership: membership.clone() },
        SnapshotMeta { index: u64::MAX, term: 1, membership },
        SnapshotMeta { index: 2, term: 1, membership: raft_io::Membership::empty() },
        SnapshotMeta { index: 9, term: 1, membership: raft_io::Membership::empty() },
    ] {
        let chunk = SnapshotChunk { meta, total_len: 4, offset: 0, data: Bytes::from_static(b"data") };
        let message = Message { from: 1, to: 2, term: 1, body: MessageBody::Snapshot(Box::new(chunk)) };
        let actions = h.step(2, Event::Message(message)).unwrap();
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(h.node(2).log().snapshot_meta().index, 0, "nothing installed");
        assert_eq!(h.node(2).commit_index(), 2);
        assert!(!h.node(2).membership().is_empty());
    }
    h.take_queue();
    still_works(&mut h);
}

#[test]
fn an_invalid_config_is_an_error_never_a_panic() {
    for config in [
        RaftConfig::new(0, [0]),
        RaftConfig::new(1, [1]).election_timeout(5, 3),
        RaftConfig::new(1, [1]).heartbeat_interval(100),
        RaftConfig::new(1, [2]),
    ] {
        assert!(matches!(raft_io::RaftNode::new(config), Err(Error::InvalidConfig { .. })));
    }
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (0u64..4, 0u64..8, 0u8..4, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(term, index, kind, data)| {
        Entry { term, index, kind: EntryKind::from_u8(kind).unwrap_or(EntryKind::Normal), data: data.into() }
    })
}

fn arb_body() -> impl Strategy<Value = MessageBody> {
    let small = 0u64..10;
    prop_oneof![
        (small.clone(), small.clone(), any::<bool>()).prop_map(|(i, t, transfer)| MessageBody::PreVote(VoteRequest {
            last_log_index: i,
            last_log_term: t,
            transfer
        })),
        (small.clone(), small.clone(), any::<bool>()).prop_map(|(i, t, transfer)| MessageBody::Vote(VoteRequest {
            last_log_index: i,
            last_log_term: t,
            transfer
        })),
        any::<bool>().prop_map(|granted| MessageBody::VoteResponse(VoteResponse { granted })),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse(VoteResponse { granted })),
        (small.clone(), small.clone(), small.clone(), proptest::collection::vec(arb_entry(), 0..4)).prop_map(
            |(p, t, c, entries)| MessageBody::Append(AppendEntries {
                prev_log_index: p,
                prev_log_term: t,
                leader_commit: c,
                entries
            })
        ),
        (any::<bool>(), small.clone(), small.clone(), small.clone()).prop_map(
            |(success, index, hint_term, hint_index)| {
                MessageBody::AppendResponse(AppendResponse { success, index, hint_term, hint_index })
            }
        ),
        (small.clone(), small.clone()).prop_map(|(commit, round)| MessageBody::Heartbeat(Heartbeat { commit, round })),
        small.clone().prop_map(|round| MessageBody::HeartbeatResponse(HeartbeatResponse { round })),
        (small.clone(), small.clone(), 0u64..20, 0u64..20, proptest::collection::vec(any::<u8>(), 0..8)).prop_map(
            |(index, term, total_len, offset, data)| MessageBody::Snapshot(Box::new(SnapshotChunk {
                meta: SnapshotMeta { index, term, membership: raft_io::Membership::new([1, 2, 3], []).unwrap() },
                total_len,
                offset,
                data: data.into()
            }))
        ),
        (small.clone(), 0u64..30, any::<bool>()).prop_map(|(index, received, rejected)| MessageBody::SnapshotResponse(
            SnapshotAck { index, received, rejected }
        )),
        Just(MessageBody::TimeoutNow),
        small.clone().prop_map(|id| MessageBody::ReadIndex(raft_io::ReadIndexRequest { id })),
        (small.clone(), small, any::<bool>())
            .prop_map(|(id, index, ok)| MessageBody::ReadIndexResponse(ReadIndexResponse { id, index, ok })),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let term = prop_oneof![8 => 0u64..5, 1 => Just(MAX_TERM), 1 => (MAX_TERM + 1)..=u64::MAX];
    (0u64..5, 0u64..5, term, arb_body()).prop_map(|(from, to, term, body)| Message { from, to, term, body })
}

/// Where an AppendEntries starts, relative to the receiver's last index.
#[derive(Clone, Copy, Debug)]
enum Prev {
    /// `k` entries back (at or below the commit index once `k` is large).
    Back(u64),
    /// `k` past the end: a gap, rejected with a hint.
    Ahead(u64),
    /// At the receiver's commit index: the entries land on its uncommitted
    /// suffix (a conflict there truncates it).
    AtCommit,
}

/// The commit index a leader's message claims.
#[derive(Clone, Copy, Debug)]
enum CommitPick {
    Zero,
    /// The receiver's own commit index.
    Own,
    /// Through the last entry the message matches (what a leader sends).
    Matched,
    /// Past the matched prefix (a forged or buggy leader).
    Beyond(u64),
    /// The commit index of the current leader, if any.
    Leader,
}

/// One entry of a generated AppendEntries.
#[derive(Clone, Debug)]
struct EntryPick {
    /// 0..=2: repeat the receiver's entry at that index, if it holds one;
    /// 3: a term above the receiver's entry there (a conflict, for a
    /// message of a later term), committed or not; 4..=5: the same past the
    /// receiver's commit index only; otherwise a new entry past the commit
    /// index (a committed entry is repeated).
    mode: u8,
    /// Term increase over the previous entry (capped at the message term).
    bump: u64,
    /// 0..=5 normal, 6 no-op, 7 configuration.
    kind: u8,
    data: Vec<u8>,
}

/// An answer a leader (or candidate) receives.
#[derive(Clone, Debug)]
enum AnswerPick {
    Append { success: bool, back: u64, past_end: bool, hint_term: u64, hint_back: u64 },
    Heartbeat { round: u64 },
    Snapshot { real_index: bool, received: u64, rejected: bool },
    Read { id: u64 },
    Vote { pre: bool, granted: bool },
}

/// One step of a scenario: a message built against the receiver's state at
/// the moment it is sent (so most are well formed and plausible: terms
/// near the receiver's, indexes around its log, entries contiguous after
/// `prev_log_index`), real traffic (ticks, deliveries of what the nodes
/// sent, proposals, reads), or garbage.
#[derive(Clone, Debug)]
enum Step {
    Append {
        to: u64,
        from: u64,
        dterm: i64,
        prev: Prev,
        prev_mismatch: bool,
        entries: Vec<EntryPick>,
        commit: CommitPick,
    },
    Heartbeat {
        to: u64,
        from: u64,
        dterm: i64,
        commit: CommitPick,
        round: u64,
    },
    Vote {
        to: u64,
        from: u64,
        dterm: i64,
        pre: bool,
        dindex: i64,
        dlast_term: i64,
        transfer: bool,
    },
    Snapshot {
        to: u64,
        from: u64,
        dterm: i64,
        above_commit: u64,
        term_mismatch: bool,
        total_len: u64,
        offset: u64,
        len: u64,
    },
    /// An answer to the leader (or to node `to` when there is none).
    Answer {
        to: u64,
        from: u64,
        dterm: i64,
        body: AnswerPick,
    },
    TimeoutNow {
        to: u64,
        from: u64,
        dterm: i64,
    },
    Tick {
        node: u64,
        times: u64,
    },
    /// Delivers up to this many of the messages the nodes sent.
    Deliver(usize),
    Propose(Vec<u8>),
    Read {
        node: u64,
        id: u64,
    },
    Garbage(Message),
}

/// A term change relative to the receiver's: mostly its own term.
fn arb_dterm() -> impl Strategy<Value = i64> {
    prop_oneof![6 => Just(0i64), 2 => Just(1), 1 => Just(-1), 1 => Just(2)]
}

/// The sender: one of the two other members (`k` picks which).
fn other(to: u64, k: u64) -> u64 {
    (to + k % 2) % 3 + 1
}

fn arb_commit_pick() -> impl Strategy<Value = CommitPick> {
    prop_oneof![
        1 => Just(CommitPick::Zero),
        2 => Just(CommitPick::Own),
        4 => Just(CommitPick::Matched),
        2 => (1u64..4).prop_map(CommitPick::Beyond),
        2 => Just(CommitPick::Leader),
    ]
}

fn arb_entry_pick() -> impl Strategy<Value = EntryPick> {
    (0u8..10, prop_oneof![2 => Just(0u64), 1 => Just(1)], 0u8..8, prop::collection::vec(any::<u8>(), 0..6))
        .prop_map(|(mode, bump, kind, data)| EntryPick { mode, bump, kind, data })
}

fn arb_answer() -> impl Strategy<Value = AnswerPick> {
    prop_oneof![
        4 => (any::<bool>(), 0u64..4, prop::bool::weighted(0.1), 0u64..4, 0u64..3).prop_map(
            |(success, back, past_end, hint_term, hint_back)| AnswerPick::Append { success, back, past_end, hint_term, hint_back }
        ),
        2 => (0u64..40).prop_map(|round| AnswerPick::Heartbeat { round }),
        1 => (any::<bool>(), 0u64..40, prop::bool::weighted(0.2))
            .prop_map(|(real_index, received, rejected)| AnswerPick::Snapshot { real_index, received, rejected }),
        1 => (0u64..4).prop_map(|id| AnswerPick::Read { id }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(pre, granted)| AnswerPick::Vote { pre, granted }),
    ]
}

fn arb_step() -> impl Strategy<Value = Step> {
    let to = 1u64..=3;
    prop_oneof![
        8 => (
            (to.clone(), 0u64..2, arb_dterm()),
            prop_oneof![
                5 => (0u64..6).prop_map(Prev::Back),
                2 => Just(Prev::AtCommit),
                1 => (1u64..3).prop_map(Prev::Ahead),
            ],
            prop::bool::weighted(0.15),
            prop::collection::vec(arb_entry_pick(), 0..5),
            arb_commit_pick(),
        )
            .prop_map(|((to, k, dterm), prev, prev_mismatch, entries, commit)| Step::Append {
                to,
                from: other(to, k),
                dterm,
                prev,
                prev_mismatch,
                entries,
                commit
            }),
        3 => (to.clone(), 0u64..2, arb_dterm(), arb_commit_pick(), 0u64..40).prop_map(|(to, k, dterm, commit, round)| {
            Step::Heartbeat { to, from: other(to, k), dterm, commit, round }
        }),
        2 => ((to.clone(), 0u64..2, arb_dterm()), any::<bool>(), -2i64..=2, -1i64..=1, prop::bool::weighted(0.2)).prop_map(
            |((to, k, dterm), pre, dindex, dlast_term, transfer)| Step::Vote {
                to,
                from: other(to, k),
                dterm: dterm.abs(),
                pre,
                dindex,
                dlast_term,
                transfer
            }
        ),
        2 => ((to.clone(), 0u64..2, arb_dterm()), 0u64..4, prop::bool::weighted(0.2), 1u64..16, 0u64..16, 0u64..16).prop_map(
            |((to, k, dterm), above_commit, term_mismatch, total_len, offset, len)| Step::Snapshot {
                to,
                from: other(to, k),
                dterm,
                above_commit,
                term_mismatch,
                total_len,
                offset,
                len
            }
        ),
        3 => (to.clone(), 0u64..2, arb_dterm(), arb_answer())
            .prop_map(|(to, k, dterm, body)| Step::Answer { to, from: other(to, k), dterm, body }),
        1 => (to.clone(), 0u64..2, arb_dterm()).prop_map(|(to, k, dterm)| Step::TimeoutNow { to, from: other(to, k), dterm }),
        3 => (to.clone(), 1u64..4).prop_map(|(node, times)| Step::Tick { node, times }),
        4 => (1usize..30).prop_map(Step::Deliver),
        2 => prop::collection::vec(any::<u8>(), 1..6).prop_map(Step::Propose),
        1 => (to, 0u64..4).prop_map(|(node, id)| Step::Read { node, id }),
        3 => arb_message().prop_map(Step::Garbage),
    ]
}

/// `term` moved by `d`, at least 1.
fn near(term: u64, d: i64) -> u64 {
    term.saturating_add_signed(d).max(1)
}

/// Node `id`'s entry at `index`, if it holds one.
fn entry_at(h: &Harness, id: u64, index: u64) -> Option<Entry> {
    let log = h.node(id).log();
    if index < log.first_index() || index > log.last_index() {
        return None;
    }
    let mut out = Vec::new();
    log.entries(index, index + 1, u64::MAX, &mut out).ok()?;
    out.pop()
}

/// The message a step sends (`None` for real traffic).
fn build(h: &Harness, step: &Step) -> Option<Message> {
    let leader_or = |to: u64| h.leader().unwrap_or(to);
    let msg = |from, to, term, body| Some(Message { from, to, term, body });
    match step {
        Step::Append { to, from, dterm, prev, prev_mismatch, entries, commit } => {
            let n = h.node(*to);
            // A conflict needs a term above the receiver's entries.
            let conflicts = entries.iter().any(|e| (3..=5).contains(&e.mode));
            let term = near(n.term(), if conflicts { (*dterm).max(1) } else { *dterm });
            let last = n.last_index();
            let prev = match prev {
                Prev::Back(k) => last.saturating_sub(*k),
                Prev::Ahead(k) => last + k,
                Prev::AtCommit => n.commit_index(),
            };
            let mut prev_term = if prev == 0 { 0 } else { n.log().term(prev).unwrap_or(term) };
            if *prev_mismatch && prev > 0 {
                prev_term = if prev_term > 1 { prev_term - 1 } else { prev_term + 1 };
            }
            let mut running = prev_term.max(1);
            let mut out = Vec::new();
            for (k, e) in entries.iter().enumerate() {
                let index = prev + 1 + k as u64;
                let held = entry_at(h, *to, index);
                // A leader holds the committed entries: it repeats them
                // (unless this entry is a deliberate conflict).
                let committed = index <= n.commit_index();
                let entry = match held {
                    Some(held) if held.term >= running && (e.mode <= 2 || committed && e.mode != 3) => held,
                    _ => {
                        let floor = match held {
                            Some(held) if e.mode == 3 || (4..=5).contains(&e.mode) => held.term + 1,
                            _ => running,
                        };
                        let t = (floor.max(running) + e.bump).min(term).max(running);
                        match e.kind {
                            0..=5 => Entry::normal(t, index, Bytes::from(e.data.clone())),
                            6 => Entry::noop(t, index),
                            _ => {
                                let learners: &[u64] =
                                    if e.data.first().is_some_and(|b| b % 2 == 0) { &[4] } else { &[] };
                                let m = raft_io::Membership::new([1, 2, 3], learners.iter().copied()).unwrap();
                                Entry::config(t, index, &m)
                            }
                        }
                    }
                };
                running = entry.term;
                out.push(entry);
            }
            let matched = prev + out.len() as u64;
            let leader_commit = match commit {
                CommitPick::Zero => 0,
                CommitPick::Own => n.commit_index(),
                CommitPick::Matched => matched,
                CommitPick::Beyond(k) => matched + k,
                CommitPick::Leader => h.leader().map_or(0, |l| h.node(l).commit_index()),
            };
            Some(append(*from, *to, term, (prev, prev_term), leader_commit, out))
        }
        Step::Heartbeat { to, from, dterm, commit, round } => {
            let n = h.node(*to);
            let commit = match commit {
                CommitPick::Zero => 0,
                CommitPick::Own => n.commit_index(),
                CommitPick::Matched => n.last_index(),
                CommitPick::Beyond(k) => n.last_index() + k,
                CommitPick::Leader => h.leader().map_or(0, |l| h.node(l).commit_index()),
            };
            msg(*from, *to, near(n.term(), *dterm), MessageBody::Heartbeat(Heartbeat { commit, round: *round }))
        }
        Step::Vote { to, from, dterm, pre, dindex, dlast_term, transfer } => {
            let n = h.node(*to);
            let term = near(n.term(), *dterm);
            let last_term = n.log().term(n.last_index()).unwrap_or(0);
            let req = VoteRequest {
                last_log_index: n.last_index().saturating_add_signed(*dindex),
                last_log_term: last_term.saturating_add_signed(*dlast_term).min(term),
                transfer: *transfer,
            };
            let body = if *pre { MessageBody::PreVote(req) } else { MessageBody::Vote(req) };
            msg(*from, *to, term, body)
        }
        Step::Snapshot { to, from, dterm, above_commit, term_mismatch, total_len, offset, len } => {
            let n = h.node(*to);
            let term = near(n.term(), *dterm);
            let index = n.commit_index() + above_commit;
            let mut snap_term = n.log().term(index).unwrap_or(term).clamp(1, term);
            if *term_mismatch {
                snap_term = if snap_term > 1 { snap_term - 1 } else { (snap_term + 1).min(term) };
            }
            let offset = (*offset).min(*total_len);
            // `len` 0 completes the snapshot from `offset`.
            let len = if *len == 0 { total_len - offset } else { (*len).min(total_len - offset) };
            let chunk = SnapshotChunk {
                meta: SnapshotMeta { index, term: snap_term, membership: n.membership().clone() },
                total_len: *total_len,
                offset,
                data: Bytes::from(vec![0xAB; len as usize]),
            };
            msg(*from, *to, term, MessageBody::Snapshot(Box::new(chunk)))
        }
        Step::Answer { to, from, dterm, body } => {
            let to = leader_or(*to);
            let from = if *from == to { other(to, 0) } else { *from };
            let n = h.node(to);
            let term = near(n.term(), *dterm);
            let last = n.last_index();
            let body = match body {
                AnswerPick::Append { success, back, past_end, hint_term, hint_back } => {
                    let index = if *past_end { last + 1 } else { last.saturating_sub(*back) };
                    MessageBody::AppendResponse(AppendResponse {
                        success: *success,
                        index,
                        hint_term: if *success { 0 } else { *hint_term },
                        hint_index: if *success { 0 } else { index.saturating_sub(*hint_back) + 1 },
                    })
                }
                AnswerPick::Heartbeat { round } => MessageBody::HeartbeatResponse(HeartbeatResponse { round: *round }),
                AnswerPick::Snapshot { real_index, received, rejected } => {
                    let index = if *real_index { n.log().snapshot_meta().index } else { n.commit_index() + 1 };
                    MessageBody::SnapshotResponse(SnapshotAck { index, received: *received, rejected: *rejected })
                }
                AnswerPick::Read { id } => MessageBody::ReadIndex(raft_io::ReadIndexRequest { id: *id }),
                AnswerPick::Vote { pre: true, granted } => {
                    MessageBody::PreVoteResponse(VoteResponse { granted: *granted })
                }
                AnswerPick::Vote { pre: false, granted } => {
                    MessageBody::VoteResponse(VoteResponse { granted: *granted })
                }
            };
            msg(from, to, term, body)
        }
        Step::TimeoutNow { to, from, dterm } => {
            msg(*from, *to, near(h.node(*to).term(), *dterm), MessageBody::TimeoutNow)
        }
        Step::Garbage(m) => Some(Message { to: m.to.clamp(1, 3), ..m.clone() }),
        Step::Tick { .. } | Step::Deliver(_) | Step::Propose(_) | Step::Read { .. } => None,
    }
}

/// What each node has committed so far, checked after every step: a
/// committed entry is never changed or removed (other than compacted
/// under a snapshot), the commit index never goes down or past the log,
/// and nothing is applied twice or out of order.
struct CommitWatch {
    /// Per node: the highest commit index seen.
    commit: [u64; 3],
    /// Per node: every entry seen committed, by index.
    entries: [BTreeMap<u64, Entry>; 3],
    /// Per node: the highest applied index seen, and how many applies were
    /// checked.
    applied: [(u64, usize); 3],
}

impl CommitWatch {
    fn new(h: &Harness) -> Result<Self, TestCaseError> {
        let mut w = Self { commit: [0; 3], entries: Default::default(), applied: [(0, 0); 3] };
        w.check(h)?;
        Ok(w)
    }

    fn check(&mut self, h: &Harness) -> Result<(), TestCaseError> {
        for id in 1..=3u64 {
            let k = id as usize - 1;
            let node = h.node(id);
            let log = node.log();
            let commit = node.commit_index();
            prop_assert!(commit >= self.commit[k], "node {id}: commit went down from {} to {commit}", self.commit[k]);
            prop_assert!(commit <= node.last_index(), "node {id}: commit {commit} past the log");
            let snapshot = log.snapshot_meta();
            for (&index, e) in &self.entries[k] {
                if index >= log.first_index() {
                    let now = entry_at(h, id, index);
                    prop_assert_eq!(now.as_ref(), Some(e), "node {}: committed entry {} changed", id, index);
                } else if index == snapshot.index {
                    prop_assert_eq!(snapshot.term, e.term, "node {}: committed entry {} changed", id, index);
                }
            }
            for index in (self.commit[k] + 1)..=commit {
                if let Some(e) = entry_at(h, id, index) {
                    self.entries[k].insert(index, e);
                }
            }
            self.commit[k] = commit;
            let (mut last, seen) = self.applied[k];
            let applied = &h.applied[&id];
            for (index, term, data) in &applied[seen..] {
                prop_assert!(*index > last, "node {id}: applied {index} after {last}");
                prop_assert!(*index <= commit, "node {id}: applied {index} past commit {commit}");
                if let Some(e) = self.entries[k].get(index) {
                    prop_assert_eq!((e.term, &e.data), (*term, data), "node {}: applied {} differs", id, index);
                }
                last = *index;
            }
            self.applied[k] = (last, applied.len());
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    /// Sequences of messages — mostly well formed and plausible, built
    /// against the receiver's state (appends contiguous after
    /// `prev_log_index` with terms near the receiver's, heartbeats with
    /// commit indexes, votes with plausible last-log fields, snapshot
    /// chunks, answers to the leader), mixed with real traffic (ticks,
    /// deliveries, proposals, reads) and some garbage — never panic and,
    /// after every step, no node has changed or un-committed an entry it
    /// ever committed, lowered its commit index, committed past the prefix
    /// an AppendEntries matched, or applied anything twice. (Forged
    /// messages are outside Raft's fault model, so agreement between nodes
    /// and liveness are not promised for them; replays are tested below.)
    /// `PROPTEST_CASES` raises the case count.
    #[test]
    fn arbitrary_messages_never_panic_or_uncommit(steps in proptest::collection::vec(arb_step(), 1..80)) {
        let mut h = elected();
        let mut watch = CommitWatch::new(&h)?;
        for step in &steps {
            match (build(&h, step), step) {
                (Some(m), _) => {
                    let to = m.to;
                    let before = h.node(to).commit_index();
                    let append = match &m.body {
                        MessageBody::Append(a) => {
                            Some((a.prev_log_index.saturating_add(a.entries.len() as u64), a.leader_commit))
                        }
                        _ => None,
                    };
                    let result = h.step(to, Event::Message(m));
                    prop_assert!(result.is_ok(), "a message failed the step: {:?}", result.err());
                    if let Some((matched, leader_commit)) = append {
                        let after = h.node(to).commit_index();
                        prop_assert!(
                            after <= before.max(matched.min(leader_commit)),
                            "node {} committed {} past the matched prefix {} (leader commit {}, was {})",
                            to, after, matched, leader_commit, before
                        );
                    }
                }
                (None, Step::Tick { node, times }) => {
                    for _ in 0..*times {
                        h.step(*node, Event::Tick).unwrap();
                    }
                }
                (None, Step::Deliver(n)) => {
                    for _ in 0..*n {
                        if h.deliver_one().is_none() {
                            break;
                        }
                    }
                }
                (None, Step::Propose(data)) => {
                    if let Some(leader) = h.leader() {
                        let _ = h.step(leader, Event::Propose(Bytes::from(data.clone())));
                    }
                }
                (None, Step::Read { node, id }) => {
                    let _ = h.step(*node, Event::Read { id: *id, kind: raft_io::ReadKind::Index });
                }
                (None, _) => {}
            }
            // What the nodes sent waits for a Deliver step; keep it bounded.
            while h.queue.len() > 256 {
                h.queue.pop_front();
            }
            watch.check(&h)?;
        }
    }

    /// Real messages replayed late, duplicated and out of order (what a
    /// buggy but honest network or peer does) change nothing they should
    /// not, and the cluster keeps committing.
    #[test]
    fn replayed_messages_keep_the_cluster_live(picks in proptest::collection::vec((any::<usize>(), 0u64..6), 1..60)) {
        let mut h = elected();
        let mut recorded = Vec::new();
        for round in 0..6 {
            h.propose(1, &format!("r{round}")).unwrap();
            recorded.extend(h.queue.iter().cloned());
            h.deliver_all();
            h.tick_all(1);
            recorded.extend(h.queue.iter().cloned());
        }
        let commits: Vec<u64> = (1..=3).map(|id| h.node(id).commit_index()).collect();
        for (pick, ticks) in picks {
            let m = recorded[pick % recorded.len()].clone();
            h.deliver(m);
            h.deliver_all();
            for id in 1..=3u64 {
                prop_assert!(h.node(id).commit_index() >= commits[id as usize - 1]);
            }
            if ticks == 0 {
                h.tick_all(1);
            }
        }
        h.tick_all(30);
        still_works(&mut h);
    }
}

/// A log holding a term above `MAX_TERM` (a damaged or foreign store) is
/// refused when the node is built on it, never run.
#[test]
fn a_log_with_a_term_past_the_maximum_is_refused() {
    use raft_io::{HardState, MemoryLog};
    for term in [MAX_TERM + 1, u64::MAX] {
        let mut log = MemoryLog::new();
        log.set_hard_state(HardState { term, vote: None, commit: 0 }).unwrap();
        log.sync().unwrap();
        let err = raft_io::RaftNode::with_log(RaftConfig::new(1, [1, 2, 3]), log).unwrap_err();
        assert!(matches!(err, Error::CorruptLog(_)), "{err}");
    }
}

/// A log whose last index is above `MAX_TERM` (2^62, the WAL's bound on
/// indexes) is refused too: an append past it could overflow.
#[test]
fn a_log_with_an_index_past_the_maximum_is_refused() {
    use raft_io::{LogIdentity, Membership, MemoryLog, SnapshotMeta};
    for index in [MAX_TERM + 1, u64::MAX - 1] {
        let mut log = MemoryLog::new();
        log.set_identity(LogIdentity { cluster_id: 0, node_id: 1 }).unwrap();
        let meta = SnapshotMeta { index, term: 1, membership: Membership::new([1], []).unwrap() };
        log.install_snapshot(meta, bytes::Bytes::from_static(b"s")).unwrap();
        log.sync().unwrap();
        let err = raft_io::RaftNode::with_log(RaftConfig::new(1, [1]), log).unwrap_err();
        assert!(matches!(err, Error::CorruptLog(ref why) if why.contains("index")), "{err}");
    }
}
