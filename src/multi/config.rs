//! [`HostConfig`]: a host's own settings.

use crate::types::NodeId;

/// The host's own settings, in ticks of its clock (the same ticks the
/// groups count).
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub(super) node: NodeId,
    pub(super) ping_interval: u64,
    pub(super) peer_timeout: u64,
    pub(super) quiesce_after: u64,
    pub(super) quiescence: bool,
    pub(super) max_campaigns: usize,
}

impl HostConfig {
    /// A host for node `node`: a ping every 3 ticks, a peer silent for 10
    /// ticks is down, a group idle for 6 ticks quiesces, at most
    /// [`DEFAULT_MAX_CAMPAIGNS`] groups campaign at once.
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            ping_interval: 3,
            peer_timeout: 10,
            quiesce_after: 6,
            quiescence: true,
            max_campaigns: DEFAULT_MAX_CAMPAIGNS,
        }
    }

    /// Ticks between two pings to each peer (at least 1).
    pub fn ping_interval(mut self, ticks: u64) -> Self {
        self.ping_interval = ticks.max(1);
        self
    }

    /// Ticks of silence a peer may keep and still be up: one silent for
    /// more is considered down (use the groups' minimum election timeout;
    /// at least 2 pings).
    pub fn peer_timeout(mut self, ticks: u64) -> Self {
        self.peer_timeout = ticks;
        self
    }

    /// Ticks a leader's group must stay idle before it quiesces.
    pub fn quiesce_after(mut self, ticks: u64) -> Self {
        self.quiesce_after = ticks.max(1);
        self
    }

    /// Whether idle groups quiesce at all (default on; off: every group
    /// ticks and heartbeats, for comparison).
    pub fn quiescence(mut self, on: bool) -> Self {
        self.quiescence = on;
        self
    }

    /// At most this many of the host's groups campaign at once (0: no
    /// limit). A group whose election timer runs out while the limit is
    /// reached waits, its timer expired, until a campaign ends
    /// (`docs/PROTOCOL.md` §10, "Campaign pacing"): thousands of groups
    /// that lose their leaders together then elect in turn instead of
    /// overloading the node until none settles. `Event::Campaign` and
    /// transfers are never held.
    pub fn max_campaigns(mut self, groups: usize) -> Self {
        self.max_campaigns = groups;
        self
    }

    /// This host's node.
    pub fn get_node(&self) -> NodeId {
        self.node
    }
}

/// [`HostConfig::max_campaigns`] unless set. On a 2-core machine with
/// three nodes, 20 000 groups started together settle in 8 s with 256
/// slots, in 35 s with 32, and not within 300 s with no limit
/// (docs/BENCHMARKS.md).
pub const DEFAULT_MAX_CAMPAIGNS: usize = 256;
