//! A follower's step room (`RaftLog::max_step_bytes`, PROTOCOL.md §4.2
//! and §5): a follower that takes only a prefix of a burst asks the leader
//! for the rest at once, and an entry no step of its log could take is
//! refused and counted, not acknowledged forever.

mod common;

use bytes::Bytes;
use raft_io::{Event, ProgressState, RaftLog};

mod partial {
    use super::common::failing_log::FailingLog;
    use raft_io::{Action, Event, Message, MessageBody, RaftConfig, RaftLog, RaftNode};
    use std::collections::VecDeque;

    pub struct Pair {
        pub n1: RaftNode,
        pub n2: RaftNode<FailingLog>,
        pub queue: VecDeque<Message>,
    }

    impl Pair {
        pub fn new() -> Self {
            Self::with_leader_max_message_bytes(300)
        }

        /// Node 1 on a `MemoryLog` with `max_message_bytes` of `leader_max`;
        /// node 2 on a log whose step takes 400 bytes of entries, with
        /// `max_message_bytes` 300.
        pub fn with_leader_max_message_bytes(leader_max: u64) -> Self {
            let c = |id| RaftConfig::new(id, [1, 2]).seed(id * 7919).max_message_bytes(300);
            let n1 = RaftNode::new(c(1).max_message_bytes(leader_max)).unwrap();
            let n2 = RaftNode::with_log(c(2), FailingLog::new(usize::MAX, 400)).unwrap();
            Pair { n1, n2, queue: VecDeque::new() }
        }

        fn collect(&mut self, actions: Vec<Action>) {
            for a in actions {
                if let Action::Send { message, .. } = a {
                    self.queue.push_back(message);
                }
            }
        }

        pub fn step(&mut self, id: u64, event: Event) {
            let actions: Vec<Action> =
                if id == 1 { self.n1.step(event).unwrap().collect() } else { self.n2.step(event).unwrap().collect() };
            self.collect(actions);
        }

        pub fn deliver_all(&mut self) {
            let mut n = 0;
            while let Some(m) = self.queue.pop_front() {
                let to = m.to;
                self.step(to, Event::Message(m));
                n += 1;
                assert!(n < 100_000);
            }
        }

        pub fn tick_all(&mut self, n: u64) {
            for _ in 0..n {
                self.step(1, Event::Tick);
                self.step(2, Event::Tick);
                self.deliver_all();
            }
        }

        pub fn appends_to_2(&mut self) -> Vec<Message> {
            let (appends, rest): (Vec<_>, Vec<_>) =
                self.queue.drain(..).partition(|m| m.to == 2 && matches!(m.body, MessageBody::Append(_)));
            self.queue.extend(rest);
            appends
        }

        pub fn follower_last(&self) -> u64 {
            self.n2.log().last_index()
        }
    }
}

/// PROTOCOL.md §4.2: a follower that takes only the prefix of a burst that
/// fits its step counts only that prefix, and the leader sends the rest
/// after the acknowledgement, with no tick in between. (It used not to: in
/// Replicate the acknowledgement of the prefix freed no inflight slot and
/// left `next` past the entries the follower dropped, so nothing was resent
/// until the stall detection of later heartbeat rounds; in a two-node group
/// the proposal could not commit meanwhile.)
#[test]
fn the_leader_sends_the_rest_after_a_partly_taken_burst() {
    let mut p = partial::Pair::new();
    p.step(1, Event::Campaign);
    p.deliver_all();
    p.tick_all(3);
    assert!(p.n1.is_leader());
    let peer = p.n1.status().peers[0];
    assert_eq!(peer.state, ProgressState::Replicate, "{peer:?}");
    // Two proposals of 200 bytes (224 with the entry overhead), one append
    // each; the follower's step takes 400 bytes of entries at most.
    let first = p.n1.last_index() + 1;
    p.step(1, Event::Propose(Bytes::from(vec![1u8; 200])));
    p.step(1, Event::Propose(Bytes::from(vec![2u8; 200])));
    let appends = p.appends_to_2();
    assert_eq!(appends.len(), 2);
    // Both arrive together (a runtime's burst, handled in one step).
    p.step(2, Event::Messages(appends));
    assert_eq!(p.follower_last(), first, "the follower took the first append only");
    // Its acknowledgements reach the leader, and everything that follows is
    // delivered: no tick passes.
    p.deliver_all();
    let status = p.n1.status();
    assert_eq!(
        (p.follower_last(), status.commit),
        (first + 1, first + 1),
        "the rest was not sent after the acknowledgement: {:?}",
        status.peers[0]
    );
}

/// A leader whose `max_message_bytes` is above what a follower's log takes
/// in one step (a rolling change of `max_message_bytes` and the WAL record
/// size, node by node): no step of the follower can take an entry that does
/// not fit an empty step. It refuses the append and counts it as dropped
/// (it used to answer success at `prev_log_index`, forever, and nothing
/// told the operator).
#[test]
fn an_entry_larger_than_a_followers_step_is_not_acknowledged_forever() {
    let mut p = partial::Pair::with_leader_max_message_bytes(1 << 20);
    p.step(1, Event::Campaign);
    p.deliver_all();
    p.tick_all(3);
    assert!(p.n1.is_leader());
    let index = p.n1.last_index() + 1;
    p.step(1, Event::Propose(Bytes::from(vec![3u8; 1000])));
    p.deliver_all();
    let dropped_before = p.n2.status().dropped_messages;
    p.tick_all(200);
    let (n2, peer) = (p.n2.status(), p.n1.status().peers[0]);
    assert!(
        p.follower_last() >= index || n2.dropped_messages > dropped_before,
        "200 ticks on, node 2 neither holds entry {index} nor refused anything (it acknowledges success at \
         {} each time): leader commit {}, {peer:?}",
        p.follower_last(),
        p.n1.commit_index()
    );
}

/// A leader and a follower whose log takes a megabyte a step, the leader
/// having proposed a 1000-byte entry (at the index returned): the follower
/// will hold it, before a test lowers its step below it.
fn a_big_entry_proposed() -> (partial::Pair, u64) {
    let mut p = partial::Pair::with_leader_max_message_bytes(1 << 20);
    p.n2.log_mut().step_bytes = 1 << 20;
    p.step(1, Event::Campaign);
    p.deliver_all();
    p.tick_all(3);
    let big = p.n1.last_index() + 1;
    p.step(1, Event::Propose(Bytes::from(vec![3u8; 1000])));
    (p, big)
}

/// An entry the follower already holds costs it no write, even one larger
/// than its log now takes in a step (written before its limit was lowered):
/// a resend that starts with it is taken, and the follower catches up
/// instead of asking for the same entry again and again.
#[test]
fn a_held_entry_larger_than_the_step_does_not_stop_the_follower() {
    let (mut p, big) = a_big_entry_proposed();
    p.deliver_all();
    assert_eq!(p.follower_last(), big);
    // The follower's limit is lowered; the leader, having lost track of
    // what it holds (its acknowledgement of the big entry lost, say),
    // resends from the big entry together with a new one.
    p.n2.log_mut().step_bytes = 400;
    p.step(1, Event::Propose(Bytes::from(vec![4u8; 100])));
    let appends = p.appends_to_2();
    let resend = appends.into_iter().next().expect("an append");
    let raft_io::MessageBody::Append(mut a) = resend.body.clone() else { unreachable!() };
    let mut entries = Vec::new();
    p.n1.log().entries(big, big + 2, u64::MAX, &mut entries).unwrap();
    a.prev_log_index = big - 1;
    a.prev_log_term = p.n1.log().term(big - 1).unwrap();
    a.entries = entries;
    let dropped = p.n2.status().dropped_messages;
    p.step(2, Event::Message(raft_io::Message { body: raft_io::MessageBody::Append(a), ..resend }));
    p.deliver_all();
    assert_eq!(p.follower_last(), big + 1, "the follower did not get past the big entry it holds");
    assert_eq!(p.n2.status().dropped_messages, dropped, "a resend starting with a held entry was refused");
    assert_eq!(p.n1.commit_index(), big + 1);
}

/// An entry the follower committed and compacted into its snapshot since
/// is not in its log, yet it holds it (found by review of the fit above):
/// a resend starting with it, larger than the follower's lowered step, is
/// skipped as committed and answered, not refused as an entry no step
/// could take (the leader, with no answer, would resend it forever).
#[test]
fn a_compacted_committed_entry_larger_than_the_step_is_not_refused() {
    let (mut p, big) = a_big_entry_proposed();
    p.step(1, Event::Propose(Bytes::from(vec![4u8; 10])));
    p.deliver_all();
    p.tick_all(3);
    let applied = p.n2.last_applied();
    assert!(applied > big, "follower applied {applied}, big entry at {big}");
    // The follower snapshots past the big entry, then its limit is lowered.
    p.step(2, Event::Snapshot { index: applied, data: Bytes::from_static(b"state") });
    assert!(p.n2.log().first_index() > big);
    p.n2.log_mut().step_bytes = 400;
    // The leader resends from the big entry (it lost the acknowledgements).
    let mut entries = Vec::new();
    p.n1.log().entries(big, applied + 1, u64::MAX, &mut entries).unwrap();
    let append = raft_io::AppendEntries {
        prev_log_index: big - 1,
        prev_log_term: p.n1.log().term(big - 1).unwrap(),
        leader_commit: p.n1.commit_index(),
        entries,
    };
    let m = raft_io::Message { from: 1, to: 2, term: p.n1.term(), body: raft_io::MessageBody::Append(append) };
    let dropped = p.n2.status().dropped_messages;
    p.step(2, Event::Message(m));
    let answered =
        p.queue.iter().any(|m| matches!(&m.body, raft_io::MessageBody::AppendResponse(r) if m.from == 2 && r.success));
    assert!(answered, "no answer to an append of entries node 2 committed and compacted");
    assert_eq!(p.n2.status().dropped_messages, dropped, "refused as an entry no step could take");
}
