//! Three nodes on `WalLog` in temp dirs, in one process, driven two ways:
//!
//! * [`Sequential`]: one thread, a FIFO of messages. A round trip is the
//!   leader's step (append + fsync), each follower's step (append + fsync),
//!   and the leader's commit on the responses: **3 fsyncs in a row** per
//!   batch, on one disk.
//! * [`Threaded`]: each node on its own thread with an inbox; the leader
//!   keeps up to `window` batches in flight, so the followers' fsyncs
//!   overlap each other and the leader's next one (3 fsyncs per batch, not
//!   in a row). [`Group`] says what a node may step together of what
//!   waits in its inbox: nothing (one event per step), runs of messages as
//!   one `Event::Messages` (one fsync for all of them: group commit on the
//!   followers), or also runs of proposals as one `ProposeBatch` (group
//!   commit on the leader, as a runtime does with concurrent clients).
//!   [`Threaded`] also runs in the asynchronous storage mode
//!   ([`Sequential::into_threaded_async`]): each `WalLog` syncs on its own
//!   sync thread, which reports completions to its node's inbox.

/// What a threaded node steps together of what waits in its inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// One event per step.
    Nothing,
    /// Runs of messages as one `Event::Messages`.
    Messages,
    /// Runs of messages, and runs of proposals as one `ProposeBatch`.
    MessagesAndProposals,
}

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use raft_io::{Action, Event, Index, Message, NodeId, RaftConfig, RaftNode, WalLog};

const NODES: u64 = 3;

fn config(id: NodeId, asynchronous: bool) -> RaftConfig {
    RaftConfig::new(id, 1..=NODES).seed(id).async_storage(asynchronous)
}

fn batch_of(batch: usize, data: &Bytes) -> Vec<Bytes> {
    vec![data.clone(); batch]
}

/// The single-threaded driver.
pub struct Sequential {
    _dirs: Vec<tempfile::TempDir>,
    nodes: Vec<RaftNode<WalLog>>,
    queue: VecDeque<Message>,
    data: Bytes,
}

impl Sequential {
    /// Three fresh nodes under `base`, node 1 elected.
    pub fn new(base: &Path, entry: usize) -> Self {
        Self::with_mode(base, entry, false)
    }

    /// Three fresh nodes under `base` configured for the asynchronous
    /// storage mode (their logs stay synchronous until
    /// [`into_threaded_async`](Self::into_threaded_async)), node 1 elected.
    pub fn new_async(base: &Path, entry: usize) -> Self {
        Self::with_mode(base, entry, true)
    }

    fn with_mode(base: &Path, entry: usize, asynchronous: bool) -> Self {
        let dirs: Vec<tempfile::TempDir> = (0..NODES)
            .map(|_| tempfile::Builder::new().prefix("raft-io-bench-node-").tempdir_in(base).unwrap())
            .collect();
        let nodes = (1..=NODES)
            .map(|id| {
                let log = WalLog::open(dirs[id as usize - 1].path()).unwrap();
                RaftNode::with_log(config(id, asynchronous), log).unwrap()
            })
            .collect();
        let mut c = Self { _dirs: dirs, nodes, queue: VecDeque::new(), data: Bytes::from(vec![0x5a; entry]) };
        c.step(1, Event::Campaign);
        c.deliver_all();
        assert!(c.nodes[0].is_leader());
        c
    }

    fn step(&mut self, id: NodeId, event: Event) {
        for a in self.nodes[id as usize - 1].step(event).unwrap() {
            if let Action::Send { message, .. } = a {
                self.queue.push_back(message);
            }
        }
    }

    fn deliver_all(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            let to = m.to;
            self.step(to, Event::Message(m));
        }
    }

    /// Seconds per batch over `n` round trips of one `batch`-entry
    /// proposal each, from proposal to commit on the leader.
    pub fn round(&mut self, batch: usize, n: usize) -> f64 {
        let t = std::time::Instant::now();
        for _ in 0..n {
            let want = self.nodes[0].last_index() + batch as Index;
            self.step(1, Event::ProposeBatch(batch_of(batch, &self.data)));
            self.deliver_all();
            assert_eq!(self.nodes[0].commit_index(), want);
        }
        t.elapsed().as_secs_f64() / n as f64
    }

    /// WAL syncs of every node so far.
    pub fn syncs(&self) -> u64 {
        self.nodes.iter().map(|n| n.log().stats().syncs).sum()
    }

    /// Entries committed by the leader.
    pub fn committed(&self) -> Index {
        self.nodes[0].commit_index()
    }

    /// Moves the (elected) nodes onto threads.
    pub fn into_threaded(self, window: usize, group: Group) -> Threaded {
        Threaded::start(self, window, group, false)
    }

    /// Moves the (elected) nodes onto threads, each log syncing on its sync
    /// thread (the nodes must come from [`new_async`](Self::new_async)).
    pub fn into_threaded_async(self, window: usize, group: Group) -> Threaded {
        Threaded::start(self, window, group, true)
    }
}

enum In {
    Step(Event),
    Stop,
}

/// The threaded driver: one thread per node.
pub struct Threaded {
    _dirs: Vec<tempfile::TempDir>,
    inboxes: Vec<Sender<In>>,
    applied: Receiver<Index>,
    handles: Vec<JoinHandle<RaftNode<WalLog>>>,
    /// The leader's last applied index as last reported.
    last_applied: Index,
    /// The leader's last index (every proposal adds exactly its entries).
    last_proposed: Index,
    window: usize,
    data: Bytes,
}

impl Threaded {
    fn start(seq: Sequential, window: usize, group: Group, asynchronous: bool) -> Self {
        let Sequential { _dirs, nodes, queue, data } = seq;
        assert!(queue.is_empty());
        let last = nodes[0].last_index();
        let (senders, receivers): (Vec<Sender<In>>, Vec<Receiver<In>>) = (0..NODES).map(|_| channel()).unzip();
        let (applied_tx, applied) = channel();
        let mut handles = Vec::new();
        for (mut node, inbox) in nodes.into_iter().zip(receivers) {
            if asynchronous {
                let own = std::sync::Mutex::new(senders[node.id() as usize - 1].clone());
                node.log_mut()
                    .start_sync_thread(move |t| {
                        let _ = own.lock().map(|tx| tx.send(In::Step(Event::Persisted(t))));
                    })
                    .unwrap();
            }
            let peers = senders.clone();
            let report = (node.id() == 1).then(|| applied_tx.clone());
            handles.push(std::thread::spawn(move || run_node(node, inbox, peers, report, group)));
        }
        Self { _dirs, inboxes: senders, applied, handles, last_applied: last, last_proposed: last, window, data }
    }

    /// Seconds per batch over `n` pipelined `batch`-entry proposals, from
    /// the first proposal to the commit of the last on the leader.
    pub fn round(&mut self, batch: usize, n: usize) -> f64 {
        let t = std::time::Instant::now();
        let target = self.last_proposed + (n * batch) as Index;
        let mut left = n;
        while self.last_applied < target {
            let inflight = ((self.last_proposed - self.last_applied) as usize).div_ceil(batch);
            if left > 0 && inflight < self.window {
                self.inboxes[0].send(In::Step(Event::ProposeBatch(batch_of(batch, &self.data)))).unwrap();
                self.last_proposed += batch as Index;
                left -= 1;
                continue;
            }
            self.last_applied = self.applied.recv().unwrap();
        }
        t.elapsed().as_secs_f64() / n as f64
    }

    /// Stops the threads; returns the WAL syncs (fsyncs) of every node.
    pub fn stop(self) -> u64 {
        for inbox in &self.inboxes {
            let _ = inbox.send(In::Stop);
        }
        self.handles.into_iter().map(|h| h.join().unwrap().log().stats().syncs).sum()
    }
}

fn run_node(
    mut node: RaftNode<WalLog>,
    inbox: Receiver<In>,
    peers: Vec<Sender<In>>,
    report: Option<Sender<Index>>,
    group: Group,
) -> RaftNode<WalLog> {
    let step = |node: &mut RaftNode<WalLog>, event: Event| {
        let mut applied = None;
        for a in node.step(event).unwrap() {
            match a {
                Action::Send { to, message } => {
                    let _ = peers[to as usize - 1].send(In::Step(Event::Message(message)));
                }
                Action::Apply { index, .. } => applied = Some(index),
                _ => {}
            }
        }
        if let (Some(tx), Some(index)) = (&report, applied) {
            let _ = tx.send(index);
        }
    };
    let mut messages = Vec::new();
    let mut commands = Vec::new();
    while let Ok(first) = inbox.recv() {
        // Everything already waiting, in order; runs of messages (and of
        // proposals) become one step as `group` allows.
        for item in std::iter::once(first).chain(inbox.try_iter()) {
            match item {
                In::Step(Event::Message(m)) if group != Group::Nothing => {
                    if !commands.is_empty() {
                        step(&mut node, Event::ProposeBatch(std::mem::take(&mut commands)));
                    }
                    messages.push(m);
                }
                In::Step(Event::ProposeBatch(batch)) if group == Group::MessagesAndProposals => {
                    if !messages.is_empty() {
                        step(&mut node, Event::Messages(std::mem::take(&mut messages)));
                    }
                    commands.extend(batch);
                }
                In::Step(event) => {
                    if !messages.is_empty() {
                        step(&mut node, Event::Messages(std::mem::take(&mut messages)));
                    }
                    if !commands.is_empty() {
                        step(&mut node, Event::ProposeBatch(std::mem::take(&mut commands)));
                    }
                    step(&mut node, event);
                }
                In::Stop => return node,
            }
        }
        if !messages.is_empty() {
            step(&mut node, Event::Messages(std::mem::take(&mut messages)));
        }
        if !commands.is_empty() {
            step(&mut node, Event::ProposeBatch(std::mem::take(&mut commands)));
        }
    }
    node
}
