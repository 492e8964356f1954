//! The node's layout keeps what nearly every step reads together (the
//! struct is `repr(C)`, its fields in the order written): a host with
//! thousands of groups finds a group's node cold in the cache, and each
//! line a step touches is a miss. This guards the order against an edit
//! that would scatter the hot fields again.

use std::mem::{offset_of, size_of};

use super::RaftNode;
use crate::log::MemoryLog;

type Node = RaftNode<MemoryLog>;

/// The timers, terms, indexes and flags that a step (and a host's
/// deferred tick) reads come before everything else, in four cache lines.
#[test]
fn the_fields_every_step_reads_lie_in_the_first_four_lines() {
    let hot = [
        offset_of!(Node, id),
        offset_of!(Node, term),
        offset_of!(Node, commit),
        offset_of!(Node, applied),
        offset_of!(Node, ticks),
        offset_of!(Node, election_elapsed),
        offset_of!(Node, election_timeout),
        offset_of!(Node, heartbeat_elapsed),
        offset_of!(Node, owed_ticks),
        offset_of!(Node, quiet_limit),
        offset_of!(Node, step_bytes),
        offset_of!(Node, vote),
        offset_of!(Node, leader),
        offset_of!(Node, leader_contact),
        offset_of!(Node, configs),
        offset_of!(Node, removed),
        offset_of!(Node, vote_cooldown),
        offset_of!(Node, term_start),
        offset_of!(Node, role),
        offset_of!(Node, halted),
        offset_of!(Node, must_sync),
        offset_of!(Node, restore_pending),
        offset_of!(Node, reported),
    ];
    for at in hot {
        assert!(at < 4 * 64, "a hot field at byte {at}");
    }
    // A host's tick of a quiet follower reads four fields (the deferral,
    // then the role for quiescence): the first 25 bytes.
    for at in [
        offset_of!(Node, election_elapsed),
        offset_of!(Node, owed_ticks),
        offset_of!(Node, quiet_limit),
        offset_of!(Node, role),
    ] {
        assert!(at < 25, "a field of a host's tick at byte {at}");
    }
    // The per-step buffers and the write tracking follow, before the log
    // and the rarely read state.
    assert!(offset_of!(Node, out) < offset_of!(Node, durability));
    assert!(offset_of!(Node, durability) < offset_of!(Node, log));
    assert!(offset_of!(Node, log) < offset_of!(Node, cfg));
    // A leader's tick and the end of its every step look at the transfer
    // in progress: beside the output buffer they write, in the line after
    // the hot ones.
    assert!(offset_of!(Node, transfer) > offset_of!(Node, out));
    assert!(offset_of!(Node, transfer) + size_of::<Option<super::reconfig::Transfer>>() <= 5 * 64);
    for cold in [offset_of!(Node, rng), offset_of!(Node, votes), offset_of!(Node, incoming)] {
        assert!(cold > offset_of!(Node, cfg), "a rarely read field at byte {cold}");
    }
}
