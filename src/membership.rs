//! Cluster membership: voters, learners and, during a joint change, the
//! outgoing voter set; the changes a leader accepts; and the quorum rules
//! that follow from them.
//!
//! A [`Membership`] is a complete configuration. Configuration entries in the
//! log carry a whole `Membership` (never a delta), so any node can take the
//! configuration in effect from the latest configuration entry it holds.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::quorum::{self, VoteResult};
use crate::types::{Index, NodeId};

/// A cluster configuration.
///
/// * `voters` vote and count toward every quorum;
/// * `learners` receive the log and apply it but count toward no quorum;
/// * `outgoing` is non-empty only in a joint configuration: the previous
///   voter set, which must also form its own majority for elections and
///   commits until the leader leaves the joint configuration.
///
/// All three lists are kept sorted and free of duplicates. A node may be in
/// `outgoing` and `learners` at once (a voter being demoted by a joint
/// change), but never in `voters` and `learners` at once.
///
/// A `Membership` is immutable and shared: cloning it is a reference-count
/// increment, and it is one pointer wide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership(Arc<Sets>);

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Sets {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
    outgoing: Vec<NodeId>,
}

/// Why a configuration or a configuration change is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    ZeroId,
    /// The same id appears twice in one list.
    #[error("node {0} is listed twice")]
    Duplicate(NodeId),
    /// A node is both a voter and a learner.
    #[error("node {0} cannot be both a voter and a learner")]
    VoterAndLearner(NodeId),
    /// The change would leave no voter.
    #[error("a configuration needs at least one voter")]
    NoVoters,
    /// The node to add is already a member.
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    /// The node named by the change is not a member.
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    /// Only a learner can be promoted.
    #[error("node {0} is not a learner, so it cannot be promoted")]
    NotLearner(NodeId),
    /// A change was requested while the configuration is joint.
    #[error("the configuration is joint; it must be left before another change")]
    Joint,
    /// The requested configuration equals the current one.
    #[error("the requested configuration is the current one")]
    Unchanged,
    /// Encoded configuration bytes are malformed.
    #[error("malformed configuration bytes: {0}")]
    Malformed(&'static str),
}

/// A configuration change a leader can be asked to make
/// ([`Event::ChangeMembership`](crate::Event::ChangeMembership)).
///
/// Changes that alter at most one voter take effect in one step (a
/// single-server change). [`MembershipChange::Replace`] that alters more than
/// one voter goes through a joint configuration, which the leader leaves
/// automatically once the joint entry commits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MembershipChange {
    /// Add a new node as a voter.
    AddVoter(NodeId),
    /// Add a new node as a learner.
    AddLearner(NodeId),
    /// Make a learner a voter.
    Promote(NodeId),
    /// Remove a voter or learner.
    Remove(NodeId),
    /// Move to exactly this set of voters and learners, through a joint
    /// configuration if more than one voter changes.
    Replace {
        /// The voters of the target configuration.
        voters: Vec<NodeId>,
        /// The learners of the target configuration.
        learners: Vec<NodeId>,
    },
}

impl Membership {
    /// A configuration of voters and learners (not joint). Ids are sorted and
    /// checked: no zero, no duplicate, no node in both lists.
    pub fn new(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, MembershipError> {
        Self::build(Sets { voters: sorted(voters)?, learners: sorted(learners)?, outgoing: Vec::new() })
    }

    /// The empty configuration of a node that has not yet learned one (a
    /// node joining a running cluster).
    pub fn empty() -> Self {
        Self::default()
    }

    fn build(sets: Sets) -> Result<Self, MembershipError> {
        sets.validate()?;
        Ok(Self(Arc::new(sets)))
    }

    /// A joint configuration: `incoming` (with `learners`) replaces
    /// `outgoing`, and both voter sets must agree until the joint
    /// configuration is left.
    pub fn joint(
        incoming: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
        outgoing: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, MembershipError> {
        Self::build(Sets { voters: sorted(incoming)?, learners: sorted(learners)?, outgoing: sorted(outgoing)? })
    }

    /// The (incoming) voters.
    pub fn voters(&self) -> &[NodeId] {
        &self.0.voters
    }

    /// The learners.
    pub fn learners(&self) -> &[NodeId] {
        &self.0.learners
    }

    /// The outgoing voters of a joint configuration (empty otherwise).
    pub fn outgoing(&self) -> &[NodeId] {
        &self.0.outgoing
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.0.outgoing.is_empty()
    }

    /// Whether the configuration has no member at all.
    pub fn is_empty(&self) -> bool {
        self.0.voters.is_empty() && self.0.learners.is_empty() && self.0.outgoing.is_empty()
    }

    /// Whether `id` votes (in the incoming or the outgoing set).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.0.voters.binary_search(&id).is_ok() || self.0.outgoing.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner (and not a voter of the incoming set).
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.0.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, each once, in ascending order: the nodes a leader
    /// replicates to (plus itself).
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        Merge3::new(&self.0.voters, &self.0.learners, &self.0.outgoing)
    }

    /// The configuration with the joint part dropped: what the leader
    /// proposes to leave a joint configuration. Outgoing voters that are
    /// learners in the new configuration stay learners.
    pub fn leave_joint(&self) -> Self {
        Self(Arc::new(Sets { voters: self.0.voters.clone(), learners: self.0.learners.clone(), outgoing: Vec::new() }))
    }

    /// Counts votes under this configuration (joint rule when joint).
    pub fn vote_result(&self, mut vote: impl FnMut(NodeId) -> Option<bool>) -> VoteResult {
        if self.0.voters.is_empty() && self.0.outgoing.is_empty() {
            return VoteResult::Lost;
        }
        let incoming = quorum::vote_result(&self.0.voters, &mut vote);
        let outgoing = quorum::vote_result(&self.0.outgoing, &mut vote);
        quorum::joint_vote_result(incoming, outgoing)
    }

    /// Whether the nodes for which `active` holds form a quorum.
    pub fn has_quorum(&self, mut active: impl FnMut(NodeId) -> bool) -> bool {
        self.vote_result(|id| Some(active(id))) == VoteResult::Won
    }

    /// The largest index acknowledged by a quorum, given each voter's matched
    /// index. Returns 0 for a configuration without voters.
    pub fn committed_index(&self, mut matched: impl FnMut(NodeId) -> Index, scratch: &mut Vec<Index>) -> Index {
        if self.0.voters.is_empty() && self.0.outgoing.is_empty() {
            return 0;
        }
        let incoming = quorum::committed_index(&self.0.voters, &mut matched, scratch);
        let outgoing = quorum::committed_index(&self.0.outgoing, &mut matched, scratch);
        incoming.min(outgoing)
    }

    /// The configuration that results from `change`, or why it is refused.
    /// The result is joint when a [`MembershipChange::Replace`] alters more
    /// than one voter.
    pub fn apply(&self, change: &MembershipChange) -> Result<Self, MembershipError> {
        if self.is_joint() {
            return Err(MembershipError::Joint);
        }
        let mut next: Sets = (*self.0).clone();
        match *change {
            MembershipChange::AddVoter(id) | MembershipChange::AddLearner(id) => {
                if id == 0 {
                    return Err(MembershipError::ZeroId);
                }
                if self.contains(id) {
                    return Err(MembershipError::AlreadyMember(id));
                }
                let list =
                    if matches!(change, MembershipChange::AddVoter(_)) { &mut next.voters } else { &mut next.learners };
                insert_sorted(list, id);
            }
            MembershipChange::Promote(id) => {
                if !self.is_learner(id) {
                    return Err(if self.contains(id) {
                        MembershipError::NotLearner(id)
                    } else {
                        MembershipError::NotMember(id)
                    });
                }
                next.learners.retain(|&l| l != id);
                insert_sorted(&mut next.voters, id);
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(MembershipError::NotMember(id));
                }
                next.voters.retain(|&v| v != id);
                next.learners.retain(|&l| l != id);
                if next.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
            }
            MembershipChange::Replace { ref voters, ref learners } => {
                let target = Self::new(voters.iter().copied(), learners.iter().copied())?;
                if target.0.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
                if target == *self {
                    return Err(MembershipError::Unchanged);
                }
                let changed = symmetric_difference(&self.0.voters, &target.0.voters);
                next = if changed <= 1 {
                    (*target.0).clone()
                } else {
                    Sets {
                        voters: target.0.voters.clone(),
                        learners: target.0.learners.clone(),
                        outgoing: self.0.voters.clone(),
                    }
                };
            }
        }
        Self::build(next)
    }

    /// Encodes the configuration for a [`EntryKind::Config`](crate::EntryKind::Config)
    /// entry and for snapshot metadata (format in `docs/PROTOCOL.md`):
    /// a version byte (1), then the voters, learners and outgoing lists, each
    /// as a `u32` little-endian count followed by that many `u64`
    /// little-endian ids.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        buf.put_u8(MEMBERSHIP_FORMAT);
        for list in [&self.0.voters, &self.0.learners, &self.0.outgoing] {
            buf.put_u32_le(list.len() as u32);
            for &id in list {
                buf.put_u64_le(id);
            }
        }
        buf.freeze()
    }

    /// The length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        1 + 12 + 8 * (self.0.voters.len() + self.0.learners.len() + self.0.outgoing.len())
    }

    /// Decodes and validates bytes produced by [`encode`](Self::encode).
    /// Never panics and never allocates more than the input can hold.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, MembershipError> {
        let version = take::<1>(&mut bytes)?[0];
        if version != MEMBERSHIP_FORMAT {
            return Err(MembershipError::Malformed("unknown format version"));
        }
        let mut lists: [Vec<NodeId>; 3] = Default::default();
        for list in &mut lists {
            let n = u32::from_le_bytes(take::<4>(&mut bytes)?) as usize;
            if n > bytes.len() / 8 {
                return Err(MembershipError::Malformed("count exceeds the bytes present"));
            }
            list.reserve_exact(n);
            for _ in 0..n {
                list.push(u64::from_le_bytes(take::<8>(&mut bytes)?));
            }
        }
        if !bytes.is_empty() {
            return Err(MembershipError::Malformed("trailing bytes"));
        }
        let [voters, learners, outgoing] = lists;
        Self::build(Sets { voters, learners, outgoing })
    }
}

impl Sets {
    fn validate(&self) -> Result<(), MembershipError> {
        for list in [&self.voters, &self.learners, &self.outgoing] {
            if list.first() == Some(&0) {
                return Err(MembershipError::ZeroId);
            }
            if let Some(w) = list.windows(2).find(|w| w[0] >= w[1]) {
                return Err(MembershipError::Duplicate(w[1]));
            }
        }
        if let Some(&id) = self.learners.iter().find(|id| self.voters.binary_search(id).is_ok()) {
            return Err(MembershipError::VoterAndLearner(id));
        }
        Ok(())
    }
}

/// Version byte of the configuration encoding.
pub const MEMBERSHIP_FORMAT: u8 = 1;

fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], MembershipError> {
    let Some((head, rest)) = bytes.split_first_chunk::<N>() else {
        return Err(MembershipError::Malformed("truncated"));
    };
    *bytes = rest;
    Ok(*head)
}

fn sorted(ids: impl IntoIterator<Item = NodeId>) -> Result<Vec<NodeId>, MembershipError> {
    let mut v: Vec<NodeId> = ids.into_iter().collect();
    v.sort_unstable();
    if let Some(w) = v.windows(2).find(|w| w[0] == w[1]) {
        return Err(MembershipError::Duplicate(w[0]));
    }
    if v.first() == Some(&0) {
        return Err(MembershipError::ZeroId);
    }
    Ok(v)
}

fn insert_sorted(list: &mut Vec<NodeId>, id: NodeId) {
    if let Err(pos) = list.binary_search(&id) {
        list.insert(pos, id);
    }
}

fn symmetric_difference(a: &[NodeId], b: &[NodeId]) -> usize {
    a.iter().filter(|id| b.binary_search(id).is_err()).count()
        + b.iter().filter(|id| a.binary_search(id).is_err()).count()
}

/// Ascending union of three sorted lists, each id once.
struct Merge3<'a> {
    lists: [&'a [NodeId]; 3],
}

impl<'a> Merge3<'a> {
    fn new(a: &'a [NodeId], b: &'a [NodeId], c: &'a [NodeId]) -> Self {
        Self { lists: [a, b, c] }
    }
}

impl Iterator for Merge3<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let next = self.lists.iter().filter_map(|l| l.first().copied()).min()?;
        for list in &mut self.lists {
            if list.first() == Some(&next) {
                *list = &list[1..];
            }
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(voters: &[NodeId], learners: &[NodeId]) -> Membership {
        Membership::new(voters.iter().copied(), learners.iter().copied()).unwrap()
    }

    #[test]
    fn new_sorts_and_rejects_bad_lists() {
        let c = m(&[3, 1, 2], &[5]);
        assert_eq!(c.voters(), &[1, 2, 3]);
        assert_eq!(Membership::new([1, 1], []), Err(MembershipError::Duplicate(1)));
        assert_eq!(Membership::new([0, 1], []), Err(MembershipError::ZeroId));
        assert_eq!(Membership::new([1, 2], [2]), Err(MembershipError::VoterAndLearner(2)));
    }

    #[test]
    fn members_is_the_sorted_union() {
        let c = Membership::joint([1, 4], [5, 2], [1, 2, 3]).unwrap();
        assert_eq!(c.members().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert!(c.is_voter(3) && c.is_voter(4) && c.is_voter(2));
        assert!(c.is_learner(2) && !c.is_learner(3));
    }

    #[test]
    fn single_changes() {
        let c = m(&[1, 2, 3], &[4]);
        assert_eq!(c.apply(&MembershipChange::AddVoter(5)).unwrap(), m(&[1, 2, 3, 5], &[4]));
        assert_eq!(c.apply(&MembershipChange::AddLearner(6)).unwrap(), m(&[1, 2, 3], &[4, 6]));
        assert_eq!(c.apply(&MembershipChange::Promote(4)).unwrap(), m(&[1, 2, 3, 4], &[]));
        assert_eq!(c.apply(&MembershipChange::Remove(2)).unwrap(), m(&[1, 3], &[4]));
        assert_eq!(c.apply(&MembershipChange::Remove(4)).unwrap(), m(&[1, 2, 3], &[]));
    }

    #[test]
    fn bad_changes_are_refused_with_a_reason() {
        let c = m(&[1, 2, 3], &[4]);
        assert_eq!(c.apply(&MembershipChange::AddVoter(2)), Err(MembershipError::AlreadyMember(2)));
        assert_eq!(c.apply(&MembershipChange::AddLearner(4)), Err(MembershipError::AlreadyMember(4)));
        assert_eq!(c.apply(&MembershipChange::AddVoter(0)), Err(MembershipError::ZeroId));
        assert_eq!(c.apply(&MembershipChange::Promote(1)), Err(MembershipError::NotLearner(1)));
        assert_eq!(c.apply(&MembershipChange::Promote(9)), Err(MembershipError::NotMember(9)));
        assert_eq!(c.apply(&MembershipChange::Remove(9)), Err(MembershipError::NotMember(9)));
        assert_eq!(m(&[1], &[]).apply(&MembershipChange::Remove(1)), Err(MembershipError::NoVoters));
        let same = MembershipChange::Replace { voters: vec![1, 2, 3], learners: vec![4] };
        assert_eq!(c.apply(&same), Err(MembershipError::Unchanged));
        let empty = MembershipChange::Replace { voters: vec![], learners: vec![1] };
        assert_eq!(c.apply(&empty), Err(MembershipError::NoVoters));
        let joint = Membership::joint([1, 4, 5], [], [1, 2, 3]).unwrap();
        assert_eq!(joint.apply(&MembershipChange::AddLearner(9)), Err(MembershipError::Joint));
    }

    #[test]
    fn replace_of_two_voters_goes_joint_and_one_does_not() {
        let c = m(&[1, 2, 3], &[]);
        let two = c.apply(&MembershipChange::Replace { voters: vec![1, 4, 5], learners: vec![] }).unwrap();
        assert!(two.is_joint());
        assert_eq!(two.voters(), &[1, 4, 5]);
        assert_eq!(two.outgoing(), &[1, 2, 3]);
        assert_eq!(two.leave_joint(), m(&[1, 4, 5], &[]));
        let one = c.apply(&MembershipChange::Replace { voters: vec![1, 2, 3, 4], learners: vec![] }).unwrap();
        assert!(!one.is_joint());
        // Demoting a voter to learner through a joint change keeps it a
        // learner after leaving.
        let demote = c.apply(&MembershipChange::Replace { voters: vec![1, 4], learners: vec![2, 3] }).unwrap();
        assert!(demote.is_joint() && demote.is_voter(2) && demote.is_learner(2));
        assert_eq!(demote.leave_joint(), m(&[1, 4], &[2, 3]));
    }

    #[test]
    fn joint_quorums_need_both_majorities() {
        let j = Membership::joint([1, 4, 5], [], [1, 2, 3]).unwrap();
        // 1, 2, 3 agree: old majority only.
        assert!(!j.has_quorum(|id| id <= 3));
        // 1, 4, 5 agree: new majority only.
        assert!(!j.has_quorum(|id| id == 1 || id >= 4));
        // 1, 2, 4: both majorities.
        assert!(j.has_quorum(|id| matches!(id, 1 | 2 | 4)));
        let mut s = Vec::new();
        let matched = |id: NodeId| [0, 10, 9, 8, 2, 1][id as usize];
        assert_eq!(j.committed_index(matched, &mut s), 2);
        assert_eq!(Membership::empty().committed_index(matched, &mut s), 0);
        assert_eq!(Membership::empty().vote_result(|_| Some(true)), VoteResult::Lost);
    }

    #[test]
    fn decode_refuses_malformed_bytes() {
        let good = m(&[1, 2], &[3]).encode();
        for cut in 0..good.len() {
            assert!(Membership::decode(&good[..cut]).is_err(), "prefix {cut}");
        }
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(Membership::decode(&trailing).is_err());
        let mut huge = vec![MEMBERSHIP_FORMAT];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Membership::decode(&huge).is_err());
        let mut unsorted = vec![MEMBERSHIP_FORMAT, 2, 0, 0, 0];
        unsorted.extend_from_slice(&2u64.to_le_bytes());
        unsorted.extend_from_slice(&1u64.to_le_bytes());
        unsorted.extend_from_slice(&[0; 8]);
        assert!(Membership::decode(&unsorted).is_err());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(v in proptest::collection::btree_set(1u64..50, 0..6),
                                     l in proptest::collection::btree_set(50u64..100, 0..4),
                                     o in proptest::collection::btree_set(1u64..50, 0..4)) {
            let c = Membership::joint(v, l, o).unwrap();
            let bytes = c.encode();
            prop_assert_eq!(bytes.len(), c.encoded_len());
            prop_assert_eq!(Membership::decode(&bytes).unwrap(), c);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Membership::decode(&bytes);
        }
    }
}
