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
//! * `wal_cluster` (printed next, not criterion): a 3-node cluster on
//!   WalLogs in one process (`benches/support/cluster.rs`), committing
//!   batches of 1 and 64 entries, in rounds alternating with raw wal-db
//!   rounds at the same record size: one writer (the single-writer
//!   ceiling) and three writers at once on their own WALs (what the disk
//!   gives three nodes that each fsync every batch). Once single-threaded
//!   (3 fsyncs in a row per batch), then with a thread per node and
//!   `RAFT_IO_BENCH_WINDOW` batches in flight (default 8): once stepping
//!   each message alone, once stepping the messages waiting in a node's
//!   inbox as one `Event::Messages` (group commit on the followers).
//!
//! * `wal_async` (printed next, not criterion): the asynchronous storage
//!   mode against the synchronous one, batch 64, thread per node, one batch
//!   per step, alternating with the three-writer ceiling; fsyncs per batch.
//!
//! Temp dirs are made under `RAFT_IO_BENCH_DIR` if set, else the system temp
//! dir; it must be on the disk you mean to measure (not tmpfs).
//!
//! `cargo bench --features persistence --bench wal` (everything), or
//! `-- wal_paired` / `-- wal_cluster` for one table (`RAFT_IO_BENCH_ROUNDS`
//! sets the rounds, default 30).

#[path = "support/bench_env.rs"]
mod bench_env;
#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use bench_env::{base_dir, median};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use raft_io::log::WalOptions;
use raft_io::{Entry, RaftLog, WalLog};
use wal_db::{OpenPolicy, Wal, WalConfig};

const ENTRY: usize = 16;
const SEGMENT: u64 = 16 << 20;

fn bench_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("raft-io-bench-").tempdir_in(base_dir()).unwrap()
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

/// Runs `rounds` rounds of each measurement in turn, rotating which goes
/// first (after one warm-up round each), so all see the same disk and CPU
/// weather; each returns its round's seconds per operation.
fn alternate(rounds: usize, fs: &mut [&mut dyn FnMut() -> f64]) -> Vec<Vec<f64>> {
    for f in fs.iter_mut() {
        f();
    }
    let mut out = vec![Vec::new(); fs.len()];
    for r in 0..rounds {
        for k in 0..fs.len() {
            let i = (k + r) % fs.len();
            out[i].push((fs[i])());
        }
    }
    out
}

/// A raw wal-db round: `n` appends of a WalLog step record for `batch`
/// entries, each synced; returns seconds per sync.
fn raw_round(wal: &Wal<wal_db::SegmentedStore>, record: &[u8], n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let _lsn = wal.append(record).unwrap();
        wal.sync().unwrap();
    }
    t.elapsed().as_secs_f64() / n as f64
}

/// Per-sync seconds of `rounds` rounds of `per_round` syncs each, raw and
/// WalLog alternating.
fn paired_rounds(batch: usize, rounds: usize, per_round: usize) -> (Vec<f64>, Vec<f64>) {
    let raw_dir = bench_dir();
    let wal = Wal::open_segmented(raw_dir.path(), SEGMENT).unwrap();
    let record = vec![0x5a; step_record_len(batch)];
    let log_dir = bench_dir();
    let mut log = WalLog::open(log_dir.path()).unwrap();
    let data = Bytes::from(vec![0x5a; ENTRY]);
    let mut buf = Vec::with_capacity(batch);
    let mut log_round = || {
        let t = Instant::now();
        for _ in 0..per_round {
            let first = log.last_index() + 1;
            buf.extend((first..first + batch as u64).map(|i| Entry::normal(1, i, data.clone())));
            log.append(&mut buf).unwrap();
            log.sync().unwrap();
        }
        t.elapsed().as_secs_f64() / per_round as f64
    };
    let mut raw = || raw_round(&wal, &record, per_round);
    let mut v = alternate(rounds, &mut [&mut raw, &mut log_round]);
    let walog = v.pop().unwrap_or_default();
    (v.pop().unwrap_or_default(), walog)
}

/// Three writers at once, each appending and syncing `n` records to its
/// own WAL on the same disk (what a 3-node cluster in one process asks of
/// it); returns seconds per round of three syncs.
fn raw3_round(wals: &[Wal<wal_db::SegmentedStore>], record: &[u8], n: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for wal in wals {
            s.spawn(move || {
                for _ in 0..n {
                    let _lsn = wal.append(record).unwrap();
                    wal.sync().unwrap();
                }
            });
        }
    });
    t.elapsed().as_secs_f64() / n as f64
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

/// The cluster figures: entries committed per second by a 3-node cluster
/// on WalLogs against the raw single-writer ceiling at the same record
/// size, measured in alternating rounds. Printed as Markdown tables.
fn cluster_paired() {
    let rounds = std::env::var("RAFT_IO_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let window: usize = std::env::var("RAFT_IO_BENCH_WINDOW").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    const PER_ROUND: usize = 50;
    println!();
    println!(
        "| batch × 16 B | driver | cluster µs/batch | cluster entries/s | WAL syncs/batch | raw µs/sync | raw entries/s \
         | cluster / raw | cluster / (raw ÷ 3) | 3 raw writers at once, µs/round | cluster / 3 raw writers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for batch in [1usize, 64] {
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| bench_dir()).collect();
        let wals: Vec<Wal<wal_db::SegmentedStore>> =
            dirs.iter().map(|d| Wal::open_segmented(d.path(), SEGMENT).unwrap()).collect();
        let record = vec![0x5a; step_record_len(batch)];
        let row = |driver: &str, v: Vec<Vec<f64>>, syncs: f64| {
            let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
            let (raw_vs, raw3_vs) = (ratio(&v[0], &v[2]), ratio(&v[1], &v[2]));
            let (r, r3, c) = (median(v[0].clone()), median(v[1].clone()), median(v[2].clone()));
            println!(
                "| {batch} | {driver} | {:.0} | {:.0} | {syncs:.2} | {:.0} | {:.0} | {:.0}% | {:.0}% | {:.0} | {:.0}% |",
                c * 1e6,
                batch as f64 / c,
                r * 1e6,
                batch as f64 / r,
                raw_vs * 100.0,
                raw_vs * 300.0,
                r3 * 1e6,
                raw3_vs * 100.0
            );
        };
        let mut raw = || raw_round(&wals[0], &record, PER_ROUND);
        let mut raw3 = || raw3_round(&wals[1..], &record, PER_ROUND);

        let mut seq = cluster::Sequential::new(&base_dir(), ENTRY);
        let (syncs, committed) = (seq.syncs(), seq.committed());
        let v = alternate(rounds, &mut [&mut raw, &mut raw3, &mut || seq.round(batch, PER_ROUND)]);
        let batches = (seq.committed() - committed) as f64 / batch as f64;
        row("1 thread, 1 batch in flight", v, (seq.syncs() - syncs) as f64 / batches);

        for group in [cluster::Group::Nothing, cluster::Group::Messages, cluster::Group::MessagesAndProposals] {
            let seq = cluster::Sequential::new(&base_dir(), ENTRY);
            let syncs = seq.syncs();
            let mut threaded = seq.into_threaded(window, group);
            let mut proposed = 0usize;
            let mut cluster = || {
                proposed += PER_ROUND;
                threaded.round(batch, PER_ROUND)
            };
            let v = alternate(rounds, &mut [&mut raw, &mut raw3, &mut cluster]);
            let syncs = (threaded.stop() - syncs) as f64 / proposed as f64;
            let steps = match group {
                cluster::Group::Nothing => "one event per step",
                cluster::Group::Messages => "queued messages as one step",
                cluster::Group::MessagesAndProposals => "queued messages, and queued proposals, as one step",
            };
            row(&format!("thread per node, {window} batches in flight, {steps}"), v, syncs);
        }
    }
}

/// The asynchronous storage mode against the synchronous one, batch 64,
/// a thread per node, one batch per step (no proposal grouping), queued
/// messages as one step, alternating with the three-writer ceiling (three
/// raw wal-db writers at once, one sync per record). In the synchronous
/// mode every node fsyncs every batch, so the ceiling bounds it; in the
/// asynchronous mode one fsync covers the writes of every step made while
/// the previous one ran.
fn async_paired() {
    let rounds = std::env::var("RAFT_IO_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let window: usize = std::env::var("RAFT_IO_BENCH_WINDOW").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    const PER_ROUND: usize = 50;
    const BATCH: usize = 64;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| bench_dir()).collect();
    let wals: Vec<Wal<wal_db::SegmentedStore>> =
        dirs.iter().map(|d| Wal::open_segmented(d.path(), SEGMENT).unwrap()).collect();
    let record = vec![0x5a; step_record_len(BATCH)];
    let mut raw3 = || raw3_round(&wals, &record, PER_ROUND);
    let group = cluster::Group::Messages;
    let sync = cluster::Sequential::new(&base_dir(), ENTRY);
    let sync_syncs = sync.syncs();
    let mut sync = sync.into_threaded(window, group);
    let asy = cluster::Sequential::new_async(&base_dir(), ENTRY);
    let async_syncs = asy.syncs();
    let mut asy = asy.into_threaded_async(window, group);
    let (mut sync_batches, mut async_batches) = (0usize, 0usize);
    let mut run_sync = || {
        sync_batches += PER_ROUND;
        sync.round(BATCH, PER_ROUND)
    };
    let mut run_async = || {
        async_batches += PER_ROUND;
        asy.round(BATCH, PER_ROUND)
    };
    let v = alternate(rounds, &mut [&mut raw3, &mut run_sync, &mut run_async]);
    let sync_fsyncs = (sync.stop() - sync_syncs) as f64 / sync_batches as f64;
    let async_fsyncs = (asy.stop() - async_syncs) as f64 / async_batches as f64;
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| y / x).collect());
    let per_s = |v: &[f64]| BATCH as f64 / median(v.to_vec());
    println!();
    println!(
        "| 3 nodes, batch 64 × 16 B, thread per node, {window} batches in flight | entries/s | fsyncs per batch (3 nodes) | vs three-writer ceiling |"
    );
    println!("|---|---|---|---|");
    println!(
        "| three raw writers at once (ceiling: every node fsyncs every batch) | {:.0} | 3.00 | 100% |",
        per_s(&v[0])
    );
    println!("| synchronous storage | {:.0} | {sync_fsyncs:.2} | {:.0}% |", per_s(&v[1]), ratio(&v[1], &v[0]) * 100.0);
    println!(
        "| asynchronous storage | {:.0} | {async_fsyncs:.2} | {:.0}% |",
        per_s(&v[2]),
        ratio(&v[2], &v[0]) * 100.0
    );
    println!("async/sync (median of per-round ratios): {:.2}x", ratio(&v[2], &v[1]));
}

criterion_group!(benches, append_sync, recovery);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let bench = args.iter().any(|a| a == "--bench");
    if bench && filter.is_none_or(|f| "wal_paired".contains(f.as_str())) {
        paired();
    }
    if bench && filter.is_none_or(|f| "wal_cluster".contains(f.as_str())) {
        cluster_paired();
    }
    if bench && filter.is_none_or(|f| "wal_async".contains(f.as_str())) {
        async_paired();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
