//! A contract test suite any [`RaftLog`] must pass. `MemoryLog` and `WalLog`
//! both run it; a user log can copy the idea.

use bytes::Bytes;

use super::{RaftLog, Submitted, WriteToken};
use crate::membership::Membership;
use crate::types::{Entry, HardState, Index, LogIdentity, SnapshotMeta, Term};

fn e(term: Term, index: Index) -> Entry {
    Entry::normal(term, index, Bytes::from(vec![index as u8; 8]))
}

fn fill<L: RaftLog>(log: &mut L, terms: &[Term]) {
    let first = log.last_index() + 1;
    let mut es: Vec<Entry> = terms.iter().enumerate().map(|(k, &t)| e(t, first + k as u64)).collect();
    log.append(&mut es).unwrap();
    assert!(es.is_empty(), "append drains its input");
}

/// 2,500 entries, of terms 1 to 3 by the thousand: past the chunk size of
/// the in-memory storage, so that ranges can span chunks.
fn fill_past_two_chunks<L: RaftLog>(log: &mut L) {
    let terms: Vec<Term> = (0..2500).map(|k| 1 + k / 1000).collect();
    fill(log, &terms);
}

/// Installs (and syncs) a snapshot at `index` of `term`.
fn snapshot_at<L: RaftLog>(log: &mut L, index: Index, term: Term) {
    let meta = SnapshotMeta { index, term, membership: Membership::empty() };
    log.install_snapshot(meta, Bytes::from_static(b"s")).unwrap();
    log.sync().unwrap();
}

fn all<L: RaftLog>(log: &L) -> Vec<Entry> {
    let mut out = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut out).unwrap();
    out
}

/// Runs every contract check on fresh logs from `make`.
pub(crate) fn run_all<L: RaftLog>(make: impl Fn() -> L) {
    empty_log(make());
    append_and_read(make());
    append_must_be_contiguous(make());
    append_one_is_append_of_one(make(), make());
    entries_respect_max_bytes(make());
    visit_lends_what_entries_clones(make());
    a_lent_run_is_what_entries_clones(make());
    truncate_removes_a_suffix(make());
    hard_state_and_identity(make());
    snapshot_keeps_a_matching_suffix(make());
    snapshot_drops_a_conflicting_log(make());
    streamed_snapshot(make());
    async_writes(make());
}

/// The asynchronous storage mode (`docs/PROTOCOL.md` §5.1): a log answers
/// every `submit` with `Durable` or `Pending`, reads see every mutation at
/// once whatever is in flight, and `persisted` for submitted tokens, in
/// order and cumulatively, succeeds and changes nothing a read sees. (What
/// survives a crash is checked per log: `WalLog`'s crash tests and the
/// simulator.)
fn async_writes<L: RaftLog>(mut log: L) {
    let token = |seq| WriteToken::new(7, seq);
    fill(&mut log, &[1, 1]);
    let first = log.submit(token(1)).unwrap();
    assert!(matches!(first, Submitted::Durable | Submitted::Pending));
    fill(&mut log, &[2, 2]);
    log.set_hard_state(HardState { term: 2, vote: Some(1), commit: 1 }).unwrap();
    log.submit(token(2)).unwrap();
    // A truncation of entries still in flight, then their replacement.
    log.truncate(4).unwrap();
    fill(&mut log, &[3]);
    log.submit(token(3)).unwrap();
    // A write with nothing new still takes its place in the order.
    log.submit(token(4)).unwrap();
    let view = |log: &L| (all(log).iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(), log.hard_state());
    let before = view(&log);
    assert_eq!(before.0, vec![(1, 1), (2, 1), (3, 2), (4, 3)]);
    assert_eq!(before.1.vote, Some(1));
    log.persisted(token(2)).unwrap();
    assert_eq!(view(&log), before, "a completion changes nothing a read sees");
    log.persisted(token(4)).unwrap();
    assert_eq!(view(&log), before);
    // Back to synchronous use: sync covers everything.
    fill(&mut log, &[3]);
    log.sync().unwrap();
    assert_eq!(log.last_index(), 5);
}

fn empty_log<L: RaftLog>(log: L) {
    assert_eq!(log.first_index(), 1);
    assert_eq!(log.last_index(), 0);
    assert_eq!(log.term(0), Some(0));
    assert_eq!(log.term(1), None);
    assert_eq!(log.hard_state(), HardState::default());
    assert_eq!(log.snapshot_data().unwrap().len(), 0);
    let mut out = Vec::new();
    log.entries(1, 1, u64::MAX, &mut out).unwrap();
    assert!(out.is_empty());
    assert!(log.entries(1, 2, u64::MAX, &mut out).is_err(), "past the end");
}

fn append_and_read<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1, 1, 2]);
    log.sync().unwrap();
    assert_eq!(log.last_index(), 3);
    assert_eq!(log.term(2), Some(1));
    assert_eq!(log.term(3), Some(2));
    assert_eq!(log.term(4), None);
    let got = all(&log);
    assert_eq!(got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(), vec![(1, 1), (2, 1), (3, 2)]);
    assert_eq!(got[1], e(1, 2));
    let mut out = Vec::new();
    log.entries(2, 3, u64::MAX, &mut out).unwrap();
    assert_eq!(out, vec![e(1, 2)]);
}

fn append_must_be_contiguous<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1]);
    assert!(log.append(&mut vec![e(1, 3)]).is_err(), "gap");
    assert!(log.append(&mut vec![e(1, 1)]).is_err(), "overlap");
    assert_eq!(log.last_index(), 1);
}

/// `append_one` stores what `append` stores for a vector of that entry
/// (many of them, past any internal boundary a log has), refuses what it
/// refuses, and leaves its spare vector empty.
fn append_one_is_append_of_one<L: RaftLog>(mut one: L, mut batch: L) {
    let mut spare = Vec::new();
    let terms: Vec<Term> = (0..2100u64).map(|i| 1 + i / 700).collect();
    for (i, &t) in terms.iter().enumerate() {
        one.append_one(e(t, i as u64 + 1), &mut spare).unwrap();
        assert!(spare.is_empty(), "the spare vector is left empty");
    }
    fill(&mut batch, &terms);
    assert_eq!(one.last_index(), 2100);
    assert_eq!(all(&one), all(&batch));
    assert!(one.append_one(e(3, 2102), &mut spare).is_err(), "gap");
    assert!(one.append_one(e(3, 2100), &mut spare).is_err(), "overlap");
    assert!(spare.is_empty());
    assert_eq!(one.last_index(), 2100);
    one.sync().unwrap();
    assert_eq!(all(&one), all(&batch));
}

fn entries_respect_max_bytes<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1; 10]);
    let size = e(1, 1).size();
    let mut out = Vec::new();
    log.entries(1, 11, size * 3, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    out.clear();
    log.entries(1, 11, 1, &mut out).unwrap();
    assert_eq!(out.len(), 1, "at least one entry");
    out.clear();
    log.entries(4, 6, u64::MAX, &mut out).unwrap();
    assert_eq!(out.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
}

/// The entries `lo..hi` as `visit_entries` lends them, one list per call
/// of the visitor.
fn visited<L: RaftLog>(log: &L, lo: Index, hi: Index) -> Result<Vec<Vec<Entry>>, super::StorageError> {
    let mut seen = Vec::new();
    log.visit_entries(lo, hi, &mut |s: &[Entry]| seen.push(s.to_vec()))?;
    Ok(seen)
}

fn visit_lends_what_entries_clones<L: RaftLog>(mut log: L) {
    fill_past_two_chunks(&mut log);
    for (lo, hi) in [(1, 2501), (1, 2), (1000, 1100), (1020, 1030), (2048, 2501), (7, 7), (9, 3)] {
        let mut want = Vec::new();
        log.entries(lo, hi, u64::MAX, &mut want).unwrap();
        let seen = visited(&log, lo, hi).unwrap();
        assert!(seen.iter().all(|s| !s.is_empty()), "no empty slice is lent");
        assert_eq!(seen.concat(), want, "{lo}..{hi}");
    }
    assert!(visited(&log, 2500, 2502).is_err(), "past the last index");
    snapshot_at(&mut log, 100, 1);
    assert!(visited(&log, 100, 102).is_err(), "compacted");
    assert_eq!(visited(&log, 101, 103).unwrap().concat(), vec![e(1, 101), e(1, 102)]);
}

/// `entry_run` may lend nothing, but what it lends is exactly the entries
/// `lo..hi`; it lends nothing for an empty range, a compacted one, or one
/// past the last index.
fn a_lent_run_is_what_entries_clones<L: RaftLog>(mut log: L) {
    fill_past_two_chunks(&mut log);
    let check = |log: &L, lo: Index, hi: Index| {
        if let Some(run) = log.entry_run(lo, hi) {
            let mut want = Vec::new();
            log.entries(lo, hi, u64::MAX, &mut want).unwrap();
            assert_eq!(run, want.as_slice(), "{lo}..{hi}");
        }
    };
    for (lo, hi) in [(1, 2501), (1, 2), (1000, 1100), (2048, 2501), (2490, 2501), (2500, 2501)] {
        check(&log, lo, hi);
    }
    for (lo, hi) in [(7, 7), (9, 3), (2500, 2502), (2501, 2502), (0, 1), (u64::MAX - 1, u64::MAX)] {
        assert!(log.entry_run(lo, hi).is_none(), "{lo}..{hi} is not a run of the log");
    }
    snapshot_at(&mut log, 2495, 3);
    assert!(log.entry_run(2495, 2497).is_none(), "compacted");
    check(&log, 2496, 2501);
    fill(&mut log, &[3, 3]);
    check(&log, 2499, 2503);
}

/// For a log that holds its entries in memory (`MemoryLog`, `WalLog`): a
/// run near the end, where a step's appends and applies are, is lent as
/// one slice (so `RaftNode::visit_applied` reads it without a call through
/// `dyn`), after a snapshot too.
pub(crate) fn lends_runs_at_its_tail<L: RaftLog>(mut log: L) {
    fill_past_two_chunks(&mut log);
    for (lo, hi) in [(2500, 2501), (2480, 2501), (2049, 2060)] {
        assert!(log.entry_run(lo, hi).is_some(), "{lo}..{hi} at the tail");
    }
    snapshot_at(&mut log, 2495, 3);
    fill(&mut log, &[3]);
    assert_eq!(log.entry_run(2496, 2502).map(|r| r.len()), Some(6), "after a snapshot");
}

fn truncate_removes_a_suffix<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1, 1, 1, 1]);
    log.sync().unwrap();
    log.truncate(3).unwrap();
    assert_eq!(log.last_index(), 2);
    fill(&mut log, &[2, 2]);
    log.sync().unwrap();
    assert_eq!(log.term(3), Some(2));
    assert_eq!(log.last_index(), 4);
    log.truncate(9).unwrap();
    assert_eq!(log.last_index(), 4, "truncating past the end changes nothing");
}

fn hard_state_and_identity<L: RaftLog>(mut log: L) {
    assert_eq!(log.identity(), None);
    let id = LogIdentity { cluster_id: 7, node_id: 3 };
    log.set_identity(id).unwrap();
    let hs = HardState { term: 4, vote: Some(2), commit: 0 };
    log.set_hard_state(hs).unwrap();
    log.sync().unwrap();
    assert_eq!(log.identity(), Some(id));
    assert_eq!(log.hard_state(), hs);
}

fn snapshot_keeps_a_matching_suffix<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1, 1, 2, 2, 2]);
    let membership = Membership::new([1, 2, 3], []).unwrap();
    let meta = SnapshotMeta { index: 3, term: 2, membership: membership.clone() };
    log.install_snapshot(meta.clone(), Bytes::from_static(b"state")).unwrap();
    log.sync().unwrap();
    assert_eq!(log.snapshot_meta(), &meta);
    assert_eq!(log.first_index(), 4);
    assert_eq!(log.last_index(), 5);
    assert_eq!(log.term(3), Some(2));
    assert_eq!(log.term(2), None);
    assert_eq!(&log.snapshot_data().unwrap()[..], b"state");
    assert_eq!(&log.snapshot_chunk(1, 3).unwrap()[..], b"tat");
    assert_eq!(&log.snapshot_chunk(4, 10).unwrap()[..], b"e");
    let mut out = Vec::new();
    assert!(log.entries(3, 4, u64::MAX, &mut out).is_err(), "compacted");
    fill(&mut log, &[3]);
    assert_eq!(log.last_index(), 6);
}

fn snapshot_drops_a_conflicting_log<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1, 1, 1]);
    let meta = SnapshotMeta { index: 2, term: 5, membership: Membership::empty() };
    log.install_snapshot(meta, Bytes::from_static(b"x")).unwrap();
    assert_eq!(log.last_index(), 2);
    assert_eq!(log.term(2), Some(5));
    let meta = SnapshotMeta { index: 10, term: 6, membership: Membership::empty() };
    log.install_snapshot(meta, Bytes::from_static(b"y")).unwrap();
    log.sync().unwrap();
    assert_eq!((log.first_index(), log.last_index()), (11, 10));
    fill(&mut log, &[6]);
    assert_eq!(log.last_index(), 11);
}

fn streamed_snapshot<L: RaftLog>(mut log: L) {
    fill(&mut log, &[1, 1]);
    let meta = SnapshotMeta { index: 7, term: 3, membership: Membership::new([1], []).unwrap() };
    log.begin_snapshot_receive(&meta, 6).unwrap();
    log.receive_snapshot_chunk(0, b"abc").unwrap();
    assert_eq!(log.last_index(), 2, "nothing installed before the end");
    log.receive_snapshot_chunk(3, b"def").unwrap();
    log.finish_snapshot_receive().unwrap();
    log.sync().unwrap();
    assert_eq!(log.snapshot_meta(), &meta);
    assert_eq!(&log.snapshot_data().unwrap()[..], b"abcdef");
    assert_eq!(log.last_index(), 7);
    // A restarted stream discards the partial one.
    let next = SnapshotMeta { index: 9, term: 3, membership: Membership::new([1], []).unwrap() };
    log.begin_snapshot_receive(&next, 2).unwrap();
    log.receive_snapshot_chunk(0, b"z").unwrap();
    log.begin_snapshot_receive(&next, 2).unwrap();
    log.receive_snapshot_chunk(0, b"ok").unwrap();
    log.finish_snapshot_receive().unwrap();
    assert_eq!(&log.snapshot_data().unwrap()[..], b"ok");
}
