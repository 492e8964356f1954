//! Heap allocations per entry, counted by a counting global allocator, for
//! the runs `benches/cluster.rs` times (3 nodes through the simulator,
//! pipelined, snapshots every 100 000 entries) and for a single-node
//! propose-commit-apply. Prints a Markdown table; asserts nothing (the
//! promises are asserted by `tests/alloc.rs`).
//!
//! `cargo bench --features sim --bench alloc_per_entry`
//!
//! Two kinds of commands:
//! * **pre-shared**: clones of one `Bytes` whose buffer is already shared
//!   (as a command sliced out of a received frame is), so cloning a command
//!   never allocates and every allocation counted is raft-io's, the
//!   simulator's or the driver's proposal vector;
//! * **fresh `Vec`**: each command is a new `Bytes::from(Vec<u8>)`. Building
//!   it allocates the `Vec` (the driver's), and such a `Bytes` allocates
//!   once more, on its first clone, to become shared. That clone happens
//!   inside raft-io (replication or apply), so it is counted on raft-io's
//!   side, but it is the price of the caller's choice of buffer.
//!
//! Allocations made while the driver builds a proposal are reported apart
//! ("driver"); everything else ("raft-io + sim") is made inside the nodes'
//! steps and the simulator. Figures are recorded in `docs/BENCHMARKS.md`.

mod common;

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::cell::Cell;

use bytes::Bytes;
use common::{Pipeline, proposal, shared_command};
use counting_alloc::{CountingAllocator, allocations, count_allocations};
use raft_io::{Action, Event, RaftConfig, RaftNode};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

thread_local! {
    /// Allocations attributed to the driver (building proposals).
    static DRIVER: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with its allocations attributed to the driver.
fn as_driver<R>(f: impl FnOnce() -> R) -> R {
    let (r, n) = count_allocations(f);
    DRIVER.with(|d| d.set(d.get() + n));
    r
}

/// (total, driver's) allocations made by `f`.
fn counted(f: impl FnOnce()) -> (u64, u64) {
    let (t0, d0) = (allocations(), DRIVER.with(Cell::get));
    f();
    (allocations() - t0, DRIVER.with(Cell::get) - d0)
}

#[derive(Clone, Copy)]
enum Commands {
    PreShared,
    FreshVec,
}

impl Commands {
    fn name(self) -> &'static str {
        match self {
            Self::PreShared => "pre-shared",
            Self::FreshVec => "fresh `Vec`",
        }
    }

    /// A source of proposal events of `batch` commands of `size` bytes.
    fn source(self, batch: usize, size: usize) -> impl FnMut() -> Event {
        let shared = shared_command(size);
        move || match self {
            Self::PreShared => proposal(batch, &shared),
            Self::FreshVec if batch == 1 => Event::Propose(Bytes::from(vec![7u8; size])),
            Self::FreshVec => Event::ProposeBatch((0..batch).map(|_| Bytes::from(vec![7u8; size])).collect()),
        }
    }
}

fn row(what: &str, batch: usize, size: usize, commands: Commands, entries: u64, (total, driver): (u64, u64)) {
    let per = |n: u64| n as f64 / entries as f64;
    println!(
        "| {what} | {batch} | {size} B | {} | {:.3} | {:.3} | {:.3} | {:.2} |",
        commands.name(),
        per(total),
        per(driver),
        per(total - driver),
        per(total - driver) * batch as f64,
    );
}

/// Entries counted per cluster run, after a warm-up of the same length
/// (several snapshots per node either way).
const CLUSTER_ENTRIES: u64 = 400_000;

fn cluster(batch: usize, size: usize, commands: Commands) {
    let mut pipeline = Pipeline::new(batch);
    let mut source = commands.source(batch, size);
    let mut next = || as_driver(&mut source);
    pipeline.run(CLUSTER_ENTRIES, &mut next);
    let counts = counted(|| pipeline.run(CLUSTER_ENTRIES, &mut next));
    row("3-node cluster (sim)", batch, size, commands, CLUSTER_ENTRIES, counts);
}

/// Entries counted per single-node run, after a warm-up of the same length.
const SINGLE_ENTRIES: u64 = 1 << 20;

fn single(batch: usize, size: usize, commands: Commands) {
    let config = RaftConfig::single(1).snapshot_entries(common::SNAPSHOT_ENTRIES);
    let mut node = RaftNode::new(config).unwrap();
    node.step(Event::Campaign).unwrap().for_each(drop);
    assert!(node.is_leader());
    let mut source = commands.source(batch, size);
    let mut run = |node: &mut RaftNode, entries: u64| {
        let mut applied = 0u64;
        let mut wanted = None;
        while applied < entries {
            let event = as_driver(&mut source);
            for action in node.step(event).unwrap() {
                match action {
                    Action::Apply { .. } => applied += 1,
                    Action::SnapshotWanted { applied } => wanted = Some(applied),
                    _ => {}
                }
            }
            if let Some(index) = wanted.take() {
                node.step(Event::Snapshot { index, data: Bytes::new() }).unwrap().for_each(drop);
            }
        }
    };
    run(&mut node, SINGLE_ENTRIES);
    let counts = counted(|| run(&mut node, SINGLE_ENTRIES));
    row("single node", batch, size, commands, SINGLE_ENTRIES, counts);
}

fn main() {
    println!(
        "| run | batch | command | commands | allocations per entry | driver's | raft-io + sim | raft-io + sim per batch |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for commands in [Commands::PreShared, Commands::FreshVec] {
        for batch in [1, 64] {
            for size in [16, 1024] {
                cluster(batch, size, commands);
            }
        }
    }
    for commands in [Commands::PreShared, Commands::FreshVec] {
        for batch in [1, 64] {
            single(batch, 16, commands);
        }
    }
}
