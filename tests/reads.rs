//! Linearizable reads as protocol traces: ReadIndex batching and
//! confirmation, lease reads and their expiry, follower reads, and every
//! way a read can be refused or fail.

mod common;

use common::Harness;
use raft_io::{Action, Error, Event, HeartbeatResponse, MembershipChange, Message, MessageBody, ReadFailure, ReadKind};

fn elected(configure: impl Fn(raft_io::RaftConfig) -> raft_io::RaftConfig) -> Harness {
    let mut h = Harness::new(3, configure);
    h.elect(1);
    h.tick_all(1);
    h.clear_actions();
    h
}

fn read(h: &mut Harness, node: u64, id: u64, kind: ReadKind) -> Result<Vec<Action>, Error> {
    h.step(node, Event::Read { id, kind })
}

/// Asks node `node` for lease read `id`; whether it was served at once.
fn lease_read_served(h: &mut Harness, node: u64, id: u64) -> bool {
    read(h, node, id, ReadKind::Lease).is_ok()
        && outcomes(h, node).iter().any(|a| matches!(a, Action::ReadReady { id: r, .. } if *r == id))
}

fn outcomes(h: &Harness, node: u64) -> Vec<Action> {
    h.actions
        .iter()
        .filter(|(n, a)| *n == node && matches!(a, Action::ReadReady { .. } | Action::ReadFailed { .. }))
        .map(|(_, a)| a.clone())
        .collect()
}

#[test]
fn reads_arriving_together_share_one_heartbeat_round() {
    let mut h = elected(|c| c);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.clear_actions();
    // The first read starts a round: one heartbeat per follower, no other
    // message.
    read(&mut h, 1, 1, ReadKind::Index).unwrap();
    assert_eq!(h.sent("Heartbeat"), 2);
    // More reads while that round is in flight start nothing new...
    for id in 2..=10 {
        read(&mut h, 1, id, ReadKind::Index).unwrap();
    }
    assert_eq!(h.sent("Heartbeat"), 2, "no message per read");
    assert_eq!(h.actions.iter().filter(|(_, a)| matches!(a, Action::Send { .. })).count(), 2);
    // ... and are confirmed by the next round, which starts when the first
    // is answered: two rounds for ten reads.
    h.deliver_all();
    assert_eq!(h.sent("Heartbeat"), 4);
    let ready: Vec<_> = outcomes(&h, 1);
    assert_eq!(ready.len(), 10);
    assert!(ready.iter().all(|a| matches!(a, Action::ReadReady { index: 2, .. })), "{ready:?}");
}

#[test]
fn a_read_is_released_only_after_the_state_machine_applied_its_index() {
    let mut h = elected(|c| c);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    let actions = read(&mut h, 1, 7, ReadKind::Index).unwrap();
    assert!(!actions.iter().any(|a| matches!(a, Action::ReadReady { .. })), "needs a quorum round first");
    h.deliver_all();
    let last_apply = h.actions.iter().rposition(|(n, a)| *n == 1 && matches!(a, Action::Apply { index: 2, .. }));
    let ready = h.actions.iter().position(|(n, a)| *n == 1 && matches!(a, Action::ReadReady { id: 7, index: 2 }));
    assert!(last_apply < ready, "apply of the read index comes first");
}

#[test]
fn a_new_leader_holds_reads_until_its_term_has_a_commit() {
    let mut h = Harness::new(3, |c| c);
    h.step(1, Event::Campaign).unwrap();
    // Deliver the votes, but hold back the no-op's replication.
    while let Some(m) = h.queue.pop_front() {
        if m.body.name() == "Append" {
            h.queue.push_front(m);
            break;
        }
        h.deliver(m);
    }
    assert!(h.node(1).is_leader());
    assert!(h.node(1).commit_index() < h.node(1).last_index());
    read(&mut h, 1, 1, ReadKind::Index).unwrap();
    assert_eq!(h.sent("Heartbeat"), 0, "no round before the term's first commit");
    h.deliver_all();
    h.tick_all(2);
    let ready = outcomes(&h, 1);
    assert_eq!(ready, vec![Action::ReadReady { id: 1, index: 1 }], "read index is the no-op, not older");
}

#[test]
fn an_answer_from_an_earlier_term_never_confirms_a_round() {
    let mut h = elected(|c| c.check_quorum(false));
    // Node 1 leads term 1; record a heartbeat answer of term 1.
    read(&mut h, 1, 1, ReadKind::Index).unwrap();
    let old_answers: Vec<Message> = {
        let hbs: Vec<Message> = h.take_queue();
        hbs.iter()
            .map(|m| Message {
                from: m.to,
                to: 1,
                term: m.term,
                body: MessageBody::HeartbeatResponse(HeartbeatResponse { round: 1_000 }),
            })
            .collect()
    };
    h.tick_all(1);
    // Node 1 loses leadership and wins again in a later term.
    h.step(2, Event::Campaign).unwrap();
    h.deliver_all();
    h.step(2, Event::TransferLeadership(1)).unwrap();
    h.deliver_all();
    assert!(h.node(1).is_leader() && h.node(1).term() >= 3);
    h.cut(1, 2);
    h.cut(1, 3);
    h.clear_actions();
    read(&mut h, 1, 2, ReadKind::Index).unwrap();
    // Replay the earlier term's answers, even with a huge round number.
    for m in old_answers {
        h.step(1, Event::Message(m)).unwrap();
    }
    assert!(outcomes(&h, 1).is_empty(), "stale answers confirmed nothing");
}

#[test]
fn lease_reads_skip_the_round_trip_and_stop_before_a_new_leader_can_exist() {
    let mut h = elected(|c| c.lease_reads(true).lease_drift_ticks(2));
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(2);
    h.clear_actions();
    let actions = read(&mut h, 1, 1, ReadKind::Lease).unwrap();
    assert!(actions.contains(&Action::ReadReady { id: 1, index: 2 }), "served at once: {actions:?}");
    assert_eq!(h.sent("Heartbeat"), 0);
    assert_eq!(h.node(1).metrics().lease_reads, 1, "counted as answered from the lease");
    // A ReadIndex read is not, nor is a lease read the lease cannot answer.
    read(&mut h, 1, 2, ReadKind::Index).unwrap();
    assert_eq!(h.node(1).metrics().lease_reads, 1);
    h.clear_actions();
    // Cut the leader off. Its lease lasts at most election_timeout_min -
    // drift ticks past the last answered round; the followers cannot elect
    // anyone before election_timeout_min ticks without hearing from it.
    h.isolate(1);
    let mut lease_ticks = 0;
    loop {
        h.tick(1, 1);
        h.take_queue();
        lease_ticks += 1;
        h.clear_actions();
        let id = 100 + lease_ticks;
        // Either the lease is over (the read waits for a round that cannot
        // complete) or check-quorum already deposed the leader.
        if !lease_read_served(&mut h, 1, id) {
            break;
        }
        assert!(lease_ticks < 10, "lease outlived the election timeout");
    }
    assert!(lease_ticks <= 8, "lease lasted {lease_ticks} ticks with timeout 10 and drift 2");
    // A held read (fallen back to ReadIndex) cannot confirm while isolated:
    // it fails instead of answering stale.
    h.tick(1, 60);
    assert!(!h.actions.iter().any(|(_, a)| matches!(a, Action::ReadReady { .. })));
}

/// Whether node `from`'s message is an append (the ones a test holds back).
fn append_of(from: u64) -> impl Fn(&Message) -> bool {
    move |m| m.from == from && m.body.name() == "Append"
}

/// A new leader whose followers answer its heartbeat rounds holds a lease,
/// but not yet an entry of its term committed: a lease read then would
/// take a commit index that may miss what the previous leader committed.
/// It waits for the term's first commit, as a ReadIndex read does.
#[test]
fn a_new_leader_serves_no_lease_read_before_its_term_has_a_commit() {
    let mut h = elected(|c| c.lease_reads(true).lease_drift_ticks(2));
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(2);
    // Leadership moves to node 2 (term 2); every append it sends is held
    // back, so its no-op (index 3) does not commit.
    h.step(1, Event::TransferLeadership(2)).unwrap();
    let mut held = h.deliver_holding(append_of(2));
    assert!(h.node(2).is_leader() && h.node(2).term() == 2);
    // Several heartbeat rounds, answered by both followers: the lease is
    // held, the no-op is not committed.
    for _ in 0..6 {
        h.tick(2, 1);
        held.extend(h.deliver_holding(append_of(2)));
    }
    assert_eq!((h.node(2).commit_index(), h.node(2).last_index()), (2, 3));
    h.clear_actions();
    read(&mut h, 2, 1, ReadKind::Lease).unwrap();
    assert!(outcomes(&h, 2).is_empty(), "served before the term's first commit: {:?}", outcomes(&h, 2));
    // Once the no-op commits, the read is answered at it.
    for m in held {
        h.deliver(m);
    }
    h.deliver_all();
    h.tick_all(2);
    assert_eq!(outcomes(&h, 2), vec![Action::ReadReady { id: 1, index: 3 }]);
}

/// A lease runs from when the round that renewed it was sent, not from
/// when its answers came back: answers that were slow in coming must not
/// stretch it past the time a new leader may be elected.
#[test]
fn a_lease_runs_from_when_its_round_was_sent_not_from_its_answers() {
    let mut h = elected(|c| c.lease_reads(true).lease_drift_ticks(2));
    h.propose(1, "x").unwrap();
    h.deliver_all();
    // Tick the leader alone until it sends a heartbeat round (not a commit
    // notice, which nobody answers); hold it.
    let mut round = Vec::new();
    while round.is_empty() {
        h.tick(1, 1);
        round = h
            .take_queue()
            .into_iter()
            .filter(|m| matches!(m.body, MessageBody::Heartbeat(ref hb) if hb.round > 0))
            .collect();
    }
    // Its answers come back four ticks later (every later round is lost).
    const DELAY: u64 = 4;
    for _ in 0..DELAY {
        h.tick(1, 1);
        h.take_queue();
    }
    for m in round {
        h.deliver(m);
    }
    h.deliver_all();
    // Then the leader is cut off: its lease lasts at most
    // election_timeout_min - drift = 8 ticks from the round's sending,
    // DELAY of which have passed.
    h.isolate(1);
    h.clear_actions();
    let mut served = 0;
    for id in 1..=20 {
        h.take_queue();
        if !lease_read_served(&mut h, 1, id) {
            break;
        }
        served += 1;
        h.tick(1, 1);
    }
    assert!(served > 0, "the lease held when the leader was cut off");
    assert!(served <= 8 - DELAY, "lease reads served for {served} ticks after answers {DELAY} ticks late");
}

#[test]
fn lease_reads_need_to_be_enabled() {
    let mut h = elected(|c| c);
    assert!(matches!(read(&mut h, 1, 1, ReadKind::Lease), Err(Error::LeaseReadsDisabled)));
    // And enabling them without check-quorum is an invalid configuration.
    let bad = raft_io::RaftConfig::new(1, [1]).lease_reads(true).check_quorum(false);
    assert!(matches!(bad.validate(), Err(Error::InvalidConfig { field: "lease_reads", .. })));
}

#[test]
fn a_follower_read_is_forwarded_and_released_after_the_follower_applies() {
    let mut h = elected(|c| c);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.clear_actions();
    read(&mut h, 2, 5, ReadKind::Index).unwrap();
    assert_eq!(h.sent("ReadIndex"), 1);
    h.deliver_all();
    h.tick_all(1);
    let ready = outcomes(&h, 2);
    assert_eq!(ready, vec![Action::ReadReady { id: 5, index: 2 }]);
    assert!(h.node(2).last_applied() >= 2);
}

#[test]
fn a_follower_read_fails_when_the_leader_changes_or_the_follower_is_cut_off() {
    let mut h = elected(|c| c.read_timeout_ticks(5));
    // Leader change before the answer: fails with LeadershipLost.
    read(&mut h, 2, 1, ReadKind::Index).unwrap();
    h.take_queue();
    h.step(1, Event::TransferLeadership(3)).unwrap();
    h.deliver_all();
    assert_eq!(h.leader(), Some(3));
    assert!(outcomes(&h, 2).contains(&Action::ReadFailed { id: 1, reason: ReadFailure::LeadershipLost }));
    // Cut off: fails with Timeout.
    h.clear_actions();
    h.isolate(2);
    read(&mut h, 2, 2, ReadKind::Index).unwrap();
    h.tick(2, 6);
    assert!(outcomes(&h, 2).contains(&Action::ReadFailed { id: 2, reason: ReadFailure::Timeout }));
}

#[test]
fn reads_are_refused_with_a_reason() {
    let mut h = elected(|c| c);
    read(&mut h, 1, 9, ReadKind::Index).unwrap();
    assert!(matches!(read(&mut h, 1, 9, ReadKind::Index), Err(Error::DuplicateRead(9))));
    // A learner cannot serve linearizable reads.
    h.add(4, raft_io::RaftConfig::joining(4).seed(4), raft_io::MemoryLog::new());
    h.deliver_all();
    h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(4))).unwrap();
    h.tick_all(3);
    assert!(matches!(read(&mut h, 4, 1, ReadKind::Index), Err(Error::Learner)));
    // A removed node is not a member.
    h.step(1, Event::ChangeMembership(MembershipChange::Remove(3))).unwrap();
    h.tick_all(3);
    assert!(!h.node(1).membership().contains(3));
    h.step(1, Event::ChangeMembership(MembershipChange::Remove(4))).unwrap();
    h.tick_all(3);
    assert!(matches!(read(&mut h, 4, 2, ReadKind::Index), Err(Error::NotMember(4)) | Err(Error::Learner)));
    // A candidate knows no leader to ask.
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    h.step(2, Event::Campaign).unwrap();
    assert!(matches!(read(&mut h, 2, 1, ReadKind::Index), Err(Error::NotLeader { leader: None, .. })));
}

#[test]
fn leadership_loss_fails_pending_reads_exactly_once() {
    let mut h = elected(|c| c.read_timeout_ticks(30));
    h.isolate(1);
    for id in 1..=3 {
        read(&mut h, 1, id, ReadKind::Index).unwrap();
    }
    // Check-quorum deposes it; every pending read fails once, with a reason.
    h.tick(1, 40);
    let ends = outcomes(&h, 1);
    for id in 1..=3 {
        let n = ends
            .iter()
            .filter(|a| matches!(a, Action::ReadFailed { id: i, .. } | Action::ReadReady { id: i, .. } if *i == id))
            .count();
        assert_eq!(n, 1, "read {id}: {ends:?}");
    }
    assert!(ends.iter().all(|a| matches!(a, Action::ReadFailed { reason: ReadFailure::LeadershipLost, .. })));
}

/// A follower restarted twice with nothing durable changed in between
/// draws other wire ids in each run (the log's instance is in their salt):
/// a late answer to a read forwarded before the restart never releases a
/// read forwarded after it — here one asked after a write committed that
/// the old answer's index misses.
#[test]
fn a_late_answer_from_before_a_restart_never_releases_a_newer_forwarded_read() {
    let is_append_to_2 = |m: &Message| m.to == 2 && matches!(m.body, MessageBody::Append(_) | MessageBody::Snapshot(_));
    let heartbeat_to_2 = |h: &mut Harness| {
        for _ in 0..3 {
            h.step(1, Event::Tick).unwrap();
        }
        let _ = h.deliver_holding(|m| is_append_to_2(m));
    };
    let wire = |h: &Harness| {
        h.queue.iter().find_map(|m| match m.body {
            MessageBody::ReadIndex(r) => Some(r.id),
            _ => None,
        })
    };
    let mut h = elected(|c| c);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(4);
    h.crash(2);
    h.restart(2);
    heartbeat_to_2(&mut h);
    // Read A, forwarded and confirmed; its answer is held back.
    read(&mut h, 2, 1, ReadKind::Index).unwrap();
    let wire_a = wire(&h).unwrap();
    let held = h.deliver_holding(|m| matches!(m.body, MessageBody::ReadIndexResponse(_)) || is_append_to_2(m));
    let late = held.into_iter().find(|m| matches!(m.body, MessageBody::ReadIndexResponse(_))).unwrap();
    // Node 2 restarts with the same durable state; y commits without it.
    h.crash(2);
    h.restart(2);
    h.propose(1, "y").unwrap();
    let _ = h.deliver_holding(|m| is_append_to_2(m));
    let y = h.node(1).last_index();
    assert!(h.node(1).commit_index() >= y);
    heartbeat_to_2(&mut h);
    h.clear_actions();
    // Read B, asked after y committed; then the late answer to read A.
    read(&mut h, 2, 2, ReadKind::Index).unwrap();
    assert_ne!(wire(&h), Some(wire_a), "the same wire id in two runs");
    h.deliver(late);
    let stale: Vec<_> =
        outcomes(&h, 2).into_iter().filter(|a| matches!(a, Action::ReadReady { index, .. } if *index < y)).collect();
    assert!(stale.is_empty(), "read B, asked after {y} committed, served: {stale:?}");
}

/// A follower restarted on a log whose `instance()` is the default 0 cannot
/// tell its wire ids from the last run's: it forwards no read (the caller
/// asks the leader), though it still answers who leads.
#[test]
fn a_follower_on_a_log_that_cannot_tell_runs_apart_forwards_no_read() {
    use common::failing_log::FailingLog;
    use raft_io::{RaftConfig, RaftNode};
    let config = || RaftConfig::new(2, [1, 2, 3]);
    let fresh = RaftNode::with_log(config(), FailingLog::new(usize::MAX, u64::MAX)).unwrap();
    let mut node = RaftNode::with_log(config(), fresh.into_log()).unwrap();
    let heartbeat = Message { from: 1, to: 2, term: 1, body: MessageBody::Heartbeat(raft_io::Heartbeat::default()) };
    node.step(Event::Message(heartbeat)).unwrap();
    assert_eq!(node.leader(), Some(1));
    match node.step(Event::Read { id: 1, kind: ReadKind::Index }) {
        Err(Error::NotLeader { leader: Some(1), .. }) => {}
        other => panic!("forwarded: {:?}", other.map(|a| a.collect::<Vec<_>>())),
    }
}

/// A round in flight when a configuration change leaves the leader the
/// only voter is answered by a quorum at once (the leader alone): its
/// reads, and reads that joined later rounds meanwhile, are released —
/// not left to time out waiting for an answer from a voter that is gone.
/// Here the removed voter had crashed, so no answer would ever come.
#[test]
fn reads_in_flight_are_released_when_a_change_leaves_the_leader_the_only_voter() {
    let mut h = Harness::new(2, |c| c.read_timeout_ticks(50));
    h.elect(1);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.crash(2);
    h.clear_actions();
    // Read 1 rides a round that node 2 will never answer.
    read(&mut h, 1, 1, ReadKind::Index).unwrap();
    // Node 2 is removed; the configuration {1} commits with the leader alone.
    h.step(1, Event::ChangeMembership(MembershipChange::Remove(2))).unwrap();
    assert_eq!(h.node(1).membership().voters(), &[1]);
    assert!(h.node(1).commit_index() == h.node(1).last_index());
    // Reads keep coming, one every few ticks, each while another is pending.
    for id in 2..=20 {
        read(&mut h, 1, id, ReadKind::Index).unwrap();
        h.tick(1, 5);
    }
    h.tick(1, 60);
    let ends = outcomes(&h, 1);
    let failed: Vec<_> = ends.iter().filter(|a| matches!(a, Action::ReadFailed { .. })).collect();
    assert!(failed.is_empty(), "the only voter failed reads: {failed:?}");
    assert_eq!(ends.len(), 20, "{ends:?}");
}

/// A forwarded read is answered only in the term it was forwarded in, so
/// once the follower's term has moved on it can never be answered: it
/// fails then, with `LeadershipLost`, even when the new term's leader is
/// the same node — here node 1, which never got the read (its request was
/// lost), restarted and won the next term while node 2 heard nothing of
/// the election. It does not wait out `read_timeout_ticks`.
#[test]
fn a_forwarded_read_fails_when_its_leader_leads_a_later_term() {
    let mut h = elected(|c| c.check_quorum(false).read_timeout_ticks(50));
    read(&mut h, 2, 1, ReadKind::Index).unwrap();
    h.take_queue();
    let term = h.node(2).term();
    // Node 1 restarts and wins the next term with node 3's vote alone.
    h.crash(1);
    h.restart(1);
    h.cut(1, 2);
    h.campaign(1);
    h.tick(1, 1);
    h.deliver_all();
    assert!(h.node(1).is_leader() && h.node(1).term() > term);
    // Node 2 hears from it in the new term: same leader, later term.
    h.heal();
    h.tick(1, 2);
    h.deliver_all();
    assert_eq!((h.node(2).leader(), h.node(2).term()), (Some(1), h.node(1).term()));
    h.tick_all(2);
    assert_eq!(outcomes(&h, 2), vec![Action::ReadFailed { id: 1, reason: ReadFailure::LeadershipLost }]);
}

/// A heartbeat answer naming a round the leader never sent (an honest
/// follower cannot send one) confirms nothing: it used to count that
/// follower as having answered every later round as well, so a read could
/// be confirmed with that follower cut off.
#[test]
fn an_answer_to_a_round_never_sent_confirms_no_later_round() {
    let mut h = elected(|c| c.check_quorum(false));
    let term = h.node(1).term();
    let forged = |from: u64| Message {
        from,
        to: 1,
        term,
        body: MessageBody::HeartbeatResponse(HeartbeatResponse { round: 1_000_000 }),
    };
    let dropped = h.node(1).status().dropped_messages;
    h.step(1, Event::Message(forged(2))).unwrap();
    assert_eq!(h.node(1).status().dropped_messages, dropped + 1, "dropped as invalid");
    // Followers 2 and 3 cut off: no round can be answered.
    h.cut(1, 2);
    h.cut(1, 3);
    h.clear_actions();
    read(&mut h, 1, 7, ReadKind::Index).unwrap();
    h.deliver_all();
    h.tick_all(5);
    h.deliver_all();
    assert!(
        !outcomes(&h, 1).iter().any(|a| matches!(a, Action::ReadReady { id: 7, .. })),
        "a read confirmed by a forged round: {:?}",
        outcomes(&h, 1)
    );
}
