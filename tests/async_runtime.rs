//! The threaded runtime in the asynchronous storage mode (one switch,
//! `RaftConfig::async_storage`): three nodes on `WalLog`s whose sync
//! threads report completions, concurrent clients, reads on every node, a
//! restart from disk, and fewer fsyncs than writes (group commit across
//! overlapping steps).
#![cfg(all(feature = "net", feature = "persistence"))]

use std::time::{Duration, Instant};

use raft_io::bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::runtime::{RaftHandle, Runtime, StateMachine};
use raft_io::{MemoryTransport, RaftConfig, RaftNode, WalLog};

/// Sums the bytes of every command.
#[derive(Default)]
struct Sum(u64);

impl StateMachine for Sum {
    type Output = u64;
    fn apply(&mut self, _index: u64, command: &Bytes) -> u64 {
        self.0 += command.iter().map(|&b| u64::from(b)).sum::<u64>();
        self.0
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_be_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
    }
}

const IDS: [u64; 3] = [1, 2, 3];

fn start(dir: &std::path::Path, transport: MemoryTransport, id: u64, thread: bool) -> RaftHandle<Sum> {
    let log = WalLog::open_with(dir.join(format!("n{id}")), WalOptions::new().sync_thread(thread)).unwrap();
    let config = RaftConfig::new(id, IDS).seed(id).election_timeout(50, 100).async_storage(true);
    let node = RaftNode::with_log(config, log).unwrap();
    Runtime::new(node, transport, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap()
}

fn leader(handles: &[RaftHandle<Sum>]) -> RaftHandle<Sum> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(h) = handles.iter().find(|h| h.is_leader()) {
            return h.clone();
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn the_runtime_commits_reads_and_restarts_in_the_async_mode_with_deferred_syncs() {
    run(false);
}

#[test]
fn the_runtime_commits_reads_and_restarts_in_the_async_mode_with_a_sync_thread() {
    run(true);
}

/// A read through `h`, sent again while it fails with a retryable error
/// (a follower that has not heard from a new leader yet answers
/// `NotLeader`); a hang guard, not a timing assertion.
fn read(h: &RaftHandle<Sum>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match h.read(|s: &Sum| s.0) {
            Ok(v) => return v,
            Err(e) if e.is_retryable() && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("node {}: {e}", h.id()),
        }
    }
}

fn run(thread: bool) {
    let root = std::env::temp_dir().join(format!("raft-io-async-runtime-{}-{thread}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let handles: Vec<_> =
        MemoryTransport::cluster(IDS).into_iter().zip(IDS).map(|(t, id)| start(&root, t, id, thread)).collect();
    let l = leader(&handles);
    let before = l.metrics().unwrap();
    const CLIENTS: u64 = 8;
    const EACH: u64 = 50;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let h = l.clone();
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    h.propose(Bytes::from_static(&[1])).unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let total = CLIENTS * EACH;
    for h in &handles {
        assert_eq!(read(h), total, "node {}", h.id());
    }
    let m = l.metrics().unwrap();
    let fsyncs = m.log_fsyncs.unwrap() - before.log_fsyncs.unwrap();
    let writes = m.log_syncs - before.log_syncs;
    println!("leader: {writes} writes submitted, {fsyncs} fsyncs for {total} proposals (sync thread: {thread})");
    // (A write submitted before the first snapshot may be synced after it:
    // one fsync more than the writes counted.)
    assert!(fsyncs <= writes + 1, "one fsync covers one or more writes");

    // Every node stops and starts again from its directory (writes in
    // flight at the stop are made durable by the clean close).
    for h in &handles {
        h.shutdown();
    }
    drop(handles);
    let mut ends = MemoryTransport::cluster(IDS);
    let handles: Vec<_> = IDS.iter().map(|&n| start(&root, ends.remove(0), n, thread)).collect();
    let l = leader(&handles);
    l.propose(Bytes::from_static(&[5])).unwrap();
    for h in &handles {
        assert_eq!(read(h), total + 5, "node {} after restart", h.id());
    }
    for h in &handles {
        h.shutdown();
    }
    let _ = std::fs::remove_dir_all(&root);
}
