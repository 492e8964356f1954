//! Feature `metrics`: what `telemetry::publish_node` and `publish_runtime`
//! hand a Prometheus exporter, rendered without a scrape: the kinds the
//! module's table documents, per-follower gauges that do not outlive the
//! leadership they describe, and counters that stay monotonic when the node
//! or runtime publishing them is started again in the same process.
//!
//! Each test records into a recorder of its own (`with_local_recorder`) and
//! publishes under node ids no other test uses: the telemetry module
//! remembers what it published per node.

#![cfg(all(feature = "net", feature = "metrics"))]

#[path = "support/telemetry_doc.rs"]
mod telemetry_doc;

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use raft_io::runtime::RuntimeStats;
use raft_io::telemetry::{ClusterLabel, Publisher, publish_node, publish_runtime};
use raft_io::{NodeMetrics, PeerMetrics, Role};

/// Runs `f` with `recorder` installed on this thread; returns the render.
fn render(recorder: &PrometheusRecorder, f: impl FnOnce()) -> String {
    metrics::with_local_recorder(recorder, f);
    recorder.handle().render()
}

fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok())
}

/// A leader's metrics with every optional part present.
fn leader(node: u64, peers: &[(u64, u64, u64)]) -> NodeMetrics {
    let mut m = NodeMetrics::default();
    m.node = node;
    m.role = Role::Leader;
    m.leader = Some(node);
    m.log_fsyncs = Some(3);
    m.log_sync_time = Some(Duration::from_millis(1500));
    m.peers = peers.iter().map(|&(id, match_index, lag)| peer(id, match_index, lag)).collect();
    m
}

fn peer(id: u64, match_index: u64, lag: u64) -> PeerMetrics {
    PeerMetrics { id, match_index, lag }
}

/// The series of a node and its runtime (the many-groups runtime's host
/// series, `raft_multi_*`, are checked by tests/multi_metrics.rs).
#[test]
fn the_documented_kinds_are_the_exported_kinds() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let body = render(&recorder, || {
        publish_node(&leader(101, &[(102, 5, 1)]));
        publish_runtime(101, &RuntimeStats::default());
    });
    let exported = telemetry_doc::exported_kinds(&body);
    let mut documented = telemetry_doc::documented_kinds();
    documented.retain(|name, _| !telemetry_doc::is_multi(name));
    assert_eq!(exported, documented, "exported (left) and documented (right) kinds differ:\n{body}");
}

#[test]
fn a_former_leaders_peer_gauges_do_not_stay_stale() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let lagging = render(&recorder, || publish_node(&leader(201, &[(202, 10, 500), (203, 510, 0)])));
    assert_eq!(value(&lagging, "raft_peer_lag", r#"node="201",peer="202""#), Some(500.0), "{lagging}");

    // It steps down: as a follower it knows no follower's progress.
    let mut follower = leader(201, &[]);
    follower.role = Role::Follower;
    follower.leader = Some(203);
    let after = render(&recorder, || publish_node(&follower));
    for (name, peer) in [("raft_peer_lag", 202), ("raft_peer_match_index", 202), ("raft_peer_match_index", 203)] {
        let series = format!(r#"node="201",peer="{peer}""#);
        assert_eq!(
            value(&after, name, &series).unwrap_or(0.0),
            0.0,
            "{name}{{{series}}} stale after stepping down:\n{after}"
        );
    }

    // Leading again with one follower removed: only the remaining one is
    // reported, the removed one's gauges are not left as they were.
    let again = render(&recorder, || publish_node(&leader(201, &[(203, 700, 20)])));
    assert_eq!(value(&again, "raft_peer_lag", r#"node="201",peer="203""#), Some(20.0), "{again}");
    assert_eq!(value(&again, "raft_peer_lag", r#"node="201",peer="202""#).unwrap_or(0.0), 0.0, "{again}");
}

#[test]
fn counters_keep_counting_after_the_node_and_runtime_restart() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let mut m = leader(301, &[]);
    let mut s = RuntimeStats::default();
    m.proposals = 100;
    s.ticks = 1000;
    render(&recorder, || {
        publish_node(&m);
        publish_runtime(301, &s);
    });
    // The runtime halted and the application started a new one in the same
    // process: the node's and the runtime's counts start from zero again.
    m.proposals = 5;
    s.ticks = 40;
    let restarted = render(&recorder, || {
        publish_node(&m);
        publish_runtime(301, &s);
    });
    assert_eq!(value(&restarted, "raft_proposals_total", r#"node="301""#), Some(105.0), "{restarted}");
    assert_eq!(value(&restarted, "raft_runtime_ticks_total", r#"node="301""#), Some(1040.0), "{restarted}");
    m.proposals = 30;
    let later = render(&recorder, || publish_node(&m));
    assert_eq!(value(&later, "raft_proposals_total", r#"node="301""#), Some(130.0), "{later}");
}

/// Two runtimes with one node id in one process (two clusters) publish
/// distinct series when each names its cluster, each counter carried on
/// its own (one cluster's lower count is not the other's restart); a
/// publisher without a cluster label publishes the series as before, with
/// no `cluster` label.
#[test]
fn one_node_id_in_two_clusters_publishes_two_series() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let east = Publisher::new().cluster(ClusterLabel::new("east").unwrap());
    let west = Publisher::new().cluster(ClusterLabel::new("west-2").unwrap());
    let (mut a, mut b, mut plain) = (leader(401, &[(402, 9, 1)]), leader(401, &[(403, 4, 6)]), leader(401, &[]));
    (a.proposals, b.proposals, plain.proposals) = (10, 3, 7);
    let mut s = RuntimeStats::default();
    let body = render(&recorder, || {
        for _ in 0..2 {
            east.publish_node(&a);
            west.publish_node(&b);
            publish_node(&plain);
        }
        s.ticks = 50;
        east.publish_runtime(401, &s);
        s.ticks = 20;
        west.publish_runtime(401, &s);
    });
    let east_ = r#"cluster="east",node="401""#;
    let west_ = r#"cluster="west-2",node="401""#;
    assert_eq!(value(&body, "raft_proposals_total", east_), Some(10.0), "{body}");
    assert_eq!(value(&body, "raft_proposals_total", west_), Some(3.0), "{body}");
    assert_eq!(value(&body, "raft_proposals_total", r#"node="401""#), Some(7.0), "{body}");
    assert_eq!(value(&body, "raft_runtime_ticks_total", east_), Some(50.0), "{body}");
    assert_eq!(value(&body, "raft_runtime_ticks_total", west_), Some(20.0), "{body}");
    assert_eq!(value(&body, "raft_peer_lag", &format!("{east_},peer=\"402\"")), Some(1.0), "{body}");
    assert_eq!(value(&body, "raft_peer_lag", &format!("{west_},peer=\"403\"")), Some(6.0), "{body}");
    assert_eq!(value(&body, "raft_log_sync_seconds_total", west_), Some(1.5), "{body}");
    assert_eq!(east.cluster_label().map(ClusterLabel::as_str), Some("east"));

    // Unset: no `cluster` label on any series.
    let recorder = PrometheusBuilder::new().build_recorder();
    let body = render(&recorder, || {
        Publisher::new().publish_node(&leader(411, &[(412, 1, 0)]));
        Publisher::new().publish_runtime(411, &RuntimeStats::default());
    });
    assert_eq!(value(&body, "raft_term", r#"node="411""#), Some(0.0), "{body}");
    assert!(!body.contains("cluster"), "{body}");
}

/// A publisher with a group label (`Publisher::group`, the many-groups
/// runtime's per-group mode) publishes a series per group, each counter
/// carried on its own: one group's lower count is not another's restart.
#[test]
fn each_group_of_one_node_publishes_its_own_series() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let east = Publisher::new().cluster(ClusterLabel::new("east").unwrap());
    let (mut a, mut b) = (leader(501, &[(502, 3, 2)]), leader(501, &[]));
    (a.proposals, b.proposals) = (40, 2);
    let body = render(&recorder, || {
        for _ in 0..2 {
            east.clone().group(7).publish_node(&a);
            east.clone().group(8).publish_node(&b);
        }
    });
    assert_eq!(east.clone().group(7).group_label(), Some(7));
    assert_eq!(east.group_label(), None);
    let of = |g: u64| format!(r#"cluster="east",node="501",group="{g}""#);
    assert_eq!(value(&body, "raft_proposals_total", &of(7)), Some(40.0), "{body}");
    assert_eq!(value(&body, "raft_proposals_total", &of(8)), Some(2.0), "{body}");
    assert_eq!(value(&body, "raft_peer_lag", &format!("{},peer=\"502\"", of(7))), Some(2.0), "{body}");
    assert_eq!(value(&body, "raft_term", r#"cluster="east",node="501""#), None, "{body}");
}
