//! A simulated key-value cluster driven by arbitrary bytes: partitions,
//! crashes, snapshots, membership changes, reads, replayed and truncated
//! messages, messages from unknown nodes, and arbitrary frames decoded and
//! delivered as stale messages. The simulator panics on any violation of
//! Raft's five safety properties, and the clients' history must be
//! linearizable; libFuzzer reports either as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_io::sim::ByteScript;

fuzz_target!(|data: &[u8]| {
    let (_cluster, history) = ByteScript::new(data).run();
    if let Err(e) = history.check() {
        panic!("not linearizable:\n{e}");
    }
});
