//! Three threaded runtimes on `MemoryTransport` in one process, one client
//! proposing commands one after another: the round trip of a write when
//! nothing but the runtime stands between the nodes (no sockets, no disk).
//! The transport wakes each driver when a message arrives for it, so a
//! write does not wait for a polling interval.
//!
//! ```sh
//! cargo run --release --example memory_runtime --features net [-- PROPOSALS]
//! ```

use std::time::{Duration, Instant};

use raft_io::bytes::Bytes;
use raft_io::runtime::{RaftHandle, Runtime};
use raft_io::{MemoryTransport, RaftConfig, RaftNode};

#[path = "support/counter.rs"]
mod counter;
use counter::Counter;

const IDS: [u64; 3] = [1, 2, 3];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proposals: u32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let mut handles: Vec<RaftHandle<Counter>> = Vec::new();
    for (transport, id) in MemoryTransport::cluster(IDS).into_iter().zip(IDS) {
        let node = RaftNode::new(RaftConfig::new(id, IDS).seed(id).election_timeout(50, 100))?;
        handles
            .push(Runtime::new(node, transport, Counter::default()).tick_interval(Duration::from_millis(2)).start()?);
    }
    let leader = counter::await_leader(&handles, Duration::from_secs(60)).ok_or("no leader within 60 s")?;
    // Warm up, then time one proposal at a time.
    for _ in 0..100 {
        leader.propose(Bytes::from_static(b"warm-up"))?;
    }
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..proposals {
        last = leader.propose(Bytes::from_static(b"write"))?;
    }
    let each = started.elapsed().as_secs_f64() * 1e6 / f64::from(proposals);
    for h in &handles {
        h.shutdown();
    }
    println!("memory_runtime: 3 nodes, {proposals} sequential proposals, {each:.1} us each, last at index {last}");
    Ok(())
}
