//! Feature `metrics`: the many-groups runtime (`MultiRuntime`) publishes
//! its host series through the `metrics` facade, and a Prometheus exporter
//! renders them: the groups hosted and led, its groups' counters summed
//! (kept from going back when a group is removed), its own counters and
//! the shared WAL's; no `group` label unless the per-group mode is on, and
//! then one series per group; the `cluster` label where one was given; the
//! kinds the telemetry module's table documents.
//!
//! One recorder for the whole process (the runtimes publish from their
//! driver threads); each test runs nodes of ids no other test uses. Every
//! wait polls with a generous deadline: outcomes never depend on timing.
#![cfg(all(feature = "net", feature = "persistence", feature = "metrics"))]

#[path = "support/telemetry_doc.rs"]
mod telemetry_doc;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use raft_io::log::shared::SharedWal;
use raft_io::multi::{Envelope, GroupId, HostConfig};
use raft_io::runtime::StateMachine;
use raft_io::runtime::multi::{GroupTransport, MultiHandle, MultiRuntime};
use raft_io::telemetry::ClusterLabel;
use raft_io::{NodeId, RaftConfig};

/// The process's recorder, installed by the first test to ask.
fn exporter() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().expect("the only recorder of this process"))
}

fn render() -> String {
    exporter().render()
}

/// The value of `name{labels}` in `text` (labels as rendered, in order).
fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok())
}

fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", render());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[derive(Default)]
struct Count(u64);

impl StateMachine for Count {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
        self.0 += 1;
        self.0
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_le_bytes).unwrap_or(0);
    }
}

/// Every node's inbox: what a node sends lands in its addressee's.
type Inboxes = Arc<Mutex<BTreeMap<NodeId, VecDeque<Envelope>>>>;

/// An in-process transport between the runtimes of one test.
struct Mesh {
    me: NodeId,
    inboxes: Inboxes,
}

impl GroupTransport for Mesh {
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>) {
        let mut inboxes = self.inboxes.lock().unwrap();
        for envelope in envelopes.drain(..) {
            if let Some(inbox) = inboxes.get_mut(&envelope.to) {
                inbox.push_back(envelope);
            }
        }
    }
    fn try_recv(&mut self) -> Option<Envelope> {
        self.inboxes.lock().unwrap().get_mut(&self.me)?.pop_front()
    }
}

/// A runtime and the directory of its shared WAL (removed after the
/// runtime has stopped).
struct Node {
    handle: MultiHandle<Count>,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Runtimes for `ids`, each hosting a replica of `groups`, set up by
/// `tune`.
fn start(
    ids: &[NodeId],
    groups: &[GroupId],
    tune: impl Fn(MultiRuntime<Count, Mesh>) -> MultiRuntime<Count, Mesh>,
) -> Vec<Node> {
    let inboxes = Inboxes::default();
    inboxes.lock().unwrap().extend(ids.iter().map(|&id| (id, VecDeque::new())));
    ids.iter()
        .map(|&id| {
            let dir = tempfile::tempdir().unwrap();
            let wal = SharedWal::open(dir.path()).unwrap();
            let mesh = Mesh { me: id, inboxes: Arc::clone(&inboxes) };
            let mut runtime = MultiRuntime::new(HostConfig::new(id), wal, mesh, |_| Count::default())
                .tick_interval(Duration::from_millis(2));
            for &g in groups {
                let config = RaftConfig::new(id, ids.iter().copied()).election_timeout(20, 40).seed(g * 10 + id);
                runtime = runtime.group(g, config);
            }
            Node { handle: tune(runtime).start().unwrap(), _dir: dir }
        })
        .collect()
}

/// The node leading `group`, once there is one.
fn leader(nodes: &[Node], group: GroupId) -> &MultiHandle<Count> {
    let id = nodes[0].handle.wait_for_leader(group, Duration::from_secs(60)).expect("a leader");
    &nodes.iter().find(|n| n.handle.id() == id).expect("a leader among the nodes").handle
}

/// The sum over `groups` of one of `node`'s counters, as its groups
/// report them now.
fn summed(node: &MultiHandle<Count>, groups: &[GroupId], counter: fn(&raft_io::NodeMetrics) -> u64) -> u64 {
    groups.iter().map(|&g| counter(&node.metrics(g).unwrap())).sum()
}

/// Three nodes, three groups: every node publishes its host series, whose
/// sums are its groups' counters; the groups led add up to three across
/// the nodes; no series has a `group` label (per-group mode off).
#[test]
fn three_nodes_publish_the_host_series() {
    let (ids, groups) = ([11, 12, 13], [1, 2, 3]);
    let nodes = start(&ids, &groups, |r| r);
    for &g in &groups {
        let leader = leader(&nodes, g);
        for i in 0..2 * g {
            leader.propose(g, format!("{g}-{i}")).unwrap();
        }
    }
    // The counts still move (heartbeats, leadership): wait for a
    // publication that matches the groups' counts of the moment.
    let proposals = |m: &raft_io::NodeMetrics| m.proposals;
    let elections = |m: &raft_io::NodeMetrics| m.elections;
    let mut body = String::new();
    for n in &nodes {
        let me = format!("node=\"{}\"", n.handle.id());
        wait("a publication with the groups' counts", || {
            body = render();
            value(&body, "raft_multi_proposals_total", &me) == Some(summed(&n.handle, &groups, proposals) as f64)
                && value(&body, "raft_multi_elections_total", &me) == Some(summed(&n.handle, &groups, elections) as f64)
        });
        assert_eq!(value(&body, "raft_multi_groups", &me), Some(3.0), "{body}");
        assert!(value(&body, "raft_multi_messages_sent_total", &me).is_some_and(|v| v > 0.0), "{body}");
        assert!(value(&body, "raft_multi_runtime_ticks_total", &me).is_some_and(|v| v > 0.0), "{body}");
        assert!(value(&body, "raft_multi_wal_fsyncs_total", &me).is_some_and(|v| v > 0.0), "{body}");
        assert!(value(&body, "raft_multi_wal_bytes", &me).is_some_and(|v| v > 0.0), "{body}");
        assert!(value(&body, "raft_multi_requests_held", &me).is_some(), "{body}");
        let phase = format!("{me},phase=\"flush\"");
        assert!(value(&body, "raft_multi_turn_seconds_total", &phase).is_some_and(|v| v > 0.0), "{body}");
    }
    // 2 + 4 + 6 proposals, each accepted by its group's leader's runtime;
    // each group led by one node.
    let total = |name: &str, body: &str| -> f64 {
        ids.iter().filter_map(|id| value(body, name, &format!("node=\"{id}\""))).sum()
    };
    wait("the runtimes' proposals and the groups led", || {
        body = render();
        total("raft_multi_runtime_proposals_total", &body) == 12.0
            && total("raft_multi_groups_led", &body) == 3.0
            && total("raft_multi_proposals_total", &body) == 12.0
    });
    let ours: Vec<&str> = body.lines().filter(|l| ids.iter().any(|id| l.contains(&format!("node=\"{id}\"")))).collect();
    assert!(ours.iter().all(|l| !l.contains("group=") && !l.contains("cluster=")), "{}", ours.join("\n"));
    assert!(!ours.iter().any(|l| l.starts_with("raft_term")), "no node series without the per-group mode");
}

/// A group removed takes its counts out of the walk, not out of the sums:
/// after the removal a sum goes on from where it was.
#[test]
fn removing_a_group_keeps_the_sums_from_going_back() {
    let groups = [1, 2, 3];
    let nodes = start(&[21], &groups, |r| r);
    let node = &nodes[0].handle;
    for (g, n) in [(1, 1), (2, 1), (3, 5)] {
        node.wait_for_leader(g, Duration::from_secs(60)).expect("a leader");
        for i in 0..n {
            node.propose(g, format!("{i}")).unwrap();
        }
    }
    let me = r#"node="21""#;
    let proposals = |m: &raft_io::NodeMetrics| m.proposals;
    let before = summed(node, &groups, proposals);
    assert_eq!(before, 7);
    wait("the seven proposals published", || value(&render(), "raft_multi_proposals_total", me) == Some(7.0));
    let elections = value(&render(), "raft_multi_elections_total", me).unwrap();
    assert_eq!(elections, summed(node, &groups, |m| m.elections) as f64);

    node.remove_group(3).unwrap();
    node.propose(1, "after").unwrap();
    wait("a publication after the removal", || {
        let body = render();
        value(&body, "raft_multi_groups", me) == Some(2.0) && value(&body, "raft_multi_groups_led", me) == Some(2.0)
    });
    // Exactly the 7 before and the one after: group 3's 5 carried, and not
    // taken for a restart of the runtime's counts (which would carry the
    // whole sum again).
    wait("the proposal after the removal published", || {
        value(&render(), "raft_multi_proposals_total", me) == Some(8.0)
    });
    assert_eq!(value(&render(), "raft_multi_elections_total", me), Some(elections));
}

/// With the per-group mode, each group publishes the series of a node
/// labelled with its group, beside the host series; a cluster label
/// applies to both.
#[test]
fn the_per_group_mode_publishes_one_series_per_group() {
    let groups = [4, 5, 6];
    let east = ClusterLabel::new("east").unwrap();
    let nodes = start(&[31], &groups, |r| r.metrics_cluster(east.clone()).metrics_per_group(true));
    let node = &nodes[0].handle;
    for &g in &groups {
        node.wait_for_leader(g, Duration::from_secs(60)).expect("a leader");
        for i in 0..g {
            node.propose(g, format!("{i}")).unwrap();
        }
    }
    let host = r#"cluster="east",node="31""#;
    let of = |g: GroupId| format!("{host},group=\"{g}\"");
    let mut body = String::new();
    wait("every group's proposals published", || {
        body = render();
        groups.iter().all(|&g| value(&body, "raft_proposals_total", &of(g)) == Some(g as f64))
            && value(&body, "raft_multi_proposals_total", host) == Some(15.0)
    });
    for &g in &groups {
        assert_eq!(value(&body, "raft_role", &of(g)), Some(3.0), "group {g} led here:\n{body}");
        assert!(value(&body, "raft_commit_index", &of(g)).is_some_and(|c| c > g as f64), "{body}");
    }
    assert_eq!(value(&body, "raft_multi_groups", host), Some(3.0), "{body}");
    let ours: Vec<&str> = body.lines().filter(|l| l.contains(r#"node="31""#)).collect();
    assert!(ours.iter().all(|l| l.contains(r#"cluster="east""#)), "{}", ours.join("\n"));
    let per_group = ours.iter().filter(|l| l.starts_with("raft_proposals_total")).count();
    assert_eq!(per_group, 3, "one series per group:\n{}", ours.join("\n"));
    // The shared WAL's fsyncs are the host's, not each group's.
    assert!(!ours.iter().any(|l| l.starts_with("raft_log_fsyncs_total")), "{}", ours.join("\n"));
    assert!(value(&body, "raft_multi_wal_fsyncs_total", host).is_some(), "{body}");
}

/// The host series render with the kinds the telemetry module's table
/// gives them, and the table lists every one.
#[test]
fn the_documented_multi_kinds_are_the_exported_kinds() {
    let nodes = start(&[41], &[1], |r| r);
    let me = r#"node="41""#;
    wait("a publication", || value(&render(), "raft_multi_groups", me).is_some());
    drop(nodes);
    let body = render();
    let mut exported = telemetry_doc::exported_kinds(&body);
    exported.retain(|name, _| telemetry_doc::is_multi(name));
    let mut documented = telemetry_doc::documented_kinds();
    documented.retain(|name, _| telemetry_doc::is_multi(name));
    assert_eq!(exported, documented, "exported (left) and documented (right) kinds differ:\n{body}");
}
