//! A counting state machine, the cheapest useful one, for the examples that
//! measure or show the runtime rather than an application
//! (`memory_runtime`, `metrics_prometheus`, and the TCP benchmarks through
//! `loopback.rs`).
#![allow(dead_code)]

use raft_io::bytes::Bytes;
use raft_io::runtime::StateMachine;

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
