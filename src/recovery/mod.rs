//! Recovering a cluster that lost a quorum for good (`docs/PROTOCOL.md`
//! §7.4): an offline operation on one surviving node's log, done while
//! the node is stopped.
//!
//! Raft makes progress only while a majority of the voters is up. When a
//! majority is lost and cannot come back (disks destroyed, machines gone),
//! the survivors can never elect a leader again. The way out is to choose a
//! survivor, usually the one whose log is the most up to date
//! ([`inspect`] each and compare [`LogSummary::last_term`], then
//! [`LogSummary::last_index`]), and make it the only voter of a new
//! configuration ([`force_voters`]): restarted, it elects itself, commits
//! everything its log holds, and new members are then added the usual
//! way, as joining nodes that fetch its snapshot.
//!
//! **This gives up Raft's guarantees for what the chosen log lacks.** An
//! entry committed by the lost majority but missing from the survivor's
//! log is lost, and entries the survivor holds that never committed are
//! committed. And every node that is not recovered must never run again
//! with its old state: wipe it and add it back as a new, joining node.
//! One old node restarted by mistake is refused by the recovered one (told
//! it was removed); two old voters restarted together would still form a
//! majority of the old configuration and could elect a leader of their
//! own.
//!
//! When every node is lost, [`seed`] starts a new cluster from a backup
//! of a state machine's snapshot (its data, and the index and term it was
//! taken at): it writes the snapshot into a new, unused log, with a
//! configuration the caller chooses; the node started on that log restores
//! the snapshot into its state machine, elects itself, and new members
//! join it and fetch the snapshot. Everything committed after the backup
//! was taken is lost. [`take_backup`] takes, from any node's log, its
//! snapshot and the committed entries after it; `Backup::encode` and
//! `Backup::decode` (feature `persistence`) keep it as a checksummed file;
//! [`restore`] starts
//! the new cluster from it (the old cluster's state through the last
//! entry the backup holds).
//!
//! ```
//! use raft_io::recovery;
//! use raft_io::{Event, RaftConfig, RaftNode};
//!
//! // Node 1 of a three-node cluster whose nodes 2 and 3 are gone.
//! let mut node = RaftNode::new(RaftConfig::new(1, [1, 2, 3])).unwrap();
//! node.step(Event::Campaign).unwrap(); // refused votes never come
//! let mut log = node.log().durable();
//! assert_eq!(recovery::inspect(&log).unwrap().membership.voters(), [1, 2, 3]);
//!
//! let forced = recovery::force_voters(&mut log, &[1]).unwrap();
//! assert_eq!(forced.membership.voters(), [1]);
//!
//! // Restarted on the recovered log, it leads alone.
//! let mut node = RaftNode::with_log(RaftConfig::new(1, [1, 2, 3]), log).unwrap();
//! node.step(Event::Campaign).unwrap();
//! assert!(node.is_leader());
//! ```

mod backup;

use bytes::Bytes;

pub use backup::{Backup, BackupError, restore, take_backup};

use crate::error::StorageError;
use crate::log::{RaftLog, holds_state, visit_configurations};
use crate::membership::{Membership, MembershipError};
use crate::types::{Entry, HardState, Index, LogIdentity, MAX_TERM, NodeId, SnapshotMeta, Term};

/// Why a recovery was refused. A refusal writes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The log records no owner: it was never used by a node.
    #[error("the log records no owner (it was never used by a node)")]
    NoIdentity,
    /// The new configuration has no voter.
    #[error("the new configuration has no voter")]
    NoVoters,
    /// A new voter other than the log's own node is one the log names in a
    /// configuration: a member of the old cluster, whose old log, forced as
    /// well or restarted, could hold other entries under the same index and
    /// term as this one. Force one survivor alone; wipe every other old
    /// node and add it back as a new joining node once the survivor leads.
    #[error(
        "node {node} was a member of the old cluster: force this survivor alone, then add the others back as new, \
         wiped nodes"
    )]
    OldMember {
        /// The old member.
        node: NodeId,
    },
    /// The log's own node is not among the new voters: it could not lead.
    #[error("node {node}, whose log this is, is not among the new voters")]
    NotAVoter {
        /// The log's node.
        node: NodeId,
    },
    /// The new voters do not make a valid configuration (a zero id, a
    /// duplicate).
    #[error("invalid configuration: {0}")]
    Membership(#[from] MembershipError),
    /// The log's term leaves no room below [`MAX_TERM`] for a new term and
    /// an election after it.
    #[error("the log's term {0} leaves no room for a new term and an election")]
    TermExhausted(Term),
    /// A configuration entry in the log could not be decoded.
    #[error("the configuration entry at index {index} is unreadable: {source}")]
    CorruptConfiguration {
        /// Its index.
        index: Index,
        /// Why it could not be decoded.
        source: MembershipError,
    },
    /// [`seed`] or [`restore`] was given a log that is in use (an owner,
    /// entries, a snapshot or a hard state): a new cluster starts on a new
    /// log only.
    #[error("the log is in use (seed a new, empty log)")]
    InUse,
    /// [`seed`] was given a snapshot at index 0, or in term 0 (a snapshot
    /// of a state machine that applied anything is at index 1 or more, in
    /// term 1 or more).
    #[error("a backup must be of a snapshot at index 1 or more, in term 1 or more (given index {index}, term {term})")]
    NotASnapshot {
        /// The index given.
        index: Index,
        /// The term given.
        term: Term,
    },
    /// [`restore`] was given a backup that breaks [`Backup::check`]
    /// ([`take_backup`]: a log with nothing committed, or with a
    /// configuration entry that does not decode).
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    /// [`restore`] or [`seed`] was given a joint configuration: a new
    /// cluster starts with one set of voters.
    #[error("a new cluster's configuration must not be joint")]
    JointConfiguration,
    /// [`restore`] was asked to restore a backup into the cluster it was
    /// taken from: the new cluster needs a new cluster id, so that no old
    /// node can ever talk to it.
    #[error("the backup was taken from cluster {0}: restore it as a new cluster (another cluster id)")]
    SameCluster(u64),
    /// [`restore`] was given a backup with an entry larger than the log
    /// makes durable in one step ([`RaftLog::max_step_bytes`]):
    /// the log could never hold it. Nothing was written; restore into a log
    /// with larger records (a `WalLog`'s `max_record_size`).
    #[error(
        "the entry at index {index} ({bytes} bytes) does not fit the {max} bytes the log makes durable in one step"
    )]
    EntryTooLarge {
        /// Its index.
        index: Index,
        /// Its size, as the log counts it.
        bytes: u64,
        /// What the log makes durable in one step.
        max: u64,
    },
    /// [`take_backup`] was given a log that contradicts itself (a commit
    /// index past its last entry, or entries missing): a node refuses it too.
    #[error("the log is inconsistent: {0}")]
    CorruptLog(String),
    /// The log refused a read or a write.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// What a log holds, for choosing the survivor to recover from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogSummary {
    /// The cluster and node the log belongs to (`None` for a log never
    /// used by a node).
    pub identity: Option<LogIdentity>,
    /// The term, vote and commit index recorded.
    pub hard_state: HardState,
    /// The index of the snapshot the log starts after.
    pub snapshot_index: Index,
    /// The index of the last entry (the snapshot's for a log without one).
    pub last_index: Index,
    /// The term of the last entry (the snapshot's for a log without one):
    /// the survivor with the highest `last_term`, then `last_index`, holds
    /// every entry any survivor knows committed.
    pub last_term: Term,
    /// The configuration in effect: the last configuration entry in the
    /// log, or the snapshot's.
    pub membership: Membership,
    /// Where it comes from: its entry's index, or the snapshot's.
    pub membership_index: Index,
}

/// Reads what `log` holds (see [`LogSummary`]).
///
/// # Errors
///
/// [`RecoveryError::Storage`] if the log cannot be read,
/// [`RecoveryError::CorruptConfiguration`] for a configuration entry that
/// does not decode.
pub fn inspect<L: RaftLog>(log: &L) -> Result<LogSummary, RecoveryError> {
    let snapshot = log.snapshot_meta();
    let last_index = log.last_index();
    let last_term = log.term(last_index).ok_or(StorageError::Unavailable { index: last_index, last: last_index })?;
    let (mut membership_index, mut membership) = (snapshot.index, snapshot.membership.clone());
    // The last configuration entry is in effect.
    visit_memberships(log, |index, m| (membership_index, membership) = (index, m))?;
    Ok(LogSummary {
        identity: log.identity(),
        hard_state: log.hard_state(),
        snapshot_index: snapshot.index,
        last_index,
        last_term,
        membership,
        membership_index,
    })
}

/// What [`force_voters`] writes (or, from [`check_voters`], would write).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forced {
    /// The configuration in effect before.
    pub previous: Membership,
    /// The configuration written: the new voters, no learners, each voter
    /// keeping the address it had.
    pub membership: Membership,
    /// The index of the configuration entry written (one past the log's
    /// last entry).
    pub index: Index,
    /// Its term: one past the log's term, which the hard state now records
    /// (with no vote).
    pub term: Term,
}

/// Makes `voters` the only voters of `log`'s cluster, as the log's node
/// will see it once restarted on it: appends a configuration entry of
/// `voters` (no learners; each keeps the address the configuration in
/// effect gave it) one past the last entry, in a new term that the hard
/// state records with no vote, and syncs. The log's node must be one of
/// `voters`. Run it on a stopped node's log; see the [module
/// docs](self) for what it gives up, and for the nodes that must then be
/// wiped.
///
/// With `voters` its own id alone, the restarted node elects itself, and
/// every other node comes back through a membership change, wiped, as a
/// new joining node. The other voters may only be nodes the log never
/// named ([`RecoveryError::OldMember`] otherwise), started as joining
/// nodes: the restarted node needs a majority of them to lead. Forcing
/// two survivors together is refused because it is not safe: each would
/// write its configuration entry one past its own last entry, in a term
/// worked out from its own log, so two logs that differ before that
/// index could hold an entry with the same index and term, and the node
/// whose log is less up to date could win the election and lose what the
/// other knew committed.
///
/// The new term is above every term the log holds, so the forced entry
/// outranks the survivor's own history; it says nothing of the logs of the
/// lost nodes, which may hold later terms: they must be wiped.
///
/// # Errors
///
/// A refusal ([`RecoveryError::NoIdentity`], [`RecoveryError::NoVoters`],
/// [`RecoveryError::NotAVoter`], [`RecoveryError::OldMember`], [`RecoveryError::Membership`],
/// [`RecoveryError::TermExhausted`], [`RecoveryError::CorruptConfiguration`])
/// writes nothing; [`RecoveryError::Storage`] from the write leaves what a
/// failed write of the log leaves (reopen it and inspect).
pub fn force_voters<L: RaftLog>(log: &mut L, voters: &[NodeId]) -> Result<Forced, RecoveryError> {
    let forced = check_voters(log, voters)?;
    let commit = log.hard_state().commit;
    log.append(&mut vec![Entry::config(forced.term, forced.index, &forced.membership)])?;
    log.set_hard_state(HardState { term: forced.term, vote: None, commit })?;
    log.sync()?;
    Ok(forced)
}

/// What [`force_voters`] would write on `log`, or why it would refuse,
/// writing nothing: to check every log (every group of a shared WAL)
/// before changing any.
///
/// # Errors
///
/// As [`force_voters`]'s refusals.
pub fn check_voters<L: RaftLog>(log: &L, voters: &[NodeId]) -> Result<Forced, RecoveryError> {
    let identity = log.identity().ok_or(RecoveryError::NoIdentity)?;
    check_votes(voters, identity.node_id)?;
    let summary = inspect(log)?;
    check_new_voters(log, voters, identity.node_id)?;
    let mut membership = Membership::new(voters.iter().copied(), [])?;
    for (id, address) in summary.membership.addresses() {
        if membership.is_voter(id) {
            membership = membership.with_address(id, address.clone())?;
        }
    }
    let newest = summary.hard_state.term.max(summary.last_term);
    check_room(newest)?;
    Ok(Forced { previous: summary.membership, membership, index: summary.last_index + 1, term: newest + 1 })
}

/// Every configuration entry of `log`, decoded, in order: each must
/// decode, as a node restarting on the log requires.
fn visit_memberships<L: RaftLog>(log: &L, mut f: impl FnMut(Index, Membership)) -> Result<(), RecoveryError> {
    visit_configurations(log, |e| {
        let m = Membership::decode(&e.data)
            .map_err(|source| RecoveryError::CorruptConfiguration { index: e.index, source })?;
        f(e.index, m);
        Ok::<(), RecoveryError>(())
    })
}

/// Refuses a voter in `voters`, other than `node`, that a configuration
/// `log` holds names (its snapshot's or an entry's): survivors forced
/// together could each write their configuration entry at the same index
/// in the same term over logs that differ before it, and Log Matching
/// would no longer hold between them (PROTOCOL.md §7.4).
fn check_new_voters<L: RaftLog>(log: &L, voters: &[NodeId], node: NodeId) -> Result<(), RecoveryError> {
    let named = |m: &Membership| voters.iter().copied().find(|&v| v != node && m.members().any(|x| x == v));
    let mut old = named(&log.snapshot_meta().membership);
    visit_memberships(log, |_, m| old = old.or_else(|| named(&m)))?;
    match old {
        Some(node) => Err(RecoveryError::OldMember { node }),
        None => Ok(()),
    }
}

/// A new configuration of `voters` must have one, and `node` among them
/// (the node recovered must be able to lead).
fn check_votes(voters: &[NodeId], node: NodeId) -> Result<(), RecoveryError> {
    if voters.is_empty() {
        return Err(RecoveryError::NoVoters);
    }
    if !voters.contains(&node) {
        return Err(RecoveryError::NotAVoter { node });
    }
    Ok(())
}

/// After `term`, room below [`MAX_TERM`] for the term written and one more
/// for the node's first election.
fn check_room(term: Term) -> Result<(), RecoveryError> {
    if term >= MAX_TERM - 1 {
        return Err(RecoveryError::TermExhausted(term));
    }
    Ok(())
}

/// Starts a new cluster from a backup of a state machine's snapshot, when
/// every node of the old one is lost: writes into `log`, a new and unused
/// log of the node `identity`, a snapshot at `meta.index` in `meta.term`
/// holding `data`, with `meta.membership` as the configuration (choose the
/// new cluster's voters; the node must be one of them), a hard state in
/// that term with no vote and everything through the snapshot committed,
/// and syncs.
///
/// The node started on the log (with the same identity, and
/// [`RaftConfig::applied`](crate::RaftConfig::applied) below `meta.index`)
/// hands the snapshot to its state machine with
/// [`Action::RestoreSnapshot`](crate::Action::RestoreSnapshot), elects
/// itself if it is the only voter, and grows the cluster back with new
/// joining nodes, which fetch the snapshot. Log indexes and terms go on
/// from the snapshot's. What the old cluster committed after the backup
/// was taken is lost, and no node of the old cluster may run again with
/// its old state (give the new cluster a new
/// [`cluster_id`](LogIdentity::cluster_id) so that the transport refuses
/// old nodes by name).
///
/// A backup is what a node's log held as its snapshot
/// ([`RaftLog::snapshot_meta`] and [`RaftLog::snapshot_data`]), or what a
/// state machine produced for [`Event::Snapshot`](crate::Event::Snapshot)
/// with the index and term it was taken at. A [`Backup`] taken from a log
/// ([`take_backup`]) also holds the committed entries after the snapshot:
/// [`restore`] it instead (`seed` is `restore` of a backup that holds no
/// entry).
///
/// # Errors
///
/// A refusal writes nothing: [`RecoveryError::InUse`] for a log that
/// holds anything, [`RecoveryError::NotASnapshot`] for index or term 0,
/// [`RecoveryError::Backup`] for an index at or above [`MAX_TERM`],
/// [`RecoveryError::JointConfiguration`], [`RecoveryError::NoVoters`], [`RecoveryError::NotAVoter`] (the node is
/// not a voter of `meta.membership`), [`RecoveryError::TermExhausted`] (no
/// room below [`MAX_TERM`] for an election after `meta.term`);
/// [`RecoveryError::Storage`] from the writes leaves what a failed write of
/// the log leaves (start again on a new log).
///
/// ```
/// use raft_io::recovery;
/// use raft_io::{Action, Event, LogIdentity, MemoryLog, Membership, RaftConfig, RaftNode, SnapshotMeta};
///
/// // A backup taken at index 40 in term 3, of a cluster now lost.
/// let backup = bytes::Bytes::from_static(b"the state machine at 40");
/// let meta = SnapshotMeta { index: 40, term: 3, membership: Membership::new([1], []).unwrap() };
/// let mut log = MemoryLog::new();
/// recovery::seed(&mut log, LogIdentity { cluster_id: 2, node_id: 1 }, meta, backup.clone()).unwrap();
///
/// let mut node = RaftNode::with_log(RaftConfig::new(1, [1]).cluster_id(2), log).unwrap();
/// let restored: Vec<_> = node.step(Event::Campaign).unwrap().collect();
/// assert!(restored.iter().any(|a| matches!(a, Action::RestoreSnapshot { data, .. } if *data == backup)));
/// assert!(node.is_leader());
/// assert_eq!(node.last_index(), 41, "its no-op follows the snapshot");
/// ```
pub fn seed<L: RaftLog>(
    log: &mut L,
    identity: LogIdentity,
    meta: SnapshotMeta,
    data: Bytes,
) -> Result<(), RecoveryError> {
    if in_use(log) {
        return Err(RecoveryError::InUse);
    }
    if meta.index == 0 || meta.term == 0 {
        return Err(RecoveryError::NotASnapshot { index: meta.index, term: meta.term });
    }
    let membership = meta.membership.clone();
    restore(log, identity, &Backup { source: None, snapshot: meta, data, entries: Vec::new() }, membership)
}

/// Whether `log` was used: an owner, entries, a snapshot or a hard state.
/// A new cluster starts on a new log only.
fn in_use<L: RaftLog>(log: &L) -> bool {
    log.identity().is_some() || holds_state(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryLog;

    fn owned() -> MemoryLog {
        let mut log = MemoryLog::new();
        log.set_identity(LogIdentity { cluster_id: 7, node_id: 2 }).unwrap();
        let base = Membership::new([1, 2, 3], [4]).unwrap().with_address(2, "b:1").unwrap();
        log.install_snapshot(crate::SnapshotMeta { index: 0, term: 0, membership: base }, bytes::Bytes::new()).unwrap();
        log.append(&mut vec![Entry::normal(1, 1, "a".into()), Entry::normal(3, 2, "b".into())]).unwrap();
        log.set_hard_state(HardState { term: 4, vote: Some(3), commit: 1 }).unwrap();
        log.sync().unwrap();
        log
    }

    #[test]
    fn a_refusal_writes_nothing() {
        let mut log = owned();
        let before = inspect(&log).unwrap();
        assert!(matches!(force_voters(&mut log, &[]), Err(RecoveryError::NoVoters)));
        assert!(matches!(force_voters(&mut log, &[1, 3]), Err(RecoveryError::NotAVoter { node: 2 })));
        assert!(matches!(force_voters(&mut log, &[2, 0]), Err(RecoveryError::Membership(_))));
        // Old members: a voter, a learner, and a node only an older
        // configuration names.
        assert!(matches!(force_voters(&mut log, &[2, 3]), Err(RecoveryError::OldMember { node: 3 })));
        assert!(matches!(force_voters(&mut log, &[2, 4, 6]), Err(RecoveryError::OldMember { node: 4 })));
        let mut moved_on = owned();
        moved_on.append(&mut vec![Entry::config(4, 3, &Membership::new([2, 5], []).unwrap())]).unwrap();
        moved_on.sync().unwrap();
        assert!(matches!(force_voters(&mut moved_on, &[2, 1]), Err(RecoveryError::OldMember { node: 1 })));
        assert!(matches!(force_voters(&mut moved_on, &[2, 5]), Err(RecoveryError::OldMember { node: 5 })));
        assert!(matches!(force_voters(&mut MemoryLog::new(), &[1]), Err(RecoveryError::NoIdentity)));
        let mut exhausted = owned();
        exhausted.set_hard_state(HardState { term: MAX_TERM - 1, vote: None, commit: 1 }).unwrap();
        assert!(matches!(force_voters(&mut exhausted, &[2]), Err(RecoveryError::TermExhausted(_))));
        let mut damaged = owned();
        damaged.append(&mut vec![Entry::config(3, 3, &Membership::new([2], []).unwrap())]).unwrap();
        let mut bad = Entry::config(3, 4, &Membership::new([2], []).unwrap());
        bad.data = bytes::Bytes::from_static(b"not a configuration");
        damaged.append(&mut vec![bad, Entry::config(3, 5, &Membership::new([2], []).unwrap())]).unwrap();
        damaged.sync().unwrap();
        assert!(matches!(inspect(&damaged), Err(RecoveryError::CorruptConfiguration { index: 4, .. })));
        assert!(matches!(force_voters(&mut damaged, &[2]), Err(RecoveryError::CorruptConfiguration { index: 4, .. })));
        assert_eq!(inspect(&log).unwrap(), before);
        assert!(!log.has_unsynced_changes());
        let mut last_room = owned();
        last_room.set_hard_state(HardState { term: MAX_TERM - 2, vote: None, commit: 1 }).unwrap();
        assert_eq!(force_voters(&mut last_room, &[2]).unwrap().term, MAX_TERM - 1);
    }

    fn backup(index: Index, term: Term, voters: &[NodeId]) -> SnapshotMeta {
        SnapshotMeta { index, term, membership: Membership::new(voters.iter().copied(), [9]).unwrap() }
    }

    #[test]
    fn a_seed_refused_writes_nothing() {
        let me = LogIdentity { cluster_id: 4, node_id: 1 };
        let data = Bytes::from_static(b"state");
        let refused = |log: &mut MemoryLog, meta: SnapshotMeta| {
            let before = format!("{:?}", log.durable());
            let result = seed(log, me, meta, data.clone());
            assert_eq!(format!("{:?}", log.durable()), before, "a refusal wrote something");
            assert!(!log.has_unsynced_changes());
            result
        };
        // Every kind of use of a log refuses it.
        let mut owned = MemoryLog::new();
        owned.set_identity(me).unwrap();
        owned.sync().unwrap();
        let mut appended = MemoryLog::new();
        appended.append(&mut vec![Entry::normal(1, 1, "a".into())]).unwrap();
        appended.sync().unwrap();
        let mut snapshotted = MemoryLog::new();
        snapshotted.install_snapshot(backup(3, 1, &[1]), data.clone()).unwrap();
        snapshotted.sync().unwrap();
        let mut voted = MemoryLog::new();
        voted.set_hard_state(HardState { term: 1, vote: Some(2), commit: 0 }).unwrap();
        voted.sync().unwrap();
        for mut log in [owned, appended, snapshotted, voted] {
            assert!(matches!(refused(&mut log, backup(5, 2, &[1])), Err(RecoveryError::InUse)));
        }
        let mut new = MemoryLog::new();
        assert!(matches!(
            refused(&mut new, backup(0, 2, &[1])),
            Err(RecoveryError::NotASnapshot { index: 0, term: 2 })
        ));
        assert!(matches!(
            refused(&mut new, backup(5, 0, &[1])),
            Err(RecoveryError::NotASnapshot { index: 5, term: 0 })
        ));
        let learners_only =
            SnapshotMeta { index: 5, term: 2, membership: Membership::new([], [1]).unwrap_or_default() };
        assert!(matches!(refused(&mut new, learners_only), Err(RecoveryError::NoVoters)));
        assert!(matches!(refused(&mut new, backup(5, 2, &[2, 3])), Err(RecoveryError::NotAVoter { node: 1 })));
        assert!(matches!(refused(&mut new, backup(5, MAX_TERM - 1, &[1])), Err(RecoveryError::TermExhausted(_))));
        // The last term that leaves room for an election.
        seed(&mut new, me, backup(5, MAX_TERM - 2, &[1]), data).unwrap();
        assert_eq!(new.durable().hard_state(), HardState { term: MAX_TERM - 2, vote: None, commit: 5 });
    }

    #[test]
    fn a_seed_writes_the_owner_the_snapshot_and_a_committed_hard_state() {
        let me = LogIdentity { cluster_id: 4, node_id: 2 };
        let meta = backup(12, 3, &[1, 2, 3]);
        let mut log = MemoryLog::new();
        seed(&mut log, me, meta.clone(), Bytes::from_static(b"state at 12")).unwrap();
        let durable = log.durable();
        assert_eq!(durable.identity(), Some(me));
        assert_eq!(durable.snapshot_meta(), &meta, "the configuration given, learners too");
        assert_eq!(&durable.snapshot_data().unwrap()[..], b"state at 12");
        assert_eq!(durable.hard_state(), HardState { term: 3, vote: None, commit: 12 });
        assert_eq!((durable.last_index(), durable.term(12)), (12, Some(3)));
        let summary = inspect(&durable).unwrap();
        assert_eq!((summary.snapshot_index, summary.last_term, summary.membership_index), (12, 3, 12));
    }

    #[test]
    fn the_entry_is_in_a_new_term_past_the_last_and_keeps_the_voters_addresses() {
        let mut log = owned();
        let planned = check_voters(&log, &[2, 5]).unwrap();
        assert_eq!(log.last_index(), 2, "checking writes nothing");
        let forced = force_voters(&mut log, &[2, 5]).unwrap();
        assert_eq!(forced, planned);
        assert_eq!((forced.index, forced.term), (3, 5));
        assert_eq!(forced.previous.voters(), [1, 2, 3]);
        assert_eq!(forced.membership.voters(), [2, 5]);
        assert!(forced.membership.learners().is_empty());
        assert_eq!(forced.membership.address(2).map(|a| &a[..]), Some(&b"b:1"[..]));
        let after = log.durable();
        assert_eq!(after.hard_state(), HardState { term: 5, vote: None, commit: 1 });
        let summary = inspect(&after).unwrap();
        assert_eq!((summary.last_index, summary.last_term, summary.membership_index), (3, 5, 3));
        assert_eq!(summary.membership, forced.membership);
    }
}
