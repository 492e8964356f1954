//! Unit tests of the node, driven message by message.

use super::*;

pub(super) fn single() -> RaftNode {
    RaftNode::new(RaftConfig::single(1).seed(1)).unwrap()
}

#[test]
fn single_node_elects_itself_and_commits() {
    let mut n = single();
    let mut ticks = 0;
    while !n.is_leader() {
        n.step(Event::Tick).unwrap().for_each(drop);
        ticks += 1;
        assert!(ticks < 100);
    }
    assert_eq!(n.commit_index(), 1, "the no-op commits at once");
    let actions: Vec<Action> = n.step(Event::Propose(Bytes::from_static(b"x"))).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 2, .. })));
    assert_eq!(n.commit_index(), 2);
}
