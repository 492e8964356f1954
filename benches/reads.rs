//! Reads per second on a 3-node in-memory cluster (simulator, checks off):
//! ReadIndex (batched: reads arriving while a round is in flight share the
//! next one), lease reads (no round trip), and reads through the log (a
//! command proposed and applied per read), 64 reads at a time.
//!
//! Run: `cargo bench --features sim --bench reads`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raft_io::ReadKind;
use raft_io::sim::{Cluster, KvStore, SimConfig};

const BATCH: u64 = 64;

fn cluster() -> (Cluster<KvStore>, u64) {
    let config = SimConfig::new(3)
        .seed(1)
        .checks(false)
        .trace(0)
        .configure(|c| c.lease_reads(true).max_inflight(256).snapshot_entries(100_000));
    let mut c = Cluster::with_state_machines(config, |_| KvStore::default());
    let leader = c.elect(1_000).expect("leader");
    c.submit(leader, KvStore::put("k", b"v")).expect("accepted");
    c.run_ticks(3);
    (c, leader)
}

/// Issues `BATCH` reads of `kind` on the leader and runs until all are
/// released; returns the time for `iters` batches.
fn read_batches(iters: u64, kind: ReadKind) -> Duration {
    let (mut c, leader) = cluster();
    let mut next = 0u64;
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        // Keep the lease fresh outside the timed region.
        c.run_ticks(1);
        let done = c.read_outcomes().len() + BATCH as usize;
        let start = Instant::now();
        for _ in 0..BATCH {
            next += 1;
            c.read_query(leader, next, kind, Bytes::from_static(b"k")).expect("accepted");
        }
        while c.read_outcomes().len() < done {
            c.step();
        }
        elapsed += start.elapsed();
    }
    black_box(c.read_outcomes().len());
    elapsed
}

/// Proposes `BATCH` read commands through the log and runs until the leader
/// applied them all.
fn log_batches(iters: u64) -> Duration {
    let (mut c, leader) = cluster();
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        c.run_ticks(1);
        let target = c.node(leader).expect("up").last_index() + BATCH;
        let start = Instant::now();
        let commands = (0..BATCH).map(|_| Bytes::from_static(b"get k")).collect();
        c.propose_batch(leader, commands).expect("accepted");
        while c.node(leader).expect("up").last_applied() < target {
            c.step();
        }
        elapsed += start.elapsed();
    }
    elapsed
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("reads_3_nodes");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("read_index_x64", |b| b.iter_custom(|iters| read_batches(iters, ReadKind::Index)));
    g.bench_function("lease_x64", |b| b.iter_custom(|iters| read_batches(iters, ReadKind::Lease)));
    g.bench_function("through_log_x64", |b| b.iter_custom(log_batches));
    g.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
