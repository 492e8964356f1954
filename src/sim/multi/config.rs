//! How to build a [`MultiCluster`](super::MultiCluster), and what a run went
//! through.

use crate::sim::{FaultProfile, NetworkFaults};

/// How to build a [`MultiCluster`](super::MultiCluster).
#[derive(Clone, Debug)]
pub struct MultiSimConfig {
    pub(super) nodes: usize,
    pub(super) groups: u64,
    pub(super) seed: u64,
    pub(super) network: NetworkFaults,
    pub(super) async_storage: bool,
    pub(super) quiescence: bool,
    pub(super) max_campaigns: usize,
    pub(super) profile: FaultProfile,
}

impl MultiSimConfig {
    /// `nodes` nodes (1 to 7) each hosting all of `groups` groups (at least
    /// 1), a reliable network, seed 0, synchronous storage, quiescence on,
    /// the [`FaultProfile::Everything`] schedule for
    /// [`chaos`](super::MultiCluster::chaos).
    pub fn new(nodes: usize, groups: u64) -> Self {
        Self {
            nodes: nodes.clamp(1, 7),
            groups: groups.max(1),
            seed: 0,
            network: NetworkFaults::reliable(),
            async_storage: false,
            quiescence: true,
            max_campaigns: crate::multi::DEFAULT_MAX_CAMPAIGNS,
            profile: FaultProfile::Everything,
        }
    }

    /// The seed every random choice derives from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Network fault rates, per pair of nodes.
    pub fn network(mut self, faults: NetworkFaults) -> Self {
        self.network = faults;
        self
    }

    /// Every group in the asynchronous storage mode, a node's writes
    /// flushed together (default off).
    pub fn async_storage(mut self, on: bool) -> Self {
        self.async_storage = on;
        self
    }

    /// Whether idle groups quiesce (default on).
    pub fn quiescence(mut self, on: bool) -> Self {
        self.quiescence = on;
        self
    }

    /// At most this many groups of a node campaign at once
    /// ([`HostConfig::max_campaigns`](crate::multi::HostConfig::max_campaigns);
    /// default [`DEFAULT_MAX_CAMPAIGNS`](crate::multi::DEFAULT_MAX_CAMPAIGNS)).
    /// A small limit puts campaign pacing under the simulator's faults.
    pub fn max_campaigns(mut self, groups: usize) -> Self {
        self.max_campaigns = groups;
        self
    }

    /// The faults [`chaos`](super::MultiCluster::chaos) injects (default
    /// [`FaultProfile::Everything`]); see
    /// [`chaos_profile`](super::MultiCluster::chaos_profile) for what each
    /// profile means with many groups per node.
    pub fn profile(mut self, profile: FaultProfile) -> Self {
        self.profile = profile;
        self
    }
}

/// What happened in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MultiSimStats {
    /// Envelopes delivered.
    pub delivered: u64,
    /// Node crashes (each takes down every group replica on the node).
    pub crashes: u64,
    /// Flushes: one per node per batch of writes of all its groups.
    pub flushes: u64,
    /// Write completions reported to groups by those flushes.
    pub completions: u64,
    /// Times a group quiesced, summed over the nodes.
    pub quiesces: u64,
    /// Times a group woke, summed over the nodes.
    pub wakes: u64,
    /// Groups woken because their leader's node went silent.
    pub woken_by_peer_loss: u64,
    /// Ticks on which a group's election fell due and was held back for a
    /// campaign slot, summed over the nodes.
    pub campaigns_held: u64,
    /// Host pauses (a node's host not stepped for a while).
    pub pauses: u64,
    /// Membership changes a group's leader accepted.
    pub membership_changes: u64,
    /// Leadership transfers started (by hand or by rebalancing).
    pub transfers: u64,
    /// Envelopes a buggy peer delivered again (as sent, truncated, from an
    /// unknown node or for an unknown group).
    pub replayed: u64,
    /// Envelopes the hosts dropped and counted: for a group they do not
    /// host, or not addressed to them.
    pub dropped: u64,
}

impl MultiSimStats {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &MultiSimStats) {
        self.delivered += other.delivered;
        self.crashes += other.crashes;
        self.flushes += other.flushes;
        self.completions += other.completions;
        self.quiesces += other.quiesces;
        self.wakes += other.wakes;
        self.woken_by_peer_loss += other.woken_by_peer_loss;
        self.campaigns_held += other.campaigns_held;
        self.pauses += other.pauses;
        self.membership_changes += other.membership_changes;
        self.transfers += other.transfers;
        self.replayed += other.replayed;
        self.dropped += other.dropped;
    }
}
