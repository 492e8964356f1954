//! A deterministic driver for a cluster of nodes on `WalLog`, each in its
//! own temp directory behind its own `FaultInjector`: a FIFO message queue,
//! a digest state machine with snapshots, and bookkeeping of what each node
//! acknowledged, so a test can crash a node anywhere (at a step boundary,
//! or at any durable operation with a torn last write), restart it from
//! its directory, and check that nothing acknowledged was lost.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::log::wal::FaultInjector;
use raft_io::{Action, Event, Index, Message, MessageBody, NodeId, RaftConfig, RaftLog, RaftNode, Role, Term, WalLog};

/// Small segments, so runs cross segment boundaries and compaction drops
/// whole segments.
pub const SEGMENT: u64 = 2048;

/// The state machine's digest before any command.
pub const SM_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds one applied command into a state-machine digest.
pub fn fold(hash: u64, index: Index, term: Term, command: &[u8]) -> u64 {
    let mut h = hash ^ index.rotate_left(17) ^ term.rotate_left(41);
    for &b in command {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.wrapping_mul(0x0100_0000_01b3)
}

/// Where to crash a node in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAt {
    /// At durable operation `op` of `node`'s injector (counted from its
    /// creation, the first open included): the operation fails, the
    /// process is dead, and of the unsynced WAL bytes only `keep` of them
    /// survive (clamped; a value between 0 and all tears the last write).
    Op { node: NodeId, op: u64, keep: Keep },
    /// Right after `node`'s step number `step` (counted from 1) returned.
    AfterStep { node: NodeId, step: u64 },
}

/// How much of the unsynced WAL tail survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Nothing.
    None,
    /// The first 5 bytes: a torn frame header.
    Header,
    /// Half: a torn payload.
    Half,
    /// All of it (the write reached the disk, its sync did not return).
    All,
}

impl Keep {
    pub const ALL: [Keep; 4] = [Keep::None, Keep::Header, Keep::Half, Keep::All];

    fn bytes(self, unsynced: u64) -> u64 {
        match self {
            Keep::None => 0,
            Keep::Header => 5.min(unsynced),
            Keep::Half => unsynced / 2,
            Keep::All => unsynced,
        }
    }
}

/// One step of one node, as the tests inspect it.
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub node: NodeId,
    /// The event's kind ("Tick", "Propose", "TakeSnapshot" for the
    /// application's snapshot, or the message kind).
    pub event: &'static str,
    /// WAL syncs the step made (`WalLog::stats().syncs` difference).
    pub syncs: u64,
    /// Durable operations the step made (the injector's count difference).
    pub ops: u64,
    /// Whether term, vote, log (last index and term) or snapshot changed.
    pub changed: bool,
    /// The step's messages, by kind.
    pub sent: Vec<&'static str>,
}

pub struct Member {
    pub config: RaftConfig,
    pub dir: PathBuf,
    pub faults: FaultInjector,
    pub node: Option<RaftNode<WalLog>>,
    pub sm: u64,
    pub steps: u64,
    /// `(index, term)` this node promised durable: the match index of a
    /// successful append response, or the last entry a leader sent while
    /// counting itself. Pruned when a later step legitimately removes it.
    pub acked: Vec<(Index, Term)>,
    /// The latest vote granted: `(term, candidate)`.
    pub voted: Option<(Term, NodeId)>,
    pub restarts: u64,
}

pub struct WalCluster {
    pub root: tempfile::TempDir,
    pub members: BTreeMap<NodeId, Member>,
    pub queue: VecDeque<Message>,
    /// Every command applied anywhere, by index: Raft's committed log.
    pub committed: BTreeMap<Index, (Term, Bytes)>,
    pub crash: Option<CrashAt>,
    /// Crashes that happened, and how many unsynced WAL bytes each lost and
    /// kept.
    pub crashes: Vec<(NodeId, u64, u64)>,
    pub record: Vec<StepRecord>,
    /// Check every reply against a copy of the directory made right after
    /// the step (a power loss at that moment).
    pub verify_replies: bool,
    pub verified_replies: u64,
    followups: Vec<(NodeId, Event)>,
}

fn options(faults: &FaultInjector) -> WalOptions {
    WalOptions::new().segment_size(SEGMENT).fault_injector(faults.clone())
}

/// Term, vote, last index and term, snapshot index and term.
fn fingerprint(node: &RaftNode<WalLog>) -> (Term, Option<NodeId>, Index, Option<Term>, Index, Term) {
    let log = node.log();
    let last = log.last_index();
    let snap = log.snapshot_meta();
    (node.term(), node.status().vote, last, log.term(last), snap.index, snap.term)
}

impl WalCluster {
    /// Nodes `1..=n` on fresh logs under a new temp dir, configured by
    /// `configure`, with an optional crash planned.
    pub fn new(n: u64, configure: impl Fn(RaftConfig) -> RaftConfig, crash: Option<CrashAt>) -> Self {
        let root = tempfile::Builder::new().prefix("raft-io-wal-node-").tempdir().expect("temp dir");
        let mut c = Self {
            root,
            members: BTreeMap::new(),
            queue: VecDeque::new(),
            committed: BTreeMap::new(),
            crash,
            crashes: Vec::new(),
            record: Vec::new(),
            verify_replies: false,
            verified_replies: 0,
            followups: Vec::new(),
        };
        let ids: Vec<NodeId> = (1..=n).collect();
        for &id in &ids {
            let faults = FaultInjector::new();
            if let Some(CrashAt::Op { node, op, .. }) = crash {
                if node == id {
                    faults.crash_after(op);
                }
            }
            let config = configure(RaftConfig::new(id, ids.clone()).seed(id * 7919));
            let dir = c.root.path().join(format!("n{id}"));
            c.members.insert(
                id,
                Member {
                    config,
                    dir,
                    faults,
                    node: None,
                    sm: SM_INIT,
                    steps: 0,
                    acked: Vec::new(),
                    voted: None,
                    restarts: 0,
                },
            );
            c.boot(id);
        }
        c
    }

    pub fn node(&self, id: NodeId) -> &RaftNode<WalLog> {
        self.members[&id].node.as_ref().expect("node is up")
    }

    pub fn dir(&self, id: NodeId) -> &Path {
        &self.members[&id].dir
    }

    /// Opens node `id` from its directory, riding out an injected crash
    /// during the open (power loss, reopen).
    fn boot(&mut self, id: NodeId) {
        let m = self.members.get_mut(&id).expect("member");
        for _ in 0..3 {
            let node = WalLog::open_with(&m.dir, options(&m.faults))
                .map_err(raft_io::Error::from)
                .and_then(|log| RaftNode::with_log(m.config.clone(), log));
            match node {
                Ok(node) => {
                    m.node = Some(node);
                    m.sm = SM_INIT;
                    return;
                }
                Err(e) if m.faults.has_crashed() => {
                    let keep = match self.crash {
                        Some(CrashAt::Op { keep, .. }) => keep,
                        _ => Keep::None,
                    };
                    let unsynced = m.faults.unsynced_bytes();
                    let kept = m.faults.lose_unsynced(keep.bytes(unsynced)).expect("lose unsynced");
                    self.crashes.push((id, unsynced - kept, kept));
                    let _ = e;
                }
                Err(e) => panic!("node {id} failed to open: {e}"),
            }
        }
        panic!("node {id} did not open");
    }

    /// Crashes node `id` now (drops its log without closing it), loses its
    /// unsynced WAL bytes but `keep`, reopens it and checks that every
    /// acknowledgement it gave survived.
    pub fn crash_and_restart(&mut self, id: NodeId, keep: Keep) {
        if self.crash_only(id, keep) {
            self.restart(id);
        }
    }

    /// Crashes node `id` and leaves it down (messages to it are lost).
    /// Returns whether it was up.
    pub fn crash_only(&mut self, id: NodeId, keep: Keep) -> bool {
        let m = self.members.get_mut(&id).expect("member");
        let Some(node) = m.node.take() else { return false };
        // A dead process runs no clean close: nothing reaches the disk at
        // the drop (`lose_unsynced` lifts the crash).
        m.faults.crash_now();
        drop(node.into_log());
        let unsynced = m.faults.unsynced_bytes();
        let kept = m.faults.lose_unsynced(keep.bytes(unsynced)).expect("lose unsynced");
        self.crashes.push((id, unsynced - kept, kept));
        m.restarts += 1;
        // What the dead process had still to do dies with it.
        self.followups.retain(|(n, _)| *n != id);
        true
    }

    /// Restarts a crashed node from its directory and checks that every
    /// acknowledgement it gave survived.
    pub fn restart(&mut self, id: NodeId) {
        self.boot(id);
        self.check_recovered(id);
    }

    /// Every acknowledgement `id` gave is in its recovered log and hard
    /// state.
    pub fn check_recovered(&self, id: NodeId) {
        let m = &self.members[&id];
        let node = m.node.as_ref().expect("up");
        let log = node.log();
        assert_eq!(node.role(), Role::Follower, "node {id} restarts as a follower");
        let snap = log.snapshot_meta().index;
        for &(index, term) in &m.acked {
            assert!(
                index <= snap || log.term(index) == Some(term),
                "node {id} acknowledged entry {index} of term {term} but recovered {:?} (snapshot {snap}, last {}); crash {:?}",
                log.term(index),
                log.last_index(),
                self.crash
            );
        }
        if let Some((term, candidate)) = m.voted {
            let hs = log.hard_state();
            assert!(
                hs.term > term || (hs.term == term && hs.vote == Some(candidate)),
                "node {id} granted its vote to {candidate} in term {term} but recovered {hs:?}; crash {:?}",
                self.crash
            );
        }
    }

    /// Steps node `id` (if up). An injected crash is ridden out: the node
    /// restarts and the step counts as lost. Any other error is returned.
    pub fn step(&mut self, id: NodeId, event: Event) -> raft_io::Result<()> {
        self.step_one(id, event)?;
        while let Some((id, event)) = self.followups.pop() {
            self.step_one(id, event)?;
        }
        Ok(())
    }

    fn step_one(&mut self, id: NodeId, event: Event) -> raft_io::Result<()> {
        let kind = match &event {
            Event::Message(m) => m.body.name(),
            Event::Tick => "Tick",
            Event::Propose(_) | Event::ProposeBatch(_) => "Propose",
            Event::Snapshot { .. } => "TakeSnapshot",
            _ => "Other",
        };
        let Some(m) = self.members.get_mut(&id) else { return Ok(()) };
        let Some(node) = m.node.as_mut() else { return Ok(()) };
        let before = fingerprint(node);
        let (syncs, ops) = (node.log().stats().syncs, m.faults.operations());
        let result: raft_io::Result<Vec<Action>> = node.step(event).map(Iterator::collect);
        let actions = match result {
            Ok(actions) => actions,
            Err(_) if m.faults.has_crashed() => {
                let keep = match self.crash {
                    Some(CrashAt::Op { keep, .. }) => keep,
                    _ => Keep::None,
                };
                self.crash_and_restart(id, keep);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        m.steps += 1;
        let changed = fingerprint(node) != before;
        let mut record = StepRecord {
            node: id,
            event: kind,
            syncs: node.log().stats().syncs - syncs,
            ops: m.faults.operations() - ops,
            changed,
            sent: Vec::new(),
        };
        // Acknowledgements no longer in the log were removed by this step,
        // legitimately (a new leader's truncation, a snapshot that
        // replaced a diverging log).
        let log = node.log();
        let snap = log.snapshot_meta().index;
        m.acked.retain(|&(i, t)| i <= snap || log.term(i) == Some(t));
        let mut replies = Vec::new();
        for a in actions {
            match a {
                Action::Send { to: _, message } => {
                    record.sent.push(message.body.name());
                    match &message.body {
                        MessageBody::AppendResponse(r) if r.success => {
                            let term = log.term(r.index).unwrap_or(0);
                            m.acked.retain(|&(i, _)| i > r.index);
                            m.acked.push((r.index, term));
                            replies.push(message.clone());
                        }
                        MessageBody::Append(ae) if !ae.entries.is_empty() => {
                            let last = ae.entries.last().map(|e| (e.index, e.term)).unwrap_or_default();
                            m.acked.retain(|&(i, _)| i > last.0);
                            m.acked.push(last);
                        }
                        MessageBody::VoteResponse(r) if r.granted => {
                            m.voted = Some((message.term, message.to));
                            replies.push(message.clone());
                        }
                        _ => {}
                    }
                    self.queue.push_back(message);
                }
                Action::Apply { index, term, command } => {
                    match self.committed.get(&index) {
                        Some((t, c)) => assert!(
                            *t == term && *c == command,
                            "node {id} applied {index}/{term} but {index}/{t} was applied elsewhere; crash {:?}",
                            self.crash
                        ),
                        None => {
                            self.committed.insert(index, (term, command.clone()));
                        }
                    }
                    m.sm = fold(m.sm, index, term, &command);
                }
                Action::RestoreSnapshot { data, .. } => {
                    m.sm = match <[u8; 8]>::try_from(&data[..]) {
                        Ok(b) => u64::from_le_bytes(b),
                        Err(_) => SM_INIT,
                    };
                }
                Action::SnapshotWanted { applied } => {
                    let data = Bytes::copy_from_slice(&m.sm.to_le_bytes());
                    self.followups.push((id, Event::Snapshot { index: applied, data }));
                }
                _ => {}
            }
        }
        if !replies.is_empty() {
            assert_eq!(m.faults.unsynced_bytes(), 0, "node {id} replies with unsynced WAL bytes");
        }
        self.record.push(record);
        if self.verify_replies {
            for reply in &replies {
                self.verify_reply(id, reply);
            }
        }
        if self.crash == Some(CrashAt::AfterStep { node: id, step: self.members[&id].steps }) {
            self.crash_and_restart(id, Keep::None);
        }
        Ok(())
    }

    /// A power loss right after the step that sent `reply`: a copy of the
    /// directory, reopened, holds the vote or the acknowledged entries.
    fn verify_reply(&mut self, id: NodeId, reply: &Message) {
        let copy = self.root.path().join(format!("copy-{}", self.verified_replies));
        copy_dir(&self.members[&id].dir, &copy);
        let log = WalLog::open(&copy).expect("the copy opens");
        match &reply.body {
            MessageBody::VoteResponse(_) => {
                let hs = log.hard_state();
                assert_eq!((hs.term, hs.vote), (reply.term, Some(reply.to)), "node {id}'s vote is durable");
            }
            MessageBody::AppendResponse(r) => {
                let live = self.node(id).log();
                assert!(r.index <= log.snapshot_meta().index || log.term(r.index) == live.term(r.index));
                assert!(log.last_index() >= r.index, "node {id}'s acknowledged entries are durable");
            }
            _ => {}
        }
        drop(log);
        std::fs::remove_dir_all(&copy).expect("remove copy");
        self.verified_replies += 1;
    }

    pub fn up(&self) -> Vec<NodeId> {
        self.members.iter().filter(|(_, m)| m.node.is_some()).map(|(&id, _)| id).collect()
    }

    /// Delivers one queued message; returns false if the queue is empty.
    pub fn deliver_one(&mut self) -> bool {
        let Some(msg) = self.queue.pop_front() else { return false };
        let to = msg.to;
        self.step(to, Event::Message(msg)).expect("a message never fails");
        true
    }

    pub fn deliver_all(&mut self) {
        let mut n = 0u64;
        while self.deliver_one() {
            n += 1;
            assert!(n < 1_000_000, "message storm");
        }
    }

    /// Ticks every node once, then delivers everything.
    pub fn tick_all(&mut self) {
        for id in self.up() {
            self.step(id, Event::Tick).expect("a tick never fails");
        }
        self.deliver_all();
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.members
            .values()
            .filter_map(|m| m.node.as_ref())
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.term())
            .map(|n| n.id())
    }

    /// Ticks until a leader has committed an entry of its term.
    pub fn elect(&mut self, max_ticks: u64) -> NodeId {
        for _ in 0..max_ticks {
            if let Some(l) = self.leader() {
                let n = self.node(l);
                if n.log().term(n.commit_index()) == Some(n.term()) {
                    return l;
                }
            }
            self.tick_all();
        }
        panic!("no leader within {max_ticks} ticks; crash {:?}", self.crash);
    }

    /// Whether a leader committed its whole log and every node applied it
    /// into the same state.
    pub fn converged(&self) -> bool {
        let Some(l) = self.leader() else { return false };
        let leader = self.node(l);
        let last = leader.last_index();
        let want = self.committed.iter().fold(SM_INIT, |h, (&i, (t, c))| fold(h, i, *t, c));
        leader.commit_index() == last
            && self.members.values().all(|m| {
                m.node.as_ref().is_some_and(|n| n.last_applied() == last && n.last_index() == last) && m.sm == want
            })
    }

    /// Ticks until [`converged`](Self::converged); then checks every
    /// committed entry is in every log.
    pub fn converge(&mut self, max_ticks: u64) {
        for _ in 0..max_ticks {
            if self.converged() {
                self.check_committed_everywhere();
                return;
            }
            self.tick_all();
        }
        panic!("no convergence within {max_ticks} ticks; crash {:?}", self.crash);
    }

    pub fn check_committed_everywhere(&self) {
        for (&id, m) in &self.members {
            let Some(n) = m.node.as_ref() else { continue };
            let log = n.log();
            let snap = log.snapshot_meta().index;
            for (&i, &(t, _)) in self.committed.range(snap + 1..) {
                assert_eq!(log.term(i), Some(t), "node {id} lost committed entry {i}; crash {:?}", self.crash);
            }
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let dest = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

/// Every file under `dir` with its bytes (to show a refused open changed
/// nothing).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, Vec::new());
            } else {
                out.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}
