//! A counting state machine, the cheapest useful one, for the examples that
//! measure or show the runtime rather than an application
//! (`memory_runtime`, `metrics_prometheus`, and the TCP benchmarks through
//! `loopback.rs`), and how to wait for one of their runtimes to lead.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use raft_io::bytes::Bytes;
use raft_io::runtime::{RaftHandle, StateMachine};

/// Counts applied commands; a command's output is its log index.
#[derive(Default)]
pub struct Counter(pub u64);

impl StateMachine for Counter {
    type Output = u64;
    fn apply(&mut self, index: u64, _command: &Bytes) -> u64 {
        self.0 += 1;
        index
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_be_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
    }
}

/// The runtime among `handles` that leads, polled until `within` has
/// passed (`None` then).
pub fn await_leader(handles: &[RaftHandle<Counter>], within: Duration) -> Option<RaftHandle<Counter>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(h) = handles.iter().find(|h| h.is_leader()) {
            return Some(h.clone());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
