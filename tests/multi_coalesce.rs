//! Proposals coalesced behind the round in flight
//! (`MultiRuntime::coalesce_proposals`), and when a round's appends leave:
//! a runtime hosting one group of two members, its peer played by the
//! test — a `RaftNode` whose messages the test relays by hand, so it
//! decides when the round in flight commits.
//! Outcomes never depend on timing: waits poll with a generous deadline,
//! and "nothing was proposed" is checked after the driver has provably
//! taken the requests (two turns later).
#![cfg(all(feature = "net", feature = "persistence"))]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::log::shared::SharedWal;
use raft_io::multi::{Envelope, EnvelopeBody, GroupId, HostConfig};
use raft_io::runtime::multi::{GroupTransport, MultiHandle, MultiRuntime, Ticket};
use raft_io::runtime::{RuntimeError, StateMachine};
use raft_io::{Action, Event, MessageBody, RaftConfig, RaftNode};

const GROUP: GroupId = 1;

/// Counts what it applied.
#[derive(Default)]
struct Count(u64);

impl StateMachine for Count {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &Bytes) -> u64 {
        self.0 += 1;
        self.0
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_le_bytes).unwrap_or(0);
    }
}

/// How many records the shared WAL had written when an append left, and
/// the append's commands.
type Stamp = (u64, Vec<Bytes>);

/// The runtime's wire: what it sends is kept for the test, what the test
/// queues it receives.
#[derive(Clone, Default)]
struct Wire {
    sent: Arc<Mutex<Vec<Envelope>>>,
    inbox: Arc<Mutex<VecDeque<Envelope>>>,
    /// The runtime's shared WAL, and a stamp for each append it sent
    /// with entries.
    wal: Option<SharedWal>,
    stamps: Arc<Mutex<Vec<Stamp>>>,
}

impl GroupTransport for Wire {
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>) {
        if let Some(wal) = &self.wal {
            let records = wal.stats().records;
            for envelope in envelopes.iter() {
                if let EnvelopeBody::Raft { message, .. } = &envelope.body {
                    if let MessageBody::Append(append) = &message.body {
                        if !append.entries.is_empty() {
                            let commands = append.entries.iter().map(|e| e.data.clone()).collect();
                            self.stamps.lock().unwrap().push((records, commands));
                        }
                    }
                }
            }
        }
        self.sent.lock().unwrap().append(envelopes);
    }
    fn try_recv(&mut self) -> Option<Envelope> {
        self.inbox.lock().unwrap().pop_front()
    }
}

/// Node 1 (the runtime) and node 2 (the test's `RaftNode`).
struct Pair {
    handle: MultiHandle<Count>,
    wire: Wire,
    peer: RaftNode,
    /// The commands of every append the runtime sent, one list per append.
    appends: Vec<Vec<Bytes>>,
    _dir: tempfile::TempDir,
}

/// The runtime stops before its directory is removed: dropping the handle
/// does not wait for the driver, and a test that ended without a shutdown
/// left its temporary directory behind, holding only the shared WAL's meta
/// file (the WAL closed while the directory was being removed, and wrote
/// it there, so the removal failed).
impl Drop for Pair {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Pair {
    fn start(below: usize, max_wait: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let wal = SharedWal::open(dir.path()).unwrap();
        let wire = Wire { wal: Some(wal.clone()), ..Wire::default() };
        // No check-quorum: the leader stays leader while the test holds
        // its peer's answers back. Heartbeats far apart, so the leader keeps
        // streaming to its peer: it probes a peer that answered no append
        // for three heartbeat rounds, here 1.35 s (10 ms ticks), far longer
        // than any step of a test on a loaded machine; an election takes
        // 0.5–1 s.
        let config = RaftConfig::new(1, [1, 2]).election_timeout(50, 100).heartbeat_interval(45).check_quorum(false);
        let handle = MultiRuntime::new(HostConfig::new(1), wal, wire.clone(), |_| Count::default())
            .coalesce_proposals(below, max_wait)
            .group(GROUP, config)
            .start()
            .unwrap();
        // Ticked only by a test that wants it to campaign, and then without
        // a pre-vote (its vote request ends node 1's term).
        let peer = RaftNode::new(RaftConfig::new(2, [1, 2]).election_timeout(1000, 2000).pre_vote(false)).unwrap();
        let mut pair = Pair { handle, wire, peer, appends: Vec::new(), _dir: dir };
        pair.until("node 1 leads", |p| {
            p.relay();
            p.handle.leader(GROUP) == Some(1)
        });
        pair
    }

    /// Takes what the runtime sent (noting its appends); returns the
    /// group's messages.
    fn take_sent(&mut self) -> Vec<raft_io::Message> {
        let sent = std::mem::take(&mut *self.wire.sent.lock().unwrap());
        let mut messages = Vec::new();
        for envelope in sent {
            if let EnvelopeBody::Raft { group: GROUP, message } = envelope.body {
                if let MessageBody::Append(append) = &message.body {
                    if !append.entries.is_empty() {
                        self.appends.push(append.entries.iter().map(|e| e.data.clone()).collect());
                    }
                }
                messages.push(message);
            }
        }
        messages
    }

    /// Steps the peer with `messages` and queues its answers for node 1.
    fn deliver(&mut self, messages: Vec<raft_io::Message>) {
        for message in messages {
            let answers: Vec<Action> = match self.peer.step(Event::Message(message)) {
                Ok(actions) => actions.collect(),
                Err(_) => continue,
            };
            self.send_to_node_1(answers);
        }
    }

    /// Queues the peer's messages to node 1 among `actions`.
    fn send_to_node_1(&self, actions: Vec<Action>) {
        let mut inbox = self.wire.inbox.lock().unwrap();
        for action in actions {
            if let Action::Send { to: 1, message } = action {
                inbox.push_back(Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: GROUP, message } });
            }
        }
    }

    /// A pair where "a" is committed and "b"'s round is in flight (its
    /// append held back); returns it, b's append and b's index.
    fn round_in_flight(below: usize, max_wait: Duration) -> (Self, Vec<raft_io::Message>, u64) {
        let mut pair = Pair::start(below, max_wait);
        pair.write("a");
        let in_flight = pair.held_round("b");
        let b_index = pair.last_index();
        (pair, in_flight, b_index)
    }

    /// Relays everything sent so far both ways.
    fn relay(&mut self) {
        let messages = self.take_sent();
        self.deliver(messages);
    }

    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the driver has begun two more turns: every request
    /// queued before the call has then been taken.
    fn two_turns(&mut self) {
        let from = self.handle.stats().turns;
        self.until("two driver turns", |p| p.handle.stats().turns >= from + 2);
    }

    fn last_index(&self) -> u64 {
        self.handle.status(GROUP).unwrap().last_index
    }

    /// Proposes `command` and relays until it is applied.
    fn write(&mut self, command: &'static str) {
        let ticket = self.handle.propose_async(GROUP, command).unwrap();
        self.relay_until_applied(ticket);
    }

    /// Relays until `ticket`'s write is applied; its output.
    fn relay_until_applied(&mut self, ticket: Ticket<u64>) -> u64 {
        let (mut ticket, mut output) = (Some(ticket), None);
        self.until("the write applied", |p| {
            p.relay();
            match ticket.take().map(Ticket::try_get) {
                Some(Ok(outcome)) => output = Some(outcome.unwrap()),
                Some(Err(t)) => ticket = Some(t),
                None => {}
            }
            output.is_some()
        });
        output.unwrap_or_default()
    }

    /// Proposes `command` and waits for the append carrying it, which is
    /// not relayed: its round stays in flight. Returns what was sent.
    fn held_round(&mut self, command: &'static str) -> Vec<raft_io::Message> {
        let _ = self.handle.propose_async(GROUP, command).unwrap();
        self.sent_with(command)
    }

    /// Waits for an append carrying `command` (not relayed). Returns what
    /// was sent.
    fn sent_with(&mut self, command: &'static str) -> Vec<raft_io::Message> {
        let mut held = Vec::new();
        self.until(&format!("the append with {command} sent"), |p| {
            held.extend(p.take_sent());
            p.appends.iter().any(|a| a.iter().any(|c| c == command))
        });
        held
    }
}

fn bytes(commands: &[&'static str]) -> Vec<Bytes> {
    commands.iter().map(|c| Bytes::from_static(c.as_bytes())).collect()
}

/// While a round is in flight, small batches wait, and the proposals that
/// come meanwhile join them; when the round commits they go out as one
/// append, in the order they were proposed.
#[test]
fn proposals_wait_for_the_round_in_flight_and_leave_together() {
    let (mut pair, in_flight, b_index) = Pair::round_in_flight(32, Duration::from_secs(3600));
    let batches = pair.handle.stats().batches;
    let tickets: Vec<_> = ["c", "d", "e"]
        .into_iter()
        .map(|c| {
            let ticket = pair.handle.propose_async(GROUP, c).unwrap();
            // Each in a turn of its own, as clients' proposals come.
            pair.two_turns();
            ticket
        })
        .collect();
    pair.two_turns();
    assert_eq!(pair.last_index(), b_index, "nothing proposed while b's round is in flight");
    assert_eq!(pair.handle.stats().batches, batches);
    assert!(pair.take_sent().iter().all(|m| !matches!(&m.body, MessageBody::Append(a) if !a.entries.is_empty())));
    // b's round commits: c, d and e leave as one batch, one append.
    pair.deliver(in_flight);
    let outcomes: Vec<u64> = tickets.into_iter().map(|ticket| pair.relay_until_applied(ticket)).collect();
    assert_eq!(outcomes, [3, 4, 5], "applied in the order proposed");
    assert_eq!(pair.handle.stats().batches, batches + 1, "one batch step");
    assert!(pair.appends.contains(&bytes(&["c", "d", "e"])), "one append: {:?}", pair.appends);
    pair.handle.shutdown();
}

/// A round's appends leave in the turn that proposes it, before the
/// turn's flush writes its entries to the leader's log: the leader's write
/// and its followers' overlap, and a round waits for one fsync, not for
/// the leader's and then a follower's.
#[test]
fn a_rounds_appends_leave_before_the_leaders_flush() {
    let mut pair = Pair::start(32, Duration::from_secs(3600));
    pair.write("a");
    // Nothing is left to write: the runtime writes again only for b.
    pair.two_turns();
    let wal = pair.wire.wal.clone().unwrap();
    let before = wal.stats().records;
    pair.held_round("b");
    let stamps = pair.wire.stamps.lock().unwrap().clone();
    let b = bytes(&["b"]);
    let Some((at, _)) = stamps.iter().find(|(_, commands)| *commands == b) else {
        panic!("no append with b: {stamps:?}")
    };
    assert_eq!(*at, before, "b's append left before the flush that writes b");
    pair.until("b written", |_| wal.stats().records > before);
    pair.handle.shutdown();
}

/// A batch waits no longer than `max_wait`, nor once it holds `below`
/// proposals, nor past a request's deadline, even if the round in flight
/// never commits.
#[test]
fn a_waiting_batch_leaves_at_its_bound_or_its_size() {
    let (mut pair, _in_flight, b_index) = Pair::round_in_flight(32, Duration::from_millis(30));
    let _ = pair.handle.propose_async(GROUP, "c").unwrap();
    pair.until("c proposed at its bound", |p| p.last_index() > b_index);

    let (mut pair, _in_flight, _) = Pair::round_in_flight(2, Duration::from_secs(3600));
    let _ = pair.handle.propose_async(GROUP, "c").unwrap();
    pair.two_turns();
    pair.held_round("d");
    assert!(pair.appends.contains(&bytes(&["c", "d"])), "{:?}", pair.appends);

    // A request at its deadline stops the wait (and is answered as any
    // proposal past its deadline: its outcome unknown).
    let (mut pair, _in_flight, b_index) = Pair::round_in_flight(32, Duration::from_secs(3600));
    let ticket = pair.handle.with_timeout(Some(Duration::from_millis(50))).propose_async(GROUP, "c").unwrap();
    pair.until("c proposed at its deadline", |p| p.last_index() > b_index);
    assert!(matches!(ticket.wait(), Err(RuntimeError::Timeout)));
}

/// Turned off, each turn's batch is proposed at once, round in flight or
/// not.
#[test]
fn turned_off_every_batch_is_proposed_at_once() {
    let (mut pair, _in_flight, _) = Pair::round_in_flight(0, Duration::from_secs(3600));
    pair.held_round("c");
}

/// A waiting batch is never stranded: when its leader steps down, or the
/// runtime stops, its proposals are answered.
#[test]
fn a_waiting_batch_is_answered_when_its_leader_steps_down_or_the_runtime_stops() {
    let (mut pair, _in_flight, b_index) = Pair::round_in_flight(32, Duration::from_secs(3600));
    let ticket = pair.handle.propose_async(GROUP, "c").unwrap();
    pair.two_turns();
    assert_eq!(pair.last_index(), b_index, "c waits");
    // The peer's election timeout passes and it campaigns: its vote
    // request, of a later term, ends node 1's leadership (node 1 refuses
    // the vote: the peer lacks b).
    let campaign: Vec<Action> = pair.peer.step(Event::Ticks(2001)).unwrap().collect();
    pair.send_to_node_1(campaign);
    let outcome = ticket.wait();
    assert!(matches!(outcome, Err(RuntimeError::NotLeader { .. })), "{outcome:?}");

    let (mut pair, _in_flight, _) = Pair::round_in_flight(32, Duration::from_secs(3600));
    let ticket = pair.handle.propose_async(GROUP, "c").unwrap();
    pair.two_turns();
    pair.handle.shutdown();
    assert!(matches!(ticket.wait(), Err(RuntimeError::ShuttingDown)));
}
