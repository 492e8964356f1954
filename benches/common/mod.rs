//! The pipelined 3-node driver shared by `benches/cluster.rs` (time) and
//! `benches/alloc_per_entry.rs` (allocations), so both measure the same runs.
//!
//! The cluster is `raft_io::sim::Cluster` with no faults, no safety checks
//! and no trace, running [`Count`] (a state machine that only adds up the
//! bytes it applied). Every node compacts its log when it has applied
//! [`SNAPSHOT_ENTRIES`] entries since its last snapshot, so the log stays
//! bounded however long a run is. The driver keeps the pipeline full: it
//! proposes a batch whenever fewer than a window of entries are proposed but
//! not yet applied on every node, and otherwise lets the simulator deliver
//! the next message or tick.

use bytes::Bytes;
use raft_io::sim::{Cluster, SimConfig, StateMachine};
use raft_io::{Event, Index, NodeId};

/// Entries applied between two snapshots of a node.
pub const SNAPSHOT_ENTRIES: u64 = 100_000;

/// Batches proposed but not yet applied everywhere that the driver allows.
pub const WINDOW_BATCHES: u64 = 8;

/// The cluster's nodes.
const IDS: [NodeId; 3] = [1, 2, 3];

/// A state machine that counts the bytes it applied.
#[derive(Default)]
pub struct Count(pub u64);

impl StateMachine for Count {
    type Output = ();
    fn apply(&mut self, _index: Index, command: &Bytes) {
        self.0 += command.len() as u64;
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }

    fn restore(&mut self, data: &Bytes) {
        self.0 = data.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
    }

    fn digest(&self) -> u64 {
        self.0
    }
}

/// A 3-node simulated cluster with an elected leader, driven in a pipeline.
pub struct Pipeline {
    /// The simulated cluster.
    pub cluster: Cluster<Count>,
    /// The leader proposals go to.
    pub leader: NodeId,
    window: u64,
}

impl Pipeline {
    /// A fresh cluster with a leader that has committed its first entry, to
    /// be driven with proposals of `batch` entries. Messages are stepped one
    /// at a time (no `Event::Messages` bursts), so the simulator allocates
    /// nothing per message and the allocation counts are raft-io's.
    pub fn new(batch: usize) -> Self {
        let config = SimConfig::new(IDS.len())
            .seed(1)
            .checks(false)
            .trace(0)
            .bursts(false)
            .configure(|c| c.snapshot_entries(SNAPSHOT_ENTRIES));
        let mut cluster = Cluster::with_state_machines(config, |_| Count::default());
        let leader = cluster.elect(1_000).expect("a leader is elected on a reliable network");
        Self { cluster, leader, window: WINDOW_BATCHES * batch as u64 }
    }

    /// The lowest applied index over the three nodes.
    pub fn min_applied(&self) -> Index {
        IDS.iter().map(|&id| self.cluster.node(id).map_or(0, |n| n.last_applied())).min().unwrap_or(0)
    }

    /// Runs until `entries` more entries are applied on every node,
    /// proposing through `next` (which returns an `Event::Propose` or
    /// `Event::ProposeBatch` of `batch` commands) while fewer than the
    /// window are unapplied. The pipeline is left full for the next call.
    pub fn run(&mut self, entries: u64, mut next: impl FnMut() -> Event) {
        let target = self.min_applied() + entries;
        loop {
            let applied = self.min_applied();
            if applied >= target {
                return;
            }
            let last = self.cluster.node(self.leader).map_or(0, |n| n.last_index());
            if last - applied < self.window {
                if let Err(e) = self.cluster.step_node(self.leader, next()) {
                    panic!("proposal refused on a fault-free cluster: {e}");
                }
            } else {
                self.cluster.step();
            }
        }
    }
}

/// A command of `size` bytes whose buffer is already shared, so cloning it
/// never allocates (what a command sliced out of a received frame is).
pub fn shared_command(size: usize) -> Bytes {
    let command = Bytes::from(vec![7u8; size]);
    // The first clone moves a `Vec`-built `Bytes` to shared storage.
    drop(command.clone());
    command
}

/// The proposal event for `batch` copies of `command`.
pub fn proposal(batch: usize, command: &Bytes) -> Event {
    if batch == 1 { Event::Propose(command.clone()) } else { Event::ProposeBatch(vec![command.clone(); batch]) }
}
