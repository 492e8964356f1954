//! Replication scenarios, written as protocol traces.

mod common;

use common::{Harness, append, cmd, log_with_terms};
use raft_io::{Action, Entry, Event, Message, MessageBody, Proposal, RaftConfig, RaftLog, RaftNode, Role};

fn elected(n: u64) -> Harness {
    let mut h = Harness::new(n, |c| c);
    h.campaign(1);
    h.tick_all(1);
    h
}

#[test]
fn proposals_replicate_commit_and_apply_in_order() {
    let mut h = elected(3);
    for i in 0..5 {
        h.propose(1, &format!("c{i}")).unwrap();
    }
    h.deliver_all();
    h.tick_all(1);
    for id in 1..=3 {
        let applied: Vec<_> = h.applied[&id].iter().map(|(_, _, c)| c.clone()).collect();
        assert_eq!(applied, (0..5).map(|i| cmd(&format!("c{i}"))).collect::<Vec<_>>(), "node {id}");
        assert_eq!(h.node(id).commit_index(), 6);
        assert_eq!(h.node(id).last_applied(), 6);
    }
}

#[test]
fn a_proposal_is_placed_only_by_the_step_that_accepted_it() {
    let mut h = elected(3);
    h.step(1, Event::Propose(cmd("a"))).unwrap();
    assert_eq!(h.node(1).last_proposal(), Some(Proposal { first: 2, last: 2, term: 1 }));
    // A refused proposal places nothing, and does not keep the last one.
    assert!(h.step(1, Event::Propose(cmd(""))).is_err());
    assert_eq!(h.node(1).last_proposal(), None);
    h.step(1, Event::Propose(cmd("b"))).unwrap();
    assert_eq!(h.node(1).last_proposal(), Some(Proposal { first: 3, last: 3, term: 1 }));
    // Nor does a step of anything else.
    h.step(1, Event::Tick).unwrap();
    assert_eq!(h.node(1).last_proposal(), None);
    // A follower refuses: none.
    assert!(h.step(2, Event::Propose(cmd("c"))).is_err());
    assert_eq!(h.node(2).last_proposal(), None);
}

#[test]
fn a_batch_is_one_append_and_one_sync() {
    let mut h = elected(3);
    let syncs = h.node(1).log().effective_syncs();
    let actions = h.step(1, Event::ProposeBatch((0..64).map(|i| cmd(&i.to_string())).collect())).unwrap();
    assert_eq!(h.node(1).log().effective_syncs(), syncs + 1);
    assert_eq!(h.node(1).last_proposal(), Some(Proposal { first: 2, last: 65, term: 1 }));
    let appends: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message: Message { body: MessageBody::Append(ae), .. }, .. } => Some(ae.entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(appends, vec![64, 64], "one message per follower carrying the whole batch");
}

#[test]
fn pipelining_is_bounded_by_the_inflight_window() {
    let mut h = Harness::new(3, |c| c.max_inflight(3));
    h.campaign(1);
    h.tick_all(1);
    h.clear_actions();
    for i in 0..10 {
        h.propose(1, &format!("{i}")).unwrap();
    }
    // Without acknowledgements the leader sends 3 appends per follower.
    assert_eq!(h.sent("Append"), 6);
    h.deliver_all();
    assert_eq!(h.node(1).commit_index(), 11);
}

#[test]
fn appends_respect_max_entries_and_max_bytes() {
    let mut h = Harness::new(2, |c| c.max_entries_per_message(4).max_message_bytes(200));
    h.campaign(1);
    h.tick_all(1);
    h.isolate(2);
    for i in 0..20 {
        h.propose(1, &format!("{i:040}")).unwrap();
    }
    h.take_queue();
    h.heal();
    h.clear_actions();
    h.tick_all(3);
    let sizes: Vec<(usize, u64)> = h
        .actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { message: Message { body: MessageBody::Append(ae), .. }, .. } => {
                Some((ae.entries.len(), ae.entries.iter().map(Entry::size).sum()))
            }
            _ => None,
        })
        .collect();
    assert!(sizes.iter().any(|(n, _)| *n > 1));
    assert!(sizes.iter().all(|&(n, bytes)| n <= 4 && (bytes <= 200 || n == 1)), "{sizes:?}");
    assert_eq!(h.node(2).commit_index(), 21);
}

#[test]
fn partitioned_old_leader_cannot_commit_and_steps_down() {
    let mut h = elected(5);
    h.partition(&[&[1, 2], &[3, 4, 5]]);
    h.propose(1, "lost").unwrap();
    h.deliver_all();
    assert_eq!(h.node(1).commit_index(), 1, "a minority cannot commit");
    // The majority elects a new leader and commits.
    for _ in 0..40 {
        for id in [3, 4, 5] {
            h.tick(id, 1);
        }
        h.deliver_all();
    }
    let new_leader = h.leader().filter(|&l| l != 1).expect("majority leader");
    h.propose(new_leader, "kept").unwrap();
    h.deliver_all();
    // The old leader notices within an election timeout and steps down.
    h.tick(1, 25);
    h.deliver_all();
    assert_eq!(h.node(1).role(), Role::Follower);
    // After healing, its uncommitted entry is replaced.
    h.heal();
    h.tick_all(10);
    for id in 1..=5 {
        assert!(h.applied[&id].iter().all(|(_, _, c)| c != &cmd("lost")), "node {id}");
        assert_eq!(h.log_terms(id), h.log_terms(new_leader));
    }
    assert!(h.applied[&1].iter().any(|(_, _, c)| c == &cmd("kept")));
}

#[test]
fn a_partitioned_node_rejoining_does_not_disrupt_the_leader() {
    let mut h = elected(3);
    h.isolate(3);
    h.tick_all(200);
    // Pre-vote kept it from inflating its term.
    assert_eq!(h.node(3).term(), 1);
    h.heal();
    h.tick_all(5);
    assert_eq!(h.leader(), Some(1));
    assert_eq!(h.node(1).term(), 1);
    assert_eq!(h.node(3).leader(), Some(1));
}

#[test]
fn divergent_logs_across_terms_are_repaired_a_term_per_round_trip() {
    // Like figure 7 of the Raft paper: the leader (term 8 after election)
    // holds 1 1 1 4 4 5 5 6 6 6; the followers diverge in several ways.
    let voters = [1, 2, 3, 4, 5];
    let logs: [&[u64]; 5] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    let mut h = Harness::empty();
    for (k, terms) in logs.iter().enumerate() {
        let id = k as u64 + 1;
        let config = RaftConfig::new(id, voters).seed(id);
        h.add(id, config, log_with_terms(id, &voters, terms, 7));
    }
    h.campaign(1);
    assert_eq!(h.leader(), Some(1));
    h.clear_actions();
    h.tick_all(6);
    for id in 2..=5 {
        assert_eq!(h.log_terms(id), h.log_terms(1), "node {id}");
    }
    // Node 5 diverged over terms 2 and 3 (8 entries): the hint skips whole
    // terms, so the leader needs only a few rejected probes, not one per
    // entry.
    let rejections_from_5 = h
        .actions
        .iter()
        .filter(|(id, a)| {
            *id == 5 && matches!(a, Action::Send { message: Message { body: MessageBody::AppendResponse(r), .. }, .. } if !r.success)
        })
        .count();
    assert!(rejections_from_5 <= 3, "{rejections_from_5} rejections");
}

#[test]
fn a_follower_10000_entries_behind_catches_up() {
    let mut h = elected(3);
    h.isolate(3);
    for chunk in 0..100 {
        let batch = (0..100).map(|i| cmd(&format!("{chunk}/{i}"))).collect();
        h.step(1, Event::ProposeBatch(batch)).unwrap();
        h.deliver_all();
    }
    assert_eq!(h.node(1).commit_index(), 10_001);
    assert_eq!(h.node(3).last_index(), 1);
    h.heal();
    let mut rounds = 0;
    while h.node(3).last_applied() < 10_001 {
        h.tick_all(1);
        rounds += 1;
        assert!(rounds < 50, "stuck at {}", h.node(3).last_applied());
    }
    assert_eq!(h.applied[&3].len(), 10_000);
    assert_eq!(h.applied[&3], h.applied[&1]);
}

#[test]
fn commit_needs_an_entry_of_the_current_term() {
    // n1 (term 2 log) cannot commit index 2 (term 1) by counting replicas;
    // it commits it only with its own no-op of the new term. One entry per
    // append, so that n3 can acknowledge index 2 without the no-op (index
    // 3); n1's appends to n2, and the no-op to n3, are held back.
    let voters = [1, 2, 3];
    let mut h = Harness::empty();
    for id in 1..=3 {
        let terms: &[u64] = if id == 3 { &[1] } else { &[1, 1] };
        let config = RaftConfig::new(id, voters).seed(id).max_entries_per_message(1);
        h.add(id, config, log_with_terms(id, &voters, terms, 1));
    }
    h.step(1, Event::Campaign).unwrap();
    let carries_noop =
        |m: &Message| matches!(&m.body, MessageBody::Append(a) if a.entries.iter().any(|e| e.index == 3));
    let mut held = Vec::new();
    while let Some(m) = h.queue.pop_front() {
        let to_n2 = m.from == 1 && m.to == 2 && matches!(m.body, MessageBody::Append(_));
        let noop_to_n3 = m.from == 1 && m.to == 3 && carries_noop(&m) && h.node(3).log().term(2).is_some();
        if to_n2 || noop_to_n3 {
            held.push(m);
        } else {
            h.deliver(m);
        }
        assert!(h.node(1).commit_index() < 2, "index 2 of term 1 committed by counting replicas");
    }
    assert!(h.node(1).is_leader());
    assert_eq!(h.node(1).log().term(3), Some(2), "no-op of term 2 at index 3");
    assert_eq!(h.node(3).log().term(2), Some(1), "n3 acknowledged index 2: with n1, a majority holds it");
    assert_eq!(h.node(3).log().term(3), None);
    assert_eq!(h.node(1).commit_index(), 0, "still nothing committed");
    // The no-op reaches a majority: index 2 commits with it.
    h.queue.extend(held);
    h.deliver_all();
    assert_eq!(h.node(1).commit_index(), 3);
}

#[test]
fn heartbeats_carry_a_commit_index_the_follower_holds() {
    let mut h = elected(3);
    h.cut(1, 3);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    assert_eq!(h.node(1).commit_index(), 2);
    // n3 missed the entry; a heartbeat must not make it commit beyond what
    // it is known to hold. (This is the leader's first round of its term,
    // which goes to every follower: PROTOCOL.md §4.3.)
    h.heal();
    h.tick(1, 2);
    let hb = h.queue.iter().find_map(|m| match m.body {
        MessageBody::Heartbeat(hb) if m.to == 3 => Some(hb),
        _ => None,
    });
    assert_eq!(hb.unwrap().commit, 1);
    h.deliver_all();
    assert_eq!(h.node(3).commit_index(), 2, "repaired through the following append");
}

#[test]
fn stale_duplicated_and_reordered_appends_change_nothing_they_should_not() {
    let mut h = elected(3);
    h.propose(1, "a").unwrap();
    let first = h.take_queue();
    h.propose(1, "b").unwrap();
    let second = h.take_queue();
    // Deliver the second before the first, then both again.
    for m in second.iter().chain(first.iter()).chain(second.iter()).chain(first.iter()) {
        if m.to != 1 {
            h.deliver(m.clone());
        }
    }
    h.deliver_all();
    h.tick_all(1);
    let commit = h.node(2).commit_index();
    assert_eq!(commit, 3);
    let last = h.node(2).last_index();
    // Replaying every old append again truncates nothing and never moves
    // commit or match backwards.
    for m in first.iter().chain(second.iter()) {
        if m.to == 2 {
            h.deliver(m.clone());
        }
    }
    h.deliver_all();
    assert_eq!(h.node(2).commit_index(), commit);
    assert_eq!(h.node(2).last_index(), last);
    let status = h.node(1).status();
    assert!(status.peers.iter().all(|p| p.matched == 3), "{status:?}");
    // A stale append from an older term is refused and tells its sender
    // about the newer term.
    let stale = append(3, 2, 0, (0, 0), 0, vec![]);
    let actions = h.step(2, Event::Message(stale)).unwrap();
    assert!(matches!(&actions[..], [Action::Send { message, .. }] if message.term == 1));
    assert_eq!(h.node(2).last_index(), last);
}

#[test]
fn single_node_quick_start() {
    let mut node = RaftNode::new(RaftConfig::single(1)).unwrap();
    while !node.is_leader() {
        node.step(Event::Tick).unwrap().for_each(drop);
    }
    let actions: Vec<Action> = node.step(Event::Propose(cmd("hello"))).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 2, command, .. } if command == &cmd("hello"))));
}

#[test]
fn a_follower_never_commits_past_what_the_leader_verified() {
    // n3 holds a stale entry of term 2 at index 3; the leader of term 3 has
    // a different entry there. An append that only verifies index 2 must not
    // let n3 commit its own index 3, whatever the leader's commit says.
    let voters = [1, 2, 3];
    let mut h = Harness::empty();
    h.add(3, RaftConfig::new(3, voters).seed(3), log_with_terms(3, &voters, &[1, 1, 2], 2));
    let probe = append(1, 3, 3, (2, 1), 3, vec![]);
    h.step(3, Event::Message(probe)).unwrap();
    assert_eq!(h.node(3).commit_index(), 2);
    assert!(h.applied[&3].iter().all(|(i, _, _)| *i <= 2));
    // The leader's entry then replaces the stale one and commits.
    let fix = append(1, 3, 3, (2, 1), 3, vec![Entry::noop(3, 3)]);
    h.step(3, Event::Message(fix)).unwrap();
    assert_eq!(h.node(3).commit_index(), 3);
    assert_eq!(h.node(3).log().term(3), Some(3));
}

#[test]
fn many_messages_in_one_step_share_one_sync() {
    let mut h = elected(3);
    let mut appends = Vec::new();
    for i in 0..3 {
        h.propose(1, &format!("p{i}")).unwrap();
        appends.extend(h.take_queue().into_iter().filter(|m| m.to == 2));
    }
    assert_eq!(appends.len(), 3);
    let syncs = h.node(2).log().effective_syncs();
    let actions = h.step(2, Event::Messages(appends)).unwrap();
    assert_eq!(h.node(2).log().effective_syncs(), syncs + 1, "one sync for the three appends");
    assert_eq!(h.node(2).last_index(), 4);
    let acks = actions
        .iter()
        .filter(|a| matches!(a, Action::Send { message, .. } if message.body.name() == "AppendResponse"))
        .count();
    assert_eq!(acks, 3);
}

/// A stalled follower is probed again on its own: the round that resends
/// to it sends nothing to the followers that are keeping up (a forced,
/// empty append to one of them, with entries of its own still in flight on
/// a reordering network, would arrive ahead of them, be refused, and drop
/// a healthy follower to Probe).
#[test]
fn only_the_stalled_follower_is_sent_to_again() {
    let mut h = Harness::new(3, |c| c);
    h.elect(1);
    h.tick_all(2);
    h.isolate(2);
    h.propose(1, "x").unwrap();
    h.deliver_all();
    let appends_to = |h: &Harness, to: u64| {
        h.sent_by(1).filter(|m| m.to == to && matches!(m.body, raft_io::MessageBody::Append(_))).count()
    };
    let mut resent = false;
    for _ in 0..60 {
        h.clear_actions();
        h.tick(1, 1);
        if appends_to(&h, 2) > 0 {
            resent = true;
            assert_eq!(appends_to(&h, 3), 0, "the resend to the stalled node 2 went to node 3 as well");
        }
        h.deliver_all();
    }
    assert!(resent, "node 2, cut off, was never probed again");
}

/// A follower restarted on an empty log under its old id (a wiped or
/// replaced disk) refuses the index it acknowledged. The leader does not
/// repair it (PROTOCOL.md §5: it may have been counted in quorums it no
/// longer honours) but counts each such refusal, so monitoring sees it.
#[test]
fn a_follower_that_lost_acknowledged_entries_is_reported_not_repaired() {
    let mut h = elected(3);
    for i in 0..5 {
        h.propose(1, &format!("c{i}")).unwrap();
    }
    h.deliver_all();
    h.tick_all(1);
    assert_eq!(h.node(3).last_index(), 6);
    assert_eq!(h.node(1).metrics().follower_regressions, 0);

    h.crash(3);
    h.destroy(3);
    let config = RaftConfig::new(3, vec![1, 2, 3]).seed(3 * 7919);
    h.add(3, config, raft_io::MemoryLog::new());
    for i in 5..8 {
        h.propose(1, &format!("c{i}")).unwrap();
        h.deliver_all();
    }
    h.tick_all(20);

    let regressions = h.node(1).metrics().follower_regressions;
    assert!(regressions >= 1, "the refusal of the acknowledged index went unreported");
    assert_eq!(h.node(1).commit_index(), 9, "the other follower keeps the quorum");
    assert!(h.node(3).last_index() < 6, "the wiped follower is not silently refilled");
    // Honest followers never trip it.
    assert_eq!(h.node(2).metrics().follower_regressions, 0);
    h.tick_all(20);
    assert!(h.node(1).metrics().follower_regressions > regressions, "counted at each probe");
}
