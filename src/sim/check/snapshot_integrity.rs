//! **Snapshot Integrity**: a snapshot a node restores into its state
//! machine holds exactly the bytes a state machine produced for that index
//! (Raft §7: a snapshot stands for the committed prefix it replaces). Every
//! snapshot taken in the simulation is registered by its index and a hash of
//! its bytes; a restore at an index must carry bytes registered there. It
//! catches a snapshot damaged anywhere between the state machine that took
//! it and the one that restores it: on disk, in a log that serves it
//! without checking it, in a stream.
//!
//! (State Machine Safety compares the restored state's digest, which a
//! state machine may compute from part of its state only; this checker
//! needs nothing from the state machine.)

use std::collections::HashMap;

use super::Violation;
use crate::sim::state_machine::fnv1a;
use crate::types::{Index, NodeId};

/// The hashes of the snapshots taken at each index (usually one: a
/// deterministic state machine serializes equal states alike).
#[derive(Clone, Debug, Default)]
pub(crate) struct SnapshotIntegrity {
    taken: HashMap<Index, Vec<u64>>,
}

impl SnapshotIntegrity {
    /// A state machine's snapshot at `index`.
    pub(crate) fn taken(&mut self, index: Index, data: &[u8]) {
        let hash = fnv1a(index, data);
        let hashes = self.taken.entry(index).or_default();
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
    }

    /// Node `node` restores `data` as its state at `index`.
    pub(crate) fn check_restore(&self, node: NodeId, index: Index, data: &[u8]) -> Result<(), Violation> {
        let hash = fnv1a(index, data);
        match self.taken.get(&index) {
            Some(hashes) if hashes.contains(&hash) => Ok(()),
            Some(_) => Err(Violation::new(
                "Snapshot Integrity",
                format!(
                    "node {node} restored {} bytes at index {index} that differ from every snapshot taken there",
                    data.len()
                ),
            )),
            None => Err(Violation::new(
                "Snapshot Integrity",
                format!("node {node} restored a snapshot at index {index}, where no state machine took one"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_or_unknown_snapshots_are_caught() {
        let mut c = SnapshotIntegrity::default();
        c.taken(7, b"state at 7");
        c.check_restore(1, 7, b"state at 7").unwrap();
        assert_eq!(c.check_restore(1, 7, b"state at 7!").unwrap_err().property, "Snapshot Integrity");
        assert!(c.check_restore(1, 8, b"state at 7").is_err());
    }
}
