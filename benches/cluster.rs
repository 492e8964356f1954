//! Whole-cluster throughput through the simulator, in memory and without
//! faults: a 3-node `raft_io::sim::Cluster` (checks and trace off), entries
//! committed and applied on every node per second, at batch 1 and 64 with
//! 16 B and 1 KiB commands.
//!
//! `cargo bench --features sim --bench cluster`
//!
//! The cluster is built and its leader elected outside the timed region;
//! each iteration then runs the pipelined driver of `common/mod.rs` until
//! [`ENTRIES_PER_ITER`] more entries are applied on all three nodes, on the
//! same cluster (the pipeline stays full from one iteration to the next, and
//! snapshots every 100 000 applied entries keep the logs bounded). The timed
//! region includes everything a single-threaded driver does: building the
//! proposal, every node's steps, delivering messages through the simulated
//! network, applying, and snapshots. Commands share one buffer (cloning
//! them never allocates; see `alloc_per_entry.rs` for fresh buffers).
//!
//! Figures are recorded in `docs/BENCHMARKS.md`.

mod common;

use std::time::{Duration, Instant};

use common::{Pipeline, proposal, shared_command};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Entries applied on every node per timed iteration.
const ENTRIES_PER_ITER: u64 = 4_096;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster3");
    group.throughput(Throughput::Elements(ENTRIES_PER_ITER));
    for batch in [1usize, 64] {
        for size in [16usize, 1024] {
            let name = if size == 1024 { "1KiB" } else { "16B" };
            // Built once: criterion calls the closure once per sample, and
            // every sample continues on the same cluster.
            let mut pipeline = Pipeline::new(batch);
            let command = shared_command(size);
            group.bench_function(BenchmarkId::new(format!("batch{batch}"), name), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        pipeline.run(ENTRIES_PER_ITER, || proposal(batch, &command));
                        elapsed += start.elapsed();
                    }
                    elapsed
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
