//! The public simulator (`raft_io::sim`) against what its users hand it and
//! what it must not hide (each found by review, red before its fix): writes
//! to a paused node that never happened taken for writes of unknown outcome
//! (which let a planted bug pass), a partition that left unlisted nodes
//! together, user code panicking while a failure is reported, a NaN tick
//! skew, huge tick counts, a replay line that is not UTF-8, and a node
//! configuration the user's `configure` makes invalid.
#![cfg(feature = "sim")]

use bytes::Bytes;
use raft_io::StateMachine;
use raft_io::sim::linearizability::Model;
use raft_io::sim::{
    Cluster, FaultProfile, PauseInbox, Rng, Scenario, ScenarioError, SimConfig, SimError, Simulation, Violation,
    Workload,
};

// ---------------------------------------------------------------------------
// A counter with a planted, deterministic bug: the increment that takes it
// from JUMP_AT to JUMP_AT + 1 adds 2 instead. Every node runs the same bug
// (so State Machine Safety stays quiet): only the client history shows it.
// ---------------------------------------------------------------------------

const JUMP_AT: u64 = 6;

#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
        self.0 += if self.0 == JUMP_AT { 2 } else { 1 };
        self.0
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map_or(0, u64::from_le_bytes);
    }
    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        Some(self.snapshot())
    }
}

#[derive(Clone, Debug)]
enum CounterOp {
    Inc,
    Read,
}

/// The counter's clients, for any state machine that counts (`M`).
struct CounterClients<M = Counter>(std::marker::PhantomData<M>);

impl<M> CounterClients<M> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<M> Model for CounterClients<M> {
    type State = u64;
    type Op = CounterOp;
    type Output = u64;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, s: &u64, op: &CounterOp) -> (u64, u64) {
        match op {
            CounterOp::Inc => (s + 1, s + 1),
            CounterOp::Read => (*s, *s),
        }
    }
}

impl<M: StateMachine<Output = u64> + 'static> Workload for CounterClients<M> {
    type Machine = M;
    fn write(&mut self, _rng: &mut Rng) -> CounterOp {
        CounterOp::Inc
    }
    fn read(&mut self, _rng: &mut Rng) -> Option<CounterOp> {
        Some(CounterOp::Read)
    }
    fn encode(&self, _op: &CounterOp) -> Bytes {
        Bytes::from_static(b"+")
    }
    fn write_output(&self, _op: &CounterOp, out: &u64) -> u64 {
        *out
    }
    fn read_output(&self, _op: &CounterOp, answer: Option<&Bytes>) -> u64 {
        answer.and_then(|b| b.as_ref().try_into().ok()).map_or(u64::MAX, u64::from_le_bytes)
    }
}

fn counter_sim() -> Simulation<CounterClients> {
    Simulation::new(|_| Counter::default(), |_| CounterClients::new())
}

/// A write a client sends to a paused leader is dropped by the simulator
/// (pause.rs: "writes ... addressed to a paused node are lost"), but
/// `Cluster::submit` reports it as `Error::Halted` — "the node died inside
/// the step: the write may still take effect" — and the simulated clients
/// (checked.rs) record it in the history as a write of unknown outcome. Such
/// a phantom write never happened, yet the linearizability checker may place
/// it anywhere: it explains away a real bug. Here a counter that skips a
/// value (caught under `Calm` on every seed) passes `Pauses` runs.
#[test]
fn a_bug_hidden_by_phantom_writes_to_a_paused_leader() {
    let sim = counter_sim();
    // Control: without pauses, the bug is caught on every seed.
    for seed in 0..4 {
        let err = sim.run(&Scenario::new(FaultProfile::Calm, 3, 60, seed).unwrap()).unwrap_err();
        assert_eq!(err.failure().unwrap().violation.property, Violation::LINEARIZABILITY, "calm seed {seed}");
    }
    let mut passed = Vec::new();
    for seed in 0..SEEDS {
        let scenario = Scenario::new(FaultProfile::Pauses, 3, 60, seed).unwrap();
        if let Ok(report) = sim.run(&scenario) {
            passed.push((seed, report.operations));
        }
    }
    assert!(
        passed.is_empty(),
        "a counter that skips a value passed the linearizability check under pauses (seed, operations): {passed:?}"
    );
}

const SEEDS: u64 = 12;

/// The direct cause: nothing is appended on a paused leader, yet `submit`
/// says the node died inside the step (an outcome the clients must treat as
/// "may still take effect").
#[test]
fn submit_to_a_paused_leader_is_not_reported_as_a_crash_inside_the_step() {
    let mut c = Cluster::new(SimConfig::new(3).seed(5));
    let leader = c.elect(1_000).expect("a leader");
    c.run_ticks(5);
    let last = c.node(leader).unwrap().last_index();
    c.pause(leader, 20, PauseInbox::Kept);
    let result = c.submit(leader, Bytes::from_static(b"x"));
    assert_eq!(c.node(leader).unwrap().last_index(), last, "nothing was appended");
    assert!(c.is_up(leader), "the node did not die");
    assert!(
        !matches!(result, Err(raft_io::Error::Halted)),
        "a dropped write is reported as Halted (\"may still take effect\"): {result:?}"
    );
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// `Cluster::partition` documents "nodes not listed are isolated", but
/// `Network::partition` puts every unlisted node in one shared group
/// (`None == None`): the unlisted nodes still talk to each other, and here
/// elect a leader among themselves.
#[test]
fn nodes_not_listed_in_a_partition_are_isolated() {
    let mut c = Cluster::new(SimConfig::new(5).seed(3));
    c.partition(&[&[1, 2]]);
    c.run_ticks(400);
    assert_eq!(
        c.leader(),
        None,
        "nodes 3, 4 and 5 were not listed, so each is isolated: no group holds a majority of 5"
    );
}

// ---------------------------------------------------------------------------
// Panics on user code that escape `Simulation::run`.
// ---------------------------------------------------------------------------

/// A counter whose snapshot is not written yet (a common first version).
#[derive(Default)]
struct NoSnapshot(u64);

impl StateMachine for NoSnapshot {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
        self.0 += 1;
        self.0
    }
    fn snapshot(&self) -> Bytes {
        unimplemented!("snapshots are not written yet")
    }
    fn restore(&mut self, _data: &Bytes) {}
    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&self.0.to_le_bytes()))
    }
}

/// docs/TESTING.md ("bad input"): "a panic in ... the state machine is a
/// `Failure` ("User code panicked") with the replay line, not a crash of
/// the simulator". A state machine whose `snapshot` panics (the default
/// `digest` hashes it) makes `Simulation::run` itself panic: the run's
/// panic is caught, but building the report (`Cluster::report` ->
/// `node_states` -> `digest`) calls the state machine again outside any
/// `catch_unwind` (simulation.rs `run`, user.rs `node_states`).
#[test]
fn a_state_machine_whose_snapshot_panics_is_a_failure_not_a_panic() {
    let sim = Simulation::new(|_| NoSnapshot::default(), |_| CounterClients::<NoSnapshot>::new());
    let scenario = Scenario::new(FaultProfile::Calm, 3, 20, 1).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run(&scenario)));
    let result = outcome.expect("Simulation::run panicked instead of returning a Failure");
    let err = result.expect_err("a state machine that cannot snapshot cannot pass");
    assert_eq!(err.failure().unwrap().violation.property, Violation::USER_PANIC);
}

/// The same through the `describe_states` formatter, which the simulation
/// documents as user code whose panic is a failure ("in the state machine,
/// a generator, a formatter ..."): a formatter that panics on some state
/// escapes when the report of another failure (here, the planted counter
/// bug's linearizability failure) is built.
#[test]
fn a_panicking_state_formatter_is_a_failure_not_a_panic() {
    let sim = counter_sim().describe_states(|c| {
        assert!(c.0 < 3, "cannot describe {}", c.0);
        format!("{}", c.0)
    });
    let scenario = Scenario::new(FaultProfile::Calm, 3, 60, 0).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run(&scenario)));
    let result = outcome.expect("Simulation::run panicked instead of returning a Failure");
    assert!(result.is_err());
}

// ---------------------------------------------------------------------------
// Odd parameters.
// ---------------------------------------------------------------------------

/// `SimConfig::tick_skew` documents "at most 0.5" and clamps, but
/// `f64::clamp` lets NaN through; `spawn` (cluster.rs) then computes a NaN
/// period that `.round().max(1.0)` turns into 1 time unit: every node ticks
/// a thousand times per `TICK`, no election can finish within a network
/// delay, and every run fails "Liveness" as if the user's system were
/// broken.
#[test]
fn a_nan_tick_skew_does_not_make_nodes_tick_a_thousand_times_too_fast() {
    let c = Cluster::new(SimConfig::new(3).tick_skew(f64::NAN));
    let rate = c.tick_rate(1).unwrap();
    assert!((0.5..=1.5).contains(&rate), "tick rate {rate} (skew is at most 0.5)");
}

/// Tick counts are `u64`s with no documented bound, but `run_until` /
/// `elect` / `run_ticks` compute `now + max_ticks * TICK` and `pause`
/// computes `now + ticks * period` unchecked (cluster.rs `run_until`,
/// pause.rs `pause` -> `schedule`): "no limit" (`u64::MAX`) panics with an
/// arithmetic overflow in debug builds (and wraps in release: `pause` then
/// schedules its resume in the past, moving simulated time backwards).
#[test]
fn huge_tick_counts_do_not_overflow() {
    let mut c = Cluster::new(SimConfig::new(3).seed(2));
    let elected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.elect(u64::MAX)));
    assert!(elected.is_ok(), "elect(u64::MAX) panicked");
    let mut c = Cluster::new(SimConfig::new(3).seed(2));
    let leader = c.elect(1_000).unwrap();
    let paused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.pause(leader, u64::MAX, PauseInbox::Kept);
        c.run_ticks(10);
    }));
    assert!(paused.is_ok(), "pause(_, u64::MAX, _) panicked");
    assert!(c.is_paused(leader), "a pause 'forever' ended at once");
}

/// `Scenario::from_env` (and so `Simulation::run_all`) ignores a
/// `RAFT_IO_REPLAY` that is not UTF-8 (`std::env::var(..).ok()?`,
/// replay.rs `from_env`): the garbage is neither refused with a
/// `ScenarioError` nor replayed, and `run_all` silently runs the whole
/// sweep instead of the one scenario asked for.
#[test]
fn a_replay_variable_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let garbage = std::ffi::OsStr::from_bytes(b"profile=calm nodes=3 rounds=5 seed=\xff");
    // SAFETY: no other test of this binary reads or writes the environment.
    unsafe { std::env::set_var(raft_io::sim::REPLAY_ENV, garbage) };
    let read = Scenario::from_env();
    unsafe { std::env::remove_var(raft_io::sim::REPLAY_ENV) };
    assert!(matches!(read, Some(Err(_))), "a non-UTF-8 replay line was ignored: {read:?}");
}

/// A read sent to a node that is down is refused (`NotRunning`): it used to
/// be taken, never answered, and its query kept for the rest of the run.
/// A paused node keeps a read and answers it when it runs again.
#[test]
fn a_read_to_a_down_node_is_refused_and_one_to_a_paused_node_is_answered() {
    let mut c = Cluster::new(SimConfig::new(3).seed(5));
    let leader = c.elect(1_000).expect("a leader");
    let down = c.ids().into_iter().find(|&id| id != leader).unwrap();
    c.crash(down);
    let refused = c.read_query(down, 1, raft_io::ReadKind::Index, Bytes::from_static(b"q"));
    assert!(matches!(refused, Err(raft_io::Error::NotRunning(id)) if id == down), "{refused:?}");
    c.pause(leader, 5, PauseInbox::Kept);
    c.read_query(leader, 2, raft_io::ReadKind::Index, Bytes::from_static(b"q")).unwrap();
    c.run_ticks(40);
    let answered: Vec<_> = c.read_outcomes().iter().map(|o| (o.node, o.id)).collect();
    assert_eq!(answered, [(leader, 2)], "the paused node's read is answered once it runs");
}

// ---------------------------------------------------------------------------
// A `RaftConfig` the user's `configure` makes invalid.
// ---------------------------------------------------------------------------

/// `SimConfig::configure` lets the user adjust every node's `RaftConfig`,
/// but the simulator built its nodes with `RaftNode::with_log(..)
/// .unwrap_or_else(|e| panic!(..))` (cluster.rs `spawn`): a heartbeat
/// interval at or above the election timeout panicked inside the run, and
/// `Simulation::run` reported it as user code panicking, not as the invalid
/// parameter it is.
#[test]
fn a_raft_config_made_invalid_by_configure_is_refused_before_the_run() {
    let sim = counter_sim().configure(|c| c.configure(|r| r.election_timeout(4, 8).heartbeat_interval(5)));
    let err = sim.run(&Scenario::new(FaultProfile::Calm, 3, 20, 1).unwrap()).unwrap_err();
    assert!(err.to_string().contains("heartbeat_interval"), "the error does not name the field: {err}");
    assert!(
        matches!(err, SimError::Invalid(ScenarioError::InvalidConfig { node: 1, field: "heartbeat_interval", .. })),
        "not refused as invalid: {err}"
    );
}

/// The same when only the configuration of a node that joins later is
/// invalid: the membership schedule adds nodes mid-run (`add_node`), which
/// panicked there. The run is refused at its start instead, whether or not
/// this seed would have added a node.
#[test]
fn a_joining_nodes_raft_config_made_invalid_by_configure_is_refused_before_the_run() {
    let sim =
        counter_sim().configure(|c| c.configure(|r| if r.is_joining() { r.max_entries_per_message(0) } else { r }));
    for seed in 0..3 {
        let err = sim.run(&Scenario::new(FaultProfile::Membership, 3, 200, seed).unwrap()).unwrap_err();
        assert!(err.to_string().contains("max_entries_per_message"), "seed {seed}: the field is not named: {err}");
        assert!(
            matches!(err, SimError::Invalid(ScenarioError::InvalidConfig { node: 4, .. })),
            "seed {seed}: not refused as invalid: {err}"
        );
    }
}

/// The log's own limit counts too: in durable mode a joining node whose
/// messages could not be made durable in one step of its WAL is refused
/// at the start of the run, as the nodes started with it would be.
#[cfg(feature = "persistence")]
#[test]
fn a_joining_nodes_message_size_beyond_its_wal_is_refused_before_the_run() {
    let sim =
        counter_sim().configure(|c| c.configure(|r| if r.is_joining() { r.max_message_bytes(1 << 40) } else { r }));
    let scenario = Scenario::new(FaultProfile::Membership, 3, 200, 0).unwrap().durable(true).unwrap();
    let err = sim.run(&scenario).unwrap_err();
    assert!(
        matches!(err, SimError::Invalid(ScenarioError::InvalidConfig { node: 4, field: "max_message_bytes", .. })),
        "not refused as invalid: {err}"
    );
}

/// `Cluster::try_with_state_machines` is the same refusal for a cluster
/// driven by hand (`with_state_machines` panics with it).
#[test]
fn a_cluster_refuses_a_raft_config_made_invalid_by_configure() {
    let config = SimConfig::new(3).configure(|r| r.read_timeout_ticks(0));
    let refused = Cluster::try_with_state_machines(config, |_| Counter::default()).err();
    assert!(
        matches!(refused, Some(ScenarioError::InvalidConfig { node: 1, field: "read_timeout_ticks", .. })),
        "{refused:?}"
    );
}

// ---------------------------------------------------------------------------
// Same-instant order.
// ---------------------------------------------------------------------------

/// A counter whose reads lag one write behind: `query` answers the count
/// before the latest increment.
#[derive(Default)]
struct LaggingCounter {
    shown: u64,
    count: u64,
}

impl StateMachine for LaggingCounter {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
        self.shown = self.count;
        self.count += 1;
        self.count
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.count.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.count = data.as_ref().try_into().map_or(0, u64::from_le_bytes);
        self.shown = self.count;
    }
    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&self.shown.to_le_bytes()))
    }
}

/// A one-node cluster applies a write inside `submit`: the client has its
/// acknowledgement before it issues its next operation, at the same
/// simulated instant. The history recorded both at that instant, which the
/// checker takes for concurrent (it orders a call first only if it
/// completed strictly before the other was invoked): a read issued after
/// the acknowledged write could be placed before it, and reads that miss
/// the latest write passed. On these seeds the only reads that follow a
/// write are issued at its instant (they passed before the history kept
/// the order within an instant).
#[test]
fn a_read_issued_after_a_write_was_acknowledged_at_the_same_instant_must_see_it() {
    let sim = Simulation::new(|_| LaggingCounter::default(), |_| CounterClients::<LaggingCounter>::new());
    for seed in [7, 10, 16, 23, 25, 34, 36, 38] {
        let scenario = Scenario::new(FaultProfile::Calm, 1, 10, seed).unwrap();
        let err = sim.run(&scenario).map(|r| r.operations).expect_err(&format!("lagging reads passed: {scenario}"));
        assert_eq!(err.failure().unwrap().violation.property, Violation::LINEARIZABILITY, "{scenario}");
    }
}
