//! [`FaultProfile::Fragile`]: fault schedules aimed at the fragile moments
//! of the protocol, where a subtle bug shows and random faults rarely land.
//!
//! Between ordinary rounds (proposals, snapshots, a crash or a restart now
//! and then), one round in ten plays a *moment*: the cluster is healed and
//! settled under a leader, then a short scripted scene runs, whose nodes,
//! sizes and timings are drawn from the seed, and whose faults fire on what
//! the cluster does (a leader elected, a commit index moving, a vote
//! granted), not on a clock. The moment is drawn among those the cluster's
//! shape allows (its voter count, durable mode). Client rounds run on every
//! tick of a scene, so reads and writes land inside the windows it opens.
//!
//! | moment | the scene | the bug it aims at |
//! |---|---|---|
//! | `Figure8` | a leader replicates a burst to one follower and crashes; the next leader is cut off right after its election; the burst's holder leads and catches the others up; it is cut off the moment its commit index moves, and the second leader returns | committing an entry of an earlier term by counting replicas (the Raft paper's Figure 8) |
//! | `VoterRestart` | the leader crashes, two nodes cut off from each other campaign at once, and every node that grants a vote crashes and restarts at once, no longer hearing from that candidate | a vote forgotten across a restart |
//! | `EarlyReconfig` | (four voters; with three, a fourth is added for a later round) a leader cut off appends a removal and crashes; the next leader is asked to remove another node the moment it is elected | a configuration change before the new leader's first commit |
//! | `SkewedLease` | the leader's clock runs slow and the others' fast; the leader is cut off; clients read on both sides | a lease outliving the election timeout |
//! | `SlowAnswers` | every follower's messages to the leader take 10 to 15 ticks longer than its own take to them; after a few heartbeat rounds the leader stops reaching anyone (one way), while the answers still on their way keep arriving; clients read on both sides | a lease counted from when a round's answers arrived rather than from when it was sent |
//! | `CutOffFollower` | a follower stops hearing a live leader (one-way) and campaigns; the moment any node takes a newer term, the old leader stops hearing anyone | votes granted while a leader is known alive (no stickiness) |
//! | `SnapshotInstall` | a follower is down while the leader compacts; it restarts into a snapshot install on a network that duplicates and holds messages; then the leader changes | a snapshot installed behind what a node applied |
//! | `DamagedSnapshot` | (durable mode) a down node's snapshot file loses a bit before it restarts | a snapshot file served without checking its checksum |
//! | `PowerCut` | (asynchronous storage) the disks of the leader and of all followers but `quorum - 2` stall; the leader proposes a burst; the moment its commit index moves, every node with a write in flight loses power at once and restarts | an acknowledgement sent before the write it promises is durable, or a leader counting its own undurable entries |
//! | `JointAlone` | the leader, cut off from everyone, is asked to replace every other voter at once (a joint configuration whose new half is the leader alone); the others elect a new leader, and the old one rejoins | a joint configuration committing with its new voters alone |
//!
//! Some windows need a suitable configuration to open: `Figure8` needs
//! catch-up to take several appends (a burst of 4 to 33 entries against a
//! small `max_entries_per_message` or `max_message_bytes`); `VoterRestart`
//! opens wide only with lease reads off (a restarted node otherwise
//! refuses votes for an election timeout); `SkewedLease`, `SlowAnswers`
//! and `CutOffFollower` need lease reads on and clients issuing them;
//! `DamagedSnapshot` needs durable mode. Without them the scenes still run:
//! correct code must survive every one.

use bytes::Bytes;

use super::schedule::Chaos;
use super::{Cluster, NetworkFaults, StateMachine};
use crate::log::RaftLog;
use crate::membership::MembershipChange;
use crate::node::Event;
use crate::types::{NodeId, Role};

/// The network of the lease scenes: reliable and fast (a tenth to half a
/// tick), so that elections and commits fit in a lease's span.
const FAST: NetworkFaults =
    NetworkFaults { loss: 0.0, duplicate: 0.0, min_delay: 100, max_delay: 500, hold: 0.0, max_hold: 0 };

/// What the scenes ask of the clients.
pub(super) trait SceneClients<S: StateMachine> {
    /// The clients' activity before a tick.
    fn round(&mut self, cluster: &mut Cluster<S>);

    /// Proposes `n` of the clients' own writes on `node` as one batch,
    /// tracked like their other writes (a [`Simulation`](super::Simulation)'s
    /// checked clients). Returns `false` if the node refused them (clients
    /// without writes of their own propose nothing, and return `true`).
    fn burst(&mut self, cluster: &mut Cluster<S>, node: NodeId, n: u64) -> bool;
}

/// A closure's rounds, without writes of its own.
pub(super) struct Rounds<F>(pub(super) F);

impl<S: StateMachine, F: FnMut(&mut Cluster<S>)> SceneClients<S> for Rounds<F> {
    fn round(&mut self, cluster: &mut Cluster<S>) {
        (self.0)(cluster);
    }

    fn burst(&mut self, _cluster: &mut Cluster<S>, _node: NodeId, _n: u64) -> bool {
        true
    }
}

/// The clients a scene runs.
pub(super) type Clients<'a, S> = &'a mut dyn SceneClients<S>;

/// The scenes of [`FaultProfile::Fragile`](super::FaultProfile::Fragile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    Figure8,
    VoterRestart,
    EarlyReconfig,
    SkewedLease,
    SlowAnswers,
    CutOffFollower,
    SnapshotInstall,
    DamagedSnapshot,
    PowerCut,
    JointAlone,
}

const MOMENTS: [Moment; 10] = [
    Moment::Figure8,
    Moment::VoterRestart,
    Moment::EarlyReconfig,
    Moment::SkewedLease,
    Moment::SlowAnswers,
    Moment::CutOffFollower,
    Moment::SnapshotInstall,
    Moment::DamagedSnapshot,
    Moment::PowerCut,
    Moment::JointAlone,
];

/// Runs `ticks` ticks, with a client round before each.
fn ticks<S: StateMachine>(cluster: &mut Cluster<S>, clients: Clients<'_, S>, ticks: u64) {
    for _ in 0..ticks {
        clients.round(cluster);
        cluster.run_ticks(1);
    }
}

/// Runs until `done` holds (checked after every event), for at most
/// `max_ticks` ticks, with a client round before each tick. Returns whether
/// `done` held.
fn until<S: StateMachine>(
    cluster: &mut Cluster<S>,
    clients: Clients<'_, S>,
    max_ticks: u64,
    mut done: impl FnMut(&Cluster<S>) -> bool,
) -> bool {
    for _ in 0..max_ticks {
        clients.round(cluster);
        if cluster.run_until(1, &mut done) {
            return true;
        }
    }
    false
}

/// The live leader (other than those in `not`) of a term above `term`.
fn new_leader<S: StateMachine>(cluster: &Cluster<S>, term: u64, not: &[NodeId]) -> Option<NodeId> {
    cluster
        .ids()
        .into_iter()
        .find(|&id| !not.contains(&id) && cluster.node(id).is_some_and(|n| n.is_leader() && n.term() > term))
}

impl Chaos {
    /// Proposes a burst of `n` commands on `node` as one batch: the
    /// schedule's own commands, or without a command generator (a
    /// [`Simulation`](super::Simulation), where every write is a checked
    /// client's) the clients' writes. Returns `false` if the node refused
    /// it.
    fn burst<S: StateMachine>(
        &mut self,
        cluster: &mut Cluster<S>,
        clients: Clients<'_, S>,
        node: NodeId,
        n: u64,
    ) -> bool {
        let batch: Vec<Bytes> = (0..n).filter_map(|_| self.command()).collect();
        if batch.is_empty() {
            return clients.burst(cluster, node, n);
        }
        cluster.propose_batch(node, batch).is_ok()
    }

    /// One round of [`FaultProfile::Fragile`](super::FaultProfile::Fragile).
    pub(super) fn fragile_round<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>) {
        let ids = cluster.ids();
        let pick = |rng: &mut crate::rng::Rng| ids[rng.range(0, ids.len() as u64) as usize];
        match self.rng.range(0, 100) {
            0..=9 => self.moment(cluster, clients),
            10..=13 => {
                let id = pick(&mut self.rng);
                cluster.snapshot(id);
            }
            14..=16 => {
                let id = pick(&mut self.rng);
                cluster.crash_somewhere(id);
            }
            17..=24 => {
                let down: Vec<NodeId> = ids.iter().copied().filter(|&id| !cluster.is_up(id)).collect();
                if !down.is_empty() {
                    cluster.restart(down[self.rng.range(0, down.len() as u64) as usize]);
                }
            }
            25..=27 => cluster.heal(),
            _ => self.propose(cluster, &ids),
        }
    }

    /// Settles the cluster, then plays one of the moments its shape allows.
    fn moment<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>) {
        let Some(leader) = self.settle(cluster, clients) else { return };
        let voters = Self::voters(cluster, leader).len();
        let lost = cluster.ids().iter().any(|&id| cluster.is_lost(id));
        let fits = |m: &Moment| match m {
            Moment::Figure8 | Moment::VoterRestart => voters >= 5 && !lost,
            Moment::EarlyReconfig => (voters == 3 || voters == 4) && !lost,
            Moment::SkewedLease | Moment::SlowAnswers | Moment::CutOffFollower => voters >= 3,
            Moment::SnapshotInstall => voters >= 2,
            Moment::DamagedSnapshot => cluster.is_durable() && voters >= 3 && !lost,
            Moment::PowerCut => cluster.is_async() && voters >= 3 && !lost,
            Moment::JointAlone => voters >= 3 && !lost,
        };
        let fitting: Vec<Moment> = MOMENTS.into_iter().filter(fits).collect();
        if fitting.is_empty() {
            return;
        }
        let moment = fitting[self.rng.range(0, fitting.len() as u64) as usize];
        cluster.note(format!("fragile moment: {moment:?}"));
        match moment {
            Moment::Figure8 => self.figure8(cluster, clients, leader),
            Moment::VoterRestart => self.voter_restart(cluster, clients, leader),
            Moment::EarlyReconfig => self.early_reconfig(cluster, clients, leader),
            Moment::SkewedLease => self.skewed_lease(cluster, clients, leader),
            Moment::SlowAnswers => self.slow_answers(cluster, clients, leader),
            Moment::CutOffFollower => self.cut_off_follower(cluster, clients, leader),
            Moment::SnapshotInstall => self.snapshot_install(cluster, clients, leader),
            Moment::DamagedSnapshot => self.damaged_snapshot(cluster, clients, leader),
            Moment::PowerCut => self.power_cut(cluster, clients, leader),
            Moment::JointAlone => self.joint_alone(cluster, clients, leader),
        }
        cluster.note(format!("fragile moment {moment:?} ends"));
        cluster.heal();
        cluster.set_network(self.profile.network());
    }

    /// Heals, restarts every down node and waits for a leader that has
    /// committed in its term, whose configuration is plain (no learners,
    /// not joint) with every voter up (or lost for good). Returns it.
    fn settle<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>) -> Option<NodeId> {
        cluster.heal();
        cluster.resolve_pending_crashes();
        for id in cluster.ids() {
            cluster.restart(id);
        }
        until(cluster, clients, 100, |c| c.leader().is_some_and(|l| c.leader_ready(l)));
        let leader = cluster.leader().filter(|&l| cluster.leader_ready(l))?;
        let config = cluster.node(leader)?.membership();
        let plain = !config.is_joint() && config.learners().is_empty();
        (plain && config.voters().iter().all(|&v| cluster.is_up(v) || cluster.is_lost(v))).then_some(leader)
    }

    /// The voters of `leader`'s configuration, but those lost for good.
    fn voters<S: StateMachine>(cluster: &Cluster<S>, leader: NodeId) -> Vec<NodeId> {
        let voters = cluster.node(leader).map(|n| n.membership().voters().to_vec()).unwrap_or_default();
        voters.into_iter().filter(|&v| !cluster.is_lost(v)).collect()
    }

    /// A random element of `from` other than those in `not`.
    fn other(&mut self, from: &[NodeId], not: &[NodeId]) -> Option<NodeId> {
        let rest: Vec<NodeId> = from.iter().copied().filter(|id| !not.contains(id)).collect();
        (!rest.is_empty()).then(|| rest[self.rng.range(0, rest.len() as u64) as usize])
    }

    /// The Raft paper's Figure 8, with five or more voters. A replicates a
    /// burst to B only; C (elected without it) keeps its no-op to itself;
    /// B leads and catches the others up append by append: an entry of A's
    /// term is then on a majority before B's own no-op is. If B counted
    /// that as committed, C — whose last term is higher than A's — wins the
    /// next election once B is cut off, without the entry.
    fn figure8<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, a: NodeId) {
        let voters = Self::voters(cluster, a);
        let Some(b) = self.other(&voters, &[a]) else { return };
        for &v in voters.iter().filter(|&&v| v != a && v != b) {
            cluster.block(a, v);
        }
        for _ in 0..self.rng.range(1, 4) {
            let n = self.rng.range(4, 12);
            if !self.burst(cluster, clients, a, n) {
                return;
            }
        }
        let Some(target) = cluster.node(a).map(|n| n.last_index()) else { return };
        until(cluster, clients, 10, |c| c.node(b).is_some_and(|n| n.last_index() >= target));
        let term_a = cluster.node(a).map_or(0, |n| n.term());
        cluster.crash(a);
        cluster.heal();
        cluster.isolate(b);
        // The next leader, cut off (and crashed) right after its election.
        let mut c = None;
        until(cluster, clients, 80, |cl| {
            c = new_leader(cl, term_a, &[a, b]);
            c.is_some()
        });
        let Some(c) = c else { return };
        let term_c = cluster.node(c).map_or(term_a, |n| n.term());
        // Cut off at once (its no-op, already on its way, never arrives),
        // and down.
        let rest: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != c).collect();
        cluster.partition(&[&[c], &rest]);
        cluster.crash(c);
        let mut x = None;
        until(cluster, clients, 80, |cl| {
            x = new_leader(cl, term_c, &[]);
            x.is_some()
        });
        let Some(x) = x else { return };
        let commit = cluster.node(x).map_or(0, |n| n.commit_index());
        let moved =
            until(cluster, clients, 40, |cl| cl.node(x).is_some_and(|n| n.is_leader() && n.commit_index() > commit));
        if moved {
            cluster.isolate(x);
            cluster.restart(c);
            ticks(cluster, clients, 40);
        }
    }

    /// The leader crashes. As soon as a node runs for election, another is
    /// made to (two candidates in one term, cut off from each other). Every
    /// node that grants a vote crashes and restarts at once, and hears no
    /// more from the candidate it voted for (so it does not learn that one
    /// won): only its durable vote stops it from voting again in that term.
    fn voter_restart<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let voters = Self::voters(cluster, l);
        let term = cluster.node(l).map_or(0, |n| n.term());
        cluster.crash(l);
        let mut first = None;
        until(cluster, clients, 40, |c| {
            first = voters.iter().copied().find(|&id| c.node(id).is_some_and(|n| n.role() == Role::Candidate));
            first.is_some()
        });
        let Some(first) = first else { return };
        let Some(second) = self.other(&voters, &[l, first]) else { return };
        cluster.block(first, second);
        cluster.block(second, first);
        // (The second may still be inside the old leader's lease for a tick.)
        for _ in 0..4 {
            if cluster.step_node(second, Event::Campaign).is_ok() {
                break;
            }
            ticks(cluster, clients, 1);
        }
        // (voter, term, candidate) of every vote already followed by a restart.
        let mut restarted: Vec<(NodeId, u64, NodeId)> = Vec::new();
        let vote = |c: &Cluster<S>, id: NodeId| {
            let hs = c.node(id)?.log().hard_state();
            hs.vote.filter(|&v| v != id && hs.term > term).map(|v| (id, hs.term, v))
        };
        for _ in 0..30 {
            let mut fresh = None;
            until(cluster, clients, 1, |c| {
                fresh = voters.iter().find_map(|&id| vote(c, id).filter(|v| !restarted.contains(v)));
                fresh.is_some()
            });
            if let Some((voter, t, candidate)) = fresh {
                restarted.push((voter, t, candidate));
                cluster.crash(voter);
                cluster.restart(voter);
                cluster.block(candidate, voter);
            }
        }
    }

    /// Four voters: leader A, cut off, appends the removal of D and
    /// crashes; the next leader W is asked, the moment it is elected, to
    /// remove Z (cut off from W, and from whom A will ask a vote). If W
    /// accepted before committing an entry of its term, W's configuration
    /// without Z and A's without D would have disjoint majorities. With
    /// three voters, a fourth is added instead, for a later round.
    fn early_reconfig<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, a: NodeId) {
        let voters = Self::voters(cluster, a);
        let ids = cluster.ids();
        if voters.len() == 3 && ids.len() < super::schedule::MAX_NODES {
            let id = ids.iter().max().copied().unwrap_or(0) + 1;
            cluster.add_node(id);
            let _ = cluster.change_membership(a, MembershipChange::AddVoter(id));
            ticks(cluster, clients, 20);
            return;
        }
        if voters.len() != 4 {
            return;
        }
        let Some(d) = self.other(&voters, &[a]) else { return };
        cluster.isolate(a);
        if cluster.change_membership(a, MembershipChange::Remove(d)).is_err() {
            return;
        }
        let term_a = cluster.node(a).map_or(0, |n| n.term());
        cluster.crash(a);
        cluster.heal();
        let mut w = None;
        until(cluster, clients, 80, |c| {
            w = new_leader(c, term_a, &[a]);
            w.is_some()
        });
        let Some(w) = w else { return };
        let z = if w == d { self.other(&voters, &[a, w]) } else { self.other(&voters, &[a, w, d]) };
        let Some(z) = z else { return };
        cluster.block(w, z);
        cluster.block(w, a);
        let _ = cluster.change_membership(w, MembershipChange::Remove(z));
        ticks(cluster, clients, 5);
        cluster.restart(a);
        ticks(cluster, clients, 60);
    }

    /// Leader A, cut off from every node, is asked to make itself the only
    /// voter in one change: two or more voters change, so A appends a joint
    /// configuration, whose old half needs a quorum of the voters A cannot
    /// reach. Nothing may commit. The others elect a new leader without
    /// the joint entry, and A, back, must give it up. A joint configuration
    /// that committed with its new voters alone would commit at A at once,
    /// and the others could then elect a leader without those entries.
    fn joint_alone<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, a: NodeId) {
        let term_a = cluster.node(a).map_or(0, |n| n.term());
        cluster.isolate(a);
        let alone = MembershipChange::Replace { voters: vec![a], learners: Vec::new() };
        if cluster.change_membership(a, alone).is_err() {
            return;
        }
        ticks(cluster, clients, 5);
        until(cluster, clients, 80, |c| new_leader(c, term_a, &[a]).is_some());
        cluster.heal();
        ticks(cluster, clients, 20);
    }

    /// The leader's clock runs slow and the others' fast (8–16 % each way;
    /// above 1/9, more than a lease drift of 2 ticks in 10 covers, so the
    /// scene also probes past the stated clock assumption); the leader is
    /// cut off while clients read on both sides of the partition.
    fn skewed_lease<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let skew = 0.08 + 0.08 * self.rng.next_u64() as f64 / u64::MAX as f64;
        let ids = cluster.ids();
        let rates: Vec<f64> = ids.iter().map(|&id| cluster.tick_rate(id).unwrap_or(1.0)).collect();
        for &id in &ids {
            cluster.set_tick_rate(id, if id == l { 1.0 - skew } else { 1.0 + skew });
        }
        cluster.set_network(FAST);
        cluster.isolate(l);
        ticks(cluster, clients, 40);
        for (&id, &rate) in ids.iter().zip(&rates) {
            cluster.set_tick_rate(id, rate);
        }
    }

    /// Every follower's messages to leader L arrive 10 to 15 ticks late (L's
    /// own stay fast), so the answers to each heartbeat round come back
    /// later than a lease lasts (and check-quorum, hearing none for a
    /// while, may depose L first). After a few rounds L stops reaching
    /// anyone (one way): the followers elect a new leader an election
    /// timeout later, while the answers still on their way keep arriving
    /// at L. A lease counted from those arrivals, not from the rounds'
    /// sending, outlives the new leader's first commits.
    fn slow_answers<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let followers: Vec<NodeId> = Self::voters(cluster, l).into_iter().filter(|&v| v != l).collect();
        let late = self.rng.range(10, 16);
        cluster.set_network(FAST);
        for &f in &followers {
            cluster.slow_link(f, l, late);
        }
        ticks(cluster, clients, self.rng.range(8, 13));
        for &f in &followers {
            cluster.block(l, f);
        }
        ticks(cluster, clients, 30);
    }

    /// Leader L stops reaching follower F (one way), so F campaigns while
    /// L lives. The moment any node takes a newer term, L stops hearing
    /// anyone: whatever lease it holds it keeps to its end.
    fn cut_off_follower<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let voters = Self::voters(cluster, l);
        let Some(f) = self.other(&voters, &[l]) else { return };
        let term = cluster.node(l).map_or(0, |n| n.term());
        cluster.set_network(FAST);
        // Quiet (no client writes), so F's log stays as long as the others'.
        until(cluster, &mut Rounds(|_: &mut Cluster<S>| {}), 20, |c| c.converged());
        cluster.block(l, f);
        let newer = until(cluster, &mut Rounds(|_: &mut Cluster<S>| {}), 40, |c| {
            c.ids().into_iter().any(|id| id != l && id != f && c.node(id).is_some_and(|n| n.term() > term))
        });
        if newer {
            for id in cluster.ids().into_iter().filter(|&id| id != l) {
                cluster.block(id, l);
            }
            ticks(cluster, clients, 20);
        }
    }

    /// A follower is down while the leader moves on and compacts; it
    /// restarts into a snapshot install over a network that duplicates and
    /// holds messages; then leadership moves (a transfer, or a crash).
    fn snapshot_install<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let voters = Self::voters(cluster, l);
        let Some(f) = self.other(&voters, &[l]) else { return };
        cluster.crash(f);
        for _ in 0..self.rng.range(2, 6) {
            let n = self.rng.range(1, 5);
            self.burst(cluster, clients, l, n);
            ticks(cluster, clients, 2);
        }
        cluster.snapshot(l);
        let base = NetworkFaults::lossy();
        cluster.set_network(NetworkFaults { duplicate: 0.3, hold: 0.05, max_hold: 10_000, ..base });
        cluster.restart(f);
        let installed = cluster.node(l).map_or(0, |n| n.log().snapshot_meta().index);
        until(cluster, clients, 40, |c| c.node(f).is_some_and(|n| n.log().snapshot_meta().index >= installed));
        ticks(cluster, clients, self.rng.range(2, 10));
        if self.rng.chance(0.5) {
            let _ = cluster.transfer_leadership(l, f);
        } else {
            cluster.crash(l);
        }
        ticks(cluster, clients, 20);
    }

    /// Durable mode: a follower with a snapshot file crashes, a bit of the
    /// file flips, and it restarts — or, when its log refuses to open, is
    /// lost for good (at most one node per cluster).
    fn damaged_snapshot<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let voters = Self::voters(cluster, l);
        let Some(f) = self.other(&voters, &[l]) else { return };
        if cluster.node(f).is_some_and(|n| n.log().snapshot_meta().index == 0) {
            cluster.snapshot(f);
        }
        cluster.crash(f);
        cluster.damage_snapshot(f);
        ticks(cluster, clients, 5);
        cluster.restart(f);
        ticks(cluster, clients, 20);
    }

    /// Asynchronous storage: the disks of the leader and of all but a
    /// quorum-less-two of the followers stall; the leader proposes a burst;
    /// the moment its commit index moves (or just before the disks come
    /// back), every node with a write in flight loses power and restarts.
    /// Correct code cannot commit in that window — only `quorum - 1` nodes
    /// can make the burst durable — so nothing committed is lost. If
    /// acknowledgements left before their writes were durable, or the
    /// leader counted its own unwritten entries, the burst commits, is gone
    /// from a majority after the cut, and a node without it can win the
    /// next election.
    fn power_cut<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, clients: Clients<'_, S>, l: NodeId) {
        let voters = Self::voters(cluster, l);
        let quorum = voters.len() / 2 + 1;
        let mut fast: Vec<NodeId> = Vec::new();
        while fast.len() + 1 < quorum {
            let mut not = fast.clone();
            not.push(l);
            let Some(f) = self.other(&voters, &not) else { return };
            fast.push(f);
        }
        let stall = self.rng.range(8, 20);
        for &v in voters.iter().filter(|v| !fast.contains(v)) {
            cluster.stall_disk(v, stall);
        }
        let commit = cluster.node(l).map_or(0, |n| n.commit_index());
        let n = self.rng.range(1, 6);
        if !self.burst(cluster, clients, l, n) {
            return;
        }
        until(cluster, clients, stall - 2, |c| c.node(l).is_none_or(|n| n.commit_index() > commit));
        let writing: Vec<NodeId> = cluster
            .ids()
            .into_iter()
            .filter(|&id| cluster.node(id).is_some_and(|n| n.metrics().writes_pending > 0))
            .collect();
        cluster.note(format!("power cut: {writing:?} had writes in flight"));
        for &id in &writing {
            cluster.crash(id);
        }
        for &id in &writing {
            cluster.restart(id);
        }
        ticks(cluster, clients, 30);
    }
}
