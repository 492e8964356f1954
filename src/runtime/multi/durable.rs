//! The tokens a flush of the shared WAL made durable, reduced to what the
//! driver reports: each group's latest, as staged.

use crate::log::WriteToken;
use crate::multi::GroupId;

/// A flush's tokens, in buffers kept between turns (a loaded node flushes
/// on every turn).
#[derive(Default)]
pub(super) struct DurableTokens {
    /// What the flush made durable, in staging order.
    pub(super) staged: Vec<(GroupId, WriteToken)>,
    by_group: Vec<(GroupId, usize, WriteToken)>,
}

impl DurableTokens {
    /// Each group's token staged last, in group order; empties `staged`.
    /// The last staged, not the highest: a group removed and created again
    /// has its older incarnation's tokens before its own, and those may
    /// compare higher.
    pub(super) fn latest(&mut self) -> impl Iterator<Item = (GroupId, WriteToken)> + '_ {
        self.by_group.clear();
        self.by_group.extend(self.staged.drain(..).enumerate().map(|(at, (group, token))| (group, at, token)));
        self.by_group.sort_unstable_by_key(|&(group, at, _)| (group, at));
        let by_group = &self.by_group;
        by_group
            .iter()
            .enumerate()
            .filter(|&(i, &(group, ..))| by_group.get(i + 1).is_none_or(|&(next, ..)| next != group))
            .map(|(_, &(group, _, token))| (group, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_reports_its_last_staged_token_in_group_order() {
        let t = WriteToken::new;
        let mut d = DurableTokens::default();
        // Group 2 was removed and created again: its new incarnation's
        // token (epoch 3) compares lower than the old one's (epoch 5).
        d.staged.extend([(2, t(5, 7)), (1, t(1, 3)), (3, t(1, 1)), (1, t(1, 4)), (2, t(3, 1))]);
        let latest: Vec<_> = d.latest().collect();
        assert_eq!(latest, [(1, t(1, 4)), (2, t(3, 1)), (3, t(1, 1))]);
        assert!(d.staged.is_empty());
        assert_eq!(d.latest().count(), 0, "nothing staged, nothing reported");
    }
}
