//! Real nodes on group logs across a process crash: three processes, each
//! with one [`SharedWal`] holding a replica of every one of 9 groups (async
//! storage mode, one flush per host turn). Process 1 runs with a
//! [`FaultInjector`] that crashes it at a chosen durable operation; its
//! unsynced WAL bytes are then lost (a prefix kept: a torn last record), it
//! restarts from its directory, and the cluster goes on. For every crash
//! point tried: every command a leader applied before the crash is applied
//! by every replica in the end, and every replica of a group applies the
//! same sequence (a replica that restarted re-applies from its log).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use bytes::Bytes;

use super::node_tests::{PROCESSES, Process, config};
use super::tests::temp;
use super::*;
use crate::log::wal::FaultInjector;
use crate::{Action, Event, Message, NodeId, RaftNode};

const GROUPS: u64 = 9;

#[derive(Default)]
struct Cluster {
    procs: BTreeMap<NodeId, Process>,
    inbox: VecDeque<(GroupId, Message)>,
    /// Commands applied, per process and group, since the process started.
    applied: BTreeMap<(NodeId, GroupId), Vec<Bytes>>,
    /// Process 1's groups as of its last flush that returned.
    flushed: Option<BTreeMap<GroupId, Image>>,
    /// Process 1's groups as of the flush the crash interrupted.
    interrupted: Option<BTreeMap<GroupId, Image>>,
}

/// What a node's log promises durable: term and vote, snapshot, entries.
type Image = ((u64, Option<NodeId>), (u64, u64), Vec<(u64, u64, Bytes)>);

fn image(log: &GroupLog) -> Image {
    let mut entries = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut entries).unwrap();
    let hard = log.hard_state();
    let snap = log.snapshot_meta();
    ((hard.term, hard.vote), (snap.index, snap.term), entries.into_iter().map(|e| (e.index, e.term, e.data)).collect())
}

impl Cluster {
    fn start(&mut self, root: &Path, p: NodeId, faults: Option<&FaultInjector>) -> Result<(), StorageError> {
        let mut options = SharedWalOptions::new().segment_size(4096);
        if let Some(f) = faults {
            options = options.fault_injector(f.clone());
        }
        let wal = SharedWal::open_with(root.join(format!("p{p}")), options)?;
        let mut nodes = BTreeMap::new();
        for g in 1..=GROUPS {
            let log = if wal.contains(g) { wal.group(g)? } else { wal.create_group(g)? };
            let node = RaftNode::with_log(config(p, g), log).map_err(|e| StorageError::Other(Box::new(e)))?;
            nodes.insert(g, node);
        }
        for g in 1..=GROUPS {
            self.applied.remove(&(p, g));
        }
        self.procs.insert(p, Process { wal, nodes });
        Ok(())
    }

    /// Steps a node; a failure (the log halted in the crash) takes its
    /// whole process down.
    fn step(&mut self, p: NodeId, g: GroupId, event: Event) {
        let Some(node) = self.procs.get_mut(&p).and_then(|proc| proc.nodes.get_mut(&g)) else { return };
        let result: Result<Vec<Action>, crate::Error> = node.step(event).map(Iterator::collect);
        let actions = match result {
            Ok(actions) => actions,
            Err(e) => {
                assert_eq!(p, 1, "only process 1 fails (its injected crash): {e}");
                self.procs.remove(&p);
                return;
            }
        };
        for a in actions {
            match a {
                Action::Send { message, .. } => self.inbox.push_back((g, message)),
                Action::Apply { command, .. } if !command.is_empty() => {
                    self.applied.entry((p, g)).or_default().push(command);
                }
                _ => {}
            }
        }
    }

    fn turn(&mut self, p: NodeId) {
        let mine: VecDeque<(GroupId, Message)> = {
            let (mine, rest) = self.inbox.drain(..).partition(|(_, m)| m.to == p);
            self.inbox = rest;
            mine
        };
        if !self.procs.contains_key(&p) {
            return; // a down process loses what is sent to it
        }
        for (g, m) in mine {
            self.step(p, g, Event::Message(m));
        }
        let Some(proc) = self.procs.get(&p) else { return };
        // Every mutation of this turn was staged by its step's submit.
        let attempt: BTreeMap<GroupId, Image> = proc.nodes.iter().map(|(g, n)| (*g, image(n.log()))).collect();
        let durable = match proc.wal.flush() {
            Ok(durable) => durable,
            Err(_) => {
                if p == 1 {
                    self.interrupted = Some(attempt);
                }
                self.procs.remove(&p);
                return;
            }
        };
        if p == 1 {
            self.flushed = Some(attempt);
        }
        let latest: BTreeMap<GroupId, crate::WriteToken> = durable.into_iter().collect();
        for (g, token) in latest {
            self.step(p, g, Event::Persisted(token));
        }
    }

    fn round(&mut self, ticks: bool) {
        if ticks {
            for p in PROCESSES {
                for g in 1..=GROUPS {
                    self.step(p, g, Event::Tick);
                }
            }
        }
        for p in PROCESSES {
            self.turn(p);
        }
    }

    fn leader(&self, g: GroupId) -> Option<NodeId> {
        PROCESSES.into_iter().find(|p| self.procs.get(p).is_some_and(|proc| proc.nodes[&g].is_leader()))
    }

    fn propose_everywhere(&mut self, tag: &str) {
        for g in 1..=GROUPS {
            if let Some(leader) = self.leader(g) {
                self.step(leader, g, Event::Propose(Bytes::from(format!("g{g}-{tag}"))));
            }
        }
    }
}

/// Runs the scenario with process 1 crashing at durable operation `op`
/// (never, if the run has fewer), keeping `keep` of its unsynced bytes.
/// Returns how many durable operations process 1 made.
fn run(op: u64, keep: u64) -> u64 {
    let root = temp();
    let faults = FaultInjector::new();
    faults.crash_after(op);
    let mut c = Cluster::default();
    if c.start(root.path(), 1, Some(&faults)).is_err() {
        assert!(faults.has_crashed());
    }
    for p in [2, 3] {
        c.start(root.path(), p, None).unwrap();
    }
    for g in 1..=GROUPS {
        c.step(1 + g % 3, g, Event::Campaign);
    }
    // Acknowledged: applied by some replica before the crash is repaired.
    for r in 0..4 {
        for _ in 0..10 {
            c.round(true);
        }
        c.propose_everywhere(&format!("a{r}"));
    }
    for _ in 0..30 {
        c.round(true);
    }
    let operations = faults.operations();
    if op == u64::MAX {
        let n: usize = c.applied.values().map(Vec::len).sum();
        eprintln!("clean run: {operations} operations of process 1, {n} commands applied");
    }
    let acknowledged: BTreeMap<GroupId, Vec<Bytes>> = (1..=GROUPS)
        .map(|g| {
            let longest = PROCESSES.iter().filter_map(|p| c.applied.get(&(*p, g))).max_by_key(|v| v.len());
            (g, longest.cloned().unwrap_or_default())
        })
        .collect();

    // Process 1 goes down (if it has not), loses its unsynced bytes, and
    // restarts from its directory.
    c.procs.remove(&1);
    if !faults.has_crashed() {
        faults.crash_now();
    }
    faults.lose_unsynced(keep).unwrap();
    c.start(root.path(), 1, None).unwrap_or_else(|e| panic!("crash at op {op}, keep {keep}: restart: {e}"));
    // Every group of process 1 comes back as of its last flush that
    // returned, or as of the flush the crash interrupted.
    if let Some(flushed) = c.flushed.take() {
        let interrupted = c.interrupted.take();
        for (g, node) in &c.procs[&1].nodes {
            let got = image(node.log());
            let ok = got == flushed[g] || interrupted.as_ref().is_some_and(|i| got == i[g]);
            assert!(
                ok,
                "crash at op {op}, keep {keep}: group {g} of process 1 recovered\n{got:?}\nnot\n{:?}",
                flushed[g]
            );
        }
    }
    for _ in 0..60 {
        c.round(true);
    }
    c.propose_everywhere("after");
    for _ in 0..60 {
        c.round(true);
    }

    for g in 1..=GROUPS {
        let seqs: Vec<&Vec<Bytes>> = PROCESSES.iter().filter_map(|p| c.applied.get(&(*p, g))).collect();
        let longest = seqs.iter().max_by_key(|v| v.len()).copied().cloned().unwrap_or_default();
        for (p, s) in PROCESSES.iter().zip(&seqs) {
            assert_eq!(
                &longest[..s.len()],
                &s[..],
                "crash at op {op}: group {g}: process {p} applied another sequence"
            );
        }
        let acked = &acknowledged[&g];
        assert_eq!(&longest[..acked.len().min(longest.len())], &acked[..], "crash at op {op}: group {g} lost commands");
        assert!(longest.len() >= acked.len(), "crash at op {op}: group {g} lost acknowledged commands");
        for p in PROCESSES {
            let got = c.applied.get(&(p, g)).map_or(0, Vec::len);
            assert_eq!(got, longest.len(), "crash at op {op}: process {p} group {g} is behind");
        }
    }
    operations
}

#[test]
fn a_process_crash_at_durable_operations_loses_no_acknowledged_command() {
    let total = run(u64::MAX, 0);
    assert!(total > 30, "{total} operations");
    // Every crash point; the tear cycles through none, a torn frame
    // header, and everything unsynced kept.
    for op in 0..total {
        run(op, [0, 5, 1 << 20][(op % 3) as usize]);
    }
}
