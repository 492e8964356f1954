//! The many-groups runtime (`raft_io::runtime::multi`) when a flush of its
//! shared WAL fails (an fdatasync the fault injector fails) with proposals
//! in flight: every proposer is answered; a proposal whose write was staged
//! before the failed flush is answered `OutcomeUnknown` (it may be on disk,
//! and a node restarted on that log may commit it), never `Halted` ("not
//! appended"); one whose step wrote nothing is answered `Halted`; and the
//! runtime stops with the failure itself as its cause. The driver is held
//! inside a state machine's `apply` while the proposals are queued, so one
//! later turn takes them all. Timeouts are hang detectors only.
#![cfg(feature = "persistence")]

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::log::shared::{SharedWal, SharedWalOptions};
use raft_io::log::wal::FaultInjector;
use raft_io::multi::{Envelope, GroupId, HostConfig};
use raft_io::runtime::multi::{GroupTransport, MultiHandle, MultiRuntime, Ticket};
use raft_io::runtime::{RuntimeError, StateMachine, StopReason};
use raft_io::{Error, RaftConfig, StorageError};

/// A gate a command `block` waits at in `apply` (the driver thread with
/// it) until the test opens it; `entered` says the driver is there.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<(bool, bool)>, Condvar)>);

impl Gate {
    fn open(&self) {
        self.0.0.lock().unwrap().0 = true;
        self.0.1.notify_all();
    }
    fn entered(&self) -> bool {
        self.0.0.lock().unwrap().1
    }
}

struct Count {
    n: u64,
    gate: Gate,
}

impl StateMachine for Count {
    type Output = u64;
    fn apply(&mut self, _index: u64, command: &Bytes) -> u64 {
        if command.as_ref() == b"block" {
            let mut state = self.gate.0.0.lock().unwrap();
            state.1 = true;
            while !state.0 {
                state = self.gate.0.1.wait(state).unwrap();
            }
        }
        self.n += 1;
        self.n
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.n.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.n = data.as_ref().try_into().map(u64::from_le_bytes).unwrap_or(0);
    }
}

/// No peers: every group is a single voter.
#[derive(Clone, Default)]
struct Silent(Arc<Mutex<VecDeque<Envelope>>>);

impl GroupTransport for Silent {
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>) {
        envelopes.clear();
    }
    fn try_recv(&mut self) -> Option<Envelope> {
        self.0.lock().unwrap().pop_front()
    }
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const GROUPS: [GroupId; 3] = [1, 2, 3];

struct Node {
    handle: MultiHandle<Count>,
    faults: FaultInjector,
    gate: Gate,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.gate.open();
        self.handle.shutdown();
    }
}

impl Node {
    fn start(options: SharedWalOptions, config: RaftConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultInjector::new();
        let wal = SharedWal::open_with(dir.path(), options.fault_injector(faults.clone())).unwrap();
        let gate = Gate::default();
        let sm_gate = gate.clone();
        let mut runtime = MultiRuntime::new(HostConfig::new(1), wal, Silent::default(), move |_| Count {
            n: 0,
            gate: sm_gate.clone(),
        })
        .request_timeout(Duration::from_secs(60))
        .max_batch_bytes(1 << 20);
        for group in GROUPS {
            runtime = runtime.group(group, config.clone());
        }
        let handle = runtime.start().unwrap();
        for group in GROUPS {
            assert_eq!(handle.wait_for_leader(group, Duration::from_secs(20)), Some(1));
            assert!(handle.propose(group, "warm").is_ok());
        }
        Node { handle, faults, gate, _dir: dir }
    }

    /// Holds the driver in `apply` (after its turn's flush), queues
    /// `commands` for each group, arms the next sync to fail, and lets the
    /// driver go: its next turn steps them all, then flushes.
    fn in_flight_at_a_failed_sync(&self, commands: &[Bytes]) -> Vec<(GroupId, Ticket<u64>)> {
        let block = self.handle.propose_async(GROUPS[0], "block").unwrap();
        until("the driver held in apply", || self.gate.entered());
        let mut tickets = Vec::new();
        for group in GROUPS {
            for command in commands {
                tickets.push((group, self.handle.propose_async(group, command.clone()).unwrap()));
            }
        }
        self.faults.fail_next_sync();
        self.gate.open();
        // Applied before the failure: it was durable.
        assert!(matches!(block.wait_timeout(Duration::from_secs(20)), Ok(Ok(_))));
        tickets
    }

    /// Every ticket's outcome (a hang fails the test), in submission order.
    fn outcomes(tickets: Vec<(GroupId, Ticket<u64>)>) -> Vec<(GroupId, Result<u64, RuntimeError>)> {
        tickets
            .into_iter()
            .map(|(group, ticket)| {
                let outcome = ticket.wait_timeout(Duration::from_secs(20));
                (group, outcome.unwrap_or_else(|_| panic!("a proposal to group {group} was never answered")))
            })
            .collect()
    }

    /// The runtime stopped with the injected failure itself as its cause,
    /// not the shared WAL's later refusals (`StorageError::Halted`).
    fn assert_stopped_by_the_failed_sync(&self) {
        until("the runtime stopped", || !self.handle.is_running());
        let reason = self.handle.stop_reason();
        let real = match &reason {
            Some(StopReason::Halted(e)) => match &**e {
                Error::Storage(StorageError::Halted { .. }) => false,
                Error::Storage(e) => e.to_string().contains("injected fault"),
                _ => false,
            },
            _ => false,
        };
        assert!(real, "stop reason {reason:?}");
    }
}

/// The driver's own flush fails: every proposal of the turn was stepped,
/// so staged, before it.
#[test]
fn proposals_staged_before_a_failed_flush_are_answered_outcome_unknown() {
    let node = Node::start(SharedWalOptions::new(), RaftConfig::single(1));
    let commands: Vec<Bytes> = (0..4).map(|i| Bytes::from(format!("c{i}"))).collect();
    let tickets = node.in_flight_at_a_failed_sync(&commands);
    for (group, outcome) in Node::outcomes(tickets) {
        assert!(matches!(outcome, Err(RuntimeError::OutcomeUnknown)), "group {group}: {outcome:?}");
    }
    node.assert_stopped_by_the_failed_sync();
    assert!(node.handle.propose_async(1, "late").is_err(), "a stopped runtime takes no proposal");
}

/// A step's write outgrows the record limit, so the step flushes what the
/// groups before it staged, and that flush fails: theirs may be on disk
/// (`OutcomeUnknown`), the failing step's and later ones are not (the WAL
/// writes nothing after a failure: `Halted`).
#[test]
fn a_flush_failed_inside_a_step_answers_the_staged_unknown_and_the_rest_halted() {
    let node = Node::start(
        SharedWalOptions::new().max_record_size(64 << 10),
        RaftConfig::single(1).max_message_bytes(32 << 10),
    );
    // One batch of ~24 KiB per group: the third group's step overflows
    // the 64 KiB staging area.
    let commands: Vec<Bytes> = (0..3).map(|_| Bytes::from(vec![7u8; 8 << 10])).collect();
    let tickets = node.in_flight_at_a_failed_sync(&commands);
    for (group, outcome) in Node::outcomes(tickets) {
        if group < 3 {
            assert!(matches!(outcome, Err(RuntimeError::OutcomeUnknown)), "group {group}: {outcome:?}");
        } else {
            assert!(matches!(outcome, Err(RuntimeError::Halted(_))), "group {group}: {outcome:?}");
        }
    }
    node.assert_stopped_by_the_failed_sync();
}
