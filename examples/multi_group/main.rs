//! Many groups per process (`raft_io::multi`, docs/PROTOCOL.md §10): what
//! idle groups cost with and without quiescence, and what active groups
//! commit on one shared WAL against one `WalLog` per group.
//!
//! Three hosts (nodes 1, 2, 3) in one process, each a replica of every
//! group, on `MemoryLog`s, envelopes delivered in memory. Leaders are
//! elected and every group commits its no-op; then the groups sit idle.
//!
//! * **CPU**: the hosts run `TICKS` ticks back to back (with every envelope
//!   delivered), and the CPU time per tick is expressed as a share of one
//!   core at a 10 ms tick (the threaded runtime's default): the CPU an idle
//!   process of 3 nodes would use.
//! * **Memory**: bytes allocated (a counting allocator) by creating the
//!   groups and running them to idle, per group replica, less the log data
//!   (entries and their commands).
//!
//! * **Wake-up**: with every group quiesced on shared WALs, a write to one
//!   group, timed until its leader applied it.
//! * **Active**: three processes (a thread each; each turn's envelopes for
//!   a peer go over a channel as one batch), `ACTIVE` groups led evenly by
//!   the three, 16-byte commands proposed in
//!   batches of 32 per group per turn (at most 4 batches in flight per
//!   group); each process either keeps all its groups on one `SharedWal`
//!   (asynchronous storage: one flush, one fdatasync, per turn for every
//!   group) or gives each group its own `WalLog` (one fdatasync per group
//!   step). Entries applied on the leaders per second, the two layouts
//!   alternating, medians.
//! * **CPU per entry**: the shared-WAL processes stepped in turn by one
//!   thread for `CPU_TURNS` turns, `CPU_BATCH` commands per group per turn;
//!   that thread's CPU time (fdatasyncs included) per entry applied. Unlike
//!   the throughput, it hardly depends on what else the machine runs, so it
//!   compares builds. At `CPU_BATCH` 1 it is the cost of a group's whole
//!   round (proposal, appends, answers, durability, apply) for one entry:
//!   what a loaded many-groups runtime pays when each group gets about one
//!   write per turn.
//!
//! Run: `cargo run --release --example multi_group --features persistence
//! [-- IDLE [ACTIVE [SECONDS [ROUNDS [CPU_TURNS [CPU_BATCH]]]]]]` (defaults
//! 10 000 idle groups, 1 000 active, 3 s, 3 rounds, 100 turns, 32). Logs go under
//! `RAFT_IO_BENCH_DIR` if set, else the temp dir. The last line has the form
//! `multi-group: 10000 idle groups 0.4% cpu 2.1 KiB/replica; 1000 active groups 1.35M entries/s shared WAL, 12.7x one WAL per group`.

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::collections::VecDeque;
use std::time::Instant;

use counting_alloc::{CountingAllocator, live_bytes};
use raft_io::multi::{Envelope, GroupId, HostAction, HostConfig, MultiNode};
use raft_io::{MemoryLog, NodeId, RaftConfig};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const IDS: [NodeId; 3] = [1, 2, 3];
const TICK_MS: f64 = 10.0;
const TICKS: u64 = 300;

struct Hosts {
    hosts: Vec<MultiNode<MemoryLog>>,
    queue: VecDeque<Envelope>,
    envelopes: u64,
}

impl Hosts {
    fn new(groups: u64, quiescence: bool) -> Self {
        let hosts = IDS
            .iter()
            .map(|&id| {
                let mut host = MultiNode::new(
                    HostConfig::new(id).ping_interval(3).peer_timeout(10).quiesce_after(6).quiescence(quiescence),
                );
                for g in 1..=groups {
                    let config = RaftConfig::new(id, IDS).election_timeout(10, 20).heartbeat_interval(3).seed(g);
                    host.create_group(g, config, MemoryLog::new()).expect("group");
                }
                host
            })
            .collect();
        Self { hosts, queue: VecDeque::new(), envelopes: 0 }
    }

    fn collect(&mut self, i: usize) {
        for a in self.hosts[i].drain_actions() {
            if let HostAction::Send(e) = a {
                self.queue.push_back(e);
            }
        }
    }

    fn tick(&mut self) {
        for i in 0..self.hosts.len() {
            self.hosts[i].tick().expect("tick");
            self.collect(i);
        }
        while let Some(e) = self.queue.pop_front() {
            self.envelopes += 1;
            let i = (e.to - 1) as usize;
            self.hosts[i].receive(e);
            self.collect(i);
        }
    }

    fn settled(&self, groups: u64, quiescence: bool) -> bool {
        (1..=groups).all(|g: GroupId| {
            let led = self.hosts.iter().any(|h| h.group(g).is_some_and(|n| n.is_leader() && n.commit_index() >= 1));
            led && (!quiescence || self.hosts.iter().all(|h| h.is_quiesced(g)))
        })
    }

    fn log_bytes(&self) -> i64 {
        let per_entry = std::mem::size_of::<raft_io::Entry>() as i64;
        self.hosts
            .iter()
            .flat_map(|h| h.group_ids().map(move |g| h.group(g).map_or(0, |n| n.last_index() as i64 * per_entry)))
            .sum()
    }
}

/// The calling thread's CPU time, in nanoseconds (Linux; `None`
/// elsewhere).
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Idle {
    cpu_percent: f64,
    bytes_per_replica: f64,
    envelopes_per_tick: f64,
}

fn idle(groups: u64, quiescence: bool) -> Idle {
    let before = live_bytes();
    let mut hosts = Hosts::new(groups, quiescence);
    let mut n = 0;
    while !hosts.settled(groups, quiescence) {
        hosts.tick();
        n += 1;
        assert!(n < 2_000, "the groups did not settle");
    }
    let bytes = (live_bytes() - before - hosts.log_bytes()) as f64;
    let (envelopes, wall, cpu) = (hosts.envelopes, Instant::now(), cpu_ns());
    for _ in 0..TICKS {
        hosts.tick();
    }
    let per_tick_ns = match (cpu, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / TICKS as f64,
        _ => wall.elapsed().as_nanos() as f64 / TICKS as f64,
    };
    Idle {
        cpu_percent: per_tick_ns / (TICK_MS * 1e6) * 100.0,
        bytes_per_replica: bytes / (groups as f64 * IDS.len() as f64),
        envelopes_per_tick: (hosts.envelopes - envelopes) as f64 / TICKS as f64,
    }
}

mod active;

fn main() {
    let arg = |n: usize| std::env::args().nth(n).and_then(|s| s.parse::<f64>().ok());
    let groups = arg(1).map_or(10_000, |v| v as u64);
    let active_groups = arg(2).map_or(1_000, |v| v as u64);
    let seconds = arg(3).unwrap_or(3.0);
    let Ok(seconds) = std::time::Duration::try_from_secs_f64(seconds) else {
        eprintln!("multi_group: SECONDS must be a non-negative number of seconds, not {seconds}");
        std::process::exit(2);
    };
    let rounds = arg(4).map_or(3, |v| v as usize).max(1);
    println!("{groups} groups × 3 replicas in one process, MemoryLog; CPU at a {TICK_MS} ms tick\n");
    let quiet = idle(groups, true);
    let busy = idle(groups, false);
    println!(
        "| idle groups | CPU (3 nodes, share of one core) | bytes per group replica (beyond log data) | envelopes per tick (3 nodes) |"
    );
    println!("|---|---|---|---|");
    for (name, r) in [("quiesced", &quiet), ("not quiesced", &busy)] {
        println!(
            "| {groups} {name} | {:.3}% | {:.0} | {:.1} |",
            r.cpu_percent, r.bytes_per_replica, r.envelopes_per_tick
        );
    }
    let (shared, per_group) = active::compare(active_groups, seconds, rounds);
    let cpu_turns = arg(5).map_or(100, |v| v as u64);
    let cpu_batch = arg(6).map_or(32, |v| (v as usize).max(1));
    if let Some((us, entries)) = active::cpu_per_entry(active_groups, cpu_turns, cpu_batch).filter(|_| cpu_turns > 0) {
        println!();
        println!(
            "cpu: {us:.2} µs per entry applied, shared WAL ({active_groups} groups, {cpu_batch} per group per turn; one thread steps the three processes for {cpu_turns} turns, {entries} entries)"
        );
    }
    let (p50, max, _) = active::wake_up(active_groups, 20);
    println!();
    println!(
        "wake-up: a write to a quiesced group (shared WAL, real fdatasync) is applied by its leader in {p50:.2} ms (median of 20; max {max:.2} ms), without waiting for a tick: heartbeat interval {} ms",
        3.0 * TICK_MS
    );
    println!();
    println!(
        "multi-group: {groups} idle groups {:.2}% cpu {:.1} KiB/replica; {active_groups} active groups {:.2}M entries/s shared WAL, {:.1}x one WAL per group",
        quiet.cpu_percent,
        quiet.bytes_per_replica / 1024.0,
        shared / 1e6,
        shared / per_group.max(f64::MIN_POSITIVE)
    );
}
