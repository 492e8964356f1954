//! Feature `metrics`: what the many-groups driver publishes through the
//! `metrics` facade, every [`PUBLISH_EVERY`] ticks: the host series (a
//! fixed set: its groups' counters summed, its own counters, the shared
//! WAL's), and with the per-group mode each group's own series.
//!
//! The sums are taken at each publication, by one walk over the groups;
//! nothing is kept per group in between. A removed group's last counts are
//! carried in the sums, so that no host counter goes back when a group
//! leaves.

use super::MultiStats;
use crate::log::RaftLog;
use crate::multi::MultiNode;
use crate::node::RaftNode;
use crate::telemetry::Publisher;
use crate::telemetry::multi::GroupTotals;

/// Ticks between publications (as the single-group runtime).
pub(super) const PUBLISH_EVERY: u64 = 10;

/// Whether the `due` ticks that brought the driver's count of ticks to
/// `ticks` crossed a publication.
pub(super) fn due(ticks: u64, due: u64) -> bool {
    ticks.saturating_sub(due) / PUBLISH_EVERY != ticks / PUBLISH_EVERY
}

/// The driver's publisher, and what its removed groups had counted.
#[derive(Debug)]
pub(super) struct HostMetrics {
    publisher: Publisher,
    per_group: bool,
    removed: GroupTotals,
}

impl HostMetrics {
    pub(super) fn new(publisher: Publisher, per_group: bool) -> Self {
        Self { publisher, per_group, removed: GroupTotals::default() }
    }

    /// A group leaves the host: its counts stay in the sums.
    pub(super) fn removed<L: RaftLog>(&mut self, node: &RaftNode<L>) {
        self.removed.add(&node.metrics_light());
    }

    /// The sums over `host`'s groups, and over the groups removed; with the
    /// per-group mode, each group's series published on the way.
    pub(super) fn totals<L: RaftLog>(&self, host: &MultiNode<L>) -> GroupTotals {
        let mut totals = GroupTotals::default();
        for (group, node) in host.groups() {
            if self.per_group {
                let mut m = node.metrics();
                // The shared WAL's, the same for every group: published
                // once, as `raft_multi_wal_*`.
                (m.log_fsyncs, m.log_sync_time) = (None, None);
                self.publisher.clone().group(group).publish_node(&m);
                totals.add(&m);
            } else {
                totals.add(&node.metrics_light());
            }
        }
        totals.carry(&self.removed);
        totals
    }

    /// Publishes: `stats` are the runtime's counters, `wal_bytes` the
    /// shared WAL's size.
    pub(super) fn publish<L: RaftLog>(&self, host: &MultiNode<L>, stats: &MultiStats, wal_bytes: u64) {
        let totals = self.totals(host);
        self.publisher.publish_multi(host.id(), stats, &totals, wal_bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::multi::HostConfig;
    use crate::{Event, MemoryLog, RaftConfig};

    #[test]
    fn a_publication_falls_every_ten_ticks_however_they_come() {
        let crossings = |steps: &[u64]| {
            let mut ticks = 0;
            steps
                .iter()
                .filter(|&&n| {
                    ticks += n;
                    due(ticks, n)
                })
                .count()
        };
        assert_eq!(crossings(&[1; 35]), 3);
        // At 10; at 35 (20 and 30 crossed at once: one publication); at 40.
        assert_eq!(crossings(&[9, 1, 25, 3, 2]), 3);
        assert_eq!(crossings(&[0, 0]), 0);
    }

    #[test]
    fn a_removed_groups_counts_stay_in_the_sums() {
        let mut host = MultiNode::new(HostConfig::new(1));
        for group in 1..=3 {
            host.create_group(group, RaftConfig::single(1), MemoryLog::new()).unwrap();
            host.step(group, Event::Campaign).unwrap();
            for _ in 0..group {
                host.step(group, Event::Propose("x".into())).unwrap();
            }
        }
        host.drain_actions().for_each(drop);
        let mut metrics = HostMetrics::new(Publisher::new(), false);
        let before = metrics.totals(&host);
        assert_eq!((before.sum("raft_multi_proposals_total"), before.led), (Some(6), 3));
        let node = host.remove_group(3).unwrap();
        metrics.removed(&node);
        host.step(1, Event::Propose("y".into())).unwrap();
        let after = metrics.totals(&host);
        assert_eq!((after.sum("raft_multi_proposals_total"), after.led), (Some(7), 2));
        assert_eq!(after.sum("raft_multi_elections_total"), Some(3));
    }

    /// A host of `groups` groups: every third one of this node alone and
    /// led here, the others of three members.
    fn host_of(groups: u64) -> MultiNode<MemoryLog> {
        let mut host = MultiNode::new(HostConfig::new(1));
        for group in 1..=groups {
            if group % 3 == 0 {
                host.create_group(group, RaftConfig::single(1), MemoryLog::new()).unwrap();
                host.step(group, Event::Campaign).unwrap();
            } else {
                host.create_group(group, RaftConfig::new(1, [1, 2, 3]), MemoryLog::new()).unwrap();
            }
        }
        host.drain_actions().for_each(drop);
        host
    }

    /// The best of five runs of `f`.
    fn best_of_five(mut f: impl FnMut()) -> Duration {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    /// The cost of a publication at 10 000 groups: the walk behind the
    /// sums, and the host series handed to a Prometheus recorder; and the
    /// per-group mode's cost per group. Reported, not asserted:
    /// `cargo test --release --all-features --lib runtime::multi::metrics
    /// -- --nocapture`.
    #[test]
    fn publishing_at_ten_thousand_groups() {
        const GROUPS: u64 = 10_000;
        let host = host_of(GROUPS);
        let metrics = HostMetrics::new(Publisher::new(), false);
        let mut totals = GroupTotals::default();
        let walk = best_of_five(|| totals = std::hint::black_box(metrics.totals(&host)));
        assert_eq!(totals.sum("raft_multi_elections_total"), Some(GROUPS / 3));
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let stats = MultiStats::default();
        let publish = best_of_five(|| {
            ::metrics::with_local_recorder(&recorder, || metrics.publish(&host, &stats, 0));
        });
        let body = recorder.handle().render();
        assert!(body.contains("raft_multi_groups_led{node=\"1\"} 3333"), "{body}");
        assert!(!body.contains("group="), "{body}");
        let per_group = HostMetrics::new(Publisher::new(), true);
        let small = host_of(100);
        let each = best_of_five(|| {
            ::metrics::with_local_recorder(&recorder, || per_group.publish(&small, &stats, 0));
        }) / 100;
        println!(
            "{GROUPS} groups: the walk {walk:?} ({} ns a group), a whole publication {publish:?}; \
             the per-group mode adds {each:?} a group (best of 5)",
            walk.as_nanos() / u128::from(GROUPS)
        );
    }
}
