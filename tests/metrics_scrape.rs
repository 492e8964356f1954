//! Feature `metrics`: a runtime publishes through the `metrics` facade, a
//! Prometheus exporter renders it, and a scrape over loopback HTTP finds the
//! documented series with the right values; a scrape after shutdown still
//! answers (the last values), and a bad request gets an error. A runtime
//! given a cluster label (`metrics_cluster`) publishes its node's series
//! apart from another cluster's node of the same id.

#[path = "support/prometheus_http.rs"]
mod prometheus_http;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusBuilder;
use raft_io::runtime::{Runtime, StateMachine};
use raft_io::{MemoryTransport, RaftConfig, RaftNode};

#[derive(Default)]
struct Nothing;

impl StateMachine for Nothing {
    type Output = ();
    fn apply(&mut self, _index: u64, _command: &Bytes) {}
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _data: &Bytes) {}
}

fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_scrape_finds_the_documented_series() {
    let exporter = PrometheusBuilder::new().install_recorder().expect("the only recorder of this process");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = prometheus_http::serve(listener, move || exporter.render(), Arc::new(AtomicBool::new(false)));

    let ids = [1, 2, 3];
    let handles: Vec<_> = MemoryTransport::cluster(ids)
        .into_iter()
        .zip(ids)
        .map(|(t, id)| {
            let node = RaftNode::new(RaftConfig::new(id, ids).seed(id).election_timeout(50, 100)).unwrap();
            Runtime::new(node, t, Nothing).tick_interval(Duration::from_millis(2)).start().unwrap()
        })
        .collect();
    // Node 1 of another cluster, alone, in the same process.
    let other = {
        let t = MemoryTransport::cluster([1]).pop().unwrap();
        let node = RaftNode::new(RaftConfig::new(1, [1]).cluster_id(9).election_timeout(50, 100)).unwrap();
        let label = raft_io::telemetry::ClusterLabel::new("other").unwrap();
        Runtime::new(node, t, Nothing).tick_interval(Duration::from_millis(2)).metrics_cluster(label).start().unwrap()
    };
    wait("a leader", || handles.iter().any(|h| h.is_leader()));
    let leader = handles.iter().find(|h| h.is_leader()).unwrap().clone();
    for i in 0..50 {
        leader.propose(format!("c{i}")).unwrap();
    }
    let me = format!("node=\"{}\"", leader.id());
    let metrics = leader.metrics().unwrap();
    assert!(metrics.proposals >= 50 && metrics.peers.len() == 2, "{metrics:?}");
    // Published every 10 ticks: wait until a scrape shows the proposals
    // committed (a publication may fall between an append and its commit).
    let mut body = String::new();
    let commit = metrics.commit_index as f64;
    wait("the proposals in a scrape", || {
        let (status, b) = prometheus_http::get(addr, "/metrics").unwrap();
        assert!(status.contains("200"), "{status}");
        body = b;
        prometheus_http::value(&body, "raft_proposals_total", &me).is_some_and(|v| v >= 50.0)
            && prometheus_http::value(&body, "raft_commit_index", &me).is_some_and(|c| c >= commit)
    });
    assert_eq!(prometheus_http::value(&body, "raft_role", &me), Some(3.0), "leader");
    assert_eq!(prometheus_http::value(&body, "raft_term", &me), Some(leader.term() as f64));
    assert!(commit >= 51.0, "{metrics:?}");
    for name in
        ["raft_leader_changes_total", "raft_elections_total", "raft_messages_sent_total", "raft_log_syncs_total"]
    {
        assert!(prometheus_http::value(&body, name, &me).is_some(), "{name} missing:\n{body}");
    }
    let peer = ids.iter().find(|&&id| id != leader.id()).unwrap();
    let lag = prometheus_http::value(&body, "raft_peer_lag", &format!("{me},peer=\"{peer}\""));
    assert!(lag.is_some(), "per-peer lag missing:\n{body}");
    assert!(prometheus_http::value(&body, "raft_runtime_ticks_total", &me).is_some_and(|t| t > 0.0));
    // The other cluster's node 1 leads alone; the first cluster's node 1
    // has a series of its own, without the label.
    wait("the other cluster's leader", || other.is_leader());
    other.propose("x").unwrap();
    let theirs = r#"cluster="other",node="1""#;
    wait("the other cluster's node in a scrape", || {
        body = prometheus_http::get(addr, "/metrics").unwrap().1;
        prometheus_http::value(&body, "raft_proposals_total", theirs).is_some_and(|v| v >= 1.0)
    });
    assert_eq!(prometheus_http::value(&body, "raft_role", theirs), Some(3.0), "{body}");
    assert!(prometheus_http::value(&body, "raft_runtime_ticks_total", theirs).is_some(), "{body}");
    assert!(prometheus_http::value(&body, "raft_term", r#"node="1""#).is_some(), "{body}");
    assert_eq!(body.lines().filter(|l| l.contains("cluster=") && !l.contains(theirs)).count(), 0, "{body}");
    other.shutdown();

    // Bad requests get an error; a scrape during and after shutdown still
    // answers with the last values.
    assert!(prometheus_http::get(addr, "/nowhere").unwrap().0.contains("404"));
    for h in &handles {
        h.shutdown();
    }
    let (status, after) = prometheus_http::get(addr, "/metrics").unwrap();
    assert!(status.contains("200") && after.contains("raft_term"), "{status}");
    assert!(matches!(leader.metrics(), Err(raft_io::runtime::RuntimeError::ShuttingDown)));
}
