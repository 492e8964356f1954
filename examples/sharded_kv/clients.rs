//! Client threads: each writes its own keys, keeping up to `in_flight`
//! proposals in flight to the groups' leaders (their outcomes gathered in
//! one `Completions` queue per client), following
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
use raft_io::runtime::multi::{Completion, Completions, MultiHandle};

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

/// Where a write is: submitted (its outcome will come through the
/// client's [`Completions`]), or to be submitted again at `at`.
enum State {
    Sent,
    Retry { at: Instant },
}

struct Write {
    slot: usize,
    seq: u64,
    group: u64,
    first_sent: Instant,
    /// The node it was last sent to, or is to be sent to next.
    node: usize,
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
/// acknowledged (at most `drain` longer). Its writes sit in `in_flight`
/// places; each is submitted with its place as the tag, and every outcome
/// comes through one [`Completions`] queue, so one wait takes in whatever
/// ended meanwhile.
pub fn run(client: usize, cluster: Arc<Cluster>, in_flight: usize, stop: Arc<AtomicBool>, drain: Duration) -> Report {
    let keys: Vec<Vec<u8>> = (0..KEYS_PER_CLIENT).map(|s| kv::key(client, s)).collect();
    let groups: Vec<u64> = keys.iter().map(|k| kv::group_of(k, cluster.groups)).collect();
    let mut records = vec![KeyRecord::default(); KEYS_PER_CLIENT];
    let mut next_seq = vec![0u64; KEYS_PER_CLIENT];
    let mut free: VecDeque<usize> = (0..KEYS_PER_CLIENT).collect();
    let mut places: Vec<Option<Write>> = (0..in_flight).map(|_| None).collect();
    let mut open_places: Vec<usize> = (0..in_flight).rev().collect();
    let (mut sent, mut retrying) = (0usize, 0usize);
    let done: Completions<Output> = Completions::new();
    let mut outcomes: Vec<Completion<Output>> = Vec::with_capacity(in_flight);
    let mut latencies = Histogram::new();
    let (mut acked, mut retries) = (0u64, 0u64);
    let mut generation = cluster.generation();
    let mut handles: Vec<Option<MultiHandle<Kv>>> = cluster.handles();
    let mut stopped_at: Option<Instant> = None;

    // Submits the write in place `tag` to its node; on a refusal, it is
    // retried later (on another node if this one is gone).
    let submit = |handles: &[Option<MultiHandle<Kv>>], w: &mut Write, tag: usize, keys: &[Vec<u8>]| {
        let outcome = match &handles[w.node] {
            Some(h) => h.propose_to(w.group, kv::put(&keys[w.slot], &kv::value(w.seq)), &done, tag as u64),
            None => Err(RuntimeError::ShuttingDown),
        };
        w.state = match outcome {
            Ok(()) => State::Sent,
            Err(RuntimeError::Busy) => State::Retry { at: Instant::now() + Duration::from_millis(1) },
            // Stopped (killed): another node.
            Err(_) => {
                w.node = (w.node + 1) % IDS.len();
                State::Retry { at: Instant::now() + Duration::from_millis(5) }
            }
        };
    };
    let counts = |w: &Write| match w.state {
        State::Sent => (1, 0),
        State::Retry { .. } => (0, 1),
    };

    loop {
        if stopped_at.is_none() && stop.load(Relaxed) {
            stopped_at = Some(Instant::now());
        }
        let idle = sent + retrying == 0;
        if stopped_at.is_some_and(|t| t.elapsed() > drain) || (stopped_at.is_some() && idle) {
            break;
        }
        if cluster.generation() != generation {
            generation = cluster.generation();
            handles = cluster.handles();
        }
        // New writes, while running.
        let now = Instant::now();
        while stopped_at.is_none() && !open_places.is_empty() {
            let Some(slot) = free.pop_front() else { break };
            let Some(tag) = open_places.pop() else { break };
            next_seq[slot] += 1;
            let group = groups[slot];
            let node = cluster.leader_hint(group);
            let mut w = Write { slot, seq: next_seq[slot], group, first_sent: now, node, state: State::Sent };
            submit(&handles, &mut w, tag, &keys);
            let (s, r) = counts(&w);
            (sent, retrying) = (sent + s, retrying + r);
            places[tag] = Some(w);
        }
        // Retries whose time came.
        if retrying > 0 {
            for (tag, place) in places.iter_mut().enumerate() {
                let Some(w) = place else { continue };
                if matches!(w.state, State::Retry { at } if at <= now) {
                    submit(&handles, w, tag, &keys);
                    if matches!(w.state, State::Sent) {
                        (sent, retrying) = (sent + 1, retrying - 1);
                    }
                }
            }
        }
        // Every outcome that came, waiting a little for the first.
        if sent > 0 {
            done.wait_timeout(Duration::from_millis(20), &mut outcomes);
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        for (tag, outcome) in outcomes.drain(..) {
            let tag = tag as usize;
            // Only a write sent has an outcome coming (exactly one).
            let Some(w) = places.get_mut(tag).and_then(Option::as_mut) else { continue };
            if !matches!(w.state, State::Sent) {
                continue;
            }
            sent -= 1;
            match outcome {
                Ok(_replaced) => {
                    latencies.record(w.first_sent.elapsed());
                    acked += 1;
                    records[w.slot].acked = Some(w.seq);
                    free.push_back(w.slot);
                    places[tag] = None;
                    open_places.push(tag);
                }
                Err(e) => {
                    retries += 1;
                    retrying += 1;
                    let delay = match &e {
                        RuntimeError::NotLeader { leader: Some(l), .. }
                        | RuntimeError::LeadershipLost { leader: Some(l) } => {
                            cluster.set_leader(w.group, *l);
                            w.node = cluster.leader_hint(w.group);
                            0
                        }
                        RuntimeError::NotLeader { leader: None, .. }
                        | RuntimeError::LeadershipLost { leader: None } => 5,
                        RuntimeError::Busy => 1,
                        RuntimeError::Timeout => {
                            w.node = cluster.leader_hint(w.group);
                            0
                        }
                        // Killed, shut down, or anything else: another node.
                        _ => {
                            w.node = (w.node + 1) % IDS.len();
                            5
                        }
                    };
                    w.state = State::Retry { at: Instant::now() + Duration::from_millis(delay) };
                }
            }
        }
    }
    // Writes still unacknowledged: their outcome is unknown.
    for w in places.into_iter().flatten() {
        records[w.slot].unknown = Some(w.seq);
    }
    Report { client, keys: records, latencies, acked, retries }
}
