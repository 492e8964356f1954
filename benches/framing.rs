//! Encode and decode cost of the wire format for the messages a cluster
//! sends most: a heartbeat, a vote request, and AppendEntries of 64 entries
//! of 16 B and of 1 KiB. Both sides include the frame's CRC-32C: computed
//! and patched in by `encode_into`/`encode`, checked by `decode`.
//!
//! `cargo bench --features framing --bench framing`
//!
//! Figures and allocation counts are recorded in `docs/BENCHMARKS.md`.

#[path = "../tests/support/wire_samples.rs"]
mod wire_samples;

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raft_io::Message;
use raft_io::framing::{self, DecodeLimits};

fn cases() -> Vec<(&'static str, Message)> {
    vec![
        ("heartbeat", wire_samples::heartbeat()),
        ("vote", wire_samples::vote()),
        ("append_64x16B", wire_samples::append_of(64, 16)),
        ("append_64x1KiB", wire_samples::append_of(64, 1024)),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing/encode_into");
    for (name, message) in cases() {
        group.throughput(Throughput::Bytes(framing::encoded_len(&message) as u64));
        let mut buf = BytesMut::with_capacity(framing::encoded_len(&message));
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                framing::encode_into(black_box(&message), &mut buf);
                black_box(buf.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("framing/encode");
    for (name, message) in cases() {
        group.throughput(Throughput::Bytes(framing::encoded_len(&message) as u64));
        group.bench_function(name, |b| b.iter(|| framing::encode(black_box(&message))));
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let mut group = c.benchmark_group("framing/decode");
    for (name, message) in cases() {
        let frame = framing::encode(&message);
        eprintln!("{name}: frame of {} bytes", frame.len());
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(name, |b| b.iter(|| framing::decode(black_box(&frame), &limits)));
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
