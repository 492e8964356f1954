//! Typed errors. Nothing in this crate panics on input from outside: a bad
//! proposal, configuration, message or durable byte is reported here or, for
//! peer messages Raft can tolerate losing, dropped.

use crate::membership::MembershipError;
use crate::types::{Index, NodeId, ReadId};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors returned by [`RaftNode`](crate::RaftNode) and the parts around it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid config field `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field of [`RaftConfig`](crate::RaftConfig).
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The request needs the leader; `leader` is the leader this node knows
    /// of, if any, as a hint to redirect, and `leader_address` the address
    /// the configuration in effect gives it, if any (opaque bytes; see
    /// [`Membership::address`](crate::Membership::address)).
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The known leader, if any.
        leader: Option<NodeId>,
        /// The known leader's address in the configuration in effect, if
        /// the leader is known and carries one.
        leader_address: Option<bytes::Bytes>,
    },
    /// Proposals are refused while a leadership transfer is pending.
    #[error("leadership transfer to {to} is pending")]
    TransferPending {
        /// The transfer target.
        to: NodeId,
    },
    /// Backpressure: accepting the proposal would exceed
    /// `max_uncommitted_bytes`. Nothing was appended.
    #[error("busy: {uncommitted} uncommitted bytes plus {proposed} proposed exceed the limit of {limit}")]
    Busy {
        /// Bytes appended by this leader and not yet committed.
        uncommitted: u64,
        /// Bytes of the refused proposal.
        proposed: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A proposal with no command, or an empty batch.
    #[error("empty proposal")]
    EmptyProposal,
    /// A command larger than the configured maximum message size.
    #[error("proposal of {size} bytes exceeds max_message_bytes {max}")]
    ProposalTooLarge {
        /// The command's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A proposal batch larger than what the log can make durable in one
    /// step ([`RaftLog::max_step_bytes`](crate::RaftLog::max_step_bytes)).
    /// Nothing was appended; split the batch.
    #[error("a proposal batch of {size} bytes exceeds the log's step limit of {max} bytes")]
    BatchTooLarge {
        /// The batch's size ([`Entry::size`](crate::Entry::size) summed).
        size: u64,
        /// What one step may append.
        max: u64,
    },
    /// [`Event::Campaign`](crate::Event::Campaign) was refused; nothing
    /// changed.
    #[error("cannot campaign: {0}")]
    CannotCampaign(CampaignRefusal),
    /// A membership change was refused; the configuration is unchanged.
    #[error("membership change refused: {0}")]
    Membership(#[from] MembershipError),
    /// A membership change is already in flight (appended, not yet applied).
    #[error("a membership change at index {index} is still pending")]
    ChangeInProgress {
        /// Index of the pending configuration entry.
        index: Index,
    },
    /// The leader has not yet committed an entry of its own term, so it may
    /// not change the configuration (the single-server change rule) or
    /// answer a request that needs it.
    #[error("the leader has not yet committed an entry of its term")]
    NotReady,
    /// The leadership transfer target is not a voter.
    #[error("cannot transfer leadership to {0}: not a voter")]
    InvalidTransferTarget(NodeId),
    /// A read with this id is already pending.
    #[error("read id {0} is already pending")]
    DuplicateRead(ReadId),
    /// Lease reads need `check_quorum` and `lease_reads` enabled.
    #[error("lease reads are not enabled (they require check_quorum)")]
    LeaseReadsDisabled,
    /// This node is not a voter or learner of the configuration.
    #[error("node {0} is not a member of the configuration")]
    NotMember(NodeId),
    /// A learner cannot serve this request.
    #[error("a learner cannot serve linearizable reads")]
    Learner,
    /// An application snapshot for an index not yet applied, or not newer than
    /// the current snapshot.
    #[error("snapshot index {index} is invalid (applied {applied}, current snapshot {current})")]
    InvalidSnapshot {
        /// The index the snapshot claims to cover.
        index: Index,
        /// The node's applied index.
        applied: Index,
        /// The index of the node's current snapshot.
        current: Index,
    },
    /// The log's recorded owner differs from the configuration.
    #[error("log belongs to cluster {found_cluster} node {found_node}, not cluster {cluster} node {node}")]
    WrongLog {
        /// Cluster id recorded in the log.
        found_cluster: u64,
        /// Node id recorded in the log.
        found_node: NodeId,
        /// Configured cluster id.
        cluster: u64,
        /// Configured node id.
        node: NodeId,
    },
    /// Durable state read back from a log is inconsistent.
    #[error("inconsistent log: {0}")]
    CorruptLog(String),
    /// The log storage failed. The node halts: drop it and reopen the log.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
    /// [`RaftNode::visit_applied`](crate::RaftNode::visit_applied) was asked
    /// for entries past the applied index. Nothing was read.
    #[error("entries {first}..={last} asked for, applied through {applied}")]
    NotApplied {
        /// The first index asked for.
        first: Index,
        /// The last index asked for.
        last: Index,
        /// The node's applied index.
        applied: Index,
    },
    /// [`RaftNode::visit_applied`](crate::RaftNode::visit_applied) was asked
    /// for entries the log no longer holds: a step taken since they were
    /// applied compacted them away (a snapshot taken or installed). Nothing
    /// was read; the node goes on.
    #[error("entries from {first} asked for, the log holds entries from {first_held}")]
    NotHeld {
        /// The first index asked for.
        first: Index,
        /// The first index the log holds.
        first_held: Index,
    },
    /// An earlier storage failure halted this node.
    #[error("node halted after a storage failure; reopen the log")]
    Halted,
    /// The simulator (feature `sim`): the node a request was sent to is not
    /// running — paused, down, or not in the cluster — so the request was
    /// not delivered and nothing was appended (unlike [`Error::Halted`] from
    /// a node that died inside the step, whose write may still take
    /// effect).
    #[error("node {0} is not running (paused, down or unknown): request not delivered")]
    NotRunning(NodeId),
    /// An [`Event::Persisted`](crate::Event::Persisted) named a write this
    /// node cannot take as complete. Nothing changed.
    #[error("completion of {token} refused: {reason}")]
    BadCompletion {
        /// The token reported.
        token: crate::log::WriteToken,
        /// Why it was refused.
        reason: CompletionRefusal,
    },
}

/// Why a node refused a write completion ([`Error::BadCompletion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CompletionRefusal {
    /// The node runs in the synchronous storage mode: it issues no tokens.
    #[error("the node is not in the asynchronous storage mode")]
    NotAsync,
    /// The token comes from another run of the node (before a restart) or
    /// from another node.
    #[error("the token belongs to another run of the node")]
    OtherEpoch,
    /// The node never submitted a write with this number.
    #[error("no such write was submitted")]
    NotSubmitted,
    /// This write (or a later one, which covers it) was reported already.
    #[error("the write was reported complete already")]
    AlreadyReported,
}

impl Error {
    /// Whether the node (or the attempt to build it) cannot go on: the log
    /// failed or is damaged, belongs to another node, or the configuration
    /// is invalid. Retrying the same call gives the same error; an operator
    /// must act (reopen or repair the log, fix the configuration).
    ///
    /// ```
    /// use raft_io::Error;
    /// assert!(Error::Halted.is_fatal());
    /// assert!(!Error::NotLeader { leader: Some(2), leader_address: None }.is_fatal());
    /// ```
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Storage(_)
                | Error::Halted
                | Error::CorruptLog(_)
                | Error::WrongLog { .. }
                | Error::InvalidConfig { .. }
        )
    }

    /// Whether the same request may succeed later, unchanged: it reached a
    /// node that is not (or not yet) able to serve it — not the leader
    /// (retry at the hinted one), busy, a transfer or configuration change
    /// in progress, a leader whose term has not committed yet, a leader's
    /// lease in force. Other refusals are about the request itself and fail
    /// again the same way.
    ///
    /// ```
    /// use raft_io::Error;
    /// assert!(Error::NotLeader { leader: None, leader_address: None }.is_retryable());
    /// assert!(!Error::EmptyProposal.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::TransferPending { .. }
                | Error::Busy { .. }
                | Error::ChangeInProgress { .. }
                | Error::NotReady
                | Error::CannotCampaign(CampaignRefusal::LeaderLease)
        )
    }
}

/// Why a node refused to start an election on
/// [`Event::Campaign`](crate::Event::Campaign).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignRefusal {
    /// It is already the leader.
    #[error("already the leader")]
    AlreadyLeader,
    /// It is not a voter of its configuration (a learner, a joining node
    /// with no configuration yet, or a node removed from the cluster).
    #[error("not a voter of the configuration")]
    NotVoter,
    /// It heard from a live leader within the minimum election timeout, or
    /// started too recently to vote (lease reads): its vote is promised.
    /// Move leadership with `Event::TransferLeadership` instead.
    #[error("a leader's lease is in force")]
    LeaderLease,
    /// A member told it that a committed configuration removed it (see
    /// [`Action::Removed`](crate::Action::Removed)).
    #[error("removed from the cluster")]
    Removed,
    /// Its term is [`MAX_TERM`](crate::MAX_TERM): no higher term exists.
    #[error("the term is at its maximum")]
    TermExhausted,
}

/// Errors from a [`RaftLog`](crate::RaftLog) implementation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation failed.
    #[error("i/o error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes are damaged or inconsistent.
    #[error("corrupt log at {location}: {reason}")]
    Corrupt {
        /// Where (file, offset, record).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Entries were requested that have been compacted into a snapshot.
    #[error("index {index} is compacted (first index {first})")]
    Compacted {
        /// The requested index.
        index: Index,
        /// The log's first index.
        first: Index,
    },
    /// Entries were requested past the end of the log.
    #[error("index {index} is past the last index {last}")]
    Unavailable {
        /// The requested index.
        index: Index,
        /// The log's last index.
        last: Index,
    },
    /// A write that breaks the log's contract (for example, a non-contiguous
    /// append).
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// Any other failure of a user-provided log.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The directory is not a log of this crate (for example a directory of
    /// other files, or a file that is not a log's meta file). Nothing was
    /// changed.
    #[error("{path} is not a raft-io log: {reason}")]
    NotALog {
        /// The directory or file.
        path: String,
        /// What gave it away.
        reason: String,
    },
    /// The log directory is in use by another log (in this process or
    /// another) that holds its lock file; nothing was read or changed.
    #[error("{path} is in use by another log (in this or another process): its lock file is locked")]
    Locked {
        /// The log directory.
        path: String,
    },
    /// The log was written in a format version this build cannot read.
    #[error("{location} uses format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        /// The file (and offset) holding the version.
        location: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The log was opened with a lower maximum record size than it was
    /// written with, which could cut valid records. Nothing was changed.
    #[error("{path}: max_record_size {requested} is below the {stored} the log was written with")]
    RecordLimitLowered {
        /// The log directory.
        path: String,
        /// The limit recorded in the log.
        stored: u32,
        /// The limit asked for.
        requested: u32,
    },
    /// The log belongs to another node or cluster than the one it was
    /// opened for. Nothing was changed.
    #[error("{path} belongs to cluster {} node {}, not cluster {} node {}", found.cluster_id, found.node_id, expected.cluster_id, expected.node_id)]
    WrongIdentity {
        /// The log directory.
        path: String,
        /// The owner recorded in the log.
        found: crate::types::LogIdentity,
        /// The owner asked for.
        expected: crate::types::LogIdentity,
    },
    /// WAL records that were synced (and so may have been acknowledged) are
    /// missing: a segment file that must hold synced records is missing or
    /// short, or the WAL ends, or is damaged, before the offset the log
    /// recorded as synced. Opening would silently forget them, so the log
    /// is refused; nothing was changed.
    #[error(
        "synced WAL records are lost at {location}: {reason} (records were synced up to WAL offset {synced_end}); nothing was changed"
    )]
    SyncedDataLost {
        /// The segment file (and byte and WAL offset) where the loss starts.
        location: String,
        /// The WAL offset up to which the log recorded every record as synced.
        synced_end: u64,
        /// What is missing.
        reason: String,
    },
    /// An earlier write or sync failed, so the log refuses further writes:
    /// its durable state is unknown until it is reopened.
    #[error("the log halted after an earlier failure ({cause}); reopen it")]
    Halted {
        /// The first failure.
        cause: String,
    },
    /// A group of a shared WAL (`log::shared`, feature `persistence`)
    /// cannot be used as asked: its id is 0, it does not exist, it exists
    /// already, it was removed, or another handle has it. Nothing was
    /// changed.
    #[error("group {group}: {problem}")]
    Group {
        /// The group id asked for.
        group: u64,
        /// What is wrong with it.
        problem: GroupProblem,
    },
}

/// Why a group of a shared WAL was refused ([`StorageError::Group`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupProblem {
    /// Group id 0 is reserved.
    InvalidId,
    /// No group has this id: it was never created, or was removed (the
    /// log keeps no list of the ids it removed).
    Unknown,
    /// A group with this id exists already.
    Exists,
    /// The handle's group was removed (even if a group of the same id was
    /// created since): the handle is dead.
    Removed,
    /// Another handle to the group is alive.
    InUse,
}

impl std::fmt::Display for GroupProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupProblem::InvalidId => "group id 0 is reserved",
            GroupProblem::Unknown => "no such group",
            GroupProblem::Exists => "the group exists already",
            GroupProblem::Removed => "the group was removed",
            GroupProblem::InUse => "another handle to the group is alive",
        })
    }
}
