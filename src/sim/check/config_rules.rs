//! **Configuration rules** (`docs/PROTOCOL.md`, "Membership changes"):
//! the two rules that keep single-server changes safe.
//!
//! 1. A leader appends a configuration entry only once an entry of its own
//!    term has committed: checked after every step in which a node leading
//!    one term throughout appended a configuration entry of that term (its
//!    commit index must then be at an entry of its term).
//! 2. At most one configuration entry is uncommitted: no log holds more
//!    than one configuration entry above the highest commit index any node
//!    has reported.
//!
//! Run after every step by the random simulators (`Cluster`, per group in
//! `MultiCluster`) and by model-script replays (`sim::model::replay`).

use super::Violation;
use crate::log::RaftLog;
use crate::types::{EntryKind, Index, NodeId, Role, Term};

/// The highest commit index reported so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConfigRules {
    committed: Index,
}

/// What a step changed on one node, as the rules need it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepView {
    pub(crate) id: NodeId,
    /// Role, term and last index before the step.
    pub(crate) before: (Role, Term, Index),
    pub(crate) role: Role,
    pub(crate) term: Term,
    pub(crate) commit: Index,
}

impl ConfigRules {
    pub(crate) fn check(&mut self, view: StepView, log: &impl RaftLog) -> Result<(), Violation> {
        self.committed = self.committed.max(view.commit);
        let mut entries = Vec::new();
        let (role, term, last_before) = view.before;
        let led_throughout = role == Role::Leader && view.role == Role::Leader && term == view.term;
        if led_throughout && log.last_index() > last_before {
            let lo = (last_before + 1).max(log.first_index());
            log.entries(lo, log.last_index() + 1, u64::MAX, &mut entries).map_err(|e| violation(e.to_string()))?;
            let own_committed = log.term(view.commit) == Some(view.term);
            if let Some(e) = entries.iter().find(|e| e.kind == EntryKind::Config && e.term == view.term) {
                if !own_committed {
                    return Err(violation(format!(
                        "leader {} of term {} appended a configuration entry at index {} before an entry of its \
                         term committed (its commit index is {})",
                        view.id, view.term, e.index, view.commit
                    )));
                }
            }
        }
        entries.clear();
        let lo = (self.committed + 1).max(log.first_index());
        if lo <= log.last_index() {
            log.entries(lo, log.last_index() + 1, u64::MAX, &mut entries).map_err(|e| violation(e.to_string()))?;
        }
        let pending: Vec<Index> = entries.iter().filter(|e| e.kind == EntryKind::Config).map(|e| e.index).collect();
        if pending.len() > 1 {
            return Err(violation(format!(
                "node {} holds {} configuration entries above the commit index {} (at {pending:?})",
                view.id,
                pending.len(),
                self.committed
            )));
        }
        Ok(())
    }
}

fn violation(detail: String) -> Violation {
    Violation::new("Configuration rules", detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryLog;
    use crate::membership::Membership;
    use crate::types::Entry;

    fn log(entries: &[(Term, EntryKind)]) -> MemoryLog {
        let mut log = MemoryLog::new();
        let m = Membership::new([1, 2, 3], []).unwrap();
        let mut es: Vec<Entry> = entries
            .iter()
            .enumerate()
            .map(|(i, &(t, k))| match k {
                EntryKind::Config => Entry::config(t, i as Index + 1, &m),
                _ => Entry::noop(t, i as Index + 1),
            })
            .collect();
        log.append(&mut es).unwrap();
        log
    }

    #[test]
    fn an_early_change_and_two_pending_changes_are_caught() {
        let (noop, config) = (EntryKind::Noop, EntryKind::Config);
        let leader = |commit| StepView { id: 1, before: (Role::Leader, 2, 2), role: Role::Leader, term: 2, commit };
        let l = log(&[(1, noop), (2, noop), (2, config)]);
        // Commit at index 1 (term 1): no entry of term 2 committed yet.
        let err = ConfigRules::default().check(leader(1), &l).unwrap_err();
        assert_eq!(err.property, "Configuration rules");
        ConfigRules::default().check(leader(2), &l).unwrap();
        let two = log(&[(1, noop), (1, config), (1, config)]);
        let follower = StepView { id: 2, before: (Role::Follower, 1, 0), role: Role::Follower, term: 1, commit: 1 };
        assert!(ConfigRules::default().check(follower, &two).is_err());
        let follower = StepView { commit: 2, ..follower };
        ConfigRules::default().check(follower, &two).unwrap();
    }
}
