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

/// `defer_ticks`: a follower whose ticks a host defers whenever it may
/// (copy B) acts exactly as one that steps every tick (copy A), fed the
/// same messages, over random schedules of ticks, proposals, reads,
/// deliveries and silences of the leader long enough for elections and
/// read timeouts: every tick A steps while B defers is silent, and at
/// every step both take, both emit the same actions and end in the same
/// state (fingerprint). Seeds 1..=40, each printed on failure.
#[cfg(feature = "sim")]
#[test]
fn deferred_ticks_act_as_stepped_ticks() {
    for seed in 1..=40u64 {
        deferred_ticks_run(seed);
    }
}

#[cfg(feature = "sim")]
fn deferred_ticks_run(seed: u64) {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let ids = [1, 2, 3];
    let cfg = |id| {
        RaftConfig::new(id, ids)
            .election_timeout(10, 20)
            .heartbeat_interval(3)
            .read_timeout_ticks(4)
            .seed(seed * 10 + id)
    };
    let mut nodes: Vec<RaftNode> = ids.iter().map(|&id| RaftNode::new(cfg(id)).unwrap()).collect();
    // Copy B of node 2, deferring its ticks.
    let mut b = nodes[1].clone();
    // As a many-groups host has it: the limit worked out by each step.
    b.track_quiet_limit();
    let mut queue: Vec<Message> = Vec::new();
    let mut deferred = 0u64;
    // One step of node `i` (B follows node 2's steps); its messages queued.
    let step = |nodes: &mut Vec<RaftNode>, b: &mut RaftNode, queue: &mut Vec<Message>, i: usize, event: Event| {
        let a_out: Vec<Action> = nodes[i].step(event.clone()).map(Iterator::collect).unwrap_or_default();
        if i == 1 {
            let b_out: Vec<Action> = b.step(event).map(Iterator::collect).unwrap_or_default();
            assert_eq!(a_out, b_out, "seed {seed}: the same actions");
            assert_eq!(nodes[1].fingerprint(), b.fingerprint(), "seed {seed}: the same state");
        }
        for a in a_out {
            if let Action::Send { message, .. } = a {
                queue.push(message);
            }
        }
    };
    // A tick for nodes `range`; B defers its own when it may, and A's
    // step of that tick must then be silent.
    let mut tick = |nodes: &mut Vec<RaftNode>,
                    b: &mut RaftNode,
                    queue: &mut Vec<Message>,
                    range: std::ops::Range<usize>,
                    round: u64| {
        for i in range {
            if i == 1 && b.defer_ticks(1) {
                let quiet: Vec<Action> = nodes[1].step(Event::Tick).map(Iterator::collect).unwrap_or_default();
                assert!(quiet.is_empty(), "seed {seed} round {round}: a deferred tick acted: {quiet:?}");
                deferred += 1;
                continue;
            }
            step(nodes, b, queue, i, Event::Tick);
        }
    };
    for round in 0..600u64 {
        match next(10) {
            // A tick for every node; B defers its own when it may.
            0..=4 => tick(&mut nodes, &mut b, &mut queue, 0..3, round),
            // A read on node 2 (forwarded to its leader, or failing).
            5 if next(2) == 0 => {
                step(&mut nodes, &mut b, &mut queue, 1, Event::Read { id: round, kind: ReadKind::Index })
            }
            // A proposal to whoever leads.
            5 => {
                if let Some(l) = nodes.iter().position(RaftNode::is_leader) {
                    step(&mut nodes, &mut b, &mut queue, l, Event::Propose(Bytes::from(format!("c{round}"))));
                }
            }
            // Node 1 silent for a while (its messages lost, ticks going on).
            6 => {
                for _ in 0..next(30) {
                    tick(&mut nodes, &mut b, &mut queue, 1..3, round);
                    queue.retain(|m| m.from != 1);
                }
            }
            // Deliver everything in flight, in a random order.
            _ => {
                while !queue.is_empty() {
                    let m = queue.swap_remove(next(queue.len() as u64) as usize);
                    let to = (m.to - 1) as usize;
                    step(&mut nodes, &mut b, &mut queue, to, Event::Message(m));
                }
            }
        }
    }
    assert!(deferred > 100, "seed {seed}: B deferred only {deferred} ticks");
}
