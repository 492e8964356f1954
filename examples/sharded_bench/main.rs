//! The many-groups runtime over TCP, measured (features `net` and
//! `persistence`): the sharded key-value store of `examples/sharded_kv`
//! (its cluster, clients and state machine, shared) without the kill, run
//! at several group counts in one process run, interleaved, then idle.
//!
//! * **Active**: 3 `MultiRuntime` nodes on loopback TCP, each on its own
//!   shared WAL (real fdatasync, one disk), `GROUPS` groups with their
//!   leaders balanced over the nodes, `CLIENTS` client threads each keeping
//!   up to `IN_FLIGHT` writes in flight (`propose_to`, one `Completions`
//!   queue per client). For each
//!   group count: writes acknowledged per second, their latency (p50,
//!   p99), envelopes sent per write (every node's, summed), group steps
//!   per write, and the process's allocations and CPU time per write
//!   (every thread: drivers, transports, clients; allocations from a
//!   counting global allocator, `counting.rs`), and each run's line splits
//!   the CPU of its writing seconds by kind of thread (`threads.rs`) and
//!   the drivers' wall time per write by phase of their turns
//!   (`MultiStats::turn_times`). The counts run in turn, `REPS` times; the table gives
//!   medians, and each count's throughput against one group's.
//! * **Idle**: the same cluster with `IDLE` groups (and with fewer, for
//!   comparison), every group elected, balanced and then quiesced; what
//!   crosses each node pair per second (bytes and frames, both ways summed
//!   over the pair) and the process's CPU, while nothing is written. With
//!   quiescence only the per-peer pings remain, so the traffic should not
//!   grow with the number of groups; the same measurement without
//!   quiescence (at the smallest count) shows what it saves.
//!
//! Run: `cargo run --release --example sharded_bench --features
//! net,persistence [-- SECONDS [REPS [GROUPS,... [IDLE [CLIENTS
//! [IN_FLIGHT]]]]]]` (defaults 5 s, 3 reps, `1,100,1000`, 10 000 idle
//! groups, 64 clients, 64 in flight). Logs go under `RAFT_IO_BENCH_DIR` if
//! set, else the temp dir. CPU time comes from `/proc/self/stat` (Linux;
//! shown as `-` elsewhere). The last line has the form
//! `sharded_bench: 1/100/1000 groups 240023/189425/57222 writes/s; 10000 idle groups 1.0 KiB/s per node pair (100: 1.0 KiB/s)`.
//!
//! Under valgrind (which runs the threads one at a time, some fifty times
//! slower), set `SHARDED_TICK_MS=200`: the runtime's clock slows with the
//! work, so leaders keep their groups instead of losing them to election
//! timeouts, and the cache simulation sees the steady state
//! (docs/BENCHMARKS.md, "Where the misses are"). Not for timing.

#[allow(dead_code)]
#[path = "../sharded_kv/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "../sharded_kv/cluster.rs"]
mod cluster;
#[allow(dead_code)]
#[path = "../sharded_kv/kv.rs"]
mod kv;

mod counting;
mod threads;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cluster::{Cluster, Error, IDS};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Idle clusters with at most this many groups get balanced leaders (a
/// larger one keeps the leaders its elections gave it: moving thousands
/// would measure transfers, not rest).
const BALANCED: u64 = 1000;

struct Args {
    seconds: f64,
    reps: usize,
    counts: Vec<u64>,
    idle: u64,
    clients: usize,
    in_flight: usize,
}

const USAGE: &str =
    "usage: sharded_bench [SECONDS [REPS [GROUPS,... [IDLE [CLIENTS (1..=999) [IN_FLIGHT]]]]]], all positive";

fn parse_args() -> Result<Args, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let counts = arg(2, "1,100,1000").split(',').map(str::parse).collect::<Result<Vec<u64>, _>>()?;
    let args = Args {
        seconds: arg(0, "5").parse()?,
        reps: arg(1, "3").parse()?,
        counts,
        idle: arg(3, "10000").parse()?,
        clients: arg(4, "64").parse()?,
        in_flight: arg(5, "64").parse()?,
    };
    let positive = args.reps > 0
        && args.idle > 0
        && args.clients > 0
        && args.clients <= 999
        && args.in_flight > 0
        && !args.counts.is_empty()
        && args.counts.iter().all(|&g| g > 0)
        && args.seconds > 0.0
        && Duration::try_from_secs_f64(args.seconds).is_ok();
    if !positive {
        return Err(USAGE.into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sharded_bench: failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Error> {
    let args = parse_args()?;
    cluster::in_scratch_dir("raft-io-sharded-bench", |base| run_in(&args, base))
}

fn run_in(args: &Args, base: &Path) -> Result<(), Error> {
    println!(
        "3 nodes on loopback TCP, a shared WAL each; {} clients x {} in flight; {} s per run, {} reps, interleaved",
        args.clients, args.in_flight, args.seconds, args.reps
    );
    let mut runs: Vec<Vec<Active>> = vec![Vec::new(); args.counts.len()];
    for rep in 0..args.reps {
        for (i, &groups) in args.counts.iter().enumerate() {
            let r = active(args, &base.join(format!("active-{groups}-{rep}")), groups)?;
            println!(
                "  rep {rep}: {groups:>5} groups: {:>7.0} writes/s, p50 {:.1} ms, p99 {:.1} ms, {:.2} envelopes/write, {:.2} group steps/write, {:.2} allocations/write, {} ({}); per node {:.0} turns/s, {:.0} fsyncs/s",
                r.rate,
                r.p50,
                r.p99,
                r.envelopes_per_write,
                r.steps_per_write,
                r.allocs_per_write,
                cpu_text(r.cpu_us_per_write),
                r.by_thread.map_or_else(|| "-".to_owned(), |t| t.shares()),
                r.turns_per_second,
                r.syncs_per_second
            );
            println!("    drivers' time per write in µs, the 3 nodes summed: {}", phases_text(&r.phases_us_per_write));
            runs[i].push(r);
        }
    }
    let medians: Vec<Active> = runs.iter().map(|r| Active::median(r)).collect();
    println!();
    println!(
        "| groups | writes/s (median) | vs 1st row | p50 ms | p99 ms | envelopes per write | group steps per write | allocations per write | CPU per write |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (&groups, m) in args.counts.iter().zip(&medians) {
        println!(
            "| {groups} | {:.0} | {:.2}x | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
            m.rate,
            m.rate / medians[0].rate,
            m.p50,
            m.p99,
            m.envelopes_per_write,
            m.steps_per_write,
            m.allocs_per_write,
            cpu_text(m.cpu_us_per_write)
        );
    }

    let small = args.idle.min(100);
    let idle_runs = [(small, true), (args.idle, true), (small, false)];
    let mut idles = Vec::new();
    for (groups, quiescence) in idle_runs {
        let r = idle(args, &base.join(format!("idle-{groups}-{quiescence}")), groups, quiescence)?;
        idles.push(r);
    }
    println!();
    println!("| idle groups | quiescence | bytes/s per node pair | frames/s per node pair | CPU (share of one core) |");
    println!("|---:|---|---:|---:|---:|");
    for ((groups, quiescence), r) in idle_runs.iter().zip(&idles) {
        println!(
            "| {groups} | {} | {:.0} | {:.1} | {} |",
            if *quiescence { "on" } else { "off" },
            r.bytes_per_pair,
            r.frames_per_pair,
            r.cpu_percent.map_or_else(|| "-".to_owned(), |p| format!("{p:.2}%"))
        );
    }
    let rates: Vec<String> = medians.iter().map(|m| format!("{:.0}", m.rate)).collect();
    let counts: Vec<String> = args.counts.iter().map(u64::to_string).collect();
    println!(
        "sharded_bench: {} groups {} writes/s; {} idle groups {:.1} KiB/s per node pair ({small}: {:.1} KiB/s)",
        counts.join("/"),
        rates.join("/"),
        args.idle,
        idles[1].bytes_per_pair / 1024.0,
        idles[0].bytes_per_pair / 1024.0
    );
    Ok(())
}

/// One active run's figures.
#[derive(Clone, Copy)]
struct Active {
    rate: f64,
    p50: f64,
    p99: f64,
    envelopes_per_write: f64,
    /// Group steps (every node's, ticks and requests included) per write.
    steps_per_write: f64,
    /// Allocations (every thread's: drivers, transports, clients) per write.
    allocs_per_write: f64,
    cpu_us_per_write: Option<f64>,
    /// The CPU of the writing seconds by kind of thread.
    by_thread: Option<threads::ThreadCpu>,
    /// The drivers' wall time per write by phase of their turns, summed
    /// over the nodes (`PHASES`).
    phases_us_per_write: [f64; 7],
    /// Driver turns per second, per node (the mean of the three).
    turns_per_second: f64,
    /// Shared-WAL fsyncs per second, per node.
    syncs_per_second: f64,
}

impl Active {
    /// The median of each figure on its own.
    fn median(runs: &[Active]) -> Active {
        let med = |f: &dyn Fn(&Active) -> Option<f64>| median(runs.iter().filter_map(f).collect());
        Active {
            rate: med(&|r| Some(r.rate)).unwrap_or(0.0),
            p50: med(&|r| Some(r.p50)).unwrap_or(0.0),
            p99: med(&|r| Some(r.p99)).unwrap_or(0.0),
            envelopes_per_write: med(&|r| Some(r.envelopes_per_write)).unwrap_or(0.0),
            steps_per_write: med(&|r| Some(r.steps_per_write)).unwrap_or(0.0),
            allocs_per_write: med(&|r| Some(r.allocs_per_write)).unwrap_or(0.0),
            cpu_us_per_write: med(&|r| r.cpu_us_per_write),
            by_thread: None,
            phases_us_per_write: std::array::from_fn(|i| med(&|r| Some(r.phases_us_per_write[i])).unwrap_or(0.0)),
            turns_per_second: med(&|r| Some(r.turns_per_second)).unwrap_or(0.0),
            syncs_per_second: med(&|r| Some(r.syncs_per_second)).unwrap_or(0.0),
        }
    }
}

/// The median of `v` (`None` if empty).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn cpu_text(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_owned(), |us| format!("{us:.1} µs"))
}

/// Starts a cluster of `groups` groups, balances it, writes for
/// `args.seconds`, and stops it.
fn active(args: &Args, dir: &Path, groups: u64) -> Result<Active, Error> {
    let cluster = Arc::new(Cluster::start(dir, groups, true)?);
    cluster.balance(16)?;
    let out_before = envelopes_out(&cluster);
    let steps_before = group_steps(&cluster);
    let turns_before = turns_and_syncs(&cluster);
    let phases_before = driver_phases(&cluster);
    let cpu_before = process_cpu_seconds();
    let allocs_before = counting::count();
    let stop = Arc::new(AtomicBool::new(false));
    let by_thread_before = threads::snapshot();
    let started = Instant::now();
    let threads = clients::start(&cluster, args.clients, args.in_flight, &stop)?;
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    // Taken while the clients live (an ended thread is no longer listed).
    let by_thread = threads::snapshot().zip(by_thread_before).map(|(now, before)| now.since(&before));
    stop.store(true, Relaxed);
    let stopped_at = started.elapsed();
    let (reports, latencies) = clients::finish(threads)?;
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    let envelopes = envelopes_out(&cluster) - out_before;
    let steps = group_steps(&cluster) - steps_before;
    let turns_after = turns_and_syncs(&cluster);
    let phases_after = driver_phases(&cluster);
    let allocs = counting::count() - allocs_before;
    cluster.shutdown();
    let acked: u64 = reports.iter().map(|r| r.acked).sum();
    let nodes = IDS.len() as f64;
    if acked == 0 {
        return Err(format!("{groups} groups: no write acknowledged").into());
    }
    Ok(Active {
        rate: acked as f64 / stopped_at.as_secs_f64(),
        p50: latencies.quantile_ms(0.50),
        p99: latencies.quantile_ms(0.99),
        envelopes_per_write: envelopes as f64 / acked as f64,
        steps_per_write: steps as f64 / acked as f64,
        allocs_per_write: allocs as f64 / acked as f64,
        cpu_us_per_write: cpu.map(|s| s * 1e6 / acked as f64),
        by_thread,
        phases_us_per_write: std::array::from_fn(|i| {
            (phases_after[i] - phases_before[i]).as_secs_f64() * 1e6 / acked as f64
        }),
        turns_per_second: (turns_after.0 - turns_before.0) as f64 / nodes / stopped_at.as_secs_f64(),
        syncs_per_second: (turns_after.1 - turns_before.1) as f64 / nodes / stopped_at.as_secs_f64(),
    })
}

/// The phases of `driver_phases`, named.
const PHASES: [&str; 7] = ["receive", "ticks", "requests", "send", "flush", "of which fsync", "idle"];

/// Every live node's driver time so far by phase of its turns, and the
/// shared WAL's fsync time (part of `flush`), summed over the nodes.
fn driver_phases(cluster: &Cluster) -> [Duration; 7] {
    let mut sum = [Duration::ZERO; 7];
    for s in cluster.handles().iter().flatten().map(|h| h.stats()) {
        let t = s.turn_times;
        for (at, d) in
            [t.receive, t.ticks, t.requests, t.send, t.flush, s.wal.sync_time, t.idle].into_iter().enumerate()
        {
            sum[at] += d;
        }
    }
    sum
}

/// The drivers' time per write by phase, as `receive 2.1, ticks 0.1, ...`.
fn phases_text(us: &[f64; 7]) -> String {
    PHASES.iter().zip(us).map(|(name, us)| format!("{name} {us:.2}")).collect::<Vec<_>>().join(", ")
}

/// Driver turns and shared-WAL fsyncs of every live node so far.
fn turns_and_syncs(cluster: &Cluster) -> (u64, u64) {
    let stats: Vec<_> = cluster.handles().iter().flatten().map(|h| h.stats()).collect();
    (stats.iter().map(|s| s.turns).sum(), stats.iter().map(|s| s.wal.syncs).sum())
}

/// Envelopes every live node handed to its transport so far.
fn envelopes_out(cluster: &Cluster) -> u64 {
    cluster.handles().iter().flatten().map(|h| h.stats().envelopes_out).sum()
}

/// Group steps every live node's host made so far.
fn group_steps(cluster: &Cluster) -> u64 {
    cluster.handles().iter().flatten().map(|h| h.stats().host.steps).sum()
}

/// One idle measurement.
struct Idle {
    bytes_per_pair: f64,
    frames_per_pair: f64,
    cpu_percent: Option<f64>,
}

/// Starts `groups` groups at once, balances their leaders if there are at
/// most [`BALANCED`], waits until every group is quiesced on every node (if
/// `quiescence`), then counts what crosses the wire in `args.seconds` with
/// nothing written.
fn idle(args: &Args, dir: &Path, groups: u64, quiescence: bool) -> Result<Idle, Error> {
    let t = Instant::now();
    // All at once, as a cluster restarted with every group: the hosts pace
    // the campaigns (`HostConfig::max_campaigns`).
    let cluster = Cluster::start(dir, groups, quiescence)?;
    if groups <= BALANCED {
        cluster.balance(16)?;
    }
    if quiescence {
        let deadline = Instant::now() + Duration::from_secs(300);
        while cluster.handles().iter().flatten().any(|h| h.stats().host.quiesced < groups) {
            if Instant::now() > deadline {
                return Err(format!("{groups} groups did not all quiesce within 300 s").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Settled: the last notices and acknowledgements are out.
    std::thread::sleep(Duration::from_millis(500));
    let settled = t.elapsed();
    let (bytes, frames) = wire_totals(&cluster);
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    let (bytes_after, frames_after) = wire_totals(&cluster);
    let quiesced: u64 = cluster.handles().iter().flatten().map(|h| h.stats().host.quiesced).sum();
    let held: u64 = cluster.handles().iter().flatten().map(|h| h.stats().host.campaigns_held).sum();
    cluster.shutdown();
    // Node pairs: each unordered pair's traffic, both directions.
    let pairs = (IDS.len() * (IDS.len() - 1) / 2) as f64;
    let r = Idle {
        bytes_per_pair: (bytes_after - bytes) as f64 / pairs / wall,
        frames_per_pair: (frames_after - frames) as f64 / pairs / wall,
        cpu_percent: cpu.map(|s| s / wall * 100.0),
    };
    println!(
        "  idle: {groups:>5} groups, quiescence {}: started together, settled in {:.1} s ({held} elections held back), {quiesced} group replicas quiesced at the end; {:.0} bytes/s and {:.1} frames/s per node pair",
        if quiescence { "on" } else { "off" },
        settled.as_secs_f64(),
        r.bytes_per_pair,
        r.frames_per_pair
    );
    Ok(r)
}

/// Bytes and frames every live node has sent so far.
fn wire_totals(cluster: &Cluster) -> (u64, u64) {
    cluster.tcp_stats().iter().flatten().fold((0, 0), |(b, f), s| (b + s.bytes_sent, f + s.frames_sent))
}

/// The CPU time (user and system) of this process so far, in seconds
/// (Linux: `/proc/self/stat`).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    threads::parse(&stat).map(|(_, seconds, _)| seconds)
}
