//! The CRC-32C every frame, WAL record and snapshot file carries, as
//! `raft-io` computes it (`crc-fast`, what `src/crc.rs` calls) against the
//! `crc32c` crate it replaced, over a small frame, a 1 KiB command and a
//! 64-entry AppendEntries of 1 KiB entries (66 936 bytes).
//!
//! `cargo bench --features framing --bench checksum`
//!
//! Figures are recorded in `docs/BENCHMARKS.md` ("Checksums").

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn checksum(c: &mut Criterion) {
    for len in [64usize, 1024, 66_936] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &data) as u32, crc32c::crc32c(&data));
        let mut group = c.benchmark_group(format!("crc32c/{len}B"));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("crc-fast", |b| {
            b.iter(|| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, black_box(&data)))
        });
        group.bench_function("crc32c crate", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
        group.finish();
    }
}

criterion_group!(benches, checksum);
criterion_main!(benches);
