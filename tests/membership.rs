//! Membership changes as protocol traces: learners, single-server changes,
//! the single-server change bug, joint consensus, joining, removal and
//! leadership transfer.

mod common;

use common::Harness;
use raft_io::{
    Action, Error, Event, Membership, MembershipChange, MembershipError, MemoryLog, RaftConfig, RaftLog, Role,
    TransferOutcome,
};

fn elected(n: u64) -> Harness {
    let mut h = Harness::new(n, |c| c);
    h.campaign(1);
    h.tick_all(1);
    h
}

fn change(h: &mut Harness, leader: u64, c: MembershipChange) -> Result<(), Error> {
    h.step(leader, Event::ChangeMembership(c)).map(drop)
}

/// Adds joining node `id` to the harness (it has no configuration).
fn join(h: &mut Harness, id: u64) {
    h.add(id, RaftConfig::joining(id).seed(id), MemoryLog::new());
    assert!(h.node(id).membership().is_empty());
}

fn committed_configs(h: &Harness, id: u64) -> Vec<Membership> {
    h.actions
        .iter()
        .filter_map(|(n, a)| match a {
            Action::MembershipCommitted { membership, .. } if *n == id => Some(membership.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_learner_replicates_and_applies_but_counts_in_no_quorum() {
    let mut h = elected(3);
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.deliver_all();
    h.tick_all(2);
    assert_eq!(h.node(1).membership().learners(), &[4]);
    assert_eq!(h.node(4).membership().learners(), &[4], "the joiner learned the configuration from the leader");
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(1);
    assert_eq!(h.applied[&4].last().unwrap().2, common::cmd("x"), "the learner applies");
    // With both voting followers cut off, the learner's acknowledgements
    // commit nothing.
    h.cut(1, 2);
    h.cut(1, 3);
    let commit = h.node(1).commit_index();
    h.propose(1, "y").unwrap();
    h.deliver_all();
    assert_eq!(h.node(4).last_index(), h.node(1).last_index(), "replicated to the learner");
    assert_eq!(h.node(1).commit_index(), commit, "but not committed by it");
    // A learner never campaigns, even when the leader is gone.
    h.heal();
    h.crash(1);
    h.tick(4, 200);
    assert_eq!(h.node(4).role(), Role::Follower);
    assert!(!h.queue.iter().any(|m| m.from == 4 && matches!(m.body.name(), "PreVote" | "Vote")));
}

/// The leader contacts a node the moment a configuration adds it: the
/// configuration entry's own broadcast probes it, so the joiner holds the
/// leader's whole log, and the leader its acknowledgement, with no tick
/// (none waits for a heartbeat).
#[test]
fn a_node_added_to_the_configuration_is_contacted_at_once() {
    for c in [MembershipChange::AddLearner(4), MembershipChange::AddVoter(4)] {
        let mut h = elected(3);
        h.propose(1, "x").unwrap();
        h.deliver_all();
        join(&mut h, 4);
        change(&mut h, 1, c.clone()).unwrap();
        assert!(
            h.queue.iter().any(|m| m.from == 1 && m.to == 4),
            "{c:?}: the step that appended the configuration sends the new node nothing"
        );
        h.deliver_all();
        let last = h.node(1).last_index();
        assert_eq!(h.node(4).last_index(), last, "{c:?}: the joiner caught up without a tick");
        assert!(h.node(4).membership().contains(4), "{c:?}: and holds the configuration that adds it");
        assert_eq!(h.node(1).commit_index(), last, "{c:?}: the configuration committed without a tick");
    }
}

#[test]
fn promotion_and_automatic_promotion() {
    let mut h = elected(3);
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.tick_all(3);
    change(&mut h, 1, MembershipChange::Promote(4)).unwrap();
    h.tick_all(3);
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 3, 4]);
    assert_eq!(h.node(4).membership().voters(), &[1, 2, 3, 4]);

    // Automatic: a learner within 5 entries of the leader is promoted.
    let h = learner_added_with_auto_promote(5);
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 3, 4], "promoted once caught up");
    assert!(h.node(1).membership().learners().is_empty());
}

/// Three voters with automatic promotion at `distance`; learner 4 added and
/// given six ticks to catch up.
fn learner_added_with_auto_promote(distance: u64) -> Harness {
    let mut h = Harness::new(3, |c| c.auto_promote(Some(distance)));
    h.campaign(1);
    h.tick_all(1);
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.tick_all(6);
    h
}

/// The promotion distance is inclusive: at distance 0 a learner that holds
/// every entry of the leader's log (and nothing more is proposed) is
/// promoted.
#[test]
fn a_learner_exactly_at_the_promotion_distance_is_promoted() {
    let h = learner_added_with_auto_promote(0);
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 3, 4], "promoted once it held the whole log");
    assert!(h.node(1).membership().learners().is_empty());
}

#[test]
fn single_server_changes_and_one_at_a_time() {
    let mut h = elected(3);
    join(&mut h, 4);
    h.isolate(4);
    change(&mut h, 1, MembershipChange::AddVoter(4)).unwrap();
    // The entry is in the leader's log, uncommitted: no second change.
    assert!(matches!(change(&mut h, 1, MembershipChange::Remove(3)), Err(Error::ChangeInProgress { .. })));
    h.heal();
    h.tick_all(4);
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 3, 4]);
    change(&mut h, 1, MembershipChange::Remove(3)).unwrap();
    h.tick_all(4);
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 4]);
    assert_eq!(h.node(4).membership().voters(), &[1, 2, 4]);
}

#[test]
fn bad_changes_are_refused_and_leave_the_configuration_unchanged() {
    let mut h = Harness::new(1, |c| c);
    h.campaign(1);
    let before = h.node(1).membership().clone();
    let last = h.node(1).last_index();
    assert!(matches!(
        change(&mut h, 1, MembershipChange::Remove(1)),
        Err(Error::Membership(MembershipError::NoVoters))
    ));
    let mut h = elected(3);
    let before3 = h.node(1).membership().clone();
    let cases = [
        (MembershipChange::AddVoter(2), MembershipError::AlreadyMember(2)),
        (MembershipChange::AddLearner(3), MembershipError::AlreadyMember(3)),
        (MembershipChange::Promote(2), MembershipError::NotLearner(2)),
        (MembershipChange::Promote(9), MembershipError::NotMember(9)),
        (MembershipChange::Remove(9), MembershipError::NotMember(9)),
    ];
    for (c, expected) in cases {
        match change(&mut h, 1, c) {
            Err(Error::Membership(e)) => assert_eq!(e, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
        assert_eq!(h.node(1).membership(), &before3);
    }
    assert!(matches!(
        change(&mut h, 2, MembershipChange::AddLearner(7)),
        Err(Error::NotLeader { leader: Some(1), .. })
    ));
    assert!(matches!(h.step(1, Event::TransferLeadership(9)), Err(Error::InvalidTransferTarget(9))));
    assert_eq!(before.voters(), &[1]);
    assert_eq!(last, 1);
}

#[test]
fn transfer_to_a_learner_is_refused() {
    let mut h = elected(3);
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.tick_all(3);
    assert!(matches!(h.step(1, Event::TransferLeadership(4)), Err(Error::InvalidTransferTarget(4))));
    assert!(h.node(1).is_leader());
}

/// The single-server change bug (Ongaro, raft-dev, 2015), in our words:
///
/// 1. Voters {1,2,3,4}; node 1 leads term 1 and appends a configuration
///    adding node 5, which reaches nobody.
/// 2. Node 2 is elected in term 2 by {2,3,4} (the old configuration).
/// 3. Without the rule, node 2 could at once append a configuration that
///    removes node 1 and commit it with a majority of *that* configuration,
///    {2,3}; node 1, still believing in {1,2,3,4,5}, could then be elected
///    by {1,4,5} in term 3 and overwrite the committed entry.
///
/// raft-io's rule — a leader changes the configuration only after an entry
/// of its own term committed — refuses step 3 until node 2's no-op is
/// committed by a majority of the old configuration, and that no-op then
/// keeps node 1 from ever winning again.
#[test]
fn the_single_server_change_bug_cannot_happen() {
    let mut h = Harness::new(4, |c| c.pre_vote(false).check_quorum(false));
    join(&mut h, 5);
    h.campaign(1);
    h.tick_all(1);
    // 1. Node 1 appends "add 5", which reaches nobody.
    h.isolate(1);
    change(&mut h, 1, MembershipChange::AddVoter(5)).unwrap();
    assert_eq!(h.node(1).membership().voters(), &[1, 2, 3, 4, 5]);
    h.take_queue();
    // 2. Node 2 campaigns in term 2; node 4 hears its request only after
    //    node 2 has already won with 3's vote and its own... deliver only
    //    votes, hold back the no-op's replication.
    h.step(2, Event::Campaign).unwrap();
    let mut held = Vec::new();
    while let Some(m) = h.queue.pop_front() {
        if m.from == 2 && m.body.name() == "Append" {
            held.push(m);
        } else {
            h.deliver(m);
        }
    }
    assert!(h.node(2).is_leader());
    assert_eq!(h.node(2).term(), 2);
    // 3. The rule: no configuration change before the no-op commits.
    assert!(matches!(change(&mut h, 2, MembershipChange::Remove(1)), Err(Error::NotReady)));
    // The no-op commits on a majority of the old configuration...
    for m in held {
        h.deliver(m);
    }
    h.deliver_all();
    assert!(h.node(2).commit_index() >= h.node(2).last_index());
    change(&mut h, 2, MembershipChange::Remove(1)).unwrap();
    h.deliver_all();
    h.tick_all(2);
    let committed_at = h.node(2).commit_index();
    assert_eq!(h.node(2).membership().voters(), &[2, 3, 4]);
    // ... so node 1, with its stale {1,..,5}, can never win: 3 and 4 hold
    // newer entries and refuse it; 5 alone is not enough.
    h.heal();
    // Node 1 still believes it leads term 1 until its own heartbeats are
    // answered in term 2; then it campaigns.
    h.tick(1, 2);
    h.deliver_all();
    assert!(!h.node(1).is_leader());
    h.step(1, Event::Campaign).unwrap();
    h.deliver_all();
    h.tick_all(3);
    assert!(!h.node(1).is_leader() || h.node(1).term() > 2 && h.node(1).log().term(committed_at) == Some(2));
    for id in [2, 3, 4] {
        assert!(h.node(id).commit_index() >= committed_at, "node {id} lost a committed entry");
        assert_eq!(h.node(id).log().term(committed_at), Some(2));
    }
}

#[test]
fn joint_consensus_replaces_two_voters_and_leaves_automatically() {
    let mut h = elected(3);
    join(&mut h, 4);
    join(&mut h, 5);
    h.clear_actions();
    change(&mut h, 1, MembershipChange::Replace { voters: vec![1, 4, 5], learners: vec![] }).unwrap();
    let joint = h.node(1).membership().clone();
    assert!(joint.is_joint());
    assert_eq!((joint.voters(), joint.outgoing()), (&[1, 4, 5][..], &[1, 2, 3][..]));
    h.tick_all(5);
    // Both transitions were observable, in order, and the leader left the
    // joint configuration on its own.
    let seen = committed_configs(&h, 1);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].is_joint());
    assert_eq!(seen[1], Membership::new([1, 4, 5], []).unwrap());
    for id in [1, 4, 5] {
        assert_eq!(h.node(id).membership().voters(), &[1, 4, 5]);
        assert!(!h.node(id).membership().is_joint());
    }
    // The new configuration works without the old voters.
    h.crash(2);
    h.crash(3);
    h.propose(1, "after").unwrap();
    h.tick_all(2);
    assert_eq!(h.applied[&5].last().unwrap().2, common::cmd("after"));
}

#[test]
fn a_joint_configuration_needs_both_majorities() {
    let mut h = elected(3);
    join(&mut h, 4);
    join(&mut h, 5);
    // Old voters 2 and 3 are unreachable: the joint entry cannot commit,
    // because the old set {1,2,3} has no majority.
    h.cut(1, 2);
    h.cut(1, 3);
    change(&mut h, 1, MembershipChange::Replace { voters: vec![1, 4, 5], learners: vec![] }).unwrap();
    h.tick(1, 4);
    h.deliver_all();
    let joint_index = h.node(1).last_index();
    assert!(h.node(1).commit_index() < joint_index, "new majority alone does not commit");
    h.heal();
    h.tick_all(4);
    assert!(h.node(1).commit_index() >= joint_index);
}

#[test]
fn an_uncommitted_configuration_is_rolled_back_by_truncation() {
    let mut h = Harness::new(5, |c| c.pre_vote(false).check_quorum(false));
    join(&mut h, 6);
    h.campaign(1);
    h.tick_all(1);
    // Node 1 appends "add learner 6", which reaches only node 2.
    change(&mut h, 1, MembershipChange::AddLearner(6)).unwrap();
    let to2: Vec<_> = h.take_queue().into_iter().filter(|m| m.to == 2).collect();
    for m in to2 {
        h.deliver(m);
    }
    h.take_queue();
    assert_eq!(h.node(2).membership().learners(), &[6], "in effect on append, before commit");
    // Nodes 3, 4, 5 elect node 3 in term 2 without the entry.
    h.crash(1);
    h.step(3, Event::Campaign).unwrap();
    h.deliver_all();
    assert!(h.node(3).is_leader());
    h.propose(3, "z").unwrap();
    h.deliver_all();
    h.tick_all(2);
    assert!(h.node(2).membership().learners().is_empty(), "rolled back with the truncated entry");
    let rolled_back = h.actions.iter().any(|(id, a)| {
        *id == 2 && matches!(a, Action::MembershipChanged { membership, .. } if membership.learners().is_empty())
    });
    assert!(rolled_back, "the rollback is reported");
}

#[test]
fn recovery_and_snapshots_carry_the_configuration() {
    let mut h = elected(3);
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.tick_all(3);
    let index = h.node(2).last_applied();
    h.step(2, Event::Snapshot { index, data: bytes::Bytes::from_static(b"s") }).unwrap();
    assert_eq!(h.node(2).log().snapshot_meta().membership.learners(), &[4]);
    h.crash(2);
    h.restart(2);
    assert_eq!(h.node(2).membership().learners(), &[4], "recovered from the snapshot");
    h.crash(3);
    h.restart(3);
    assert_eq!(h.node(3).membership().learners(), &[4], "recovered from the log's configuration entry");
}

#[test]
fn a_removed_leader_steps_down_after_the_change_commits() {
    let mut h = elected(3);
    h.clear_actions();
    change(&mut h, 1, MembershipChange::Remove(1)).unwrap();
    // Still leading (and replicating) while the change is uncommitted.
    assert!(h.node(1).is_leader());
    h.deliver_all();
    h.tick_all(3);
    assert!(!h.node(1).is_leader(), "stepped down once committed");
    let leader = h.leader().expect("a successor");
    assert!(leader == 2 || leader == 3);
    assert_eq!(h.node(leader).membership().voters(), &[2, 3]);
    // The removed node never disrupts the cluster afterwards.
    let term = h.node(leader).term();
    h.tick_all(100);
    assert_eq!(h.leader(), Some(leader));
    assert_eq!(h.node(leader).term(), term);
    assert_eq!(h.node(1).role(), Role::Follower);
}

/// The successor a removed leader hands over to is an up-to-date voter,
/// never an up-to-date learner (which cannot campaign): here learner 2 comes
/// before voter 3 among the leader's peers, and both hold the whole log.
#[test]
fn a_removed_leader_hands_over_to_an_up_to_date_voter_not_a_learner() {
    let mut h = elected(4);
    change(&mut h, 1, MembershipChange::Replace { voters: vec![1, 3, 4], learners: vec![2] }).unwrap();
    h.tick_all(3);
    assert_eq!(h.node(1).membership().voters(), &[1, 3, 4]);
    assert_eq!(h.node(1).membership().learners(), &[2]);
    h.clear_actions();
    change(&mut h, 1, MembershipChange::Remove(1)).unwrap();
    h.deliver_all();
    assert!(!h.node(1).is_leader(), "stepped down once its removal committed");
    let timeout_now: Vec<u64> = h.sent_by(1).filter(|m| m.body.name() == "TimeoutNow").map(|m| m.to).collect();
    assert_eq!(timeout_now, vec![3], "handed over to the first up-to-date voter");
    assert_eq!(h.leader(), Some(3), "the successor took over at once, without waiting for a timeout");
    assert_eq!(h.node(3).membership().voters(), &[3, 4]);
}

#[test]
fn a_removed_follower_that_missed_its_removal_does_not_disrupt() {
    let mut h = elected(3);
    h.isolate(3);
    change(&mut h, 1, MembershipChange::Remove(3)).unwrap();
    h.deliver_all();
    h.tick_all(3);
    assert_eq!(h.node(1).membership().voters(), &[1, 2]);
    // Node 3 still believes it is a voter of {1,2,3}; it times out and
    // pre-votes, but nobody grants while the leader is alive.
    h.heal();
    let term = h.node(1).term();
    h.tick_all(150);
    assert_eq!(h.leader(), Some(1));
    assert_eq!(h.node(1).term(), term);
    assert_eq!(h.node(2).term(), term);
}

#[test]
fn leadership_transfer_catches_the_target_up_first() {
    let mut h = elected(3);
    h.isolate(3);
    for i in 0..5 {
        h.propose(1, &format!("c{i}")).unwrap();
    }
    h.deliver_all();
    h.heal();
    h.clear_actions();
    h.step(1, Event::TransferLeadership(3)).unwrap();
    // Proposals are refused while the transfer is pending.
    assert!(matches!(h.propose(1, "no"), Err(Error::TransferPending { to: 3 })));
    h.deliver_all();
    assert_eq!(h.leader(), Some(3));
    assert_eq!(h.node(3).last_index(), h.node(1).last_index());
    let timeout_now_after_append = {
        let sends: Vec<&str> = h.sent_by(1).filter(|m| m.to == 3).map(|m| m.body.name()).collect();
        let first_append = sends.iter().position(|k| *k == "Append");
        let timeout_now = sends.iter().position(|k| *k == "TimeoutNow");
        first_append.is_some() && timeout_now > first_append
    };
    assert!(timeout_now_after_append, "the target was brought up to date before TimeoutNow");
    assert!(
        h.actions
            .iter()
            .any(|(id, a)| *id == 1
                && matches!(a, Action::TransferEnded { to: 3, outcome: TransferOutcome::SteppedDown }))
    );
}

#[test]
fn a_transfer_to_an_unreachable_target_is_abandoned() {
    let mut h = elected(3);
    h.isolate(3);
    h.step(1, Event::TransferLeadership(3)).unwrap();
    h.clear_actions();
    for _ in 0..12 {
        h.tick(1, 1);
        h.tick(2, 1);
        h.deliver_all();
    }
    assert!(h.node(1).is_leader());
    assert!(
        h.actions.iter().any(|(_, a)| matches!(a, Action::TransferEnded { to: 3, outcome: TransferOutcome::TimedOut }))
    );
    h.propose(1, "accepted again").unwrap();
}

#[test]
fn a_joining_node_never_invents_a_configuration() {
    let mut h = elected(3);
    join(&mut h, 4);
    // Nobody added it: it waits, silent.
    h.tick(4, 300);
    assert!(h.node(4).membership().is_empty());
    assert!(!h.queue.iter().any(|m| m.from == 4));
    assert_eq!(h.node(4).term(), 0);
    // Reads and proposals on it are refused with a reason.
    assert!(matches!(h.propose(4, "x"), Err(Error::NotLeader { leader: None, .. })));
    assert!(matches!(h.step(4, Event::Read { id: 1, kind: raft_io::ReadKind::Index }), Err(Error::NotMember(4))));
}

/// A leader appends a configuration that removes itself, and crashes before
/// anyone else receives it. The remaining voter cannot win (its log is
/// shorter), so the removed node — still a voter of the last committed
/// configuration — must campaign to finish the change: it wins with the
/// other node's vote (its own does not count in the new configuration),
/// commits the change, and hands leadership over.
#[test]
fn a_node_removed_by_an_uncommitted_change_still_campaigns_to_finish_it() {
    let mut h = elected(2);
    h.isolate(2);
    change(&mut h, 1, MembershipChange::Remove(1)).unwrap();
    assert_eq!(h.node(1).membership().voters(), &[2]);
    h.take_queue();
    h.crash(1);
    h.restart(1);
    h.heal();
    let mut ticks = 0;
    while !(h.leader() == Some(2) && h.node(2).membership().voters() == [2]) {
        h.tick_all(1);
        ticks += 1;
        assert!(ticks < 200, "stuck: no leader can finish the change");
    }
    h.propose(2, "live").unwrap();
    h.tick_all(1);
    assert_eq!(h.applied[&2].last().unwrap().2, common::cmd("live"));
    assert!(!h.node(1).is_leader());
}

/// The configuration API: in effect (and its index), committed, and at any
/// index the node holds.
#[test]
fn the_configuration_at_each_index_is_public() {
    let mut h = elected(3);
    join(&mut h, 4);
    let bootstrap = h.node(1).membership().clone();
    assert_eq!(h.node(1).membership_index(), 0);
    h.isolate(2);
    h.isolate(3);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    let at = h.node(1).membership_index();
    assert!(at > 0);
    // Appended, not committed: in effect, but not the committed one.
    assert!(h.node(1).membership().learners().contains(&4));
    assert_eq!(h.node(1).committed_membership(), (0, &bootstrap));
    assert_eq!(h.node(1).membership_at(at - 1), Some(&bootstrap));
    assert_eq!(h.node(1).membership_at(at), Some(h.node(1).membership()));
    assert_eq!(h.node(1).membership_at(at + 1), None, "past the last index");
    h.heal();
    h.tick_all(4);
    assert_eq!(h.node(1).committed_membership().0, at);
    assert_eq!(h.node(4).can_campaign(), Err(raft_io::CampaignRefusal::NotVoter));
}

#[test]
fn addresses_replicate_with_the_configuration_and_name_the_leader_in_redirects() {
    let addr = |id: u64| bytes::Bytes::from(format!("10.0.0.{id}:7001"));
    let mut h = Harness::new(3, |c| c.addresses((1..=3).map(|id| (id, addr(id)))));
    h.campaign(1);
    h.tick_all(1);
    match h.propose(2, "x") {
        Err(Error::NotLeader { leader: Some(1), leader_address }) => assert_eq!(leader_address, Some(addr(1))),
        other => panic!("expected a redirect to node 1 at its address, got {other:?}"),
    }
    assert_eq!(h.node(2).leader_address(), Some(&addr(1)));
    // Added with its address: every member, and the joiner itself, knows it.
    join(&mut h, 4);
    change(&mut h, 1, MembershipChange::AddVoterAt { id: 4, address: addr(4) }).unwrap();
    h.deliver_all();
    h.tick_all(2);
    for id in 1..=4 {
        let m = h.node(id).membership();
        assert!(m.voters().contains(&4), "node {id}");
        assert_eq!(m.addresses().collect::<Vec<_>>().len(), 4, "node {id} knows every address");
        assert_eq!(m.address(4), Some(&addr(4)), "node {id}");
    }
    // Moved, then refused when the address is no address at all.
    change(&mut h, 1, MembershipChange::SetAddress { id: 2, address: Some(addr(9)) }).unwrap();
    h.deliver_all();
    h.tick_all(2);
    assert_eq!(h.node(3).membership().address(2), Some(&addr(9)));
    let before = h.node(1).membership().clone();
    let empty = MembershipChange::AddLearnerAt { id: 5, address: bytes::Bytes::new() };
    assert!(matches!(
        change(&mut h, 1, empty),
        Err(Error::Membership(MembershipError::InvalidAddress { id: 5, len: 0 }))
    ));
    assert_eq!(h.node(1).membership(), &before, "nothing changed");
    // Removed: its address goes with it.
    change(&mut h, 1, MembershipChange::Remove(3)).unwrap();
    h.deliver_all();
    h.tick_all(2);
    assert_eq!(h.node(1).membership().address(3), None);
}

/// A leader whose removal has committed steps down in that step (§7): it
/// does not first make another change of a configuration it is no longer
/// part of — here the automatic promotion of a learner that caught up
/// while the removal was in flight, which kept the removed node leading
/// until that promotion committed too.
#[test]
fn a_removed_leader_steps_down_before_promoting_a_learner() {
    let mut h = Harness::new(3, |c| c.auto_promote(Some(0)));
    h.elect(1);
    h.tick_all(1);
    join(&mut h, 4);
    // Learner 4 is added while cut off, so it is not caught up.
    h.isolate(4);
    change(&mut h, 1, MembershipChange::AddLearner(4)).unwrap();
    h.tick_all(2);
    assert_eq!(h.node(1).membership().learners(), &[4]);
    // Node 1 removes itself; 2 and 3 do not answer while 4 catches up.
    change(&mut h, 1, MembershipChange::Remove(1)).unwrap();
    let removal = h.node(1).last_index();
    h.heal();
    h.cut(1, 2);
    h.cut(1, 3);
    for _ in 0..4 {
        h.tick(1, 1);
        h.deliver_all();
    }
    assert_eq!(h.node(4).last_index(), removal, "the learner caught up");
    assert!(h.node(1).commit_index() < removal);
    // The removal commits.
    h.heal();
    h.tick(1, 2);
    h.deliver_all();
    assert!(h.node(2).commit_index() >= removal || h.node(3).commit_index() >= removal);
    let configs_by_1: Vec<_> = h
        .actions
        .iter()
        .filter_map(|(n, a)| match a {
            Action::MembershipChanged { index, membership } if *n == 1 && *index > removal => {
                Some((*index, membership.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(configs_by_1.is_empty(), "the removed leader changed the configuration again: {configs_by_1:?}");
    assert!(!h.node(1).is_leader(), "stepped down once its removal committed");
}
