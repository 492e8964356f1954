//! The active measurement: three processes (threads) on one disk, each
//! hosting a replica of every group, on one shared WAL or one `WalLog` per
//! group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use raft_io::bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::log::shared::{GroupLog, SharedWal};
use raft_io::multi::{Envelope, GroupId, HostAction, HostConfig, MultiNode};
use raft_io::{Action, Event, NodeId, RaftConfig, RaftLog, WalLog};

const IDS: [NodeId; 3] = [1, 2, 3];
/// Commands a leader proposes per group per turn (the throughput runs).
const BATCH: usize = 32;
const IN_FLIGHT: u64 = 4;
const TICK: Duration = Duration::from_millis(10);

fn config(id: NodeId, g: GroupId, asynchronous: bool) -> RaftConfig {
    RaftConfig::new(id, IDS)
        .election_timeout(10, 20)
        .heartbeat_interval(3)
        .seed(g * 7 + id)
        .max_inflight(8)
        .async_storage(asynchronous)
}

/// What a process makes durable at the end of a turn.
trait Storage: Send + 'static {
    type Log: RaftLog + Send + 'static;
    /// One flush for the turn: the tokens now durable.
    fn flush(&mut self) -> Vec<(GroupId, raft_io::WriteToken)>;
    fn fsyncs(&self, host: &MultiNode<Self::Log>) -> u64;
}

struct Shared(SharedWal);

impl Storage for Shared {
    type Log = GroupLog;
    fn flush(&mut self) -> Vec<(GroupId, raft_io::WriteToken)> {
        self.0.flush().expect("flush")
    }
    fn fsyncs(&self, _host: &MultiNode<GroupLog>) -> u64 {
        self.0.stats().syncs
    }
}

struct PerGroup;

impl Storage for PerGroup {
    type Log = WalLog;
    fn flush(&mut self) -> Vec<(GroupId, raft_io::WriteToken)> {
        Vec::new()
    }
    fn fsyncs(&self, host: &MultiNode<WalLog>) -> u64 {
        host.group_ids().filter_map(|g| host.group(g)).map(|n| n.log().stats().syncs).sum()
    }
}

struct Process<S: Storage> {
    host: MultiNode<S::Log>,
    storage: S,
    /// Each turn's envelopes from one peer arrive as one batch.
    inbox: Receiver<Vec<Envelope>>,
    peers: BTreeMap<NodeId, Sender<Vec<Envelope>>>,
    applied: Arc<AtomicU64>,
    data: Bytes,
    /// The groups led here, in order (refreshed each turn).
    led: Vec<GroupId>,
    /// Commands proposed per led group per turn.
    batch: usize,
}

impl<S: Storage> Process<S> {
    /// One turn: take what arrived, propose where there is room, make the
    /// turn's writes durable, report them, send what the groups sent (one
    /// batch per peer).
    fn turn(&mut self, propose: bool, tick: bool) {
        for batch in self.inbox.try_iter() {
            for env in batch {
                self.host.receive(env);
            }
        }
        if tick {
            self.host.tick().expect("tick");
        }
        self.led.clear();
        let mut room = Vec::new();
        for (g, n) in self.host.groups() {
            if n.is_leader() {
                self.led.push(g);
                if n.last_index() - n.last_applied() < IN_FLIGHT * self.batch as u64 {
                    room.push(g);
                }
            }
        }
        if propose {
            for g in room {
                let _ = self.host.step(g, Event::ProposeBatch(vec![self.data.clone(); self.batch]));
            }
        }
        for (g, token) in self.storage.flush() {
            let _ = self.host.step(g, Event::Persisted(token));
        }
        let mut out: BTreeMap<NodeId, Vec<Envelope>> = BTreeMap::new();
        let mut applied = 0;
        for a in self.host.drain_actions() {
            match a {
                HostAction::Send(env) => out.entry(env.to).or_default().push(env),
                HostAction::Group { group, action: Action::Apply { .. } } if self.led.binary_search(&group).is_ok() => {
                    applied += 1
                }
                _ => {}
            }
        }
        for (to, batch) in out {
            if let Some(tx) = self.peers.get(&to) {
                let _ = tx.send(batch);
            }
        }
        self.applied.fetch_add(applied, Ordering::Relaxed);
    }
}

/// One channel into each process; a message is one turn's envelopes for
/// that process (from one sender).
type Batches = (Vec<Sender<Vec<Envelope>>>, Vec<Receiver<Vec<Envelope>>>);

fn channels() -> Batches {
    IDS.iter().map(|_| channel()).unzip()
}

fn base_dir() -> PathBuf {
    let base = std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("raft-io-multi-group-{}", std::process::id()))
}

/// The wake-up measurement: `groups` groups on shared WALs, quiescence on,
/// all quiesced; then, one at a time, a write to a quiesced group, timed
/// until its leader applied it (turns run back to back, no tick in
/// between). Returns the median and the largest latency, in milliseconds,
/// and the ticks that passed (none: no heartbeat is waited for).
pub fn wake_up(groups: u64, samples: usize) -> (f64, f64, u64) {
    let dir = base_dir().join("wake");
    let (senders, receivers) = channels();
    let applied = Arc::new(AtomicU64::new(0));
    let mut procs: Vec<Process<Shared>> = IDS
        .iter()
        .zip(receivers)
        .map(|(&id, inbox)| {
            let mut host = MultiNode::new(HostConfig::new(id));
            let wal = SharedWal::open(dir.join(format!("n{id}"))).expect("open shared WAL");
            for g in 1..=groups {
                let log = wal.create_group(g).expect("group");
                host.create_group(g, config(id, g, true), log).expect("create");
            }
            let peers = IDS.iter().zip(&senders).filter(|(p, _)| **p != id).map(|(p, tx)| (*p, tx.clone())).collect();
            Process {
                host,
                storage: Shared(wal),
                inbox,
                peers,
                applied: Arc::clone(&applied),
                data: Bytes::new(),
                led: Vec::new(),
                batch: BATCH,
            }
        })
        .collect();
    let quiet = |procs: &[Process<Shared>]| (1..=groups).all(|g| procs.iter().all(|p| p.host.is_quiesced(g)));
    let mut turns = 0;
    while !quiet(&procs) {
        for p in procs.iter_mut() {
            p.turn(false, true);
        }
        turns += 1;
        assert!(turns < 20_000, "the groups did not quiesce");
    }
    let ticks_before = procs[0].host.ticks();
    let mut latencies = Vec::new();
    for k in 0..samples {
        let g = 1 + (k as u64 * 7919) % groups;
        let Some(i) = procs.iter().position(|p| p.host.group(g).is_some_and(|n| n.is_leader())) else { continue };
        let target = procs[i].host.group(g).map_or(0, |n| n.last_index() + 1);
        let t = Instant::now();
        let _ = procs[i].host.step(g, Event::Propose(Bytes::from_static(b"wake")));
        while procs[i].host.group(g).is_some_and(|n| n.last_applied() < target) {
            for p in procs.iter_mut() {
                p.turn(false, false);
            }
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        // Let it quiesce again before the next sample.
        while !quiet(&procs) {
            for p in procs.iter_mut() {
                p.turn(false, true);
            }
        }
    }
    let ticks = procs[0].host.ticks() - ticks_before;
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
    // The run's base directory too, once empty (`compare` removes it).
    let _ = std::fs::remove_dir(base_dir());
    let max = latencies.iter().copied().fold(0.0, f64::max);
    (median(latencies), max, ticks)
}

/// Builds the three processes and elects a leader per group (evenly
/// spread: group g on node (g mod 3) + 1), untimed; returns them with the
/// counter of entries their leaders apply.
fn start<S: Storage>(
    groups: u64,
    make: &mut dyn FnMut(NodeId, &mut MultiNode<S::Log>) -> S,
) -> (Vec<Process<S>>, Arc<AtomicU64>) {
    let (senders, receivers) = channels();
    let applied = Arc::new(AtomicU64::new(0));
    let mut procs: Vec<Process<S>> = IDS
        .iter()
        .zip(receivers)
        .map(|(&id, inbox)| {
            let mut host = MultiNode::new(HostConfig::new(id).quiescence(false));
            let storage = make(id, &mut host);
            let peers = IDS.iter().zip(&senders).filter(|(p, _)| **p != id).map(|(p, tx)| (*p, tx.clone())).collect();
            Process {
                host,
                storage,
                inbox,
                peers,
                applied: Arc::clone(&applied),
                data: Bytes::from_static(&[0x5a; 16]),
                led: Vec::new(),
                batch: BATCH,
            }
        })
        .collect();
    for g in 1..=groups {
        let i = (g % 3) as usize;
        let _ = procs[i].host.step(g, Event::Campaign);
    }
    let settled = |procs: &[Process<S>]| {
        (1..=groups).all(|g| {
            let i = (g % 3) as usize;
            procs[i].host.group(g).is_some_and(|n| n.is_leader() && n.commit_index() == n.last_index())
        })
    };
    let mut turns = 0;
    while !settled(&procs) {
        for p in procs.iter_mut() {
            p.turn(false, turns % 20 == 19);
        }
        turns += 1;
        assert!(turns < 20_000, "the groups did not elect");
    }
    applied.store(0, Ordering::Relaxed);
    (procs, applied)
}

/// CPU per entry, free of the scheduler: the three processes on shared
/// WALs are stepped in turn by the calling thread for `turns` turns (a
/// tick every 10th), each leader proposing `batch` commands per group per
/// turn (at least 1); returns the thread's CPU time (user and system, the fdatasyncs'
/// included) per entry applied, in microseconds, and the entries. `None`
/// where the thread's CPU time cannot be read.
pub fn cpu_per_entry(groups: u64, turns: u64, batch: usize) -> Option<(f64, u64)> {
    let dir = base_dir().join("cpu");
    let (mut procs, applied) = start::<Shared>(groups, &mut |id, host| shared_groups(&dir, id, groups, host));
    for p in &mut procs {
        p.batch = batch;
    }
    let before = super::cpu_ns()?;
    for t in 0..turns {
        for p in procs.iter_mut() {
            p.turn(true, t % 10 == 9);
        }
    }
    let cpu = super::cpu_ns()? - before;
    let n = applied.load(Ordering::Relaxed);
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir(base_dir());
    Some((cpu as f64 / 1e3 / n.max(1) as f64, n))
}

/// Builds the three processes, elects a leader per group, then runs them
/// on threads for `run`: entries applied per second, and fsyncs per second
/// over the three.
fn measure<S: Storage>(
    groups: u64,
    run: Duration,
    make: &mut dyn FnMut(NodeId, &mut MultiNode<S::Log>) -> S,
) -> (f64, f64) {
    let (procs, applied) = start::<S>(groups, make);
    let fsyncs_before: u64 = procs.iter().map(|p| p.storage.fsyncs(&p.host)).sum();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(IDS.len() + 1));
    let handles: Vec<_> = procs
        .into_iter()
        .map(|mut p| {
            let (stop, start) = (Arc::clone(&stop), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut next_tick = Instant::now() + TICK;
                while !stop.load(Ordering::Relaxed) {
                    let tick = Instant::now() >= next_tick;
                    if tick {
                        next_tick += TICK;
                    }
                    p.turn(true, tick);
                }
                p.storage.fsyncs(&p.host)
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let n = applied.load(Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    let fsyncs: u64 = handles.into_iter().map(|h| h.join().expect("process")).sum();
    (n as f64 / elapsed, (fsyncs - fsyncs_before) as f64 / elapsed)
}

/// Process `id`'s groups on one shared WAL under `dir`.
fn shared_groups(dir: &Path, id: NodeId, groups: u64, host: &mut MultiNode<GroupLog>) -> Shared {
    let wal = SharedWal::open(dir.join(format!("n{id}"))).expect("open shared WAL");
    for g in 1..=groups {
        let log = wal.create_group(g).expect("group");
        host.create_group(g, config(id, g, true), log).expect("create");
    }
    Shared(wal)
}

fn shared(dir: &Path, groups: u64, run: Duration) -> (f64, f64) {
    measure::<Shared>(groups, run, &mut |id, host| shared_groups(dir, id, groups, host))
}

fn per_group(dir: &Path, groups: u64, run: Duration) -> (f64, f64) {
    measure::<PerGroup>(groups, run, &mut |id, host| {
        for g in 1..=groups {
            let options = WalOptions::new().segment_size(1 << 20);
            let log =
                WalLog::open_with(dir.join(format!("n{id}")).join(format!("g{g}")), options).expect("open WalLog");
            host.create_group(g, config(id, g, false), log).expect("create");
        }
        PerGroup
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Alternating rounds of both layouts; returns the median entries/s of the
/// shared WAL and of one WAL per group, after printing a table.
pub fn compare(groups: u64, run: Duration, rounds: usize) -> (f64, f64) {
    let base = base_dir();
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for k in 0..rounds {
        for layout in if k % 2 == 0 { [0, 1] } else { [1, 0] } {
            let dir = base.join(format!("{layout}-{k}"));
            let r = if layout == 0 { shared(&dir, groups, run) } else { per_group(&dir, groups, run) };
            let _ = std::fs::remove_dir_all(&dir);
            if layout == 0 { s.push(r) } else { p.push(r) }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    let (se, sf) = (median(s.iter().map(|r| r.0).collect()), median(s.iter().map(|r| r.1).collect()));
    let (pe, pf) = (median(p.iter().map(|r| r.0).collect()), median(p.iter().map(|r| r.1).collect()));
    println!();
    println!("| {groups} active groups, 3 processes, one disk | entries applied/s | fsyncs/s (3 processes) |");
    println!("|---|---|---|");
    println!("| one shared WAL per process (asynchronous storage) | {se:.0} | {sf:.0} |");
    println!("| one WalLog per group | {pe:.0} | {pf:.0} |");
    (se, pe)
}
