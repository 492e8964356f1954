//! `MemoryLog`: the log contract, and its durability against a naive
//! model that copies the whole state at every sync.

use super::*;
use crate::log::conformance;
use proptest::prelude::*;

#[test]
fn conforms_to_the_raft_log_contract() {
    conformance::run_all(MemoryLog::new);
}

#[test]
fn lends_runs_at_its_tail() {
    conformance::lends_runs_at_its_tail(MemoryLog::new());
}

fn e(term: Term, index: Index) -> Entry {
    Entry::normal(term, index, Bytes::from(format!("{term}/{index}")))
}

#[test]
fn unsynced_truncation_is_undone_by_a_crash() {
    let mut log = MemoryLog::new();
    log.append(&mut (1..=5).map(|i| e(1, i)).collect()).unwrap();
    log.sync().unwrap();
    log.truncate(3).unwrap();
    log.append(&mut vec![e(2, 3)]).unwrap();
    let d = log.durable();
    assert_eq!(d.last_index(), 5);
    assert_eq!(d.term(3), Some(1));
    log.sync().unwrap();
    let d = log.durable();
    assert_eq!(d.last_index(), 3);
    assert_eq!(d.term(3), Some(2));
}

#[test]
fn sync_counters() {
    let mut log = MemoryLog::new();
    log.sync().unwrap();
    assert_eq!((log.sync_calls(), log.effective_syncs()), (1, 0));
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    assert!(log.has_unsynced_changes());
    log.sync().unwrap();
    assert_eq!((log.sync_calls(), log.effective_syncs()), (2, 1));
    log.set_hard_state(HardState { term: 1, vote: Some(1), commit: 0 }).unwrap();
    assert!(!log.has_unsynced_changes(), "setting the same hard state changes nothing");
}

/// A naive model: the whole state copied at every sync.
#[derive(Clone, Debug, Default, PartialEq)]
struct Image {
    hard: HardState,
    snapshot: (Index, Term),
    entries: Vec<(Index, Term)>,
}

fn image(log: &MemoryLog) -> Image {
    Image {
        hard: log.hard_state(),
        snapshot: (log.snapshot_meta().index, log.snapshot_meta().term),
        entries: log.entries.iter().map(|e| (e.index, e.term)).collect(),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append(u8, Term),
    Truncate(u8),
    Snapshot(u8, bool),
    Hard(Term),
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..6, 1u64..5).prop_map(|(n, t)| Op::Append(n, t)),
        (0u8..10).prop_map(Op::Truncate),
        (0u8..12, any::<bool>()).prop_map(|(i, m)| Op::Snapshot(i, m)),
        (1u64..9).prop_map(Op::Hard),
        Just(Op::Sync),
    ]
}

proptest! {
    /// Whatever the sequence of writes, `durable()` equals the state as of
    /// the last sync.
    #[test]
    fn durable_matches_a_copy_taken_at_sync(ops in proptest::collection::vec(op(), 1..60)) {
        let mut log = MemoryLog::new();
        let mut model = Image::default();
        for op in ops {
            let sync = matches!(op, Op::Sync);
            apply(&mut log, op);
            if sync {
                model = image(&log);
            }
            prop_assert_eq!(image(&log.durable()), model.clone());
        }
    }

    /// The asynchronous mode: a submitted write makes durable exactly
    /// the log as it was at its submission, once reported (completions
    /// are cumulative); a sync makes everything durable; a crash keeps
    /// the durable image, still in the mode, with nothing in flight.
    #[test]
    fn async_writes_make_their_submitted_image_durable(
        ops in proptest::collection::vec(async_op(), 1..60)
    ) {
        let mut log = MemoryLog::new().with_async_writes();
        let mut durable = Image::default();
        let mut pending: Vec<(WriteToken, Image)> = Vec::new();
        let mut seq = 0;
        for op in ops {
            match op {
                AsyncOp::Log(Op::Sync) => {
                    log.sync().unwrap();
                    durable = image(&log);
                    pending.clear();
                }
                AsyncOp::Log(op) => apply(&mut log, op),
                AsyncOp::Submit => {
                    seq += 1;
                    let token = WriteToken::new(7, seq);
                    prop_assert_eq!(log.submit(token).unwrap(), Submitted::Pending);
                    pending.push((token, image(&log)));
                }
                AsyncOp::Report(k) => {
                    if let Some(&(token, _)) = pending.get(k as usize) {
                        log.persisted(token).unwrap();
                        durable = pending[k as usize].1.clone();
                        pending.drain(..=k as usize);
                    }
                }
                AsyncOp::Crash => {
                    log = log.durable();
                    prop_assert!(log.is_async());
                    pending.clear();
                }
            }
            prop_assert_eq!(image(&log.durable()), durable.clone());
            let tokens: Vec<WriteToken> = pending.iter().map(|(t, _)| *t).collect();
            prop_assert_eq!(log.pending_writes().collect::<Vec<_>>(), tokens);
        }
    }
}

#[derive(Clone, Debug)]
enum AsyncOp {
    Log(Op),
    Submit,
    /// Report the `k`-th write in flight (and so every earlier one).
    Report(u8),
    Crash,
}

fn async_op() -> impl Strategy<Value = AsyncOp> {
    prop_oneof![
        5 => op().prop_map(AsyncOp::Log),
        3 => Just(AsyncOp::Submit),
        3 => (0u8..3).prop_map(AsyncOp::Report),
        1 => Just(AsyncOp::Crash),
    ]
}

/// Carries out one mutation of [`Op`] (not `Sync`) on `log`.
fn apply(log: &mut MemoryLog, op: Op) {
    match op {
        Op::Append(n, t) => {
            let last = log.last_index();
            let term = log.term(last).unwrap_or(0).max(t);
            let mut es: Vec<Entry> = (1..=n as u64).map(|k| e(term, last + k)).collect();
            log.append(&mut es).unwrap();
        }
        Op::Truncate(back) => {
            let from = log.last_index().saturating_sub(back as u64).max(log.snapshot_meta().index + 1);
            log.truncate(from).unwrap();
        }
        Op::Snapshot(ahead, matching) => {
            let index = log.snapshot_meta().index + ahead as u64;
            let term = if matching { log.term(index).unwrap_or(9) } else { 9 };
            let meta = SnapshotMeta { index, term, membership: Membership::empty() };
            log.install_snapshot(meta, Bytes::from_static(b"s")).unwrap();
        }
        Op::Hard(t) => log.set_hard_state(HardState { term: t, vote: None, commit: 0 }).unwrap(),
        Op::Sync => log.sync().unwrap(),
    }
}

#[cfg(feature = "sim")]
#[test]
fn async_mode_fingerprints_tell_writes_in_flight_apart() {
    let mut a = MemoryLog::new().with_async_writes();
    a.append(&mut vec![e(1, 1)]).unwrap();
    let mut b = a.clone();
    b.submit(WriteToken::new(0, 1)).unwrap();
    let hash = |log: &MemoryLog| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        log.hash_state(&mut h);
        std::hash::Hasher::finish(&h)
    };
    assert_ne!(hash(&a), hash(&b), "a write in flight is part of the state");
    a.submit(WriteToken::new(0, 1)).unwrap();
    assert_eq!(hash(&a), hash(&b));
    b.persisted(WriteToken::new(0, 1)).unwrap();
    assert_ne!(hash(&a), hash(&b), "so is what a report made durable");
}
