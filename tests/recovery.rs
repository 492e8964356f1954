//! Recovering a cluster that lost a quorum for good (`raft_io::recovery`,
//! PROTOCOL.md §7.4): the survivor with the most up-to-date log is made the
//! only voter offline, restarted, leads alone with everything it held, and
//! grows the cluster back with new nodes; one old node restarted by mistake
//! never leads. A cluster lost whole starts again from a backup of a
//! state machine's snapshot (`recovery::seed`), or from a backup file
//! of a node's snapshot and committed entries (`recovery::take_backup`,
//! `recovery::restore`).

mod common;

use common::{Harness, cmd};
use raft_io::recovery;
use raft_io::{Action, Event, Index, MembershipChange, NodeId, RaftConfig, RaftLog, Role};

/// The commands `id` applied, in order.
fn applied(h: &Harness, id: NodeId) -> Vec<(Index, bytes::Bytes)> {
    h.applied[&id].iter().map(|(i, _, c)| (*i, c.clone())).collect()
}

fn ticks_until_leader(h: &mut Harness, id: NodeId) {
    for _ in 0..100 {
        if h.node(id).role() == Role::Leader {
            return;
        }
        h.tick_all(1);
    }
    panic!("node {id} never led");
}

/// Node 4, new, joins node 1's cluster as a learner, catches up, and is
/// promoted: the voters are then 1 and 4.
fn join_and_promote(h: &mut Harness, config: RaftConfig) {
    h.add(4, config, raft_io::MemoryLog::new());
    h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(4))).unwrap();
    for _ in 0..60 {
        h.tick_all(1);
    }
    h.step(1, Event::ChangeMembership(MembershipChange::Promote(4))).unwrap();
    for _ in 0..20 {
        h.tick_all(1);
    }
    assert_eq!(h.node(1).membership().voters(), [1, 4]);
}

/// Three nodes, node 1 elected, `commands` committed and applied
/// everywhere.
fn committed(commands: &[&str]) -> Harness {
    let mut h = Harness::new(3, |c| c);
    h.elect(1);
    for c in commands {
        h.propose(1, c).unwrap();
    }
    h.deliver_all();
    h.tick_all(4);
    h
}

/// Every node of the first cluster lost for good: crashed, its log
/// destroyed, and what it applied forgotten.
fn lose_all(h: &mut Harness) {
    for id in [1, 2, 3] {
        h.crash(id);
        h.destroy(id);
        h.applied.remove(&id);
    }
}

#[test]
fn the_most_up_to_date_survivor_leads_alone_keeps_its_log_and_grows_the_cluster_back() {
    let mut h = Harness::new(3, |c| c);
    h.elect(1);
    h.propose(1, "a").unwrap();
    h.propose(1, "b").unwrap();
    h.deliver_all();
    h.tick_all(4);
    // "c" reaches node 1's log only: never committed.
    h.isolate(1);
    h.propose(1, "c").unwrap();
    h.deliver_all();
    for id in [1, 2, 3] {
        h.crash(id);
    }
    h.heal();
    // Choosing the survivor: node 1 holds the most.
    let summaries: Vec<_> = [1, 2].iter().map(|&id| recovery::inspect(&*h.crashed_log(id).unwrap()).unwrap()).collect();
    assert!((summaries[0].last_term, summaries[0].last_index) > (summaries[1].last_term, summaries[1].last_index));
    assert_eq!(summaries[0].membership.voters(), [1, 2, 3]);
    // Nodes 2 and 3 are gone; node 1 is made the only voter.
    h.destroy(3);
    let stale = h.crashed_log(2).unwrap().clone();
    h.destroy(2);
    let log = h.crashed_log(1).unwrap();
    let last = log.last_index();
    let forced = recovery::force_voters(log, &[1]).unwrap();
    assert_eq!(forced.index, last + 1);
    assert_eq!(forced.term, summaries[0].hard_state.term + 1);
    assert!(!log.has_unsynced_changes(), "the recovery is synced");
    h.restart(1);
    ticks_until_leader(&mut h, 1);
    assert_eq!(h.node(1).membership().voters(), [1]);
    let mut seen = applied(&h, 1);
    seen.retain(|(i, _)| *i > 0);
    let commands: Vec<_> = seen.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(&commands[commands.len() - 3..], [cmd("a"), cmd("b"), cmd("c")], "everything it held");
    // It takes writes alone.
    h.propose(1, "d").unwrap();
    assert_eq!(applied(&h, 1).last().map(|(_, c)| c.clone()), Some(cmd("d")));
    // A new node joins, catches up and becomes a voter.
    join_and_promote(&mut h, RaftConfig::joining(4).seed(4));
    let on_four: Vec<_> = applied(&h, 4).into_iter().map(|(_, c)| c).collect();
    for c in ["a", "b", "c", "d"] {
        assert!(on_four.contains(&cmd(c)), "node 4 applied {c}: {on_four:?}");
    }
    // Node 2's old log, restarted by mistake: it never leads, and it is
    // told it was removed.
    h.add(2, RaftConfig::new(2, [1, 2, 3]).seed(2 * 7919), stale);
    for _ in 0..100 {
        h.tick_all(1);
        assert_ne!(h.node(2).role(), Role::Leader, "a stale node led");
    }
    assert!(h.actions.iter().any(|(id, a)| *id == 2 && matches!(a, Action::Removed { .. })));
    assert_eq!(h.leader(), Some(1));
}

/// On a `WalLog`: the recovery is durable, and the node restarted on the
/// reopened files leads alone.
#[cfg(feature = "persistence")]
#[test]
fn a_recovered_wal_log_reopens_with_the_new_configuration() {
    use raft_io::recovery::RecoveryError;
    use raft_io::{RaftNode, WalLog};
    let dir = tempfile::tempdir().unwrap();
    let config = || RaftConfig::new(1, [1, 2, 3]).seed(1);
    {
        let mut node = RaftNode::with_log(config(), WalLog::open(dir.path()).unwrap()).unwrap();
        // Its vote requests are never answered.
        node.step(Event::Campaign).unwrap();
        for _ in 0..30 {
            node.step(Event::Tick).unwrap();
        }
        assert!(!node.is_leader());
    }
    let forced = {
        let mut log = WalLog::open(dir.path()).unwrap();
        let refused = recovery::force_voters(&mut log, &[2, 3]);
        assert!(matches!(refused, Err(RecoveryError::NotAVoter { node: 1 })), "{refused:?}");
        recovery::force_voters(&mut log, &[1]).unwrap()
    };
    let log = WalLog::open(dir.path()).unwrap();
    let summary = recovery::inspect(&log).unwrap();
    assert_eq!((summary.membership_index, summary.last_term), (forced.index, forced.term));
    assert_eq!(summary.membership.voters(), [1]);
    let mut node = RaftNode::with_log(config(), log).unwrap();
    node.step(Event::Campaign).unwrap();
    assert!(node.is_leader());
    let actions: Vec<_> = node.step(Event::Propose(cmd("x"))).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { command, .. } if *command == cmd("x"))));
    assert!(node.log().last_index() > forced.index);
}

/// The commands node `id` applied, each as `name,` — the state the test's
/// state machines hold, and what a snapshot of one serializes.
fn state_of(commands: &[bytes::Bytes]) -> bytes::Bytes {
    commands.iter().flat_map(|c| c.iter().copied().chain([b','])).collect::<Vec<u8>>().into()
}

/// What node `id`'s state machine holds: the data of the last snapshot it
/// was handed, then every command applied after it.
fn machine(h: &Harness, id: NodeId) -> bytes::Bytes {
    let restored = h.actions.iter().rev().find_map(|(at, a)| match a {
        Action::RestoreSnapshot { meta, data } if *at == id => Some((meta.index, data.clone())),
        _ => None,
    });
    let (from, base) = restored.unwrap_or((0, bytes::Bytes::new()));
    let after: Vec<_> = h.applied[&id].iter().filter(|(i, _, _)| *i > from).map(|(_, _, c)| c.clone()).collect();
    [base, state_of(&after)].concat().into()
}

/// Every node lost: a new cluster is seeded from a backup of a state
/// machine's snapshot. The node started on the seeded log restores the
/// backup, leads alone, takes writes at indexes after the snapshot's, and
/// a new node joins and ends with the same state. What committed after the
/// backup was taken is lost.
#[test]
fn a_cluster_lost_whole_starts_again_from_a_backup_of_a_snapshot() {
    use raft_io::recovery::RecoveryError;
    use raft_io::{LogIdentity, Membership, MemoryLog, SnapshotMeta};
    let mut h = committed(&["a", "b", "c"]);
    // The backup: node 1's state machine, snapshotted through what it
    // applied, as a node's log keeps it.
    let at = h.node(1).last_applied();
    let backup = machine(&h, 1);
    assert_eq!(backup, state_of(&[cmd("a"), cmd("b"), cmd("c")]));
    h.step(1, Event::Snapshot { index: at, data: backup.clone() }).unwrap();
    let (meta, data) = (h.node(1).log().snapshot_meta().clone(), h.node(1).log().snapshot_data().unwrap());
    assert_eq!((meta.index, &data), (at, &backup));
    // "d" commits after the backup, then every node is lost.
    h.propose(1, "d").unwrap();
    h.deliver_all();
    h.tick_all(4);
    lose_all(&mut h);

    // A new cluster (a new cluster id), node 1 its only voter.
    let identity = LogIdentity { cluster_id: 9, node_id: 1 };
    let seeded = SnapshotMeta { index: meta.index, term: meta.term, membership: Membership::new([1], []).unwrap() };
    let mut log = MemoryLog::new();
    recovery::seed(&mut log, identity, seeded.clone(), data.clone()).unwrap();
    assert!(!log.has_unsynced_changes(), "the seed is synced");
    let durable = log.durable();
    assert_eq!((durable.snapshot_meta(), durable.snapshot_data().unwrap()), (&seeded, data.clone()));
    assert_eq!(durable.identity(), Some(identity));
    let again = recovery::seed(&mut log, identity, seeded.clone(), data.clone());
    assert!(matches!(again, Err(RecoveryError::InUse)), "{again:?}");

    h.add(1, RaftConfig::new(1, [1]).cluster_id(9).seed(1), log);
    ticks_until_leader(&mut h, 1);
    assert_eq!(machine(&h, 1), backup, "the backup restored, and nothing after it");
    h.propose(1, "e").unwrap();
    let last = h.applied[&1].last().cloned().unwrap();
    assert_eq!((last.0, last.2), (at + 2, cmd("e")), "after the snapshot and the new leader's no-op");
    assert!(last.1 > meta.term, "in a term after the snapshot's");

    // A new node joins the new cluster, fetches the snapshot, and is
    // promoted.
    join_and_promote(&mut h, RaftConfig::joining(4).cluster_id(9).seed(4));
    let everything = state_of(&[cmd("a"), cmd("b"), cmd("c"), cmd("e")]);
    assert_eq!(machine(&h, 1), everything);
    assert_eq!(machine(&h, 4), everything, "node 4 restored the backup and applied what followed");
}

/// On a `WalLog`: the seed is durable, and the node started on the
/// reopened files restores the backup and leads alone.
#[cfg(feature = "persistence")]
#[test]
fn a_seeded_wal_log_reopens_with_the_backup() {
    use raft_io::{LogIdentity, Membership, RaftNode, SnapshotMeta, WalLog};
    let dir = tempfile::tempdir().unwrap();
    let backup = bytes::Bytes::from_static(b"a,b,c,");
    let meta = SnapshotMeta { index: 7, term: 2, membership: Membership::new([1], []).unwrap() };
    {
        let mut log = WalLog::open(dir.path()).unwrap();
        recovery::seed(&mut log, LogIdentity { cluster_id: 5, node_id: 1 }, meta.clone(), backup.clone()).unwrap();
    }
    let log = WalLog::open(dir.path()).unwrap();
    let summary = recovery::inspect(&log).unwrap();
    assert_eq!((summary.snapshot_index, summary.last_index, summary.last_term), (7, 7, 2));
    assert_eq!(summary.hard_state.commit, 7);
    let mut node = RaftNode::with_log(RaftConfig::new(1, [1]).cluster_id(5), log).unwrap();
    let actions: Vec<_> = node.step(Event::Campaign).unwrap().collect();
    assert!(
        actions.iter().any(|a| matches!(a, Action::RestoreSnapshot { meta: m, data } if *m == meta && *data == backup))
    );
    assert!(node.is_leader());
    let actions: Vec<_> = node.step(Event::Propose(cmd("d"))).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 9, command, .. } if *command == cmd("d"))));
}

/// Every node lost, with a backup taken from a follower's log
/// (`recovery::take_backup`): its snapshot and the committed entries after
/// it, a configuration change among them. Kept as a file (with the
/// `persistence` feature) and restored into a new cluster's first log, it
/// gives a state machine that applied every command the old cluster had
/// committed when the backup was taken, in order; the old configuration
/// entry does not take effect; a new node joins and ends with the same
/// state.
#[test]
fn a_cluster_lost_whole_is_restored_with_everything_its_backup_holds() {
    use raft_io::recovery::Backup;
    use raft_io::{LogIdentity, Membership, MemoryLog};
    let mut h = committed(&["a", "b", "c"]);
    // Node 2 (a follower) snapshots its state machine.
    let at = h.node(2).last_applied();
    h.step(2, Event::Snapshot { index: at, data: machine(&h, 2) }).unwrap();
    h.propose(1, "d").unwrap();
    h.step(1, Event::ChangeMembership(MembershipChange::AddLearner(9))).unwrap();
    h.propose(1, "e").unwrap();
    h.deliver_all();
    h.tick_all(4);
    let backup = recovery::take_backup(h.node(2).log()).unwrap();
    let committed = state_of(&[cmd("a"), cmd("b"), cmd("c"), cmd("d"), cmd("e")]);
    assert_eq!(backup.snapshot.index, at);
    assert_eq!(backup.last_index(), h.node(1).log().last_index(), "everything committed when it was taken");
    #[cfg(feature = "persistence")]
    let backup = {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.backup");
        std::fs::write(&file, backup.encode()).unwrap();
        Backup::decode(&std::fs::read(&file).unwrap().into()).unwrap()
    };
    let backup: Backup = backup;
    // "f" commits after the backup, then every node is lost.
    h.propose(1, "f").unwrap();
    h.deliver_all();
    lose_all(&mut h);

    let mut log = MemoryLog::new();
    recovery::restore(&mut log, LogIdentity { cluster_id: 7, node_id: 1 }, &backup, Membership::new([1], []).unwrap())
        .unwrap();
    h.add(1, RaftConfig::new(1, [1]).cluster_id(7).seed(1), log);
    ticks_until_leader(&mut h, 1);
    assert_eq!(machine(&h, 1), committed, "the snapshot restored, then the entries after it");
    assert_eq!(h.node(1).membership().voters(), [1]);
    assert!(!h.node(1).membership().is_learner(9), "the old cluster's configuration entry is not in effect");
    h.propose(1, "g").unwrap();

    join_and_promote(&mut h, RaftConfig::joining(4).cluster_id(7).seed(4));
    let everything = state_of(&[cmd("a"), cmd("b"), cmd("c"), cmd("d"), cmd("e"), cmd("g")]);
    assert_eq!(machine(&h, 1), everything);
    assert_eq!(machine(&h, 4), everything, "node 4 caught up from the restored node");
}

/// A backup restored into a `WalLog` is durable: reopened, the node
/// restores the snapshot and applies the entries after it.
#[cfg(feature = "persistence")]
#[test]
fn a_restored_wal_log_reopens_with_the_backup() {
    use raft_io::{LogIdentity, Membership, MemoryLog, RaftNode, WalLog};
    let mut old = RaftNode::with_log(RaftConfig::new(1, [1]), MemoryLog::new()).unwrap();
    old.step(Event::Campaign).unwrap();
    old.step(Event::Propose(cmd("a"))).unwrap();
    old.step(Event::Snapshot { index: 2, data: cmd("a,") }).unwrap();
    old.step(Event::Propose(cmd("b"))).unwrap();
    let backup = recovery::take_backup(old.log()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = WalLog::open(dir.path()).unwrap();
        recovery::restore(
            &mut log,
            LogIdentity { cluster_id: 3, node_id: 2 },
            &backup,
            Membership::new([2], []).unwrap(),
        )
        .unwrap();
    }
    let log = WalLog::open(dir.path()).unwrap();
    let summary = recovery::inspect(&log).unwrap();
    assert_eq!((summary.snapshot_index, summary.last_index, summary.hard_state.commit), (2, 3, 3));
    let mut node = RaftNode::with_log(RaftConfig::new(2, [2]).cluster_id(3), log).unwrap();
    let actions: Vec<_> = node.step(Event::Campaign).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::RestoreSnapshot { data, .. } if *data == cmd("a,"))));
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 3, command, .. } if *command == cmd("b"))));
    assert!(node.is_leader());
}

/// One backup restored into two new logs with the same two voters: the
/// nodes start from the same committed state, elect one of them, and a
/// write commits on both.
#[test]
fn one_backup_restored_on_two_voters_starts_them_from_the_same_state() {
    use raft_io::{LogIdentity, Membership, MemoryLog};
    let mut h = committed(&["a", "b"]);
    let backup = recovery::take_backup(h.node(1).log()).unwrap();
    lose_all(&mut h);
    let voters = Membership::new([1, 2], []).unwrap();
    for id in [1, 2] {
        let mut log = MemoryLog::new();
        recovery::restore(&mut log, LogIdentity { cluster_id: 5, node_id: id }, &backup, voters.clone()).unwrap();
        h.add(id, RaftConfig::new(id, [1, 2]).cluster_id(5).seed(id), log);
    }
    h.elect(1);
    h.propose(1, "c").unwrap();
    h.deliver_all();
    h.tick_all(4);
    let everything = state_of(&[cmd("a"), cmd("b"), cmd("c")]);
    assert_eq!(machine(&h, 1), everything);
    assert_eq!(machine(&h, 2), everything);
}

/// Of two survivors, one missing an entry the other holds, neither may be
/// forced with the other (or any node its log names) among the new
/// voters: refused before anything is written. New ids are accepted.
#[test]
fn forcing_a_second_survivor_is_refused_before_anything_is_written() {
    use raft_io::recovery::RecoveryError;
    let mut h = committed(&["a", "b"]);
    // Node 2 misses "c"; then every node goes down, node 3 for good.
    h.isolate(2);
    h.propose(1, "c").unwrap();
    h.deliver_all();
    h.heal();
    for id in [1, 2, 3] {
        h.crash(id);
    }
    h.destroy(3);
    for (id, other) in [(1, 2), (2, 1)] {
        let log = h.crashed_log(id).unwrap();
        let before = recovery::inspect(&*log).unwrap();
        for voters in [vec![id, other], vec![id, 3], vec![id, other, 9]] {
            let refused = recovery::force_voters(log, &voters);
            assert!(
                matches!(refused, Err(RecoveryError::OldMember { node }) if node == voters[1]),
                "{voters:?}: {refused:?}"
            );
            assert!(recovery::check_voters(&*log, &voters).is_err());
        }
        assert_eq!(recovery::inspect(&*log).unwrap(), before, "a refusal writes nothing");
        assert!(!log.has_unsynced_changes());
    }
    let log = h.crashed_log(1).unwrap();
    let forced = recovery::force_voters(log, &[1, 9]).unwrap();
    assert_eq!(forced.membership.voters(), [1, 9], "a new id is not an old member");
}

/// A restore that fails part way (here: the disk fills after some of its
/// syncs) leaves a log no node starts on, whether the backup begins with a
/// snapshot or with the log's first entry: its hard state's term, 0, is
/// below the term of what it holds. The complete restore starts.
#[test]
fn a_restore_cut_short_is_refused_by_the_node() {
    use common::failing_log::FailingLog;
    use raft_io::{Error, LogIdentity, Membership, MemoryLog, RaftNode, SnapshotMeta};
    // Never compacted: a node's log from its first entry.
    let mut first = RaftNode::with_log(RaftConfig::new(1, [1]), MemoryLog::new()).unwrap();
    first.step(Event::Campaign).unwrap();
    for i in 0..20 {
        first.step(Event::Propose(cmd(&format!("command {i:02} ............................")))).unwrap();
    }
    // Compacted: a snapshot at 10 in term 5, then entries of term 6.
    let mut compacted = MemoryLog::new();
    compacted.set_identity(LogIdentity { cluster_id: 0, node_id: 1 }).unwrap();
    let meta = SnapshotMeta { index: 10, term: 5, membership: Membership::new([1], []).unwrap() };
    compacted.install_snapshot(meta, cmd("state at 10")).unwrap();
    let mut entries: Vec<_> =
        (11..=30).map(|i| raft_io::Entry::normal(6, i, cmd("forty bytes of a command ..............."))).collect();
    compacted.append(&mut entries).unwrap();
    compacted.set_hard_state(raft_io::HardState { term: 6, vote: None, commit: 30 }).unwrap();
    for backup in [recovery::take_backup(first.log()).unwrap(), recovery::take_backup(&compacted).unwrap()] {
        let restore = |syncs| {
            let mut log = FailingLog::new(syncs, 200);
            let identity = LogIdentity { cluster_id: 2, node_id: 1 };
            let done = recovery::restore(&mut log, identity, &backup, Membership::new([1], []).unwrap());
            (done.is_ok(), RaftNode::with_log(RaftConfig::new(1, [1]).cluster_id(2), log.inner.durable()))
        };
        let mut syncs = 1;
        while let (false, started) = restore(syncs) {
            assert!(matches!(started, Err(Error::CorruptLog(_))), "after {syncs} syncs: {:?}", started.map(|_| ()));
            syncs += 1;
        }
        assert!(syncs > 2, "the restore took {syncs} syncs: the cut is in the middle");
        let mut node = restore(syncs).1.unwrap();
        node.step(Event::Campaign).unwrap();
        assert!(node.is_leader());
        assert_eq!(node.log().hard_state().term, backup.last_term() + 1);
    }
}

/// A log that hands at most `page` entries per read, whatever the byte
/// limit (a log of another crate may page its answers).
struct PagingLog {
    inner: raft_io::MemoryLog,
    page: usize,
}

impl RaftLog for PagingLog {
    common::forward_log!(inner, receive);

    fn entries(
        &self,
        lo: Index,
        hi: Index,
        max_bytes: u64,
        out: &mut Vec<raft_io::Entry>,
    ) -> Result<(), raft_io::StorageError> {
        let hi = hi.min(lo + self.page as u64);
        self.inner.entries(lo, hi, max_bytes, out)
    }
    fn sync(&mut self) -> Result<(), raft_io::StorageError> {
        self.inner.sync()
    }
}

/// A backup holds every committed entry after the snapshot or is refused:
/// a log that hands fewer than asked for (here, pages of two) made one that
/// silently ended short of the commit index.
#[test]
fn a_backup_of_a_log_that_hands_fewer_entries_than_asked_is_refused() {
    let h = committed(&["a", "b", "c", "d"]);
    let inner = h.node(2).log().clone();
    let commit = inner.hard_state().commit;
    assert!(commit >= 5, "entries enough to page: commit {commit}");
    let whole = recovery::take_backup(&inner).unwrap();
    assert_eq!(whole.last_index(), commit);
    let paged = PagingLog { inner, page: 2 };
    match recovery::take_backup(&paged) {
        Err(recovery::RecoveryError::CorruptLog(why)) => assert!(why.contains("entries"), "{why}"),
        other => panic!("a short backup was taken: {:?}", other.map(|b| b.last_index())),
    }
}
