//! Snapshots: the policy hint, compaction, streamed install in chunks, lost
//! and reordered chunks, restarts, and a follower that must never go
//! backwards.

mod common;

use bytes::Bytes;
use common::{Harness, cmd};
use raft_io::{
    Action, Error, Event, Message, MessageBody, RaftConfig, RaftLog, SnapshotAck, SnapshotChunk, SnapshotMeta,
};

/// Applies every committed command of node `id` into a digest the way an
/// application would, and snapshots it as that digest.
fn app_state(h: &Harness, id: u64) -> Bytes {
    let mut s = Vec::new();
    for (i, _, c) in &h.applied[&id] {
        s.extend_from_slice(&i.to_le_bytes());
        s.extend_from_slice(c);
    }
    Bytes::from(s)
}

fn propose_n(h: &mut Harness, leader: u64, n: usize, tag: &str) {
    for i in 0..n {
        h.propose(leader, &format!("{tag}{i}")).unwrap();
        h.deliver_all();
    }
    h.tick_all(1);
}

#[test]
fn the_policy_hint_fires_every_threshold_and_compaction_keeps_the_boundary_term() {
    let mut h = Harness::new(1, |c| c.snapshot_entries(10));
    h.campaign(1);
    propose_n(&mut h, 1, 25, "c");
    let hints: Vec<u64> = h
        .actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::SnapshotWanted { applied } => Some(*applied),
            _ => None,
        })
        .collect();
    assert_eq!(hints, vec![10, 20], "one hint per 10 applied entries");
    // The application snapshots at 20 (a hint is only a hint).
    let data = app_state(&h, 1);
    h.step(1, Event::Snapshot { index: 20, data }).unwrap();
    let log = h.node(1).log();
    assert_eq!(log.snapshot_meta().index, 20);
    assert_eq!(log.snapshot_meta().term, 1);
    assert_eq!(log.first_index(), 21);
    assert_eq!(log.term(20), Some(1), "the boundary term stays for the consistency check");
    assert_eq!(log.snapshot_meta().membership, *h.node(1).membership());
    // Proposals continue past the compaction.
    propose_n(&mut h, 1, 3, "d");
    assert_eq!(h.node(1).commit_index(), 29);
}

#[test]
fn invalid_snapshot_events_are_refused() {
    let mut h = Harness::new(1, |c| c);
    h.campaign(1);
    propose_n(&mut h, 1, 5, "c");
    let applied = h.node(1).last_applied();
    let too_far = h.step(1, Event::Snapshot { index: applied + 1, data: Bytes::new() });
    assert!(matches!(too_far, Err(Error::InvalidSnapshot { .. })));
    h.step(1, Event::Snapshot { index: 3, data: Bytes::from_static(b"s") }).unwrap();
    let stale = h.step(1, Event::Snapshot { index: 3, data: Bytes::new() });
    assert!(matches!(stale, Err(Error::InvalidSnapshot { current: 3, .. })));
    assert_eq!(h.node(1).log().snapshot_meta().index, 3);
}

/// Leader 1 compacts while node 3 is cut off; returns the harness.
fn lagging_follower(chunk: u64) -> Harness {
    let mut h = Harness::new(3, |c| c.max_message_bytes(chunk).max_inflight(4));
    h.campaign(1);
    h.tick_all(1);
    h.isolate(3);
    propose_n(&mut h, 1, 30, "c");
    // A large application state: 10 chunks' worth.
    let mut state = app_state(&h, 1).to_vec();
    state.resize((chunk * 10 + 7) as usize, 0xAB);
    let index = h.node(1).last_applied();
    h.step(1, Event::Snapshot { index, data: Bytes::from(state) }).unwrap();
    assert_eq!(h.node(1).log().first_index(), index + 1);
    h.take_queue();
    h
}

fn chunks_in(msgs: &[Message]) -> Vec<(u64, usize)> {
    msgs.iter()
        .filter_map(|m| match &m.body {
            MessageBody::Snapshot(c) => Some((c.offset, c.data.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_behind_compaction_gets_the_snapshot_in_windowed_chunks() {
    let chunk = 256;
    let mut h = lagging_follower(chunk);
    h.heal();
    h.clear_actions();
    // Collect what the leader streams, round by round.
    let mut restored = None;
    for _ in 0..40 {
        h.tick(1, 1);
        h.tick(2, 1);
        h.tick(3, 1);
        let msgs = h.take_queue();
        let chunks = chunks_in(&msgs);
        assert!(chunks.len() <= 4, "at most max_inflight chunks per round: {chunks:?}");
        assert!(chunks.iter().all(|&(_, len)| len as u64 <= chunk));
        for m in msgs {
            h.deliver(m);
        }
        h.deliver_all();
        if let Some((_, Action::RestoreSnapshot { meta, data })) =
            h.actions.iter().find(|(id, a)| *id == 3 && matches!(a, Action::RestoreSnapshot { .. }))
        {
            restored = Some((meta.clone(), data.clone()));
            break;
        }
    }
    let (meta, data) = restored.expect("node 3 restored the snapshot");
    // Nothing lost, so each chunk went once, and nothing past the end.
    let sent: Vec<Message> = h.sent_by(1).cloned().collect();
    let streamed = chunks_in(&sent);
    assert_eq!(streamed.len() as u64, (chunk * 10 + 7).div_ceil(chunk), "{streamed:?}");
    assert!(streamed.iter().all(|&(_, len)| len > 0), "an empty chunk past the end: {streamed:?}");
    assert_eq!(data, h.node(1).log().snapshot_data().unwrap(), "assembled byte for byte");
    assert_eq!(meta.index, h.node(1).log().snapshot_meta().index);
    h.tick_all(3);
    assert_eq!(h.node(3).commit_index(), h.node(1).commit_index());
    assert_eq!(h.node(3).last_applied(), h.node(1).last_applied());
    // It continues from the snapshot with normal replication.
    propose_n(&mut h, 1, 2, "after");
    assert_eq!(h.applied[&3].last().unwrap().2, cmd("after1"));
}

#[test]
fn a_lost_chunk_is_resent_not_the_whole_snapshot() {
    let chunk = 256;
    let mut h = lagging_follower(chunk);
    h.heal();
    let mut dropped = None;
    let mut sent_offsets = Vec::new();
    for _ in 0..60 {
        h.tick(1, 1);
        // Deliver everything, intercepting every snapshot chunk.
        while !h.queue.is_empty() {
            for m in h.take_queue() {
                if let MessageBody::Snapshot(c) = &m.body {
                    sent_offsets.push(c.offset);
                    if dropped.is_none() && c.offset == chunk * 3 {
                        dropped = Some(c.offset);
                        continue; // lost
                    }
                }
                h.deliver(m);
            }
        }
        if h.node(3).log().snapshot_meta().index > 0 {
            break;
        }
    }
    assert!(dropped.is_some());
    assert!(h.node(3).log().snapshot_meta().index > 0, "installed despite the loss");
    // Chunk 0 was sent once: the stream resumed from the lost offset.
    assert_eq!(sent_offsets.iter().filter(|&&o| o == 0).count(), 1, "{sent_offsets:?}");
    assert!(sent_offsets.iter().filter(|&&o| o == chunk * 3).count() >= 2);
}

#[test]
fn duplicated_stale_and_out_of_order_chunks_are_ignored() {
    let chunk = 256;
    let mut h = lagging_follower(chunk);
    h.heal();
    let meta = h.node(1).log().snapshot_meta().clone();
    let data = h.node(1).log().snapshot_data().unwrap();
    let total = data.len() as u64;
    let piece = |off: u64| SnapshotChunk {
        meta: meta.clone(),
        total_len: total,
        offset: off,
        data: data.slice(off as usize..((off + chunk).min(total)) as usize),
    };
    let send = |h: &mut Harness, c: SnapshotChunk| -> Vec<Action> {
        h.step(3, Event::Message(Message { from: 1, to: 3, term: 1, body: MessageBody::Snapshot(Box::new(c)) }))
            .unwrap()
    };
    let ack_of = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Send { message: Message { body: MessageBody::SnapshotResponse(ack), .. }, .. } => Some(*ack),
            _ => None,
        })
    };
    // Out of order first: nothing starts, the follower asks for 0.
    assert_eq!(ack_of(&send(&mut h, piece(chunk))).unwrap().received, 0);
    assert_eq!(ack_of(&send(&mut h, piece(0))).unwrap().received, chunk);
    // Duplicate of chunk 0 and a skip ahead are ignored.
    assert_eq!(ack_of(&send(&mut h, piece(0))).unwrap().received, chunk);
    assert_eq!(ack_of(&send(&mut h, piece(chunk * 5))).unwrap().received, chunk);
    let mut off = chunk;
    while off < total {
        send(&mut h, piece(off));
        off += chunk;
    }
    assert_eq!(h.node(3).log().snapshot_meta(), &meta);
    assert_eq!(h.node(3).log().snapshot_data().unwrap(), data);
    // Replaying the whole stream afterwards touches nothing.
    let commit = h.node(3).commit_index();
    let ack = ack_of(&send(&mut h, piece(0))).unwrap();
    assert_eq!((ack.index, ack.received), (meta.index, total));
    assert_eq!(h.node(3).commit_index(), commit);
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_changes_nothing() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    propose_n(&mut h, 1, 10, "c");
    let follower = h.node(2);
    let (commit, last, applied) = (follower.commit_index(), follower.last_index(), follower.last_applied());
    let meta = SnapshotMeta { index: 5, term: 1, membership: h.node(1).membership().clone() };
    let old = SnapshotChunk { meta, total_len: 3, offset: 0, data: Bytes::from_static(b"old") };
    let actions = h
        .step(2, Event::Message(Message { from: 1, to: 2, term: 1, body: MessageBody::Snapshot(Box::new(old)) }))
        .unwrap();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send {
            message: Message { body: MessageBody::SnapshotResponse(SnapshotAck { received: 3, .. }), .. },
            ..
        }
    )));
    assert!(!actions.iter().any(|a| matches!(a, Action::RestoreSnapshot { .. })));
    let f = h.node(2);
    assert_eq!((f.commit_index(), f.last_index(), f.last_applied()), (commit, last, applied));
    assert_eq!(f.log().snapshot_meta().index, 0);
}

#[test]
fn matching_entries_after_the_snapshot_index_are_kept() {
    // Node 3 holds entries 1..=10 of term 1, none known committed. A
    // snapshot at index 5 (term 1) matches its entry 5: entries 6..=10 stay.
    let voters = [1, 2, 3];
    let mut h = Harness::empty();
    h.add(3, RaftConfig::new(3, voters).seed(3), common::log_with_terms(3, &voters, &[1; 10], 1));
    let membership = h.node(3).membership().clone();
    let meta = SnapshotMeta { index: 5, term: 1, membership };
    let c = SnapshotChunk { meta, total_len: 1, offset: 0, data: Bytes::from_static(b"s") };
    h.step(3, Event::Message(Message { from: 1, to: 3, term: 1, body: MessageBody::Snapshot(Box::new(c)) })).unwrap();
    let log = h.node(3).log();
    assert_eq!((log.first_index(), log.last_index()), (6, 10), "matching suffix kept");
    assert_eq!(h.node(3).commit_index(), 5);
    // A snapshot whose boundary entry does not match drops the whole log.
    let mut h = Harness::empty();
    h.add(3, RaftConfig::new(3, voters).seed(3), common::log_with_terms(3, &voters, &[1; 10], 1));
    let meta = SnapshotMeta { index: 5, term: 2, membership: h.node(3).membership().clone() };
    let c = SnapshotChunk { meta, total_len: 1, offset: 0, data: Bytes::from_static(b"s") };
    h.step(3, Event::Message(Message { from: 1, to: 3, term: 2, body: MessageBody::Snapshot(Box::new(c)) })).unwrap();
    let log = h.node(3).log();
    assert_eq!((log.first_index(), log.last_index()), (6, 5));
}

#[test]
fn a_new_leader_restarts_the_transfer() {
    let chunk = 128;
    let mut h = lagging_follower(chunk);
    // Node 2 compacts too, so whoever leads next must stream a snapshot.
    let index = h.node(2).last_applied();
    let data = app_state(&h, 2);
    h.step(2, Event::Snapshot { index, data }).unwrap();
    h.heal();
    // Deliver only the first two chunks from leader 1, then depose it.
    h.tick(1, 2);
    let mut delivered = 0;
    for m in h.take_queue() {
        if matches!(m.body, MessageBody::Snapshot(_)) && m.to == 3 {
            if delivered < 2 {
                h.deliver(m);
                delivered += 1;
            }
        } else {
            h.deliver(m);
        }
    }
    h.take_queue();
    h.step(1, Event::TransferLeadership(2)).unwrap();
    h.deliver_all();
    assert_eq!(h.leader(), Some(2));
    h.tick_all(30);
    assert_eq!(h.node(3).log().snapshot_meta().index, index);
    assert_eq!(h.node(3).commit_index(), h.node(2).commit_index());
}

/// A snapshot stream belongs to the leader term it started in: a leader of
/// a later term sending the same snapshot (same index, term and length,
/// other bytes) cannot continue it past what the earlier leader sent, or
/// the follower would install a mix of both.
#[test]
fn a_later_leader_restarts_a_snapshot_stream_instead_of_resuming_it() {
    let mut h = Harness::new(3, |c| c);
    let meta = SnapshotMeta { index: 5, term: 1, membership: h.node(3).membership().clone() };
    let chunk = |from: u64, term: u64, offset: u64, data: &'static [u8]| Message {
        from,
        to: 3,
        term,
        body: MessageBody::Snapshot(Box::new(SnapshotChunk {
            meta: meta.clone(),
            total_len: 8,
            offset,
            data: Bytes::from_static(data),
        })),
    };
    let received = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Send { message: Message { body: MessageBody::SnapshotResponse(ack), .. }, .. } => {
                Some(ack.received)
            }
            _ => None,
        })
    };
    let restored = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::RestoreSnapshot { data, .. } => Some(data.clone()),
            _ => None,
        })
    };
    // Leader 1 of term 2 sends the first half of its snapshot.
    let actions = h.step(3, Event::Message(chunk(1, 2, 0, b"AAAA"))).unwrap();
    assert_eq!(received(&actions), Some(4));
    // Leader 2 of term 3 sends the second half of its own: the follower
    // asks for the stream from the start.
    let actions = h.step(3, Event::Message(chunk(2, 3, 4, b"BBBB"))).unwrap();
    assert_eq!(received(&actions), Some(0), "a stream of term 2 resumed by the leader of term 3");
    assert_eq!(restored(&actions), None);
    assert_eq!(h.node(3).log().snapshot_meta().index, 0);
    // From the start, it takes leader 2's snapshot whole.
    h.step(3, Event::Message(chunk(2, 3, 0, b"BBBB"))).unwrap();
    let actions = h.step(3, Event::Message(chunk(2, 3, 4, b"BBBB"))).unwrap();
    assert_eq!(received(&actions), Some(8));
    assert_eq!(restored(&actions).as_deref(), Some(&b"BBBBBBBB"[..]));
    assert_eq!(h.node(3).log().snapshot_data().unwrap(), Bytes::from_static(b"BBBBBBBB"));
}

#[test]
fn a_restarted_node_recovers_from_snapshot_plus_suffix() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    propose_n(&mut h, 1, 10, "c");
    let data = app_state(&h, 2);
    let index = h.node(2).last_applied() - 3;
    h.step(2, Event::Snapshot { index, data: data.clone() }).unwrap();
    h.crash(2);
    h.restart(2);
    let actions = h.step(2, Event::Tick).unwrap();
    match &actions[0] {
        Action::RestoreSnapshot { meta, data: d } => {
            assert_eq!(meta.index, index);
            assert_eq!(d, &data);
            assert_eq!(meta.membership.voters(), &[1, 2, 3]);
        }
        other => panic!("expected the restore first, got {other:?}"),
    }
    let applies: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(applies, ((index + 1)..=h.node(2).commit_index()).collect::<Vec<_>>(), "then the suffix");
    assert_eq!(h.node(2).membership().voters(), &[1, 2, 3]);
}

/// A follower refuses a snapshot larger than its `max_snapshot_bytes`; the
/// leader retries on a later heartbeat round (never in a tight loop), so a
/// follower restarted with a higher limit gets it.
#[test]
fn a_stream_larger_than_the_follower_accepts_is_refused_and_retried_later() {
    let config =
        |id: u64, limit: u64| RaftConfig::new(id, [1, 2, 3]).seed(id).max_snapshot_bytes(limit).max_message_bytes(512);
    let mut h = Harness::empty();
    for id in 1..=3 {
        h.add(id, config(id, if id == 2 { 1_000 } else { 1 << 30 }), raft_io::MemoryLog::new());
    }
    h.campaign(1);
    h.isolate(2);
    propose_n(&mut h, 1, 3, "c");
    let index = h.node(1).last_applied();
    assert!(index > h.node(2).last_index(), "node 2 needs the snapshot");
    h.step(1, Event::Snapshot { index, data: Bytes::from(vec![1u8; 5_000]) }).unwrap();
    h.heal();
    h.take_queue();
    // Stream starts (chunk 0 sent to 2) and refusals, tick by tick.
    let starts = |h: &Harness| {
        h.actions
            .iter()
            .filter(|(id, a)| {
                *id == 1
                    && matches!(a, Action::Send { to: 2, message: Message { body: MessageBody::Snapshot(c), .. } }
                        if c.offset == 0)
            })
            .count()
    };
    let refusals = |h: &Harness| {
        h.actions
            .iter()
            .filter(|(id, a)| {
                *id == 2
                    && matches!(a, Action::Send { message: Message { body: MessageBody::SnapshotResponse(ack), .. }, .. }
                        if ack.rejected && ack.index == index)
            })
            .count()
    };
    // Every chunk sent to 2 in a tick.
    let chunks = |h: &Harness| {
        h.actions
            .iter()
            .filter(|(id, a)| {
                *id == 1 && matches!(a, Action::Send { to: 2, message: Message { body: MessageBody::Snapshot(_), .. } })
            })
            .count()
    };
    let mut started_at = Vec::new();
    let mut refused = 0;
    for tick in 0..20 {
        h.clear_actions();
        h.tick_all(1);
        assert!(starts(&h) <= 1, "tick {tick}: the stream restarted {} times in one tick", starts(&h));
        if starts(&h) == 1 {
            started_at.push(tick);
            if started_at.len() > 1 {
                // Refused before: one chunk, not the window (ten chunks here).
                assert_eq!(chunks(&h), 1, "tick {tick}: a retry sent a whole window to a follower that refuses it");
            }
        }
        refused += refusals(&h);
    }
    assert!(started_at.len() >= 3, "the leader retried after each refusal: started at ticks {started_at:?}");
    assert!(refused >= started_at.len(), "every attempt was refused ({refused} refusals)");
    assert_eq!(h.node(2).log().snapshot_meta().index, 0, "refused: nothing half-installed");
    assert!(h.node(1).is_leader());

    // Node 2 restarts with a limit that fits the snapshot: the next retry
    // installs it.
    let log = h.nodes.remove(&2).unwrap().into_log().durable();
    h.add(2, config(2, 1 << 30), log);
    h.take_queue();
    h.clear_actions();
    h.tick_all(20);
    assert_eq!(h.node(2).log().snapshot_meta().index, index, "installed on a retry");
    let restored = h.actions.iter().find_map(|(id, a)| match a {
        Action::RestoreSnapshot { meta, data } if *id == 2 => Some((meta.index, data.clone())),
        _ => None,
    });
    assert_eq!(restored, Some((index, h.node(1).log().snapshot_data().unwrap())));
    assert_eq!(h.node(2).commit_index(), h.node(1).commit_index());
}
