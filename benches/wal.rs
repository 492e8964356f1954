//! Durable log benchmarks (feature `persistence`).
//!
//! * `wal_append_sync/raw/{1,64}`: the ceiling. wal-db alone, a segmented log
//!   as WalLog uses, appending one record of the same size as WalLog's record
//!   for a batch of 16-byte entries, then syncing.
//! * `wal_append_sync/walog/{1,64}`: `WalLog::append` of the batch + `sync`.
//! * `wal_recovery/{batch64,batch1}`: `WalLog::open` of a log of 1 million
//!   16-byte entries written 64 per record (as a node under load writes
//!   them) or one per record (the worst case: a million records).
//!
//! * `wal_paired` (printed first, not criterion): raw and WalLog syncs in
//!   alternating rounds of 100, so both see the same disk and CPU load; the
//!   median per-round ratio is the figure `docs/BENCHMARKS.md` records.
//!
//! Temp dirs are made under `RAFT_IO_BENCH_DIR` if set, else the system temp
//! dir; it must be on the disk you mean to measure (not tmpfs).
//!
//! `cargo bench --features persistence --bench wal`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use raft_io::log::WalOptions;
use raft_io::{Entry, RaftLog, WalLog};
use wal_db::{OpenPolicy, Wal, WalConfig};

const ENTRY: usize = 16;
const SEGMENT: u64 = 16 << 20;

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new().prefix("raft-io-bench-").tempdir_in(base).unwrap()
}

/// Bytes of a WalLog step record holding `n` entries of [`ENTRY`] bytes at
/// 3-byte indexes (docs/PROTOCOL.md): version, kind, flags, from, count,
/// then per entry term, kind, length and data.
fn step_record_len(n: usize) -> usize {
    3 + 3 + if n < 128 { 1 } else { 2 } + n * (3 + ENTRY)
}

fn append_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_append_sync");
    g.measurement_time(Duration::from_secs(8));
    for batch in [1usize, 64] {
        g.throughput(Throughput::Elements(batch as u64));
        let dir = bench_dir();
        let wal = Wal::open_segmented(dir.path(), SEGMENT).unwrap();
        let record = vec![0x5a; step_record_len(batch)];
        g.bench_function(BenchmarkId::new("raw", batch), |b| {
            b.iter(|| {
                let _lsn = wal.append(&record).unwrap();
                wal.sync().unwrap();
            })
        });
        drop(wal);

        let dir = bench_dir();
        let mut log = WalLog::open(dir.path()).unwrap();
        let data = Bytes::from(vec![0x5a; ENTRY]);
        let mut buf = Vec::with_capacity(batch);
        g.bench_function(BenchmarkId::new("walog", batch), |b| {
            b.iter(|| {
                let first = log.last_index() + 1;
                buf.extend((first..first + batch as u64).map(|i| Entry::normal(1, i, data.clone())));
                log.append(&mut buf).unwrap();
                log.sync().unwrap();
            })
        });
    }
    g.finish();
}

const MILLION: u64 = 1_000_000;

/// A 1M-entry log written by WalLog, 64 entries per step.
fn build_batched() -> tempfile::TempDir {
    let dir = bench_dir();
    let mut log = WalLog::open(dir.path()).unwrap();
    let data = Bytes::from(vec![0x5a; ENTRY]);
    let mut buf = Vec::with_capacity(64);
    while log.last_index() < MILLION {
        let first = log.last_index() + 1;
        buf.extend((first..first + 64).map(|i| Entry::normal(1, i, data.clone())));
        log.append(&mut buf).unwrap();
        log.sync().unwrap();
    }
    dir
}

/// A 1M-entry log of one entry per record. A million fsyncs would take
/// minutes, so WalLog creates the log and the records are then appended
/// with wal-db directly, in the documented format, and synced once.
fn build_unbatched() -> tempfile::TempDir {
    let dir = bench_dir();
    drop(WalLog::open(dir.path()).unwrap());
    let config = WalConfig::new().with_max_record_size(64 << 20).with_open_policy(OpenPolicy::Strict);
    let wal = Wal::open_segmented_with(dir.path().join("wal"), SEGMENT, config).unwrap();
    let mut rec = Vec::new();
    for index in 1..=MILLION {
        rec.clear();
        rec.extend_from_slice(&[1, 2, 0b1000]); // version 1, step, batch only
        put_varint(&mut rec, index); // from
        rec.extend_from_slice(&[1, 1, 0, ENTRY as u8]); // 1 entry: term 1, normal, 16 bytes
        rec.extend_from_slice(&[0x5a; ENTRY]);
        let _lsn = wal.append(&rec).unwrap();
    }
    wal.sync().unwrap();
    dir
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_recovery");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(MILLION));
    for (name, build) in [("batch64", build_batched as fn() -> tempfile::TempDir), ("batch1", build_unbatched)] {
        let t = Instant::now();
        let dir = build();
        eprintln!("built the {name} log in {:?}", t.elapsed());
        let check = WalLog::open_with(dir.path(), WalOptions::new()).unwrap();
        assert_eq!(check.last_index(), MILLION);
        drop(check);
        g.bench_function(name, |b| {
            b.iter_with_large_drop(|| {
                let log = WalLog::open(dir.path()).unwrap();
                assert_eq!(log.last_index(), MILLION);
                log
            })
        });
    }
    g.finish();
}

/// Per-sync seconds of `rounds` rounds of `per_round` syncs each, raw and
/// WalLog alternating, so both see the same disk and CPU weather.
fn paired_rounds(batch: usize, rounds: usize, per_round: usize) -> (Vec<f64>, Vec<f64>) {
    let raw_dir = bench_dir();
    let wal = Wal::open_segmented(raw_dir.path(), SEGMENT).unwrap();
    let record = vec![0x5a; step_record_len(batch)];
    let log_dir = bench_dir();
    let mut log = WalLog::open(log_dir.path()).unwrap();
    let data = Bytes::from(vec![0x5a; ENTRY]);
    let mut buf = Vec::with_capacity(batch);
    let raw_round = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            let _lsn = wal.append(&record).unwrap();
            wal.sync().unwrap();
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    let mut log_round = |n: usize| {
        let t = Instant::now();
        for _ in 0..n {
            let first = log.last_index() + 1;
            buf.extend((first..first + batch as u64).map(|i| Entry::normal(1, i, data.clone())));
            log.append(&mut buf).unwrap();
            log.sync().unwrap();
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    raw_round(per_round);
    log_round(per_round);
    let (mut raw, mut walog) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        if r % 2 == 0 {
            raw.push(raw_round(per_round));
            walog.push(log_round(per_round));
        } else {
            walog.push(log_round(per_round));
            raw.push(raw_round(per_round));
        }
    }
    (raw, walog)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The comparison the acceptance bar is about: WalLog against the raw
/// wal-db append+sync ceiling at the same batch, measured interleaved in
/// the same run. Printed as a Markdown table.
fn paired() {
    let rounds = std::env::var("RAFT_IO_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    println!(
        "| batch × 16 B | raw wal-db µs/sync | raw entries/s | WalLog µs/sync | WalLog entries/s | WalLog / raw (median of paired rounds) |"
    );
    println!("|---|---|---|---|---|---|");
    for batch in [1usize, 64] {
        let (raw, walog) = paired_rounds(batch, rounds, 100);
        let ratios: Vec<f64> = raw.iter().zip(&walog).map(|(r, w)| r / w).collect();
        let (r, w) = (median(raw), median(walog));
        println!(
            "| {batch} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}% |",
            r * 1e6,
            batch as f64 / r,
            w * 1e6,
            batch as f64 / w,
            median(ratios) * 100.0
        );
    }
}

criterion_group!(benches, append_sync, recovery);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    if args.iter().any(|a| a == "--bench") && filter.is_none_or(|f| "wal_paired".contains(f.as_str())) {
        paired();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
