//! Regressions found by review, each reproduced as a trace before the fix:
//!
//! * a lease read after a leadership transfer that timed out (the target
//!   may still win at any time: lease reads stay off for the term);
//! * a late answer to a forwarded read releasing a newer read that reused
//!   the caller's id (forwarded reads carry their own wire id and term);
//! * a snapshot stream that never resumed after the follower restarted
//!   (the leader resumes from what the follower reports holding);
//! * a rejection at `u64::MAX` overflowing;
//! * a higher-term answer to a stale message cutting a follower's lease
//!   promise short (the lease counts from leader contact, not from knowing
//!   a leader);
//! * configuration values that passed validation and overflowed later;
//! * a snapshot replacing a configuration entry at the same index without
//!   reporting the membership change;
//! * a stale-term notice, answered to a leader's message from an older
//!   term and read by that node leading again, taken for a joining node's
//!   refusal (a whole snapshot streamed to an up-to-date follower).

mod common;

use bytes::Bytes;
use common::{Harness, log_with_entries};
use raft_io::{Action, AppendResponse, Event, Message, MessageBody, ProgressState, RaftLog, ReadKind, Role};

fn elected(configure: impl Fn(raft_io::RaftConfig) -> raft_io::RaftConfig) -> Harness {
    let mut h = Harness::new(3, configure);
    h.elect(1);
    h.tick_all(1);
    h.clear_actions();
    h
}

fn ready(h: &Harness, node: u64) -> Vec<(u64, u64)> {
    h.actions
        .iter()
        .filter_map(|(n, a)| match a {
            Action::ReadReady { id, index } if *n == node => Some((*id, *index)),
            _ => None,
        })
        .collect()
}

/// F1: a transfer that timed out re-enables the lease, but the TimeoutNow
/// (or the target's transfer-flagged Vote requests) may still be in
/// flight. Voters ignore stickiness for transfer votes, so the target wins
/// a new term while the old leader still serves lease reads: stale read.
#[test]
fn lease_read_after_timed_out_transfer_is_stale() {
    let mut h = elected(|c| c.lease_reads(true).lease_drift_ticks(2));
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(2);
    let term1 = h.node(1).term();

    // Leader 1 starts a transfer to 2 (up to date: TimeoutNow goes at once).
    h.step(1, Event::TransferLeadership(2)).unwrap();
    let held: Vec<Message> = h.take_queue();
    let timeout_now = held.iter().find(|m| matches!(m.body, MessageBody::TimeoutNow)).cloned().expect("TimeoutNow");
    // The TimeoutNow is delayed in the network past the transfer timeout.
    h.tick_all(12);
    assert!(h.actions.iter().any(|(n, a)| *n == 1 && matches!(a, Action::TransferEnded { .. })));
    assert!(h.node(1).is_leader());

    // Node 1 no longer hears anything from 2 or 3 (messages delayed).
    h.cut(1, 2);
    h.cut(1, 3);
    // The old TimeoutNow finally arrives: 2 campaigns with the transfer
    // flag, 3 ignores its lease for it.
    h.deliver(timeout_now);
    h.deliver_all();
    assert!(h.node(2).is_leader(), "2 won term {}", h.node(2).term());
    assert!(h.node(2).term() > term1);
    // The new leader commits a write; the client is told it is done.
    h.propose(2, "y").unwrap();
    h.deliver_all();
    let y_index = h.node(2).last_index();
    assert!(h.node(2).commit_index() >= y_index, "y committed by {{2,3}}");

    // The old leader, still in its lease, serves a read that misses y.
    h.clear_actions();
    h.step(1, Event::Read { id: 77, kind: ReadKind::Lease }).unwrap();
    let stale: Vec<_> = ready(&h, 1).into_iter().filter(|&(_, idx)| idx < y_index).collect();
    assert!(stale.is_empty(), "node 1 (term {term1}) served a lease read at {stale:?} after y committed at {y_index}");
}

/// F2: a follower reusing a read id (allowed: ids are unique only among
/// pending reads) accepts the leader's late answer to the earlier,
/// timed-out read, and serves the new read at an old read index.
#[test]
fn late_read_index_response_releases_a_reused_id_at_a_stale_index() {
    let mut h = elected(|c| c.read_timeout_ticks(5));
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(2);

    // Follower 2 forwards read 7; the leader answers, but the answer is
    // delayed.
    h.step(2, Event::Read { id: 7, kind: ReadKind::Index }).unwrap();
    let mut late = None;
    for _ in 0..100 {
        let Some(m) = h.queue.pop_front() else { break };
        if matches!(m.body, MessageBody::ReadIndexResponse(_)) {
            late = Some(m);
        } else {
            h.deliver(m);
        }
    }
    let late = late.expect("leader answered the forwarded read");
    // The follower gives up on read 7.
    h.tick_all(6);
    assert!(h.actions.iter().any(|(n, a)| *n == 2 && matches!(a, Action::ReadFailed { id: 7, .. })));

    // A write commits on {1, 3} while 2 lags behind.
    h.cut(1, 2);
    h.propose(1, "y").unwrap();
    h.deliver_all();
    let y_index = h.node(1).last_index();
    assert!(h.node(1).commit_index() >= y_index);
    assert!(h.node(2).last_applied() < y_index);

    // The client retries its read with the same id; the old answer arrives.
    h.clear_actions();
    h.step(2, Event::Read { id: 7, kind: ReadKind::Index }).unwrap();
    h.deliver(late);
    let stale: Vec<_> = ready(&h, 2).into_iter().filter(|&(_, idx)| idx < y_index).collect();
    assert!(stale.is_empty(), "read 7 issued after y committed at {y_index} was served at {stale:?}");
}

/// F3: a follower that restarts in the middle of a snapshot stream answers
/// `received = 0`, but the leader only ever rewinds to the highest offset
/// it saw acknowledged: the follower never catches up.
#[test]
fn snapshot_stream_never_recovers_after_the_follower_restarts() {
    let mut h = elected(|c| c.max_message_bytes(64).max_inflight(2));
    h.isolate(3);
    for i in 0..5 {
        h.propose(1, &format!("c{i}")).unwrap();
        h.deliver_all();
    }
    h.tick_all(2);
    let applied = h.node(1).last_applied();
    h.step(1, Event::Snapshot { index: applied, data: Bytes::from(vec![7u8; 1000]) }).unwrap();
    h.heal();
    // Let the stream start and a few chunks be acknowledged: deliver one
    // message at a time and stop once 3 acknowledged 128 bytes.
    let mut acked = 0;
    'outer: for _ in 0..50 {
        for id in [1, 2, 3] {
            h.step(id, Event::Tick).unwrap();
        }
        while let Some(m) = h.deliver_one() {
            // Stop once the leader has processed an acknowledgement of >= 128.
            if let MessageBody::SnapshotResponse(ack) = &m.body {
                acked = ack.received;
                if acked >= 128 {
                    break 'outer;
                }
            }
        }
    }
    assert!((128..1000).contains(&acked), "stream in progress ({acked})");
    // Node 3 restarts mid-stream (the partial stream is not durable).
    h.crash(3);
    h.take_queue();
    h.restart(3);
    h.tick_all(300);
    assert_eq!(
        h.node(3).log().snapshot_meta().index,
        applied,
        "node 3 never received the snapshot (commit {}, leader {:?})",
        h.node(3).commit_index(),
        h.node(1).status().peers
    );
}

/// F4: a corrupt (but decodable) rejection with index u64::MAX panics the
/// leader in a debug build (`rejected + 1` in Progress::reject).
#[test]
fn rejection_at_u64_max_does_not_panic() {
    let mut h = elected(|c| c);
    let term = h.node(1).term();
    let bad = || Message {
        from: 2,
        to: 1,
        term,
        body: MessageBody::AppendResponse(AppendResponse {
            success: false,
            index: u64::MAX,
            hint_term: 0,
            hint_index: 0,
        }),
    };
    // First puts peer 2 into Probe, second hits `rejected + 1`.
    h.step(1, Event::Message(bad())).unwrap();
    h.step(1, Event::Message(bad())).unwrap();
    assert_eq!(h.node(1).role(), Role::Leader);
}

/// F5: a follower inside its lease (it heard from the leader within
/// election_timeout_min) loses it the moment any higher-term non-Vote
/// message arrives (`become_follower(term, None)` clears `leader`, and
/// `in_lease` needs `leader.is_some()`). Here that message is the answer to
/// a stale heartbeat; the follower then votes at once for a new leader
/// while the old leader's lease still holds.
#[test]
fn higher_term_reply_to_a_stale_message_cuts_a_followers_lease_short() {
    let mut h = Harness::new(3, |c| c.lease_reads(true).lease_drift_ticks(2).pre_vote(false));
    h.tick_all(11); // past the start-up vote cooldown
    h.elect(2);
    h.deliver_all();
    // A heartbeat from 2 (leader of an old term) to 3, delayed in the network.
    h.step(2, Event::Tick).unwrap();
    h.step(2, Event::Tick).unwrap();
    let stale = h.queue.iter().find(|m| m.to == 3 && matches!(m.body, MessageBody::Heartbeat(_))).cloned().unwrap();
    h.deliver_all();
    // Leadership moves to 1 (transfer), which then holds a lease.
    h.step(2, Event::TransferLeadership(1)).unwrap();
    h.deliver_all();
    assert!(h.node(1).is_leader());
    h.propose(1, "x").unwrap();
    h.deliver_all();
    h.tick_all(3);
    let old_term = h.node(1).term();
    // 3 loses contact with 1 and campaigns (pre-vote off); 2 ignores its
    // votes while it follows 1.
    h.cut(1, 3);
    for _ in 0..25 {
        h.tick_all(1);
        if h.node(3).term() > old_term {
            break;
        }
    }
    assert!(h.node(3).term() > old_term);
    assert_eq!(h.node(2).leader(), Some(1));
    // From here on 1 hears nothing (its messages are delayed).
    h.cut(1, 2);
    h.clear_actions();
    h.step(1, Event::Read { id: 1, kind: ReadKind::Lease }).unwrap();
    assert!(!ready(&h, 1).is_empty(), "1 holds its lease");
    // The stale heartbeat reaches 3; its answer (higher term) reaches 2.
    h.deliver(stale);
    h.deliver_all();
    // 2 may drop the leader it knew, but it heard from 1 within the
    // minimum election timeout: its vote stays promised to 1's lease.
    h.campaign(3);
    h.deliver_all();
    assert!(!h.node(3).is_leader(), "2 voted for 3 inside 1's lease");
    h.clear_actions();
    h.step(1, Event::Read { id: 2, kind: ReadKind::Lease }).unwrap();
    assert!(h.node(1).is_leader());
}

/// F7: configuration values that pass `validate()` panic later. A read
/// timeout of `u64::MAX` is valid (`validate` only refuses 0): it means a
/// read never times out. The deadline saturates instead of overflowing, a
/// read is served as usual, and one that cannot be confirmed waits (however
/// long the node ticks) until it can.
#[test]
fn huge_read_timeout_passes_validation_then_overflows() {
    let outcomes = |actions: &[Action]| -> Vec<Action> {
        actions.iter().filter(|a| matches!(a, Action::ReadReady { .. } | Action::ReadFailed { .. })).cloned().collect()
    };
    let cfg = raft_io::RaftConfig::single(1).read_timeout_ticks(u64::MAX);
    cfg.validate().unwrap();
    let mut n = raft_io::RaftNode::new(cfg).unwrap();
    for _ in 0..30 {
        n.step(Event::Tick).unwrap().for_each(drop);
    }
    assert!(n.is_leader());
    let actions: Vec<Action> = n.step(Event::Read { id: 1, kind: ReadKind::Index }).unwrap().collect();
    assert_eq!(outcomes(&actions), [Action::ReadReady { id: 1, index: n.commit_index() }]);
    for _ in 0..1_000 {
        let actions: Vec<Action> = n.step(Event::Tick).unwrap().collect();
        assert_eq!(outcomes(&actions), [], "nothing more for read 1");
    }

    // A leader cut off from its followers (check-quorum off, so it stays
    // leader) cannot confirm a read: it waits, twenty default timeouts and
    // more, without failing; once the partition heals it is served.
    let mut h = elected(|c| c.read_timeout_ticks(u64::MAX).check_quorum(false));
    h.isolate(1);
    let index = h.node(1).commit_index();
    h.step(1, Event::Read { id: 7, kind: ReadKind::Index }).unwrap();
    h.tick(1, 1_000);
    assert!(h.node(1).is_leader());
    let ended = |h: &Harness| -> Vec<Action> {
        let node1: Vec<Action> = h.actions.iter().filter(|(n, _)| *n == 1).map(|(_, a)| a.clone()).collect();
        outcomes(&node1)
    };
    assert_eq!(ended(&h), [], "read 7 ended while it could not be confirmed");
    h.heal();
    h.tick_all(5);
    assert_eq!(ended(&h), [Action::ReadReady { id: 7, index }]);
}

#[test]
fn huge_max_inflight_is_refused_by_validation() {
    let cfg = raft_io::RaftConfig::new(1, [1, 2]).max_inflight(usize::MAX);
    assert!(matches!(cfg.validate(), Err(raft_io::Error::InvalidConfig { field: "max_inflight", .. })));
}

#[test]
fn huge_lease_drift_overflows_in_validate() {
    let cfg = raft_io::RaftConfig::new(1, [1, 2]).lease_reads(true).lease_drift_ticks(u64::MAX);
    assert!(cfg.validate().is_err());
}

/// F6: installing a snapshot whose index equals the index of the
/// (uncommitted, conflicting) configuration entry the follower held
/// changes the configuration in effect without `MembershipChanged`
/// (on_config_maybe_changed compares indexes only).
#[test]
fn snapshot_at_the_index_of_a_conflicting_config_changes_membership_silently() {
    use raft_io::{Entry, Membership, RaftConfig};
    let voters = [1u64, 2, 3];
    let base = Membership::new(voters, []).unwrap();
    let with_learner = Membership::new(voters, [4]).unwrap();
    let mut h = Harness::empty();
    for id in [1, 2] {
        let log =
            log_with_entries(id, &voters, vec![Entry::normal(1, 1, "a".into()), Entry::normal(2, 2, "b".into())], 2);
        h.add(id, RaftConfig::new(id, voters).seed(id), log);
    }
    // Node 3 holds an uncommitted configuration at index 2 (term 1).
    let log3 =
        log_with_entries(3, &voters, vec![Entry::normal(1, 1, "a".into()), Entry::config(1, 2, &with_learner)], 1);
    h.add(3, RaftConfig::new(3, voters).seed(3), log3);
    assert_eq!(h.node(3).membership(), &with_learner);

    h.isolate(3);
    h.campaign(1);
    h.deliver_all();
    assert!(h.node(1).is_leader());
    h.tick_all(2);
    assert!(h.node(1).last_applied() >= 3);
    h.step(1, Event::Snapshot { index: 2, data: Bytes::from_static(b"state") }).unwrap();
    h.heal();
    h.clear_actions();
    h.tick_all(30);
    assert_eq!(h.node(3).log().snapshot_meta().index, 2, "3 installed the snapshot");
    assert_eq!(h.node(3).membership(), &base, "configuration in effect reverted");
    let reported: Vec<_> = h
        .actions
        .iter()
        .filter_map(|(n, a)| match a {
            Action::MembershipChanged { membership, .. } if *n == 3 => Some(membership.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reported.last(), Some(&base), "the embedder was never told: {reported:?}");
}

/// A leader's delayed message from one of its earlier terms is answered by
/// the follower with the stale-term notice (PROTOCOL.md §2) in the
/// follower's term. When the same node leads that later term, the notice
/// must not read as a joining node's "I know no configuration" (§4.2,
/// §7.1): it did (it was `AppendResponse::default()`, `hint_index == 0`),
/// and the leader streamed its whole snapshot to a follower that held the
/// entire log.
#[test]
fn a_stale_term_notice_does_not_start_a_snapshot_to_an_up_to_date_follower() {
    let mut h = Harness::new(3, |c| c);
    h.campaign(1);
    for i in 0..5 {
        h.propose(1, &format!("c{i}")).unwrap();
    }
    h.deliver_all();
    h.tick_all(2);
    let commit = h.node(1).commit_index();
    assert!(commit >= 6);
    // The leader compacts: a snapshot (4 MiB here, four 1 MiB chunks) is now what it would stream.
    h.step(1, Event::Snapshot { index: commit, data: Bytes::from(vec![7u8; 4 << 20]) }).unwrap();
    h.deliver_all();
    // A heartbeat of term 1 from node 1 to node 2 is delayed in the network.
    let mut held = None;
    for _ in 0..10 {
        h.tick(1, 1);
        let q = h.take_queue();
        for m in q {
            if held.is_none() && (m.from, m.to) == (1, 2) && matches!(m.body, MessageBody::Heartbeat(_)) {
                held = Some(m);
            } else {
                h.queue.push_back(m);
            }
        }
        h.deliver_all();
        if held.is_some() {
            break;
        }
    }
    let held = held.expect("a heartbeat from 1 to 2");
    assert_eq!(held.term, 1);
    // Leadership moves to node 2 (term 2) and back to node 1 (term 3).
    h.step(1, Event::TransferLeadership(2)).unwrap();
    h.deliver_all();
    assert_eq!(h.leader(), Some(2));
    h.tick_all(2);
    h.step(2, Event::TransferLeadership(1)).unwrap();
    // Deliver one by one until node 1 leads term 3; its appends stay queued.
    while !h.node(1).is_leader() {
        h.deliver_one().expect("node 1 wins the transfer");
    }
    assert_eq!(h.node(1).term(), 3);
    assert_eq!(h.node(2).term(), 3);
    // The delayed term-1 heartbeat now reaches node 2, which answers with the
    // stale-leader notice in term 3, and that answer reaches node 1 first.
    h.step(2, Event::Message(held)).unwrap();
    let notice = h
        .queue
        .iter()
        .rposition(|m| (m.from, m.to) == (2, 1) && matches!(m.body, MessageBody::AppendResponse(_)))
        .expect("the stale-leader notice");
    let notice = h.queue.remove(notice).unwrap();
    assert_eq!(notice.term, 3);
    h.clear_actions();
    h.step(1, Event::Message(notice)).unwrap();
    let peer2 = h.node(1).status().peers.into_iter().find(|p| p.id == 2).unwrap();
    let snapshots = h.sent("Snapshot");
    assert!(
        peer2.state != ProgressState::Snapshot && snapshots == 0,
        "node 2 holds every entry of node 1's log, yet a stale-term notice made node 1 stream its snapshot \
         to it: {peer2:?}, {snapshots} snapshot chunk(s) sent"
    );
}
