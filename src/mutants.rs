//! Deliberate bugs, for proving that the checkers bite (`docs/TESTING.md`,
//! "Mutation table"). Compiled only with `RUSTFLAGS="--cfg raft_io_mutants"`
//! (never in a normal build, where [`mutant!`] is the constant `false`); in
//! such a build one mutant at a time is switched on at run time with
//! [`set`], process-wide.

use std::sync::atomic::{AtomicU8, Ordering};

/// The deliberate bugs. Each names the rule it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Mutant {
    /// A leader commits an entry of an earlier term by counting replicas
    /// (the Figure 8 bug of the Raft paper).
    CommitPreviousTerm = 1,
    /// A vote is granted without checking that the candidate's log is at
    /// least as up to date.
    VoteWithoutLogCheck,
    /// A restarted node forgets whom it voted for.
    ForgetVoteOnRestart,
    /// A new leader changes the configuration before an entry of its term
    /// commits (the single-server change bug).
    EarlyMembershipChange,
    /// A leader answers a ReadIndex read without a heartbeat round.
    ReadIndexWithoutQuorum,
    /// The read lease lasts the maximum election timeout instead of the
    /// minimum less the drift.
    LongLease,
    /// Followers grant votes while they hear from a live leader (no leader
    /// stickiness).
    NoStickiness,
    /// A follower installs a snapshot older than its commit index.
    SnapshotBackwards,
    /// `WalLog` serves a snapshot file without checking its CRC.
    SnapshotCrcUnchecked,
    /// A follower appends without checking the entry before the new ones.
    SkipConsistencyCheck,
    /// Asynchronous storage: every message leaves at once, before the
    /// writes it promises are durable.
    HoldNothing,
    /// Asynchronous storage: a leader counts its whole log toward a commit,
    /// durable or not.
    CountUndurableSelf,
    /// `RaftNode::visit_applied` lends `first..last`, leaving out the last
    /// command of every `Action::ApplyRange` (an off-by-one).
    ApplyRangeShort,
    /// A joint configuration commits entries with a quorum of its incoming
    /// voters alone, without one of the outgoing voters (the joint
    /// consensus rule broken).
    JointIgnoresOutgoing,
    /// A configuration entry does not raise the node's bound on its last
    /// no-op or configuration entry: with `apply_ranges`, a run over it is
    /// handed over without reading it, and without its
    /// `Action::MembershipCommitted`.
    UntrackedConfigEntry,
    /// A leader serves a lease read before an entry of its term has
    /// committed: its commit index may still miss what the previous
    /// leader committed.
    LeaseBeforeTermCommit,
    /// A read lease runs from when a heartbeat round's answers arrived,
    /// not from when the round was sent.
    LeaseFromAnswers,
}

impl Mutant {
    /// Every mutant.
    pub const ALL: [Mutant; 17] = [
        Self::CommitPreviousTerm,
        Self::VoteWithoutLogCheck,
        Self::ForgetVoteOnRestart,
        Self::EarlyMembershipChange,
        Self::ReadIndexWithoutQuorum,
        Self::LongLease,
        Self::NoStickiness,
        Self::SnapshotBackwards,
        Self::SnapshotCrcUnchecked,
        Self::SkipConsistencyCheck,
        Self::HoldNothing,
        Self::CountUndurableSelf,
        Self::ApplyRangeShort,
        Self::JointIgnoresOutgoing,
        Self::UntrackedConfigEntry,
        Self::LeaseBeforeTermCommit,
        Self::LeaseFromAnswers,
    ];
}

static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Switches `mutant` on (and every other off), or all off with `None`.
pub fn set(mutant: Option<Mutant>) {
    ACTIVE.store(mutant.map_or(0, |m| m as u8), Ordering::SeqCst);
}

/// The mutant switched on, if any.
pub fn active() -> Option<Mutant> {
    let v = ACTIVE.load(Ordering::Relaxed);
    Mutant::ALL.into_iter().find(|m| *m as u8 == v)
}

/// Whether `mutant` is switched on.
#[inline]
pub fn is_on(mutant: Mutant) -> bool {
    ACTIVE.load(Ordering::Relaxed) == mutant as u8
}
