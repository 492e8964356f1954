//! **Apply Order** (Raft §5.3, §8): a server applies committed entries to
//! its state machine in log order, each once. While a node runs, its
//! applied index never moves back: it hands each command to the state
//! machine at a higher index than the one before, and a snapshot it restores
//! lies at or past what it already applied (a restore further back would
//! rewind the state machine and apply entries a second time). A restart
//! starts over: the state machine is volatile.
//!
//! And none is skipped: after each step, the commands a node applied in it
//! and the configurations it reported committed
//! (`Action::MembershipCommitted`) are exactly the `Normal` and `Config`
//! entries of its log between the applied index before the step (or the
//! snapshot it restored in the step) and after it.

use std::collections::BTreeMap;

use super::{NodeView, Violation};
use crate::log::RaftLog;
use crate::types::{Entry, EntryKind, Index, NodeId};

/// Per running node: the applied index after its last step, the index of
/// the last command it applied, and what it applied in the current step.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApplyOrder {
    nodes: BTreeMap<NodeId, Position>,
}

#[derive(Clone, Debug, Default)]
struct Position {
    applied: Index,
    last_command: Index,
    /// The commands applied and configurations reported since the last
    /// `check_complete`, after the last snapshot restored.
    step_commands: Vec<Index>,
    /// A snapshot restored since the last `check_complete`.
    restored: Option<Index>,
}

impl ApplyOrder {
    /// Node `id` (re)started: its state machine starts over.
    pub(crate) fn restart(&mut self, id: NodeId) {
        self.nodes.remove(&id);
    }

    /// A command applied at `index`.
    pub(crate) fn check_apply(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        self.handed_over(node, index, "applied")
    }

    /// A configuration entry at `index` reported committed.
    pub(crate) fn check_config(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        self.handed_over(node, index, "reported the configuration at")
    }

    fn handed_over(&mut self, node: NodeId, index: Index, what: &str) -> Result<(), Violation> {
        let p = self.nodes.entry(node).or_default();
        if index <= p.last_command {
            return Err(Violation::new(
                "Apply Order",
                format!("node {node} {what} index {index} after index {}", p.last_command),
            ));
        }
        p.last_command = index;
        p.step_commands.push(index);
        Ok(())
    }

    /// After a step of node `id` (before [`check_state`](Self::check_state)
    /// records it), whose applied index is now `applied` and whose log is
    /// `log`: the commands it applied and the configurations it reported in
    /// the step are the command and configuration entries its applied index
    /// passed, each once, none skipped.
    pub(crate) fn check_complete(&mut self, id: NodeId, applied: Index, log: &impl RaftLog) -> Result<(), Violation> {
        let p = self.nodes.entry(id).or_default();
        let from = p.restored.take().unwrap_or(p.applied);
        let mut done = std::mem::take(&mut p.step_commands);
        // Entries compacted away since they were applied (a snapshot taken
        // in the same step, or by a driver that checks after several
        // steps) cannot be read back: only the rest is compared.
        let lo = (from + 1).max(log.first_index());
        done.retain(|&i| i >= lo);
        let mut expected = Vec::new();
        if applied >= lo {
            let read = log.visit_entries(lo, applied + 1, &mut |entries: &[Entry]| {
                expected.extend(entries.iter().filter(|e| e.kind != EntryKind::Noop).map(|e| e.index));
            });
            if let Err(e) = read {
                return Err(Violation::new(
                    "Apply Order",
                    format!("node {id} applied through {applied}, but its log cannot show {lo}..={applied}: {e}"),
                ));
            }
        }
        let result = if done == expected {
            Ok(())
        } else {
            let missed: Vec<Index> = expected.iter().filter(|i| !done.contains(i)).copied().take(8).collect();
            let extra: Vec<Index> = done.iter().filter(|i| !expected.contains(i)).copied().take(8).collect();
            Err(Violation::new(
                "Apply Order",
                format!(
                    "node {id} took its applied index from {from} to {applied}; commands and configurations it \
                     skipped: {missed:?}, handed over outside that range: {extra:?} ({} handed over, {} in the log)",
                    done.len(),
                    expected.len()
                ),
            ))
        };
        done.clear();
        p.step_commands = done;
        result
    }

    /// A snapshot restored at `index`.
    pub(crate) fn check_restore(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        let p = self.nodes.entry(node).or_default();
        let applied = p.applied.max(p.last_command);
        if index < applied {
            return Err(Violation::new(
                "Apply Order",
                format!("node {node} restored a snapshot at index {index} after applying through {applied}"),
            ));
        }
        p.last_command = index;
        p.restored = Some(index);
        p.step_commands.clear();
        Ok(())
    }

    /// The node's applied index after a step.
    pub(crate) fn check_state(&mut self, view: NodeView) -> Result<(), Violation> {
        let p = self.nodes.entry(view.id).or_default();
        if view.applied < p.applied {
            return Err(Violation::new(
                "Apply Order",
                format!("node {}'s applied index moved back from {} to {}", view.id, p.applied, view.applied),
            ));
        }
        p.applied = view.applied;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Role;

    fn view(id: NodeId, applied: Index) -> NodeView {
        NodeView { id, role: Role::Follower, term: 1, commit: applied, applied, digest: 0 }
    }

    #[test]
    fn applying_or_restoring_backwards_is_caught_and_a_restart_starts_over() {
        let mut c = ApplyOrder::default();
        c.check_apply(1, 3).unwrap();
        c.check_apply(1, 5).unwrap();
        c.check_state(view(1, 6)).unwrap();
        assert_eq!(c.check_apply(1, 5).unwrap_err().property, "Apply Order");
        c.check_restore(1, 6).unwrap();
        assert!(c.check_restore(1, 4).is_err());
        assert!(c.check_state(view(1, 5)).is_err());
        c.restart(1);
        c.check_restore(1, 4).unwrap();
        c.check_apply(1, 5).unwrap();
        c.check_state(view(1, 5)).unwrap();
    }

    /// A snapshot restored behind commands applied in the same step (before
    /// any state was reported for it) is caught too.
    #[test]
    fn restoring_behind_commands_applied_in_the_same_step_is_caught() {
        let mut c = ApplyOrder::default();
        c.check_apply(1, 7).unwrap();
        assert_eq!(c.check_restore(1, 5).unwrap_err().property, "Apply Order");
        let mut c = ApplyOrder::default();
        c.check_apply(1, 7).unwrap();
        c.check_restore(1, 7).unwrap();
    }

    #[test]
    fn a_skipped_or_foreign_command_is_caught() {
        use crate::log::MemoryLog;
        use bytes::Bytes;
        let mut log = MemoryLog::new();
        let mut entries = vec![
            Entry::normal(1, 1, Bytes::from_static(b"a")),
            Entry::noop(1, 2),
            Entry::normal(1, 3, Bytes::from_static(b"b")),
            Entry::normal(1, 4, Bytes::from_static(b"c")),
        ];
        log.append(&mut entries).unwrap();
        let mut c = ApplyOrder::default();
        // Commands 1 and 3 applied, the no-op skipped: complete.
        c.check_apply(1, 1).unwrap();
        c.check_apply(1, 3).unwrap();
        c.check_complete(1, 3, &log).unwrap();
        c.check_state(view(1, 3)).unwrap();
        // Applied index to 4 without command 4.
        let v = c.check_complete(1, 4, &log).unwrap_err();
        assert!(v.detail.contains("skipped: [4]"), "{v}");
        // Another node applies 4 while its applied index stays at 3.
        c.check_state(view(2, 3)).unwrap();
        c.check_apply(2, 4).unwrap();
        assert!(c.check_complete(2, 3, &log).is_err());
        // A restored snapshot starts the range over.
        c.check_restore(3, 3).unwrap();
        c.check_apply(3, 4).unwrap();
        c.check_complete(3, 4, &log).unwrap();
    }
}
