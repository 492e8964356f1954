//! A follower a million entries behind catches up through a streamed
//! snapshot, not through a million appends.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::Harness;
use raft_io::{Action, Event, RaftLog};

#[test]
fn a_follower_a_million_entries_behind_catches_up_by_snapshot() {
    let total: u64 = std::env::var("RAFT_IO_CATCHUP_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut h = Harness::new(3, |c| c.max_message_bytes(64 << 10).max_uncommitted_bytes(1 << 30));
    h.campaign(1);
    h.tick_all(1);
    h.isolate(3);
    let command = Bytes::from_static(b"0123456789abcdef");
    let batch = 1_000;
    let started = Instant::now();
    for _ in 0..total / batch {
        h.step(1, Event::ProposeBatch(vec![command.clone(); batch as usize])).unwrap();
        h.deliver_all();
    }
    h.tick_all(1);
    // The application state after a million commands: 4 MiB, say.
    let state = Bytes::from(vec![7u8; 4 << 20]);
    for id in [1, 2] {
        let index = h.node(id).last_applied();
        h.step(id, Event::Snapshot { index, data: state.clone() }).unwrap();
        h.applied.get_mut(&id).unwrap().clear();
    }
    let leader_log = h.node(1).log();
    assert!(leader_log.first_index() > total, "the leader compacted everything");
    let appended = started.elapsed();

    h.heal();
    h.clear_actions();
    let started = Instant::now();
    let mut ticks = 0;
    while h.node(3).last_applied() < h.node(1).commit_index() {
        h.tick_all(1);
        ticks += 1;
        assert!(ticks < 200, "no catch-up after {ticks} ticks");
    }
    let caught_up = started.elapsed();
    let restored = h.actions.iter().filter(|(id, a)| *id == 3 && matches!(a, Action::RestoreSnapshot { .. })).count();
    let appends_to_3 = h.actions.iter().filter(
        |(_, a)| matches!(a, Action::Send { message, .. } if message.to == 3 && message.body.name() == "Append"),
    );
    assert_eq!(restored, 1);
    assert!(h.applied[&3].is_empty(), "no entry was replayed one by one");
    assert!(appends_to_3.count() < 20);
    assert_eq!(h.node(3).log().snapshot_data().unwrap(), state);
    println!(
        "{total} entries appended in {appended:?}; follower caught up by snapshot in {ticks} ticks, {caught_up:?}"
    );
}
