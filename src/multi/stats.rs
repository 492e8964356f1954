//! [`HostStats`]: a host's counters.

/// Counters of the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Groups on this node.
    pub groups: u64,
    /// Of them, quiesced now.
    pub quiesced: u64,
    /// Group steps made (ticks included).
    pub steps: u64,
    /// Envelopes for a group this node does not host, dropped.
    pub unknown_group_dropped: u64,
    /// Envelopes not addressed to this node, dropped.
    pub misaddressed_dropped: u64,
    /// Groups woken because their leader's node went silent.
    pub woken_by_peer_loss: u64,
    /// Times a peer was declared down (silent for more than `peer_timeout`
    /// ticks): once per silence, however long it lasts.
    pub peers_lost: u64,
    /// Times a group quiesced.
    pub quiesces: u64,
    /// Times a group woke.
    pub wakes: u64,
    /// Group messages a quiesced group took without waking: late answers
    /// to its leader and heartbeats that change nothing
    /// (PROTOCOL.md §10, "Waking").
    pub quiet_messages: u64,
    /// Campaign slots taken now: groups in a pre-vote or vote round.
    pub campaigning: u64,
    /// Group ticks taken without a step: a quiet follower's, counted and
    /// taken at its next step (`docs/PROTOCOL.md` §10, "Deferred ticks").
    pub ticks_deferred: u64,
    /// Ticks on which a group's election fell due and was held back
    /// because [`HostConfig::max_campaigns`](super::HostConfig::max_campaigns) groups were campaigning.
    pub campaigns_held: u64,
}
