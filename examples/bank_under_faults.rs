//! A user's own replicated state machine — a bank with transfers that can
//! be refused — tested under every fault profile of the simulator:
//!
//! * the **state machine** is the one a deployment would run on the
//!   threaded runtime (`raft_io::StateMachine`: the same trait), and its
//!   refusals ("insufficient funds") reach simulated clients as they would
//!   reach real ones;
//! * an **invariant** (money is conserved, no balance is negative) is
//!   checked after every applied command and every snapshot restore on
//!   every node;
//! * a **model** (a pure function from balances and an operation to new
//!   balances and an output) explains every client's history, or the run
//!   fails with the operations that no order explains.
//!
//! `cargo run --features sim --example bank_under_faults` exits 0 when every
//! profile passes. With `-- --bug`, a planted bug (a refused transfer
//! forgets to take back the credit it already made) is switched on: the
//! simulator catches it, prints the failure with the one line that replays
//! it, and the example exits 1.
//!
//! A failure prints `replay: RAFT_IO_REPLAY='profile=... seed=...'`; run the
//! example again with that variable set (and the same arguments) to replay
//! exactly that run.
//!
//! For a soak, `-- --seeds N` runs seeds `0..N` of every profile (default
//! 2) and `-- --nodes N` sets the cluster size (default 3; five or more
//! let every scene of the `Fragile` profile run, Figure 8 among them).

use std::collections::BTreeMap;
use std::process::ExitCode;

use raft_io::StateMachine;
use raft_io::bytes::Bytes;
use raft_io::sim::linearizability::Model;
use raft_io::sim::{FaultProfile, Rng, Simulation, Workload};

/// Accounts 0..ACCOUNTS exist; clients also try account ACCOUNTS, which
/// does not.
const ACCOUNTS: u32 = 4;
/// Every account opens with this balance.
const OPENING: i64 = 100;

/// The application: balances by account.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bank {
    balances: BTreeMap<u32, i64>,
    /// The planted bug.
    bug: bool,
}

/// What a transfer returns to its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    InsufficientFunds,
    UnknownAccount,
    /// A command the bank cannot parse (never panic on one: it stays in the
    /// log for good).
    Malformed,
}

impl Bank {
    fn new(bug: bool) -> Self {
        Self { balances: (0..ACCOUNTS).map(|a| (a, OPENING)).collect(), bug }
    }

    /// The command moving `amount` from `from` to `to`.
    fn transfer(from: u32, to: u32, amount: i64) -> Bytes {
        let mut c = b"T".to_vec();
        c.extend_from_slice(&from.to_le_bytes());
        c.extend_from_slice(&to.to_le_bytes());
        c.extend_from_slice(&amount.to_le_bytes());
        c.into()
    }

    fn parse(command: &[u8]) -> Option<(u32, u32, i64)> {
        let rest = command.strip_prefix(b"T")?;
        let from = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?);
        let to = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
        let amount = i64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
        Some((from, to, amount))
    }

    fn summarize(command: &Bytes) -> String {
        match Self::parse(command) {
            Some((from, to, amount)) => format!("transfer {amount} from {from} to {to}"),
            None => format!("{} unparsable bytes", command.len()),
        }
    }
}

impl StateMachine for Bank {
    type Output = Outcome;

    fn apply(&mut self, _index: u64, command: &Bytes) -> Outcome {
        let Some((from, to, amount)) = Self::parse(command) else { return Outcome::Malformed };
        if amount < 0 || !self.balances.contains_key(&from) || !self.balances.contains_key(&to) {
            return Outcome::UnknownAccount;
        }
        if self.bug {
            // THE PLANTED BUG: credit first, then refuse without taking the
            // credit back.
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
        Outcome::Done
    }

    /// Canonical (a BTreeMap, in key order), so the default digest — a
    /// hash of these bytes — gives equal digests for equal states and
    /// different ones for different states.
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
                Some((u32::from_le_bytes(c[0..4].try_into().ok()?), i64::from_le_bytes(c[4..].try_into().ok()?)))
            })
            .collect();
    }

    /// A read: the query is an account number, the answer its balance.
    fn query(&self, query: &[u8]) -> Option<Bytes> {
        let account = u32::from_le_bytes(query.try_into().ok()?);
        self.balances.get(&account).map(|b| Bytes::copy_from_slice(&b.to_le_bytes()))
    }
}

/// The invariant: money is neither made nor lost, and no balance is
/// negative.
fn conserved(bank: &Bank, _node: u64, _index: u64) -> Result<(), String> {
    let total: i64 = bank.balances.values().sum();
    if total != i64::from(ACCOUNTS) * OPENING {
        return Err(format!("money not conserved: total {total}, balances {:?}", bank.balances));
    }
    match bank.balances.iter().find(|(_, b)| **b < 0) {
        Some((a, b)) => Err(format!("account {a} is overdrawn: {b}")),
        None => Ok(()),
    }
}

/// A client operation.
#[derive(Clone, Debug)]
enum Op {
    Transfer { from: u32, to: u32, amount: i64 },
    Balance(u32),
}

/// What the model says an operation returns.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Transfer(Outcome),
    Balance(Option<i64>),
}

/// The clients and the model.
struct Clients;

impl Model for Clients {
    type State = Vec<i64>;
    type Op = Op;
    type Output = Answer;

    fn init(&self) -> Vec<i64> {
        vec![OPENING; ACCOUNTS as usize]
    }

    /// The bank, sequentially: a pure function of the balances and the
    /// operation.
    fn step(&self, s: &Vec<i64>, op: &Op) -> (Vec<i64>, Answer) {
        match *op {
            Op::Transfer { from, to, amount } => {
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
            Op::Balance(a) => (s.clone(), Answer::Balance(s.get(a as usize).copied())),
        }
    }
}

impl Workload for Clients {
    type Machine = Bank;

    /// The command generator: transfers between random accounts (one in
    /// five names the account that does not exist), often more than the
    /// balance holds.
    fn write(&mut self, rng: &mut Rng) -> Op {
        let account = |rng: &mut Rng| rng.range(0, u64::from(ACCOUNTS) + 1) as u32;
        Op::Transfer { from: account(rng), to: account(rng), amount: rng.range(1, 80) as i64 }
    }

    /// The read generator: a balance.
    fn read(&mut self, rng: &mut Rng) -> Option<Op> {
        Some(Op::Balance(rng.range(0, u64::from(ACCOUNTS)) as u32))
    }

    fn encode(&self, op: &Op) -> Bytes {
        match *op {
            Op::Transfer { from, to, amount } => Bank::transfer(from, to, amount),
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

/// The number after `--name` on the command line, if any.
fn option(name: &str) -> Result<Option<u64>, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(format!("{name} takes a number")),
        },
    }
}

fn main() -> ExitCode {
    let bug = std::env::args().any(|a| a == "--bug");
    let (seeds, nodes) = match (option("--seeds"), option("--nodes")) {
        (Ok(seeds), Ok(nodes)) => (seeds.unwrap_or(2), nodes.unwrap_or(3) as usize),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bank_under_faults: {e}");
            return ExitCode::from(2);
        }
    };
    let simulation = Simulation::new(move |_node| Bank::new(bug), |_seed| Clients)
        .invariant(conserved)
        .summarize_commands(Bank::summarize)
        .describe_states(|bank| format!("{:?}", bank.balances));
    match simulation.run_all(&FaultProfile::ALL, nodes, 150, 0..seeds) {
        Ok(reports) => {
            let operations: usize = reports.iter().map(|r| r.operations).sum();
            for r in &reports {
                println!("{}: {} operations, {:?}", r.scenario, r.operations, r.linearizability);
            }
            println!("bank_under_faults: {} runs, {operations} client operations, all passed", reports.len());
            if bug {
                println!("the planted bug was NOT caught");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            if bug {
                println!("bank_under_faults: the planted bug was caught (exit 1)");
            }
            ExitCode::from(1)
        }
    }
}
