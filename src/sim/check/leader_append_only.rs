//! **Leader Append-Only** (Raft §5.3): a leader never overwrites or deletes
//! entries in its log; it only appends new entries.
//!
//! Checked per step: a node that leads the same term before and after a step
//! must neither truncate its log nor drop a suffix through a snapshot, and
//! its last index must not move backwards.

use super::{NodeView, Violation};
use crate::sim::log::LogChange;
use crate::types::{Index, Role, Term};

/// Stateless: a restarted node always starts as a follower, so a step that
/// begins and ends as leader of one term never spans a restart.
#[derive(Clone, Debug, Default)]
pub(crate) struct LeaderAppendOnly;

impl LeaderAppendOnly {
    pub(crate) fn check(
        &mut self,
        before: (Role, Term),
        view: NodeView,
        changes: &[LogChange],
        last_before: Index,
        last_after: Index,
    ) -> Result<(), Violation> {
        let led_throughout = before == (Role::Leader, view.term) && view.role == Role::Leader;
        if !led_throughout {
            return Ok(());
        }
        let deleting =
            changes.iter().find(|c| matches!(c, LogChange::Truncated { .. } | LogChange::Snapshot { kept: false, .. }));
        if let Some(change) = deleting {
            return Err(Violation::new(
                "Leader Append-Only",
                format!("leader {} of term {} removed entries: {change:?}", view.id, view.term),
            ));
        }
        if last_after < last_before {
            return Err(Violation::new(
                "Leader Append-Only",
                format!("leader {} of term {}: last index went from {last_before} to {last_after}", view.id, view.term),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(role: Role) -> NodeView {
        NodeView { id: 1, role, term: 3, commit: 0, applied: 0, digest: 0 }
    }

    #[test]
    fn a_leader_truncating_is_caught_and_a_follower_is_not() {
        let mut c = LeaderAppendOnly;
        let cut = [LogChange::Truncated { from: 2 }];
        assert!(c.check((Role::Leader, 3), view(Role::Leader), &cut, 5, 1).is_err());
        assert!(c.check((Role::Follower, 3), view(Role::Follower), &cut, 5, 1).is_ok());
        assert!(c.check((Role::Leader, 2), view(Role::Leader), &cut, 5, 1).is_ok(), "new term");
        let compact = [LogChange::Snapshot { index: 3, term: 3, kept: true }];
        assert!(c.check((Role::Leader, 3), view(Role::Leader), &compact, 5, 5).is_ok());
    }
}
