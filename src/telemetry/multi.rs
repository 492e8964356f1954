//! The many-groups runtime's host series (features `net` and
//! `persistence` too): a fixed set, whatever the number of groups. The
//! runtime sums its groups' counters ([`GroupTotals`]) at each
//! publication and hands them here with its own counters.

use metrics::{Label, gauge};

use super::{NODE_COUNTERS, Publisher, node_counters, set_counters};
use crate::node::NodeMetrics;
use crate::runtime::multi::MultiStats;
use crate::types::{NodeId, Role};

/// The host's sum of each of [`node_counters`], in the same order.
const GROUP_SUMS: [&str; NODE_COUNTERS] = [
    "raft_multi_proposals_total",
    "raft_multi_proposals_refused_total",
    "raft_multi_leader_changes_total",
    "raft_multi_elections_total",
    "raft_multi_messages_received_total",
    "raft_multi_messages_sent_total",
    "raft_multi_messages_dropped_total",
    "raft_multi_heartbeats_skipped_total",
    "raft_multi_lease_reads_total",
    "raft_multi_follower_regressions_total",
    "raft_multi_log_syncs_total",
    "raft_multi_snapshots_sent_total",
    "raft_multi_snapshot_bytes_sent_total",
    "raft_multi_snapshots_installed_total",
    "raft_multi_snapshot_bytes_received_total",
    "raft_multi_snapshots_taken_total",
];

/// What a walk over a host's groups found: the sums of their counters
/// and how many of them this node leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupTotals {
    /// Per counter of [`node_counters`], the sum.
    sums: [u64; NODE_COUNTERS],
    /// Groups led here.
    pub(crate) led: u64,
}

impl GroupTotals {
    /// Adds one group's counters (and its leadership).
    pub(crate) fn add(&mut self, m: &NodeMetrics) {
        for (sum, (_, value)) in self.sums.iter_mut().zip(node_counters(m)) {
            *sum = sum.saturating_add(value);
        }
        self.led += u64::from(m.role == Role::Leader);
    }

    /// Adds the sums of `other` (its `led` is not added: a removed group
    /// leads nothing).
    pub(crate) fn carry(&mut self, other: &Self) {
        for (sum, value) in self.sums.iter_mut().zip(other.sums) {
            *sum = sum.saturating_add(value);
        }
    }

    /// The sum of the counter published as `name` (`raft_multi_*_total`).
    #[cfg(test)]
    pub(crate) fn sum(&self, name: &str) -> Option<u64> {
        GROUP_SUMS.iter().position(|&n| n == name).map(|i| self.sums[i])
    }
}

impl Publisher {
    /// Publishes the host series of node `id`'s many-groups runtime: its
    /// groups' `totals` (removed groups' counts carried in), its own
    /// counters `s`, and the shared WAL's size `wal_bytes`.
    pub(crate) fn publish_multi(&self, id: NodeId, s: &MultiStats, totals: &GroupTotals, wal_bytes: u64) {
        let labels = self.labels(id);
        let (h, w, t) = (&s.host, &s.wal, &s.turn_times);
        let gauges = [
            ("raft_multi_groups", h.groups),
            ("raft_multi_groups_led", totals.led),
            ("raft_multi_groups_quiesced", h.quiesced),
            ("raft_multi_groups_campaigning", h.campaigning),
            ("raft_multi_requests_held", s.held_requests),
            ("raft_multi_requests_queued", s.queued_requests),
            ("raft_multi_wal_bytes", wal_bytes),
        ];
        for (name, value) in gauges {
            gauge!(name, labels.iter()).set(value as f64);
        }
        // Running totals of seconds, as gauges so the fraction survives
        // (as `raft_log_sync_seconds_total`).
        gauge!("raft_multi_wal_sync_seconds_total", labels.iter()).set(w.sync_time.as_secs_f64());
        let phases = [
            ("receive", t.receive),
            ("ticks", t.ticks),
            ("requests", t.requests),
            ("send", t.send),
            ("flush", t.flush),
            ("idle", t.idle),
        ];
        for (phase, spent) in phases {
            let mut labels = labels.clone();
            labels.push(Label::new("phase", phase));
            gauge!("raft_multi_turn_seconds_total", labels.iter()).set(spent.as_secs_f64());
        }
        let sums = GROUP_SUMS.iter().copied().zip(totals.sums);
        let counters: Vec<(&'static str, u64)> = sums
            .chain([
                ("raft_multi_runtime_turns_total", s.turns),
                ("raft_multi_runtime_ticks_total", s.ticks),
                ("raft_multi_runtime_envelopes_received_total", s.envelopes_in),
                ("raft_multi_runtime_envelopes_sent_total", s.envelopes_out),
                ("raft_multi_runtime_persisted_total", s.persisted),
                ("raft_multi_runtime_proposals_total", s.proposals),
                ("raft_multi_runtime_batches_total", s.batches),
                ("raft_multi_runtime_applied_total", s.applied),
                ("raft_multi_runtime_reads_total", s.reads),
                ("raft_multi_runtime_snapshots_total", s.snapshots),
                ("raft_multi_runtime_snapshot_chunks_sent_total", s.snapshot_chunks_sent),
                ("raft_multi_runtime_snapshot_chunks_held_back_total", s.snapshot_chunks_held_back),
                ("raft_multi_runtime_snapshot_chunks_received_total", s.snapshot_chunks_received),
                ("raft_multi_runtime_snapshot_chunks_refused_total", s.snapshot_chunks_refused),
                ("raft_multi_wal_records_total", w.records),
                ("raft_multi_wal_fsyncs_total", w.syncs),
                ("raft_multi_wal_checkpoints_total", w.checkpoints),
                ("raft_multi_wal_checkpoints_deferred_total", w.checkpoints_deferred),
                ("raft_multi_wal_compactions_total", w.compactions),
                ("raft_multi_wal_operations_total", w.operations),
                ("raft_multi_host_steps_total", h.steps),
                ("raft_multi_host_quiesces_total", h.quiesces),
                ("raft_multi_host_wakes_total", h.wakes),
                ("raft_multi_host_quiet_messages_total", h.quiet_messages),
                ("raft_multi_host_ticks_deferred_total", h.ticks_deferred),
                ("raft_multi_host_campaigns_held_total", h.campaigns_held),
                ("raft_multi_host_peers_lost_total", h.peers_lost),
                ("raft_multi_host_woken_by_peer_loss_total", h.woken_by_peer_loss),
                ("raft_multi_host_unknown_group_dropped_total", h.unknown_group_dropped),
                ("raft_multi_host_misaddressed_dropped_total", h.misaddressed_dropped),
            ])
            .collect();
        self.with_published(id, |published| set_counters(published, &labels, &counters));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sum_is_named_after_the_counter_it_sums() {
        let names = node_counters(&NodeMetrics::default()).map(|(name, _)| name);
        for (node, host) in names.iter().zip(GROUP_SUMS) {
            assert_eq!(host, node.replacen("raft_", "raft_multi_", 1), "{node}");
        }
    }

    #[test]
    fn totals_sum_the_groups_and_carry_the_removed() {
        let mut one = NodeMetrics::default();
        (one.proposals, one.messages_sent, one.role) = (3, 10, Role::Leader);
        let mut two = NodeMetrics::default();
        (two.proposals, two.dropped_messages) = (4, 2);
        let mut totals = GroupTotals::default();
        totals.add(&one);
        totals.add(&two);
        assert_eq!(totals.sum("raft_multi_proposals_total"), Some(7));
        assert_eq!(totals.sum("raft_multi_messages_dropped_total"), Some(2));
        assert_eq!(totals.led, 1);
        let mut removed = GroupTotals::default();
        removed.add(&one);
        let mut later = GroupTotals::default();
        later.add(&two);
        later.carry(&removed);
        assert_eq!(later.sum("raft_multi_proposals_total"), Some(7), "the removed group's 3 carried");
        assert_eq!(later.led, 0, "a removed group leads nothing");
    }
}
