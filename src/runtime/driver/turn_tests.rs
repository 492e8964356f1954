//! The driver turn by turn, on a clock the test sets (no thread, no
//! sleep): what a turn reports as leaving more work.

use std::time::Instant;

use bytes::Bytes;

use super::build;
use crate::runtime::{RuntimeOptions, StateMachine};
use crate::transport::MemoryTransport;
use crate::{MemoryLog, RaftConfig, RaftNode};

struct Nothing;

impl StateMachine for Nothing {
    type Output = ();
    fn apply(&mut self, _index: u64, _command: &Bytes) {}
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _data: &Bytes) {}
}

/// A single node in the asynchronous storage mode on a log without a
/// completion notifier: the driver reports the turn's writes itself. The
/// step that reports the vote's write wins the election and submits the
/// no-op: that turn must say it left work, or the driver would wait up to
/// a tick before making the no-op durable and committing it.
#[test]
fn a_write_submitted_by_the_report_of_the_last_one_keeps_the_driver_turning() {
    let config = RaftConfig::single(1).async_storage(true);
    let node = RaftNode::with_log(config, MemoryLog::new().with_async_writes()).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let options = RuntimeOptions::default();
    let tick = options.common.tick_interval;
    let mut driver = build(node, transport, Nothing, options).unwrap();
    let start = Instant::now();
    let (mut now, mut next_tick) = (start, start + tick);
    let mut turns = 0;
    let busy = loop {
        now += tick;
        let (busy, next) = driver.turn(next_tick, || now);
        next_tick = next;
        if driver.node.is_leader() {
            break busy;
        }
        turns += 1;
        assert!(turns < 1000, "never elected");
    };
    assert_eq!(driver.node.commit_index(), 0, "the no-op is not durable yet");
    assert!(busy, "the turn that won left its no-op unreported and said it was idle");
    // The next turn, with no tick due, makes it durable and commits it.
    let (_, _) = driver.turn(next_tick, || now);
    assert_eq!(driver.node.commit_index(), 1);
}
