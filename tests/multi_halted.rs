//! A group of a many-groups host whose node halted (its storage failed)
//! does not stop the host's other groups: every later `advance` still ticks
//! them and runs the liveness checks (PROTOCOL.md §10). Before, the first
//! group whose tick failed ended the loop, so a leader among the later
//! groups kept a lease its clock never ended.

mod common;

use bytes::Bytes;
use common::failing_log::FailingLog;
use raft_io::multi::{HostConfig, MultiNode};
use raft_io::{Event, RaftConfig, Role};

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
