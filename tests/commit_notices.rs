//! Commit notices (`docs/PROTOCOL.md` §4.4): a leader tells a follower that
//! holds everything it was sent about a newer commit index on its next tick,
//! with a heartbeat of round 0 carrying the commit index capped at what the
//! follower holds. The follower takes the index and does not answer; a
//! round-0 answer (from a follower of an earlier version, which answered
//! every heartbeat) changes nothing at the leader.

mod common;

use common::Harness;
use raft_io::{Action, Event, Heartbeat, HeartbeatResponse, Message, MessageBody, NodeId};

/// A 3-node cluster led by node 1 whose last entry ("a") committed at the
/// leader, acknowledged by both followers, who do not know it committed.
fn committed_unannounced() -> Harness {
    let mut h = Harness::new(3, |c| c);
    h.elect(1);
    h.deliver_all();
    h.tick_all(4);
    h.propose(1, "a").unwrap();
    h.deliver_all();
    let commit = h.node(1).commit_index();
    assert_eq!(commit, h.node(1).last_index());
    assert!(h.node(2).commit_index() < commit && h.node(3).commit_index() < commit);
    h.clear_actions();
    h
}

/// The messages node `from` has queued, in order.
fn queued(h: &mut Harness, from: NodeId) -> Vec<Message> {
    let all = h.take_queue();
    all.into_iter().filter(|m| m.from == from).collect()
}

#[test]
fn a_leader_tick_sends_each_follower_one_notice_with_the_commit_index() {
    let mut h = committed_unannounced();
    let commit = h.node(1).commit_index();
    h.tick(1, 1);
    let sent = queued(&mut h, 1);
    let notices: Vec<(NodeId, Heartbeat)> = sent
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::Heartbeat(hb) if hb.is_commit_notice() => Some((m.to, hb)),
            _ => None,
        })
        .collect();
    assert_eq!(notices, vec![(2, Heartbeat::commit_notice(commit)), (3, Heartbeat::commit_notice(commit))]);
    assert!(
        !sent.iter().any(|m| matches!(&m.body, MessageBody::Append(a) if a.entries.is_empty())),
        "no empty append carries the commit index any more: {sent:?}"
    );
    // A second tick has nothing new to announce.
    h.tick(1, 1);
    assert!(!queued(&mut h, 1).iter().any(|m| matches!(m.body, MessageBody::Heartbeat(hb) if hb.is_commit_notice())));
}

#[test]
fn a_follower_takes_a_notice_and_does_not_answer() {
    let mut h = committed_unannounced();
    let commit = h.node(1).commit_index();
    h.tick(1, 1);
    for m in queued(&mut h, 1) {
        if matches!(m.body, MessageBody::Heartbeat(hb) if hb.is_commit_notice()) {
            let to = m.to;
            let actions = h.step(to, Event::Message(m)).unwrap();
            assert_eq!(h.node(to).commit_index(), commit);
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Send { .. })),
                "node {to} answered a commit notice: {actions:?}"
            );
        }
    }
    assert_eq!(h.node(2).last_applied(), commit);
    assert_eq!(h.node(3).last_applied(), commit);
}

#[test]
fn a_follower_still_answers_a_heartbeat_round() {
    let mut h = committed_unannounced();
    let term = h.node(1).term();
    let hb = Heartbeat { commit: 0, round: 7 };
    let actions =
        h.step(2, Event::Message(Message { from: 1, to: 2, term, body: MessageBody::Heartbeat(hb) })).unwrap();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send {
            message: Message { body: MessageBody::HeartbeatResponse(HeartbeatResponse { round: 7 }), .. },
            ..
        }
    )));
}

#[test]
fn a_round_zero_answer_changes_nothing_at_the_leader() {
    let mut h = committed_unannounced();
    // Follower 2 has an append in flight that is lost, and a heartbeat
    // round passes without its answer: the answer to the next round would
    // probe it again at once. An answer of round 0 is no answer to a round.
    h.propose(1, "b").unwrap();
    h.take_queue();
    h.tick(1, 3);
    let round = h
        .take_queue()
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::Heartbeat(hb) if m.to == 2 && !hb.is_commit_notice() => Some(hb.round),
            _ => None,
        })
        .max()
        .expect("a heartbeat round to node 2");
    h.clear_actions();
    let term = h.node(1).term();
    let before = h.node(1).metrics();
    let late =
        |round| Message { from: 2, to: 1, term, body: MessageBody::HeartbeatResponse(HeartbeatResponse { round }) };
    let actions = h.step(1, Event::Message(late(0))).unwrap();
    assert!(actions.is_empty(), "{actions:?}");
    assert!(h.node(1).is_leader());
    assert_eq!(h.node(1).metrics().dropped_messages, before.dropped_messages);
    // The same answer to a real round does probe: the state above is one
    // where an answer changes something.
    let actions = h.step(1, Event::Message(late(round))).unwrap();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Send { to: 2, message } if matches!(message.body, MessageBody::Append(_)))),
        "{actions:?}"
    );
}
