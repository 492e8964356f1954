//! Nodes on `WalLog` (real files): recovery through `RaftNode::with_log`,
//! persist-before-send counted in WAL syncs, and crashes at every step
//! boundary and every durable operation of a 3-node run.
//!
//! `RAFT_IO_SOAK=1` tears every crash point's last write in all four ways
//! (none, a torn header, half, all) instead of one per point.
#![cfg(feature = "persistence")]

#[path = "support/wal_cluster.rs"]
mod wal_cluster;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use raft_io::log::WalOptions;
use raft_io::{
    Action, Entry, Error, Event, HardState, LogIdentity, MembershipChange, NodeId, RaftConfig, RaftLog, RaftNode, Role,
    SnapshotMeta, StorageError, WalLog,
};
use wal_cluster::{CrashAt, Keep, WalCluster, tree};

fn cmd(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

fn propose(c: &mut WalCluster, leader: NodeId, n: usize, tag: &str) {
    let batch = (0..n).map(|i| cmd(format!("{tag}-{i}"))).collect();
    c.step(leader, Event::ProposeBatch(batch)).expect("proposal accepted");
    c.deliver_all();
    c.tick_all();
}

/// What a restarted node must recover exactly.
#[derive(Debug, PartialEq)]
struct Durable {
    term: u64,
    vote: Option<NodeId>,
    entries: Vec<Entry>,
    snapshot: SnapshotMeta,
    snapshot_data: Bytes,
    membership: raft_io::Membership,
}

fn durable(node: &RaftNode<WalLog>) -> Durable {
    let log = node.log();
    let mut entries = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut entries).unwrap();
    Durable {
        term: node.term(),
        vote: node.status().vote,
        entries,
        snapshot: log.snapshot_meta().clone(),
        snapshot_data: log.snapshot_data().unwrap(),
        membership: node.membership().clone(),
    }
}

/// A 3-node cluster that committed commands, a learner addition, a
/// snapshot on every node, a second membership change in the log suffix and
/// more commands after it.
fn used_cluster() -> WalCluster {
    let mut c = WalCluster::new(3, |c| c, None);
    c.step(1, Event::Campaign).unwrap();
    let leader = c.elect(100);
    assert_eq!(leader, 1);
    propose(&mut c, leader, 5, "a");
    c.step(leader, Event::ChangeMembership(MembershipChange::AddLearner(4))).unwrap();
    c.deliver_all();
    c.tick_all();
    propose(&mut c, leader, 3, "b");
    for id in 1..=3 {
        let applied = c.node(id).last_applied();
        let data = Bytes::copy_from_slice(&c.members[&id].sm.to_le_bytes());
        c.step(id, Event::Snapshot { index: applied, data }).unwrap();
    }
    c.step(leader, Event::ChangeMembership(MembershipChange::AddLearner(5))).unwrap();
    c.deliver_all();
    c.tick_all();
    propose(&mut c, leader, 4, "c");
    c.converge(50);
    for id in 1..=3 {
        let n = c.node(id);
        let snap = n.log().snapshot_meta();
        assert!(snap.index > 5 && snap.membership.is_learner(4) && !snap.membership.is_learner(5));
        assert!(n.membership().is_learner(5), "node {id}: the second change is an entry after the snapshot");
        assert!(n.last_index() > snap.index + 4);
    }
    c
}

#[test]
fn a_restarted_node_recovers_term_vote_commit_log_snapshot_and_membership() {
    let mut c = used_cluster();
    for id in 1..=3 {
        let node = c.members.get_mut(&id).unwrap().node.take().unwrap();
        let was_leader = node.is_leader();
        let (before, commit, config) = (durable(&node), node.commit_index(), node.config().clone());
        // A clean shutdown writes the buffered commit index; a crash (a drop
        // without close) may come back with an older one.
        let crash = id == 1;
        if crash {
            drop(node);
        } else {
            node.into_log().close().unwrap();
        }
        let mut node = RaftNode::with_log(config, WalLog::open(c.dir(id)).unwrap()).unwrap();
        assert_eq!(durable(&node), before, "node {id}");
        assert_eq!(node.role(), Role::Follower, "node {id} restarts as a follower");
        assert_eq!(node.leader(), None);
        assert!(node.commit_index() <= commit && node.commit_index() >= before.snapshot.index);
        if !crash {
            assert_eq!(node.commit_index(), commit, "node {id}: close wrote the commit index");
        }
        assert_eq!(node.log().hard_state().commit, node.commit_index());
        if was_leader {
            assert_eq!(id, 1);
        }
        // The first step hands the snapshot to the state machine, then the
        // committed entries after it.
        let actions: Vec<Action> = node.step(Event::Tick).unwrap().collect();
        assert!(
            matches!(&actions[0], Action::RestoreSnapshot { meta, data } if *meta == before.snapshot && *data == before.snapshot_data)
        );
        let applied: Vec<u64> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Apply { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert!(applied.iter().all(|&i| i > before.snapshot.index && i <= node.commit_index()));
        assert_eq!(node.last_applied(), node.commit_index());
        c.members.get_mut(&id).unwrap().node = Some(node);
    }
    // The restarted cluster elects a leader and keeps going.
    c.members.values_mut().for_each(|m| m.sm = wal_cluster::SM_INIT);
    c.committed.clear();
    let leader = c.elect(200);
    propose(&mut c, leader, 2, "after");
    for id in 1..=3 {
        assert_eq!(c.node(id).commit_index(), c.node(leader).last_index());
    }
}

#[test]
fn a_log_of_another_node_or_cluster_is_refused_and_left_untouched() {
    let mut c = used_cluster();
    for id in 1..=3 {
        drop(c.members.get_mut(&id).unwrap().node.take());
    }
    let dir = c.dir(1).to_path_buf();
    let before = tree(&dir);
    let wrong_node = RaftNode::with_log(RaftConfig::new(2, [1, 2, 3]), WalLog::open(&dir).unwrap());
    assert!(matches!(wrong_node, Err(Error::WrongLog { found_node: 1, node: 2, .. })), "{wrong_node:?}");
    let wrong_cluster = RaftNode::with_log(RaftConfig::new(1, [1, 2, 3]).cluster_id(9), WalLog::open(&dir).unwrap());
    assert!(
        matches!(wrong_cluster, Err(Error::WrongLog { found_cluster: 0, cluster: 9, found_node: 1, node: 1 })),
        "{wrong_cluster:?}"
    );
    let expect = LogIdentity { cluster_id: 0, node_id: 3 };
    let refused = WalLog::open_with(&dir, WalOptions::new().expect_identity(expect));
    assert!(matches!(refused, Err(StorageError::WrongIdentity { found, .. }) if found.node_id == 1));
    assert_eq!(tree(&dir), before, "refusals leave the directory as it was");
    // The right owner still opens it.
    let mine = WalOptions::new().expect_identity(LogIdentity { cluster_id: 0, node_id: 1 });
    let node = RaftNode::with_log(RaftConfig::new(1, [1, 2, 3]), WalLog::open_with(&dir, mine).unwrap()).unwrap();
    assert!(node.last_index() > 0);
}

#[test]
fn one_wal_sync_per_step_that_changes_durable_state_and_none_otherwise() {
    let mut c = WalCluster::new(3, |c| c.snapshot_entries(8), None);
    c.verify_replies = true;
    c.step(2, Event::Campaign).unwrap();
    let leader = c.elect(100);
    for k in 0..12 {
        propose(&mut c, leader, 1 + k % 5, "p");
    }
    c.converge(50);
    // A follower down while the others compact catches up by a streamed
    // snapshot: chunks written to a file sync nothing, the install syncs
    // once.
    let follower = if leader == 3 { 1 } else { 3 };
    c.crash_only(follower, Keep::None);
    for k in 0..6 {
        propose(&mut c, leader, 4, &format!("q{k}"));
    }
    c.restart(follower);
    c.converge(100);
    assert!(c.node(follower).log().snapshot_meta().index > 0);
    for r in &c.record {
        assert_eq!(r.syncs, u64::from(r.changed), "{r:?}");
    }
    let durable_steps = c.record.iter().filter(|r| r.changed).count();
    assert!(durable_steps >= 3 * 12, "{durable_steps} durable steps");
    assert!(c.record.iter().any(|r| r.event == "TakeSnapshot" && r.syncs == 1), "compaction steps sync once");
    let chunks: Vec<_> = c.record.iter().filter(|r| r.node == follower && r.event == "Snapshot").collect();
    assert!(chunks.iter().any(|r| r.syncs == 1 && r.changed), "the streamed install syncs once: {chunks:?}");
    assert!(c.verified_replies >= 2 + 2 * 12, "{} replies checked against a power loss", c.verified_replies);

    // An idle cluster: heartbeat rounds and follower ticks write nothing.
    c.record.clear();
    for _ in 0..10 {
        c.tick_all();
    }
    assert!(c.record.iter().any(|r| r.sent.contains(&"Heartbeat")));
    assert!(c.record.iter().any(|r| r.sent.contains(&"HeartbeatResponse")));
    assert!(c.record.iter().any(|r| r.node != leader && r.event == "Tick"));
    for r in &c.record {
        assert_eq!((r.syncs, r.ops), (0, 0), "an idle step touched the disk: {r:?}");
    }
}

#[test]
fn a_vote_and_an_acknowledgement_survive_a_power_loss_right_after_the_step() {
    let mut c = WalCluster::new(3, |c| c, None);
    // Node 2 campaigns; deliver until node 3 has granted its vote.
    c.step(2, Event::Campaign).unwrap();
    while !c.record.iter().any(|r| r.node == 3 && r.sent.contains(&"VoteResponse")) {
        assert!(c.deliver_one(), "node 3 never answered");
    }
    let (term, candidate) = c.members[&3].voted.expect("node 3 voted");
    assert_eq!(candidate, 2);
    // Power loss now: unsynced WAL bytes are lost (there must be none).
    c.crash_and_restart(3, Keep::None);
    assert_eq!(c.crashes, vec![(3, 0, 0)]);
    let hs = c.node(3).log().hard_state();
    assert_eq!((hs.term, hs.vote), (term, Some(2)));

    let leader = c.elect(100);
    assert_eq!(leader, 2);
    let follower = 1;
    c.record.clear();
    c.step(leader, Event::ProposeBatch(vec![cmd("x"), cmd("y")])).unwrap();
    while !c.record.iter().any(|r| r.node == follower && r.event == "Append" && r.sent.contains(&"AppendResponse")) {
        assert!(c.deliver_one());
    }
    let (index, term) = *c.members[&follower].acked.last().expect("acknowledged");
    assert_eq!(index, c.node(leader).last_index());
    c.crash_and_restart(follower, Keep::None);
    assert_eq!(c.crashes.last(), Some(&(follower, 0, 0)));
    assert_eq!(c.node(follower).log().term(index), Some(term));
    let mut got = Vec::new();
    c.node(follower).log().entries(index - 1, index + 1, u64::MAX, &mut got).unwrap();
    assert_eq!(got.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), vec![cmd("x"), cmd("y")]);
    c.deliver_all();
    c.converge(100);
}

fn soak() -> bool {
    std::env::var_os("RAFT_IO_SOAK").is_some()
}

const ROUNDS: usize = 10;

/// The crash-test workload: node 1 campaigns, the leader proposes batches
/// of 1 to 3 commands a round (snapshots every 6 entries), then the
/// cluster must converge with every committed entry everywhere.
fn workload(crash: Option<CrashAt>) -> WalCluster {
    let mut c = WalCluster::new(3, |c| c.snapshot_entries(6), crash);
    c.step(1, Event::Campaign).unwrap();
    c.deliver_all();
    for k in 0..ROUNDS {
        if let Some(l) = c.leader() {
            let batch = (0..1 + k % 3).map(|i| cmd(format!("r{k}-{i}"))).collect();
            let _ = c.step(l, Event::ProposeBatch(batch));
        }
        c.deliver_all();
        c.tick_all();
    }
    c.converge(300);
    c
}

/// Runs `plans` on a few threads (the runs wait on fsync, not the CPU);
/// returns the crashes each run saw.
fn run_all(plans: &[CrashAt]) -> Vec<Vec<(NodeId, u64, u64)>> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(vec![Vec::new(); plans.len()]);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(8).min(16);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(&plan) = plans.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let crashes = workload(Some(plan)).crashes;
                    assert_eq!(crashes.len(), 1, "{plan:?}");
                    out.lock().unwrap()[plans.iter().position(|p| *p == plan).unwrap()] = crashes;
                }
            });
        }
    });
    out.into_inner().unwrap()
}

#[test]
fn a_crash_at_every_step_boundary_and_durable_operation_loses_nothing_acknowledged() {
    let reference = workload(None);
    let committed = reference.committed.len();
    assert!(committed >= ROUNDS, "{committed} commands committed");
    let mut plans = Vec::new();
    // Node 1 leads the run; node 2 follows.
    for victim in [1, 2] {
        let (ops, steps) = (reference.members[&victim].faults.operations(), reference.members[&victim].steps);
        for op in 0..ops {
            let keeps: Vec<Keep> = if soak() { Keep::ALL.to_vec() } else { vec![Keep::ALL[op as usize % 4]] };
            plans.extend(keeps.into_iter().map(|keep| CrashAt::Op { node: victim, op, keep }));
        }
        plans.extend((1..=steps).map(|step| CrashAt::AfterStep { node: victim, step }));
        println!("node {victim}: crashes at each of {ops} durable operations and {steps} step boundaries");
    }
    let crashes = run_all(&plans);
    let mut torn = 0;
    for (plan, crashes) in plans.iter().zip(&crashes) {
        let (_, lost, kept) = crashes[0];
        if matches!(plan, CrashAt::AfterStep { .. }) {
            assert_eq!(lost + kept, 0, "{plan:?}: a step leaves nothing unsynced");
        }
        torn += u64::from(lost > 0 && kept > 0);
    }
    println!("{} crash runs, {torn} with a torn last write", plans.len());
    assert!(torn > 10);
}

#[test]
fn a_crashed_wal_directory_opens_as_of_a_sync() {
    // The plain log contract at node level: a node that wrote through a
    // failing sync comes back with exactly what was synced before it.
    let tmp = tempfile::tempdir().unwrap();
    let faults = raft_io::log::wal::FaultInjector::new();
    let options = WalOptions::new().fault_injector(faults.clone());
    let mut node = RaftNode::with_log(RaftConfig::single(1), WalLog::open_with(tmp.path(), options).unwrap()).unwrap();
    node.step(Event::Campaign).unwrap().for_each(drop);
    node.step(Event::Propose(cmd("kept"))).unwrap().for_each(drop);
    let last = node.last_index();
    faults.fail_next_sync();
    assert!(matches!(node.step(Event::Propose(cmd("lost"))), Err(Error::Storage(_))));
    assert!(node.is_halted());
    drop(node);
    faults.lose_unsynced(0).unwrap();
    let node = RaftNode::with_log(RaftConfig::single(1), WalLog::open(tmp.path()).unwrap()).unwrap();
    assert_eq!(node.last_index(), last);
    assert_eq!(node.log().hard_state(), HardState { term: 1, vote: Some(1), commit: node.commit_index() });
}
