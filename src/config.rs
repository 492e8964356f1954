//! [`RaftConfig`]: a validated builder for everything a node needs to know
//! before it starts. Times are in ticks: the driver decides how long a tick
//! is (the threaded runtime's `Runtime::tick_interval`, 10 ms by default)
//! and reports a stall as one `Event::Ticks` (`docs/PROTOCOL.md` §8.4).

use crate::error::{Error, Result};
use crate::membership::Membership;
use crate::types::{ENTRY_OVERHEAD, Index, NodeId};

/// Configuration of one [`RaftNode`](crate::RaftNode).
///
/// Build it with [`RaftConfig::new`] (a member of a new cluster),
/// [`RaftConfig::single`] (a one-node cluster) or [`RaftConfig::joining`] (a
/// node that will be added to a running cluster), then adjust with the
/// chainable setters. [`RaftConfig::validate`] names the first invalid field;
/// [`RaftNode::new`](crate::RaftNode::new) calls it.
///
/// ```
/// use raft_io::RaftConfig;
///
/// let config = RaftConfig::new(1, [1, 2, 3])
///     .election_timeout(10, 20)
///     .heartbeat_interval(3)
///     .seed(7);
/// assert!(config.validate().is_ok());
///
/// let bad = RaftConfig::new(1, [1, 2, 3]).heartbeat_interval(10).election_timeout(10, 20);
/// let err = bad.validate().unwrap_err();
/// assert!(err.to_string().contains("heartbeat_interval"));
/// ```
#[derive(Clone, Debug)]
// Laid out in the order written: the settings a step reads come first, the
// lists (read when the node starts) last, so that a cold node's step
// touches few cache lines (see `RaftNode`). The first 64 bytes hold what
// an apply (the hand-over, the snapshot policy), a leader's tick (its
// timers, check-quorum) and an append to send (its limits) read; the next
// 64 what proposals, reads and promotions read.
#[repr(C)]
pub struct RaftConfig {
    pub(crate) apply_ranges: bool,
    pub(crate) check_quorum: bool,
    pub(crate) lease_reads: bool,
    pub(crate) async_storage: bool,
    pub(crate) pre_vote: bool,
    pub(crate) joining: bool,
    pub(crate) election_timeout_min: u64,
    pub(crate) election_timeout_max: u64,
    pub(crate) heartbeat_interval: u64,
    pub(crate) snapshot_entries: u64,
    pub(crate) snapshot_bytes: u64,
    pub(crate) max_inflight: usize,
    pub(crate) max_entries_per_message: usize,
    pub(crate) max_message_bytes: u64,
    pub(crate) max_uncommitted_bytes: u64,
    pub(crate) small_command_bytes: usize,
    pub(crate) read_timeout_ticks: u64,
    pub(crate) lease_drift_ticks: u64,
    pub(crate) auto_promote_distance: Option<u64>,
    pub(crate) max_snapshot_bytes: u64,
    pub(crate) id: NodeId,
    pub(crate) cluster_id: u64,
    pub(crate) seed: u64,
    pub(crate) applied: Index,
    pub(crate) voters: Vec<NodeId>,
    pub(crate) learners: Vec<NodeId>,
    pub(crate) addresses: Vec<(NodeId, bytes::Bytes)>,
}

impl RaftConfig {
    /// A member `id` of a new cluster whose initial voters are `voters`
    /// (which must include `id`; [`validate`](Self::validate) refuses an
    /// empty list or one without `id`, naming `voters`). Every member of a
    /// new cluster must start with the same voter list. A node that joins a
    /// running cluster is built with [`joining`](Self::joining) instead.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            id,
            cluster_id: 0,
            voters: voters.into_iter().collect(),
            learners: Vec::new(),
            addresses: Vec::new(),
            election_timeout_min: 10,
            election_timeout_max: 20,
            heartbeat_interval: 2,
            pre_vote: true,
            check_quorum: true,
            max_inflight: 64,
            max_entries_per_message: 512,
            max_message_bytes: 1 << 20,
            max_uncommitted_bytes: 64 << 20,
            seed: 0,
            snapshot_entries: 0,
            snapshot_bytes: 0,
            max_snapshot_bytes: 1 << 30,
            lease_reads: false,
            lease_drift_ticks: 2,
            read_timeout_ticks: 50,
            auto_promote_distance: None,
            applied: 0,
            joining: false,
            async_storage: false,
            small_command_bytes: DEFAULT_SMALL_COMMAND_BYTES,
            apply_ranges: false,
        }
    }

    /// A single-node cluster of node `id`.
    pub fn single(id: NodeId) -> Self {
        Self::new(id, [id])
    }

    /// A node that will be added to a running cluster. It starts with no
    /// configuration, never campaigns on one it invented, and learns the
    /// cluster's configuration from the leader (through log entries or a
    /// snapshot) once a member adds it.
    pub fn joining(id: NodeId) -> Self {
        Self { joining: true, ..Self::new(id, []) }
    }

    /// Addresses of the initial members of a new cluster, replicated with
    /// the bootstrap configuration (default: none): every member learns
    /// every other's from its log ([`Membership::address`]), and so does a
    /// node that joins later. Each id must be an initial voter or learner
    /// and each address 1 to [`MAX_ADDRESS_LEN`](crate::membership::MAX_ADDRESS_LEN)
    /// bytes ([`validate`](Self::validate) names `addresses` otherwise).
    /// Like the voter list, every founder must be given the same.
    pub fn addresses(mut self, addresses: impl IntoIterator<Item = (NodeId, bytes::Bytes)>) -> Self {
        self.addresses = addresses.into_iter().collect();
        self
    }

    /// The addresses of the bootstrap configuration's members.
    pub fn get_addresses(&self) -> &[(NodeId, bytes::Bytes)] {
        &self.addresses
    }

    /// Initial learners of a new cluster (default: none).
    pub fn learners(mut self, learners: impl IntoIterator<Item = NodeId>) -> Self {
        self.learners = learners.into_iter().collect();
        self
    }

    /// The cluster id, recorded in durable logs and checked by the TCP
    /// handshake (default 0).
    pub fn cluster_id(mut self, cluster_id: u64) -> Self {
        self.cluster_id = cluster_id;
        self
    }

    /// Election timeout range in ticks: each timeout is drawn uniformly from
    /// `min..max` (default `10..20`).
    pub fn election_timeout(mut self, min: u64, max: u64) -> Self {
        self.election_timeout_min = min;
        self.election_timeout_max = max;
        self
    }

    /// Ticks between leader heartbeats; must be below the minimum election
    /// timeout (default 2).
    pub fn heartbeat_interval(mut self, ticks: u64) -> Self {
        self.heartbeat_interval = ticks;
        self
    }

    /// Pre-vote (default on): a node asks whether it could win before it
    /// increments its term, so a partitioned node cannot disrupt a cluster
    /// when it returns.
    pub fn pre_vote(mut self, on: bool) -> Self {
        self.pre_vote = on;
        self
    }

    /// Check-quorum (default on): a leader that has not heard from a quorum
    /// within an election timeout steps down; followers that hear from a
    /// leader ignore vote requests for a minimum election timeout (leader
    /// stickiness).
    pub fn check_quorum(mut self, on: bool) -> Self {
        self.check_quorum = on;
        self
    }

    /// Maximum AppendEntries (or snapshot chunks) in flight to one follower
    /// (default 64).
    pub fn max_inflight(mut self, n: usize) -> Self {
        self.max_inflight = n;
        self
    }

    /// Maximum entries in one AppendEntries (default 512).
    pub fn max_entries_per_message(mut self, n: usize) -> Self {
        self.max_entries_per_message = n;
        self
    }

    /// Commands of at most `n` bytes (opt-in: default 0, off; at most
    /// 4 096; 64 is a good value) are copied, when proposed, into a block
    /// of 4 KiB the leader
    /// shares among them, instead of being stored as the [`Bytes`](bytes::Bytes)
    /// the driver handed over. A small command then costs no allocation of
    /// its own in the node: a `Vec`-backed `Bytes` allocates a shared header
    /// the first time it is cloned (into an AppendEntries or an
    /// [`Action::Apply`](crate::Action::Apply)), which at 16 B commands was
    /// the largest allocation per entry. The applied command's contents are
    /// the same; it is a slice of the block, so a state machine that keeps
    /// one keeps the block's 4 KiB alive (docs/PROTOCOL.md, "Small commands").
    /// Off by default for that reason: a store that keeps, zero-copy, the
    /// latest of many overwritten small values could hold a block per
    /// value. Turn it on when commands are not kept past their apply (or
    /// are copied out). A node with no peer that applies by range
    /// ([`apply_ranges`](Self::apply_ranges)) never clones a command, and
    /// copies none.
    pub fn small_command_bytes(mut self, n: usize) -> Self {
        self.small_command_bytes = n;
        self
    }

    /// Committed commands are handed over by reference (opt-in: default
    /// off). Instead of one [`Action::Apply`](crate::Action::Apply) per
    /// command, each holding a clone of it (an atomic reference count taken
    /// and later released), the node emits one
    /// [`Action::ApplyRange`](crate::Action::ApplyRange) per run of
    /// committed entries, and the driver reads the commands from the log
    /// with [`RaftNode::visit_applied`](crate::RaftNode::visit_applied),
    /// borrowed, before the node's next step. Both runtimes turn it on
    /// for their nodes; a driver of its own turns it on when it carries
    /// out every step's actions before the next step
    /// ([`MultiNode`](crate::multi::MultiNode) sees to it for its groups).
    pub fn apply_ranges(mut self, on: bool) -> Self {
        self.apply_ranges = on;
        self
    }

    /// Maximum bytes of entries in one AppendEntries, and the snapshot chunk
    /// size; also the largest command a proposal may carry (default 1 MiB).
    pub fn max_message_bytes(mut self, n: u64) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Backpressure: the most bytes a leader holds appended but not committed
    /// before it refuses proposals with [`Error::Busy`] (default 64 MiB).
    pub fn max_uncommitted_bytes(mut self, n: u64) -> Self {
        self.max_uncommitted_bytes = n;
        self
    }

    /// Seed of the node's random generator (mixed with the node id).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Snapshot policy: ask the application for a snapshot once this many
    /// entries were applied since the last one (default 0: never).
    pub fn snapshot_entries(mut self, n: u64) -> Self {
        self.snapshot_entries = n;
        self
    }

    /// Snapshot policy: ask for a snapshot once this many bytes of entries
    /// were applied since the last one (default 0: never).
    pub fn snapshot_bytes(mut self, n: u64) -> Self {
        self.snapshot_bytes = n;
        self
    }

    /// The largest snapshot a follower accepts from a leader (default 1 GiB).
    pub fn max_snapshot_bytes(mut self, n: u64) -> Self {
        self.max_snapshot_bytes = n;
        self
    }

    /// Lease reads (default off; requires check-quorum): a leader serves a
    /// read without a round trip while a quorum answered a heartbeat round
    /// within the last `election_timeout_min - lease_drift_ticks` ticks of
    /// its clock (`docs/PROTOCOL.md` §8.2).
    ///
    /// The lease is only as good as the node's clock. **After a stall** (a
    /// paused thread or process), the driver must report the elapsed time
    /// with one [`Event::Ticks`](crate::Event::Ticks) before it steps any
    /// read: a lease that expired during the pause has then expired, and a
    /// leader cut off meanwhile has stepped down (§8.4). The threaded
    /// runtime does this; a driver that cannot tell how long it was paused
    /// should use `ReadKind::Index`.
    pub fn lease_reads(mut self, on: bool) -> Self {
        self.lease_reads = on;
        self
    }

    /// How much shorter than the minimum election timeout the read lease is,
    /// in ticks: the largest drift between any two nodes' tick clocks over
    /// one election timeout that lease reads tolerate (default 2).
    pub fn lease_drift_ticks(mut self, ticks: u64) -> Self {
        self.lease_drift_ticks = ticks;
        self
    }

    /// Ticks after which a pending read fails with a timeout (default 50).
    pub fn read_timeout_ticks(mut self, ticks: u64) -> Self {
        self.read_timeout_ticks = ticks;
        self
    }

    /// Promote a learner automatically once its log is within `distance`
    /// entries of the leader's (default: never).
    pub fn auto_promote(mut self, distance: Option<u64>) -> Self {
        self.auto_promote_distance = distance;
        self
    }

    /// The index the application's state machine has already applied
    /// (for a state machine that persists itself); the node applies only
    /// entries after it on restart (default 0).
    pub fn applied(mut self, index: Index) -> Self {
        self.applied = index;
        self
    }

    /// The asynchronous storage mode (default off): a step hands its
    /// writes to the log with [`RaftLog::submit`](crate::RaftLog::submit)
    /// and returns without waiting for them; the embedder reports each
    /// durable write with [`Event::Persisted`](crate::Event::Persisted).
    /// Messages that promise durable state wait inside the node until the
    /// writes they depend on are reported; a leader sends its appends at
    /// once and counts itself toward a commit only for entries it has made
    /// durable (`docs/PROTOCOL.md` §5.1).
    pub fn async_storage(mut self, on: bool) -> Self {
        self.async_storage = on;
        self
    }

    // Getters: one per setting, each named `get_` + the setting (the bare
    // names are the chainable setters).

    /// Whether the asynchronous storage mode is on.
    pub fn get_async_storage(&self) -> bool {
        self.async_storage
    }

    /// This node's id.
    pub fn get_id(&self) -> NodeId {
        self.id
    }

    /// This node's id (the same as [`get_id`](Self::get_id); kept for
    /// compatibility).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The cluster id.
    pub fn get_cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The initial voters of a new cluster (empty for a joining node).
    pub fn get_voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The initial learners of a new cluster.
    pub fn get_learners(&self) -> &[NodeId] {
        &self.learners
    }

    /// Whether the node joins a running cluster ([`joining`](Self::joining)).
    pub fn is_joining(&self) -> bool {
        self.joining
    }

    /// The election timeout range in ticks, `(min, max)`.
    pub fn get_election_timeout(&self) -> (u64, u64) {
        (self.election_timeout_min, self.election_timeout_max)
    }

    /// Ticks between leader heartbeats.
    pub fn get_heartbeat_interval(&self) -> u64 {
        self.heartbeat_interval
    }

    /// Whether pre-vote is on.
    pub fn get_pre_vote(&self) -> bool {
        self.pre_vote
    }

    /// Whether check-quorum is on.
    pub fn get_check_quorum(&self) -> bool {
        self.check_quorum
    }

    /// The inflight window per follower.
    pub fn get_max_inflight(&self) -> usize {
        self.max_inflight
    }

    /// The most entries in one AppendEntries.
    pub fn get_max_entries_per_message(&self) -> usize {
        self.max_entries_per_message
    }

    /// The largest command copied into the leader's shared blocks (0: none).
    pub fn get_small_command_bytes(&self) -> usize {
        self.small_command_bytes
    }

    /// Whether committed commands are handed over as ranges
    /// ([`RaftConfig::apply_ranges`]).
    pub fn get_apply_ranges(&self) -> bool {
        self.apply_ranges
    }

    /// The maximum message bytes (also the snapshot chunk size and the
    /// largest command).
    pub fn get_max_message_bytes(&self) -> u64 {
        self.max_message_bytes
    }

    /// The backpressure limit on uncommitted bytes.
    pub fn get_max_uncommitted_bytes(&self) -> u64 {
        self.max_uncommitted_bytes
    }

    /// The random generator's seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }

    /// The snapshot policy's entry threshold (0: never).
    pub fn get_snapshot_entries(&self) -> u64 {
        self.snapshot_entries
    }

    /// The snapshot policy's byte threshold (0: never).
    pub fn get_snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }

    /// The largest snapshot a follower accepts.
    pub fn get_max_snapshot_bytes(&self) -> u64 {
        self.max_snapshot_bytes
    }

    /// Whether lease reads are on.
    pub fn get_lease_reads(&self) -> bool {
        self.lease_reads
    }

    /// The clock drift lease reads tolerate, in ticks.
    pub fn get_lease_drift_ticks(&self) -> u64 {
        self.lease_drift_ticks
    }

    /// Ticks after which a pending read fails.
    pub fn get_read_timeout_ticks(&self) -> u64 {
        self.read_timeout_ticks
    }

    /// The automatic learner promotion distance, if any.
    pub fn get_auto_promote(&self) -> Option<u64> {
        self.auto_promote_distance
    }

    /// The index the state machine had already applied at start.
    pub fn get_applied(&self) -> Index {
        self.applied
    }

    /// The bootstrap configuration, or `None` for a joining node.
    pub fn bootstrap_membership(&self) -> Result<Option<Membership>> {
        if self.joining {
            return Ok(None);
        }
        let mut m = Membership::new(self.voters.iter().copied(), self.learners.iter().copied())
            .map_err(|e| invalid("voters", e.to_string()))?;
        for (id, address) in &self.addresses {
            m = m.with_address(*id, address.clone()).map_err(|e| invalid("addresses", e.to_string()))?;
        }
        Ok(Some(m))
    }

    /// [`validate`](Self::validate), and that a message's entries fit in
    /// one durable step of a log that makes `room` bytes durable at once
    /// ([`RaftLog::max_step_bytes`](crate::RaftLog::max_step_bytes)): what
    /// [`RaftNode::with_log`](crate::RaftNode::with_log) checks of the
    /// configuration before it reads the log.
    pub(crate) fn validate_for(&self, room: u64) -> Result<()> {
        self.validate()?;
        if self.max_message_bytes.saturating_add(ENTRY_OVERHEAD) > room {
            return Err(invalid(
                "max_message_bytes",
                format!(
                    "{} bytes (plus {} of entry overhead) exceed the {room} bytes the log makes durable in one \
                     step: lower max_message_bytes or raise the log's record size",
                    self.max_message_bytes, ENTRY_OVERHEAD
                ),
            ));
        }
        Ok(())
    }

    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<()> {
        if self.id == 0 {
            return Err(invalid("id", "node id 0 is reserved".into()));
        }
        if self.joining && !(self.voters.is_empty() && self.learners.is_empty() && self.addresses.is_empty()) {
            return Err(invalid("voters", "a joining node learns its configuration from the cluster".into()));
        }
        if let Some(m) = self.bootstrap_membership()? {
            if m.voters().is_empty() {
                return Err(invalid("voters", "a new cluster needs at least one voter".into()));
            }
            if !m.contains(self.id) {
                return Err(invalid("voters", format!("node {} is not in its own bootstrap configuration", self.id)));
            }
        }
        if self.election_timeout_min < 2 {
            return Err(invalid("election_timeout_min", "must be at least 2 ticks".into()));
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return Err(invalid("election_timeout_max", "must be above election_timeout_min".into()));
        }
        if self.heartbeat_interval == 0 || self.heartbeat_interval >= self.election_timeout_min {
            return Err(invalid(
                "heartbeat_interval",
                format!("must be between 1 and election_timeout_min - 1 ({})", self.election_timeout_min - 1),
            ));
        }
        if self.max_inflight == 0 || self.max_inflight > MAX_INFLIGHT {
            return Err(invalid("max_inflight", format!("must be between 1 and {MAX_INFLIGHT}")));
        }
        if self.max_entries_per_message == 0 {
            return Err(invalid("max_entries_per_message", "must be at least 1".into()));
        }
        if self.small_command_bytes > SMALL_COMMAND_BLOCK {
            return Err(invalid("small_command_bytes", format!("must be at most {SMALL_COMMAND_BLOCK}")));
        }
        if self.max_message_bytes < 64 {
            return Err(invalid("max_message_bytes", "must be at least 64".into()));
        }
        if self.max_uncommitted_bytes == 0 {
            return Err(invalid("max_uncommitted_bytes", "must be at least 1".into()));
        }
        if self.max_snapshot_bytes == 0 {
            return Err(invalid("max_snapshot_bytes", "must be at least 1".into()));
        }
        if self.lease_reads && !self.check_quorum {
            return Err(invalid("lease_reads", "lease reads require check_quorum".into()));
        }
        if self.lease_reads
            && self.lease_drift_ticks.saturating_add(self.heartbeat_interval) >= self.election_timeout_min
        {
            return Err(invalid(
                "lease_drift_ticks",
                "the lease (election_timeout_min - lease_drift_ticks) must outlast a heartbeat interval".into(),
            ));
        }
        if self.read_timeout_ticks == 0 {
            return Err(invalid("read_timeout_ticks", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The largest inflight window: each follower's window is allocated up front.
pub const MAX_INFLIGHT: usize = 1 << 16;

/// The default of [`RaftConfig::small_command_bytes`].
const DEFAULT_SMALL_COMMAND_BYTES: usize = 0;

/// The size of the blocks small commands are copied into.
pub(crate) const SMALL_COMMAND_BLOCK: usize = 4096;

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: RaftConfig) -> &'static str {
        match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        RaftConfig::new(1, [1, 2, 3]).validate().unwrap();
        RaftConfig::single(9).validate().unwrap();
        RaftConfig::joining(4).validate().unwrap();
        RaftConfig::new(1, [1, 2]).lease_reads(true).validate().unwrap();
    }

    /// Small-command blocks are opt-in: an applied command kept by the
    /// state machine would pin its block (PROTOCOL.md §4.5).
    #[test]
    fn small_command_blocks_are_off_by_default() {
        assert_eq!(RaftConfig::new(1, [1, 2, 3]).get_small_command_bytes(), 0);
    }

    #[test]
    fn each_invalid_field_is_named() {
        let base = || RaftConfig::new(1, [1, 2, 3]);
        assert_eq!(field_of(RaftConfig::new(0, [0])), "id");
        assert_eq!(field_of(RaftConfig::new(1, [2, 3])), "voters");
        assert_eq!(field_of(RaftConfig::new(1, [1, 1])), "voters");
        assert_eq!(field_of(RaftConfig::new(1, [1]).learners([1])), "voters");
        assert_eq!(field_of(RaftConfig::new(1, []).learners([1])), "voters");
        assert_eq!(field_of(RaftConfig::new(1, [])), "voters");
        assert_eq!(field_of(RaftConfig::joining(1).learners([1])), "voters");
        assert_eq!(field_of(base().election_timeout(1, 5)), "election_timeout_min");
        assert_eq!(field_of(base().election_timeout(10, 10)), "election_timeout_max");
        assert_eq!(field_of(base().heartbeat_interval(0)), "heartbeat_interval");
        assert_eq!(field_of(base().heartbeat_interval(10)), "heartbeat_interval");
        assert_eq!(field_of(base().max_inflight(0)), "max_inflight");
        assert_eq!(field_of(base().max_inflight(usize::MAX)), "max_inflight");
        assert_eq!(field_of(base().lease_reads(true).lease_drift_ticks(u64::MAX)), "lease_drift_ticks");
        assert_eq!(field_of(base().max_entries_per_message(0)), "max_entries_per_message");
        assert_eq!(field_of(base().small_command_bytes(4097)), "small_command_bytes");
        assert!(base().small_command_bytes(4096).validate().is_ok());
        assert_eq!(field_of(base().max_message_bytes(10)), "max_message_bytes");
        assert_eq!(field_of(base().max_uncommitted_bytes(0)), "max_uncommitted_bytes");
        assert_eq!(field_of(base().max_snapshot_bytes(0)), "max_snapshot_bytes");
        assert_eq!(field_of(base().lease_reads(true).check_quorum(false)), "lease_reads");
        assert_eq!(field_of(base().lease_reads(true).lease_drift_ticks(8)), "lease_drift_ticks");
        assert_eq!(field_of(base().read_timeout_ticks(0)), "read_timeout_ticks");
    }

    #[test]
    fn every_setting_reads_back_through_its_getter() {
        let c = RaftConfig::new(2, [1, 2, 3])
            .learners([4])
            .cluster_id(9)
            .election_timeout(11, 23)
            .heartbeat_interval(3)
            .pre_vote(false)
            .check_quorum(false)
            .max_inflight(7)
            .max_entries_per_message(8)
            .max_message_bytes(1000)
            .max_uncommitted_bytes(5000)
            .seed(42)
            .snapshot_entries(10)
            .snapshot_bytes(20)
            .max_snapshot_bytes(30)
            .lease_reads(true)
            .lease_drift_ticks(1)
            .read_timeout_ticks(40)
            .auto_promote(Some(5))
            .applied(6);
        assert_eq!((c.get_id(), c.id(), c.get_cluster_id()), (2, 2, 9));
        assert_eq!((c.get_voters(), c.get_learners(), c.is_joining()), (&[1, 2, 3][..], &[4][..], false));
        assert_eq!((c.get_election_timeout(), c.get_heartbeat_interval()), ((11, 23), 3));
        assert_eq!((c.get_pre_vote(), c.get_check_quorum(), c.get_lease_reads()), (false, false, true));
        assert_eq!((c.get_max_inflight(), c.get_max_entries_per_message()), (7, 8));
        assert_eq!((c.get_max_message_bytes(), c.get_max_uncommitted_bytes(), c.get_seed()), (1000, 5000, 42));
        assert_eq!((c.get_snapshot_entries(), c.get_snapshot_bytes(), c.get_max_snapshot_bytes()), (10, 20, 30));
        assert_eq!((c.get_lease_drift_ticks(), c.get_read_timeout_ticks()), (1, 40));
        assert_eq!((c.get_auto_promote(), c.get_applied()), (Some(5), 6));
        assert!(RaftConfig::joining(5).is_joining());
    }

    #[test]
    fn joining_has_no_bootstrap_membership() {
        assert_eq!(RaftConfig::joining(4).bootstrap_membership().unwrap(), None);
        let m = RaftConfig::new(2, [3, 1, 2]).learners([5]).bootstrap_membership().unwrap().unwrap();
        assert_eq!(m.voters(), &[1, 2, 3]);
        assert_eq!(m.learners(), &[5]);
    }
}
