//! The workloads and what one run of one of them reports.

use std::time::{Duration, Instant};

use crate::alloc;

/// One workload of the comparison (docs/BENCHMARKS.md, "Against the peers").
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Its name in the table.
    pub name: &'static str,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Bytes per command.
    pub command_bytes: usize,
    /// Commands proposed per round (as one batch where the library has one).
    pub batch: usize,
    /// Commands in the run.
    pub entries: u64,
    /// Whether every delivered message goes through the library's wire codec.
    pub codec: bool,
}

impl Workload {
    /// The size of each round's proposal, in order (the last round takes
    /// what remains when the batch does not divide the run).
    pub fn rounds(&self) -> impl Iterator<Item = usize> + use<> {
        let (entries, batch) = (self.entries, self.batch as u64);
        (0..entries.div_ceil(batch)).map(move |r| (entries - r * batch).min(batch) as usize)
    }
}

/// The workloads, scaled by `scale` (1.0 is the documented size).
pub fn all(scale: f64) -> Vec<Workload> {
    let n = |e: u64| ((e as f64 * scale) as u64).max(64);
    vec![
        Workload { name: "W1", nodes: 1, command_bytes: 16, batch: 1, entries: n(200_000), codec: false },
        Workload { name: "W2", nodes: 3, command_bytes: 16, batch: 1, entries: n(200_000), codec: false },
        Workload { name: "W3", nodes: 3, command_bytes: 16, batch: 64, entries: n(200_000), codec: false },
        Workload { name: "W4", nodes: 3, command_bytes: 1024, batch: 64, entries: n(50_000), codec: false },
        Workload { name: "W4c", nodes: 3, command_bytes: 1024, batch: 64, entries: n(50_000), codec: true },
    ]
}

/// A fresh command: a new buffer of `len` bytes that names its sequence
/// number, so no two commands share a buffer.
pub fn command(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v
}

/// What one run measured (the timed region only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Wall time from the first proposal until every node applied every entry.
    pub elapsed: Duration,
    /// Allocations (and reallocations) in that time, every node and the driver.
    pub allocs: u64,
    /// Minor page faults of the process in the run (memory the system
    /// had to hand over, zeroed, for the first time or again after the
    /// allocator gave it back); 0 where the system does not report them.
    pub faults: u64,
    /// Messages delivered in that time.
    pub messages: u64,
    /// Ticks the driver gave each node after the last proposal for the
    /// followers to learn the final commit index.
    pub tail_ticks: u64,
}

impl Stats {
    /// What a run that started at `t0`, with the allocation count at `a0`,
    /// measured now (its page faults are read around it by the caller).
    pub fn since(t0: Instant, a0: u64, messages: u64, tail_ticks: u64) -> Self {
        Stats { elapsed: t0.elapsed(), allocs: alloc::count() - a0, messages, tail_ticks, faults: 0 }
    }
}

/// One library under test: a cluster it can set up (untimed) and run (timed).
pub trait Subject {
    /// The library's name in the table.
    const NAME: &'static str;
    /// A cluster for `w` with a leader elected and every node caught up.
    fn setup(w: &Workload) -> Self;
    /// Runs `w` and reports the timed region. `timed` brackets that region.
    fn run(&mut self, w: &Workload) -> Stats;
}
