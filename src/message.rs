//! Messages nodes exchange: an envelope (`from`, `to`, `term`) around one of
//! the protocol's bodies.
//!
//! Every body is a struct of its own so that the wire format can version each
//! one independently (see `docs/PROTOCOL.md`). Message routing is the
//! caller's job: [`Action::Send`](crate::Action::Send) names the destination,
//! and whatever arrives is handed back through
//! [`Event::Message`](crate::Event::Message).

use bytes::Bytes;

use crate::types::{Entry, Index, NodeId, ReadId, SnapshotMeta, Term};

/// A message between two nodes of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The destination.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign
    /// in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The protocol bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageBody {
    /// Pre-vote request: "would you vote for me in `term`?" Changes no state
    /// at the receiver.
    PreVote(VoteRequest),
    /// Answer to a [`MessageBody::PreVote`].
    PreVoteResponse(VoteResponse),
    /// Vote request for the sender's term.
    Vote(VoteRequest),
    /// Answer to a [`MessageBody::Vote`].
    VoteResponse(VoteResponse),
    /// Log replication (possibly without entries, to probe or to carry the
    /// commit index).
    Append(AppendEntries),
    /// Answer to a [`MessageBody::Append`] or a completed snapshot.
    AppendResponse(AppendResponse),
    /// Leader liveness and read-confirmation round.
    Heartbeat(Heartbeat),
    /// Answer to a [`MessageBody::Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// One chunk of a snapshot being streamed to a follower (boxed: it is
    /// rare and large, and keeping it out of line keeps every message small).
    Snapshot(Box<SnapshotChunk>),
    /// Acknowledges snapshot chunks received so far.
    SnapshotResponse(SnapshotAck),
    /// Leadership transfer: start an election now, bypassing leader
    /// stickiness.
    TimeoutNow,
    /// A follower forwards a read to the leader.
    ReadIndex(ReadIndexRequest),
    /// The leader answers a forwarded read.
    ReadIndexResponse(ReadIndexResponse),
    /// "A committed configuration no longer includes you": the answer to a
    /// (pre-)vote request from a node that a committed configuration
    /// removed, so it stops campaigning (see
    /// [`Action::Removed`](crate::Action::Removed)).
    Removed(RemovalNotice),
}

impl MessageBody {
    /// A short name for traces and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PreVote(_) => "PreVote",
            Self::PreVoteResponse(_) => "PreVoteResponse",
            Self::Vote(_) => "Vote",
            Self::VoteResponse(_) => "VoteResponse",
            Self::Append(_) => "Append",
            Self::AppendResponse(_) => "AppendResponse",
            Self::Heartbeat(_) => "Heartbeat",
            Self::HeartbeatResponse(_) => "HeartbeatResponse",
            Self::Snapshot(_) => "Snapshot",
            Self::SnapshotResponse(_) => "SnapshotResponse",
            Self::TimeoutNow => "TimeoutNow",
            Self::ReadIndex(_) => "ReadIndex",
            Self::ReadIndexResponse(_) => "ReadIndexResponse",
            Self::Removed(_) => "Removed",
        }
    }
}

/// A (pre-)vote request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VoteRequest {
    /// Index of the candidate's last log entry.
    pub last_log_index: Index,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
    /// Set for an election started by leadership transfer: voters then
    /// ignore leader stickiness.
    pub transfer: bool,
}

/// A (pre-)vote answer. The envelope's term is the term voted in (for a
/// refusal: the voter's own term, so a stale candidate learns it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VoteResponse {
    /// Whether the vote was granted.
    pub granted: bool,
}

/// Log replication from the leader.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppendEntries {
    /// Index of the entry just before `entries`.
    pub prev_log_index: Index,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// The leader's commit index, capped so the follower can apply it safely.
    pub leader_commit: Index,
    /// Entries `prev_log_index + 1 ..`, contiguous, in order.
    pub entries: Vec<Entry>,
}

/// A follower's answer to [`AppendEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AppendResponse {
    /// Whether the entries were accepted.
    pub success: bool,
    /// On success: the highest index known to match the leader's log. On
    /// rejection: the `prev_log_index` that did not match.
    pub index: Index,
    /// On rejection: the term of the follower's entry at `index`, or 0 when
    /// the follower's log is shorter than `index`.
    pub hint_term: Term,
    /// On rejection: the first index of `hint_term` in the follower's log,
    /// or the follower's last index + 1 when its log is too short. The leader
    /// resumes from there, backing up a whole term per round trip.
    pub hint_index: Index,
}

impl AppendResponse {
    /// The `index` of a [`stale_term_notice`](Self::stale_term_notice): no
    /// index a leader sends (every log stays below
    /// [`MAX_TERM`](crate::MAX_TERM)).
    pub const STALE_TERM_NOTICE_INDEX: Index = Index::MAX;

    /// The answer to an append or heartbeat from an older term: it carries
    /// only the follower's term (in the message), so that a deposed leader
    /// steps down (`docs/PROTOCOL.md` §2). It refuses no index, so a leader
    /// of the follower's term — the same node, elected again since it sent
    /// the old message — learns nothing from it and ignores it (it is not a
    /// joining node's refusal, §4.2).
    ///
    /// ```
    /// use raft_io::AppendResponse;
    /// let notice = AppendResponse::stale_term_notice();
    /// assert!(notice.is_stale_term_notice() && !notice.success);
    /// assert!(!AppendResponse::default().is_stale_term_notice());
    /// ```
    pub const fn stale_term_notice() -> Self {
        Self { success: false, index: Self::STALE_TERM_NOTICE_INDEX, hint_term: 0, hint_index: 0 }
    }

    /// Whether this is a [`stale_term_notice`](Self::stale_term_notice).
    pub const fn is_stale_term_notice(&self) -> bool {
        !self.success && self.index == Self::STALE_TERM_NOTICE_INDEX
    }
}

/// Leader heartbeat. Carries no entries; allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// The leader's commit index capped at what it knows the follower holds
    /// (`min(commit, match)`), so the follower never commits an entry it has
    /// not verified.
    pub commit: Index,
    /// The leader's confirmation round; echoed back to confirm reads.
    pub round: u64,
}

impl Heartbeat {
    /// The round of a commit notice: rounds of a leader's heartbeats
    /// start at 1, so round 0 marks a heartbeat that only carries a newer
    /// commit index and is not answered (`docs/PROTOCOL.md` §4.4).
    pub const COMMIT_NOTICE_ROUND: u64 = 0;

    /// A commit notice: tells a follower that `commit` (the leader's commit
    /// index capped at what the follower is known to hold) committed.
    ///
    /// ```
    /// use raft_io::Heartbeat;
    /// let notice = Heartbeat::commit_notice(42);
    /// assert!(notice.is_commit_notice());
    /// assert_eq!(notice.commit, 42);
    /// assert!(!Heartbeat { commit: 42, round: 7 }.is_commit_notice());
    /// ```
    pub const fn commit_notice(commit: Index) -> Self {
        Self { commit, round: Self::COMMIT_NOTICE_ROUND }
    }

    /// Whether this is a commit notice (round 0), which is not answered.
    pub const fn is_commit_notice(&self) -> bool {
        self.round == Self::COMMIT_NOTICE_ROUND
    }
}

/// Answer to a [`Heartbeat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    /// The round being answered.
    pub round: u64,
}

/// One chunk of a snapshot stream.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotChunk {
    /// The snapshot being sent (index, term, membership).
    pub meta: SnapshotMeta,
    /// Total size of the snapshot data in bytes.
    pub total_len: u64,
    /// Offset of `data` within the snapshot data.
    pub offset: u64,
    /// The chunk's bytes.
    pub data: Bytes,
}

/// Acknowledges a snapshot stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SnapshotAck {
    /// Index of the snapshot being acknowledged.
    pub index: Index,
    /// Bytes received contiguously so far: the next offset the follower
    /// expects.
    pub received: u64,
    /// Set when the follower refuses the stream (too large, or it cannot
    /// store it); the leader falls back to probing.
    pub rejected: bool,
}

/// A read forwarded from a follower to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReadIndexRequest {
    /// The follower's identifier for the read.
    pub id: ReadId,
}

/// The leader's answer to a forwarded read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReadIndexResponse {
    /// The follower's identifier for the read.
    pub id: ReadId,
    /// The read index: the follower may serve the read once it has applied
    /// through it. Meaningless when `ok` is false.
    pub index: Index,
    /// False when the leader could not serve the read (it is no longer
    /// leader, or the read timed out).
    pub ok: bool,
}

/// Tells a node that the sender's committed configuration does not include
/// it. The receiver believes it only when `config_index` is at least the
/// index of the latest configuration it knows of: a sender that merely lags
/// behind a configuration that added the receiver is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RemovalNotice {
    /// Index of the sender's latest committed configuration.
    pub config_index: Index,
}
