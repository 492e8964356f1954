//! Linearizable reads under faults: a replicated key-value store is read
//! through ReadIndex, lease and follower reads while the simulator injects
//! partitions, loss, crashes, membership churn and leader changes; the
//! history of every client operation is checked for linearizability, key by
//! key, with unknown write outcomes allowed to take effect late or never.
//!
//! `RAFT_IO_SEEDS=N` scales the number of seeds (default 8).
#![cfg(feature = "sim")]

use std::collections::{BTreeMap, BTreeSet};

use raft_io::sim::{Chaos, Cluster, FaultProfile, KvStore, KvWorkload, SimConfig};
use raft_io::{NodeId, ReadId, ReadKind};

fn seeds() -> u64 {
    std::env::var("RAFT_IO_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8)
}

/// With `lease`: check-quorum and lease reads on. Without: check-quorum off
/// too, so deposed leaders linger and ReadIndex must stand on its own.
fn cluster(nodes: usize, seed: u64, lease: bool) -> Cluster<KvStore> {
    let config = SimConfig::new(nodes).seed(seed).tick_skew(0.1).configure(move |c| {
        let c = c.read_timeout_ticks(30).snapshot_entries(40);
        if lease { c.lease_reads(true).lease_drift_ticks(3) } else { c.check_quorum(false) }
    });
    Cluster::with_state_machines(config, |_| KvStore::default())
}

#[test]
fn reads_of_every_kind_are_linearizable_under_faults() {
    let mut operations = 0;
    for seed in 0..seeds() {
        for nodes in [3, 5] {
            for (profile, lease) in [
                (FaultProfile::Lossy, true),
                (FaultProfile::Partitions, true),
                (FaultProfile::Partitions, false),
                (FaultProfile::Crashes, true),
                (FaultProfile::Pauses, true),
                (FaultProfile::Everything, true),
                (FaultProfile::Everything, false),
            ] {
                let mut c = cluster(nodes, seed * 101 + nodes as u64, lease);
                let mut chaos = Chaos::new(profile, seed).with_filler();
                let mut clients = KvWorkload::new(seed, 3, lease);
                chaos.run_with(&mut c, 250, |c| clients.round(c));
                assert!(
                    chaos.heal_and_check_liveness(&mut c, 1_500),
                    "seed {seed} {nodes} {profile:?} {lease}: not live"
                );
                c.run_ticks(40);
                let history = clients.history(&c);
                operations += history.len();
                if let Err(e) = history.check() {
                    panic!(
                        "seed {seed}, {nodes} nodes, {profile:?}, lease {lease}: not linearizable\n{e}\n{}",
                        c.trace()
                    );
                }
            }
        }
    }
    println!("{operations} operations checked");
    assert!(operations > 100);
}

/// Process pauses aimed at the leader, lease reads on: a leader that
/// resumes after its lease ran out must learn the elapsed time (one
/// `Event::Ticks`) before it serves anything. More seeds than the mixed test,
/// since this is the fault lease reads are most exposed to.
#[test]
fn lease_reads_stay_linearizable_across_process_pauses() {
    let (mut operations, mut pauses) = (0, 0);
    for seed in 0..seeds() * 4 {
        let mut c = cluster(3, seed, true);
        let mut chaos = Chaos::new(FaultProfile::Pauses, seed).with_filler();
        let mut clients = KvWorkload::new(seed, 3, true);
        chaos.run_with(&mut c, 250, |c| clients.round(c));
        assert!(chaos.heal_and_check_liveness(&mut c, 1_500), "seed {seed}: not live");
        c.run_ticks(40);
        let history = clients.history(&c);
        operations += history.len();
        pauses += c.stats().pauses;
        if let Err(e) = history.check() {
            panic!("seed {seed}: not linearizable under pauses (replay: this test, seed {seed})\n{e}\n{}", c.trace());
        }
    }
    println!("{operations} operations checked across {pauses} pauses");
    assert!(pauses > seeds(), "the schedule paused nodes");
}

/// A read client whose every read is known to the test: ReadIndex and lease
/// reads on any node that believes it leads (a deposed leader included),
/// follower reads on any node. A read pending on a node that crashes is
/// lost with it (the restarted node never heard of it); every other read
/// must end.
struct Reads {
    rng: u64,
    next_id: ReadId,
    issued: Vec<(NodeId, ReadId)>,
    lost: BTreeSet<(NodeId, ReadId)>,
}

impl Reads {
    fn new(seed: u64) -> Self {
        // Ids far above the ones other clients use.
        Self { rng: seed ^ 0x7265_6164_7321, next_id: 1 << 40, issued: Vec::new(), lost: BTreeSet::new() }
    }

    /// splitmix64, below `n`.
    fn draw(&mut self, n: usize) -> usize {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    /// How many outcomes each read has.
    fn outcomes(c: &Cluster<KvStore>) -> BTreeMap<(NodeId, ReadId), usize> {
        let mut n = BTreeMap::new();
        for o in c.read_outcomes() {
            *n.entry((o.node, o.id)).or_insert(0) += 1;
        }
        n
    }

    /// Issued reads, not lost, without an outcome yet.
    fn pending(&self, c: &Cluster<KvStore>) -> Vec<(NodeId, ReadId)> {
        let ended = Self::outcomes(c);
        self.issued.iter().copied().filter(|r| !self.lost.contains(r) && !ended.contains_key(r)).collect()
    }

    /// Runs after every round's faults (crashes happen only there, and a
    /// node stays down at least until the next round): reads pending on a
    /// node that is down are lost; then one to three new reads.
    fn round(&mut self, c: &mut Cluster<KvStore>) {
        for r in self.pending(c) {
            if !c.is_up(r.0) {
                self.lost.insert(r);
            }
        }
        for _ in 0..1 + self.draw(3) {
            let ids = c.ids();
            let leaders: Vec<NodeId> =
                ids.iter().copied().filter(|&id| c.node(id).is_some_and(|n| n.is_leader())).collect();
            let (node, kind) = match self.draw(3) {
                0 if !leaders.is_empty() => (leaders[self.draw(leaders.len())], ReadKind::Index),
                1 if !leaders.is_empty() => (leaders[self.draw(leaders.len())], ReadKind::Lease),
                _ => (ids[self.draw(ids.len())], if self.draw(2) == 0 { ReadKind::Index } else { ReadKind::Lease }),
            };
            self.issue(c, node, kind);
        }
    }

    fn issue(&mut self, c: &mut Cluster<KvStore>, node: NodeId, kind: ReadKind) {
        // A down node takes no read (the simulator would accept it unseen).
        if !c.is_up(node) {
            return;
        }
        self.next_id += 1;
        if c.read(node, self.next_id, kind).is_ok() {
            self.issued.push((node, self.next_id));
        }
    }
}

/// Every read a node accepted ends in exactly one outcome (ReadReady or
/// ReadFailed) — through partitions, loss, crashes, membership churn and
/// leader changes — unless the node crashed while it was pending; none ends
/// twice, and none ends that was never issued.
#[test]
fn every_read_ends_in_exactly_one_outcome() {
    let (mut issued, mut served, mut lost) = (0, 0, 0);
    for seed in 0..seeds() {
        let mut c = cluster(5, seed, true);
        let mut chaos = Chaos::new(FaultProfile::Everything, seed).with_filler();
        let mut reads = Reads::new(seed);
        chaos.run_with(&mut c, 200, |c| reads.round(c));
        assert!(chaos.heal_and_check_liveness(&mut c, 1_500), "seed {seed}: not live");
        // Healed: one more read on every node.
        for node in c.ids() {
            reads.issue(&mut c, node, ReadKind::Index);
        }
        // Quiet: every pending read ends within its timeout (30 ticks).
        let drained = c.run_until(300, |c| reads.pending(c).is_empty());
        let pending = reads.pending(&c);
        assert!(drained, "seed {seed}: {} reads never ended: {pending:?}", pending.len());
        let outcomes = Reads::outcomes(&c);
        for (read, &n) in &outcomes {
            assert_eq!(n, 1, "seed {seed}: read {read:?} ended {n} times");
            assert!(reads.issued.contains(read), "seed {seed}: read {read:?} ended but was never issued");
        }
        for read in &reads.issued {
            let expected = if reads.lost.contains(read) { 0 } else { 1 };
            assert_eq!(outcomes.get(read).copied().unwrap_or(0), expected, "seed {seed}: read {read:?}");
        }
        issued += reads.issued.len();
        lost += reads.lost.len();
        served += c.read_outcomes().iter().filter(|o| o.result.is_ok()).count();
    }
    println!("{issued} reads issued, {served} served, {lost} lost to crashes");
    assert!(served > 0 && served + lost < issued, "the schedule exercised both outcomes");
}

/// The checker is not vacuous: a read path that serves reads from a node's
/// local state without confirming anything is caught.
#[test]
fn a_stale_local_read_path_is_caught_by_the_checker() {
    let mut caught = 0;
    for seed in 0..seeds().max(8) {
        let mut c = cluster(5, seed, false);
        let mut chaos = Chaos::new(FaultProfile::Partitions, seed).with_filler();
        let mut clients = KvWorkload::new(seed, 2, false).with_stale_local_reads();
        chaos.run_with(&mut c, 250, |c| clients.round(c));
        if clients.history(&c).check().is_err() {
            caught += 1;
        }
    }
    assert!(caught > 0, "stale local reads were never caught");
    println!("stale reads caught in {caught} runs");
}
