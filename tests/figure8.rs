//! The Raft paper's Figure 8, replayed message by message: an entry of an
//! earlier term that sits on a majority is still not committed, because a
//! leader elected without it may overwrite it; it commits only when an
//! entry of the current leader's term commits on top of it.
//!
//! Five nodes, as in the paper: no pre-vote and no leader leases (so every
//! campaign takes the next term and the terms are the paper's), and one
//! entry per AppendEntries (so replication is visible entry by entry). Every
//! log starts with index 1 of term 1. raft-io leaders append a no-op when
//! elected: the entries of the figure are those no-ops.
//!
//! (a) S1 leads term 2; its entry at index 2 reaches S2 only.
//! (b) S1 crashes; S5 is elected in term 3 by S3, S4 and S5, and appends
//!     index 2 of term 3, which no one else receives.
//! (c) S5 crashes; S1 restarts, is elected in term 4, and brings S3 index 2
//!     of term 2: that entry is now on S1, S2 and S3, a majority, and S1
//!     knows it. It must not count as committed.
//! (d) If S1 crashes now, S5 is elected in term 5 (by S3, S4 and S5) and
//!     overwrites index 2 everywhere: why (c) must not commit it.
//! (e) If instead S1's entry of term 4 (index 3) reaches a majority, both
//!     commit together, and S5 can no longer win.

mod common;

use common::{Harness, log_with_terms};
use raft_io::{Event, Message, MessageBody, NodeId, RaftConfig, RaftLog};

const VOTERS: [NodeId; 5] = [1, 2, 3, 4, 5];

fn config(id: NodeId) -> RaftConfig {
    RaftConfig::new(id, VOTERS).seed(id).pre_vote(false).check_quorum(false).max_entries_per_message(1)
}

/// `id` campaigns (again, while a vote fails for a stale term) and messages
/// are delivered one by one until it leads; what it sends as the new leader
/// stays queued.
fn elect_holding(h: &mut Harness, id: NodeId) {
    for _ in 0..3 {
        h.step(id, Event::Campaign).unwrap();
        while !h.node(id).is_leader() {
            if h.deliver_one().is_none() {
                break;
            }
        }
        if h.node(id).is_leader() {
            return;
        }
    }
    panic!("n{id} was not elected");
}

fn term_at(h: &Harness, id: NodeId, index: u64) -> Option<u64> {
    h.node(id).log().term(index)
}

/// An AppendEntries of S1 to S3 that carries index 3 (S1's entry of term 4).
fn carries_index_3_to_s3(m: &Message) -> bool {
    m.from == 1 && m.to == 3 && matches!(&m.body, MessageBody::Append(a) if a.entries.iter().any(|e| e.index == 3))
}

/// Plays (a) to (c); returns with S1's append of index 3 to S3 held back.
fn up_to_c() -> Harness {
    let mut h = Harness::empty();
    for id in VOTERS {
        h.add(id, config(id), log_with_terms(id, &VOTERS, &[1], 1));
    }

    // (a) S1 leads term 2; index 2 reaches S2 only.
    elect_holding(&mut h, 1);
    assert_eq!(h.node(1).term(), 2);
    for id in [3, 4, 5] {
        h.cut(1, id);
    }
    h.queue.retain(|m| !(m.from == 1 && m.to != 2));
    h.deliver_all();
    assert_eq!((term_at(&h, 1, 2), term_at(&h, 2, 2)), (Some(2), Some(2)));
    assert!([3, 4, 5].iter().all(|&id| h.node(id).last_index() == 1));

    // (b) S1 crashes; S5 is elected in term 3 by S3, S4 and S5 (S2's log is
    // more up to date: it refuses) and keeps its index 2 to itself.
    h.crash(1);
    h.heal();
    h.queue.clear();
    elect_holding(&mut h, 5);
    assert_eq!(h.node(5).term(), 3);
    assert_eq!(term_at(&h, 5, 2), Some(3));
    h.queue.clear();
    h.crash(5);

    // (c) S1 restarts and is elected in term 4 (its vote in term 3 fails:
    // S3 and S4 voted there already). Its entry of term 4 is index 3.
    h.restart(1);
    elect_holding(&mut h, 1);
    assert_eq!(h.node(1).term(), 4);
    assert_eq!(term_at(&h, 1, 3), Some(4));
    // S2 takes index 3 and acknowledges it; S3 rejects index 3 (it lacks
    // index 2), is brought index 2 alone and acknowledges it; S4 hears
    // nothing; S1's index 3 to S3 is then held back.
    h.cut(1, 4);
    let mut held = Vec::new();
    while let Some(m) = h.queue.pop_front() {
        if carries_index_3_to_s3(&m) && term_at(&h, 3, 2).is_some() {
            held.push(m);
        } else if h.nodes.contains_key(&m.to) && !(m.from == 1 && m.to == 4) {
            h.deliver(m);
        }
    }
    h.queue.extend(held);
    assert_eq!((term_at(&h, 2, 2), term_at(&h, 3, 2)), (Some(2), Some(2)), "index 2 of term 2 on S1, S2, S3");
    assert_eq!(term_at(&h, 2, 3), Some(4));
    assert_eq!(term_at(&h, 3, 3), None, "index 3 of term 4 on S1 and S2 only");
    h
}

/// (c) then (e): not committed until index 3 of term 4 is on a majority.
fn an_earlier_term_entry_commits_only_under_one_of_the_current_term() {
    let mut h = up_to_c();
    // On a majority, acknowledged, and still not committed by anyone.
    for id in [1, 2, 3, 4] {
        assert!(h.node(id).commit_index() < 2, "n{id} committed index 2 of term 2 by counting replicas");
    }
    // (e) Index 3 of term 4 reaches S3: now both commit, together.
    h.deliver_all();
    assert_eq!(term_at(&h, 3, 3), Some(4));
    assert_eq!(h.node(1).commit_index(), 3);
    assert_eq!(term_at(&h, 1, 2), Some(2));
    // S5 can no longer win: S2 and S3 hold a later term than its log.
    h.crash(1);
    h.restart(5);
    for _ in 0..3 {
        h.step(5, Event::Campaign).unwrap();
        h.deliver_all();
        assert!(!h.node(5).is_leader(), "S5 was elected without a committed entry");
    }
}

/// (c) then (d): the entry on a majority is overwritten.
fn an_earlier_term_entry_on_a_majority_can_be_overwritten() {
    let mut h = up_to_c();
    assert!(h.node(1).commit_index() < 2, "S1 committed index 2 of term 2 by counting replicas");
    // (d) S1 crashes before its term-4 entry spreads; S5 restarts and is
    // elected in term 5 by S3, S4 and S5 (S2, holding term 4, refuses).
    h.crash(1);
    h.queue.clear();
    h.heal();
    h.restart(5);
    elect_holding(&mut h, 5);
    assert_eq!(h.node(5).term(), 5);
    h.deliver_all();
    // Index 2 of term 3 replaced index 2 of term 2 on S3 and commits.
    assert_eq!(term_at(&h, 3, 2), Some(3));
    assert_eq!(term_at(&h, 4, 2), Some(3));
    assert!(h.node(5).commit_index() >= 3);
    assert_eq!(term_at(&h, 5, 2), Some(3));
}

/// In a build with the mutants compiled in, every test here takes this
/// lock: one of them switches a mutant on, process-wide.
fn serial() -> impl Drop {
    #[cfg(raft_io_mutants)]
    {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(not(raft_io_mutants))]
    {
        struct Nothing;
        impl Drop for Nothing {
            fn drop(&mut self) {}
        }
        Nothing
    }
}

#[test]
fn figure_8_an_earlier_term_entry_commits_only_under_one_of_the_current_term() {
    let _serial = serial();
    an_earlier_term_entry_commits_only_under_one_of_the_current_term();
}

#[test]
fn figure_8_an_earlier_term_entry_on_a_majority_can_be_overwritten() {
    let _serial = serial();
    an_earlier_term_entry_on_a_majority_can_be_overwritten();
}

/// With the mutant that commits an entry of an earlier term by counting
/// replicas, both traces fail.
#[cfg(raft_io_mutants)]
#[test]
fn figure_8_catches_committing_an_earlier_term_entry_by_counting_replicas() {
    use raft_io::mutants::{self, Mutant};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let _serial = serial();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    mutants::set(Some(Mutant::CommitPreviousTerm));
    let commits = catch_unwind(AssertUnwindSafe(an_earlier_term_entry_commits_only_under_one_of_the_current_term));
    let overwrites = catch_unwind(AssertUnwindSafe(an_earlier_term_entry_on_a_majority_can_be_overwritten));
    mutants::set(None);
    std::panic::set_hook(hook);
    assert!(commits.is_err() && overwrites.is_err(), "the Figure 8 traces missed the mutant");
}
