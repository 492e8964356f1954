//! The random simulator bites: with each deliberate bug of
//! `raft_io::mutants` switched on in turn, seeded `FaultProfile::Fragile`
//! runs with key-value clients must end in a violation — a safety checker's
//! panic or a history that is not linearizable — within the default seed
//! count; with none switched on, the very same runs must pass.
//!
//! Built only with the mutants compiled in (`docs/TESTING.md`, "Mutation
//! results: the random simulator"):
//!
//! ```sh
//! RUSTFLAGS="--cfg raft_io_mutants" CARGO_TARGET_DIR=target/mutants \
//!     cargo test --release --features sim,persistence --test sim_mutants -- --nocapture
//! ```
//!
//! * `RAFT_IO_SEEDS=N`: seeds per campaign (default 8).
//! * `RAFT_IO_MUTANT_SWEEP=1`: run every seed of every campaign for every
//!   mutant (not only up to the first catch), and print how many runs catch
//!   each one.
//! * `RAFT_IO_MUTANT=<name|None> RAFT_IO_SEED=S RAFT_IO_CAMPAIGN=<n>`
//!   replays one run (test `replay`), with the simulator's full report.
#![cfg(all(raft_io_mutants, feature = "sim", feature = "persistence"))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Instant;

use raft_io::mutants::{self, Mutant};
use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, KvWorkload, SimConfig, SimStats, TraceEvent};

/// The mutant switch is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const ROUNDS: usize = 250;
const LIVENESS_TICKS: u64 = 1_500;

/// A cluster shape the fragile schedule runs on.
#[derive(Clone, Copy, Debug)]
struct Campaign {
    name: &'static str,
    nodes: usize,
    lease: bool,
    durable: bool,
    /// The asynchronous storage mode (PROTOCOL.md §5.1).
    asynchronous: bool,
}

const CAMPAIGNS: [Campaign; 6] = [
    Campaign { name: "5 nodes, lease reads", nodes: 5, lease: true, durable: false, asynchronous: false },
    Campaign { name: "5 nodes, no lease", nodes: 5, lease: false, durable: false, asynchronous: false },
    Campaign { name: "4 nodes, no lease", nodes: 4, lease: false, durable: false, asynchronous: false },
    Campaign { name: "3 nodes, durable, lease reads", nodes: 3, lease: true, durable: true, asynchronous: false },
    Campaign { name: "5 nodes, async storage, lease reads", nodes: 5, lease: true, durable: false, asynchronous: true },
    Campaign { name: "3 nodes, durable, async storage", nodes: 3, lease: false, durable: true, asynchronous: true },
];

/// How a run ended.
#[derive(Clone, Debug)]
enum Outcome {
    /// With what the run went through.
    Passed(SimStats),
    Caught {
        /// The property (checker) that failed.
        by: String,
        round: usize,
        /// The last fragile moment that began before the violation was seen.
        moment: Option<String>,
        /// The first line of the report.
        detail: String,
        /// The whole report (with the simulator's recent trace).
        report: String,
    },
}

fn config(c: Campaign, seed: u64) -> SimConfig {
    let lease = c.lease;
    let snapshot_every = if c.durable { 20 } else { 40 };
    SimConfig::new(c.nodes).seed(seed).tick_skew(0.1).durable(c.durable).async_storage(c.asynchronous).configure(
        move |r| {
            // Small appends: catching a follower up takes several (Figure 8).
            let r = r.read_timeout_ticks(30).snapshot_entries(snapshot_every).max_entries_per_message(4);
            if lease { r.lease_reads(true).lease_drift_ticks(3) } else { r }
        },
    )
}

/// One run: the fragile schedule with clients, then healing and a final
/// linearizability check. Safety checkers panic; the panic is caught here.
fn run(c: Campaign, seed: u64) -> Outcome {
    let mut cluster = Cluster::with_state_machines(config(c, seed), |_| KvStore::default());
    let mut chaos = Chaos::new(FaultProfile::Fragile, seed).with_filler();
    let mut clients = KvWorkload::new(seed, 3, c.lease).clients(8).patience(10);
    let mut moments: Vec<(u64, String)> = Vec::new();
    let mut round = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        while round < ROUNDS {
            chaos.run_with(&mut cluster, 1, |cl| {
                note_moments(cl, &mut moments);
                clients.round(cl);
            });
            round += 1;
            // The history so far, after every round: a stale read is seen
            // in the round (the moment) that served it.
            clients.history(&cluster).check().map_err(|e| ("Linearizability".to_owned(), e.to_string()))?;
        }
        if !chaos.heal_and_check_liveness(&mut cluster, LIVENESS_TICKS) {
            return Err(("Liveness".to_owned(), format!("no commit within {LIVENESS_TICKS} ticks of healing")));
        }
        cluster.run_ticks(40);
        clients.history(&cluster).check().map_err(|e| ("Linearizability".to_owned(), e.to_string()))
    }));
    let (by, report) = match result {
        Ok(Ok(())) => return Outcome::Passed(cluster.stats()),
        Ok(Err(caught)) => caught,
        Err(panic) => from_panic(&*panic),
    };
    note_moments(&cluster, &mut moments);
    let moment = moments.last().map(|(_, m)| m.clone());
    let detail = report.lines().next().unwrap_or("").to_owned();
    Outcome::Caught { by, round, moment, detail, report }
}

/// Records the fragile moments the trace shows that began since the last
/// call (called on every tick of a scene, so none scrolls away unseen).
fn note_moments(cluster: &Cluster<KvStore>, moments: &mut Vec<(u64, String)>) {
    let last = moments.last().map_or(0, |(at, _)| *at);
    for event in cluster.trace().events() {
        if let TraceEvent::Note { at, what } = event {
            if let Some(name) = what.strip_prefix("fragile moment: ") {
                if *at > last || moments.is_empty() {
                    moments.push((*at, name.to_owned()));
                }
            }
        }
    }
}

/// The checker named by a simulator panic, and its text.
fn from_panic(panic: &(dyn std::any::Any + Send)) -> (String, String) {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    let by = text
        .strip_prefix("raft-io simulator: ")
        .and_then(|rest| rest.split_once(" violated:"))
        .map_or_else(|| "simulator panic".to_owned(), |(property, _)| property.to_owned());
    (by, text)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn seeds() -> u64 {
    env("RAFT_IO_SEEDS").and_then(|s| s.parse().ok()).unwrap_or(8)
}

/// Runs `f` with the default panic output silenced (caught violations are
/// the expected outcome here; their first line is reported instead).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    out.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn replay_hint(m: Option<Mutant>, seed: u64, c: usize) -> String {
    let name = m.map_or("None".to_owned(), |m| format!("{m:?}"));
    format!(
        "RAFT_IO_MUTANT={name} RAFT_IO_SEED={seed} RAFT_IO_CAMPAIGN={c} RUSTFLAGS=\"--cfg raft_io_mutants\" \
         CARGO_TARGET_DIR=target/mutants cargo test --release --features sim,persistence --test sim_mutants replay"
    )
}

#[test]
fn every_mutant_is_caught_and_correct_code_passes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seeds = seeds();
    let sweep = env("RAFT_IO_MUTANT_SWEEP").is_some();
    let started = Instant::now();

    // No false positives: correct code passes every run the mutants face.
    mutants::set(None);
    let (clean, damaged, refused) = quietly(|| {
        let (mut failures, mut damaged, mut refused) = (Vec::new(), 0, 0);
        for seed in 0..seeds {
            for (k, &c) in CAMPAIGNS.iter().enumerate() {
                match run(c, seed) {
                    Outcome::Passed(stats) => {
                        damaged += stats.damaged_snapshots;
                        refused += stats.refused_restarts;
                    }
                    Outcome::Caught { by, round, detail, .. } => {
                        let replay = replay_hint(None, seed, k);
                        failures.push(format!("{by} at round {round}: {detail}\n  replay: {replay}"));
                    }
                }
            }
        }
        (failures, damaged, refused)
    });
    let clean_time = started.elapsed();
    assert!(clean.is_empty(), "correct code failed:\n{}", clean.join("\n"));
    println!(
        "no mutant: {} runs ({} campaigns x {seeds} seeds, {ROUNDS} rounds each) pass, {:.1?}; \
         {damaged} snapshot files damaged, {refused} restarts refused",
        CAMPAIGNS.len() as u64 * seeds,
        CAMPAIGNS.len(),
        clean_time
    );
    assert!(refused > 0 && refused == damaged, "every damaged snapshot file is refused by correct code");

    let (mut missed, mut misnamed) = (Vec::new(), Vec::new());
    for m in Mutant::ALL {
        mutants::set(Some(m));
        let t = Instant::now();
        let (first, catches, runs) = quietly(|| {
            let (mut first, mut catches, mut runs) = (None, [0; CAMPAIGNS.len()], 0);
            'search: for seed in 0..seeds {
                for (k, &c) in CAMPAIGNS.iter().enumerate() {
                    runs += 1;
                    if let caught @ Outcome::Caught { .. } = run(c, seed) {
                        catches[k] += 1;
                        first.get_or_insert((seed, k, caught));
                        if !sweep {
                            break 'search;
                        }
                    }
                }
            }
            (first, catches, runs)
        });
        mutants::set(None);
        match first {
            Some((seed, k, Outcome::Caught { by, round, moment, detail, .. })) => {
                let moment = moment.unwrap_or_else(|| "-".to_owned());
                let total: usize = catches.iter().sum();
                // A mutant that breaks a rule one checker states is caught
                // by that checker, in the step that breaks it: the
                // configuration rules, and the inductive form of Leader
                // Completeness (a node that could be elected lacks an entry
                // just committed by counting replicas).
                let expected = match m {
                    Mutant::EarlyMembershipChange => Some("Configuration rules violated"),
                    Mutant::CommitPreviousTerm | Mutant::JointIgnoresOutgoing => Some("could be elected"),
                    Mutant::ApplyRangeShort | Mutant::UntrackedConfigEntry => Some("it skipped"),
                    _ => None,
                };
                if expected.is_some_and(|e| !detail.contains(e)) {
                    misnamed.push((m, detail.clone()));
                }
                println!(
                    "{m:?}: caught by {by} ({}, seed {seed} of {seeds}, round {round}, last moment {moment}) \
                     [{total}/{runs} runs, by campaign {catches:?}, {:.1?}]\n    {detail}\n    replay: {}",
                    CAMPAIGNS[k].name,
                    t.elapsed(),
                    replay_hint(Some(m), seed, k)
                );
            }
            _ => {
                println!("{m:?}: NOT CAUGHT in {runs} runs");
                missed.push(m);
            }
        }
    }
    println!("total {:.1?}", started.elapsed());
    assert!(missed.is_empty(), "mutants the simulator missed within {seeds} seeds: {missed:?}");
    assert!(misnamed.is_empty(), "caught by another checker than the rule they break: {misnamed:?}");
}

/// Replays one run named by `RAFT_IO_MUTANT`, `RAFT_IO_SEED` and
/// `RAFT_IO_CAMPAIGN` (an index into the campaigns), with the simulator's
/// full report on a violation.
#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED").and_then(|s| s.parse().ok()) else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = env("RAFT_IO_MUTANT").unwrap_or_else(|| "None".to_owned());
    let mutant = Mutant::ALL.into_iter().find(|m| format!("{m:?}").eq_ignore_ascii_case(&name));
    let k: usize = env("RAFT_IO_CAMPAIGN").and_then(|s| s.parse().ok()).unwrap_or(0);
    let c = CAMPAIGNS[k.min(CAMPAIGNS.len() - 1)];
    mutants::set(mutant);
    let outcome = run(c, seed);
    mutants::set(None);
    if let Outcome::Caught { by, round, moment, report, .. } = outcome {
        panic!("{name}, {}, seed {seed}: {by} at round {round} (last moment {moment:?})\n{report}", c.name);
    }
}
