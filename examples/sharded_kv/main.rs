//! A sharded key-value store on the many-groups runtime
//! (`raft_io::runtime::multi`, features `net` and `persistence`).
//!
//! Three `MultiRuntime` nodes in this process talk TCP on loopback, each on
//! its own `SharedWal` directory; they host `GROUPS` Raft groups (each a
//! replica on every node), each a key-value state machine; keys are hashed
//! to groups. Once every group has elected, leaderships are moved
//! (`plan_transfers`, `transfer_leadership`) so each node leads about a
//! third. `CLIENTS` client threads write their own keys, each keeping up to
//! `IN_FLIGHT` proposals in flight (`propose_to`, their outcomes gathered
//! in one `Completions` queue per client) to the groups'
//! leaders, following `NotLeader` hints and retrying every write until it
//! is acknowledged. A third of the way in, node 3 is **killed**
//! (`MultiHandle::kill`: its driver stops without a final flush, as in a
//! crash) while the clients keep writing through the other two; at two
//! thirds it restarts from its directory. After `SECONDS` the clients stop
//! (their writes in flight settle), and the last acknowledged value of
//! every key is read back through linearizable reads (ReadIndex) of every
//! group on every node, the restarted one included.
//!
//! Run: `cargo run --release --example sharded_kv --features
//! net,persistence [-- GROUPS [SECONDS [CLIENTS [IN_FLIGHT]]]]` (defaults
//! 1000 groups, 12 s, 64 clients, 64 in flight each). Logs go under
//! `RAFT_IO_BENCH_DIR` if set, else the temp dir. Exits 1 if any
//! acknowledged write is missing (or could not be read), 2 on a setup
//! failure. The last line has the form
//! `sharded_kv: 1000 groups, 312000 writes/s, p50 1.8 ms, p99 6.0 ms, all acknowledged writes present`.

mod clients;
mod cluster;
mod kv;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clients::Histogram;
use cluster::{Cluster, Error, IDS};

/// The node killed and restarted (an index in `IDS`).
const VICTIM: usize = 2;

struct Args {
    groups: u64,
    seconds: f64,
    clients: usize,
    in_flight: usize,
}

fn parse_args() -> Result<Args, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let args = Args {
        groups: arg(0, "1000").parse()?,
        seconds: arg(1, "12").parse()?,
        clients: arg(2, "64").parse()?,
        in_flight: arg(3, "64").parse()?,
    };
    if args.groups == 0
        || args.clients == 0
        || args.in_flight == 0
        || args.clients > 999
        || args.seconds <= 0.0
        || Duration::try_from_secs_f64(args.seconds).is_err()
    {
        return Err("usage: sharded_kv [GROUPS [SECONDS [CLIENTS (1..=999) [IN_FLIGHT]]]], all positive".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sharded_kv: failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, Error> {
    let args = parse_args()?;
    cluster::in_scratch_dir("raft-io-sharded-kv", |base| run_in(&args, base))
}

fn run_in(args: &Args, base: &std::path::Path) -> Result<bool, Error> {
    let t = Instant::now();
    let cluster = Arc::new(Cluster::start(base, args.groups, true)?);
    let led = cluster.balance(16)?;
    println!(
        "{} groups on 3 nodes (TCP loopback, a shared WAL each) elected and balanced in {:.1} s: nodes 1/2/3 lead {}/{}/{}",
        args.groups,
        t.elapsed().as_secs_f64(),
        led[0],
        led[1],
        led[2]
    );

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads = clients::start(&cluster, args.clients, args.in_flight, &stop)?;

    let total = Duration::from_secs_f64(args.seconds);
    std::thread::sleep(total / 3);
    cluster.kill(VICTIM);
    let killed_at = started.elapsed();
    println!("node {} killed at {:.1} s (no clean shutdown)", IDS[VICTIM], killed_at.as_secs_f64());
    std::thread::sleep((total * 2 / 3).saturating_sub(started.elapsed()));
    let t = Instant::now();
    cluster.restart(VICTIM)?;
    println!(
        "node {} restarted from its directory at {:.1} s ({:.2} s to reopen {} groups)",
        IDS[VICTIM],
        started.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64(),
        args.groups
    );
    std::thread::sleep(total.saturating_sub(started.elapsed()));
    stop.store(true, Relaxed);
    let stopped_at = started.elapsed();
    let (reports, latencies) = clients::finish(threads)?;
    let acked: u64 = reports.iter().map(|r| r.acked).sum();
    let retries: u64 = reports.iter().map(|r| r.retries).sum();
    let unknown = reports.iter().flat_map(|r| &r.keys).filter(|k| k.unknown.is_some()).count();
    let rate = acked as f64 / stopped_at.as_secs_f64();
    println!(
        "{} clients x {} in flight: {acked} writes acknowledged in {:.1} s ({retries} retries; {unknown} left with an unknown outcome)",
        args.clients,
        args.in_flight,
        stopped_at.as_secs_f64()
    );

    // The restarted node catches up: every group readable there.
    let t = Instant::now();
    cluster.wait_for_leaders(Duration::from_secs(120))?;
    let outcome = verify::check(&cluster, &reports, 16);
    let stats: Vec<String> = cluster
        .handles()
        .iter()
        .zip(cluster.tcp_stats())
        .filter_map(|(h, tcp)| Some((h.as_ref()?, tcp?)))
        .map(|(h, tcp)| {
            let s = h.stats();
            format!(
                "node {}: {} applied, {} fsyncs, {} envelopes in {} frames sent",
                h.id(),
                s.applied,
                s.wal.syncs,
                s.envelopes_out,
                tcp.frames_sent
            )
        })
        .collect();
    println!("{}", stats.join("; "));
    println!(
        "checked {} keys with {} linearizable reads (every group on every node) in {:.1} s: {} missing, {} reads failed",
        outcome.keys_checked,
        outcome.reads,
        t.elapsed().as_secs_f64(),
        outcome.missing,
        outcome.unreadable
    );
    cluster.shutdown();
    let (p50, p99) = (latencies.quantile_ms(0.50), latencies.quantile_ms(0.99));
    if outcome.missing > 0 || outcome.unreadable > 0 || acked == 0 {
        for p in &outcome.problems {
            eprintln!("  {p}");
        }
        println!(
            "sharded_kv: {} groups, {rate:.0} writes/s, p50 {p50:.1} ms, p99 {p99:.1} ms, FAILED: {} acknowledged writes missing, {} reads failed, {acked} acknowledged",
            args.groups, outcome.missing, outcome.unreadable
        );
        return Ok(false);
    }
    print_last_line(args.groups, rate, &latencies);
    Ok(true)
}

fn print_last_line(groups: u64, rate: f64, latencies: &Histogram) {
    println!(
        "sharded_kv: {groups} groups, {rate:.0} writes/s, p50 {:.1} ms, p99 {:.1} ms, all acknowledged writes present",
        latencies.quantile_ms(0.50),
        latencies.quantile_ms(0.99)
    );
}
