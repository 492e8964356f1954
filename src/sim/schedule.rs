//! Random fault schedules: [`Chaos`] drives a [`Cluster`] through
//! proposals, partitions, crashes and network trouble drawn from a seed, then
//! heals everything and checks liveness.
//!
//! The commands `Chaos` proposes and the reads it issues come from
//! generators you give it ([`Chaos::commands`], [`Chaos::reads`]); without
//! one it proposes nothing (faults only) unless you opt into the library's
//! filler commands `cmd-1`, `cmd-2`, ... with [`Chaos::with_filler`] — fine
//! for state machines that accept any bytes ([`HashChain`](super::HashChain)),
//! wrong for one that parses its commands.

use std::sync::Arc;

use bytes::Bytes;

use super::fragile::{Rounds, SceneClients};
use super::{Cluster, NetworkFaults, PauseInbox, Replay, StateMachine, TICK};
use crate::membership::MembershipChange;
use crate::rng::Rng;
use crate::types::NodeId;

/// Which faults a [`Chaos`] schedule injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultProfile {
    /// No faults: proposals only.
    Calm,
    /// Loss, duplication and reordering.
    Lossy,
    /// Partitions (any split, one-way blocks, flapping) on a lossy network.
    Partitions,
    /// Crashes and restarts on a lossy network.
    Crashes,
    /// Membership churn (adds, removals, promotions, joint changes) and
    /// leadership transfers on a lossy network.
    Membership,
    /// Buggy (not Byzantine) peers: stale and duplicated messages replayed,
    /// AppendEntries truncated, messages from unknown node ids, on a lossy
    /// network. Needs [`SimConfig::keep_messages`](super::SimConfig::keep_messages).
    BuggyPeers,
    /// Process pauses (a node's driver stops for up to a few election
    /// timeouts, then reports the elapsed ticks in one step; the leader is
    /// the favourite victim), on a lossy network.
    Pauses,
    /// Everything at once.
    Everything,
    /// Scenes aimed at the fragile moments of the protocol — a leader
    /// crashing right after replicating to a minority, elections while
    /// entries are partly replicated (the Raft paper's Figure 8), a voter
    /// restarting right after its vote, a configuration change at a new
    /// leader's first step, lease reads across leader changes on skewed
    /// clocks or with the answers to the leader's rounds arriving late,
    /// snapshot installs around leader changes, damaged snapshot
    /// files in durable mode — between ordinary rounds, on a lossy network.
    /// Client rounds run on every tick of a scene. See the `fragile`
    /// module of the simulator's source for each scene.
    Fragile,
}

impl FaultProfile {
    /// Every profile, for soak runs.
    pub const ALL: [FaultProfile; 9] = [
        Self::Calm,
        Self::Lossy,
        Self::Partitions,
        Self::Crashes,
        Self::Membership,
        Self::BuggyPeers,
        Self::Pauses,
        Self::Everything,
        Self::Fragile,
    ];

    pub(super) fn partitions(self) -> bool {
        matches!(self, Self::Partitions | Self::Everything)
    }

    pub(super) fn crashes(self) -> bool {
        matches!(self, Self::Crashes | Self::Everything)
    }

    pub(super) fn membership(self) -> bool {
        matches!(self, Self::Membership | Self::Everything)
    }

    pub(super) fn pauses(self) -> bool {
        matches!(self, Self::Pauses | Self::Everything)
    }

    pub(super) fn buggy_peers(self) -> bool {
        matches!(self, Self::BuggyPeers | Self::Everything)
    }

    pub(super) fn network(self) -> NetworkFaults {
        match self {
            Self::Calm => NetworkFaults::reliable(),
            _ => NetworkFaults::lossy(),
        }
    }
}

/// The most nodes a membership-churn schedule grows the cluster to.
pub(super) const MAX_NODES: usize = 9;

/// A user generator of commands or read queries, drawing from its own
/// seeded generator.
pub(super) type Generator = Arc<dyn Fn(&mut Rng) -> Bytes + Send + Sync>;

/// A seeded fault schedule.
#[derive(Clone)]
pub struct Chaos {
    pub(super) profile: FaultProfile,
    pub(super) rng: Rng,
    proposed: u64,
    /// The user's command generator.
    commands: Option<Generator>,
    /// The user's read-query generator.
    reads: Option<Generator>,
    /// Whether to propose the library's `cmd-{n}` filler commands when no
    /// generator is given.
    filler: bool,
    /// What the generators draw from (apart from the fault schedule's
    /// generator, so a workload does not shift the faults).
    workload_rng: Rng,
    next_read: crate::types::ReadId,
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("profile", &self.profile)
            .field("proposed", &self.proposed)
            .field("commands", &self.commands.is_some())
            .field("reads", &self.reads.is_some())
            .field("filler", &self.filler)
            .finish_non_exhaustive()
    }
}

impl Chaos {
    /// A schedule of `profile` faults drawn from `seed`. It proposes no
    /// command of its own: give it a generator ([`commands`](Self::commands))
    /// or opt into filler commands ([`with_filler`](Self::with_filler)).
    pub fn new(profile: FaultProfile, seed: u64) -> Self {
        Self {
            profile,
            rng: Rng::new(seed ^ 0xC4A0_5EED),
            proposed: 0,
            commands: None,
            reads: None,
            filler: false,
            workload_rng: Rng::new(seed ^ 0x0C0D_E6E2),
            next_read: 1 << 48,
        }
    }

    /// Proposes the commands `generate` draws (from a generator seeded by
    /// the schedule's seed) wherever the schedule proposes: in proposal
    /// rounds (to the leader, sometimes to a follower that refuses), in the
    /// bursts of the fragile scenes, and once after healing for the
    /// liveness check.
    ///
    /// ```
    /// use raft_io::sim::{Chaos, Cluster, FaultProfile, SimConfig};
    ///
    /// let mut cluster = Cluster::new(SimConfig::new(3).seed(7));
    /// let mut chaos = Chaos::new(FaultProfile::Lossy, 7)
    ///     .commands(|rng| format!("add {}", rng.range(1, 10)).into());
    /// chaos.run(&mut cluster, 50);
    /// assert!(chaos.proposed() > 0);
    /// assert!(chaos.heal_and_check_liveness(&mut cluster, 1_000));
    /// ```
    pub fn commands(mut self, generate: impl Fn(&mut Rng) -> Bytes + Send + Sync + 'static) -> Self {
        self.commands = Some(Arc::new(generate));
        self
    }

    /// Issues a read with a query `generate` draws after each proposal
    /// round, on a random node (the leader, usually), through
    /// [`Cluster::read_query`] (answered by
    /// [`StateMachine::query`]; outcomes in [`Cluster::read_outcomes`]).
    pub fn reads(mut self, generate: impl Fn(&mut Rng) -> Bytes + Send + Sync + 'static) -> Self {
        self.reads = Some(Arc::new(generate));
        self
    }

    /// Opts into the library's filler commands `cmd-1`, `cmd-2`, ... when
    /// no command generator is given (what `Chaos` proposed before user
    /// generators existed; the library's own tests use them with
    /// [`HashChain`](super::HashChain) and [`KvStore`](super::KvStore),
    /// which accept any bytes).
    pub fn with_filler(mut self) -> Self {
        self.filler = true;
        self
    }

    /// Commands proposed so far.
    pub fn proposed(&self) -> u64 {
        self.proposed
    }

    /// Runs `rounds` rounds of random operations, each followed by a few
    /// ticks.
    pub fn run<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, rounds: usize) {
        self.run_with(cluster, rounds, |_| {});
    }

    /// Like [`run`](Self::run), calling `each_round` (a client workload, say)
    /// after every round's faults and before its ticks.
    pub fn run_with<S: StateMachine>(
        &mut self,
        cluster: &mut Cluster<S>,
        rounds: usize,
        each_round: impl FnMut(&mut Cluster<S>),
    ) {
        self.run_clients(cluster, rounds, &mut Rounds(each_round));
    }

    /// Like [`run_with`](Self::run_with) with `clients` that may also write
    /// the fragile scenes' bursts.
    pub(super) fn run_clients<S: StateMachine>(
        &mut self,
        cluster: &mut Cluster<S>,
        rounds: usize,
        clients: &mut dyn SceneClients<S>,
    ) {
        cluster.set_network(self.profile.network());
        for _ in 0..rounds {
            if self.profile == FaultProfile::Fragile {
                self.fragile_round(cluster, clients);
            } else {
                self.round(cluster);
            }
            clients.round(cluster);
            let ticks = self.rng.range(1, 8);
            cluster.run_ticks(ticks);
        }
    }

    fn round<S: StateMachine>(&mut self, cluster: &mut Cluster<S>) {
        let ids = cluster.ids();
        let pick = |rng: &mut Rng| ids[rng.range(0, ids.len() as u64) as usize];
        if cluster.is_async() && self.rng.chance(0.03) {
            // A disk that stalls, usually the leader's: past an election
            // timeout it must step down (PROTOCOL.md §5.1).
            let victim = match cluster.leader() {
                Some(leader) if self.rng.chance(0.7) => leader,
                _ => pick(&mut self.rng),
            };
            let ticks = self.rng.range(2, 50);
            cluster.stall_disk(victim, ticks);
        }
        let roll = self.rng.range(0, 100);
        match roll {
            40..=44 if self.profile.pauses() => {
                // A pause of up to three election timeouts, usually of the
                // leader (whose lease is what a pause threatens).
                let victim = match cluster.leader() {
                    Some(leader) if self.rng.chance(0.7) => leader,
                    _ => pick(&mut self.rng),
                };
                let ticks = self.rng.range(1, 60);
                let inbox = if self.rng.chance(0.5) { PauseInbox::Kept } else { PauseInbox::Lost };
                cluster.pause(victim, ticks, inbox);
            }
            0..=44 => self.propose(cluster, &ids),
            45..=47 if self.profile.partitions() => {
                // Cut the leader off (the classic deposed-leader scenario).
                if let Some(leader) = cluster.leader() {
                    cluster.isolate(leader);
                }
            }
            48..=52 if self.profile.partitions() => {
                let mut shuffled = ids.clone();
                for k in (1..shuffled.len()).rev() {
                    let j = self.rng.range(0, k as u64 + 1) as usize;
                    shuffled.swap(k, j);
                }
                let cut = self.rng.range(1, shuffled.len().max(2) as u64) as usize;
                let (a, b) = shuffled.split_at(cut.min(shuffled.len()));
                cluster.partition(&[a, b]);
            }
            53..=56 if self.profile.partitions() => {
                let (a, b) = (pick(&mut self.rng), pick(&mut self.rng));
                if a != b {
                    cluster.block(a, b);
                }
            }
            57..=62 if self.profile.partitions() => cluster.heal(),
            63..=64 if self.profile.partitions() => {
                // Flapping: a short partition, healed a tick later.
                let victim = pick(&mut self.rng);
                cluster.isolate(victim);
                cluster.run_ticks(1);
                cluster.heal();
            }
            65..=70 if self.profile.crashes() => {
                let victim = pick(&mut self.rng);
                // On durable clusters, half the crashes tear a write.
                if cluster.is_durable() && self.rng.chance(0.5) {
                    cluster.crash_somewhere(victim);
                } else {
                    cluster.crash(victim);
                }
            }
            71..=77 if self.profile.crashes() => {
                let down: Vec<NodeId> = ids.iter().copied().filter(|&id| !cluster.is_up(id)).collect();
                if !down.is_empty() {
                    let id = down[self.rng.range(0, down.len() as u64) as usize];
                    cluster.restart(id);
                }
            }
            78..=89 if self.profile.membership() => self.churn(cluster, &ids),
            90..=93 if self.profile.membership() => {
                if let Some(leader) = cluster.leader() {
                    let voters: Vec<NodeId> =
                        cluster.node(leader).map(|n| n.membership().voters().to_vec()).unwrap_or_default();
                    if !voters.is_empty() {
                        let to = voters[self.rng.range(0, voters.len() as u64) as usize];
                        let _ = cluster.transfer_leadership(leader, to);
                    }
                }
            }
            97..=99 if self.profile.buggy_peers() => {
                for _ in 0..self.rng.range(1, 6) {
                    let pick = self.rng.next_u64() as usize;
                    let how = match self.rng.range(0, 4) {
                        0 | 1 => Replay::AsIs,
                        2 => Replay::TruncateEntries(self.rng.range(0, 3) as usize),
                        _ => Replay::FromUnknown(1_000 + self.rng.range(0, 5)),
                    };
                    cluster.replay(pick, how);
                }
            }
            // Snapshots, also in the buggy-peer rolls of other profiles.
            94..=99 => {
                let id = pick(&mut self.rng);
                cluster.snapshot(id);
            }
            _ => self.propose(cluster, &ids),
        }
    }

    pub(super) fn propose<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, ids: &[NodeId]) {
        // Usually to the leader, sometimes to anyone (who refuses).
        let target = match cluster.leader() {
            Some(l) if self.rng.chance(0.9) => l,
            _ => ids[self.rng.range(0, ids.len() as u64) as usize],
        };
        let n = self.rng.range(1, 4);
        let batch: Vec<Bytes> = (0..n).filter_map(|_| self.command()).collect();
        if !batch.is_empty() {
            let _ = cluster.propose_batch(target, batch);
        }
        self.read(cluster, ids);
    }

    /// A read with a user query on a random node (the leader, usually).
    fn read<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, ids: &[NodeId]) {
        let Some(generate) = self.reads.clone() else { return };
        let query = generate(&mut self.workload_rng);
        let node = match cluster.leader() {
            Some(l) if self.workload_rng.chance(0.7) => l,
            _ => ids[self.workload_rng.range(0, ids.len() as u64) as usize],
        };
        self.next_read += 1;
        let _ = cluster.read_query(node, self.next_read, crate::node::ReadKind::Index, query);
    }

    /// One random membership change on the leader: add a new node (as a
    /// learner or a voter), promote a learner, remove a member, or replace
    /// several voters at once (a joint change). Refusals are part of the
    /// test: they must leave the configuration unchanged.
    fn churn<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, ids: &[NodeId]) {
        let Some(leader) = cluster.leader() else { return };
        let Some(config) = cluster.node(leader).map(|n| n.membership().clone()) else { return };
        let members: Vec<NodeId> = config.members().collect();
        let change = match self.rng.range(0, 5) {
            0 | 1 if ids.len() < MAX_NODES => {
                let id = ids.iter().max().copied().unwrap_or(0) + 1;
                cluster.add_node(id);
                if self.rng.chance(0.7) { MembershipChange::AddLearner(id) } else { MembershipChange::AddVoter(id) }
            }
            2 if !config.learners().is_empty() => {
                let l = config.learners()[self.rng.range(0, config.learners().len() as u64) as usize];
                MembershipChange::Promote(l)
            }
            3 if members.len() > 1 => {
                MembershipChange::Remove(members[self.rng.range(0, members.len() as u64) as usize])
            }
            _ => {
                // A joint change: keep a random majority of the voters, add
                // up to two nodes that exist (members or not).
                let mut voters: Vec<NodeId> =
                    config.voters().iter().copied().filter(|_| self.rng.chance(0.6)).collect();
                for _ in 0..self.rng.range(0, 3) {
                    let id = ids[self.rng.range(0, ids.len() as u64) as usize];
                    if !voters.contains(&id) {
                        voters.push(id);
                    }
                }
                if voters.is_empty() {
                    voters.push(leader);
                }
                let learners = config.learners().iter().copied().filter(|l| !voters.contains(l)).collect();
                MembershipChange::Replace { voters, learners }
            }
        };
        let before = config;
        if cluster.change_membership(leader, change).is_err() {
            let after = cluster.node(leader).map(|n| n.membership().clone());
            debug_assert_eq!(after.as_ref(), Some(&before), "a refused change altered the configuration");
        }
    }

    /// The next command to propose: the user's, the filler, or none.
    pub(super) fn command(&mut self) -> Option<Bytes> {
        let command = match &self.commands {
            Some(generate) => generate(&mut self.workload_rng),
            None if self.filler => Bytes::from(format!("cmd-{}", self.proposed + 1)),
            None => return None,
        };
        self.proposed += 1;
        Some(command)
    }

    /// Heals every fault (network, partitions, crashed nodes), then checks
    /// liveness: within `max_ticks` a leader is elected and a new command
    /// commits and is applied on every member. Returns whether it did.
    /// Without a command generator or filler, the leader's last entry (its
    /// no-op, after an election) stands in for the new command: it must be
    /// committed by the leader's term and applied on every member.
    pub fn heal_and_check_liveness<S: StateMachine>(&mut self, cluster: &mut Cluster<S>, max_ticks: u64) -> bool {
        cluster.heal();
        cluster.set_network(NetworkFaults::reliable());
        cluster.resolve_pending_crashes();
        for id in cluster.ids() {
            cluster.restart(id);
        }
        let deadline = super::ticks_after(cluster.now(), max_ticks);
        let ticks_left = |c: &Cluster<S>| deadline.saturating_sub(c.now()) / TICK;
        if cluster.elect(ticks_left(cluster)).is_none() {
            return false;
        }
        // Propose until a command of the current leader's term is applied on
        // every member (a leader change may lose a proposal; then retry).
        while !cluster.halted() && ticks_left(cluster) > 0 {
            let Some(leader) = cluster.leader() else {
                cluster.run_ticks(1);
                continue;
            };
            let ready = match self.command() {
                Some(command) => cluster.propose(leader, command).is_ok(),
                None => cluster.leader_ready(leader),
            };
            if !ready {
                cluster.run_ticks(1);
                continue;
            }
            let Some(node) = cluster.node(leader) else { continue };
            let (index, term) = (node.last_index(), node.term());
            let window = ticks_left(cluster).min(100);
            // Every member of the leader's configuration holds the entry
            // (nodes removed from it may hold a stale view of their own).
            let committed = cluster.run_until(window, |c| {
                let Some(members) = c.leader().and_then(|l| c.node(l)).map(|n| n.membership().clone()) else {
                    return false;
                };
                c.converged()
                    && members
                        .members()
                        .filter_map(|id| c.node(id))
                        .all(|n| crate::RaftLog::term(n.log(), index) == Some(term))
            });
            if committed {
                return true;
            }
        }
        false
    }
}
