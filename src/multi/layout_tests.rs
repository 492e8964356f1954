//! A host's group starts on a cache line, and what a tick reads fills that
//! line: with a thousand groups each one is cold in the cache, and every
//! line a tick or a step touches is a miss.

use std::mem::{align_of, offset_of};

use super::host::Group;
use crate::log::MemoryLog;

type G = Group<MemoryLog>;

/// The quiescence state, the range flag and the node's first 24 bytes
/// (the fields a deferred tick reads, `node::layout_tests`) make up the
/// group's first line; the node's hot fields start with the second.
#[test]
fn a_tick_reads_one_line_and_the_node_s_hot_fields_start_the_next() {
    assert_eq!(align_of::<G>(), 64);
    assert_eq!(offset_of!(G, quiet), 0);
    assert!(offset_of!(G, ranges_queued) < offset_of!(G, node));
    assert_eq!(offset_of!(G, node) + 24, 64);
}
