//! `MultiHandle::propose_to` and `Completions`: many proposals, to many
//! groups, through the handles of different nodes, end in one queue, each
//! exactly once with its tag; a proposal refused at submission has no
//! outcome there; one that cannot commit ends in `Timeout` from the
//! driver, and the ones a stopping node still holds end in
//! `ShuttingDown`. Every wait has a generous deadline; no outcome depends
//! on timing.
#![cfg(all(feature = "net", feature = "persistence"))]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::log::shared::SharedWal;
use raft_io::multi::{GroupId, HostConfig};
use raft_io::runtime::multi::{Completion, Completions, MultiHandle, MultiRuntime};
use raft_io::runtime::{RuntimeError, StateMachine};
use raft_io::transport::{TcpConfig, TcpGroupTransport};
use raft_io::{NodeId, RaftConfig};

/// Echoes each command with its position in the group's log.
#[derive(Default)]
struct Log(u64);

impl StateMachine for Log {
    type Output = (u64, Bytes);
    fn apply(&mut self, _index: u64, command: &Bytes) -> (u64, Bytes) {
        self.0 += 1;
        (self.0, command.clone())
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &Bytes) {
        self.0 = data.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `done` has given `n` outcomes in all (failing after two
/// minutes), and checks that no more come soon after.
fn collect<O>(done: &Completions<O>, n: usize) -> Vec<Completion<O>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "{} of {n} outcomes came", out.len());
        done.wait_timeout(Duration::from_millis(100), &mut out);
    }
    assert_eq!(done.wait_timeout(Duration::from_millis(50), &mut out), 0, "no outcome beyond the {n} expected");
    out
}

/// Runtimes for nodes `ids` (each a member of every group `1..=groups`,
/// with `config`), connected over loopback TCP.
fn cluster(
    ids: &[NodeId],
    groups: u64,
    config: impl Fn(NodeId, GroupId) -> RaftConfig,
) -> (Vec<MultiHandle<Log>>, Vec<tempfile::TempDir>) {
    let dirs: Vec<tempfile::TempDir> = ids.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let transports: Vec<TcpGroupTransport> = ids
        .iter()
        .map(|&id| TcpGroupTransport::bind(TcpConfig::new(id, "127.0.0.1:0".parse().unwrap()).cluster_id(12)).unwrap())
        .collect();
    let addrs: Vec<_> = transports.iter().map(TcpGroupTransport::local_addr).collect();
    for (i, t) in transports.iter().enumerate() {
        for (j, &addr) in addrs.iter().enumerate() {
            if i != j {
                t.add_peer(ids[j], addr).unwrap();
            }
        }
    }
    let handles = ids
        .iter()
        .zip(transports)
        .zip(&dirs)
        .map(|((&id, t), dir)| {
            let wal = SharedWal::open(dir.path()).unwrap();
            let mut runtime = MultiRuntime::new(HostConfig::new(id), wal, t, |_| Log::default());
            for g in 1..=groups {
                runtime = runtime.group(g, config(id, g));
            }
            runtime.start().unwrap()
        })
        .collect();
    (handles, dirs)
}

/// The node (index into `handles`) every node names as `group`'s leader.
fn leader(handles: &[MultiHandle<Log>], group: GroupId) -> usize {
    let mut found = 0;
    wait_until(&format!("a leader of group {group}"), || match handles[0].leader(group) {
        Some(l) if handles.iter().all(|h| h.leader(group) == Some(l)) => {
            found = handles.iter().position(|h| h.id() == l).unwrap_or(0);
            handles[found].status(group).is_ok_and(|s| s.leader == Some(l))
        }
        _ => false,
    });
    found
}

#[test]
fn outcomes_of_many_groups_and_nodes_come_through_one_queue_each_once_with_its_tag() {
    const IDS: [NodeId; 3] = [1, 2, 3];
    const GROUPS: u64 = 12;
    let (handles, _dirs) = cluster(&IDS, GROUPS, |id, g| {
        RaftConfig::new(id, IDS).election_timeout(20, 40).heartbeat_interval(3).seed(g * 7 + id)
    });
    let leaders: BTreeMap<GroupId, usize> = (1..=GROUPS).map(|g| (g, leader(&handles, g))).collect();
    let done = Completions::new();
    const WRITES: u64 = 600;
    let group_of = |tag: u64| 1 + tag % GROUPS;
    for tag in 0..WRITES {
        let g = group_of(tag);
        handles[leaders[&g]].propose_to(g, format!("w{tag}"), &done, tag).unwrap();
    }
    let out = collect(&done, WRITES as usize);
    let mut seen = BTreeMap::new();
    for (tag, outcome) in out {
        let (position, command) = outcome.unwrap_or_else(|e| panic!("write {tag}: {e}"));
        assert_eq!(command, format!("w{tag}"), "the outcome of write {tag} is its own");
        assert!(seen.insert(tag, position).is_none(), "write {tag} came twice");
    }
    assert_eq!(seen.len() as u64, WRITES, "every write came");
    // Within a group, the writes of one submitter were applied in the
    // order they were submitted.
    for g in 1..=GROUPS {
        let positions: Vec<u64> = seen.iter().filter(|(t, _)| group_of(**t) == g).map(|(_, p)| *p).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "group {g}: {positions:?}");
    }
    // A second queue is independent of the first.
    let other = Completions::new();
    handles[leaders[&1]].propose_to(1, "x", &other, 99).unwrap();
    let out = collect(&other, 1);
    assert_eq!(out[0].0, 99);
    assert!(done.take(&mut Vec::new()) == 0, "nothing strayed into the first queue");
    for h in &handles {
        h.shutdown();
    }
}

#[test]
fn refusals_have_no_outcome_and_the_driver_answers_every_accepted_proposal() {
    // Two nodes, no check-quorum: once the follower is killed, the leader
    // keeps leading and its writes can only time out.
    let (handles, _dirs) =
        cluster(&[1, 2], 3, |id, g| RaftConfig::new(id, [1, 2]).check_quorum(false).seed(g * 7 + id));
    let l = leader(&handles, 1);
    let done = Completions::new();
    let node = &handles[l];
    // Refused at submission: an empty command. No outcome.
    assert!(matches!(node.propose_to(1, Bytes::new(), &done, 1), Err(RuntimeError::Refused(_))));
    // Accepted, then refused by the driver: an unknown group.
    node.propose_to(77, "u", &done, 2).unwrap();
    // Accepted and applied.
    node.propose_to(1, "a", &done, 3).unwrap();
    let mut out = collect(&done, 2);
    out.sort_by_key(|(tag, _)| *tag);
    assert!(matches!(out[0], (2, Err(RuntimeError::UnknownGroup(77)))), "{:?}", out[0]);
    assert!(matches!(&out[1], (3, Ok((1, c))) if c == "a"), "{:?}", out[1]);

    handles[1 - l].kill();
    // Cannot commit: the driver answers `Timeout` at a tick past the
    // handle's timeout.
    node.with_timeout(Some(Duration::from_millis(300))).propose_to(1, "b", &done, 4).unwrap();
    let out = collect(&done, 1);
    assert!(matches!(out[0], (4, Err(RuntimeError::Timeout))), "{:?}", out[0]);
    // Cannot commit, no timeout: answered when the node shuts down.
    node.with_timeout(None).propose_to(1, "c", &done, 5).unwrap();
    node.with_timeout(None).propose_to(1, "d", &done, 6).unwrap();
    wait_until("both writes held", || node.stats().held_requests == 2);
    node.shutdown();
    let mut out = collect(&done, 2);
    out.sort_by_key(|(tag, _)| *tag);
    for (tag, outcome) in &out {
        assert!(matches!(outcome, Err(RuntimeError::ShuttingDown)), "write {tag}: {outcome:?}");
    }
    assert_eq!(out.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [5, 6]);
    // Refused at submission by a stopped node: no outcome.
    assert!(matches!(node.propose_to(1, "e", &done, 7), Err(RuntimeError::ShuttingDown)));
    assert_eq!(done.wait_timeout(Duration::from_millis(50), &mut Vec::new()), 0);
}
