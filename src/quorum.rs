//! Quorum arithmetic: majorities over one voter set, and the joint rule over
//! two (incoming and outgoing) used during a configuration change.
//!
//! Every function here is pure and allocation-free given a caller-owned
//! scratch buffer, so the leader can evaluate commit and vote quorums on the
//! hot path without allocating.

use crate::types::{Index, NodeId};

/// The outcome of counting votes (or acknowledgements) in one voter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: enough voters have not answered either way.
    Pending,
    /// A majority granted.
    Won,
    /// A majority can no longer be reached.
    Lost,
}

/// The number of voters that forms a majority of `n` voters.
pub const fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Counts votes over one voter set. `vote(id)` says whether `id` granted
/// (`Some(true)`), refused (`Some(false)`) or has not answered (`None`).
///
/// An empty voter set is treated as [`VoteResult::Won`], so that in a joint
/// configuration an absent outgoing set never constrains the result.
pub fn vote_result(voters: &[NodeId], mut vote: impl FnMut(NodeId) -> Option<bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0usize, 0usize);
    for &id in voters {
        match vote(id) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let need = majority(voters.len());
    if yes >= need {
        VoteResult::Won
    } else if yes + missing >= need {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// Combines the results of the incoming and outgoing voter sets of a joint
/// configuration: both must be won, either lost loses.
pub fn joint_vote_result(incoming: VoteResult, outgoing: VoteResult) -> VoteResult {
    match (incoming, outgoing) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// Voter sets up to this size are sorted by insertion, on the stack.
const SMALL: usize = 16;

/// The largest index that a majority of `voters` has acknowledged, given each
/// voter's acknowledged (matched) index. Voter sets of up to 16 are counted
/// on the stack; a larger one uses `scratch`, which is reused between calls
/// so this does not allocate once warmed up.
///
/// An empty voter set yields `Index::MAX`, the neutral element of `min` for
/// the joint rule.
#[inline]
pub fn committed_index(voters: &[NodeId], mut matched: impl FnMut(NodeId) -> Index, scratch: &mut Vec<Index>) -> Index {
    match *voters {
        [] => Index::MAX,
        // The common sizes, without a buffer: one voter, and three, whose
        // majority-th largest is the median.
        [a] => matched(a),
        [a, b, c] => {
            let (a, b, c) = (matched(a), matched(b), matched(c));
            a.min(b).max(a.max(b).min(c))
        }
        _ => committed_index_sorted(voters, matched, scratch),
    }
}

/// [`committed_index`] for the other sizes, out of line: the
/// majority-th largest of the acknowledged indexes, sorted.
fn committed_index_sorted(
    voters: &[NodeId],
    mut matched: impl FnMut(NodeId) -> Index,
    scratch: &mut Vec<Index>,
) -> Index {
    let need = majority(voters.len());
    if voters.len() <= SMALL {
        let mut buf = [0 as Index; SMALL];
        let held = &mut buf[..voters.len()];
        for (slot, &id) in held.iter_mut().zip(voters) {
            *slot = matched(id);
        }
        // Sort descending; the majority-th largest value is acknowledged
        // by a majority. Voter sets are small (3, 5, 7): an insertion sort
        // beats the general sort's set-up there.
        for i in 1..held.len() {
            let mut j = i;
            while j > 0 && held[j - 1] < held[j] {
                held.swap(j - 1, j);
                j -= 1;
            }
        }
        return held[need - 1];
    }
    scratch.clear();
    scratch.extend(voters.iter().map(|&id| matched(id)));
    scratch.sort_unstable_by(|a, b| b.cmp(a));
    scratch[need - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(majority(7), 4);
    }

    #[test]
    fn votes_decide_only_when_determined() {
        let voters = [1, 2, 3];
        assert_eq!(vote_result(&voters, |_| None), VoteResult::Pending);
        assert_eq!(vote_result(&voters, |id| (id == 1).then_some(true)), VoteResult::Pending);
        assert_eq!(vote_result(&voters, |id| (id <= 2).then_some(true)), VoteResult::Won);
        assert_eq!(vote_result(&voters, |id| (id <= 2).then_some(false)), VoteResult::Lost);
        assert_eq!(vote_result(&voters, |id| Some(id == 1)), VoteResult::Lost, "one yes and two no cannot win");
        assert_eq!(vote_result(&[], |_| None), VoteResult::Won);
    }

    #[test]
    fn joint_needs_both_sides() {
        use VoteResult::*;
        assert_eq!(joint_vote_result(Won, Won), Won);
        assert_eq!(joint_vote_result(Won, Pending), Pending);
        assert_eq!(joint_vote_result(Pending, Won), Pending);
        assert_eq!(joint_vote_result(Won, Lost), Lost);
        assert_eq!(joint_vote_result(Lost, Pending), Lost);
    }

    #[test]
    fn committed_index_is_the_majority_th_largest() {
        let mut s = Vec::new();
        let m = |id: NodeId| [0, 5, 9, 7, 1, 3][id as usize];
        assert_eq!(committed_index(&[1], m, &mut s), 5);
        assert_eq!(committed_index(&[1, 2], m, &mut s), 5);
        assert_eq!(committed_index(&[1, 2, 3], m, &mut s), 7);
        assert_eq!(committed_index(&[1, 2, 3, 4], m, &mut s), 5);
        assert_eq!(committed_index(&[1, 2, 3, 4, 5], m, &mut s), 5);
        assert_eq!(committed_index(&[], m, &mut s), Index::MAX);
    }

    proptest! {
        /// Brute force: the committed index is the largest value that at
        /// least a majority of voters has reached (sets small enough for the
        /// insertion sort, and larger ones).
        #[test]
        fn committed_index_matches_brute_force(matches in proptest::collection::vec(0u64..20, 1..40)) {
            let voters: Vec<NodeId> = (1..=matches.len() as u64).collect();
            let mut s = Vec::new();
            let got = committed_index(&voters, |id| matches[id as usize - 1], &mut s);
            let need = majority(matches.len());
            let brute = (0..20u64).filter(|&i| matches.iter().filter(|&&m| m >= i).count() >= need).max().unwrap_or(0);
            prop_assert_eq!(got, brute);
        }

        /// A vote result never claims victory without a real majority, and
        /// never claims loss while a majority is still reachable.
        #[test]
        fn vote_result_is_sound(votes in proptest::collection::vec(proptest::option::of(any::<bool>()), 1..8)) {
            let voters: Vec<NodeId> = (1..=votes.len() as u64).collect();
            let r = vote_result(&voters, |id| votes[id as usize - 1]);
            let yes = votes.iter().filter(|v| **v == Some(true)).count();
            let open = votes.iter().filter(|v| v.is_none()).count();
            let need = majority(votes.len());
            match r {
                VoteResult::Won => prop_assert!(yes >= need),
                VoteResult::Lost => prop_assert!(yes + open < need),
                VoteResult::Pending => prop_assert!(yes < need && yes + open >= need),
            }
        }
    }
}
