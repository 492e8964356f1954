//! A simulated key-value cluster driven by arbitrary bytes: partitions,
//! crashes, snapshots, membership changes, reads, replayed and truncated
//! messages, messages from unknown nodes, and arbitrary frames decoded and
//! delivered as stale messages. The simulator panics on any violation of
//! Raft's five safety properties, which libFuzzer reports as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_io::sim::ByteScript;

fuzz_target!(|data: &[u8]| {
    ByteScript::new(data).run();
});
