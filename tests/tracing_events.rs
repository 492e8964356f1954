//! The `tracing` feature: a subscriber of the test's own captures what a
//! three-node cluster reports — role changes with their reason, elections,
//! membership proposed and committed, snapshots sent and installed — and
//! checks the fields. Nothing on the per-entry path is above `trace`.

mod common;

#[path = "support/tracing_capture.rs"]
mod tracing_capture;

use bytes::Bytes;
use common::Harness;
use raft_io::{Event, MembershipChange, MemoryLog, RaftConfig};
use tracing::Level;
use tracing_capture::{Capture, Captured};

fn find<'a>(events: &'a [Captured], message: &str) -> Vec<&'a Captured> {
    events.iter().filter(|e| e.message() == message).collect()
}

#[test]
fn a_cluster_reports_roles_elections_membership_and_snapshots() {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let mut h = Harness::new(3, |c| c);
        h.campaign(1);
        for i in 0..20 {
            h.propose(1, &format!("cmd{i}")).unwrap();
        }
        h.deliver_all();
        h.tick_all(2);
        // A snapshot on the leader, then a joiner that needs it.
        let applied = h.node(1).last_applied();
        h.step(1, Event::Snapshot { index: applied, data: Bytes::from_static(b"state") }).unwrap();
        h.add(4, RaftConfig::joining(4).seed(4), MemoryLog::new());
        h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(4))).unwrap();
        h.deliver_all();
        h.tick_all(4);
        // Check-quorum: the leader cut off steps down.
        h.isolate(1);
        h.tick(1, 30);
    });
    let events = capture.events();

    let roles = find(&events, "role changed");
    let leader = roles.iter().find(|e| e.fields["node"] == "1" && e.fields["role"] == "Leader").expect("n1 leads");
    assert_eq!(leader.fields["reason"], "election won");
    assert_eq!(leader.fields["term"], "1");
    assert_eq!(leader.level, Level::INFO);
    assert!(roles.iter().any(|e| e.fields["node"] == "2" && e.fields["reason"] == "higher term"));
    let stepped_down = roles.iter().find(|e| e.fields["node"] == "1" && e.fields["role"] == "Follower");
    assert_eq!(stepped_down.expect("n1 stepped down").fields["reason"], "check-quorum");

    let elections = find(&events, "election started");
    assert!(elections.iter().any(|e| e.fields["node"] == "1" && e.fields["pre_vote"] == "true"));

    let proposed = find(&events, "leader entry appended (configuration change or no-op)");
    assert!(proposed.iter().any(|e| e.fields["kind"] == "Config"));
    let committed = find(&events, "membership committed");
    assert!(committed.iter().any(|e| e.fields["node"] == "4" && e.fields["membership"].contains("learners: [4]")));

    let sent = find(&events, "snapshot send started");
    assert!(sent.iter().any(|e| e.fields["node"] == "1" && e.fields["to"] == "4"), "{sent:?}");
    assert!(find(&events, "snapshot installed").iter().any(|e| e.fields["node"] == "4"));
    assert!(find(&events, "snapshot taken; log compacted").iter().any(|e| e.fields["node"] == "1"));

    // Every event names its node and term; none but trace per entry: the
    // 20 proposals produced no event of their own.
    for e in &events {
        assert!(e.fields.contains_key("node"), "{e:?}");
        assert!(e.fields.contains_key("term") || e.message().starts_with("transport"), "{e:?}");
    }
    assert!(events.len() < 60, "a handful of events, not one per entry: {}", events.len());
}

#[cfg(feature = "persistence")]
#[test]
fn a_storage_failure_is_reported_as_an_error() {
    use raft_io::log::wal::{FaultInjector, WalOptions};
    use raft_io::{RaftNode, WalLog};
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let log = WalLog::open_with(dir.path(), WalOptions::new().fault_injector(faults.clone())).unwrap();
    let mut node = RaftNode::with_log(RaftConfig::single(7), log).unwrap();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        node.step(Event::Campaign).unwrap().for_each(drop);
        faults.fail_next_sync();
        assert!(node.step(Event::Propose(Bytes::from_static(b"x"))).is_err());
    });
    let events = capture.events();
    let halted = find(&events, "storage failure: node halted");
    assert_eq!(halted.len(), 1, "{events:?}");
    assert_eq!((halted[0].level, halted[0].fields["node"].as_str()), (Level::ERROR, "7"));
    assert!(!halted[0].fields["error"].is_empty());
}

/// A follower restarted on an empty log under its old id refuses what it
/// acknowledged: the leader warns, naming the follower and the index.
#[test]
fn a_follower_that_lost_acknowledged_entries_is_a_warning() {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        let mut h = Harness::new(3, |c| c);
        h.campaign(1);
        h.tick_all(1);
        h.propose(1, "x").unwrap();
        h.deliver_all();
        h.tick_all(1);
        h.crash(3);
        h.destroy(3);
        h.add(3, RaftConfig::new(3, vec![1, 2, 3]).seed(3 * 7919), MemoryLog::new());
        h.propose(1, "y").unwrap();
        h.deliver_all();
        h.tick_all(10);
    });
    let events = capture.events();
    let lost = find(
        &events,
        "a follower refused entries it had acknowledged: its log lost durable entries; remove it and add it back",
    );
    assert!(!lost.is_empty(), "{events:?}");
    let e = lost[0];
    assert_eq!((e.level, e.fields["node"].as_str(), e.fields["follower"].as_str()), (Level::WARN, "1", "3"));
    assert_eq!(e.fields["matched"], "2", "the no-op and `x`");
}
