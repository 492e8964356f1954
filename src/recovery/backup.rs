//! Backups of a cluster's committed state (`docs/PROTOCOL.md` §7.5): taken
//! from one node's log ([`take_backup`]), kept as a checksummed file
//! ([`Backup::encode`], [`Backup::decode`]), and restored into a new log
//! ([`restore`]) to start a new cluster when every node of the old one is
//! lost.

use bytes::Bytes;

use super::{RecoveryError, check_room, check_votes, in_use};
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::types::{Entry, EntryKind, HardState, Index, LogIdentity, MAX_TERM, SnapshotMeta, Term};

/// A cluster's committed state as one node's log held it: the log's
/// snapshot and every entry after it through the commit index the log
/// recorded.
///
/// Restored ([`restore`]), it gives a new cluster's first node a state
/// machine that applied exactly the old cluster's commands through
/// [`last_index`](Self::last_index), in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backup {
    /// The cluster and node whose log it was taken from (`None` for a log
    /// with no owner, or a backup built by [`seed`](super::seed)).
    pub source: Option<LogIdentity>,
    /// The snapshot the backup starts from (index 0, term 0 and no data
    /// for a log that never compacted): its configuration is the old
    /// cluster's, which [`restore`] replaces.
    pub snapshot: SnapshotMeta,
    /// The snapshot's data, as the state machine produced it.
    pub data: Bytes,
    /// The committed entries after the snapshot, in index order.
    pub entries: Vec<Entry>,
}

/// Why bytes are not a backup, or a backup is not one [`restore`] accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The bytes do not start with a backup's magic number.
    #[error("not a raft-io backup (no backup magic number)")]
    NotABackup,
    /// A backup format version this build does not read.
    #[error("backup format version {0} is not supported")]
    Version(u8),
    /// The checksum does not match: the file is damaged or cut short.
    #[error("the backup's checksum does not match (damaged or cut short)")]
    Checksum,
    /// The bytes, or the backup, break a rule of the format.
    #[error("malformed backup: {0}")]
    Malformed(&'static str),
}

impl Backup {
    /// The index of the last entry the backup holds (the snapshot's when it
    /// holds none): what a state machine restored from it has applied.
    pub fn last_index(&self) -> Index {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }

    /// The term of that entry (the snapshot's when it holds none).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// The old cluster's configuration at [`last_index`](Self::last_index):
    /// the last configuration entry the backup holds, or the snapshot's
    /// (`None` for a configuration entry that does not decode, which
    /// [`check`](Self::check) refuses). A tool restoring the backup takes
    /// the new voters' addresses from it.
    pub fn membership(&self) -> Option<Membership> {
        match self.entries.iter().rev().find(|e| e.kind == EntryKind::Config) {
            Some(e) => Membership::decode(&e.data).ok(),
            None => Some(self.snapshot.membership.clone()),
        }
    }

    /// Checks the rules every backup keeps, whether decoded or built in
    /// memory: a snapshot at index 0 is in term 0 with no data (and only
    /// it), and its term is at most [`MAX_TERM`]; the entries follow the
    /// snapshot without a gap, in terms from 1 to [`MAX_TERM`] that never
    /// go below the snapshot's nor decrease; the last index is below
    /// [`MAX_TERM`] (2^62, the WAL's bound on indexes; room for more); a
    /// no-op entry holds no data and a configuration entry decodes; and
    /// the backup holds something (a snapshot or an entry).
    pub fn check(&self) -> Result<(), BackupError> {
        let s = &self.snapshot;
        if (s.index == 0) != (s.term == 0) {
            return Err(BackupError::Malformed("a snapshot is at index 0 in term 0, or at neither"));
        }
        if s.index == 0 && !self.data.is_empty() {
            return Err(BackupError::Malformed("snapshot data without a snapshot"));
        }
        if s.term > MAX_TERM {
            return Err(BackupError::Malformed("the snapshot's term is above MAX_TERM"));
        }
        if s.index.saturating_add(self.entries.len() as u64) >= MAX_TERM {
            return Err(BackupError::Malformed("the last index leaves no room below 2^62 (MAX_TERM) for more entries"));
        }
        crate::log::check_run(s.index, s.term, MAX_TERM, &self.entries).map_err(BackupError::Malformed)?;
        if self.entries.iter().any(|e| e.kind == EntryKind::Noop && !e.data.is_empty()) {
            return Err(BackupError::Malformed("a no-op entry holds data"));
        }
        if s.index == 0 && self.entries.is_empty() {
            return Err(BackupError::Malformed("it holds nothing (no snapshot and no committed entry)"));
        }
        Ok(())
    }
}

/// Takes a backup of `log`: its snapshot (meta and data) and clones of its
/// entries after the snapshot through the commit index its hard state
/// records. Works on any log — a stopped node's `WalLog`, a group of a
/// shared WAL, or a running node's log in process
/// ([`RaftNode::log`](crate::RaftNode::log)): every entry taken is
/// committed, so the backup never holds anything the cluster could still
/// drop. The commit index a log records can lag the leader's; take the
/// backup from the node with the highest one ([`inspect`](super::inspect))
/// for the most recent state.
///
/// # Errors
///
/// [`RecoveryError::Storage`] if the log cannot be read,
/// [`RecoveryError::CorruptLog`] for a commit index past the last entry
/// (a node refuses such a log too) or a log whose
/// [`entries`](RaftLog::entries), with no byte limit, hands anything but
/// every committed entry after the snapshot, in order, [`RecoveryError::Backup`] for a log
/// that breaks [`Backup::check`] (one that holds nothing committed, or a
/// configuration entry that does not decode).
pub fn take_backup<L: RaftLog>(log: &L) -> Result<Backup, RecoveryError> {
    let snapshot = log.snapshot_meta().clone();
    let data = if snapshot.index == 0 { Bytes::new() } else { log.snapshot_data()? };
    let (commit, last) = (log.hard_state().commit, log.last_index());
    if commit > last {
        return Err(RecoveryError::CorruptLog(format!("the commit index {commit} is past the last index {last}")));
    }
    let commit = commit.max(snapshot.index);
    let mut entries = Vec::new();
    if commit > snapshot.index {
        log.entries(snapshot.index + 1, commit + 1, u64::MAX, &mut entries)?;
    }
    // Without a byte limit a log hands every entry asked for; one that
    // handed fewer (a log of another crate that pages its answers) would
    // make a backup that silently ends short of what was committed.
    let wanted = commit - snapshot.index;
    let contiguous = entries.iter().zip(snapshot.index + 1..).all(|(e, i)| e.index == i);
    if entries.len() as u64 != wanted || !contiguous {
        return Err(RecoveryError::CorruptLog(format!(
            "the log handed {} entries for the {wanted} committed after its snapshot at {} (indexes {:?}..)",
            entries.len(),
            snapshot.index,
            entries.first().map(|e| e.index)
        )));
    }
    let backup = Backup { source: log.identity(), snapshot, data, entries };
    backup.check()?;
    Ok(backup)
}

/// Starts a new cluster from `backup`, when every node of the old one is
/// lost: writes into `log`, a new and unused log of the node `identity`,
/// the backup's snapshot with `membership` as its configuration (choose the
/// new cluster's voters; the node must be one of them), the backup's
/// entries with every configuration entry among them written as a no-op at
/// its index and term (the old cluster's configurations must not take
/// effect in the new one), and a hard state in the last entry's term with
/// no vote and everything committed. It syncs after each piece of entries
/// that fits one sync ([`RaftLog::max_step_bytes`]; the owner and the
/// snapshot go with the first), and after the hard state, last: a log
/// whose restore failed part way holds part of the backup under a hard
/// state of term 0, below its snapshot's or its entries' term, and
/// [`RaftNode::with_log`](crate::RaftNode::with_log) refuses to start on
/// it ([`Error::CorruptLog`](crate::Error::CorruptLog)) — start again on a
/// new log.
///
/// The node started on the log (with the same identity) hands the snapshot
/// to its state machine ([`Action::RestoreSnapshot`](crate::Action::RestoreSnapshot))
/// and applies the entries after it: its state machine ends where the old
/// cluster's was at [`Backup::last_index`]. Alone a voter, it elects
/// itself; new members join it and catch up from it. What the old cluster
/// committed after the backup was taken is lost, and no node of the old
/// cluster may run again with its old state: give the new cluster a new
/// [`cluster_id`](LogIdentity::cluster_id), which the transport checks.
///
/// Restoring the same backup into several new logs, with the same
/// `membership`, gives nodes that start from the same committed state.
/// Every voter of `membership` must start on such a log, or on none:
/// nodes started on new, empty logs with a configuration of those voters
/// ([`RaftConfig::new`](crate::RaftConfig::new)) could make a majority
/// without the backup and commit a history of their own. Voters to come
/// later join as new nodes ([`RaftConfig::joining`](crate::RaftConfig::joining))
/// once the restored ones lead, or are restored too.
///
/// # Errors
///
/// A refusal writes nothing: [`RecoveryError::InUse`] for a log that holds
/// anything, [`RecoveryError::TermExhausted`] (no room below [`MAX_TERM`]
/// for an election after the backup's last term),
/// [`RecoveryError::Backup`] for a backup that breaks [`Backup::check`],
/// [`RecoveryError::SameCluster`] (`identity` names the cluster the backup
/// was taken from), [`RecoveryError::JointConfiguration`],
/// [`RecoveryError::NoVoters`], [`RecoveryError::NotAVoter`] (the node is
/// not a voter of `membership`), [`RecoveryError::EntryTooLarge`] (an
/// entry the log could never hold); [`RecoveryError::Storage`] from the writes leaves what a failed write of
/// the log leaves, which no node starts on (start again on a new log).
///
/// ```
/// use raft_io::recovery;
/// use raft_io::{Action, Event, LogIdentity, MemoryLog, Membership, RaftConfig, RaftNode};
///
/// // A single-node cluster commits three commands, then is lost.
/// let mut old = RaftNode::new(RaftConfig::new(1, [1]))?;
/// old.step(Event::Campaign)?;
/// for c in ["a", "b", "c"] {
///     old.step(Event::Propose(c.into()))?;
/// }
/// let backup = recovery::take_backup(old.log())?; // kept somewhere safe
///
/// // A new cluster (id 2), node 7 its only voter, restored from it.
/// let mut log = MemoryLog::new();
/// let identity = LogIdentity { cluster_id: 2, node_id: 7 };
/// recovery::restore(&mut log, identity, &backup, Membership::new([7], [])?)?;
///
/// let mut node = RaftNode::with_log(RaftConfig::new(7, [7]).cluster_id(2), log)?;
/// let applied: Vec<_> = node
///     .step(Event::Campaign)?
///     .filter_map(|a| match a {
///         Action::Apply { command, .. } => Some(command),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(applied, ["a", "b", "c"]);
/// assert!(node.is_leader());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn restore<L: RaftLog>(
    log: &mut L,
    identity: LogIdentity,
    backup: &Backup,
    membership: Membership,
) -> Result<(), RecoveryError> {
    if in_use(log) {
        return Err(RecoveryError::InUse);
    }
    let (last_index, last_term) = (backup.last_index(), backup.last_term());
    check_room(last_term)?;
    backup.check()?;
    if let Some(source) = backup.source.filter(|s| s.cluster_id == identity.cluster_id) {
        return Err(RecoveryError::SameCluster(source.cluster_id));
    }
    if membership.is_joint() {
        return Err(RecoveryError::JointConfiguration);
    }
    check_votes(membership.voters(), identity.node_id)?;
    let max = log.max_step_bytes();
    let restored = |e: &Entry| if e.kind == EntryKind::Config { Entry::noop(e.term, e.index) } else { e.clone() };
    if let Some(e) = backup.entries.iter().map(restored).find(|e| e.size() > max) {
        return Err(RecoveryError::EntryTooLarge { index: e.index, bytes: e.size(), max });
    }
    log.set_identity(identity)?;
    let meta = SnapshotMeta { index: backup.snapshot.index, term: backup.snapshot.term, membership };
    log.install_snapshot(meta, backup.data.clone())?;
    // The entries in pieces that each fit one sync of the log (a `WalLog`
    // record, whose room already counts the snapshot's configuration),
    // each synced, the first with the owner and the snapshot; the hard
    // state that commits them last. So every log a failed restore leaves
    // holding anything has a term (its snapshot's or an entry's) above its
    // hard state's, which `RaftNode::with_log` refuses to start on.
    let mut piece = Vec::new();
    let mut bytes = 0u64;
    for e in &backup.entries {
        if !piece.is_empty() && bytes.saturating_add(e.size()) > max {
            log.append(&mut piece)?;
            log.sync()?;
            piece.clear();
            bytes = 0;
        }
        bytes = bytes.saturating_add(e.size());
        piece.push(restored(e));
    }
    if !piece.is_empty() {
        log.append(&mut piece)?;
    }
    log.set_hard_state(HardState { term: last_term, vote: None, commit: last_index })?;
    log.sync()?;
    Ok(())
}

#[cfg(feature = "persistence")]
mod file;

#[cfg(test)]
mod tests;
