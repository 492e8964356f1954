//! The many-groups runtime (`raft_io::runtime::multi`) against what a user
//! or a peer can hand it (each found by review, red before its fix): a
//! coalescing wait too long for the clock, a transfer submitted after a
//! proposal in the same turn, a peer sending chunks its groups drop to
//! hold the snapshot receive slots, a driver full of waiting requests that
//! took no group administration, and a storage failure in a received
//! message's step that halted its group in silence. The runtime runs over an in-memory
//! wire; its peers are played by the test (a `RaftNode` whose messages are
//! relayed by hand, or hand-made envelopes). Timeouts are hang detectors
//! only.
#![cfg(all(feature = "net", feature = "persistence"))]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::log::shared::SharedWal;
use raft_io::multi::{Envelope, EnvelopeBody, GroupId, HostConfig};
use raft_io::runtime::multi::{GroupTransport, MultiHandle, MultiRuntime, Ticket};
use raft_io::runtime::{RuntimeError, StateMachine, StopReason};
use raft_io::{Action, Error, Event, Membership, Message, MessageBody, RaftConfig, RaftNode, SnapshotChunk};

/// Counts what it applied; a command `block` waits in `apply` until the
/// test opens the gate (the driver thread is stuck meanwhile, so the
/// requests submitted then are all taken by one later turn).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>, Arc<AtomicBool>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
    fn entered(&self) -> bool {
        self.1.load(Ordering::SeqCst)
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
            self.gate.1.store(true, Ordering::SeqCst);
            let mut open = self.gate.0.0.lock().unwrap();
            while !*open {
                open = self.gate.0.1.wait(open).unwrap();
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

/// The runtime's wire: what it sends is kept for the test, what the test
/// queues it receives.
#[derive(Clone, Default)]
struct Wire {
    sent: Arc<Mutex<Vec<Envelope>>>,
    inbox: Arc<Mutex<VecDeque<Envelope>>>,
}

impl GroupTransport for Wire {
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>) {
        self.sent.lock().unwrap().append(envelopes);
    }
    fn try_recv(&mut self) -> Option<Envelope> {
        self.inbox.lock().unwrap().pop_front()
    }
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const GROUP: GroupId = 1;

/// Node 1 (the runtime, hosting GROUP with members [1, 2]) and node 2 (the
/// test's `RaftNode`), as in `tests/multi_coalesce.rs`.
struct Pair {
    handle: MultiHandle<Count>,
    wire: Wire,
    peer: RaftNode,
    _dir: tempfile::TempDir,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Pair {
    fn start(gate: Gate, build: impl FnOnce(MultiRuntime<Count, Wire>) -> MultiRuntime<Count, Wire>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let wal = SharedWal::open(dir.path()).unwrap();
        let wire = Wire::default();
        let config = RaftConfig::new(1, [1, 2]).election_timeout(50, 100).heartbeat_interval(45).check_quorum(false);
        let runtime =
            MultiRuntime::new(HostConfig::new(1), wal, wire.clone(), move |_| Count { n: 0, gate: gate.clone() })
                .group(GROUP, config);
        let handle = build(runtime).start().unwrap();
        let peer = RaftNode::new(RaftConfig::new(2, [1, 2]).election_timeout(1000, 2000).pre_vote(false)).unwrap();
        let mut pair = Pair { handle, wire, peer, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while pair.handle.leader(GROUP) != Some(1) {
            assert!(Instant::now() < deadline, "node 1 never led");
            pair.relay();
            std::thread::sleep(Duration::from_millis(1));
        }
        pair
    }

    /// GROUP's messages the runtime sent so far.
    fn take_sent(&self) -> Vec<Message> {
        let sent = std::mem::take(&mut *self.wire.sent.lock().unwrap());
        sent.into_iter()
            .filter_map(|e| match e.body {
                EnvelopeBody::Raft { group: GROUP, message } => Some(message),
                _ => None,
            })
            .collect()
    }

    /// Relays everything sent so far both ways.
    fn relay(&mut self) {
        for message in self.take_sent() {
            let answers: Vec<Action> = match self.peer.step(Event::Message(message)) {
                Ok(actions) => actions.collect(),
                Err(_) => continue,
            };
            let mut inbox = self.wire.inbox.lock().unwrap();
            for action in answers {
                if let Action::Send { to: 1, message } = action {
                    inbox.push_back(Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: GROUP, message } });
                }
            }
        }
    }

    fn relay_until_applied(&mut self, ticket: Ticket<u64>) -> Result<u64, RuntimeError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ticket = ticket;
        loop {
            self.relay();
            match ticket.try_get() {
                Ok(outcome) => return outcome,
                Err(t) => ticket = t,
            }
            assert!(Instant::now() < deadline, "the write was never answered");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn last_index(&self) -> u64 {
        self.handle.status(GROUP).unwrap().last_index
    }
}

/// `coalesce_proposals(below, Duration::MAX)` ("wait for the round in
/// flight, however long") is accepted by the builder, but the first batch
/// that waits kills the driver: `Waiting::next_due` computes
/// `since + max_wait`, which overflows `Instant` and panics when the
/// driver goes idle. Every request in flight then fails and the runtime is
/// gone.
#[test]
fn a_coalesce_wait_of_duration_max_does_not_kill_the_driver() {
    let mut pair = Pair::start(Gate::default(), |r| r.coalesce_proposals(32, Duration::MAX));
    let a = pair.handle.propose_async(GROUP, "a").unwrap();
    assert_eq!(pair.relay_until_applied(a).unwrap(), 1);
    // "b"'s round stays in flight (its append is not relayed) ...
    let b = pair.handle.propose_async(GROUP, "b").unwrap();
    let before = pair.last_index();
    until("b appended", || pair.last_index() > before);
    // ... so "c" waits behind it, and the driver, with nothing else to do,
    // sleeps until the wait is up: `since + Duration::MAX`.
    let c = pair.handle.propose_async(GROUP, "c").unwrap();
    let turns = pair.handle.stats().turns;
    until("two more turns, or the driver gone", || pair.handle.stats().turns >= turns + 2 || !pair.handle.is_running());
    std::thread::sleep(Duration::from_millis(200));
    // The round commits, and "c" follows it.
    let (b, c) = (pair.relay_until_applied(b), pair.relay_until_applied(c));
    let reason = pair.handle.stop_reason();
    assert!(matches!((&b, &c), (Ok(2), Ok(3))), "b: {b:?}, c: {c:?}; driver stopped: {reason:?}");
}

/// A proposal submitted before a leadership transfer of its group, and
/// taken by the driver in the same turn, is refused with
/// `TransferPending`: `serve_requests` steps the transfer as the request
/// comes, but the turn's proposal batch only after the loop. The
/// transfer's own code says proposals that came before it go first (it
/// proposes a *waiting* batch first, not the turn's batch).
#[test]
fn a_proposal_submitted_before_a_transfer_is_not_refused_by_it() {
    let gate = Gate::default();
    let mut pair = Pair::start(gate.clone(), |r| r.group(10, RaftConfig::single(1)));
    let a = pair.handle.propose_async(GROUP, "a").unwrap();
    assert_eq!(pair.relay_until_applied(a).unwrap(), 1);
    assert_eq!(pair.handle.wait_for_leader(10, Duration::from_secs(20)), Some(1));
    // Stall the driver inside group 10's `apply`.
    let blocked = pair.handle.propose_async(10, "block").unwrap();
    until("the driver stuck in apply", || gate.entered());
    // Then: a proposal to GROUP, and after it a transfer of GROUP.
    let x = pair.handle.propose_async(GROUP, "x").unwrap();
    let h = pair.handle.clone();
    let transfer = std::thread::spawn(move || h.transfer_leadership(GROUP, 2));
    until("both requests queued", || pair.handle.stats().queued_requests == 2);
    gate.open();
    assert_eq!(blocked.wait().unwrap(), 1);
    let outcome = pair.relay_until_applied(x);
    let _ = transfer.join();
    assert!(
        !matches!(&outcome, Err(RuntimeError::Refused(e)) if matches!(**e, Error::TransferPending { .. })),
        "a proposal made before the transfer was refused by it: {outcome:?}"
    );
}

/// The receive gate (`max_snapshot_receives`) admits a snapshot chunk
/// before the host looks at it: a chunk from a node that is not a member
/// of the group (or of a stale term: anything the group then drops) opens
/// a receive slot and keeps it open as long as such chunks keep coming.
/// One peer doing so for `max_snapshot_receives` hosted groups (16 by
/// default; 1 here) shuts out every legitimate snapshot: here group 2's
/// leader, node 3, sends a whole snapshot in one chunk, over and over, and
/// it was refused every time. A slot is now kept only for a stream the
/// group's node keeps.
#[test]
fn a_non_member_cannot_hold_the_snapshot_receive_slots() {
    let dir = tempfile::tempdir().unwrap();
    let wal = SharedWal::open(dir.path()).unwrap();
    let wire = Wire::default();
    let gate = Gate::default();
    let handle = MultiRuntime::new(HostConfig::new(1), wal, wire.clone(), move |_| Count { n: 0, gate: gate.clone() })
        .max_snapshot_receives(1)
        .group(1, RaftConfig::new(1, [1, 2]))
        .group(2, RaftConfig::new(1, [1, 3]))
        .start()
        .unwrap();
    // Node 9, a member of neither group, streams "a snapshot" of group 1
    // that never ends.
    let junk = || {
        let body = MessageBody::Snapshot(Box::new(SnapshotChunk {
            offset: 0,
            total_len: 1 << 20,
            data: Bytes::from(vec![0u8; 16]),
            ..Default::default()
        }));
        Envelope {
            from: 9,
            to: 1,
            body: EnvelopeBody::Raft { group: 1, message: Message { from: 9, to: 1, term: 1, body } },
        }
    };
    // Node 3, group 2's leader in term 1000, sends its snapshot at index 5
    // (whole, in one chunk).
    let legit = || {
        let meta = raft_io::SnapshotMeta { index: 5, term: 1000, membership: Membership::new([1, 3], []).unwrap() };
        let data = Bytes::copy_from_slice(&5u64.to_le_bytes());
        let body = MessageBody::Snapshot(Box::new(SnapshotChunk { meta, offset: 0, total_len: 8, data }));
        Envelope {
            from: 3,
            to: 1,
            body: EnvelopeBody::Raft { group: 2, message: Message { from: 3, to: 1, term: 1000, body } },
        }
    };
    wire.inbox.lock().unwrap().push_back(junk());
    until("the junk chunk taken", || handle.stats().envelopes_in >= 1);
    // Rounds of the junk chunk then the leader's, both taken by the driver
    // before the next round: the leader's gets through within a few.
    let mut installed = false;
    for _ in 0..5 {
        let taken = handle.stats().envelopes_in + 2;
        {
            let mut inbox = wire.inbox.lock().unwrap();
            inbox.push_back(junk());
            inbox.push_back(legit());
        }
        until("the round taken", || handle.stats().envelopes_in >= taken);
        if handle.status(2).map(|s| s.commit >= 5).unwrap_or(false) {
            installed = true;
            break;
        }
    }
    let stats = handle.stats();
    handle.shutdown();
    assert!(
        installed,
        "group 2 never got its leader's snapshot: refused {} chunks, received {}",
        stats.snapshot_chunks_refused, stats.snapshot_chunks_received
    );
}

/// Chunk `[offset, offset + 8)` of a 24-byte snapshot at index 5 of
/// `group`, from its leader `from` (term 1000, members [1, from]).
fn chunk_of(group: GroupId, from: u64, offset: u64) -> Envelope {
    let meta = raft_io::SnapshotMeta { index: 5, term: 1000, membership: Membership::new([1, from], []).unwrap() };
    let data = Bytes::from(vec![offset as u8; 8]);
    let body = MessageBody::Snapshot(Box::new(SnapshotChunk { meta, offset, total_len: 24, data }));
    Envelope { from, to: 1, body: EnvelopeBody::Raft { group, message: Message { from, to: 1, term: 1000, body } } }
}

/// A receive slot closed because the node did not keep its stream does not
/// shut out the node's leader (found by review of the fix above, twice):
/// the gate held back the leader's first chunk (the one slot was busy),
/// the other stream's last chunk freed the slot, the leader's second chunk
/// got it — a chunk of a stream the node never began, which it answers "I
/// hold 0" and does not keep — and the leader's restart from offset 0 was
/// then refused for `snapshot_idle_ticks`: for a leader the node knows as a
/// member, for the leader of a joining node (no configuration yet), and
/// for a lagging node's new leader (its configuration predates it).
fn a_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out(group2: RaftConfig) {
    let dir = tempfile::tempdir().unwrap();
    let wal = SharedWal::open(dir.path()).unwrap();
    let wire = Wire::default();
    let handle = MultiRuntime::new(HostConfig::new(1), wal, wire.clone(), |_| Count { n: 0, gate: Gate::default() })
        .tick_interval(Duration::from_millis(20))
        .max_snapshot_receives(1)
        .group(1, RaftConfig::new(1, [1, 2]).election_timeout(1000, 2000))
        .group(2, group2)
        .start()
        .unwrap();
    // Group 1's leader (node 2) begins its stream: the one slot.
    wire.inbox.lock().unwrap().push_back(chunk_of(1, 2, 0));
    until("group 1's first chunk taken", || handle.stats().envelopes_in >= 1);
    // In one batch: group 2's leader's first chunk (no slot: held back),
    // group 1's other chunks, the last freeing the slot, then group 2's
    // second chunk (of three).
    {
        let mut inbox = wire.inbox.lock().unwrap();
        inbox.push_back(chunk_of(2, 3, 0));
        inbox.push_back(chunk_of(1, 2, 8));
        inbox.push_back(chunk_of(1, 2, 16));
        inbox.push_back(chunk_of(2, 3, 8));
    }
    until("the batch taken", || handle.stats().envelopes_in >= 5);
    assert!(handle.status(1).unwrap().commit >= 5, "group 1 installed its snapshot");
    // Node 1 answered group 2's leader "I hold 0 bytes": the leader resends
    // its stream from the start.
    let taken = handle.stats().envelopes_in + 3;
    {
        let mut inbox = wire.inbox.lock().unwrap();
        for offset in [0, 8, 16] {
            inbox.push_back(chunk_of(2, 3, offset));
        }
    }
    until("the resend taken", || handle.stats().envelopes_in >= taken);
    let installed = handle.status(2).unwrap().commit >= 5;
    let stats = handle.stats();
    handle.shutdown();
    assert!(
        installed,
        "group 2's leader, the only stream left, was refused {} chunks: its restart from offset 0 was held back",
        stats.snapshot_chunks_refused
    );
}

#[test]
fn a_known_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out() {
    a_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out(
        RaftConfig::new(1, [1, 3]).election_timeout(1000, 2000),
    );
}

#[test]
fn a_joining_nodes_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out() {
    a_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out(RaftConfig::joining(1));
}

#[test]
fn a_lagging_nodes_new_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out() {
    a_leader_whose_first_chunk_the_gate_held_back_is_not_shut_out(
        RaftConfig::new(1, [1, 4]).election_timeout(1000, 2000),
    );
}

/// Group administration is not starved by the requests it would resolve:
/// a driver holding `max_pending` requests took nothing more from the
/// queue, group creation and removal included, so requests waiting
/// without a deadline on a group that lost its quorum could not be freed
/// by removing that group (nor could another group be created).
#[test]
fn group_administration_is_served_while_the_driver_holds_max_pending_requests() {
    let mut pair = Pair::start(Gate::default(), |r| r.max_pending(4));
    let a = pair.handle.propose_async(GROUP, "a").unwrap();
    assert_eq!(pair.relay_until_applied(a).unwrap(), 1);
    // Node 2 goes silent (nothing is relayed any more): GROUP has lost its
    // quorum. Four proposals with no deadline fill the driver.
    let patient = pair.handle.with_timeout(None);
    let waiting: Vec<Ticket<u64>> = (0..4).map(|i| patient.propose_async(GROUP, format!("w{i}")).unwrap()).collect();
    until("the driver holds max_pending requests", || {
        let stats = pair.handle.stats();
        stats.queued_requests == 0 && stats.held_requests >= 4
    });
    // The deadline below is a hang detector: the driver took none of these.
    let admin = pair.handle.with_timeout(Some(Duration::from_secs(10)));
    let created = admin.create_group(5, RaftConfig::single(1));
    assert!(created.is_ok(), "a group created while the driver is full: {created:?}");
    assert!(admin.groups().unwrap().contains(&5));
    let removed = admin.remove_group(GROUP);
    assert!(removed.is_ok(), "the group without quorum removed while the driver is full: {removed:?}");
    for ticket in waiting {
        // `remove_group`'s documented errors: `UnknownGroup`, or for a
        // proposal already appended `OutcomeUnknown` (it may commit on the
        // other replicas).
        let outcome =
            ticket.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("a request never answered"));
        assert!(
            matches!(outcome, Err(RuntimeError::UnknownGroup(GROUP) | RuntimeError::OutcomeUnknown)),
            "{outcome:?}"
        );
    }
    assert!(pair.handle.is_running());
}

/// A storage failure in the step of a received message halts the runtime
/// at once, as one in any other step does (`RuntimeError::Halted`: "the
/// runtime stopped"). The host swallowed the step's error: the group's
/// node halted in silence, the runtime ran on with it (a tick skips a
/// halted node), and the next request to the group, whenever it came,
/// halted the whole runtime by surprise. Here the leader of a group reads
/// its snapshot file, damaged on disk, to stream it to a joining learner,
/// in the step of the learner's answer (a read failure: the shared WAL
/// itself stays up, so no flush fails either).
#[test]
fn a_storage_failure_in_a_received_messages_step_halts_the_runtime_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let wal = SharedWal::open(dir.path()).unwrap();
    let wire = Wire::default();
    let handle = MultiRuntime::new(HostConfig::new(1), wal, wire.clone(), |_| Count { n: 0, gate: Gate::default() })
        .group(GROUP, RaftConfig::single(1).snapshot_entries(2))
        .group(2, RaftConfig::single(1))
        .start()
        .unwrap();
    assert_eq!(handle.wait_for_leader(GROUP, Duration::from_secs(20)), Some(1));
    for command in ["a", "b", "c"] {
        handle.propose(GROUP, command).unwrap();
    }
    // The snapshot taken at the fourth apply (the leader's no-op, a, b, c)
    // is in its file, the group's latest; the file is damaged (same
    // length, other bytes).
    until("the snapshot at index 4 taken", || handle.status(GROUP).unwrap().snapshot_index == 4);
    let snapshots = dir.path().join("groups").join(format!("{GROUP:020}"));
    let snap_file = || {
        let files = std::fs::read_dir(&snapshots).ok()?.flatten().map(|e| e.path());
        files.filter(|p| p.extension().is_some_and(|x| x == "snap")).max()
    };
    until("the snapshot written", || snap_file().is_some());
    let file = snap_file().unwrap();
    let damaged: Vec<u8> = std::fs::read(&file).unwrap().into_iter().map(|b| !b).collect();
    std::fs::write(&file, damaged).unwrap();
    // Node 2 joins as a learner: it knows nothing, so its first answer
    // makes the leader stream the snapshot.
    handle.change_membership(GROUP, raft_io::MembershipChange::AddLearner(2)).unwrap();
    let mut learner = RaftNode::new(RaftConfig::joining(2)).unwrap();
    let mut answers = 0;
    until("the learner answered", || {
        let sent = std::mem::take(&mut *wire.sent.lock().unwrap());
        for envelope in sent {
            let EnvelopeBody::Raft { group: GROUP, message } = envelope.body else { continue };
            let Ok(actions) = learner.step(Event::Message(message)) else { continue };
            let mut inbox = wire.inbox.lock().unwrap();
            for action in actions {
                if let Action::Send { to: 1, message } = action {
                    inbox.push_back(Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: GROUP, message } });
                    answers += 1;
                }
            }
        }
        answers > 0
    });
    // Once the driver has taken the answer and turned twice more, the
    // runtime has stopped and says why; nothing else was asked of it.
    until("the answer taken", || handle.stats().envelopes_in >= answers || !handle.is_running());
    let turns = handle.stats().turns;
    until("two more turns, or the runtime stopped", || handle.stats().turns >= turns + 2 || !handle.is_running());
    let reason = handle.stop_reason();
    let status = handle.status(2);
    handle.shutdown();
    assert!(
        matches!(&reason, Some(StopReason::Halted(e)) if matches!(**e, Error::Storage(_))),
        "the leader's node halted on its damaged snapshot and the runtime ran on: stop reason {reason:?}, \
         another group's status {status:?}"
    );
}

/// Requests whose callers gave up (a timeout far shorter than a tick, the
/// tickets dropped at once) leave the driver's maps only at its next tick
/// (`Pending::expire`), yet they cannot pile up between ticks: the driver
/// takes a request only into the room `max_pending` leaves, counting every
/// request it took since the last tick as held, and the queue in front of
/// it holds `max_pending` at most (`Busy` beyond). Here a group without
/// quorum (node 2 silent), whose proposals never commit, is flooded.
#[test]
fn a_flood_of_given_up_requests_is_held_within_max_pending() {
    const MAX: u64 = 16;
    let mut pair = Pair::start(Gate::default(), |r| r.max_pending(MAX as usize));
    let a = pair.handle.propose_async(GROUP, "a").unwrap();
    assert_eq!(pair.relay_until_applied(a).unwrap(), 1);
    let hasty = pair.handle.with_timeout(Some(Duration::from_nanos(1)));
    let (mut taken, mut busy) = (0, 0);
    for i in 0..5_000 {
        match hasty.propose_async(GROUP, format!("f{i}")) {
            Ok(ticket) => {
                taken += 1;
                drop(ticket);
            }
            Err(RuntimeError::Busy) => busy += 1,
            Err(e) => panic!("{e:?}"),
        }
        let stats = pair.handle.stats();
        // `held_requests` bounds from above what the driver's maps hold.
        assert!(stats.held_requests <= MAX && stats.queued_requests <= MAX, "{stats:?}");
    }
    assert!(taken > 0 && taken + busy == 5_000);
    // The ticks sweep them all (each answered `Timeout`; no one listens).
    until("the given-up requests swept", || {
        let stats = pair.handle.stats();
        stats.held_requests == 0 && stats.queued_requests == 0
    });
    assert!(pair.handle.is_running());
}
