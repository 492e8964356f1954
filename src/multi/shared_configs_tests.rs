//! The host keeps one copy of each configuration its groups hold.

use super::{HostConfig, MultiNode};
use crate::log::MemoryLog;
use crate::membership::MembershipChange;
use crate::node::Event;
use crate::{Membership, RaftConfig};

fn membership(host: &MultiNode<MemoryLog>, group: u64) -> &Membership {
    host.group(group).expect("group").membership()
}

#[test]
fn groups_created_with_equal_configurations_read_one_copy() {
    let mut host = MultiNode::new(HostConfig::new(1));
    for group in 1..=3 {
        host.create_group(group, RaftConfig::new(1, [1, 2, 3]), MemoryLog::new()).unwrap();
    }
    host.create_group(4, RaftConfig::new(1, [1, 2, 4]), MemoryLog::new()).unwrap();
    assert!(membership(&host, 1).same_lists(membership(&host, 2)));
    assert!(membership(&host, 1).same_lists(membership(&host, 3)));
    assert!(!membership(&host, 1).same_lists(membership(&host, 4)), "different configurations stay apart");
    assert_eq!(membership(&host, 4), &Membership::new([1, 2, 4], []).unwrap());
}

#[test]
fn a_changed_configuration_is_shared_too() {
    let mut host = MultiNode::new(HostConfig::new(1));
    host.create_group(1, RaftConfig::new(1, [1]), MemoryLog::new()).unwrap();
    host.step(1, Event::Campaign).unwrap();
    assert!(host.group(1).unwrap().is_leader());
    host.step(1, Event::ChangeMembership(MembershipChange::AddLearner(5))).unwrap();
    host.drain_actions().for_each(drop);
    let changed = Membership::new([1], [5]).unwrap();
    assert_eq!(membership(&host, 1), &changed);
    // A group created later with the changed configuration reads the
    // copy group 1 holds: the host took it when the change took effect.
    host.create_group(2, RaftConfig::new(1, [1]).learners([5]), MemoryLog::new()).unwrap();
    assert!(membership(&host, 2).same_lists(membership(&host, 1)));
}
