//! The runtime on in-process parts (MemoryLog, MemoryTransport): the
//! generic transport path, and a state machine that panics.

use std::time::Duration;

use bytes::Bytes;

use super::{RaftHandle, Runtime, RuntimeError, StateMachine, StopReason};
use crate::transport::MemoryTransport;
use crate::{RaftConfig, RaftNode};

/// Sums command lengths; a command `panic` panics (a buggy application).
#[derive(Default)]
struct Sum(u64);

impl StateMachine for Sum {
    type Output = u64;
    fn apply(&mut self, _index: u64, command: &Bytes) -> u64 {
        assert!(&command[..] != b"panic", "the application panicked");
        self.0 += command.len() as u64;
        self.0
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_be_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
    }
}

fn memory_cluster() -> Vec<RaftHandle<Sum>> {
    let ids = [1, 2, 3];
    MemoryTransport::cluster(ids)
        .into_iter()
        .zip(ids)
        .map(|(t, id)| {
            // Elections after 100-200 ms of silence: not on a CI hiccup.
            let node = RaftNode::new(RaftConfig::new(id, ids).seed(id).election_timeout(50, 100)).unwrap();
            Runtime::new(node, t, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap()
        })
        .collect()
}

fn leader(handles: &[RaftHandle<Sum>]) -> RaftHandle<Sum> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(h) = handles.iter().find(|h| h.is_leader()) {
            return h.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A read through `h`, sent again while it fails with a retryable error:
/// a follower that has not heard from the new leader yet (the commits above
/// needed only one follower) answers `NotLeader` with no leader to name.
fn read_when_it_knows_the_leader(h: &RaftHandle<Sum>) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match h.read(|s: &Sum| s.0) {
            Ok(v) => return v,
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("node {}: {e}", h.id()),
        }
    }
}

/// Parks `h`'s driver inside a read query (so that requests submitted
/// meanwhile queue up and are taken in one turn) until the gate is sent
/// to; the reader's thread returns the read.
#[allow(clippy::type_complexity)]
fn park_driver(
    h: &RaftHandle<Sum>,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<Result<u64, RuntimeError>>) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let h = h.clone();
        std::thread::spawn(move || {
            h.read(move |s: &Sum| {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
                s.0
            })
        })
    };
    started.recv().unwrap();
    (gate, reader)
}

#[test]
fn a_polled_in_memory_transport_replicates_and_reads() {
    let handles = memory_cluster();
    let leader = leader(&handles);
    assert_eq!(leader.propose("abc").unwrap(), 3);
    assert_eq!(leader.propose("de").unwrap(), 5);
    for h in &handles {
        assert_eq!(read_when_it_knows_the_leader(h), 5, "node {}", h.id());
    }
    assert!(matches!(leader.propose(""), Err(RuntimeError::Refused(_))));
    for h in &handles {
        h.shutdown();
    }
}

#[test]
fn a_panicking_state_machine_stops_the_runtime_without_stranding_requests() {
    let handles = memory_cluster();
    let leader = leader(&handles).with_timeout(None);
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let h = leader.clone();
            std::thread::spawn(move || h.propose("x"))
        })
        .collect();
    // The leader's driver panics applying this; every request it held is
    // answered, and later ones are refused. This one was appended (and
    // committed: it was being applied): its outcome is unknown to the
    // caller, never "not appended".
    let result = leader.propose("panic");
    assert!(matches!(result, Err(RuntimeError::OutcomeUnknown)), "{result:?}");
    for w in waiting {
        let r = w.join().unwrap();
        assert!(matches!(r, Ok(_) | Err(RuntimeError::ShuttingDown | RuntimeError::OutcomeUnknown)), "{r:?}");
    }
    leader.shutdown();
    assert!(!leader.is_running());
    assert!(matches!(leader.propose("late"), Err(RuntimeError::ShuttingDown)));
    match leader.stop_reason() {
        Some(StopReason::Panicked(msg)) => assert!(msg.contains("the application panicked"), "{msg}"),
        other => panic!("expected a panic as the stop reason, got {other:?}"),
    }
    for h in &handles {
        h.shutdown();
    }
}

#[test]
fn handles_are_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<RaftHandle<Sum>>();
    check::<super::Waker>();
    check::<RuntimeError>();
}

#[test]
fn a_bad_command_is_refused_alone_not_with_its_batch() {
    let node = RaftNode::new(RaftConfig::single(1).max_message_bytes(64)).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let handle = Runtime::new(node, transport, Sum::default()).start().unwrap();
    let h = leader(std::slice::from_ref(&handle)).with_timeout(None);
    // Park the driver inside a read query while two proposals queue up, so
    // that it takes both in one turn.
    let (gate, reader) = park_driver(&h);
    let good = {
        let h = h.clone();
        std::thread::spawn(move || h.propose("ok"))
    };
    let bad = {
        let h = h.clone();
        std::thread::spawn(move || h.propose(vec![7u8; 100]))
    };
    while h.queued_requests() < 2 {
        std::thread::yield_now();
    }
    gate.send(()).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), 0);
    let bad = bad.join().unwrap();
    assert!(
        matches!(&bad, Err(RuntimeError::Refused(e)) if matches!(**e, crate::Error::ProposalTooLarge { size: 100, max: 64 })),
        "{bad:?}"
    );
    assert_eq!(good.join().unwrap().unwrap(), 2, "the valid command of the same turn is committed and applied");
    h.shutdown();
}

/// A proposal taken in the same turn as a leadership transfer, and
/// submitted before it, is proposed before the transfer is stepped (once it
/// is, the leader refuses proposals): it is not refused with
/// `TransferPending`.
#[test]
fn a_proposal_submitted_before_a_transfer_in_the_same_turn_goes_first() {
    let handles = memory_cluster();
    let h = leader(&handles).with_timeout(None);
    let to = handles.iter().map(|x| x.id()).find(|&id| id != h.id()).unwrap();
    // Park the driver inside a read query while the two requests queue up.
    let (gate, reader) = park_driver(&h);
    let proposal = {
        let h = h.clone();
        std::thread::spawn(move || h.propose("before the transfer"))
    };
    while h.queued_requests() < 1 {
        std::thread::yield_now();
    }
    let transfer = {
        let h = h.clone();
        std::thread::spawn(move || h.transfer_leadership(to))
    };
    while h.queued_requests() < 2 {
        std::thread::yield_now();
    }
    gate.send(()).unwrap();
    reader.join().unwrap().unwrap();
    let proposed = proposal.join().unwrap();
    assert!(
        !matches!(&proposed, Err(RuntimeError::Refused(e)) if matches!(**e, crate::Error::TransferPending { .. })),
        "a proposal made before the transfer was refused by it: {proposed:?}"
    );
    let _ = transfer.join().unwrap();
    for h in handles {
        h.shutdown();
    }
}

/// A state machine that reports when the runtime drops it.
struct Reports(std::sync::mpsc::Sender<()>);

impl StateMachine for Reports {
    type Output = ();
    fn apply(&mut self, _index: u64, _command: &Bytes) {}
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _data: &Bytes) {}
}

impl Drop for Reports {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn dropping_the_last_handle_stops_the_runtime() {
    let (dropped_tx, dropped) = std::sync::mpsc::channel();
    let node = RaftNode::new(RaftConfig::single(1)).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let handle = Runtime::new(node, transport, Reports(dropped_tx)).start().unwrap();
    let clone = handle.with_timeout(None);
    drop(handle);
    assert_eq!(clone.wait_for_leader(Duration::from_secs(60)), Some(1));
    while !clone.is_leader() {
        std::thread::yield_now();
    }
    clone.propose("still running").unwrap();
    assert!(clone.is_running(), "a clone keeps the runtime alive");
    drop(clone);
    // The driver exits and drops the state machine (with the node, its log
    // and the transport). The bound only turns a hang into a failure.
    dropped.recv_timeout(Duration::from_secs(60)).expect("the driver stopped when the last handle was dropped");
}

/// 0.7.0: concurrent large proposals were grouped into one batch larger
/// than a WAL record, the node halted on `InvalidWrite`, and every later
/// caller saw only `ShuttingDown`. The driver now caps a batch at what one
/// step may append (`RaftLog::max_step_bytes`), so every proposal commits.
#[cfg(feature = "persistence")]
#[test]
fn concurrent_large_proposals_never_make_a_batch_the_log_cannot_hold() {
    use crate::log::wal::{WalLog, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    let log = WalLog::open_with(dir.path(), WalOptions::new().max_record_size(1 << 20)).unwrap();
    let config = RaftConfig::single(1).max_message_bytes(256 << 10).max_uncommitted_bytes(1 << 30);
    let node = RaftNode::with_log(config, log).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let handle = Runtime::new(node, transport, Sum::default())
        .tick_interval(Duration::from_millis(2))
        .max_batch_bytes(64 << 20)
        .start()
        .unwrap();
    let leader = leader(std::slice::from_ref(&handle));
    let start = std::sync::Arc::new(std::sync::Barrier::new(24));
    let clients: Vec<_> = (0..24)
        .map(|_| {
            let (h, b) = (leader.clone(), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                b.wait();
                (0..4).map(|_| h.propose(vec![7u8; 200 << 10]).map(drop)).collect::<Vec<_>>()
            })
        })
        .collect();
    for c in clients {
        for result in c.join().unwrap() {
            assert!(result.is_ok(), "{result:?}");
        }
    }
    assert!(handle.is_running(), "the node did not halt");
    assert!(handle.stats().max_batch > 1, "proposals were grouped: the cap was exercised");
    handle.shutdown();
}

#[test]
fn a_shut_down_runtime_says_so() {
    let handles = memory_cluster();
    assert!(handles.iter().all(|h| h.stop_reason().is_none()));
    for h in &handles {
        h.shutdown();
        assert!(matches!(h.stop_reason(), Some(StopReason::Shutdown)));
        let err = h.propose("x").unwrap_err();
        assert!(err.is_fatal() && !err.is_retryable(), "{err:?}");
    }
}

/// A failed sync halts the node: the runtime stops on its own
/// (`is_running` turns false without a shutdown) and says why (`Halted`, a
/// fatal cause). The proposal whose sync failed has an unknown outcome
/// (`a_proposal_whose_sync_failed_has_an_unknown_outcome`).
#[cfg(feature = "persistence")]
#[test]
fn a_storage_failure_stops_the_runtime_and_says_why() {
    use crate::log::wal::{FaultInjector, WalLog, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let log = WalLog::open_with(dir.path(), WalOptions::new().fault_injector(faults.clone())).unwrap();
    let node = RaftNode::with_log(RaftConfig::single(1), log).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let handle = Runtime::new(node, transport, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap();
    let leader = leader(std::slice::from_ref(&handle));
    assert_eq!(leader.propose("ok").unwrap(), 2);
    faults.fail_next_sync();
    let err = leader.propose("lost").unwrap_err();
    assert!(matches!(err, RuntimeError::OutcomeUnknown), "{err:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while handle.is_running() {
        assert!(std::time::Instant::now() < deadline, "the runtime kept running after a halt");
        std::thread::sleep(Duration::from_millis(1));
    }
    match handle.stop_reason() {
        Some(StopReason::Halted(cause)) => assert!(cause.is_fatal(), "{cause}"),
        other => panic!("expected Halted, got {other:?}"),
    }
}

/// A proposal whose own write failed to sync may be in the log all the
/// same (the write landed; recovery decides what survived): its proposer
/// is told the outcome is unknown, never `Halted` ("not appended"), and
/// indeed the command commits once the node restarts on that log.
#[cfg(feature = "persistence")]
#[test]
fn a_proposal_whose_sync_failed_has_an_unknown_outcome() {
    use crate::log::wal::{FaultInjector, WalLog, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    let start = |faults: Option<FaultInjector>| {
        let mut options = WalOptions::new();
        if let Some(faults) = faults {
            options = options.fault_injector(faults);
        }
        let log = WalLog::open_with(dir.path(), options).unwrap();
        let node = RaftNode::with_log(RaftConfig::single(1), log).unwrap();
        let transport = MemoryTransport::cluster([1]).pop().unwrap();
        Runtime::new(node, transport, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap()
    };
    let faults = FaultInjector::new();
    let handle = start(Some(faults.clone()));
    let first = leader(std::slice::from_ref(&handle));
    assert_eq!(first.propose("ok").unwrap(), 2);
    faults.fail_next_sync();
    let err = first.propose("maybe").unwrap_err();
    handle.shutdown();
    drop((first, handle));
    // Did it commit? The restarted node applies what its log recovered.
    let handle = start(None);
    let sum = leader(std::slice::from_ref(&handle)).read(|s: &Sum| s.0).unwrap();
    handle.shutdown();
    if sum == 7 {
        assert!(matches!(err, RuntimeError::OutcomeUnknown), "committed after restart, yet the proposer got {err:?}");
    }
    assert!(err.outcome_unknown(), "{err:?}");
}

#[test]
fn errors_say_whether_to_retry() {
    use crate::error::{CampaignRefusal, Error};
    use std::sync::Arc;
    let retry = [
        Error::NotLeader { leader: Some(2), leader_address: None },
        Error::TransferPending { to: 2 },
        Error::Busy { uncommitted: 1, proposed: 1, limit: 1 },
        Error::ChangeInProgress { index: 3 },
        Error::NotReady,
        Error::CannotCampaign(CampaignRefusal::LeaderLease),
    ];
    for e in retry {
        assert!(e.is_retryable() && !e.is_fatal(), "{e}");
        assert!(RuntimeError::Refused(Arc::new(e)).is_retryable());
    }
    let fatal = [Error::Halted, Error::CorruptLog("x".into())];
    for e in fatal {
        assert!(e.is_fatal() && !e.is_retryable(), "{e}");
    }
    for e in [Error::EmptyProposal, Error::BatchTooLarge { size: 2, max: 1 }, Error::NotMember(1)] {
        assert!(!e.is_fatal() && !e.is_retryable(), "{e}");
    }
    assert!(RuntimeError::LeadershipLost { leader: None }.is_retryable());
    assert!(RuntimeError::OutcomeUnknown.outcome_unknown());
}

/// A runtime on `MemoryTransport` sleeps until a message arrives instead of
/// polling: the transport takes the driver's waker and calls it on every
/// message for its end.
#[test]
fn a_memory_transport_wakes_the_driver() {
    use super::{Transport, Waker};
    use crate::message::{Message, MessageBody};
    use crate::transport::RaftTransport;
    use std::sync::Arc;

    let mut ends = MemoryTransport::cluster([1, 2]);
    let signal = Arc::new(super::requests::Signal::default());
    assert!(Transport::set_waker(&mut ends[1], Waker(Arc::clone(&signal))), "the driver would poll");
    ends[0].send(Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow }).unwrap();
    // Notified already: the wait returns at once (a lost wake-up would
    // wait the whole minute).
    let started = std::time::Instant::now();
    signal.wait(Some(Duration::from_secs(60)));
    assert!(started.elapsed() < Duration::from_secs(60), "the message did not wake the driver");
}

/// An online backup from the leader holds every acknowledged write, and a
/// node restored from it (a new cluster of one) has the same state.
#[test]
fn an_online_backup_holds_every_acknowledged_write_and_restores() {
    let handles = memory_cluster();
    let l = leader(&handles);
    for c in ["a", "bb", "ccc"] {
        l.propose(Bytes::from_static(c.as_bytes())).unwrap();
    }
    let backup = l.backup().unwrap();
    let commands: Vec<_> =
        backup.entries.iter().filter(|e| e.kind == crate::EntryKind::Normal).map(|e| e.data.clone()).collect();
    assert_eq!(commands, ["a", "bb", "ccc"]);
    for h in &handles {
        h.shutdown();
    }
    let mut log = crate::MemoryLog::new();
    let identity = crate::LogIdentity { cluster_id: 2, node_id: 9 };
    crate::recovery::restore(&mut log, identity, &backup, crate::Membership::new([9], []).unwrap()).unwrap();
    let node = RaftNode::with_log(RaftConfig::new(9, [9]).cluster_id(2), log).unwrap();
    let t = MemoryTransport::cluster([9]).remove(0);
    let h = Runtime::new(node, t, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap();
    assert_eq!(h.wait_for_leader(Duration::from_secs(60)), Some(9));
    assert_eq!(h.read(|s| s.0).unwrap(), 6, "the sum of the three commands' lengths");
    assert_eq!(h.propose(Bytes::from_static(b"dddd")).unwrap(), 10);
}

/// A node with nothing committed has nothing to back up, and says so.
#[test]
fn a_backup_of_nothing_committed_is_refused() {
    let node = RaftNode::new(RaftConfig::joining(1)).unwrap();
    let t = MemoryTransport::cluster([1]).remove(0);
    let h = Runtime::new(node, t, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap();
    let e = h.backup().unwrap_err();
    assert!(matches!(e, RuntimeError::Backup(_)), "{e}");
    assert!(!e.is_retryable() && !e.is_fatal() && !e.outcome_unknown());
}

/// A membership change pending when its leader is deposed fails at once,
/// with `LeadershipLost` naming the new leader: its caller (who set no
/// deadline) does not wait for one. Node 1 leads alone and adds node 2,
/// played by the test, which never answers, so the change cannot commit;
/// once the configuration entry reaches node 2, node 2 claims a higher
/// term with a heartbeat. (Check-quorum is off: that is the only way node
/// 1 loses its leadership.) The channel's bound only turns a hang into a
/// failure.
#[test]
fn a_pending_change_fails_when_its_leader_is_deposed_not_at_its_deadline() {
    use crate::message::{Heartbeat, Message, MessageBody};
    use crate::transport::RaftTransport;
    use crate::{EntryKind, MembershipChange};

    let mut ends = MemoryTransport::cluster([1, 2]);
    let mut two = ends.pop().unwrap();
    let one = ends.pop().unwrap();
    let node = RaftNode::new(RaftConfig::single(1).check_quorum(false)).unwrap();
    let handle = Runtime::new(node, one, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap();
    let h = leader(std::slice::from_ref(&handle)).with_timeout(None);
    let (answer_tx, answer) = std::sync::mpsc::channel();
    let caller =
        std::thread::spawn(move || answer_tx.send(h.change_membership(MembershipChange::AddVoter(2))).unwrap());
    // The change is appended and sent: node 2 sees the configuration entry.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let term = loop {
        match two.try_recv() {
            Some(Message { term, body: MessageBody::Append(a), .. })
                if a.entries.iter().any(|e| e.kind == EntryKind::Config) =>
            {
                break term;
            }
            Some(_) => {}
            None => {
                assert!(std::time::Instant::now() < deadline, "the change never reached node 2");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    assert!(matches!(answer.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)), "answered before it could commit");
    let deposing =
        Message { from: 2, to: 1, term: term + 1, body: MessageBody::Heartbeat(Heartbeat { commit: 0, round: 1 }) };
    two.send(deposing).unwrap();
    let result =
        answer.recv_timeout(Duration::from_secs(30)).expect("the change was not failed when its leader was deposed");
    assert!(matches!(result, Err(RuntimeError::LeadershipLost { leader: Some(2) })), "{result:?}");
    caller.join().unwrap();
    handle.shutdown();
}

/// A `Replace` of two voters at once (voter 3 out, node 4 in: through the
/// joint configuration) is answered with the final configuration, once it
/// is committed, not with the joint one when that commits. Nodes 1 and 2
/// make a majority of both halves, so node 4 need not exist.
#[test]
fn a_replace_of_two_voters_is_answered_when_the_final_configuration_commits() {
    use crate::MembershipChange;

    let handles = memory_cluster();
    let l = leader(&handles);
    let other = [1, 2, 3].into_iter().find(|&id| id != l.id()).unwrap();
    let mut voters = vec![l.id(), other, 4];
    voters.sort_unstable();
    let m = l.change_membership(MembershipChange::Replace { voters: voters.clone(), learners: vec![] }).unwrap();
    assert!(!m.is_joint(), "answered with the joint configuration: {m:?}");
    assert_eq!(m.voters(), &voters[..]);
    let status = l.status().unwrap();
    assert_eq!(status.membership, m, "the answer is the configuration in effect");
    for h in &handles {
        h.shutdown();
    }
}

/// A log whose reads fail once `failing` is set (a disk read error of a
/// log that pages its entries), recording every snapshot installed in it.
struct ReadFailing {
    inner: crate::log::MemoryLog,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    installed: std::sync::Arc<std::sync::Mutex<Vec<(u64, Bytes)>>>,
}

impl crate::log::RaftLog for ReadFailing {
    fn identity(&self) -> Option<crate::types::LogIdentity> {
        self.inner.identity()
    }
    fn set_identity(&mut self, identity: crate::types::LogIdentity) -> Result<(), crate::error::StorageError> {
        self.inner.set_identity(identity)
    }
    fn hard_state(&self) -> crate::types::HardState {
        self.inner.hard_state()
    }
    fn set_hard_state(&mut self, state: crate::types::HardState) -> Result<(), crate::error::StorageError> {
        self.inner.set_hard_state(state)
    }
    fn snapshot_meta(&self) -> &crate::types::SnapshotMeta {
        self.inner.snapshot_meta()
    }
    fn last_index(&self) -> u64 {
        self.inner.last_index()
    }
    fn term(&self, index: u64) -> Option<u64> {
        self.inner.term(index)
    }
    fn entries(
        &self,
        lo: u64,
        hi: u64,
        max_bytes: u64,
        out: &mut Vec<crate::types::Entry>,
    ) -> Result<(), crate::error::StorageError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::error::StorageError::Unavailable { index: lo, last: self.last_index() });
        }
        self.inner.entries(lo, hi, max_bytes, out)
    }
    fn append(&mut self, entries: &mut Vec<crate::types::Entry>) -> Result<(), crate::error::StorageError> {
        self.inner.append(entries)
    }
    fn truncate(&mut self, from: u64) -> Result<(), crate::error::StorageError> {
        self.inner.truncate(from)
    }
    fn snapshot_data(&self) -> Result<Bytes, crate::error::StorageError> {
        self.inner.snapshot_data()
    }
    fn install_snapshot(
        &mut self,
        meta: crate::types::SnapshotMeta,
        data: Bytes,
    ) -> Result<(), crate::error::StorageError> {
        self.installed.lock().unwrap().push((meta.index, data.clone()));
        self.inner.install_snapshot(meta, data)
    }
    fn begin_snapshot_receive(
        &mut self,
        meta: &crate::types::SnapshotMeta,
        total_len: u64,
    ) -> Result<(), crate::error::StorageError> {
        self.inner.begin_snapshot_receive(meta, total_len)
    }
    fn receive_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), crate::error::StorageError> {
        self.inner.receive_snapshot_chunk(offset, data)
    }
    fn finish_snapshot_receive(&mut self) -> Result<(), crate::error::StorageError> {
        self.inner.finish_snapshot_receive()
    }
    fn sync(&mut self) -> Result<(), crate::error::StorageError> {
        self.inner.sync()
    }
}

/// Committed commands the driver could not read from the log (a read
/// error of the user's log) halt the runtime, and nothing after them in
/// the step is carried out as if they had been applied: no snapshot is
/// taken of a state machine that missed them (it would be labelled with an
/// index it does not reflect, and installed in the log for good).
#[test]
fn commands_the_driver_could_not_read_are_never_snapshotted_as_applied() {
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let installed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = ReadFailing {
        inner: crate::log::MemoryLog::new(),
        failing: std::sync::Arc::clone(&failing),
        installed: std::sync::Arc::clone(&installed),
    };
    let node = RaftNode::with_log(RaftConfig::single(1).snapshot_entries(1), log).unwrap();
    let transport = MemoryTransport::cluster([1]).pop().unwrap();
    let handle = Runtime::new(node, transport, Sum::default()).tick_interval(Duration::from_millis(2)).start().unwrap();
    let leader = leader(std::slice::from_ref(&handle));
    assert_eq!(leader.propose("a").unwrap(), 1);
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = leader.propose("bb");
    assert!(matches!(outcome, Err(RuntimeError::OutcomeUnknown)), "{outcome:?}");
    handle.shutdown();
    // Every snapshot installed holds the state at its index: the sum of the
    // lengths of the commands through it ("a" at 2, "bb" at 3).
    // (Index 0: the empty log's own, before anything was applied.)
    for (index, data) in installed.lock().unwrap().iter().filter(|(index, _)| *index > 0) {
        let sum = u64::from_be_bytes(data.as_ref().try_into().unwrap());
        let want = match index {
            1 => 0,
            2 => 1,
            _ => 3,
        };
        assert_eq!(sum, want, "the snapshot labelled {index} holds the state of another index");
    }
    assert!(matches!(handle.stop_reason(), Some(StopReason::Halted(_))), "{:?}", handle.stop_reason());
}
