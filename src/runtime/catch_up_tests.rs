//! Tick catch-up after a driver stall: the node's clock must not fall behind
//! real time, or a partitioned leader keeps a lease the rest of the cluster
//! has outlived. The driver reports the whole stall as one `Event::Ticks`.

use std::time::{Duration, Instant};

use super::driver::ticks_due;
use crate::node::{Action, Event, ReadKind};
use crate::{Message, RaftConfig, RaftNode};

#[test]
fn ticks_due_counts_every_missed_tick() {
    let t0 = Instant::now();
    let tick = Duration::from_millis(1);
    assert_eq!(ticks_due(t0, t0 - Duration::from_micros(10), tick), (0, t0));
    assert_eq!(ticks_due(t0, t0, tick), (1, t0 + tick));
    // Five ticks late: the one due at t0 and five more.
    assert_eq!(ticks_due(t0, t0 + 5 * tick + Duration::from_micros(1), tick), (6, t0 + 6 * tick));
    // An hour's stall counts every tick of it, in one step.
    let now = t0 + Duration::from_secs(3600);
    assert_eq!(ticks_due(t0, now, tick), (3_600_001, t0 + 3_600_001 * tick));
    // A zero tick length cannot divide by zero.
    assert!(ticks_due(t0, now, Duration::ZERO).0 > 0);
}

fn config(id: u64) -> RaftConfig {
    RaftConfig::new(id, [1, 2, 3]).seed(id).election_timeout(2000, 4000).heartbeat_interval(100).lease_reads(true)
}

/// Steps `event` on node `at` and returns the messages it sends and whether
/// read `id` was released.
fn step(nodes: &mut [RaftNode], at: usize, event: Event, read: u64) -> (Vec<Message>, bool) {
    let mut sent = Vec::new();
    let mut released = false;
    for action in nodes[at].step(event).unwrap_or_else(|e| panic!("node {}: {e}", at + 1)) {
        match action {
            Action::Send { message, .. } => sent.push(message),
            Action::ReadReady { id, .. } if id == read => released = true,
            _ => {}
        }
    }
    (sent, released)
}

/// Delivers messages until none are left.
fn settle(nodes: &mut [RaftNode], mut queue: Vec<Message>) {
    for _ in 0..100_000 {
        let Some(m) = queue.pop() else { return };
        let to = (m.to - 1) as usize;
        let (more, _) = step(nodes, to, Event::Message(m), 0);
        queue.extend(more);
    }
    panic!("messages never settled");
}

#[test]
fn a_stall_longer_than_the_limit_ends_the_lease() {
    let mut nodes: Vec<RaftNode> = (1..=3).map(|id| RaftNode::new(config(id)).unwrap()).collect();
    // Tick everyone, delivering everything, until a leader is elected.
    let mut leader = None;
    for _ in 0..10_000 {
        for at in 0..3 {
            let (sent, _) = step(&mut nodes, at, Event::Tick, 0);
            settle(&mut nodes, sent);
        }
        leader = nodes.iter().position(|n| n.is_leader());
        if leader.is_some() {
            break;
        }
    }
    let l = leader.expect("a leader within 10 000 ticks");
    // A heartbeat round answered by everyone gives the leader its lease.
    for _ in 0..100 {
        let (sent, _) = step(&mut nodes, l, Event::Tick, 0);
        settle(&mut nodes, sent);
    }
    let (_, released) = step(&mut nodes, l, Event::Read { id: 1, kind: ReadKind::Lease }, 1);
    assert!(released, "the leader serves a lease read while its lease holds");

    // The driver stalls for a whole election timeout while the leader is cut
    // off; on waking it reports the gap as one event, and what it sends
    // arrives nowhere.
    let stall = nodes[l].config().election_timeout_max + 1;
    let (sent, _) = step(&mut nodes, l, Event::Ticks(stall), 0);
    assert!(sent.len() <= 2, "one heartbeat round at most, not one per interval: {sent:?}");
    // Refused outright (no leader known) or not released: either way no
    // read is served from a lease.
    let released = nodes[l]
        .step(Event::Read { id: 2, kind: ReadKind::Lease })
        .is_ok_and(|mut actions| actions.any(|a| matches!(a, Action::ReadReady { id: 2, .. })));
    assert!(!released, "after the stall no lease may remain");
    assert!(!nodes[l].is_leader(), "check-quorum deposed the cut-off leader");
}
