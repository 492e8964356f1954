//! A three-node in-process cluster (threaded runtime, in-memory logs and
//! transport) whose metrics are served in Prometheus text format on a
//! loopback port, then scraped once. Run with
//! `cargo run --example metrics_prometheus --features net,metrics`.
//!
//! The runtime publishes through the `metrics` facade every 10 ticks; the
//! exporter (`metrics-exporter-prometheus`, without its HTTP server) renders
//! what it recorded, and a small std-only HTTP endpoint serves it.

#[path = "../tests/support/prometheus_http.rs"]
mod prometheus_http;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use raft_io::runtime::Runtime;
use raft_io::{MemoryTransport, RaftConfig, RaftNode};

#[path = "support/counter.rs"]
mod counter;
use counter::Counter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let server = prometheus_http::serve(listener, move || exporter.render(), Arc::clone(&stop));
    println!("serving metrics on http://{addr}/metrics");

    let ids = [1, 2, 3];
    let handles: Vec<_> = MemoryTransport::cluster(ids)
        .into_iter()
        .zip(ids)
        .map(|(transport, id)| {
            let node = RaftNode::new(RaftConfig::new(id, ids).seed(id).election_timeout(50, 100))?;
            Ok(Runtime::new(node, transport, Counter::default()).tick_interval(Duration::from_millis(2)).start()?)
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let leader = counter::await_leader(&handles, Duration::from_secs(30)).ok_or("no leader elected")?;
    for i in 0..100 {
        leader.propose(format!("cmd-{i}"))?;
    }
    // Let a publication (every 10 ticks, 20 ms) pass after the proposals.
    std::thread::sleep(Duration::from_millis(100));
    let (status, body) = prometheus_http::get(addr, "/metrics")?;
    let series: Vec<&str> = body.lines().filter(|l| l.starts_with("raft_")).collect();
    let node = leader.id();
    let proposals = prometheus_http::value(&body, "raft_proposals_total", &format!("node=\"{node}\"")).unwrap_or(0.0);
    println!("{status}: {} raft_ series, leader {node} proposed {proposals}", series.len());
    for line in series.iter().filter(|l| l.contains(&format!("node=\"{node}\""))).take(12) {
        println!("  {line}");
    }
    for h in &handles {
        h.shutdown();
    }
    stop.store(true, Ordering::Release);
    let _ = prometheus_http::get(addr, "/metrics");
    let _ = server.join();
    println!("metrics_prometheus: {} series scraped from http://{addr}/metrics", series.len());
    Ok(())
}
