//! The asynchronous storage contract at the node (`docs/PROTOCOL.md` §5.1),
//! driven by hand on a custom `RaftLog` that supports the mode: which
//! messages wait for which writes, how a leader counts itself, what a
//! stalled disk does, and how bad completions are refused.
//!
//! `AsyncMemLog` is also the worked example of a user log in the mode: a
//! `MemoryLog` whose submitted writes become durable only when reported,
//! so a crash keeps exactly the reported ones.

mod common;

use std::collections::{BTreeMap, VecDeque};

use raft_io::{
    Action, AppendEntries, CompletionRefusal, Entry, Error, Event, Index, LogIdentity, MemoryLog, Message, MessageBody,
    NodeId, RaftConfig, RaftLog, RaftNode, Role, SnapshotMeta, StorageError, Submitted, Term, WriteToken, bytes::Bytes,
};

/// A `MemoryLog` in the asynchronous mode: each submitted write is an image
/// of the log, made durable when the node reports it.
#[derive(Debug, Default)]
struct AsyncMemLog {
    live: MemoryLog,
    pending: VecDeque<(u64, MemoryLog)>,
    durable: MemoryLog,
    fail_next: bool,
    instance: u64,
    /// Answers `Submitted::Durable` (synced at once, every earlier write
    /// too) instead of `Pending`.
    at_once: bool,
}

impl AsyncMemLog {
    /// What a crash leaves: the last reported write.
    fn crash(self) -> Self {
        Self { live: self.durable.clone(), durable: self.durable, instance: self.instance + 1, ..Self::default() }
    }
}

impl RaftLog for AsyncMemLog {
    common::forward_log!(live, entries, receive);
    fn sync(&mut self) -> Result<(), StorageError> {
        self.live.sync()?;
        self.pending.clear();
        self.durable = self.live.clone();
        Ok(())
    }
    fn submit(&mut self, token: WriteToken) -> Result<Submitted, StorageError> {
        if self.at_once {
            self.sync()?;
            return Ok(Submitted::Durable);
        }
        let mut image = self.live.clone();
        image.sync()?;
        self.pending.push_back((token.seq(), image));
        Ok(Submitted::Pending)
    }
    fn persisted(&mut self, token: WriteToken) -> Result<(), StorageError> {
        if std::mem::take(&mut self.fail_next) {
            return Err(StorageError::Io { context: "test write".into(), source: std::io::Error::other("disk gone") });
        }
        while self.pending.front().is_some_and(|(seq, _)| *seq <= token.seq()) {
            if let Some((_, image)) = self.pending.pop_front() {
                self.durable = image;
            }
        }
        Ok(())
    }
    fn instance(&self) -> u64 {
        self.instance
    }
}

/// Three nodes in the asynchronous mode, driven by hand: messages are
/// queued, write completions are queued per node and reported on demand.
struct Harness {
    nodes: BTreeMap<NodeId, RaftNode<AsyncMemLog>>,
    inbox: VecDeque<Message>,
    writes: BTreeMap<NodeId, Vec<WriteToken>>,
    applied: BTreeMap<NodeId, Vec<Index>>,
}

fn config(id: NodeId) -> RaftConfig {
    RaftConfig::new(id, [1, 2, 3]).election_timeout(10, 20).heartbeat_interval(3).seed(7).async_storage(true)
}

impl Harness {
    fn new() -> Self {
        let nodes = (1..=3).map(|id| (id, RaftNode::with_log(config(id), AsyncMemLog::default()).unwrap())).collect();
        Self { nodes, inbox: VecDeque::new(), writes: BTreeMap::new(), applied: BTreeMap::new() }
    }

    fn step(&mut self, id: NodeId, event: Event) -> Result<(), Error> {
        let node = self.nodes.get_mut(&id).unwrap();
        let actions: Vec<Action> = node.step(event)?.collect();
        for a in actions {
            match a {
                Action::Send { message, .. } => self.inbox.push_back(message),
                Action::WriteSubmitted { token } => self.writes.entry(id).or_default().push(token),
                Action::Apply { index, .. } => self.applied.entry(id).or_default().push(index),
                _ => {}
            }
        }
        Ok(())
    }

    /// Reports node `id`'s latest write (covering every earlier one).
    fn complete(&mut self, id: NodeId) {
        if let Some(token) = self.writes.get_mut(&id).and_then(|w| w.drain(..).next_back()) {
            self.step(id, Event::Persisted(token)).unwrap();
        }
    }

    /// Delivers every queued message (and whatever they cause), completing
    /// writes of the nodes in `disks_ok` after each delivery.
    fn settle(&mut self, disks_ok: &[NodeId]) {
        for _ in 0..10_000 {
            for &id in disks_ok {
                self.complete(id);
            }
            let Some(m) = self.inbox.pop_front() else { return };
            if self.nodes.contains_key(&m.to) {
                self.step(m.to, Event::Message(m)).unwrap();
            }
        }
        panic!("did not settle");
    }

    fn sent(&self, from: NodeId) -> Vec<&'static str> {
        self.inbox.iter().filter(|m| m.from == from).map(|m| m.body.name()).collect()
    }

    fn elect_1(&mut self) {
        self.step(1, Event::Campaign).unwrap();
        self.settle(&[1, 2, 3]);
        assert!(self.nodes[&1].is_leader());
        self.settle(&[1, 2, 3]);
    }
}

#[test]
fn vote_requests_and_grants_wait_for_the_vote_to_be_durable() {
    let mut h = Harness::new();
    h.step(1, Event::Campaign).unwrap();
    // Pre-votes promise nothing: they leave at once.
    assert!(h.sent(1).iter().all(|k| *k == "PreVote"), "{:?}", h.sent(1));
    h.settle(&[2, 3]); // node 1's disk does not report
    assert_eq!(h.nodes[&1].role(), Role::Candidate);
    assert!(h.inbox.is_empty(), "the vote requests wait for the candidate's own vote to be durable");
    h.complete(1);
    assert_eq!(h.sent(1), vec!["Vote", "Vote"]);
    // Node 2 grants, but only once its vote is durable.
    let m = h.inbox.pop_front().unwrap();
    h.step(2, Event::Message(m)).unwrap();
    assert!(h.sent(2).is_empty(), "a vote grant waits for the vote to be durable");
    assert_eq!(h.nodes[&2].metrics().messages_held, 1);
    h.complete(2);
    assert_eq!(h.sent(2), vec!["VoteResponse"]);
}

#[test]
fn a_leader_replicates_before_its_own_write_and_commits_with_a_quorum_of_others() {
    let mut h = Harness::new();
    h.elect_1();
    let before = h.nodes[&1].commit_index();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    // The appends left in the proposal's step, before the leader's write.
    assert_eq!(h.sent(1), vec!["Append", "Append"]);
    assert_eq!(h.writes[&1].len(), 1);
    // Followers write and acknowledge; the leader's disk stays silent.
    h.settle(&[2, 3]);
    let leader = &h.nodes[&1];
    assert_eq!(leader.commit_index(), before + 1, "committed by the two followers");
    assert_eq!(leader.last_applied(), before, "applied only once durable here too");
    h.complete(1);
    assert_eq!(h.nodes[&1].last_applied(), before + 1);
}

#[test]
fn a_leader_does_not_count_itself_before_its_write_is_durable() {
    let mut h = Harness::new();
    h.elect_1();
    let before = h.nodes[&1].commit_index();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    // Only node 2 writes; the leader and node 3 stay silent.
    h.settle(&[2]);
    assert_eq!(h.nodes[&1].commit_index(), before, "one durable copy of three is no quorum");
    h.complete(1);
    assert_eq!(h.nodes[&1].commit_index(), before + 1, "the leader's own durable copy makes two");
}

#[test]
fn an_acknowledgement_waits_for_the_entries_it_promises() {
    let mut h = Harness::new();
    h.elect_1();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    let m = h.inbox.pop_front().unwrap();
    let to = m.to;
    h.step(to, Event::Message(m)).unwrap();
    assert!(h.sent(to).is_empty(), "no AppendResponse before the follower's write is durable");
    h.complete(to);
    assert_eq!(h.sent(to), vec!["AppendResponse"]);
}

#[test]
fn a_crash_loses_unreported_writes_and_nothing_acknowledged() {
    let mut h = Harness::new();
    h.elect_1();
    let last = h.nodes[&2].last_index();
    h.step(1, Event::Propose(Bytes::from_static(b"lost"))).unwrap();
    let m = h.inbox.iter().position(|m| m.to == 2).map(|k| h.inbox.remove(k).unwrap()).unwrap();
    h.step(2, Event::Message(m)).unwrap();
    assert_eq!(h.nodes[&2].last_index(), last + 1);
    // Node 2 crashes before its write is reported: the entry is gone, and
    // it never acknowledged it.
    let node = h.nodes.remove(&2).unwrap();
    let log = node.into_log().crash();
    assert_eq!(log.last_index(), last);
    assert!(h.sent(2).is_empty());
    let stale = h.writes.remove(&2).unwrap_or_default();
    let restarted = RaftNode::with_log(config(2), log).unwrap();
    h.nodes.insert(2, restarted);
    // A completion from before the restart is refused and changes nothing.
    for token in stale {
        let err = h.step(2, Event::Persisted(token)).unwrap_err();
        assert!(matches!(err, Error::BadCompletion { reason: CompletionRefusal::OtherEpoch, .. }), "{err}");
    }
    assert_eq!(h.nodes[&2].last_index(), last);
}

#[test]
fn bad_completions_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    h.elect_1();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    let token = *h.writes[&1].last().unwrap();
    let status = format!("{:?}", h.nodes[&1].status());
    let never = WriteToken::new(token.epoch(), token.seq() + 5);
    let refused = |h: &mut Harness, t: WriteToken| match h.step(1, Event::Persisted(t)) {
        Err(Error::BadCompletion { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused(&mut h, never), CompletionRefusal::NotSubmitted);
    assert_eq!(refused(&mut h, WriteToken::new(token.epoch(), 0)), CompletionRefusal::NotSubmitted);
    assert_eq!(refused(&mut h, WriteToken::new(token.epoch() ^ 1, token.seq())), CompletionRefusal::OtherEpoch);
    assert_eq!(format!("{:?}", h.nodes[&1].status()), status, "refusals change nothing");
    h.step(1, Event::Persisted(token)).unwrap();
    assert_eq!(refused(&mut h, token), CompletionRefusal::AlreadyReported);
    let earlier = WriteToken::new(token.epoch(), token.seq() - 1);
    assert_eq!(refused(&mut h, earlier), CompletionRefusal::AlreadyReported, "covered by a later report");

    // A node in the synchronous mode issues no tokens.
    let mut sync = RaftNode::new(RaftConfig::single(1)).unwrap();
    let err = sync.step(Event::Persisted(token)).unwrap_err();
    assert!(matches!(err, Error::BadCompletion { reason: CompletionRefusal::NotAsync, .. }));
}

#[test]
fn a_failed_write_halts_the_node() {
    let mut h = Harness::new();
    h.elect_1();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    let token = *h.writes[&1].last().unwrap();
    h.nodes.get_mut(&1).unwrap().log_mut().fail_next = true;
    let err = h.step(1, Event::Persisted(token)).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    assert!(matches!(h.step(1, Event::Tick), Err(Error::Halted)));
}

#[test]
fn a_leader_whose_disk_stalls_steps_down_and_a_stalled_follower_stops_acknowledging() {
    let mut h = Harness::new();
    h.elect_1();
    h.step(1, Event::Propose(Bytes::from_static(b"x"))).unwrap();
    // Node 1's disk never reports. It keeps leading for an election timeout.
    for _ in 0..20 {
        h.step(1, Event::Tick).unwrap();
        h.settle(&[2, 3]);
        assert!(h.nodes[&1].is_leader());
    }
    h.step(1, Event::Tick).unwrap();
    assert!(!h.nodes[&1].is_leader(), "more than an election timeout with writes pending: step down");

    // A follower with a stalled disk: its acknowledgements stop.
    let mut h = Harness::new();
    h.elect_1();
    let matched = |h: &Harness| h.nodes[&1].status().peers.iter().find(|p| p.id == 3).map(|p| p.matched).unwrap();
    let before = matched(&h);
    for k in 0..5 {
        h.step(1, Event::Propose(Bytes::from(format!("c{k}")))).unwrap();
        h.settle(&[1, 2]);
    }
    assert_eq!(matched(&h), before, "node 3 acknowledged nothing while its disk was stalled");
    assert_eq!(h.nodes[&1].commit_index(), h.nodes[&1].last_index(), "nodes 1 and 2 carried on");
    h.complete(3);
    h.settle(&[1, 2, 3]);
    assert_eq!(matched(&h), h.nodes[&1].last_index(), "it catches up once its disk reports");
}

/// A single voter wins its election at once; it must not lead before its
/// vote is durable, or after a crash it could lead the same term again
/// with another log (found by the soak: Log Matching, seed 55434).
#[test]
fn a_lone_voter_takes_office_only_once_its_vote_is_durable() {
    let config = RaftConfig::single(1).async_storage(true);
    let mut node = RaftNode::with_log(config.clone(), AsyncMemLog::default()).unwrap();
    let actions: Vec<Action> = node.step(Event::Campaign).unwrap().collect();
    assert_eq!(node.role(), Role::Candidate, "won, but its vote is not durable yet");
    let token = actions
        .iter()
        .find_map(|a| match a {
            Action::WriteSubmitted { token } => Some(*token),
            _ => None,
        })
        .unwrap();
    // A crash now: it comes back in the old term, having led nothing.
    let crashed = RaftNode::with_log(config.clone(), AsyncMemLog::default().crash()).unwrap();
    assert_eq!(crashed.term(), 0);
    node.step(Event::Persisted(token)).unwrap().for_each(drop);
    assert!(node.is_leader());
    assert_eq!(node.log().durable.hard_state().vote, Some(1));

    // A log that makes writes durable at `submit` (the default): at once.
    let mut node = RaftNode::new(config).unwrap();
    node.step(Event::Campaign).unwrap().for_each(drop);
    assert!(node.is_leader());
}

/// A new node's identity and bootstrap configuration are not synced on
/// their own in the asynchronous mode: its first write carries them
/// (PROTOCOL.md §5.1, "A new node's initialization"). A crash before that
/// write leaves an empty log, which the restart initializes again.
#[test]
fn a_new_nodes_initialization_rides_in_its_first_write() {
    let h = Harness::new();
    let log = h.nodes[&2].log();
    assert_eq!(log.durable.identity(), None, "no sync of its own at creation");
    assert_eq!(log.live.identity(), Some(LogIdentity { cluster_id: 0, node_id: 2 }));

    // A crash before the first write: an empty log, initialized again.
    let again = RaftNode::with_log(config(2), AsyncMemLog::default().crash()).unwrap();
    assert_eq!(again.log().live.identity(), Some(LogIdentity { cluster_id: 0, node_id: 2 }));
    assert_eq!(again.membership().voters().len(), 3);

    // Its first write (the vote it grants) carries the initialization.
    let mut h = h;
    h.step(1, Event::Campaign).unwrap();
    h.settle(&[1, 2, 3]);
    let durable = &h.nodes[&2].log().durable;
    assert_eq!(durable.identity(), Some(LogIdentity { cluster_id: 0, node_id: 2 }));
    assert_eq!(durable.snapshot_meta().membership.voters().len(), 3);
    assert_eq!(durable.hard_state().vote, Some(1));
    let restarted = RaftNode::with_log(config(2), h.nodes.remove(&2).unwrap().into_log().crash()).unwrap();
    assert_eq!(restarted.term(), 1);
}

/// A follower's write still in flight when a new leader's conflicting
/// entries truncate its log carries the replaced entries, not the new ones:
/// its completion must not make the new entries durable (they are applied,
/// and acknowledged, only once the write that holds them is reported).
#[test]
fn a_write_from_before_a_truncation_makes_none_of_the_replacing_entries_durable() {
    let mut h = Harness::new();
    h.elect_1();
    let base = h.nodes[&2].last_index();
    assert_eq!(h.nodes[&2].log().term(base), Some(1));
    // Leader 1 (term 1) sends two entries; node 2 appends them, its write
    // stays in flight.
    h.step(1, Event::ProposeBatch(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")])).unwrap();
    let m = h.inbox.iter().position(|m| m.to == 2).map(|k| h.inbox.remove(k).unwrap()).unwrap();
    h.inbox.clear();
    h.step(2, Event::Message(m)).unwrap();
    assert_eq!(h.nodes[&2].last_index(), base + 2);
    let old_write = h.writes[&2][0];
    // Node 3, leader of term 2, overwrites them with one entry it committed.
    let replacing = Entry::normal(2, base + 1, Bytes::from_static(b"x"));
    let append =
        AppendEntries { prev_log_index: base, prev_log_term: 1, leader_commit: base + 1, entries: vec![replacing] };
    h.step(2, Event::Message(Message { from: 3, to: 2, term: 2, body: MessageBody::Append(append) })).unwrap();
    assert_eq!(h.nodes[&2].last_index(), base + 1);
    assert_eq!(h.nodes[&2].log().term(base + 1), Some(2));
    assert_eq!(h.nodes[&2].commit_index(), base + 1);
    let new_write = *h.writes[&2].last().unwrap();
    assert!(new_write.seq() > old_write.seq());
    let applied = |h: &Harness| h.applied.get(&2).is_some_and(|a| a.contains(&(base + 1)));
    assert!(!applied(&h));
    // The old write completes: it made the replaced entries durable, not
    // the term-2 entry.
    h.step(2, Event::Persisted(old_write)).unwrap();
    assert!(!applied(&h), "the term-2 entry was applied before the write holding it was durable");
    assert!(
        !h.inbox.iter().any(|m| m.to == 3 && m.body.name() == "AppendResponse"),
        "node 2 acknowledged the term-2 entry before the write holding it was durable"
    );
    h.step(2, Event::Persisted(new_write)).unwrap();
    assert!(applied(&h), "applied once its own write is durable");
    assert!(h.inbox.iter().any(|m| m.to == 3 && m.body.name() == "AppendResponse"));
}

/// A snapshot received from a leader is handed to the state machine only
/// once the write installing it is durable (§5.1): in the step that
/// installs it the node emits no `RestoreSnapshot` and counts nothing
/// applied, so a crash then leaves a state machine no further than its log.
#[test]
fn a_received_snapshot_is_restored_once_the_write_installing_it_is_durable() {
    use raft_io::{Membership, SnapshotChunk};
    let mut h = Harness::new();
    h.elect_1();
    let before = h.nodes[&2].last_applied();
    // Leader 3 of term 2 streams node 2 a snapshot past everything it holds.
    let meta = SnapshotMeta { index: before + 5, term: 2, membership: Membership::new([1, 2, 3], []).unwrap() };
    let data = Bytes::from_static(b"state");
    let chunk = SnapshotChunk { meta: meta.clone(), total_len: data.len() as u64, offset: 0, data };
    let message = Message { from: 3, to: 2, term: 2, body: MessageBody::Snapshot(Box::new(chunk)) };
    let actions: Vec<Action> = h.nodes.get_mut(&2).unwrap().step(Event::Message(message)).unwrap().collect();
    let token = actions.iter().find_map(|a| match a {
        Action::WriteSubmitted { token } => Some(*token),
        _ => None,
    });
    assert!(!actions.iter().any(|a| matches!(a, Action::RestoreSnapshot { .. })), "restored before durable");
    assert_eq!(h.nodes[&2].last_applied(), before, "nothing counted applied before the write is durable");
    assert_eq!(h.nodes[&2].log().snapshot_meta().index, meta.index, "installed in the log");
    // A crash now: the log never had the snapshot, nor the state machine.
    assert_eq!(h.nodes[&2].log().durable.snapshot_meta().index, 0);
    // The write completes: the snapshot is restored, then counted.
    let token = token.expect("the install is a write in flight");
    let actions: Vec<Action> = h.nodes.get_mut(&2).unwrap().step(Event::Persisted(token)).unwrap().collect();
    let restored = actions.iter().find_map(|a| match a {
        Action::RestoreSnapshot { meta, data } => Some((meta.index, data.clone())),
        _ => None,
    });
    assert_eq!(restored, Some((meta.index, Bytes::from_static(b"state"))));
    assert_eq!(h.nodes[&2].last_applied(), meta.index);
}

/// A completion reported for a write of the last run — the disk finished
/// it, the process restarted before the node was told — is refused by the
/// next run (`OtherEpoch`), though both runs recovered the same state but
/// for one vote: `MemoryLog` counts the crash images it descends from as
/// its instance. Otherwise it would release the new run's vote grant
/// before that vote is durable.
#[test]
fn a_completion_from_before_a_restart_is_refused() {
    let config = || RaftConfig::new(2, [1, 2, 3]).seed(7).async_storage(true);
    let vote_request = |from: NodeId, term: Term| Message {
        from,
        to: 2,
        term,
        body: MessageBody::Vote(raft_io::VoteRequest { last_log_index: 0, last_log_term: 0, transfer: false }),
    };
    let written = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::WriteSubmitted { token } => Some(*token),
            _ => None,
        })
    };
    // First, term 1 made durable without a vote (a heartbeat of leader 1),
    // then a restart: the run that follows starts at term 1, no vote.
    let mut node = RaftNode::with_log(config(), MemoryLog::new().with_async_writes()).unwrap();
    let heartbeat = Message { from: 1, to: 2, term: 1, body: MessageBody::Heartbeat(raft_io::Heartbeat::default()) };
    let actions: Vec<Action> = node.step(Event::Message(heartbeat)).unwrap().collect();
    node.step(Event::Persisted(written(&actions).unwrap())).unwrap();
    let image = node.log().durable();
    assert_eq!((image.hard_state().term, image.hard_state().vote), (1, None));
    // That run grants node 1 its vote in term 1: a write of the vote alone.
    let mut node = RaftNode::with_log(config(), image).unwrap();
    let actions: Vec<Action> = node.step(Event::Message(vote_request(1, 1))).unwrap().collect();
    let old = written(&actions).expect("the vote is a write in flight");
    // The disk finishes it; the process restarts before the node is told.
    let log = node.log_mut();
    for token in log.pending_writes().collect::<Vec<_>>() {
        log.persisted(token).unwrap();
    }
    let image = node.log().durable();
    assert_eq!((image.hard_state().term, image.hard_state().vote), (1, Some(1)), "the same state, but for the vote");
    let mut node = RaftNode::with_log(config(), image).unwrap();
    let actions: Vec<Action> = node.step(Event::Message(vote_request(3, 2))).unwrap().collect();
    let granted = |actions: &[Action]| {
        actions.iter().any(|a| {
            matches!(a, Action::Send { message: Message { body: MessageBody::VoteResponse(r), .. }, .. } if r.granted)
        })
    };
    assert!(!granted(&actions), "the grant waits for its write");
    assert!(written(&actions).is_some());
    match node.step(Event::Persisted(old)) {
        Err(Error::BadCompletion { reason: CompletionRefusal::OtherEpoch, .. }) => {}
        other => panic!("the last run's completion was taken: {:?}", other.map(|a| a.collect::<Vec<_>>())),
    }
}

/// A log in the asynchronous mode that answers the default `instance()`
/// (0) cannot tell two runs apart: a restart on it is refused; a first
/// start is not (no earlier run can report anything).
#[test]
fn a_restart_in_the_asynchronous_mode_needs_a_log_that_tells_runs_apart() {
    let config = || RaftConfig::new(2, [1, 2, 3]).async_storage(true);
    let mut fresh = common::failing_log::FailingLog::new(usize::MAX, u64::MAX);
    assert_eq!(fresh.instance(), 0);
    let node = RaftNode::with_log(config(), fresh).unwrap();
    fresh = node.into_log();
    fresh.sync().unwrap();
    assert!(fresh.identity().is_some());
    match RaftNode::with_log(config(), fresh) {
        Err(Error::InvalidConfig { field: "async_storage", .. }) => {}
        other => panic!("a restart on a log of instance 0 was accepted: {:?}", other.map(|_| ())),
    }
}

/// Messages held for a write leave when a later write comes back durable
/// at once (`Submitted::Durable`, which covers every earlier write): no
/// completion will ever come for the earlier one, so nothing else would
/// release them.
#[test]
fn messages_held_for_a_write_leave_when_a_later_one_is_durable_at_once() {
    let vote_request = |from: NodeId, term: Term| Message {
        from,
        to: 2,
        term,
        body: MessageBody::Vote(raft_io::VoteRequest { last_log_index: 0, last_log_term: 0, transfer: false }),
    };
    let grants = |actions: &[Action]| -> Vec<(NodeId, Term)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { message: Message { to, term, body: MessageBody::VoteResponse(r), .. }, .. }
                    if r.granted =>
                {
                    Some((*to, *term))
                }
                _ => None,
            })
            .collect()
    };
    let mut node = RaftNode::with_log(config(2), AsyncMemLog::default()).unwrap();
    let first: Vec<Action> = node.step(Event::Message(vote_request(1, 1))).unwrap().collect();
    assert!(grants(&first).is_empty(), "held for its write");
    assert_eq!(node.metrics().messages_held, 1);
    node.log_mut().at_once = true;
    let second: Vec<Action> = node.step(Event::Message(vote_request(3, 2))).unwrap().collect();
    assert_eq!(grants(&second), [(3, 2), (1, 1)], "the held grant leaves, after the step's own");
    assert_eq!(node.metrics().messages_held, 0);
}
