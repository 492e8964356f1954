//! Election scenarios, written as protocol traces.

mod common;

use common::{Harness, cmd};
use raft_io::{
    CampaignRefusal, Error, Event, Message, MessageBody, RaftConfig, RaftLog, Role, VoteRequest, VoteResponse,
};

#[test]
fn three_node_election() {
    let mut h = Harness::new(3, |c| c);
    // n1 times out first: pre-vote, then vote, then leads term 1.
    h.step(1, Event::Campaign).unwrap();
    assert_eq!(h.node(1).role(), Role::PreCandidate);
    assert_eq!(h.node(1).term(), 0, "pre-vote does not bump the term");
    assert_eq!(h.sent("PreVote"), 2);
    h.deliver_all();
    assert_eq!(h.node(1).role(), Role::Leader);
    assert_eq!(h.node(1).term(), 1);
    for id in [2, 3] {
        assert_eq!(h.node(id).role(), Role::Follower);
        assert_eq!(h.node(id).leader(), Some(1));
        assert_eq!(h.node(id).term(), 1);
    }
    // The leader's no-op of term 1 commits everywhere.
    assert_eq!(h.node(1).commit_index(), 1);
    h.tick_all(2);
    assert!([2, 3].iter().all(|&id| h.node(id).commit_index() == 1));
}

#[test]
fn five_node_election_by_timeout() {
    let mut h = Harness::new(5, |c| c);
    h.tick_all(25);
    let leader = h.leader().expect("a leader within the maximum election timeout");
    assert_eq!(h.nodes.values().filter(|n| n.role() == Role::Leader).count(), 1);
    for n in h.nodes.values() {
        assert_eq!(n.leader(), Some(leader));
        assert_eq!(n.term(), h.node(leader).term());
    }
}

#[test]
fn randomized_timeouts_stay_in_range_and_depend_on_the_seed() {
    let first_timeout = |seed: u64| {
        let mut h = Harness::new(1, |c| c.seed(seed).election_timeout(10, 20));
        let mut ticks = 0;
        while h.node(1).role() != Role::Leader {
            h.tick(1, 1);
            ticks += 1;
        }
        ticks
    };
    let seen: Vec<u64> = (0..40).map(first_timeout).collect();
    assert!(seen.iter().all(|t| (10..20).contains(t)), "{seen:?}");
    assert!(seen.iter().any(|&t| t != seen[0]), "timeouts vary with the seed");
    assert_eq!(first_timeout(5), first_timeout(5), "and are reproducible");
}

#[test]
fn leader_crash_and_failover() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.propose(1, "a").unwrap();
    h.deliver_all();
    h.tick_all(1);
    h.crash(1);
    h.tick_all(30);
    let leader = h.leader().expect("a new leader");
    assert_ne!(leader, 1);
    assert!(h.node(leader).term() >= 2);
    h.propose(leader, "b").unwrap();
    h.deliver_all();
    h.tick_all(1);
    // The old leader restarts as a follower and catches up.
    h.restart(1);
    assert_eq!(h.node(1).role(), Role::Follower);
    h.tick_all(5);
    assert_eq!(h.node(1).leader(), Some(leader));
    assert_eq!(h.node(1).commit_index(), h.node(leader).commit_index());
    let a = &h.applied[&leader];
    assert_eq!(a.last().unwrap().2, cmd("b"));
    assert_eq!(h.log_terms(1), h.log_terms(leader));
}

#[test]
fn dueling_candidates_resolve() {
    // Without pre-vote, two nodes campaign in the same term and split the
    // vote; randomized timeouts then elect exactly one.
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    h.step(1, Event::Campaign).unwrap();
    h.step(3, Event::Campaign).unwrap();
    assert_eq!((h.node(1).term(), h.node(3).term()), (1, 1));
    h.deliver_all();
    // n2 voted for whichever request reached it first (n1's); n3 lost.
    assert_eq!(h.node(1).role(), Role::Leader);
    assert_eq!(h.node(3).role(), Role::Follower);
    assert_eq!(h.node(3).leader(), Some(1));
    // Fully simultaneous: each votes for itself, nobody wins term 2 ...
    let mut h = Harness::new(2, |c| c.pre_vote(false));
    h.step(1, Event::Campaign).unwrap();
    h.step(2, Event::Campaign).unwrap();
    h.deliver_all();
    assert!(h.leader().is_none());
    // ... until one times out first.
    h.tick_all(40);
    assert!(h.leader().is_some());
}

#[test]
fn vote_and_term_are_synced_before_the_reply() {
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    h.step(1, Event::Campaign).unwrap();
    let requests = h.take_queue();
    let to2 = requests.into_iter().find(|m| m.to == 2).unwrap();
    let syncs = h.node(2).log().effective_syncs();
    let actions = h.step(2, Event::Message(to2)).unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        raft_io::Action::Send { message, .. } if matches!(message.body, MessageBody::VoteResponse(r) if r.granted))));
    assert_eq!(h.node(2).log().effective_syncs(), syncs + 1, "exactly one sync in the step that voted");
    let durable = h.node(2).log().durable();
    assert_eq!(durable.hard_state().term, 1);
    assert_eq!(durable.hard_state().vote, Some(1));
    // The candidate's own term and vote were synced before its requests left.
    let d1 = h.node(1).log().durable();
    assert_eq!((d1.hard_state().term, d1.hard_state().vote), (1, Some(1)));
}

#[test]
fn a_vote_is_never_given_twice_in_a_term_even_across_a_crash() {
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    h.step(1, Event::Campaign).unwrap();
    let req = h.take_queue().into_iter().find(|m| m.to == 3).unwrap();
    h.deliver(req);
    h.take_queue();
    h.crash(3);
    h.restart(3);
    // n2 campaigns in the same term 1 (it never heard of term 1).
    let vote = raft_io::Message {
        from: 2,
        to: 3,
        term: 1,
        body: MessageBody::Vote(VoteRequest { last_log_index: 5, last_log_term: 5, transfer: false }),
    };
    let actions = h.step(3, Event::Message(vote)).unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        raft_io::Action::Send { message, .. } if matches!(message.body, MessageBody::VoteResponse(r) if !r.granted))));
}

#[test]
fn check_quorum_leader_steps_down_and_refuses_proposals() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.isolate(1);
    // Within one minimum election timeout the leader notices.
    for _ in 0..25 {
        h.tick(1, 1);
        h.deliver_all();
    }
    assert_eq!(h.node(1).role(), Role::Follower);
    assert!(matches!(h.propose(1, "x"), Err(raft_io::Error::NotLeader { .. })));
}

#[test]
fn leader_stickiness_refuses_a_disruptive_candidate() {
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    h.campaign(1);
    h.tick_all(2);
    // n3 is cut off from the leader only, times out and campaigns at term 2.
    h.cut(1, 3);
    h.tick(3, 25);
    assert_eq!(h.node(3).role(), Role::Candidate);
    let term3 = h.node(3).term();
    h.deliver_all();
    // n2 hears from a live leader: it ignores the request and keeps its term.
    assert_eq!(h.node(2).term(), 1);
    assert_eq!(h.node(2).leader(), Some(1));
    assert!(term3 > 1);
}

#[test]
fn forced_transfer_election_bypasses_stickiness() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.tick_all(2);
    h.step(1, Event::TransferLeadership(2)).unwrap();
    h.deliver_all();
    assert_eq!(h.leader(), Some(2));
    assert_eq!(h.node(2).term(), 2);
}

#[test]
fn a_learner_or_joining_node_never_campaigns() {
    let mut h = Harness::empty();
    h.add(1, RaftConfig::new(1, [1]).learners([2]).seed(1), raft_io::MemoryLog::new());
    h.add(2, RaftConfig::new(2, [1]).learners([2]).seed(2), raft_io::MemoryLog::new());
    h.add(3, RaftConfig::joining(3), raft_io::MemoryLog::new());
    h.tick(2, 100);
    h.tick(3, 100);
    assert_eq!(h.node(2).role(), Role::Follower);
    assert_eq!(h.node(3).role(), Role::Follower);
    assert_eq!(h.node(2).term(), 0);
    assert!(h.queue.is_empty(), "no vote requests at all");
    for id in [2, 3] {
        let refused = h.step(id, Event::Campaign);
        assert!(matches!(refused, Err(Error::CannotCampaign(CampaignRefusal::NotVoter))), "{refused:?}");
    }
    assert!(h.queue.is_empty());
    assert_eq!(h.node(1).log().last_index(), 0);
}

#[test]
fn a_vote_in_the_current_term_alone_is_synced_before_the_reply() {
    // n2 already knows term 1 (no leader, no vote): granting a vote changes
    // only the vote, which must still be durable before the answer leaves.
    let voters = [1, 2, 3];
    let mut h = Harness::empty();
    h.add(2, RaftConfig::new(2, voters).seed(2).pre_vote(false), common::log_with_terms(2, &voters, &[1], 1));
    let syncs = h.node(2).log().effective_syncs();
    let vote = raft_io::Message {
        from: 3,
        to: 2,
        term: 1,
        body: MessageBody::Vote(VoteRequest { last_log_index: 1, last_log_term: 1, transfer: false }),
    };
    let actions = h.step(2, Event::Message(vote)).unwrap();
    assert!(actions.iter().any(|a| matches!(a,
        raft_io::Action::Send { message, .. } if matches!(message.body, MessageBody::VoteResponse(r) if r.granted))));
    assert_eq!(h.node(2).log().effective_syncs(), syncs + 1);
    assert_eq!(h.node(2).log().durable().hard_state().vote, Some(3));
}

#[test]
fn a_follower_tick_and_a_leader_heartbeat_cost_no_sync() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.tick_all(3);
    let before: Vec<u64> = (1..=3).map(|id| h.node(id).log().effective_syncs()).collect();
    // Heartbeats flow, nothing changes: no node syncs.
    h.tick_all(6);
    let after: Vec<u64> = (1..=3).map(|id| h.node(id).log().effective_syncs()).collect();
    assert_eq!(before, after);
    assert!(h.sent("Heartbeat") > 0);
}

/// Granting a vote restarts the voter's election timer (a node that has
/// just voted gives the candidate a full timeout to win and make itself
/// heard), also when the vote is in the voter's own term, where no term
/// change restarts it. A voter one tick from its timeout when it grants
/// must not campaign at the next tick.
#[test]
fn granting_a_vote_restarts_the_election_timer() {
    // A fixed timeout of 10 ticks for every node; no pre-vote, so that a
    // campaign's first message is its vote request.
    let mut h = Harness::new(3, |c| c.election_timeout(10, 11).pre_vote(false));
    // Node 2 learns of term 2 (from an answer node 1 sent in it), which
    // restarts its timer; then nine ticks pass.
    let news = Message { from: 1, to: 2, term: 2, body: MessageBody::VoteResponse(VoteResponse { granted: false }) };
    h.deliver(news);
    assert_eq!(h.node(2).term(), 2);
    // Node 3 is in term 1, so that its campaign is for term 2.
    h.deliver(Message { from: 1, to: 3, term: 1, body: MessageBody::VoteResponse(VoteResponse { granted: false }) });
    h.take_queue();
    h.tick(2, 9);
    assert!(h.queue.is_empty(), "node 2 campaigned early");
    // Node 3 campaigns in term 2, node 2's own term: deliver its requests
    // and the answers, but nothing it sends once elected.
    h.step(3, Event::Campaign).unwrap();
    h.deliver_holding(|m| matches!(m.body, MessageBody::Append(_) | MessageBody::Heartbeat(_)));
    assert!(
        h.node(3).is_leader() && h.node(3).term() == 2,
        "node 3: {:?} in term {}, node 2 term {} vote {:?}",
        h.node(3).role(),
        h.node(3).term(),
        h.node(2).term(),
        h.node(2).log().hard_state().vote
    );
    assert_eq!(h.node(2).log().hard_state().vote, Some(3), "node 2 voted for node 3 in term 2");
    h.tick(2, 1);
    let campaigned: Vec<_> = h
        .queue
        .iter()
        .filter(|m| m.from == 2 && matches!(m.body, MessageBody::PreVote(_) | MessageBody::Vote(_)))
        .collect();
    assert!(campaigned.is_empty(), "node 2 campaigned the tick after voting: {campaigned:?}");
    assert_eq!(h.node(2).role(), Role::Follower);
}
