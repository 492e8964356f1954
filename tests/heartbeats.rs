//! Redundant heartbeats are left out (`docs/PROTOCOL.md` §4.3): a follower
//! that, since the last round, acknowledged new entries and was sent newer
//! ones gets no heartbeat; every other follower does, and the whole round
//! goes out while a read waits for it, with lease reads, with an election
//! timeout too short for the rule, or after a gap of more than two
//! intervals since the previous round.

mod common;

use common::Harness;
use raft_io::{Action, Event, MessageBody, NodeId, RaftConfig, ReadKind};

/// A 3-node cluster led by node 1 (heartbeat every 2 ticks), everything
/// delivered and one full round since, so no follower owes the leader
/// anything.
fn settled(configure: impl Fn(RaftConfig) -> RaftConfig) -> Harness {
    let mut h = Harness::new(3, configure);
    h.elect(1);
    h.deliver_all();
    round(&mut h);
    h.deliver_all();
    h.clear_actions();
    h
}

/// Ticks the leader alone through one heartbeat round, delivering nothing;
/// returns the followers it sent a heartbeat to.
fn round(h: &mut Harness) -> Vec<NodeId> {
    h.clear_actions();
    h.tick(1, 2);
    heartbeats_to(h)
}

fn heartbeats_to(h: &Harness) -> Vec<NodeId> {
    h.actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { to, message } if matches!(message.body, MessageBody::Heartbeat(_)) => Some(*to),
            _ => None,
        })
        .collect()
}

/// Load: an entry acknowledged by both followers, then another sent to
/// them (not yet delivered).
fn load(h: &mut Harness) {
    h.propose(1, "a").unwrap();
    h.deliver_all();
    h.propose(1, "b").unwrap();
}

#[test]
fn a_follower_that_acknowledged_and_was_sent_entries_since_the_last_round_gets_no_heartbeat() {
    let mut h = settled(|c| c);
    load(&mut h);
    assert_eq!(round(&mut h), Vec::<NodeId>::new());
    assert_eq!(h.node(1).metrics().heartbeats_skipped, 2);
    // The append on its way carries what the heartbeat would have; the
    // commit index of "b" follows by notification.
    h.deliver_all();
    h.tick(1, 1);
    h.deliver_all();
    let commit = h.node(1).commit_index();
    assert_eq!((h.node(2).commit_index(), h.node(3).commit_index()), (commit, commit));
    // Nothing was sent since: the next round reaches everyone.
    assert_eq!(round(&mut h), vec![2, 3]);
    assert_eq!(h.node(1).metrics().heartbeats_skipped, 2);
}

#[test]
fn a_send_alone_or_an_acknowledgement_alone_leaves_nobody_out() {
    let mut h = settled(|c| c);
    // Sent, not acknowledged: the follower may not have it.
    h.propose(1, "a").unwrap();
    assert_eq!(round(&mut h), vec![2, 3]);
    // Acknowledged, nothing newer sent: the follower heard from the
    // leader before this interval only.
    h.deliver_all();
    assert_eq!(round(&mut h), vec![2, 3]);
    assert_eq!(h.node(1).metrics().heartbeats_skipped, 0);
}

#[test]
fn only_the_follower_that_qualifies_is_left_out() {
    let mut h = settled(|c| c);
    h.cut(1, 3);
    load(&mut h);
    assert_eq!(round(&mut h), vec![3]);
}

#[test]
fn a_waiting_read_takes_the_round_to_every_follower() {
    let mut h = settled(|c| c);
    load(&mut h);
    h.clear_actions();
    // The read starts a round at once: it reaches both followers although
    // both qualify to be left out.
    h.step(1, Event::Read { id: 7, kind: ReadKind::Index }).unwrap();
    assert_eq!(heartbeats_to(&h), vec![2, 3]);
    // While it is unconfirmed the periodic round goes to everyone too.
    assert_eq!(round(&mut h), vec![2, 3]);
    h.deliver_all();
    assert!(h.actions.iter().any(|(n, a)| *n == 1 && matches!(a, Action::ReadReady { id: 7, .. })));
}

#[test]
fn lease_reads_keep_every_round() {
    let mut h = settled(|c| c.lease_reads(true).check_quorum(true));
    load(&mut h);
    assert_eq!(round(&mut h), vec![2, 3]);
}

#[test]
fn the_election_timeout_must_exceed_three_heartbeat_intervals() {
    let mut h = settled(|c| c.election_timeout(6, 12).heartbeat_interval(2));
    load(&mut h);
    assert_eq!(round(&mut h), vec![2, 3], "6 ticks is not more than 3 intervals of 2");
    let mut h = settled(|c| c.election_timeout(7, 14).heartbeat_interval(2));
    load(&mut h);
    assert_eq!(round(&mut h), Vec::<NodeId>::new());
}

#[test]
fn a_round_after_a_long_gap_goes_to_every_follower() {
    // A leader stalled (or woken from quiescence) is stepped the time that
    // passed at once: "since the previous round" is then too long ago.
    let mut h = settled(|c| c);
    load(&mut h);
    h.clear_actions();
    h.step(1, Event::Ticks(4)).unwrap();
    assert_eq!(heartbeats_to(&h), vec![2, 3], "5 ticks after the last round, more than 2 intervals of 2");
    // A slow turn's few ticks keep the rule.
    let mut h = settled(|c| c);
    load(&mut h);
    h.clear_actions();
    h.step(1, Event::Ticks(3)).unwrap();
    assert_eq!(heartbeats_to(&h), Vec::<NodeId>::new(), "4 ticks after the last round");
}

#[test]
fn under_steady_load_the_followers_hear_appends_alone_and_never_campaign() {
    let mut h = settled(|c| c.check_quorum(true).pre_vote(true));
    h.clear_actions();
    for i in 0..300 {
        h.propose(1, &format!("w{i}")).unwrap();
        h.tick_all(1);
    }
    assert_eq!(h.leader(), Some(1));
    assert_eq!(h.node(1).term(), h.node(2).term());
    assert_eq!(h.sent("PreVote") + h.sent("Vote"), 0);
    // 150 rounds: the first finds nothing acknowledged yet and goes to
    // both followers; every later one is redundant for both.
    assert_eq!(h.sent("Heartbeat"), 2, "{:?}", h.node(1).metrics());
    assert_eq!(h.node(1).metrics().heartbeats_skipped, 2 * 149);
    h.tick_all(1);
    let commit = h.node(1).commit_index();
    assert!(commit >= 300);
    assert_eq!((h.node(2).commit_index(), h.node(3).commit_index()), (commit, commit));
}

/// A follower whose appends were all lost, with the leader's window to it
/// full, is repaired at the first heartbeat answer: the answer frees a slot
/// and the leader sends an append at once (which the follower refuses over
/// the gap, and the leader backs up), not only after the rounds it takes to
/// fall back to probing.
#[test]
fn a_heartbeat_answer_reopens_a_full_window_whose_appends_were_lost() {
    let mut h = Harness::new(3, |c| c.max_inflight(2));
    h.elect(1);
    h.tick_all(1);
    // Two proposals; both appends to node 2 are lost, so its window is full.
    for s in ["a", "b"] {
        h.propose(1, s).unwrap();
        h.deliver_holding(|m| m.to == 2 && matches!(m.body, MessageBody::Append(_)));
    }
    assert_eq!(h.node(1).commit_index(), h.node(1).last_index(), "committed with node 3");
    assert!(h.node(2).last_index() < h.node(1).last_index());
    // The next heartbeat round, and node 2's answer to it.
    let mut answered = None;
    for _ in 0..10 {
        h.tick(1, 1);
        while let Some(m) = h.queue.pop_front() {
            if m.from == 2 && matches!(m.body, MessageBody::HeartbeatResponse(_)) {
                answered = Some(h.step(1, Event::Message(m)).unwrap());
                break;
            }
            h.deliver(m);
        }
        if answered.is_some() {
            break;
        }
    }
    let actions = answered.expect("node 2 answered a heartbeat round");
    assert!(
        actions.iter().any(|a| matches!(a, Action::Send { message, .. }
            if message.to == 2 && matches!(message.body, MessageBody::Append(_)))),
        "no append to node 2 at its first answer: {actions:?}"
    );
    h.deliver_all();
    assert_eq!(h.node(2).last_index(), h.node(1).last_index(), "repaired");
}
