//! `MultiCluster` bites: with deliberate bugs of `raft_io::mutants`
//! switched on in turn, seeded many-groups runs under each `FaultProfile`
//! must end in a violation (a safety checker's, liveness after healing, or
//! a group history that is not linearizable). Prints, per mutant, how many
//! runs of each profile caught it, and asserts the catches recorded in
//! `docs/TESTING.md` ("Mutation results: many groups per node").
//!
//! ```sh
//! RUSTFLAGS="--cfg raft_io_mutants" CARGO_TARGET_DIR=target/mutants \
//!     cargo test --release --features sim,persistence --test sim_multi_mutants -- --nocapture
//! ```
//!
//! * `RAFT_IO_SEEDS=N`: seeds per profile and shape (default 4).
//! * `RAFT_IO_MUTANT=<name> RAFT_IO_PROFILE=P RAFT_IO_SEED=S RAFT_IO_NODES=N
//!   RAFT_IO_ASYNC=0|1` replays one run (test `replay`).
#![cfg(all(raft_io_mutants, feature = "sim", feature = "persistence"))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Instant;

use raft_io::mutants::{self, Mutant};
use raft_io::sim::{FaultProfile, MultiCluster, MultiSimConfig};

/// The mutant switch is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const ROUNDS: usize = 150;
const GROUPS: u64 = 8;
const SHAPES: [(usize, bool); 4] = [(3, false), (3, true), (5, false), (5, true)];

/// The profiles the schedule had before every profile got its many-groups
/// meaning (partitions, loss, crashes, power cuts, idle stretches).
const OLD: [FaultProfile; 4] =
    [FaultProfile::Calm, FaultProfile::Lossy, FaultProfile::Partitions, FaultProfile::Crashes];

/// Mutants the new profiles must catch.
const MUST_CATCH: [Mutant; 8] = [
    Mutant::EarlyMembershipChange,
    Mutant::ForgetVoteOnRestart,
    Mutant::ReadIndexWithoutQuorum,
    Mutant::LongLease,
    Mutant::HoldNothing,
    Mutant::CountUndurableSelf,
    Mutant::ApplyRangeShort,
    Mutant::UntrackedConfigEntry,
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn env_u64(name: &str) -> Option<u64> {
    env(name).and_then(|s| s.parse().ok())
}

/// One run; `Some(first line of the violation)` if it was caught.
fn run(profile: FaultProfile, nodes: usize, asynchronous: bool, seed: u64) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let cfg = MultiSimConfig::new(nodes, GROUPS).seed(seed).async_storage(asynchronous).profile(profile);
        let mut c = MultiCluster::new(cfg);
        c.chaos(ROUNDS).map_err(|v| v.to_string())?;
        match c.heal_and_check_liveness(2_000) {
            Ok(true) => {}
            Ok(false) => return Err("Liveness: not every group committed after healing".to_owned()),
            Err(v) => return Err(v.to_string()),
        }
        c.check_histories().map(|_| ()).map_err(|v| v.to_string())
    }));
    match result {
        Ok(Ok(())) => None,
        Ok(Err(v)) => Some(v),
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned()),
        ),
    }
    .map(|s| s.lines().next().unwrap_or("").to_owned())
}

fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    out.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[test]
fn many_groups_profiles_catch_mutants() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seeds = env_u64("RAFT_IO_SEEDS").unwrap_or(4);
    let started = Instant::now();
    let (mut missed, mut misnamed) = (Vec::new(), Vec::new());
    for m in Mutant::ALL {
        mutants::set(Some(m));
        let (caught, first) = quietly(|| {
            let mut caught = Vec::new();
            let mut first = None;
            for profile in FaultProfile::ALL {
                let mut n = 0;
                for &(nodes, asynchronous) in &SHAPES {
                    for seed in 0..seeds {
                        if let Some(v) = run(profile, nodes, asynchronous, seed) {
                            n += 1;
                            first.get_or_insert(format!(
                                "{v}\n    replay: RAFT_IO_MUTANT={m:?} RAFT_IO_PROFILE={profile:?} RAFT_IO_SEED={seed} \
                                 RAFT_IO_NODES={nodes} RAFT_IO_ASYNC={}",
                                u8::from(asynchronous)
                            ));
                        }
                    }
                }
                caught.push((profile, n));
            }
            (caught, first)
        });
        mutants::set(None);
        let runs = SHAPES.len() as u64 * seeds;
        let by: Vec<String> = caught.iter().map(|(p, n)| format!("{p:?} {n}/{runs}")).collect();
        let old: usize = caught.iter().filter(|(p, _)| OLD.contains(p)).map(|(_, n)| n).sum();
        let new: usize = caught.iter().filter(|(p, _)| !OLD.contains(p)).map(|(_, n)| n).sum();
        println!("{m:?}: old profiles {old}, new profiles {new} [{}]", by.join(", "));
        if let Some(first) = first {
            println!("    first: {first}");
            // Caught by the checker of the rule it breaks, in the step
            // that breaks it: the configuration rules, and the inductive
            // form of Leader Completeness (a node that could be elected
            // lacks an entry counted committed before it was durable).
            let expected = match m {
                Mutant::EarlyMembershipChange => Some("Configuration rules violated"),
                Mutant::CountUndurableSelf => Some("could be elected"),
                Mutant::ApplyRangeShort | Mutant::UntrackedConfigEntry => Some("it skipped"),
                // A deposed leader's read (the stale-lease scene of
                // `Fragile`), after the new leader's write completed.
                Mutant::ReadIndexWithoutQuorum | Mutant::LongLease => Some("Linearizability violated"),
                _ => None,
            };
            if expected.is_some_and(|e| !first.contains(e)) {
                misnamed.push(m);
            }
        }
        if MUST_CATCH.contains(&m) && new == 0 {
            missed.push(m);
        }
    }
    println!("total {:.1?}", started.elapsed());
    assert!(missed.is_empty(), "mutants the many-groups profiles missed within {seeds} seeds: {missed:?}");
    assert!(misnamed.is_empty(), "caught first by another checker than the rule they break: {misnamed:?}");
}

/// Replays one run named by `RAFT_IO_MUTANT`, `RAFT_IO_PROFILE`,
/// `RAFT_IO_SEED`, `RAFT_IO_NODES` and `RAFT_IO_ASYNC`.
#[test]
fn replay() {
    let Some(seed) = env_u64("RAFT_IO_SEED") else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = env("RAFT_IO_MUTANT").unwrap_or_default();
    let mutant = Mutant::ALL.into_iter().find(|m| format!("{m:?}").eq_ignore_ascii_case(&name));
    let pname = env("RAFT_IO_PROFILE").unwrap_or_else(|| "Everything".to_owned());
    let profile = FaultProfile::ALL.into_iter().find(|p| format!("{p:?}").eq_ignore_ascii_case(&pname));
    let profile = profile.unwrap_or(FaultProfile::Everything);
    mutants::set(mutant);
    let outcome =
        run(profile, env_u64("RAFT_IO_NODES").unwrap_or(3) as usize, env_u64("RAFT_IO_ASYNC") == Some(1), seed);
    mutants::set(None);
    if let Some(v) = outcome {
        panic!("{name}, {profile:?}, seed {seed}: {v}");
    }
}
