//! The simulator as a product (issue 21): a user's own state machine — a
//! small bank — run through the simulator with its invariant, its model,
//! its command and read generators, and bugs planted on purpose:
//!
//! * one `StateMachine` serves the runtime and the simulator, and refusals
//!   reach simulated clients;
//! * a user invariant violation is returned as a value with one replay line
//!   that reproduces it exactly (through the API and through the
//!   `RAFT_IO_REPLAY` variable the library reads);
//! * a history the user's model cannot explain is caught;
//! * a determinism bug (a node-dependent value) is caught by State Machine
//!   Safety, with the disagreeing digests in the report;
//! * an invariant or model that panics is a user failure with a replay
//!   line; invalid scenarios are refused by name;
//! * `Chaos` proposes only what the user's generator makes.
//!
//! Every run is a function of its scenario line, printed on failure.
#![cfg(feature = "sim")]

use std::collections::BTreeMap;

use raft_io::StateMachine;
use raft_io::bytes::Bytes;
use raft_io::sim::linearizability::{Model, Verdict};
use raft_io::sim::{
    Chaos, Cluster, FaultProfile, HashChain, Rng, Scenario, SimConfig, SimError, Simulation, Violation, Workload,
};

const ACCOUNTS: u32 = 3;
const OPENING: i64 = 50;

/// Bugs to plant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    None,
    /// A refused transfer keeps the credit it already made (breaks the
    /// conservation invariant).
    KeepsRefusedCredit,
    /// Transfers of an odd amount are done but reported refused (the state
    /// is right everywhere; only clients hear a lie).
    LiesAboutOddTransfers,
    /// Node 2 rounds odd amounts down (replicas diverge: a node-dependent
    /// value; money is still conserved).
    NodeDependent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Bank {
    balances: BTreeMap<u32, i64>,
    node: u64,
    bug: Bug,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    InsufficientFunds,
    UnknownAccount,
    Malformed,
}

impl Bank {
    fn new(node: u64, bug: Bug) -> Self {
        Self { balances: (0..ACCOUNTS).map(|a| (a, OPENING)).collect(), node, bug }
    }

    fn transfer(from: u32, to: u32, amount: i64) -> Bytes {
        let mut c = b"T".to_vec();
        c.extend_from_slice(&from.to_le_bytes());
        c.extend_from_slice(&to.to_le_bytes());
        c.extend_from_slice(&amount.to_le_bytes());
        c.into()
    }

    fn parse(c: &[u8]) -> Option<(u32, u32, i64)> {
        let r = c.strip_prefix(b"T")?;
        Some((
            u32::from_le_bytes(r.get(0..4)?.try_into().ok()?),
            u32::from_le_bytes(r.get(4..8)?.try_into().ok()?),
            i64::from_le_bytes(r.get(8..16)?.try_into().ok()?),
        ))
    }
}

impl StateMachine for Bank {
    type Output = Outcome;

    fn apply(&mut self, _index: u64, command: &Bytes) -> Outcome {
        let Some((from, to, mut amount)) = Self::parse(command) else { return Outcome::Malformed };
        if amount < 0 || !self.balances.contains_key(&from) || !self.balances.contains_key(&to) {
            return Outcome::UnknownAccount;
        }
        if self.bug == Bug::NodeDependent && self.node == 2 {
            amount -= amount % 2;
        }
        if self.bug == Bug::KeepsRefusedCredit {
            *self.balances.entry(to).or_default() += amount;
            if self.balances[&from] < amount {
                return Outcome::InsufficientFunds;
            }
            *self.balances.entry(from).or_default() -= amount;
            return Outcome::Done;
        }
        if self.balances[&from] < amount {
            return Outcome::InsufficientFunds;
        }
        *self.balances.entry(from).or_default() -= amount;
        *self.balances.entry(to).or_default() += amount;
        if self.bug == Bug::LiesAboutOddTransfers && amount % 2 == 1 {
            return Outcome::InsufficientFunds;
        }
        Outcome::Done
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for (a, b) in &self.balances {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.into()
    }

    fn restore(&mut self, data: &Bytes) {
        self.balances = data
            .chunks_exact(12)
            .filter_map(|c| {
                Some((u32::from_le_bytes(c[..4].try_into().ok()?), i64::from_le_bytes(c[4..].try_into().ok()?)))
            })
            .collect();
    }

    fn query(&self, query: &[u8]) -> Option<Bytes> {
        let account = u32::from_le_bytes(query.try_into().ok()?);
        self.balances.get(&account).map(|b| Bytes::copy_from_slice(&b.to_le_bytes()))
    }
}

fn conserved(bank: &Bank, _node: u64, _index: u64) -> Result<(), String> {
    let total: i64 = bank.balances.values().sum();
    if total != i64::from(ACCOUNTS) * OPENING {
        return Err(format!("money not conserved: total {total}"));
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Transfer(u32, u32, i64),
    Balance(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Transfer(Outcome),
    Balance(Option<i64>),
}

/// Clients and model; `panicky` makes the model panic on reads.
struct Clients {
    panicky: bool,
}

impl Model for Clients {
    type State = Vec<i64>;
    type Op = Op;
    type Output = Answer;

    fn init(&self) -> Vec<i64> {
        vec![OPENING; ACCOUNTS as usize]
    }

    fn step(&self, s: &Vec<i64>, op: &Op) -> (Vec<i64>, Answer) {
        match *op {
            Op::Transfer(from, to, amount) => {
                let (f, t) = (from as usize, to as usize);
                if amount < 0 || f >= s.len() || t >= s.len() {
                    return (s.clone(), Answer::Transfer(Outcome::UnknownAccount));
                }
                if s[f] < amount {
                    return (s.clone(), Answer::Transfer(Outcome::InsufficientFunds));
                }
                let mut next = s.clone();
                next[f] -= amount;
                next[t] += amount;
                (next, Answer::Transfer(Outcome::Done))
            }
            Op::Balance(_) if self.panicky => panic!("the model cannot read"),
            Op::Balance(a) => (s.clone(), Answer::Balance(s.get(a as usize).copied())),
        }
    }
}

impl Workload for Clients {
    type Machine = Bank;

    fn write(&mut self, rng: &mut Rng) -> Op {
        let account = |rng: &mut Rng| rng.range(0, u64::from(ACCOUNTS) + 1) as u32;
        Op::Transfer(account(rng), account(rng), rng.range(1, 40) as i64)
    }

    fn read(&mut self, rng: &mut Rng) -> Option<Op> {
        Some(Op::Balance(rng.range(0, u64::from(ACCOUNTS)) as u32))
    }

    fn encode(&self, op: &Op) -> Bytes {
        match *op {
            Op::Transfer(from, to, amount) => Bank::transfer(from, to, amount),
            Op::Balance(a) => Bytes::copy_from_slice(&a.to_le_bytes()),
        }
    }

    fn write_output(&self, _op: &Op, output: &Outcome) -> Answer {
        Answer::Transfer(*output)
    }

    fn read_output(&self, _op: &Op, answer: Option<&Bytes>) -> Answer {
        Answer::Balance(answer.and_then(|b| b.as_ref().try_into().ok()).map(i64::from_le_bytes))
    }
}

fn simulation(bug: Bug) -> Simulation<Clients> {
    Simulation::new(move |node| Bank::new(node, bug), |_seed| Clients { panicky: false })
        .invariant(conserved)
        .summarize_commands(|c| match Bank::parse(c) {
            Some((f, t, a)) => format!("transfer {a} from {f} to {t}"),
            None => "?".to_owned(),
        })
        .describe_states(|b| format!("{:?}", b.balances))
}

/// The first failure over a few profiles and seeds (every run printed).
fn first_failure(sim: &Simulation<Clients>, profiles: &[FaultProfile]) -> raft_io::sim::Failure {
    for &profile in profiles {
        for seed in 0..4 {
            let scenario = Scenario::new(profile, 3, 120, seed).unwrap();
            match sim.run(&scenario) {
                Ok(report) => println!("{scenario}: passed ({} operations)", report.operations),
                Err(SimError::Failed(f)) => {
                    println!("{scenario}: {}", f.violation);
                    return *f;
                }
                Err(e) => panic!("{scenario}: {e}"),
            }
        }
    }
    panic!("the planted bug was not caught");
}

/// The asynchronous storage mode through the product: the user's
/// configuration turns it on (`SimConfig::async_storage`), every profile
/// runs with writes reported durable late and crashes that lose what was
/// not (the `Fragile` power cut included), and the history stays
/// linearizable.
#[test]
fn a_correct_bank_passes_every_profile_in_the_asynchronous_storage_mode() {
    let sim = simulation(Bug::None).configure(|c| c.async_storage(true));
    let reports = sim.run_all(&FaultProfile::ALL, 3, 100, 0..1).unwrap_or_else(|e| panic!("{e}"));
    for r in &reports {
        assert_eq!(r.linearizability, Verdict::Linearizable, "{}", r.scenario);
    }
    assert!(reports.iter().map(|r| r.operations).sum::<usize>() > 500);
}

#[test]
fn a_correct_bank_passes_every_profile_with_a_checked_history() {
    let reports = simulation(Bug::None).run_all(&FaultProfile::ALL, 3, 100, 0..1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reports.len(), FaultProfile::ALL.len());
    for r in &reports {
        println!("{}: {} operations, {:?}", r.scenario, r.operations, r.linearizability);
        assert_eq!(r.linearizability, Verdict::Linearizable, "{}", r.scenario);
    }
    assert!(reports.iter().map(|r| r.operations).sum::<usize>() > 500);
}

/// Five nodes, so every fragile scene fits (Figure 8 needs five voters);
/// the scenes' bursts are the clients' writes, checked with the rest.
#[test]
fn a_correct_bank_passes_the_fragile_scenes_on_five_nodes() {
    let reports =
        simulation(Bug::None).run_all(&[FaultProfile::Fragile], 5, 150, 0..3).unwrap_or_else(|e| panic!("{e}"));
    for r in &reports {
        println!(
            "{}: {} operations ({} in bursts), {:?}, {:?}",
            r.scenario, r.operations, r.burst_writes, r.linearizability, r.stats
        );
        assert_eq!(r.linearizability, Verdict::Linearizable, "{}", r.scenario);
        assert!(r.burst_writes <= r.operations, "{}", r.scenario);
    }
    let bursts: usize = reports.iter().map(|r| r.burst_writes).sum();
    assert!(bursts >= 4, "the scenes proposed the clients' writes in bursts: {bursts}");
}

#[test]
fn refusals_reach_simulated_clients_as_apply_outputs() {
    let mut cluster = Cluster::with_state_machines(SimConfig::new(3).seed(4), |id| Bank::new(id, Bug::None));
    let leader = cluster.elect(500).expect("a leader");
    let rich = cluster.submit(leader, Bank::transfer(0, 1, 30)).unwrap();
    let poor = cluster.submit(leader, Bank::transfer(0, 1, 30)).unwrap();
    assert!(cluster.run_until(200, |c| c.pending_writes().is_empty()));
    assert_eq!(cluster.write_output(rich.id), Some(&Outcome::Done));
    assert_eq!(cluster.write_output(poor.id), Some(&Outcome::InsufficientFunds));
}

/// The same type runs on the threaded runtime, whose proposer hears the
/// same refusal.
#[cfg(feature = "net")]
#[test]
fn the_same_state_machine_runs_on_the_runtime() {
    use raft_io::runtime::Runtime;
    use raft_io::transport::{TcpConfig, TcpTransport};
    use raft_io::{RaftConfig, RaftNode};

    let node = RaftNode::new(RaftConfig::single(1)).unwrap();
    let transport = TcpTransport::bind(TcpConfig::new(1, "127.0.0.1:0".parse().unwrap())).unwrap();
    let handle = Runtime::new(node, transport, Bank::new(1, Bug::None)).start().unwrap();
    assert_eq!(handle.wait_for_leader(std::time::Duration::from_secs(30)), Some(1));
    assert_eq!(handle.propose(Bank::transfer(0, 1, 30)).unwrap(), Outcome::Done);
    assert_eq!(handle.propose(Bank::transfer(0, 1, 30)).unwrap(), Outcome::InsufficientFunds);
    handle.shutdown();
}

#[test]
fn a_user_invariant_violation_is_reported_with_a_replay_line_that_reproduces_it() {
    let sim = simulation(Bug::KeepsRefusedCredit);
    let failure = first_failure(&sim, &[FaultProfile::Crashes, FaultProfile::Lossy]);
    println!("{failure}");
    assert_eq!(failure.violation.property, Violation::USER_INVARIANT);
    assert!(failure.violation.detail.contains("money not conserved"));
    assert!(failure.node.is_some() && failure.index.is_some());
    assert!(
        failure.replay.starts_with("RAFT_IO_REPLAY='profile=crashes nodes=3 rounds=120 seed="),
        "{}",
        failure.replay
    );
    assert!(!failure.replay.contains('\n'));
    // The trace names the commands; the report shows every node's state.
    assert!(failure.trace.contains("transfer"), "{}", failure.trace);
    assert!(failure.states.iter().all(|s| s.state.is_some()));
    // The replay line reproduces the very same failure.
    let again = sim.replay(&failure.replay).unwrap_err();
    assert_eq!(again.failure(), Some(&failure));
}

/// The replay line through the environment variable the library reads: this
/// test runs its own binary again with `RAFT_IO_REPLAY` set, filtered to
/// `replay_from_the_environment` below.
#[test]
fn the_replay_variable_is_read_by_the_library() {
    let sim = simulation(Bug::KeepsRefusedCredit);
    let failure = first_failure(&sim, &[FaultProfile::Lossy]);
    let line = failure.replay.strip_prefix("RAFT_IO_REPLAY=").unwrap().trim_matches('\'');
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "replay_from_the_environment", "--nocapture", "--test-threads", "1"])
        .env("RAFT_IO_REPLAY", line)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let expected = format!("replayed: {}", failure.violation);
    assert!(stdout.contains(&expected), "{stdout}");
}

/// Does something only when `RAFT_IO_REPLAY` is set (see above).
#[test]
fn replay_from_the_environment() {
    if std::env::var("RAFT_IO_REPLAY").is_err() {
        return;
    }
    // `run_all` runs only the scenario the variable names.
    let err = simulation(Bug::KeepsRefusedCredit).run_all(&[FaultProfile::Calm], 3, 1, 0..1).unwrap_err();
    println!("replayed: {}", err.failure().expect("a failure").violation);
}

#[test]
fn a_history_the_model_cannot_explain_is_caught() {
    let failure = first_failure(&simulation(Bug::LiesAboutOddTransfers), &[FaultProfile::Lossy]);
    println!("{failure}");
    assert_eq!(failure.violation.property, Violation::LINEARIZABILITY);
    assert!(failure.violation.detail.contains("InsufficientFunds"), "{}", failure.violation.detail);
    assert!(failure.replay.starts_with("RAFT_IO_REPLAY='"));
}

#[test]
fn a_determinism_bug_is_caught_by_state_machine_safety() {
    let failure = first_failure(&simulation(Bug::NodeDependent), &[FaultProfile::Calm]);
    println!("{failure}");
    assert_eq!(failure.violation.property, "State Machine Safety");
    assert!(failure.violation.detail.contains("digests"), "{}", failure.violation.detail);
    let digests: std::collections::BTreeSet<u64> = failure.states.iter().map(|s| s.digest).collect();
    assert!(digests.len() > 1, "the report shows the disagreeing digests");
}

#[test]
fn a_panicking_invariant_is_a_user_failure_with_a_replay_line() {
    let sim = simulation(Bug::None).invariant(|_, _, index| if index > 6 { panic!("invariant bug") } else { Ok(()) });
    let err = sim.run(&Scenario::new(FaultProfile::Calm, 3, 50, 1).unwrap()).unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!(failure.violation.property, Violation::USER_INVARIANT);
    assert!(failure.violation.detail.contains("panicked: invariant bug"));
    assert_eq!(failure.replay, "RAFT_IO_REPLAY='profile=calm nodes=3 rounds=50 seed=1'");
}

#[test]
fn a_panicking_model_is_a_user_failure_with_a_replay_line() {
    let sim = Simulation::new(|node| Bank::new(node, Bug::None), |_| Clients { panicky: true });
    let err = sim.run(&Scenario::new(FaultProfile::Calm, 3, 50, 2).unwrap()).unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!(failure.violation.property, Violation::USER_PANIC);
    assert!(failure.violation.detail.contains("the model panicked: the model cannot read"));
    assert!(failure.replay.contains("seed=2"));
}

#[test]
fn invalid_scenarios_and_parameters_are_refused_by_name() {
    let sim = simulation(Bug::None);
    let named = |e: SimError, name: &str| assert!(e.to_string().contains(name), "{e}");
    named(sim.replay("profile=tornado nodes=3 rounds=1 seed=1").unwrap_err(), "tornado");
    named(sim.replay("profile=calm nodes=0 rounds=1 seed=1").unwrap_err(), "nodes");
    named(sim.replay("profile=calm nodes=3 rounds=1 seed=-4").unwrap_err(), "seed");
    named(sim.run_all(&[FaultProfile::Calm], 99, 1, 0..1).unwrap_err(), "nodes");
    let bad = Scenario { profile: FaultProfile::Calm, nodes: 3, rounds: usize::MAX, seed: 0, durable: false };
    named(sim.run(&bad).unwrap_err(), "rounds");
    assert!(simulation(Bug::None).search_budget(0).unwrap_err().to_string().contains("search_budget"));
    assert!(simulation(Bug::None).clients(0, 10).unwrap_err().to_string().contains("clients"));
}

#[test]
fn chaos_proposes_only_what_the_users_generator_makes() {
    // No generator: faults only, nothing proposed into the state machine.
    let mut quiet = Cluster::new(SimConfig::new(3).seed(9));
    let mut chaos = Chaos::new(FaultProfile::Crashes, 9);
    chaos.run(&mut quiet, 100);
    assert!(chaos.heal_and_check_liveness(&mut quiet, 1_500));
    assert_eq!(chaos.proposed(), 0);
    assert!(quiet.ids().iter().all(|&id| quiet.state_machine(id).is_some_and(|sm: &HashChain| sm.applied() == 0)));
    // A generator: every command applied is one of the user's.
    let config = SimConfig::new(3).seed(9).panic_on_violation(false);
    let mut cluster = Cluster::with_state_machines(config, |id| Bank::new(id, Bug::None));
    cluster.set_invariant(conserved);
    cluster.summarize_commands(|c| if Bank::parse(c).is_some() { "user".into() } else { "FOREIGN".into() });
    let mut chaos = Chaos::new(FaultProfile::Everything, 9)
        .commands(|rng| Bank::transfer(rng.range(0, 3) as u32, rng.range(0, 3) as u32, rng.range(1, 30) as i64))
        .reads(|rng| Bytes::copy_from_slice(&(rng.range(0, 3) as u32).to_le_bytes()));
    chaos.run(&mut cluster, 200);
    assert!(chaos.heal_and_check_liveness(&mut cluster, 1_500));
    assert!(chaos.proposed() > 20, "{}", chaos.proposed());
    assert!(cluster.failure().is_none());
    assert!(!cluster.trace().to_string().contains("FOREIGN"));
    assert!(cluster.read_outcomes().iter().any(|r| r.value.is_some()), "user reads were answered");
}

/// Durable mode (nodes on real `WalLog`s, torn writes at crashes) is part
/// of the scenario line, and replays exactly too.
#[cfg(feature = "persistence")]
#[test]
fn a_durable_scenario_replays_from_its_line() {
    let sim = simulation(Bug::KeepsRefusedCredit);
    let scenario = Scenario::new(FaultProfile::Crashes, 3, 80, 3).unwrap().durable(true).unwrap();
    let failure = sim.run(&scenario).unwrap_err().failure().cloned().expect("the bug caught");
    assert_eq!(failure.replay, "RAFT_IO_REPLAY='profile=crashes nodes=3 rounds=80 seed=3 durable=true'");
    assert_eq!(sim.replay(&failure.replay).unwrap_err().failure(), Some(&failure));
}

/// A state machine that panics (here: node 3's, when it is built) is a user
/// failure with the replay line, not a crash of the simulator.
#[test]
fn a_panicking_state_machine_is_a_user_failure_with_a_replay_line() {
    let sim = Simulation::new(
        |node| if node == 3 { panic!("no bank for node 3") } else { Bank::new(node, Bug::None) },
        |_| Clients { panicky: false },
    );
    let err = sim.run(&Scenario::new(FaultProfile::Calm, 3, 10, 5).unwrap()).unwrap_err();
    let failure = err.failure().unwrap();
    assert_eq!(failure.violation.property, Violation::USER_PANIC);
    assert!(failure.violation.detail.contains("no bank for node 3"), "{}", failure.violation.detail);
    assert_eq!(failure.replay, "RAFT_IO_REPLAY='profile=calm nodes=3 rounds=10 seed=5'");
}

/// A search budget too small to decide the history gives a clear "unknown"
/// in the report, not a pass and not a failure.
#[test]
fn a_search_budget_that_runs_out_reports_unknown() {
    let sim = simulation(Bug::None).search_budget(3).unwrap();
    let report = sim.run(&Scenario::new(FaultProfile::Lossy, 3, 60, 1).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.operations > 3);
    assert_eq!(report.linearizability, Verdict::Unknown { explored: 4 });
}
