//! Bad input never panics and never loses a committed entry: each case is
//! ignored or refused with a typed error, and the node keeps working.

mod common;

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

    // A faulty peer drags node 3 to the maximum term: it follows, and its
    // elections stop there.
    let hb = MessageBody::Heartbeat(Heartbeat { commit: 0, round: 1 });
    h.step(3, Event::Message(Message { from: 2, to: 3, term: MAX_TERM, body: hb })).unwrap();
    assert_eq!(h.node(3).term(), MAX_TERM);
    for _ in 0..1000 {
        h.step(3, Event::Tick).unwrap();
    }
    assert_eq!(h.node(3).term(), MAX_TERM);
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
    assert!(matches!(h3.propose(2, "x"), Err(Error::NotLeader { leader: Some(1) })));
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    /// Any sequence of arbitrary (even forged) messages, to any node in
    /// any state, never panics and never changes or un-commits a committed
    /// entry. (Forged acknowledgements are outside Raft's fault model, so
    /// liveness is not promised for them; replays are tested below.)
    #[test]
    fn arbitrary_messages_never_panic_or_uncommit(msgs in proptest::collection::vec(arb_message(), 1..40)) {
        let mut h = elected();
        let committed: Vec<(u64, Vec<u64>)> = (1..=3).map(|id| (h.node(id).commit_index(), h.log_terms(id))).collect();
        for m in msgs {
            let to = m.to.clamp(1, 3);
            let _ = h.step(to, Event::Message(Message { to, ..m }));
            h.take_queue();
            for id in 1..=3u64 {
                let (commit, terms) = &committed[id as usize - 1];
                let node = h.node(id);
                prop_assert!(node.commit_index() >= *commit);
                for i in node.log().first_index()..=*commit {
                    prop_assert_eq!(node.log().term(i), Some(terms[i as usize - 1]), "committed entry {} changed", i);
                }
            }
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
