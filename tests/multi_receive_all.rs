//! `MultiNode::receive_all` (PROTOCOL.md §10, "Batches received"): a
//! batch of envelopes, as a driver's turn reads it, steps each group once
//! with all of its messages in the order they came; a quiescence notice is
//! handled after its group's messages received before it and before those
//! after it, and other groups' messages do not wait for it; drops are
//! counted per message as `receive` counts them.

use raft_io::multi::{Envelope, EnvelopeBody, GroupId, HostAction, HostConfig, MultiNode};
use raft_io::{Event, MemoryLog, MessageBody, NodeId, RaftConfig};

const IDS: [NodeId; 3] = [1, 2, 3];

/// Three hosts of `groups` groups; node 1 leads every group, everything
/// applied everywhere, and the hosts' outboxes empty.
fn cluster(groups: u64) -> Vec<MultiNode<MemoryLog>> {
    let mut hosts: Vec<MultiNode<MemoryLog>> = IDS
        .iter()
        .map(|&id| {
            let cfg = HostConfig::new(id).ping_interval(3).peer_timeout(10).quiesce_after(6);
            let mut host = MultiNode::new(cfg);
            for g in 1..=groups {
                let rc = RaftConfig::new(id, IDS).election_timeout(10, 20).heartbeat_interval(3).seed(g * 31 + id);
                host.create_group(g, rc, MemoryLog::new()).unwrap();
            }
            host
        })
        .collect();
    for g in 1..=groups {
        hosts[0].step(g, Event::Campaign).unwrap();
    }
    settle(&mut hosts);
    for g in 1..=groups {
        assert!(hosts[0].group(g).unwrap().is_leader(), "node 1 leads group {g}");
    }
    hosts
}

/// The envelopes host `i` wants sent (its other actions dropped).
fn sent(hosts: &mut [MultiNode<MemoryLog>], i: usize) -> Vec<Envelope> {
    hosts[i]
        .drain_actions()
        .filter_map(|a| match a {
            HostAction::Send(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Delivers everything, one envelope at a time, until nothing is sent.
fn settle(hosts: &mut [MultiNode<MemoryLog>]) {
    loop {
        let out: Vec<Envelope> = (0..hosts.len()).flat_map(|i| sent(hosts, i)).collect();
        if out.is_empty() {
            return;
        }
        for e in out {
            let to = (e.to - 1) as usize;
            hosts[to].receive(e);
        }
    }
}

/// Delivers node 1's appends to the followers and their answers back,
/// then drops what node 1 sends next: its groups commit, and the followers
/// have not heard the commit index yet.
fn commit_unheard(hosts: &mut [MultiNode<MemoryLog>]) {
    for e in sent(hosts, 0) {
        let to = (e.to - 1) as usize;
        hosts[to].receive(e);
    }
    for i in [1, 2] {
        for e in sent(hosts, i) {
            hosts[0].receive(e);
        }
    }
    let _ = sent(hosts, 0);
}

fn is_group_message(e: &Envelope) -> bool {
    matches!(e.body, EnvelopeBody::Raft { .. })
}

/// A write in groups 1 and 2 on the leader, node 1; the appends reach the
/// followers; their answers, interleaved as one batch would bring them:
/// g1 from 2, g2 from 2, g1 from 3, g2 from 3.
fn answers_of_groups_1_and_2(hosts: &mut [MultiNode<MemoryLog>]) -> Vec<Envelope> {
    for g in [1, 2] {
        hosts[0].step(g, Event::Propose(format!("x{g}").into())).unwrap();
    }
    for e in sent(hosts, 0) {
        let to = (e.to - 1) as usize;
        hosts[to].receive(e);
    }
    let mut answers: Vec<Envelope> = sent(hosts, 1).into_iter().chain(sent(hosts, 2)).collect();
    answers.retain(is_group_message);
    assert_eq!(answers.len(), 4, "{answers:?}");
    answers
}

#[test]
fn each_groups_messages_in_a_batch_are_one_step() {
    let mut hosts = cluster(2);
    let mut answers = answers_of_groups_1_and_2(&mut hosts);
    let mut sequential = answers.clone();
    let before = hosts[0].stats().steps;
    hosts[0].receive_all(&mut answers);
    assert!(answers.is_empty(), "drained");
    assert_eq!(hosts[0].stats().steps - before, 2, "one step per group, not per message");
    for g in [1, 2] {
        assert_eq!(hosts[0].group(g).unwrap().commit_index(), 2, "group {g} committed its entry");
    }
    // The same answers one at a time: a step each.
    let mut again = cluster(2);
    for g in [1, 2] {
        again[0].step(g, Event::Propose(format!("x{g}").into())).unwrap();
    }
    let _ = sent(&mut again, 0);
    let before = again[0].stats().steps;
    for e in sequential.drain(..) {
        again[0].receive(e);
    }
    assert_eq!(again[0].stats().steps - before, 4);
}

#[test]
fn a_groups_messages_keep_their_order_in_a_large_mixed_batch() {
    // 40 groups, three appends each (pipelined: each depends on the one
    // before), arriving at a follower interleaved across groups.
    const GROUPS: u64 = 40;
    let mut hosts = cluster(GROUPS);
    let mut per_group: Vec<Vec<Envelope>> = vec![Vec::new(); GROUPS as usize];
    for round in 0..3 {
        for g in 1..=GROUPS {
            hosts[0].step(g, Event::Propose(format!("g{g}-{round}").into())).unwrap();
        }
        for e in sent(&mut hosts, 0) {
            if let EnvelopeBody::Raft { group, message } = &e.body {
                if e.to == 2 && matches!(message.body, MessageBody::Append(_)) {
                    per_group[(group - 1) as usize].push(e.clone());
                }
            }
        }
    }
    let mut batch = Vec::new();
    for round in 0..3 {
        // Groups in a different order each round.
        let mut order: Vec<usize> = (0..GROUPS as usize).collect();
        order.rotate_left(round * 7);
        if round == 1 {
            order.reverse();
        }
        for i in order {
            assert_eq!(per_group[i].len(), 3, "three appends for group {}", i + 1);
            batch.push(per_group[i][round].clone());
        }
    }
    let last_before: Vec<u64> = (1..=GROUPS).map(|g| hosts[1].group(g).unwrap().last_index()).collect();
    let before = hosts[1].stats().steps;
    hosts[1].receive_all(&mut batch);
    assert_eq!(hosts[1].stats().steps - before, GROUPS, "one step per group");
    for g in 1..=GROUPS {
        let last = hosts[1].group(g).unwrap().last_index();
        assert_eq!(last, last_before[(g - 1) as usize] + 3, "group {g}: all three appends taken, in order");
    }
}

#[test]
fn a_quiescence_notice_is_handled_after_the_messages_before_it() {
    let mut hosts = cluster(1);
    let group: GroupId = 1;
    // Node 2 takes an entry; the leader commits it once both answer, and
    // tells node 2 the commit index on a later tick.
    hosts[0].step(group, Event::Propose("x".into())).unwrap();
    commit_unheard(&mut hosts);
    let leader = hosts[0].group(group).unwrap();
    let (term, commit) = (leader.term(), leader.commit_index());
    assert!(hosts[1].group(group).unwrap().commit_index() < commit, "node 2 has not heard the commit yet");
    let mut tells = None;
    for _ in 0..10 {
        hosts[0].tick().unwrap();
        tells = sent(&mut hosts, 0).into_iter().find(|e| e.to == 2 && is_group_message(e));
        if tells.is_some() {
            break;
        }
    }
    let tells = tells.expect("the leader tells node 2 the commit index");
    let notice = Envelope { from: 1, to: 2, body: EnvelopeBody::Quiesce { group, term, commit } };
    // The message, then the notice, in one batch: the notice must find node
    // 2 holding the commit index it names, or it is ignored.
    let mut batch = vec![tells, notice];
    hosts[1].receive_all(&mut batch);
    assert_eq!(hosts[1].group(group).unwrap().commit_index(), commit);
    assert!(hosts[1].is_quiesced(group), "the notice was handled after the message before it");
}

#[test]
fn a_quiescence_notice_is_not_held_behind_the_messages_after_it() {
    let mut hosts = cluster(1);
    let group: GroupId = 1;
    hosts[0].step(group, Event::Propose("x".into())).unwrap();
    settle(&mut hosts);
    // Ticks until node 2 holds the leader's commit index too (before the
    // group is idle long enough to quiesce).
    for _ in 0..5 {
        if hosts[1].group(group).unwrap().commit_index() == hosts[0].group(group).unwrap().commit_index() {
            break;
        }
        hosts[0].tick().unwrap();
        settle(&mut hosts);
    }
    let leader = hosts[0].group(group).unwrap();
    let (term, commit) = (leader.term(), leader.commit_index());
    assert_eq!(hosts[1].group(group).unwrap().commit_index(), commit);
    assert!(!hosts[1].is_quiesced(group));
    // A notice the follower agrees with, then the append of a new entry.
    hosts[0].step(group, Event::Propose("y".into())).unwrap();
    let append =
        sent(&mut hosts, 0).into_iter().find(|e| e.to == 2 && is_group_message(e)).expect("the append of y to node 2");
    let notice = Envelope { from: 1, to: 2, body: EnvelopeBody::Quiesce { group, term, commit } };
    let (quiesces, last) = (hosts[1].stats().quiesces, hosts[1].group(group).unwrap().last_index());
    hosts[1].receive_all(&mut vec![notice, append]);
    // The notice came first: it quiesced the group, and the append woke it.
    assert_eq!(hosts[1].stats().quiesces, quiesces + 1, "the notice was handled before the message after it");
    assert!(!hosts[1].is_quiesced(group), "woken by the append");
    assert_eq!(hosts[1].group(group).unwrap().last_index(), last + 1);
}

#[test]
fn a_notice_steps_only_its_own_groups_messages_first() {
    // Answers of groups 1 and 2, a notice for group 3 between them: still
    // one step per group.
    let mut hosts = cluster(3);
    let mut answers = answers_of_groups_1_and_2(&mut hosts);
    let notice = Envelope { from: 2, to: 1, body: EnvelopeBody::Quiesce { group: 3, term: 1, commit: 1 } };
    answers.insert(2, notice);
    let before = hosts[0].stats().steps;
    hosts[0].receive_all(&mut answers);
    assert_eq!(hosts[0].stats().steps - before, 2);
}

#[test]
fn drops_in_a_batch_are_counted_per_message() {
    let mut hosts = cluster(1);
    hosts[0].step(1, Event::Propose("x".into())).unwrap();
    let out = sent(&mut hosts, 0);
    let message = out
        .iter()
        .find_map(|e| match &e.body {
            EnvelopeBody::Raft { message, .. } if e.to == 2 => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    let stray = |group: GroupId, to: NodeId| Envelope {
        from: 1,
        to,
        body: EnvelopeBody::Raft { group, message: message.clone() },
    };
    let mut batch = vec![stray(9, 2), stray(9, 2), stray(9, 2), stray(1, 3), stray(1, 2)];
    let before = hosts[1].stats();
    hosts[1].receive_all(&mut batch);
    let after = hosts[1].stats();
    assert_eq!(after.unknown_group_dropped - before.unknown_group_dropped, 3);
    assert_eq!(after.misaddressed_dropped - before.misaddressed_dropped, 1);
    assert_eq!(after.steps - before.steps, 1, "the one good message is stepped");
}

#[test]
fn notices_between_many_groups_messages_each_take_their_place() {
    // Six groups; node 2 has each group's entry but not its commit index.
    // The batch interleaves, for every group, the message that tells node
    // 2 the commit index and a notice naming it: the notice after the
    // message for groups 1-3 (so it quiesces them), before it for groups
    // 4-6 (so it finds the commit index unknown and is ignored).
    const GROUPS: u64 = 6;
    let mut hosts = cluster(GROUPS);
    for g in 1..=GROUPS {
        hosts[0].step(g, Event::Propose(format!("x{g}").into())).unwrap();
    }
    commit_unheard(&mut hosts);
    let mut tells: Vec<Option<Envelope>> = vec![None; GROUPS as usize];
    for _ in 0..10 {
        hosts[0].tick().unwrap();
        for e in sent(&mut hosts, 0) {
            if let EnvelopeBody::Raft { group, .. } = e.body {
                if e.to == 2 && tells[(group - 1) as usize].is_none() {
                    tells[(group - 1) as usize] = Some(e);
                }
            }
        }
        if tells.iter().all(Option::is_some) {
            break;
        }
    }
    let notice = |g: GroupId| {
        let leader = hosts[0].group(g).unwrap();
        assert!(hosts[1].group(g).unwrap().commit_index() < leader.commit_index(), "group {g}: commit not heard");
        Envelope {
            from: 1,
            to: 2,
            body: EnvelopeBody::Quiesce { group: g, term: leader.term(), commit: leader.commit_index() },
        }
    };
    let tell = |g: GroupId| tells[(g - 1) as usize].clone().expect("the leader tells node 2 the commit index");
    let mut batch = vec![
        tell(1),
        notice(4),
        tell(2),
        notice(1),
        tell(4),
        notice(2),
        tell(3),
        notice(5),
        tell(5),
        notice(3),
        notice(6),
        tell(6),
    ];
    let before = hosts[1].stats().steps;
    hosts[1].receive_all(&mut batch);
    assert_eq!(hosts[1].stats().steps - before, GROUPS, "one step per group's message");
    for g in 1..=GROUPS {
        let commit = hosts[0].group(g).unwrap().commit_index();
        assert_eq!(hosts[1].group(g).unwrap().commit_index(), commit, "group {g} heard its commit index");
        assert_eq!(hosts[1].is_quiesced(g), g <= 3, "group {g}: the notice took its place among the messages");
    }
}
