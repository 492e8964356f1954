//! The multi-group host (`raft_io::multi`, PROTOCOL.md §10): three hosts
//! in one process, each a replica of every group, envelopes delivered by
//! hand. Groups behave as lone nodes; idle groups quiesce and cost no
//! traffic beyond one ping per pair of nodes; a write wakes its group; a
//! dead node's groups elect new leaders; leaders can be balanced; bad
//! input is refused or dropped and counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_io::multi::{Envelope, EnvelopeBody, GroupId, HostAction, HostConfig, MultiError, MultiNode, plan_transfers};
use raft_io::{Action, Event, MembershipChange, MemoryLog, MessageBody, NodeId, RaftConfig, Role};

const IDS: [NodeId; 3] = [1, 2, 3];

struct Net {
    hosts: BTreeMap<NodeId, MultiNode<MemoryLog>>,
    queue: VecDeque<Envelope>,
    down: BTreeSet<NodeId>,
    /// Hosts that run but whose network is cut.
    cut: BTreeSet<NodeId>,
    reads: Vec<(NodeId, GroupId, u64)>,
    applied: BTreeMap<(NodeId, GroupId), Vec<u64>>,
    sent: u64,
    pings: u64,
}

fn group_config(id: NodeId, group: GroupId) -> RaftConfig {
    RaftConfig::new(id, IDS)
        .election_timeout(10, 20)
        .heartbeat_interval(3)
        .seed(group * 31 + id)
        .lease_reads(true)
        .lease_drift_ticks(2)
}

impl Net {
    fn new(groups: u64, quiescence: bool) -> Self {
        Self::with_hosts(groups, |cfg| cfg.quiescence(quiescence))
    }

    /// `groups` groups on every host, each host configured by `host`.
    fn with_hosts(groups: u64, host: impl Fn(HostConfig) -> HostConfig) -> Self {
        let mut hosts = BTreeMap::new();
        for id in IDS {
            let cfg = host(HostConfig::new(id).ping_interval(3).peer_timeout(10).quiesce_after(6));
            let mut host = MultiNode::new(cfg);
            for g in 1..=groups {
                host.create_group(g, group_config(id, g), MemoryLog::new()).unwrap();
            }
            hosts.insert(id, host);
        }
        Self {
            hosts,
            queue: VecDeque::new(),
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            reads: Vec::new(),
            applied: BTreeMap::new(),
            sent: 0,
            pings: 0,
        }
    }

    fn collect(&mut self, id: NodeId) {
        let actions: Vec<HostAction> = self.hosts.get_mut(&id).unwrap().drain_actions().collect();
        for a in actions {
            match a {
                HostAction::Send(e) => {
                    self.sent += 1;
                    if e.body == EnvelopeBody::Ping {
                        self.pings += 1;
                    }
                    self.queue.push_back(e);
                }
                HostAction::Group { group, action: Action::Apply { index, .. } } => {
                    self.applied.entry((id, group)).or_default().push(index)
                }
                HostAction::Group { group, action: Action::ReadReady { id: read, .. } } => {
                    self.reads.push((id, group, read))
                }
                _ => {}
            }
        }
    }

    fn deliver(&mut self) {
        self.deliver_watching(|_| {});
    }

    /// Delivers until nothing is in flight; `watch` sees each envelope
    /// that goes through.
    fn deliver_watching(&mut self, mut watch: impl FnMut(&Envelope)) {
        self.deliver_passing(|e| {
            watch(e);
            true
        });
    }

    /// Delivers until nothing is in flight; an envelope `pass` refuses is
    /// lost.
    fn deliver_passing(&mut self, mut pass: impl FnMut(&Envelope) -> bool) {
        while let Some(e) = self.queue.pop_front() {
            let blocked = |n: &NodeId| self.down.contains(n) || self.cut.contains(n);
            if blocked(&e.to) || blocked(&e.from) || !pass(&e) {
                continue;
            }
            let to = e.to;
            self.hosts.get_mut(&to).unwrap().receive(e);
            self.collect(to);
        }
    }

    fn tick(&mut self) {
        self.advance_hosts(1, |_, _| {});
        self.deliver();
    }

    /// Every running host's clock moves by `n` ticks at once; `look` sees
    /// each host right after its move, before its actions leave.
    fn advance_hosts(&mut self, n: u64, mut look: impl FnMut(NodeId, &MultiNode<MemoryLog>)) {
        for id in IDS {
            if self.down.contains(&id) {
                continue;
            }
            let host = self.hosts.get_mut(&id).unwrap();
            host.advance(n).unwrap();
            look(id, host);
            self.collect(id);
        }
    }

    fn step(&mut self, id: NodeId, group: GroupId, event: Event) -> Result<(), MultiError> {
        let r = self.hosts.get_mut(&id).unwrap().step(group, event);
        self.collect(id);
        self.deliver();
        r
    }

    fn leader(&self, group: GroupId) -> Option<NodeId> {
        IDS.into_iter()
            .filter(|id| !self.down.contains(id))
            .find(|id| self.hosts[id].group(group).is_some_and(|n| n.is_leader()))
    }

    fn run_until(&mut self, max: u64, done: impl Fn(&Self) -> bool) -> bool {
        for _ in 0..max {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }
}

#[test]
fn groups_behave_as_lone_nodes_and_actions_carry_their_group() {
    let mut net = Net::new(5, true);
    assert!(net.run_until(200, |n| (1..=5).all(|g| n.leader(g).is_some())));
    for g in 1..=5 {
        let l = net.leader(g).unwrap();
        net.step(l, g, Event::Propose(format!("g{g}").into())).unwrap();
    }
    assert!(
        net.run_until(20, |n| (1..=5)
            .all(|g| IDS.iter().all(|&id| n.hosts[&id].group(g).unwrap().last_applied() >= 2)))
    );
    for g in 1..=5 {
        for id in IDS {
            let node = net.hosts[&id].group(g).unwrap();
            assert_eq!(node.commit_index(), net.hosts[&1].group(g).unwrap().commit_index(), "group {g} node {id}");
        }
    }
    // Proposals to a follower are refused by the group's node, as alone.
    let g = 1;
    let follower = IDS.into_iter().find(|&id| Some(id) != net.leader(g)).unwrap();
    let err = net.step(follower, g, Event::Propose("x".into())).unwrap_err();
    assert!(matches!(err.node_error(), Some(raft_io::Error::NotLeader { .. })), "{err}");
}

#[test]
fn bad_group_input_is_refused_or_dropped_and_counted() {
    let mut host: MultiNode<MemoryLog> = MultiNode::new(HostConfig::new(1));
    assert!(matches!(host.create_group(0, RaftConfig::single(1), MemoryLog::new()), Err(MultiError::InvalidGroup)));
    host.create_group(4, RaftConfig::single(1), MemoryLog::new()).unwrap();
    assert!(matches!(host.create_group(4, RaftConfig::single(1), MemoryLog::new()), Err(MultiError::GroupExists(4))));
    assert!(matches!(
        host.create_group(5, RaftConfig::single(2), MemoryLog::new()),
        Err(MultiError::WrongNode { group: 5, config_node: 2, node: 1 })
    ));
    assert!(matches!(host.step(9, Event::Tick), Err(MultiError::UnknownGroup(9))));
    assert!(matches!(host.step(0, Event::Tick), Err(MultiError::InvalidGroup)));
    let stray = raft_io::Message {
        from: 2,
        to: 1,
        term: 1,
        body: raft_io::MessageBody::Heartbeat(raft_io::Heartbeat { commit: 0, round: 1 }),
    };
    host.receive(Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: 9, message: stray.clone() } });
    host.receive(Envelope { from: 2, to: 1, body: EnvelopeBody::Raft { group: 0, message: stray.clone() } });
    host.receive(Envelope { from: 2, to: 3, body: EnvelopeBody::Ping });
    assert_eq!(host.stats().unknown_group_dropped, 2);
    assert_eq!(host.stats().misaddressed_dropped, 1);
    host.remove_group(4).unwrap();
    assert!(matches!(host.step(4, Event::Tick), Err(MultiError::UnknownGroup(4))));
    assert!(matches!(host.remove_group(4), Err(MultiError::UnknownGroup(4))));
}

#[test]
fn idle_groups_quiesce_and_cost_only_one_ping_per_pair_of_nodes() {
    for groups in [10u64, 100] {
        let mut net = Net::new(groups, true);
        assert!(
            net.run_until(400, |n| (1..=groups).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))),
            "{groups} groups quiesce"
        );
        let (sent, steps) = (net.sent, net.hosts.values().map(|h| h.stats().steps).sum::<u64>());
        net.run_until(90, |_| false);
        let traffic = net.sent - sent;
        let steps = net.hosts.values().map(|h| h.stats().steps).sum::<u64>() - steps;
        // 90 ticks, a ping every 3 ticks, 3 hosts × 2 peers: 180 envelopes.
        assert_eq!(traffic, 180, "{groups} groups: only pings");
        assert_eq!(steps, 0, "{groups} groups: no group stepped");
    }
}

#[test]
fn without_quiescence_idle_traffic_grows_with_the_groups() {
    let mut net = Net::new(20, false);
    assert!(net.run_until(200, |n| (1..=20).all(|g| n.leader(g).is_some())));
    let sent = net.sent;
    net.run_until(90, |_| false);
    assert!(net.sent - sent > 20 * 30, "heartbeats for every group: {}", net.sent - sent);
}

#[test]
fn a_write_wakes_its_quiesced_group_and_commits_within_two_heartbeats() {
    let mut net = Net::new(8, true);
    assert!(net.run_until(400, |n| (1..=8).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))));
    let g = 3;
    let l = net.leader(g).unwrap();
    let last = net.hosts[&l].group(g).unwrap().last_index();
    net.step(l, g, Event::Propose("wake".into())).unwrap();
    // Heartbeat interval 3 ticks: committed on the leader and applied on
    // every member within 2 intervals.
    assert!(net.run_until(6, |n| IDS.iter().all(|id| n.hosts[id].group(g).unwrap().last_applied() > last)));
    assert!(
        (1..=8).filter(|&o| o != g).all(|o| IDS.iter().all(|id| net.hosts[id].is_quiesced(o))),
        "the others stay quiet"
    );
    assert!(net.run_until(100, |n| IDS.iter().all(|id| n.hosts[id].is_quiesced(g))), "and it quiesces again");
}

#[test]
fn a_dead_leaders_quiesced_groups_elect_new_leaders() {
    let mut net = Net::new(12, true);
    assert!(net.run_until(400, |n| (1..=12).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))));
    let victim = 1;
    let led: Vec<GroupId> = (1..=12).filter(|&g| net.leader(g) == Some(victim)).collect();
    if led.is_empty() {
        // Hand it one first: the test needs a group it leads.
        let g = 1;
        let l = net.leader(g).unwrap();
        net.step(l, g, Event::TransferLeadership(victim)).unwrap();
        assert!(net.run_until(100, |n| n.leader(g) == Some(victim) && IDS.iter().all(|id| n.hosts[id].is_quiesced(g))));
    }
    let led: Vec<GroupId> = (1..=12).filter(|&g| net.leader(g) == Some(victim)).collect();
    assert!(!led.is_empty());
    net.down.insert(victim);
    // Peer timeout 10 ticks, then an election timeout of at most 20.
    assert!(
        net.run_until(40, |n| led.iter().all(|&g| n.leader(g).is_some_and(|l| l != victim))),
        "groups {led:?} elected new leaders"
    );
    let woken: u64 = net.hosts.values().map(|h| h.stats().woken_by_peer_loss).sum();
    assert!(woken >= led.len() as u64);
    // A silence is acted on once, however long it lasts; a peer heard
    // again and lost again is a second silence.
    net.run_until(100, |_| false);
    let lost =
        |n: &Net| IDS.iter().filter(|&&id| id != victim).map(|id| n.hosts[id].stats().peers_lost).collect::<Vec<_>>();
    assert_eq!(lost(&net), [1, 1], "each survivor declared node {victim} down once");
    net.down.remove(&victim);
    net.run_until(20, |_| false);
    net.down.insert(victim);
    net.run_until(40, |_| false);
    assert_eq!(lost(&net), [2, 2], "a second silence");
}

#[test]
fn leadership_balancing_spreads_leaders_over_the_nodes() {
    let groups = 12;
    let mut net = Net::new(groups, true);
    // Node 1 leads every group first.
    assert!(net.run_until(200, |n| (1..=groups).all(|g| n.leader(g).is_some())));
    for g in 1..=groups {
        let l = net.leader(g).unwrap();
        if l != 1 {
            net.step(l, g, Event::TransferLeadership(1)).unwrap();
        }
    }
    assert!(net.run_until(100, |n| (1..=groups).all(|g| n.leader(g) == Some(1))));
    for _ in 0..10 {
        net.hosts.get_mut(&1).unwrap().rebalance(groups as usize).unwrap();
        net.collect(1);
        net.deliver();
        net.run_until(30, |_| false);
    }
    assert!(net.run_until(100, |n| (1..=groups).all(|g| n.leader(g).is_some())));
    let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
    for g in 1..=groups {
        *counts.entry(net.leader(g).unwrap()).or_insert(0) += 1;
    }
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![4, 4, 4], "{counts:?}");
}

#[test]
fn the_plan_moves_leaders_until_no_node_is_two_above_a_voter() {
    let groups: BTreeMap<u64, (u64, Vec<u64>)> = (1..=10).map(|g| (g, (1, vec![1, 2, 3, 4, 5]))).collect();
    let moves = plan_transfers(&groups);
    let mut load: BTreeMap<u64, usize> = BTreeMap::new();
    let mut leaders: BTreeMap<u64, u64> = groups.iter().map(|(&g, (l, _))| (g, *l)).collect();
    for (g, from, to) in &moves {
        assert_eq!(leaders[g], *from);
        leaders.insert(*g, *to);
    }
    for l in leaders.values() {
        *load.entry(*l).or_insert(0) += 1;
    }
    assert_eq!(load.values().copied().collect::<Vec<_>>(), vec![2, 2, 2, 2, 2]);
    assert_eq!(moves.len(), 8);
    // Already balanced: nothing to do.
    assert!(plan_transfers(&(1..=3).map(|g| (g, (g, vec![1, 2, 3]))).collect()).is_empty());
}

/// A quiesced leader holds no lease: cut off while quiesced, it must not
/// serve a lease read from its old clock when a read wakes it, since the
/// others may have elected a new leader meanwhile.
#[test]
fn a_quiesced_leader_woken_by_a_lease_read_holds_no_lease() {
    let mut net = Net::new(4, true);
    assert!(net.run_until(400, |n| (1..=4).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))));
    let g = 2;
    let old = net.leader(g).unwrap();
    net.cut.insert(old);
    // The others notice the silence and elect a new leader, which commits.
    assert!(net.run_until(60, |n| IDS.iter().any(|&id| id != old && n.hosts[&id].group(g).unwrap().is_leader())));
    let new = IDS.into_iter().find(|&id| id != old && net.hosts[&id].group(g).unwrap().is_leader()).unwrap();
    net.step(new, g, Event::Propose("after".into())).unwrap();
    net.run_until(5, |_| false);
    // The old leader, still quiesced and cut off, is asked a lease read.
    assert!(net.hosts[&old].is_quiesced(g));
    net.step(old, g, Event::Read { id: 77, kind: raft_io::ReadKind::Lease }).unwrap();
    net.run_until(3, |_| false);
    assert!(
        !net.reads.iter().any(|&(id, group, read)| id == old && group == g && read == 77),
        "stale lease read served"
    );
}

/// Removing a group while a snapshot streams to it (on the receiving
/// node) or from it (on the sending one) is safe: nothing panics, the
/// other groups go on, and what arrives for the removed group is dropped
/// and counted.
#[test]
fn removing_a_group_with_a_snapshot_in_flight_is_safe() {
    let mut net = Net::new(3, true);
    assert!(net.run_until(200, |n| (1..=3).all(|g| n.leader(g).is_some())));
    let g = 1;
    let l = net.leader(g).unwrap();
    let f = IDS.into_iter().find(|&id| id != l).unwrap();
    net.cut.insert(f);
    for k in 0..40 {
        net.step(l, g, Event::Propose(format!("e{k}").into())).unwrap();
    }
    net.run_until(5, |_| false);
    let applied = net.hosts[&l].group(g).unwrap().last_applied();
    net.step(l, g, Event::Snapshot { index: applied, data: vec![7u8; 200_000].into() }).unwrap();
    net.cut.remove(&f);
    // Let the stream start, then remove the group on the receiver.
    let mut chunks = 0;
    for _ in 0..50 {
        net.tick();
        chunks = net.hosts[&f].group(g).map_or(0, |n| n.metrics().snapshot_bytes_received);
        if chunks > 0 {
            break;
        }
    }
    assert!(chunks > 0, "the stream started");
    net.hosts.get_mut(&f).unwrap().remove_group(g).unwrap();
    net.run_until(30, |_| false);
    assert!(net.hosts[&f].stats().unknown_group_dropped > 0, "what kept arriving was dropped and counted");
    // And on the sender.
    net.hosts.get_mut(&l).unwrap().remove_group(g).unwrap();
    net.run_until(30, |_| false);
    for other in [2, 3] {
        let leader = net.leader(other).unwrap();
        let last = net.hosts[&leader].group(other).unwrap().last_index();
        net.step(leader, other, Event::Propose("still".into())).unwrap();
        assert!(
            net.run_until(20, |n| n.hosts[&leader].group(other).unwrap().commit_index() > last),
            "group {other} goes on"
        );
    }
}

/// A driver that finds many ticks due reports them at once
/// (`MultiNode::advance`, PROTOCOL.md §8.4): every awake group steps once,
/// its timers end where that many single ticks would leave them, and one
/// round of pings goes out, so a slow turn costs no more than a quick one.
#[test]
fn advancing_many_ticks_at_once_steps_each_awake_group_once() {
    let mut net = Net::new(20, false);
    assert!(net.run_until(200, |n| (1..=20).all(|g| n.leader(g).is_some())));
    let host = net.hosts.get_mut(&1).unwrap();
    let (steps, ticks) = (host.stats().steps, host.ticks());
    host.advance(50).unwrap();
    assert_eq!(host.ticks(), ticks + 50);
    assert_eq!(host.stats().steps - steps, 20, "one step per awake group, not one per group and tick");
    let pings =
        host.drain_actions().filter(|a| matches!(a, HostAction::Send(e) if e.body == EnvelopeBody::Ping)).count();
    assert_eq!(pings, 2, "one round of pings to the two peers");
    host.advance(0).unwrap();
    assert_eq!(host.stats().steps - steps, 20, "advance(0) does nothing");

    // The timers move by the whole gap: a follower that hears nothing for
    // its longest election timeout campaigns after one advance.
    let mut net = Net::new(1, false);
    let host = net.hosts.get_mut(&2).unwrap();
    assert_eq!(host.group(1).unwrap().role(), Role::Follower);
    host.advance(21).unwrap();
    assert_ne!(host.group(1).unwrap().role(), Role::Follower, "the election timer fired");
}

/// A long gap reported at once does not make a peer heard during it look
/// dead: an envelope received since the clock last moved counts as heard
/// when it moves. A peer that stays silent through the next gap is
/// declared dead, and the quiesced groups it leads wake.
#[test]
fn a_peer_heard_in_a_long_turn_is_alive_after_it() {
    let mut net = Net::new(6, true);
    assert!(net.run_until(400, |n| (1..=6).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))));
    let led: Vec<GroupId> = (1..=6).filter(|&g| net.leader(g) == Some(2)).collect();
    let host = net.hosts.get_mut(&1).unwrap();
    let woken = host.stats().woken_by_peer_loss;
    // Node 2 and node 3 ping; then the turn turns out to have taken 25
    // ticks (peer timeout 10).
    for from in [2, 3] {
        host.receive(Envelope { from, to: 1, body: EnvelopeBody::Ping });
    }
    host.advance(25).unwrap();
    assert_eq!(host.stats().woken_by_peer_loss, woken, "both peers were heard at the end of the gap");
    assert!((1..=6).all(|g| host.is_quiesced(g)));
    // Only node 3 is heard in the next gap: node 2's groups wake.
    host.receive(Envelope { from: 3, to: 1, body: EnvelopeBody::Ping });
    host.advance(25).unwrap();
    assert_eq!(host.stats().woken_by_peer_loss, woken + led.len() as u64, "node 2 led {led:?}");
    assert!(led.iter().all(|&g| !host.is_quiesced(g)));
}

/// Campaign pacing (PROTOCOL.md §10, "Campaign pacing"): 300 groups created at once on
/// three hosts that let at most 8 campaign at a time. No host ever has
/// more than 8 campaigning, elections were held back, and every group
/// still elects a leader and quiesces.
#[test]
fn groups_created_together_campaign_a_few_at_a_time_and_all_settle() {
    const GROUPS: u64 = 300;
    const LIMIT: u64 = 8;
    let mut net = Net::with_hosts(GROUPS, |cfg| cfg.max_campaigns(LIMIT as usize));
    let mut most = 0;
    let settled = |n: &Net| (1..=GROUPS).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)));
    for _ in 0..3000 {
        if settled(&net) {
            break;
        }
        // Each host ticks; its campaigns are counted before any answer
        // arrives (this network delivers a whole election in one round).
        net.advance_hosts(1, |id, host| {
            let campaigning = host.stats().campaigning;
            let by_role =
                host.groups().filter(|(_, n)| matches!(n.role(), Role::PreCandidate | Role::Candidate)).count() as u64;
            most = most.max(by_role);
            assert!(by_role <= LIMIT && campaigning <= LIMIT, "{by_role} campaigning on node {id}");
        });
        net.deliver();
    }
    assert!(settled(&net), "every group elected a leader and quiesced");
    assert_eq!(most, LIMIT, "the limit was reached");
    let held: u64 = net.hosts.values().map(|h| h.stats().campaigns_held).sum();
    assert!(held > 0, "elections were held back");
    assert!((1..=GROUPS).all(|g| net.leader(g).is_some()));
}

/// One campaign slot per host; node 1 cut off, so its group 1 (all three
/// nodes) campaigns there and never wins: it holds the only slot.
fn group_one_campaigning_alone() -> Net {
    let mut net = Net::with_hosts(1, |cfg| cfg.max_campaigns(1));
    net.cut.insert(1);
    let host = net.hosts.get_mut(&1).unwrap();
    for _ in 0..25 {
        host.tick().unwrap();
    }
    assert_eq!(host.group(1).unwrap().role(), Role::PreCandidate);
    assert_eq!(host.stats().campaigning, 1, "group 1 holds the only slot");
    net
}

/// A group that cannot win (its host is cut off) does not keep the one
/// campaign slot from a group that can: its round runs out, and while
/// another group waits it lets that group go first.
#[test]
fn a_group_that_cannot_win_does_not_keep_the_slot() {
    let mut net = group_one_campaigning_alone();
    let host = net.hosts.get_mut(&1).unwrap();
    elect_lone_group(host, 2, 5, 100);
    assert!(host.stats().campaigns_held > 0, "group 2 waited for the slot");
    // Group 1 gets the slot back and keeps trying.
    for _ in 0..25 {
        host.tick().unwrap();
    }
    assert_eq!(host.group(1).unwrap().role(), Role::PreCandidate);
    assert_eq!(host.stats().campaigning, 1);
}

/// A group removed while it campaigns gives its slot back: with one slot,
/// a group cut off on node 1 campaigns (and keeps the slot, no other group
/// waiting), is removed, and the next group still gets the slot and wins.
/// (A removed group never ticks again, so a slot it kept would be lost for
/// good: no group of the host would ever campaign.)
#[test]
fn a_group_removed_while_campaigning_gives_its_campaign_slot_back() {
    let mut net = group_one_campaigning_alone();
    let host = net.hosts.get_mut(&1).unwrap();
    host.remove_group(1).unwrap();
    assert_eq!(host.stats().campaigning, 0, "the removed group's slot is free");
    elect_lone_group(host, 2, 5, 100);
}

/// Creates `group` on node 1's `host` with node 1 as its only voter (it
/// wins as soon as it campaigns) and ticks until it leads, at most `max`
/// ticks.
fn elect_lone_group(host: &mut MultiNode<MemoryLog>, group: GroupId, seed: u64, max: u64) {
    let config = RaftConfig::new(1, [1]).election_timeout(10, 20).seed(seed);
    host.create_group(group, config, MemoryLog::new()).unwrap();
    for _ in 0..max {
        if host.group(group).unwrap().is_leader() {
            return;
        }
        host.tick().unwrap();
    }
    assert!(host.group(group).unwrap().is_leader(), "group {group} never got a campaign slot");
}

/// Slots go round: with one slot, two groups that cannot win (3 and 5)
/// and one that can (4, created while they campaign), the one that can
/// still gets the slot, whatever the group order puts first.
#[test]
fn slots_go_round_past_groups_that_cannot_win() {
    let mut net = Net::with_hosts(0, |cfg| cfg.max_campaigns(1));
    net.cut.insert(1);
    let host = net.hosts.get_mut(&1).unwrap();
    for g in [3, 5] {
        host.create_group(g, group_config(1, g), MemoryLog::new()).unwrap();
    }
    for _ in 0..25 {
        host.tick().unwrap();
    }
    elect_lone_group(host, 4, 9, 200);
    assert_eq!(host.stats().campaigning, 1, "one of the others campaigns again");
}

/// A peer that no group here names any more is forgotten: no pings go to
/// it. Removed from a group's configuration, or its last group removed
/// from the host; a group that names it again brings it back.
#[test]
fn a_peer_no_group_names_gets_no_pings() {
    let pings_to = |host: &mut MultiNode<MemoryLog>, to: NodeId, ticks: u64| {
        let mut n = 0;
        for _ in 0..ticks {
            host.tick().unwrap();
            n += host
                .drain_actions()
                .filter(|a| matches!(a, HostAction::Send(e) if e.body == EnvelopeBody::Ping && e.to == to))
                .count();
        }
        n
    };
    // Node 3 leaves group 1's configuration.
    let mut net = Net::new(1, false);
    assert!(net.run_until(200, |n| n.leader(1).is_some()));
    let leader = net.leader(1).unwrap();
    let gone = IDS.into_iter().find(|&id| id != leader).unwrap();
    net.step(leader, 1, Event::ChangeMembership(MembershipChange::Remove(gone))).unwrap();
    assert!(net.run_until(50, |n| !n.hosts[&leader].group(1).unwrap().membership().contains(gone)));
    let host = net.hosts.get_mut(&leader).unwrap();
    assert_eq!(pings_to(host, gone, 12), 0, "node {gone} left the only group");
    // The departure is reported once, for the driver to let the peer go.
    let mut departed = Vec::new();
    host.take_departed_peers(&mut departed);
    assert_eq!(departed, [gone]);
    host.take_departed_peers(&mut departed);
    assert_eq!(departed, [gone], "reported once");

    // The last group naming node 2 leaves the host; a new group names it again.
    let mut host = MultiNode::new(HostConfig::new(1).ping_interval(3));
    host.create_group(1, RaftConfig::new(1, [1, 2]), MemoryLog::new()).unwrap();
    assert!(pings_to(&mut host, 2, 12) >= 3);
    host.remove_group(1).unwrap();
    assert_eq!(pings_to(&mut host, 2, 12), 0, "no group names node 2");
    host.create_group(2, RaftConfig::new(1, [1, 2]), MemoryLog::new()).unwrap();
    assert!(pings_to(&mut host, 2, 12) >= 3);
    // Named again before the driver asked: not reported as departed.
    let mut departed = Vec::new();
    host.take_departed_peers(&mut departed);
    assert_eq!(departed, [], "node 2 is named again");
    host.remove_group(2).unwrap();
    host.take_departed_peers(&mut departed);
    assert_eq!(departed, [2]);
}

/// Late news does not wake a quiesced group (PROTOCOL.md §10, "Waking"):
/// a heartbeat sent before the leader quiesced and the answers to it,
/// arriving after, are taken without waking anything. (Woken, a leader
/// heartbeats, the answers come back after it quiesced again, and under
/// load the groups never settle.) A heartbeat that brings news does wake.
#[test]
fn late_heartbeats_and_answers_do_not_wake_a_quiesced_group() {
    let mut net = Net::new(1, true);
    assert!(net.run_until(200, |n| n.leader(1).is_some()));
    let is = |e: &Envelope, hb: bool| match &e.body {
        EnvelopeBody::Raft { message, .. } => {
            matches!(
                (&message.body, hb),
                (MessageBody::Heartbeat(hb), true) if !hb.is_commit_notice()
            ) || matches!((&message.body, hb), (MessageBody::HeartbeatResponse(_), false))
        }
        _ => false,
    };
    // Copies of a heartbeat round (not a commit notice, which is not
    // answered) and of an answer, taken off the wire.
    let (mut heartbeat, mut answer) = (None, None);
    for _ in 0..30 {
        net.advance_hosts(1, |_, _| {});
        net.deliver_watching(|e| {
            if heartbeat.is_none() && is(e, true) {
                heartbeat = Some(e.clone());
            }
            if answer.is_none() && is(e, false) {
                answer = Some(e.clone());
            }
        });
    }
    let (heartbeat, answer) = (heartbeat.expect("a heartbeat"), answer.expect("an answer"));
    assert!(net.run_until(400, |n| IDS.iter().all(|id| n.hosts[id].is_quiesced(1))));
    let wakes = |n: &Net| IDS.iter().map(|id| n.hosts[id].stats().wakes).sum::<u64>();
    let before = wakes(&net);
    for late in [heartbeat.clone(), answer] {
        let to = late.to;
        net.hosts.get_mut(&to).unwrap().receive(late);
        net.collect(to);
        net.deliver();
    }
    assert_eq!(wakes(&net), before, "nothing woke");
    assert!(IDS.iter().all(|id| net.hosts[id].is_quiesced(1)));
    let quiet: u64 = IDS.iter().map(|id| net.hosts[id].stats().quiet_messages).sum();
    assert!(quiet >= 3, "the heartbeat, its answer, and the late answer: {quiet}");
    for _ in 0..50 {
        net.tick();
    }
    assert_eq!(wakes(&net), before, "and nothing wakes later");

    // From a node that is not the follower's leader, the same heartbeat
    // wakes the group.
    let EnvelopeBody::Raft { group, mut message } = heartbeat.body else { unreachable!() };
    let leader = message.from;
    let other = IDS.into_iter().find(|&id| id != leader && id != heartbeat.to).unwrap();
    message.from = other;
    let host = net.hosts.get_mut(&heartbeat.to).unwrap();
    host.receive(Envelope { from: other, to: heartbeat.to, body: EnvelopeBody::Raft { group, message } });
    assert!(!host.is_quiesced(1), "a heartbeat from a stranger wakes the group");
}

/// A stale quiescence notice does not quiesce a follower that has moved
/// on (PROTOCOL.md §10: a follower quiesces on a notice from the leader it
/// follows, in that term). Leader `l` quiesces group 1 in term `t`; its
/// notice to follower `f` is kept, to arrive late. Then every append to
/// `f` is lost (votes and heartbeats get through), so `f` keeps the log
/// and commit index the notice names, settled and quiescable: it follows
/// `g` in a new term, then `l` again in a newer one. The late notice
/// quiesces it in neither (in the second, only its term is stale).
#[test]
fn a_stale_quiescence_notice_does_not_quiesce_a_follower_that_moved_on() {
    let mut net = Net::new(1, true);
    let mut notices = Vec::new();
    for _ in 0..400 {
        if IDS.iter().all(|id| net.hosts[id].is_quiesced(1)) {
            break;
        }
        net.advance_hosts(1, |_, _| {});
        net.deliver_watching(|e| {
            if matches!(e.body, EnvelopeBody::Quiesce { .. }) {
                notices.push(e.clone());
            }
        });
    }
    assert!(IDS.iter().all(|id| net.hosts[id].is_quiesced(1)), "group 1 settled");
    let l = net.leader(1).unwrap();
    let f = IDS.into_iter().find(|&id| id != l).unwrap();
    let g = IDS.into_iter().find(|&id| id != l && id != f).unwrap();
    let stale = notices.into_iter().rfind(|e| e.from == l && e.to == f).expect("l's notice to f");
    let EnvelopeBody::Quiesce { term, commit, .. } = stale.body else { unreachable!() };
    assert_eq!(net.hosts[&f].group(1).unwrap().commit_index(), commit);

    let no_appends_to_f = |e: &Envelope| {
        !(e.to == f
            && matches!(&e.body, EnvelopeBody::Raft { message, .. } if matches!(message.body, MessageBody::Append(_))))
    };
    // `from` hands group 1 to `to`; then heartbeats go out and reach `f`.
    let transfer = |net: &mut Net, from: NodeId, to: NodeId| {
        net.hosts.get_mut(&from).unwrap().step(1, Event::TransferLeadership(to)).unwrap();
        net.collect(from);
        net.deliver_passing(no_appends_to_f);
        assert_eq!(net.leader(1), Some(to));
        for _ in 0..3 {
            net.advance_hosts(1, |_, _| {});
            net.deliver_passing(no_appends_to_f);
        }
    };
    let late_notice_to_f = |net: &mut Net, leader: NodeId, leader_term: u64| {
        let host = net.hosts.get_mut(&f).unwrap();
        let node = host.group(1).unwrap();
        assert_eq!((node.role(), node.term(), node.leader()), (Role::Follower, leader_term, Some(leader)));
        assert_eq!(node.commit_index(), commit, "f holds what the notice names");
        assert!(node.is_quiescable(), "only the notice's staleness keeps f awake");
        host.receive(stale.clone());
        assert!(!host.is_quiesced(1), "a stale notice quiesced f (following {leader} in term {leader_term})");
    };
    // A new leader, in a new term.
    transfer(&mut net, l, g);
    late_notice_to_f(&mut net, g, term + 1);
    // The same leader again, in a newer term.
    transfer(&mut net, g, l);
    late_notice_to_f(&mut net, l, term + 2);
}

/// Slow turns (PROTOCOL.md §10, "Waking"): when every turn of every host
/// takes four ticks, a leader quiesces in the same turn as it sends a
/// heartbeat, and the answers arrive after. They are quiet news: the
/// groups settle, and stay settled. (Woken by them, each leader would
/// heartbeat again in the turn it next quiesces, and the groups would
/// quiesce and wake forever.)
#[test]
fn groups_settle_when_every_turn_takes_several_ticks() {
    const GROUPS: u64 = 50;
    let mut net = Net::new(GROUPS, true);
    let settled = |n: &Net| (1..=GROUPS).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)));
    let turn = |net: &mut Net| {
        net.advance_hosts(4, |_, _| {});
        net.deliver();
    };
    let mut turns = 0;
    while !settled(&net) {
        assert!(turns < 300, "not settled after {turns} turns of 4 ticks");
        turn(&mut net);
        turns += 1;
    }
    println!("settled after {turns} turns of 4 ticks");
    let wakes = |n: &Net| IDS.iter().map(|id| n.hosts[id].stats().wakes).sum::<u64>();
    let before = wakes(&net);
    for _ in 0..50 {
        turn(&mut net);
    }
    assert!(settled(&net));
    assert_eq!(wakes(&net), before, "settled groups stay settled");
}

/// With `apply_ranges`, a group's committed commands come as
/// `Action::ApplyRange`, read from the group's node after a drain. If the
/// host steps the group with a snapshot (or removes it) before its ranges
/// are drained, it first turns them into `Action::Apply`s: that step could
/// compact a range away. Either way the same commands arrive, in order.
#[test]
fn queued_ranges_are_read_after_a_drain_or_turned_into_applies_before_the_next_step() {
    let mut host = MultiNode::new(HostConfig::new(1));
    host.create_group(7, RaftConfig::single(1).apply_ranges(true), MemoryLog::new()).unwrap();
    host.step(7, Event::Campaign).unwrap();
    host.drain_actions().for_each(drop);
    // Drained after the step: a range, read from the group's node.
    host.step(7, Event::ProposeBatch(vec!["a".into(), "b".into()])).unwrap();
    let drained: Vec<HostAction> = host.drain_actions().collect();
    let mut seen = Vec::new();
    for a in drained {
        match a {
            HostAction::Group { group: 7, action: Action::ApplyRange { first, last } } => {
                host.group(7).unwrap().visit_applied(first, last, |i, _, c| seen.push((i, c.clone()))).unwrap();
            }
            HostAction::Group { action: Action::Apply { .. }, .. } => panic!("an Apply where a range was wanted"),
            _ => {}
        }
    }
    assert_eq!(seen, [(2, "a".into()), (3, "b".into())]);
    // Stepped again before a drain, then compacted: the first range was
    // turned into applies before the next step, so nothing is lost.
    host.step(7, Event::Propose("c".into())).unwrap();
    host.step(7, Event::Propose("d".into())).unwrap();
    host.step(7, Event::Snapshot { index: 5, data: "state".into() }).unwrap();
    let mut seen = Vec::new();
    let drained: Vec<HostAction> = host.drain_actions().collect();
    for a in drained {
        if let HostAction::Group { action, .. } = a {
            match action {
                Action::Apply { index, command, .. } => seen.push((index, command)),
                Action::ApplyRange { .. } => panic!("a range left queued across a later step: {action:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(seen, [(4, "c".into()), (5, "d".into())]);
    // Removing a group settles its queued ranges too.
    host.step(7, Event::Propose("e".into())).unwrap();
    host.remove_group(7).unwrap();
    let applied: Vec<_> = host
        .drain_actions()
        .filter_map(|a| match a {
            HostAction::Group { action: Action::Apply { index, .. }, .. } => Some(index),
            _ => None,
        })
        .collect();
    assert_eq!(applied, [6]);
}

/// A group's `ApplyRange`s not read yet stay ranges when the group is
/// stepped again with an event that cannot drop applied entries (so a
/// host stepped one envelope at a time never rewrites its queue for
/// them); each is read after the drain, in order. (Before a snapshot they
/// are settled: the test above.)
#[test]
fn queued_ranges_are_settled_only_before_a_step_that_could_drop_them() {
    let mut host = MultiNode::new(HostConfig::new(1));
    host.create_group(7, RaftConfig::new(1, [1]).apply_ranges(true), MemoryLog::new()).unwrap();
    host.step(7, Event::Campaign).unwrap();
    let _: Vec<HostAction> = host.drain_actions().collect();
    let propose = |host: &mut MultiNode<MemoryLog>, c: &str| {
        host.step(7, Event::Propose(bytes::Bytes::copy_from_slice(c.as_bytes()))).unwrap()
    };
    propose(&mut host, "a");
    propose(&mut host, "b");
    host.step(7, Event::Tick).unwrap();
    propose(&mut host, "c");
    let commands = |actions: &[HostAction], host: &MultiNode<MemoryLog>| {
        let (mut ranges, mut seen) = (0, Vec::new());
        for a in actions {
            match a {
                HostAction::Group { action: Action::ApplyRange { first, last }, .. } => {
                    ranges += 1;
                    let node = host.group(7).unwrap();
                    node.visit_applied(*first, *last, |_, _, c| seen.push(c.clone())).unwrap();
                }
                HostAction::Group { action: Action::Apply { command, .. }, .. } => seen.push(command.clone()),
                _ => {}
            }
        }
        (ranges, seen)
    };
    let actions: Vec<HostAction> = host.drain_actions().collect();
    let (ranges, seen) = commands(&actions, &host);
    assert_eq!(ranges, 3, "each step's range left as it was queued");
    assert_eq!(seen, ["a", "b", "c"]);
}

/// The rule of PROTOCOL.md §10: a peer is down once it has been silent for
/// more than `peer_timeout` ticks — exactly `peer_timeout` ticks of silence
/// is not yet down, one more is — whether the clock moves a tick at a time
/// or in bulk.
#[test]
fn a_peer_is_down_after_more_than_peer_timeout_ticks_of_silence() {
    for bulk in [false, true] {
        let mut host = MultiNode::new(HostConfig::new(1).ping_interval(3).peer_timeout(10));
        host.create_group(1, group_config(1, 1), MemoryLog::new()).unwrap();
        let start = host.ticks();
        let move_to = |host: &mut MultiNode<MemoryLog>, at: u64| {
            if bulk {
                host.advance(at - host.ticks()).unwrap();
            } else {
                while host.ticks() < at {
                    host.tick().unwrap();
                }
            }
            host.drain_actions().for_each(drop);
        };
        move_to(&mut host, start + 10);
        assert_eq!(host.stats().peers_lost, 0, "silent for exactly peer_timeout ticks (bulk: {bulk})");
        move_to(&mut host, start + 11);
        assert_eq!(host.stats().peers_lost, 2, "silent for one tick more: both peers down (bulk: {bulk})");
    }
}

/// A leader's replica removed from its host (`remove_group`) while the
/// group is quiesced: its followers elsewhere must not wait for a request
/// to wake them. The leader's host still pings (it hosts another group with
/// the same peers), so no peer is lost; the removed leader hands the group
/// to an up-to-date voter on its way out, and the group elects at once.
#[test]
fn a_removed_leaders_quiesced_followers_elect_without_a_request() {
    let mut net = Net::new(2, true);
    assert!(net.run_until(400, |n| (1..=2).all(|g| IDS.iter().all(|id| n.hosts[id].is_quiesced(g)))));
    let l = net.leader(1).unwrap();
    net.hosts.get_mut(&l).unwrap().remove_group(1).unwrap();
    net.collect(l);
    net.deliver();
    // Well within an election timeout (10..20 ticks), and no request.
    assert!(
        net.run_until(8, |n| n.leader(1).is_some_and(|new| new != l)),
        "group 1 elected a leader among the remaining replicas: quiesced {:?}",
        IDS.iter().filter(|&&id| id != l).map(|id| net.hosts[id].is_quiesced(1)).collect::<Vec<_>>()
    );
    assert_eq!(net.hosts.values().map(|h| h.stats().peers_lost).sum::<u64>(), 0, "no peer was lost");
}

/// PROTOCOL.md §10, "Liveness per peer": a follower's quiet time is
/// counted from the last word of its leader. A follower that quiesced and
/// then took heartbeats from its leader (quiet news: the leader woke for a
/// read) has its election timer reset by them; when the leader's host then
/// goes silent, the peer-loss wake must step only the ticks since the last
/// heartbeat, not since the follower quiesced, or, with a `peer_timeout`
/// below the election timeout, the follower campaigns (and grants votes)
/// while its leader's lease may still run.
#[test]
fn a_peer_loss_wake_counts_a_followers_quiet_time_from_its_last_heartbeat() {
    let mut net = Net::with_hosts(1, |cfg| cfg.ping_interval(2).peer_timeout(4));
    assert!(net.run_until(400, |n| IDS.iter().all(|id| n.hosts[id].is_quiesced(1))));
    // Long quiet: more than the largest election timeout (20).
    net.run_until(30, |_| false);
    let l = net.leader(1).unwrap();
    // A read wakes the leader: it heartbeats, the followers take the
    // heartbeats as quiet news and stay quiesced.
    net.step(l, 1, Event::Read { id: 1, kind: raft_io::ReadKind::Index }).unwrap();
    let followers: Vec<NodeId> = IDS.into_iter().filter(|&id| id != l).collect();
    assert!(followers.iter().all(|id| net.hosts[id].is_quiesced(1)), "followers stayed quiesced");
    assert!(net.reads.iter().any(|&(at, g, id)| (at, g, id) == (l, 1, 1)), "the read was served");
    // The leader's host goes silent right after its heartbeat.
    net.cut.insert(l);
    let woken = |n: &Net| followers.iter().all(|id| n.hosts[id].stats().woken_by_peer_loss > 0);
    assert!(net.run_until(10, woken), "the followers noticed the silence");
    for id in &followers {
        let node = net.hosts[id].group(1).unwrap();
        assert_eq!(
            node.role(),
            Role::Follower,
            "node {id} campaigns at tick {}, fewer than 10 ticks (the least election timeout) after its leader's last heartbeat",
            net.hosts[id].ticks()
        );
    }
    // And they elect a new leader within an election timeout.
    assert!(net.run_until(25, |n| followers.iter().any(|id| n.hosts[id].group(1).is_some_and(|g| g.is_leader()))));
}
