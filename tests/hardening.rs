//! Regression tests for inputs that took availability away in 0.7.0 (each
//! one failed there): a single message from a stranger or far in the
//! future, a node stuck at the term ceiling, a joiner's snapshot without a
//! configuration, an oversized step on the WAL, a removed node campaigning
//! forever, time after a stall, and silent no-ops.

mod common;

use bytes::Bytes;
use common::Harness;
use raft_io::{
    Action, CampaignRefusal, Error, Event, Heartbeat, MAX_TERM, MAX_TERM_JUMP, MembershipChange, MemoryLog, Message,
    MessageBody, RaftConfig, RaftLog, RaftNode, ReadKind, Role, Term, VoteRequest, VoteResponse,
};

/// The default configuration's longest election timeout, in ticks.
const ELECTION_TIMEOUT_MAX: u64 = 20;

/// Three nodes, node 1 leading with one command committed everywhere.
fn elected() -> Harness {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    h.propose(1, "a").unwrap();
    h.deliver_all();
    h.tick_all(2);
    assert!(h.node(1).is_leader());
    h
}

/// Proposes on the current leader and checks every live node commits it.
fn commits_again(h: &mut Harness) {
    let mut leader = h.leader();
    for _ in 0..200 {
        if leader.is_some() {
            break;
        }
        h.tick_all(1);
        leader = h.leader();
    }
    let leader = leader.expect("a leader is elected again");
    let index = h.node(leader).last_index() + 1;
    h.propose(leader, "after").unwrap();
    h.deliver_all();
    h.tick_all(3);
    let members = h.node(leader).membership().clone();
    for (&id, node) in h.nodes.iter().filter(|(id, _)| members.contains(**id)) {
        assert!(node.commit_index() >= index, "node {id} did not commit {index}: {:?}", node.status());
    }
}

fn heartbeat(from: u64, to: u64, term: Term) -> Message {
    Message { from, to, term, body: MessageBody::Heartbeat(Heartbeat { commit: 0, round: 1 }) }
}

// ---- 1. One message must not wedge the cluster -------------------------

/// 0.7.0: node 2 adopted term 2^62 from a stranger's heartbeat, its replies
/// spread it, and no node could campaign past it: nothing committed again.
#[test]
fn a_strangers_heartbeat_at_the_maximum_term_does_not_wedge_the_cluster() {
    let mut h = elected();
    let term = h.node(2).term();
    h.deliver(heartbeat(99, 2, MAX_TERM));
    h.deliver_all();
    assert_eq!(h.node(2).term(), term, "the term jump is refused");
    commits_again(&mut h);
    // And after the leader dies, the others still elect a successor.
    h.isolate(1);
    h.tick_all(60);
    h.heal();
    commits_again(&mut h);
    assert!(h.nodes.values().all(|n| n.term() < MAX_TERM_JUMP));
}

/// A member's frame damaged in its term field (the checksum refuses such a
/// frame on the wire; this is the second line of defence in the core).
#[test]
fn a_members_message_far_in_the_future_is_dropped() {
    let mut h = elected();
    let (term, dropped) = (h.node(3).term(), h.node(3).status().dropped_messages);
    h.deliver(heartbeat(1, 3, term + MAX_TERM_JUMP + 1));
    assert_eq!(h.node(3).term(), term);
    assert_eq!(h.node(3).status().dropped_messages, dropped + 1);
    // Right at the limit is still a term an honest node may lag by.
    h.deliver(heartbeat(1, 3, term + MAX_TERM_JUMP));
    assert_eq!(h.node(3).term(), term + MAX_TERM_JUMP);
}

/// Answers and commands from a node in no known configuration are dropped
/// before their term is looked at.
#[test]
fn answers_from_strangers_move_no_term() {
    let mut h = elected();
    let term = h.node(1).term();
    for body in [
        MessageBody::VoteResponse(VoteResponse { granted: false }),
        MessageBody::AppendResponse(Default::default()),
        MessageBody::HeartbeatResponse(Default::default()),
        MessageBody::TimeoutNow,
    ] {
        h.deliver(Message { from: 99, to: 1, term: term + 5, body });
    }
    assert!(h.node(1).is_leader());
    assert_eq!(h.node(1).term(), term);
}

/// The honest case the policy must keep: a follower that lags behind the
/// configuration that added node 4 still follows node 4 as leader.
#[test]
fn a_lagging_follower_follows_a_leader_added_after_its_configuration() {
    let mut h = Harness::empty();
    h.add(3, RaftConfig::new(3, [1, 2, 3]).seed(3), common::log_with_terms(3, &[1, 2, 3], &[1, 1], 1));
    let append = common::append(4, 3, 7, (2, 1), 2, vec![]);
    h.deliver(append);
    let node = h.node(3);
    assert_eq!((node.term(), node.leader(), node.role()), (7, Some(4), Role::Follower));
    // Its candidates' vote requests are heard too.
    let vote = Message {
        from: 5,
        to: 3,
        term: 9,
        body: MessageBody::Vote(VoteRequest { last_log_index: 2, last_log_term: 1, transfer: true }),
    };
    h.deliver(vote);
    assert_eq!(h.node(3).term(), 9);
}

/// 0.7.0: a node restored at `MAX_TERM` (a log written after the attack)
/// dragged every peer there. Now its messages are dropped; it is lost to
/// the cluster, the cluster is not lost to it.
#[test]
fn a_node_at_the_term_ceiling_does_not_stop_the_cluster() {
    let voters = [1, 2, 3];
    let mut h = Harness::empty();
    for id in [1, 2] {
        h.add(id, RaftConfig::new(id, voters).seed(id), MemoryLog::new());
    }
    h.add(3, RaftConfig::new(3, voters).seed(3), common::log_with_terms(3, &voters, &[], MAX_TERM));
    assert!(matches!(h.step(3, Event::Campaign), Err(Error::CannotCampaign(CampaignRefusal::TermExhausted))));
    h.tick_all(40);
    let leader = h.leader().expect("nodes 1 and 2 elect a leader");
    assert!(leader != 3 && h.node(leader).term() < 100);
    h.crash(3);
    commits_again(&mut h);
}

// ---- 2. A joiner knows the configuration at every index it holds -------

/// 0.7.0: the joiner had no configuration before the entry that added it,
/// so a snapshot it took there recorded an empty membership.
#[test]
fn a_joiners_snapshot_records_the_configuration_in_effect() {
    let mut h = elected();
    h.add(4, RaftConfig::joining(4).seed(4), MemoryLog::new());
    h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(4))).unwrap();
    h.deliver_all();
    h.tick_all(4);
    let joiner = h.node(4);
    assert!(joiner.last_applied() >= 3, "{:?}", joiner.status());
    // Index 2 ("a") is before the configuration entry that added node 4.
    h.step(4, Event::Snapshot { index: 2, data: Bytes::from_static(b"state@2") }).unwrap();
    let meta = h.node(4).log().snapshot_meta().clone();
    assert_eq!(meta.index, 2);
    assert_eq!(meta.membership.voters(), &[1, 2, 3], "the founders' configuration, not an empty one");
    // Restarted from that snapshot, then promoted, it may campaign.
    h.crash(4);
    h.restart(4);
    assert_eq!(h.node(4).membership().learners(), &[4]);
    h.step(1, Event::ChangeMembership(MembershipChange::Promote(4))).unwrap();
    h.deliver_all();
    h.tick_all(4);
    assert!(h.node(4).membership().is_voter(4));
    h.isolate(1);
    h.tick_all(2);
    h.heal();
    assert!(h.step(4, Event::Campaign).is_ok() || h.node(4).leader().is_some());
}

// ---- 4. An oversized step is refused, and the node keeps working -------

#[cfg(feature = "persistence")]
mod oversized {
    use super::*;
    use raft_io::WalLog;
    use raft_io::log::wal::WalOptions;

    fn leader_on_wal(dir: &std::path::Path, options: WalOptions, config: RaftConfig) -> RaftNode<WalLog> {
        let log = WalLog::open_with(dir, options).unwrap();
        let mut node = RaftNode::with_log(config, log).unwrap();
        node.step(Event::Campaign).unwrap().for_each(drop);
        assert!(node.is_leader());
        node
    }

    /// 0.7.0: 100 commands of 1 MiB in one batch overflowed the WAL record
    /// limit (64 MiB) and halted the node.
    #[test]
    fn a_batch_larger_than_a_record_is_refused_and_the_node_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = leader_on_wal(dir.path(), WalOptions::new(), RaftConfig::single(1));
        let last = node.last_index();
        let mib = Bytes::from(vec![7u8; 1 << 20]);
        let refused = node.step(Event::ProposeBatch(vec![mib.clone(); 100])).map(|a| a.count());
        assert!(matches!(refused, Err(Error::BatchTooLarge { .. })), "{refused:?}");
        assert_eq!(node.last_index(), last, "nothing appended");
        assert!(!node.is_halted());
        let applied = node.step(Event::ProposeBatch(vec![mib; 8])).unwrap().count();
        assert!(applied > 0 && node.commit_index() == last + 8);
    }

    /// 0.7.0: accepted, then halted on the first large command.
    #[test]
    fn limits_the_log_cannot_hold_are_refused_when_the_node_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let log = WalLog::open_with(dir.path(), WalOptions::new()).unwrap();
        let config = RaftConfig::single(1).max_message_bytes(200 << 20);
        match RaftNode::with_log(config, log) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "max_message_bytes"),
            other => panic!("expected InvalidConfig, got {:?}", other.map(|n| n.status())),
        }
    }

    /// A burst of appends that together exceed one record: the follower
    /// takes the prefix that fits (0.7.0 halted).
    #[test]
    fn a_follower_takes_the_prefix_of_a_burst_that_fits_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions::new().max_record_size(256 << 10);
        let log = WalLog::open_with(dir.path(), options).unwrap();
        let config = RaftConfig::new(2, [1, 2]).max_message_bytes(64 << 10);
        let mut follower = RaftNode::with_log(config, log).unwrap();
        let data = Bytes::from(vec![1u8; 60 << 10]);
        let appends: Vec<Message> = (0..8u64)
            .map(|i| {
                common::append(
                    1,
                    2,
                    1,
                    (i, if i == 0 { 0 } else { 1 }),
                    0,
                    vec![raft_io::Entry::normal(1, i + 1, data.clone())],
                )
            })
            .collect();
        let actions: Vec<Action> = follower.step(Event::Messages(appends)).unwrap().collect();
        assert!(!follower.is_halted());
        let held = follower.last_index();
        assert!((1..8).contains(&held), "a prefix was taken: {held}");
        let acked = actions.iter().filter_map(|a| match a {
            Action::Send { message, .. } => match &message.body {
                MessageBody::AppendResponse(r) if r.success => Some(r.index),
                _ => None,
            },
            _ => None,
        });
        assert_eq!(acked.max(), Some(held), "what it acknowledges is what it holds");
        // The rest arrives in the next step.
        let rest = common::append(1, 2, 1, (held, 1), 0, vec![raft_io::Entry::normal(1, held + 1, data)]);
        follower.step(Event::Message(rest)).unwrap().for_each(drop);
        assert_eq!(follower.last_index(), held + 1);
    }
}

// ---- 6. A new cluster needs voters -------------------------------------

#[test]
fn a_new_cluster_without_voters_is_refused_naming_voters() {
    match RaftNode::new(RaftConfig::new(1, [])) {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "voters"),
        other => panic!("expected InvalidConfig, got {:?}", other.map(|n| n.status())),
    }
    assert!(RaftNode::new(RaftConfig::joining(1)).is_ok());
}

// ---- 7. A removed node learns it and stops ------------------------------

/// 0.7.0: node 3, cut off while it was removed, kept its old configuration
/// and sent pre-votes forever.
#[test]
fn a_removed_node_learns_it_and_stops_campaigning() {
    let mut h = elected();
    h.isolate(3);
    h.step(1, Event::ChangeMembership(MembershipChange::Remove(3))).unwrap();
    h.deliver_all();
    h.tick_all(3);
    assert_eq!(h.node(1).membership().voters(), &[1, 2]);
    h.heal();
    h.clear_actions();
    let bound = ELECTION_TIMEOUT_MAX + 4;
    let mut learned_at = None;
    for tick in 0..bound {
        h.tick_all(1);
        if h.node(3).removed().is_some() {
            learned_at = Some(tick);
            break;
        }
    }
    assert!(learned_at.is_some(), "node 3 learned its removal within {bound} ticks");
    assert!(h.actions.iter().any(|(id, a)| *id == 3 && matches!(a, Action::Removed { .. })));
    assert!(matches!(h.step(3, Event::Campaign), Err(Error::CannotCampaign(CampaignRefusal::Removed))));
    // New reads are refused as from a non-member, as `Action::Removed`
    // says; it used to take them (forwarded, or `NotLeader`).
    let read = h.step(3, Event::Read { id: 77, kind: ReadKind::Index }).map(|a| a.len());
    assert!(matches!(read, Err(Error::NotMember(3))), "{read:?}");
    h.clear_actions();
    h.tick_all(200);
    let campaigning = h.actions.iter().filter(|(id, a)| {
        *id == 3 && matches!(a, Action::Send { message, .. } if matches!(message.body, MessageBody::PreVote(_) | MessageBody::Vote(_)))
    });
    assert_eq!(campaigning.count(), 0, "no vote request after it learned");
    assert_eq!(h.node(3).status().removed, h.node(3).removed());
    commits_again(&mut h);
}

/// A member that lags behind the configuration that added a node must not
/// talk that node into believing it was removed.
#[test]
fn a_lagging_member_cannot_remove_a_newer_node() {
    let mut h = elected();
    // A first change everyone commits, so node 3 has a committed
    // configuration past the bootstrap one to cite.
    h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(5))).unwrap();
    h.deliver_all();
    h.tick_all(4);
    assert!(h.node(3).membership().learners().contains(&5));
    h.add(4, RaftConfig::joining(4).seed(4), MemoryLog::new());
    h.isolate(3);
    h.step(1, Event::ChangeMembership(MembershipChange::AddVoter(4))).unwrap();
    h.deliver_all();
    h.tick_all(4);
    assert!(h.node(4).membership().is_voter(4));
    // Node 3 (stale: voters 1, 2, 3) answers node 4's pre-vote.
    h.heal();
    let pre_vote = Message {
        from: 4,
        to: 3,
        term: h.node(4).term() + 1,
        body: MessageBody::PreVote(VoteRequest { last_log_index: 1, last_log_term: 1, transfer: false }),
    };
    let replies: Vec<Message> = h
        .step(3, Event::Message(pre_vote))
        .unwrap()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    let notice = replies.iter().find(|m| matches!(m.body, MessageBody::Removed(_))).cloned();
    let notice = notice.expect("the stale member answers with a removal notice");
    h.queue.clear();
    h.deliver(notice);
    assert_eq!(h.node(4).removed(), None, "a notice older than its configuration is ignored");
}

// ---- 8. Time after a stall ----------------------------------------------

fn is_ready(actions: &[Action], id: u64) -> bool {
    actions.iter().any(|a| matches!(a, Action::ReadReady { id: r, .. } if *r == id))
}

/// A leader with lease reads, its lease fresh (a heartbeat round just
/// answered by everyone), and a lease read served from it.
fn leader_with_a_fresh_lease() -> Harness {
    let mut h = Harness::new(3, |c| c.lease_reads(true));
    h.elect(1);
    h.tick_all(4);
    let actions = h.step(1, Event::Read { id: 1, kind: ReadKind::Lease }).unwrap();
    assert!(is_ready(&actions, 1), "the lease holds before the stall");
    h.queue.clear();
    h
}

/// `Ticks(n)` advances the lease clock like `n` ticks: a gap just past the
/// lease (8 ticks: the 10-tick minimum election timeout less 2 of drift)
/// leaves the node leader — one check-quorum window at most, with the
/// activity seen before it — but its lease is gone, and it sent one
/// heartbeat round, not one per interval.
#[test]
fn elapsed_ticks_end_the_lease_with_one_heartbeat_round() {
    let mut h = leader_with_a_fresh_lease();
    let actions = h.step(1, Event::Ticks(9)).unwrap();
    assert!(h.node(1).is_leader());
    let heartbeats = actions
        .iter()
        .filter(|a| matches!(a, Action::Send { message, .. } if message.body.name() == "Heartbeat"))
        .count();
    assert_eq!(heartbeats, 2, "one round to the two followers");
    h.queue.clear();
    let actions = h.step(1, Event::Read { id: 2, kind: ReadKind::Lease }).unwrap();
    assert!(!is_ready(&actions, 2), "no read from a lease that expired during the stall");
}

/// A gap of several election timeouts: check-quorum deposes the leader
/// (two windows without hearing from anyone), as that many ticks would.
#[test]
fn a_long_gap_deposes_a_leader_that_heard_nobody() {
    let mut h = leader_with_a_fresh_lease();
    h.step(1, Event::Ticks(ELECTION_TIMEOUT_MAX * 3)).unwrap();
    assert!(!h.node(1).is_leader());
    let served = h.step(1, Event::Read { id: 2, kind: ReadKind::Lease }).is_ok_and(|a| is_ready(&a, 2));
    assert!(!served);
}

/// A follower starts at most one election however long the gap.
#[test]
fn a_long_gap_starts_one_election() {
    let mut h = Harness::new(3, |c| c.pre_vote(false));
    let actions = h.step(2, Event::Ticks(10_000)).unwrap();
    let votes =
        actions.iter().filter(|a| matches!(a, Action::Send { message, .. } if message.body.name() == "Vote")).count();
    assert_eq!((h.node(2).term(), votes), (1, 2));
    assert!(h.step(2, Event::Ticks(0)).unwrap().is_empty());
}

// ---- 9. No silent no-ops ------------------------------------------------

#[test]
fn campaign_refusals_say_why() {
    let mut h = Harness::new(3, |c| c.learners([4]));
    h.add(4, RaftConfig::new(4, [1, 2, 3]).learners([4]).seed(4), MemoryLog::new());
    h.campaign(1);
    h.tick_all(2);
    let refusal = |h: &mut Harness, id| match h.step(id, Event::Campaign) {
        Err(Error::CannotCampaign(why)) => Some(why),
        _ => None,
    };
    assert_eq!(refusal(&mut h, 1), Some(CampaignRefusal::AlreadyLeader));
    assert_eq!(refusal(&mut h, 2), Some(CampaignRefusal::LeaderLease));
    assert_eq!(refusal(&mut h, 4), Some(CampaignRefusal::NotVoter));
    let term = h.node(2).term();
    assert_eq!(term, h.node(1).term(), "a refusal changes nothing");
    assert!(h.node(1).is_leader());
}
