//! The simulator as a product bites on what a user's configuration turns
//! on: a user's state machine run through `Simulation` under
//! `FaultProfile::Fragile`.
//!
//! * Lease reads on (the skewed-clock and cut-off-follower scenes), the
//!   checked clients issuing lease reads: with the `LongLease` mutant (a
//!   lease that outlives the election timeout) a stale read must be caught
//!   as a history the user's model cannot explain.
//! * The asynchronous storage mode on (the power-cut scene): with the
//!   `HoldNothing` mutant (acknowledgements sent before the writes they
//!   promise are durable) the loss of an acknowledged write must be caught.
//! * The Raft paper's Figure 8 (five nodes): the scene's burst on the old
//!   leader is the checked clients' writes, so with the
//!   `CommitPreviousTerm` mutant (an earlier term's entry committed by
//!   counting replicas) the writes acknowledged and then lost must be
//!   caught.
//!
//! With no mutant the very same runs pass.
//!
//! Built only with the mutants compiled in:
//!
//! ```sh
//! RUSTFLAGS="--cfg raft_io_mutants" CARGO_TARGET_DIR=target/mutants \
//!     cargo test --release --features sim,persistence --test sim_product_mutants -- --nocapture
//! ```
//!
//! `RAFT_IO_SEEDS=N`: seeds to search (default 32).
#![cfg(all(raft_io_mutants, feature = "sim"))]

use raft_io::StateMachine;
use raft_io::bytes::Bytes;
use raft_io::mutants::{self, Mutant};
use raft_io::sim::linearizability::Model;
use std::sync::Mutex;

use raft_io::sim::{FaultProfile, Rng, Scenario, SimConfig, SimError, Simulation, Violation, Workload};

/// The mutant switch is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A register: each write stores a number; a read returns the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Register(u64);

impl StateMachine for Register {
    type Output = ();

    fn apply(&mut self, _index: u64, command: &Bytes) {
        if let Ok(v) = <[u8; 8]>::try_from(command.as_ref()) {
            self.0 = u64::from_le_bytes(v);
        }
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }

    fn restore(&mut self, data: &Bytes) {
        self.0 = <[u8; 8]>::try_from(data.as_ref()).map_or(0, u64::from_le_bytes);
    }

    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        Some(self.snapshot())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write(u64),
    Read,
}

/// Clients writing fresh numbers and reading them back, and the model.
struct Clients {
    next: u64,
}

impl Model for Clients {
    type State = u64;
    type Op = Op;
    type Output = Option<u64>;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, state: &u64, op: &Op) -> (u64, Option<u64>) {
        match *op {
            Op::Write(v) => (v, None),
            Op::Read => (*state, Some(*state)),
        }
    }
}

impl Workload for Clients {
    type Machine = Register;

    fn write(&mut self, _rng: &mut Rng) -> Op {
        self.next += 1;
        Op::Write(self.next)
    }

    fn read(&mut self, _rng: &mut Rng) -> Option<Op> {
        Some(Op::Read)
    }

    fn encode(&self, op: &Op) -> Bytes {
        match *op {
            Op::Write(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            Op::Read => Bytes::new(),
        }
    }

    fn write_output(&self, _op: &Op, _output: &()) -> Option<u64> {
        None
    }

    fn read_output(&self, _op: &Op, answer: Option<&Bytes>) -> Option<u64> {
        answer.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map(u64::from_le_bytes)
    }
}

fn simulation(configure: impl Fn(SimConfig) -> SimConfig + 'static) -> Simulation<Clients> {
    Simulation::new(|_| Register::default(), |_| Clients { next: 0 })
        .configure(configure)
        .clients(8, 10)
        .expect("clients")
}

fn seeds() -> u64 {
    std::env::var("RAFT_IO_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(32)
}

/// The first seed whose run fails, with its failure.
fn first_failure(sim: &Simulation<Clients>, seeds: u64) -> Option<(Scenario, raft_io::sim::Failure)> {
    (0..seeds).find_map(|seed| {
        let scenario = Scenario::new(FaultProfile::Fragile, 5, 250, seed).expect("scenario");
        match sim.run(&scenario) {
            Ok(_) => None,
            Err(SimError::Failed(f)) => Some((scenario, *f)),
            Err(e) => panic!("{scenario}: {e}"),
        }
    })
}

/// Runs `sim` over the seeds with no mutant (every run must pass), then
/// with `mutant` (some run must fail): returns that failure.
fn caught(sim: &Simulation<Clients>, mutant: Mutant) -> raft_io::sim::Failure {
    let seeds = seeds();
    mutants::set(None);
    if let Some((scenario, failure)) = first_failure(sim, seeds) {
        panic!("correct code failed {scenario}: {}", failure.violation);
    }
    mutants::set(Some(mutant));
    let caught = first_failure(sim, seeds);
    mutants::set(None);
    let Some((scenario, failure)) = caught else {
        panic!("{mutant:?} not caught in {seeds} seeds");
    };
    println!("{mutant:?} caught in {scenario}: {}", failure.violation);
    failure
}

#[test]
fn checked_clients_catch_a_lease_that_outlives_the_election_timeout() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sim = simulation(|c| c.configure(|r| r.lease_reads(true).lease_drift_ticks(3)));
    let failure = caught(&sim, Mutant::LongLease);
    assert_eq!(failure.violation.property, Violation::LINEARIZABILITY, "{}", failure.violation);
}

#[test]
fn the_figure_8_burst_is_the_clients_writes_and_catches_committing_an_earlier_term_by_counting() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The user's configuration keeps appends small, so a catch-up takes
    // several: the window the bug needs.
    let sim = simulation(|c| c.configure(|r| r.max_entries_per_message(4)));
    let failure = caught(&sim, Mutant::CommitPreviousTerm);
    println!("caught by {}", failure.violation.property);
}

#[test]
fn the_asynchronous_mode_catches_acknowledgements_sent_before_the_write() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let failure = caught(&simulation(|c| c.async_storage(true)), Mutant::HoldNothing);
    println!("caught by {}", failure.violation.property);
}
