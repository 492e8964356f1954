//! The many-groups host's bookkeeping of groups that fail or go away
//! (PROTOCOL.md §10): a group whose node halted (its storage failed) does
//! not stop the host's other groups — before, the first group whose tick
//! failed ended the loop, so a leader among the later groups kept a lease
//! its clock never ended; and a removed group's queued actions are never
//! taken for those of a new group of the same id; and the storage failure
//! of a received message's step, which no call answers for, is kept for
//! the driver.

mod common;

use bytes::Bytes;
use common::failing_log::FailingLog;
use raft_io::multi::{Envelope, EnvelopeBody, HostAction, HostConfig, MultiError, MultiNode};
use raft_io::{Action, Error, Event, Message, MessageBody, RaftConfig, Role, VoteRequest};

#[test]
fn a_halted_group_does_not_stop_the_other_groups_clocks() {
    // Groups 1..=3 each alone on this node; group 4 a follower of three
    // voters whose peers never answer.
    let mut host = MultiNode::new(HostConfig::new(1).quiescence(false));
    for group in 1..=3 {
        host.create_group(group, RaftConfig::single(1).seed(group), FailingLog::new(usize::MAX, u64::MAX)).unwrap();
        host.step(group, Event::Campaign).unwrap();
    }
    let voters = RaftConfig::new(1, [1, 2, 3]).election_timeout(10, 20).seed(4);
    host.create_group(4, voters, FailingLog::new(usize::MAX, u64::MAX)).unwrap();
    // Group 1's disk fills: a proposal halts its node.
    host.group_mut(1).unwrap().log_mut().syncs_left = 0;
    assert!(host.step(1, Event::Propose(Bytes::from_static(b"x"))).is_err());
    assert!(host.group(1).unwrap().is_halted());
    let _ = host.drain_actions().count();
    for _ in 0..25 {
        // The halt was reported by the step that failed: ticks go on.
        host.advance(1).unwrap();
        let _ = host.drain_actions().count();
    }
    let four = host.group(4).unwrap();
    assert_ne!(four.role(), Role::Follower, "group 4's election timer ran out (a pre-vote at least)");
    for group in 2..=3 {
        assert_eq!(host.group(group).unwrap().role(), Role::Leader);
    }
}

/// A group removed with actions still queued cannot be created again
/// under the same id until they are drained: they would read as the new
/// group's (its applies, here, of a command it never held).
#[test]
fn a_removed_groups_actions_are_drained_before_its_id_is_used_again() {
    let log = || FailingLog::new(usize::MAX, u64::MAX);
    let mut host = MultiNode::new(HostConfig::new(1));
    host.create_group(7, RaftConfig::single(1), log()).unwrap();
    host.step(7, Event::Campaign).unwrap();
    host.step(7, Event::Propose(Bytes::from_static(b"old"))).unwrap();
    host.remove_group(7).unwrap();
    assert!(matches!(host.create_group(7, RaftConfig::single(1), log()), Err(MultiError::Undrained(7))));
    let old: Vec<HostAction> = host.drain_actions().collect();
    assert!(old.iter().any(|a| matches!(a,
        HostAction::Group { group: 7, action: Action::Apply { command, .. } } if command == "old")));
    host.create_group(7, RaftConfig::single(1), log()).unwrap();
    assert_eq!(host.drain_actions().count(), 0);
}

/// The storage failure of a received message's step is kept for the
/// driver (`take_halts`), once: no call answers for such a step, so the
/// group's node halted in silence, and only its next step by a caller
/// said so.
#[test]
fn a_received_messages_storage_failure_is_reported_once() {
    let mut host = MultiNode::new(HostConfig::new(1));
    for group in [1, 2] {
        host.create_group(group, RaftConfig::new(1, [1, 2]), FailingLog::new(usize::MAX, u64::MAX)).unwrap();
    }
    host.group_mut(1).unwrap().log_mut().syncs_left = 0;
    // Node 2 asks both groups for a vote: group 1's vote must be synced,
    // and its disk is full.
    let vote = |group| Envelope {
        from: 2,
        to: 1,
        body: EnvelopeBody::Raft {
            group,
            message: Message { from: 2, to: 1, term: 2, body: MessageBody::Vote(VoteRequest::default()) },
        },
    };
    let mut received = vec![vote(1), vote(2)];
    host.receive_all(&mut received);
    let _ = host.drain_actions().count();
    let mut halts = Vec::new();
    host.take_halts(&mut halts);
    assert!(matches!(halts.as_slice(), [(1, Error::Storage(_))]), "{halts:?}");
    assert!(host.group(1).unwrap().is_halted() && !host.group(2).unwrap().is_halted());
    // Its later steps fail with `Error::Halted`, not reported again.
    host.receive(vote(1));
    halts.clear();
    host.take_halts(&mut halts);
    assert!(halts.is_empty(), "{halts:?}");
}
