//! Cluster membership: voters, learners and, during a joint change, the
//! outgoing voter set; the changes a leader accepts; and the quorum rules
//! that follow from them.
//!
//! A [`Membership`] is a complete configuration. Configuration entries in the
//! log carry a whole `Membership` (never a delta), so any node can take the
//! configuration in effect from the latest configuration entry it holds.
//!
//! Each member may carry an **address**: opaque bytes to the core (at most
//! [`MAX_ADDRESS_LEN`]), replicated with the configuration so that a
//! transport can learn where its peers are from the log itself. The runtime
//! reads them as socket addresses written in text (`"10.0.0.7:7001"`; see
//! `runtime::address_of`, feature `net`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::quorum::{self, VoteResult};
use crate::types::{Index, NodeId};

mod codec;
mod shared;

pub(crate) use shared::SharedConfigs;

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
/// Members may carry an address ([`address`](Self::address)); only members
/// do: removing a node drops its address.
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
    /// Addresses of members (never of a non-member), each
    /// `1..=MAX_ADDRESS_LEN` bytes.
    addresses: BTreeMap<NodeId, Bytes>,
}

/// The longest address a member may carry, in bytes (a DNS name of 253
/// characters and a port fit).
pub const MAX_ADDRESS_LEN: usize = 255;

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
    /// An address is empty or longer than [`MAX_ADDRESS_LEN`] bytes.
    #[error("the address of node {id} is {len} bytes; it must be 1 to 255")]
    InvalidAddress {
        /// The node the address was given for.
        id: NodeId,
        /// The length of the address given.
        len: usize,
    },
}

/// A configuration change a leader can be asked to make
/// ([`Event::ChangeMembership`](crate::Event::ChangeMembership)).
///
/// Changes that alter at most one voter take effect in one step (a
/// single-server change). [`MembershipChange::Replace`] that alters more than
/// one voter goes through a joint configuration, which the leader leaves
/// automatically once the joint entry commits.
///
/// A node added with its address ([`AddVoterAt`](Self::AddVoterAt),
/// [`AddLearnerAt`](Self::AddLearnerAt)) is reachable by every member as
/// soon as the configuration entry reaches it: a transport that learns
/// peers from the configuration (the runtime's) needs no other wiring.
/// [`SetAddress`](Self::SetAddress) moves a member (or gives one its
/// first address) without changing any role.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MembershipChange {
    /// Add a new node as a voter, without an address.
    AddVoter(NodeId),
    /// Add a new node as a learner, without an address.
    AddLearner(NodeId),
    /// Add a new node as a voter reachable at `address`.
    AddVoterAt {
        /// The node to add.
        id: NodeId,
        /// Its address (1 to [`MAX_ADDRESS_LEN`] bytes).
        address: Bytes,
    },
    /// Add a new node as a learner reachable at `address`.
    AddLearnerAt {
        /// The node to add.
        id: NodeId,
        /// Its address (1 to [`MAX_ADDRESS_LEN`] bytes).
        address: Bytes,
    },
    /// Set (`Some`) or clear (`None`) the address of a member; roles are
    /// unchanged, so it is a single-server change with no voter altered.
    SetAddress {
        /// The member.
        id: NodeId,
        /// Its new address, or `None` to forget it.
        address: Option<Bytes>,
    },
    /// Make a learner a voter (its address, if any, is kept).
    Promote(NodeId),
    /// Remove a voter or learner, and its address.
    Remove(NodeId),
    /// Move to exactly this set of voters and learners, through a joint
    /// configuration if more than one voter changes. Members that stay keep
    /// their addresses; a node that leaves loses its address (once the
    /// joint configuration is left, for an outgoing voter).
    Replace {
        /// The voters of the target configuration.
        voters: Vec<NodeId>,
        /// The learners of the target configuration.
        learners: Vec<NodeId>,
    },
}

impl Membership {
    /// Whether `self` and `other` are the same copy (not only equal).
    pub(crate) fn same_lists(&self, other: &Membership) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A configuration of voters and learners (not joint). Ids are sorted and
    /// checked: no zero, no duplicate, no node in both lists.
    pub fn new(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, MembershipError> {
        Self::build(Sets {
            voters: sorted(voters)?,
            learners: sorted(learners)?,
            outgoing: Vec::new(),
            addresses: BTreeMap::new(),
        })
    }

    /// This configuration with `address` given to member `id` (replacing
    /// any address it had): how a bootstrap configuration gets its
    /// addresses. Refused for a non-member
    /// ([`NotMember`](MembershipError::NotMember)) and for an address that
    /// is empty or longer than [`MAX_ADDRESS_LEN`].
    pub fn with_address(&self, id: NodeId, address: impl Into<Bytes>) -> Result<Self, MembershipError> {
        let address = address.into();
        check_address(id, &address)?;
        if !self.contains(id) {
            return Err(MembershipError::NotMember(id));
        }
        let mut next = (*self.0).clone();
        next.addresses.insert(id, address);
        Self::build(next)
    }

    /// The address member `id` carries, if any.
    pub fn address(&self, id: NodeId) -> Option<&Bytes> {
        self.0.addresses.get(&id)
    }

    /// Every member that carries an address, with it, in ascending id order.
    pub fn addresses(&self) -> impl Iterator<Item = (NodeId, &Bytes)> + '_ {
        self.0.addresses.iter().map(|(&id, a)| (id, a))
    }

    /// About how many bytes of heap this configuration holds: its id
    /// sets, and each address in the map (a node, its `Bytes`, and the
    /// address's own allocation). For a receiver that bounds what decoded
    /// messages hold (the TCP transport's inbox, `framing`).
    #[cfg(feature = "net")]
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // A B-tree node holds up to 11 entries in about 300 bytes of
        // overhead; count a little over a node's share per entry, and an
        // allocation of at least 16 bytes per address (a copy of its own).
        const PER_ADDRESS: usize = size_of::<NodeId>() + size_of::<Bytes>() + 32 + 16;
        let sets = &self.0;
        size_of::<Sets>()
            + (sets.voters.capacity() + sets.learners.capacity() + sets.outgoing.capacity()) * size_of::<NodeId>()
            + sets.addresses.values().map(|a| PER_ADDRESS + a.len()).sum::<usize>()
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
        Self::build(Sets {
            voters: sorted(incoming)?,
            learners: sorted(learners)?,
            outgoing: sorted(outgoing)?,
            addresses: BTreeMap::new(),
        })
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
    /// Addresses of the outgoing voters that are not members any more are
    /// dropped.
    pub fn leave_joint(&self) -> Self {
        let mut next = Sets {
            voters: self.0.voters.clone(),
            learners: self.0.learners.clone(),
            outgoing: Vec::new(),
            addresses: self.0.addresses.clone(),
        };
        next.prune_addresses();
        Self(Arc::new(next))
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
    #[inline]
    #[allow(clippy::redundant_closure, reason = "`&mut matched` is what left a call per voter out of line")]
    pub fn committed_index(&self, mut matched: impl FnMut(NodeId) -> Index, scratch: &mut Vec<Index>) -> Index {
        if self.0.voters.is_empty() && self.0.outgoing.is_empty() {
            return 0;
        }
        // `|id| matched(id)`, not `&mut matched`: the caller's closure is
        // then called directly, and inlined into the count, where the
        // `&mut` forwarding call was left out of line (a call per voter).
        let incoming = quorum::committed_index(&self.0.voters, |id| matched(id), scratch);
        if self.0.outgoing.is_empty() || mutant!(JointIgnoresOutgoing) {
            return incoming;
        }
        let outgoing = quorum::committed_index(&self.0.outgoing, |id| matched(id), scratch);
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
            MembershipChange::AddVoter(id)
            | MembershipChange::AddLearner(id)
            | MembershipChange::AddVoterAt { id, .. }
            | MembershipChange::AddLearnerAt { id, .. } => {
                if id == 0 {
                    return Err(MembershipError::ZeroId);
                }
                if self.contains(id) {
                    return Err(MembershipError::AlreadyMember(id));
                }
                let voter = matches!(change, MembershipChange::AddVoter(_) | MembershipChange::AddVoterAt { .. });
                insert_sorted(if voter { &mut next.voters } else { &mut next.learners }, id);
                if let MembershipChange::AddVoterAt { ref address, .. }
                | MembershipChange::AddLearnerAt { ref address, .. } = *change
                {
                    check_address(id, address)?;
                    next.addresses.insert(id, address.clone());
                }
            }
            MembershipChange::SetAddress { id, ref address } => {
                if !self.contains(id) {
                    return Err(MembershipError::NotMember(id));
                }
                if self.address(id) == address.as_ref() {
                    return Err(MembershipError::Unchanged);
                }
                match address {
                    Some(address) => {
                        check_address(id, address)?;
                        next.addresses.insert(id, address.clone());
                    }
                    None => {
                        next.addresses.remove(&id);
                    }
                }
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
                next.addresses.remove(&id);
                if next.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
            }
            MembershipChange::Replace { ref voters, ref learners } => {
                let target = Self::new(voters.iter().copied(), learners.iter().copied())?;
                if target.0.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
                if target.0.voters == self.0.voters && target.0.learners == self.0.learners {
                    return Err(MembershipError::Unchanged);
                }
                let changed = symmetric_difference(&self.0.voters, &target.0.voters);
                let outgoing = if changed <= 1 { Vec::new() } else { self.0.voters.clone() };
                next = Sets {
                    voters: target.0.voters.clone(),
                    learners: target.0.learners.clone(),
                    outgoing,
                    addresses: self.0.addresses.clone(),
                };
                next.prune_addresses();
            }
        }
        Self::build(next)
    }
}

fn check_address(id: NodeId, address: &Bytes) -> Result<(), MembershipError> {
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return Err(MembershipError::InvalidAddress { id, len: address.len() });
    }
    Ok(())
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
        for (&id, address) in &self.addresses {
            if !self.is_member(id) {
                return Err(MembershipError::NotMember(id));
            }
            check_address(id, address)?;
        }
        Ok(())
    }

    fn is_member(&self, id: NodeId) -> bool {
        [&self.voters, &self.learners, &self.outgoing].iter().any(|l| l.binary_search(&id).is_ok())
    }

    /// Drops the addresses of nodes that are not members.
    fn prune_addresses(&mut self) {
        let members = [&self.voters, &self.learners, &self.outgoing];
        self.addresses.retain(|id, _| members.iter().any(|l| l.binary_search(id).is_ok()));
    }
}

/// Version byte of the configuration encoding this build writes when a
/// member carries an address (version 2; it reads versions 1 and 2).
pub const MEMBERSHIP_FORMAT: u8 = 2;

/// Version byte of the configuration encoding without addresses (version
/// 1, as raft-io 0.7 wrote it), still written for a configuration without
/// any address.
pub const MEMBERSHIP_FORMAT_V1: u8 = 1;

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

    pub(super) fn m(voters: &[NodeId], learners: &[NodeId]) -> Membership {
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

    pub(super) fn addressed() -> Membership {
        m(&[1, 2], &[3]).with_address(1, "10.0.0.1:7001").unwrap().with_address(3, "h3:7").unwrap()
    }

    #[test]
    fn changes_carry_addresses() {
        let c = addressed();
        let add = MembershipChange::AddVoterAt { id: 4, address: "h4:1".into() };
        let four = c.apply(&add).unwrap();
        assert!(four.voters().contains(&4));
        assert_eq!(four.address(4).map(|a| &a[..]), Some(&b"h4:1"[..]));
        assert_eq!(four.address(1), c.address(1), "others keep theirs");
        let learner = c.apply(&MembershipChange::AddLearnerAt { id: 5, address: "h5:1".into() }).unwrap();
        assert!(learner.is_learner(5) && learner.address(5).is_some());
        let promoted = c.apply(&MembershipChange::Promote(3)).unwrap();
        assert_eq!(promoted.address(3), c.address(3));
        let removed = c.apply(&MembershipChange::Remove(3)).unwrap();
        assert_eq!(removed.address(3), None);
        let moved = c.apply(&MembershipChange::SetAddress { id: 2, address: Some("h2:9".into()) }).unwrap();
        assert_eq!(moved.address(2).map(|a| &a[..]), Some(&b"h2:9"[..]));
        assert_eq!((moved.voters(), moved.learners()), (c.voters(), c.learners()));
        let cleared = c.apply(&MembershipChange::SetAddress { id: 1, address: None }).unwrap();
        assert_eq!(cleared.address(1), None);
        // Refusals.
        let empty = MembershipChange::AddVoterAt { id: 4, address: Bytes::new() };
        assert_eq!(c.apply(&empty), Err(MembershipError::InvalidAddress { id: 4, len: 0 }));
        let long = MembershipChange::AddLearnerAt { id: 4, address: vec![b'x'; 256].into() };
        assert_eq!(c.apply(&long), Err(MembershipError::InvalidAddress { id: 4, len: 256 }));
        let stranger = MembershipChange::SetAddress { id: 9, address: Some("x".into()) };
        assert_eq!(c.apply(&stranger), Err(MembershipError::NotMember(9)));
        let same = MembershipChange::SetAddress { id: 1, address: Some("10.0.0.1:7001".into()) };
        assert_eq!(c.apply(&same), Err(MembershipError::Unchanged));
        assert_eq!(c.with_address(9, "x"), Err(MembershipError::NotMember(9)));
        // A joint replacement keeps the outgoing voters' addresses until it is left.
        let joint = c.apply(&MembershipChange::Replace { voters: vec![4, 5], learners: vec![3] }).unwrap();
        assert!(joint.is_joint());
        assert!(joint.address(1).is_some() && joint.address(3).is_some());
        let left = joint.leave_joint();
        assert_eq!(left.address(1), None);
        assert!(left.address(3).is_some());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips_with_addresses(v in proptest::collection::btree_set(1u64..50, 1..6),
                                                    pick in proptest::collection::vec(any::<bool>(), 6),
                                                    len in 1usize..=MAX_ADDRESS_LEN) {
            let mut c = Membership::new(v.iter().copied(), []).unwrap();
            for (id, keep) in v.iter().zip(pick) {
                if keep {
                    c = c.with_address(*id, vec![b'a'; len]).unwrap();
                }
            }
            let bytes = c.encode();
            prop_assert_eq!(bytes.len(), c.encoded_len());
            prop_assert_eq!(Membership::decode(&bytes).unwrap(), c);
        }

        #[test]
        fn encode_decode_round_trips(v in proptest::collection::btree_set(1u64..50, 1..6),
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
