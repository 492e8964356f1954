//! `RaftConfig::apply_ranges` (PROTOCOL.md §4.6, "Applying by range"): a
//! node that lends its committed commands through `Action::ApplyRange` hands
//! every state machine exactly what `Action::Apply` hands it, in the same
//! order, under every fault profile — membership churn, snapshots, crashes
//! and restarts included — and its ranges keep the actions in index order.
//!
//! * `RAFT_IO_SEEDS=N`: seeds per profile (default 16).
//! * `RAFT_IO_SEED=S RAFT_IO_PROFILE=P`: replays one pair of runs.
#![cfg(feature = "sim")]

use std::sync::{Arc, Mutex};

mod common;

use bytes::Bytes;
use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, SimConfig, StateMachine};
use raft_io::{
    Action, Entry, Error, Event, Index, MemoryLog, NodeId, RaftConfig, RaftLog, RaftNode, StorageError, Term,
};

/// What reached one node's state machine, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Applied(Index, Bytes),
    Restored(Bytes),
}

type Journal = Arc<Mutex<Vec<(NodeId, Seen)>>>;

/// The actions a cluster recorded, with the node of each.
type Recorded = Vec<(NodeId, Action)>;

/// A `KvStore` that also writes down everything it is handed.
struct Recorder {
    id: NodeId,
    kv: KvStore,
    journal: Journal,
}

impl StateMachine for Recorder {
    type Output = ();

    fn apply(&mut self, index: Index, command: &Bytes) {
        self.journal.lock().unwrap().push((self.id, Seen::Applied(index, command.clone())));
        self.kv.apply(index, command);
    }

    fn snapshot(&self) -> Bytes {
        self.kv.snapshot()
    }

    fn restore(&mut self, data: &Bytes) {
        self.journal.lock().unwrap().push((self.id, Seen::Restored(data.clone())));
        self.kv.restore(data);
    }

    fn digest(&self) -> u64 {
        self.kv.digest()
    }
}

/// One run with the setting forced `ranges`: what every state machine
/// saw, and the actions recorded (applies, ranges, committed memberships)
/// if no node crashed (a restarted node starts its hand-overs over).
fn run(seed: u64, profile: FaultProfile, ranges: bool) -> (Vec<(NodeId, Seen)>, Option<Recorded>) {
    let journal = Journal::default();
    let config = SimConfig::new(3)
        .seed(seed)
        .tick_skew(0.2)
        .record_actions(true)
        .configure(move |r| r.snapshot_entries(25).max_entries_per_message(8).apply_ranges(ranges));
    let j = Arc::clone(&journal);
    let mut cluster = Cluster::with_state_machines(config, move |id| Recorder {
        id,
        kv: KvStore::default(),
        journal: Arc::clone(&j),
    });
    let mut chaos = Chaos::new(profile, seed).with_filler();
    let mut actions = Vec::new();
    for _ in 0..150 {
        chaos.run(&mut cluster, 1);
        actions.extend(cluster.drain_actions());
    }
    let seen = std::mem::take(&mut *journal.lock().unwrap());
    (seen, (cluster.stats().crashes == 0).then_some(actions))
}

/// Ranges and committed configurations of each node come in index order,
/// without overlap, and no range is empty: a configuration entry ends a
/// range, and its `MembershipCommitted` comes between the range before it
/// and the range after it.
fn check_order(actions: &[(NodeId, Action)], context: &str) -> usize {
    let mut last: std::collections::BTreeMap<NodeId, Index> = Default::default();
    let mut ranges = 0;
    for (id, action) in actions {
        let (lo, hi) = match action {
            Action::ApplyRange { first, last } => {
                ranges += 1;
                assert!(first <= last, "{context}: empty range {first}..={last} on node {id}");
                (*first, *last)
            }
            Action::MembershipCommitted { index, .. } => (*index, *index),
            Action::RestoreSnapshot { meta, .. } => {
                last.insert(*id, meta.index);
                continue;
            }
            Action::Apply { .. } => panic!("{context}: Action::Apply with ranges on"),
            _ => continue,
        };
        let before = last.get(id).copied().unwrap_or(0);
        assert!(lo > before, "{context}: node {id} handed over {lo}..={hi} after {before}");
        last.insert(*id, hi);
    }
    ranges
}

/// Each node's committed configurations, in the order reported.
fn memberships(actions: &[(NodeId, Action)]) -> Vec<(NodeId, Index)> {
    let mut seen: Vec<_> = actions
        .iter()
        .filter_map(|(id, a)| match a {
            Action::MembershipCommitted { index, .. } => Some((*id, *index)),
            _ => None,
        })
        .collect();
    seen.sort_by_key(|&(id, _)| id);
    seen
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Compares the two hand-overs on one run: the number of hand-overs, and
/// of ranges whose order was checked (none if a node crashed).
fn compare(seed: u64, profile: FaultProfile) -> (usize, usize) {
    let context = format!(
        "replay: RAFT_IO_SEED={seed} RAFT_IO_PROFILE={profile:?} cargo test --features sim --test apply_ranges replay"
    );
    let (by_apply, applied) = run(seed, profile, false);
    let (by_range, actions) = run(seed, profile, true);
    assert!(by_apply == by_range, "{context}: the state machines saw different things");
    if let (Some(a), Some(r)) = (&applied, &actions) {
        assert_eq!(memberships(a), memberships(r), "{context}: the committed configurations differ");
    }
    (by_range.len(), actions.map_or(0, |a| check_order(&a, &context)))
}

#[test]
fn ranges_hand_over_what_apply_hands_over_under_every_profile() {
    let seeds: u64 = env("RAFT_IO_SEEDS").and_then(|s| s.parse().ok()).unwrap_or(16);
    let (mut seen, mut ordered) = (0, 0);
    for profile in FaultProfile::ALL {
        for seed in 0..seeds {
            let (s, r) = compare(seed, profile);
            seen += s;
            ordered += r;
        }
    }
    println!(
        "{seeds} seeds x {} profiles: {seen} hand-overs alike; {ordered} ranges in order (runs without crashes)",
        FaultProfile::ALL.len()
    );
    assert!(seen > 1_000 && ordered > 100, "the runs apply ({seen} hand-overs) through ranges ({ordered})");
}

#[test]
fn replay() {
    let Some(seed) = env("RAFT_IO_SEED").and_then(|s| s.parse().ok()) else { return };
    let profile = env("RAFT_IO_PROFILE")
        .and_then(|p| FaultProfile::ALL.into_iter().find(|f| format!("{f:?}").eq_ignore_ascii_case(&p)))
        .unwrap_or(FaultProfile::Everything);
    compare(seed, profile);
}

/// A range is lent only while it is applied and held: past the applied
/// index it is refused, and once a later step compacted it away the log's
/// error comes back; neither changes the node.
#[test]
fn a_range_past_the_applied_index_or_compacted_is_refused() {
    let mut node: RaftNode = RaftNode::new(RaftConfig::single(1).apply_ranges(true)).unwrap();
    node.step(Event::Campaign).unwrap();
    let mut actions = Vec::new();
    node.step_into(Event::ProposeBatch(vec![Bytes::from("a"), Bytes::from("b")]), &mut actions).unwrap();
    assert!(matches!(actions.as_slice(), [.., Action::ApplyRange { first: 2, last: 3 }]), "{actions:?}");
    let mut seen: Vec<(Index, Term, Bytes)> = Vec::new();
    node.visit_applied(2, 3, |i, t, c| seen.push((i, t, c.clone()))).unwrap();
    assert_eq!(seen, [(2, 1, Bytes::from("a")), (3, 1, Bytes::from("b"))]);
    // The no-op at 1 is skipped; an empty range visits nothing.
    seen.clear();
    node.visit_applied(1, 2, |i, t, c| seen.push((i, t, c.clone()))).unwrap();
    node.visit_applied(3, 2, |i, t, c| seen.push((i, t, c.clone()))).unwrap();
    assert_eq!(seen, [(2, 1, Bytes::from("a"))]);
    assert!(matches!(node.visit_applied(3, 4, |_, _, _| {}), Err(Error::NotApplied { first: 3, last: 4, applied: 3 })));
    node.step(Event::Snapshot { index: 3, data: Bytes::from("state") }).unwrap();
    assert!(matches!(node.visit_applied(2, 3, |_, _, _| {}), Err(Error::NotHeld { first: 2, first_held: 4 })));
    assert!(!node.is_halted(), "reading halts nothing");
    node.step(Event::Propose(Bytes::from("c"))).unwrap();
    assert_eq!(node.last_applied(), 4);
}

/// A range begins and ends at commands: the no-op a leader appends is in
/// no range, and a configuration entry ends a run with its
/// `MembershipCommitted` — also once the node hands runs of commands over
/// without reading them (`docs/PROTOCOL.md` §4.6).
/// What the log holds but the node has not applied (a leader's entry no
/// follower has acknowledged) is refused, though it lies at the log's end;
/// a range over thousands of entries, stored in several pieces, is lent
/// whole, in order.
#[test]
fn a_held_entry_not_applied_is_refused_and_a_long_range_is_lent_whole() {
    let mut h = common::Harness::new(2, |c| c.apply_ranges(true));
    h.elect(1);
    h.deliver_all();
    let mut seen = Vec::new();
    for k in 0..3000u32 {
        h.step(1, Event::Propose(Bytes::from(k.to_le_bytes().to_vec()))).unwrap();
        h.deliver_all();
    }
    let applied = h.node(1).last_applied();
    h.node(1).visit_applied(1, applied, |_, _, c| seen.push(c.clone())).unwrap();
    let want: Vec<Bytes> = (0..3000u32).map(|k| Bytes::from(k.to_le_bytes().to_vec())).collect();
    assert_eq!(seen, want, "every command across the log's pieces, in order");
    h.isolate(1);
    h.step(1, Event::Propose(Bytes::from("held"))).unwrap();
    let last = h.node(1).last_index();
    assert_eq!(h.node(1).last_applied(), last - 1, "not committed: no follower has it");
    let refused = h.node(1).visit_applied(last, last, |_, _, _| panic!("an entry not applied was lent"));
    assert!(matches!(refused, Err(Error::NotApplied { applied, .. }) if applied == last - 1), "{refused:?}");
}

#[test]
fn ranges_begin_and_end_at_commands_and_a_configuration_entry_ends_one() {
    let mut node: RaftNode = RaftNode::new(RaftConfig::single(1).apply_ranges(true)).unwrap();
    let mut actions = Vec::new();
    let mut step = |node: &mut RaftNode, event: Event| {
        actions.clear();
        node.step_into(event, &mut actions).unwrap();
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ApplyRange { first, last } => Some((*first, *last, false)),
                Action::MembershipCommitted { index, .. } => Some((*index, *index, true)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // The no-op at 1, applied in the campaign's step: no range.
    assert_eq!(step(&mut node, Event::Campaign), []);
    assert_eq!(step(&mut node, Event::ProposeBatch(vec!["a".into(), "b".into()])), [(2, 3, false)]);
    assert_eq!(step(&mut node, Event::Propose("c".into())), [(4, 4, false)]);
    // The configuration entry at 5, applied in the step that appends it.
    let change = raft_io::MembershipChange::AddLearner(2);
    assert_eq!(step(&mut node, Event::ChangeMembership(change)), [(5, 5, true)]);
    assert_eq!(step(&mut node, Event::Propose("d".into())), [(6, 6, false)]);
    // A new term: its no-op is in no range either.
    let mut node = RaftNode::with_log(RaftConfig::single(1).apply_ranges(true), node.log().durable()).unwrap();
    assert_eq!(step(&mut node, Event::Campaign), [(2, 4, false), (5, 5, true), (6, 6, false)]);
    assert_eq!(step(&mut node, Event::Propose("e".into())), [(8, 8, false)]);
}

/// A user's log that does not override `visit_entries` (the trait's
/// default lends clones made by `entries`), and, with `lend_nothing`, whose
/// `entries` wrongly returns nothing.
struct UserLog {
    inner: MemoryLog,
    lend_nothing: bool,
}

impl RaftLog for UserLog {
    common::forward_log!(inner, receive);
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) -> Result<(), StorageError> {
        if self.lend_nothing { Ok(()) } else { self.inner.entries(lo, hi, max_bytes, out) }
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

/// The trait's default `visit_entries` serves both hand-overs; a log that
/// lends nothing for entries it holds halts the node with a storage error
/// instead of hanging it.
#[test]
fn a_log_without_its_own_visit_serves_ranges_and_a_log_lending_nothing_halts_the_node() {
    for ranges in [false, true] {
        let log = UserLog { inner: MemoryLog::new(), lend_nothing: false };
        let mut node = RaftNode::with_log(RaftConfig::single(1).apply_ranges(ranges), log).unwrap();
        node.step(Event::Campaign).unwrap();
        let mut actions = Vec::new();
        node.step_into(Event::ProposeBatch(vec![Bytes::from("a"), Bytes::from("b")]), &mut actions).unwrap();
        let mut seen = Vec::new();
        for action in actions {
            match action {
                Action::Apply { index, command, .. } => seen.push((index, command)),
                Action::ApplyRange { first, last } => {
                    node.visit_applied(first, last, |i, _, c| seen.push((i, c.clone()))).unwrap();
                }
                _ => {}
            }
        }
        assert_eq!(seen, [(2, Bytes::from("a")), (3, Bytes::from("b"))], "ranges {ranges}");
    }
    let log = UserLog { inner: MemoryLog::new(), lend_nothing: true };
    let mut node = RaftNode::with_log(RaftConfig::single(1), log).unwrap();
    assert!(matches!(node.step(Event::Campaign), Err(Error::Storage(StorageError::Unavailable { index: 1, .. }))));
    assert!(node.is_halted());
}
