//! Client threads: each writes its own keys, keeping up to `in_flight`
//! proposals (tickets) in flight to the groups' leaders, following
//! `NotLeader` hints and retrying every write until it is acknowledged
//! (the same value again: a put is idempotent), one write per key at a
//! time. It records each key's last acknowledged value and the latency of
//! every acknowledged write (a bounded histogram).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft_io::runtime::RuntimeError;
use raft_io::runtime::multi::{MultiHandle, Ticket};

use crate::cluster::{Cluster, Error, IDS};
use crate::kv::{self, Kv, Output};

/// Keys per client.
pub const KEYS_PER_CLIENT: usize = 256;
/// Latency buckets: 10 µs wide up to 100 ms, then 1 ms wide up to 10 s.
const FINE: usize = 10_000;
const COARSE: usize = 9_900;

/// Latencies of acknowledged writes, bounded in memory.
#[derive(Clone)]
pub struct Histogram(Vec<u64>);

impl Histogram {
    fn new() -> Self {
        Self(vec![0; FINE + COARSE + 1])
    }
    fn record(&mut self, d: Duration) {
        let us = d.as_micros() as usize;
        let i = if us < FINE * 10 { us / 10 } else { (FINE + (us / 1000 - 100)).min(FINE + COARSE) };
        self.0[i] += 1;
    }
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }
    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }
    /// The `q` quantile in milliseconds (a bucket's upper bound).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        let want = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= want {
                return if i < FINE { (i + 1) as f64 * 0.01 } else { (i - FINE + 101) as f64 };
            }
        }
        0.0
    }
}

/// One key's writes: the last acknowledged, and one whose outcome is
/// unknown when the client stopped (it may or may not have applied).
#[derive(Clone, Copy, Default)]
pub struct KeyRecord {
    pub acked: Option<u64>,
    pub unknown: Option<u64>,
}

pub struct Report {
    pub client: usize,
    pub keys: Vec<KeyRecord>,
    pub latencies: Histogram,
    pub acked: u64,
    pub retries: u64,
}

enum State {
    Sent { ticket: Ticket<Output>, node: usize },
    Retry { at: Instant, node: usize },
}

struct Write {
    slot: usize,
    seq: u64,
    group: u64,
    first_sent: Instant,
    state: State,
}

/// Starts `clients` client threads, each keeping up to `in_flight` writes
/// in flight until `stop` (then draining them for at most a minute).
pub fn start(
    cluster: &Arc<Cluster>,
    clients: usize,
    in_flight: usize,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<Report>>> {
    (0..clients)
        .map(|c| {
            let (cluster, stop) = (Arc::clone(cluster), Arc::clone(stop));
            std::thread::Builder::new()
                .name(format!("client-{c}"))
                .spawn(move || run(c, cluster, in_flight, stop, Duration::from_secs(60)))
        })
        .collect()
}

/// Waits for the client threads: their reports, and every acknowledged
/// write's latency in one histogram.
pub fn finish(threads: Vec<JoinHandle<Report>>) -> Result<(Vec<Report>, Histogram), Error> {
    let mut reports = Vec::new();
    for t in threads {
        reports.push(t.join().map_err(|_| "a client thread panicked")?);
    }
    let mut latencies = reports.first().map(|r| r.latencies.clone()).ok_or("no clients")?;
    for r in reports.iter().skip(1) {
        latencies.merge(&r.latencies);
    }
    Ok((reports, latencies))
}

/// Runs one client until `stop`, then until its writes in flight are
/// acknowledged (at most `drain` longer).
pub fn run(client: usize, cluster: Arc<Cluster>, in_flight: usize, stop: Arc<AtomicBool>, drain: Duration) -> Report {
    let keys: Vec<Vec<u8>> = (0..KEYS_PER_CLIENT).map(|s| kv::key(client, s)).collect();
    let groups: Vec<u64> = keys.iter().map(|k| kv::group_of(k, cluster.groups)).collect();
    let mut records = vec![KeyRecord::default(); KEYS_PER_CLIENT];
    let mut next_seq = vec![0u64; KEYS_PER_CLIENT];
    let mut free: VecDeque<usize> = (0..KEYS_PER_CLIENT).collect();
    let mut writes: Vec<Write> = Vec::with_capacity(in_flight);
    let mut spare: Vec<Write> = Vec::with_capacity(in_flight);
    let mut latencies = Histogram::new();
    let (mut acked, mut retries) = (0u64, 0u64);
    let mut generation = cluster.generation();
    let mut handles: Vec<Option<MultiHandle<Kv>>> = cluster.handles();
    let mut stopped_at: Option<Instant> = None;

    let submit = |handles: &[Option<MultiHandle<Kv>>], w: &Write, node: usize, keys: &[Vec<u8>]| -> State {
        let Some(h) = &handles[node] else {
            return State::Retry { at: Instant::now() + Duration::from_millis(5), node: (node + 1) % IDS.len() };
        };
        let command = kv::put(&keys[w.slot], &kv::value(w.seq));
        match h.propose_async(w.group, command) {
            Ok(ticket) => State::Sent { ticket, node },
            Err(RuntimeError::Busy) => State::Retry { at: Instant::now() + Duration::from_millis(1), node },
            // Stopped (killed): another node.
            Err(_) => State::Retry { at: Instant::now() + Duration::from_millis(5), node: (node + 1) % IDS.len() },
        }
    };

    loop {
        if stopped_at.is_none() && stop.load(Relaxed) {
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some_and(|t| t.elapsed() > drain) || (stopped_at.is_some() && writes.is_empty()) {
            break;
        }
        if cluster.generation() != generation {
            generation = cluster.generation();
            handles = cluster.handles();
        }
        // New writes, while running.
        while stopped_at.is_none() && writes.len() < in_flight {
            let Some(slot) = free.pop_front() else { break };
            next_seq[slot] += 1;
            let group = groups[slot];
            let now = Instant::now();
            let mut w =
                Write { slot, seq: next_seq[slot], group, first_sent: now, state: State::Retry { at: now, node: 0 } };
            let node = cluster.leader_hint(group);
            w.state = submit(&handles, &w, node, &keys);
            writes.push(w);
        }
        // Retries whose time came.
        let now = Instant::now();
        for w in writes.iter_mut() {
            if let State::Retry { at, node } = w.state {
                if at <= now {
                    w.state = submit(&handles, w, node, &keys);
                }
            }
        }
        // Wait a little on the oldest ticket, then take every outcome in.
        let mut first: Option<(usize, usize, Result<Output, RuntimeError>)> = None;
        if let Some(j) = writes.iter().position(|w| matches!(w.state, State::Sent { .. })) {
            let parked = State::Retry { at: now + Duration::from_secs(3600), node: 0 };
            if let State::Sent { ticket, node } = std::mem::replace(&mut writes[j].state, parked) {
                match ticket.wait_timeout(Duration::from_millis(20)) {
                    Ok(outcome) => first = Some((j, node, outcome)),
                    Err(ticket) => writes[j].state = State::Sent { ticket, node },
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The writes still in flight, gathered in the buffer kept from the
        // last pass (no allocation per wake-up).
        let mut kept = std::mem::take(&mut spare);
        for (j, mut w) in writes.drain(..).enumerate() {
            let (node, outcome) = match first.take() {
                Some((k, node, outcome)) if k == j => (node, outcome),
                other => {
                    first = other;
                    match w.state {
                        State::Sent { ticket, node } => match ticket.try_get() {
                            Ok(outcome) => (node, outcome),
                            Err(ticket) => {
                                w.state = State::Sent { ticket, node };
                                kept.push(w);
                                continue;
                            }
                        },
                        retry => {
                            w.state = retry;
                            kept.push(w);
                            continue;
                        }
                    }
                }
            };
            match outcome {
                Ok(_replaced) => {
                    latencies.record(w.first_sent.elapsed());
                    acked += 1;
                    records[w.slot].acked = Some(w.seq);
                    free.push_back(w.slot);
                }
                Err(e) => {
                    retries += 1;
                    let (delay, to) = match &e {
                        RuntimeError::NotLeader { leader: Some(l), .. }
                        | RuntimeError::LeadershipLost { leader: Some(l) } => {
                            cluster.set_leader(w.group, *l);
                            (0, cluster.leader_hint(w.group))
                        }
                        RuntimeError::NotLeader { leader: None, .. }
                        | RuntimeError::LeadershipLost { leader: None } => (5, node),
                        RuntimeError::Busy => (1, node),
                        RuntimeError::Timeout => (0, cluster.leader_hint(w.group)),
                        // Killed, shut down, or anything else: another node.
                        _ => (5, (node + 1) % IDS.len()),
                    };
                    w.state = State::Retry { at: Instant::now() + Duration::from_millis(delay), node: to };
                    kept.push(w);
                }
            }
        }
        spare = std::mem::replace(&mut writes, kept);
    }
    // Writes still unacknowledged: their outcome is unknown.
    for w in writes {
        records[w.slot].unknown = Some(w.seq);
    }
    Report { client, keys: records, latencies, acked, retries }
}
