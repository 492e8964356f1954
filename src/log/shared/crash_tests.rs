//! Crash tests of the shared WAL on real files, in the manner of
//! `WalLog`'s (`src/log/wal/crash_tests.rs`): a scripted run of several
//! groups (creations, steps of every kind, snapshots received in chunks,
//! checkpoints, a removal and a re-creation) against a [`FaultInjector`],
//! with a [`MemoryLog`] per group as the model. The injector crashes the run
//! at every durable operation in turn; the unsynced WAL bytes are then lost
//! except for a prefix (none, a torn frame header, half, all: a torn last
//! record), and the reopened log must give **every** group a state it may
//! have: the state of its last flush that returned, or — when the crash hit
//! a flush — the state that flush was writing. So no group loses a write it
//! was told is durable, whichever group's record was torn.
//!
//! `RAFT_IO_SOAK=1` tears at every byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::Bytes;
use wal_db::{SegmentedStore, WalStore};

use super::tests::temp;
use super::*;
use crate::log::MemoryLog;
use crate::log::wal::FaultInjector;
use crate::log::wal::crash_support::{
    Image, LogGen, SEGMENT, apply, copy_dir, entries, image, keeps, meta, resolve, soak,
};
use crate::types::{Entry, HardState, Index, LogIdentity, Term};

// A call on one group's log. (Its `Sync` is not used: a run syncs a group
// with the host's `Call::Sync`, which the model follows.)
use crate::log::wal::crash_support::Call as On;

/// A call of the scripted host.
#[derive(Clone, Debug)]
enum Call {
    Create(GroupId),
    Remove(GroupId),
    On(GroupId, On),
    /// `submit` (stages the group's step).
    Submit(GroupId),
    /// `sync` on a group (stage and flush).
    Sync(GroupId),
    /// `persisted` of the group's latest submitted token, by a driver that
    /// reports tokens itself (the group log flushes what is staged).
    Persisted(GroupId),
    Flush,
    Checkpoint,
}

/// A group's model: its log, what it may recover to (`None`: absent), and
/// what the flush under way (or the next) would make durable.
#[derive(Default)]
struct Model {
    log: Option<MemoryLog>,
    ok: Vec<Option<Image>>,
    pending: Option<Option<Image>>,
}

fn models(ids: &[GroupId]) -> BTreeMap<GroupId, Model> {
    ids.iter().map(|id| (*id, Model { ok: vec![None], ..Model::default() })).collect()
}

thread_local! {
    /// The record size limit of this thread's runs (`None`: the default).
    static MAX_RECORD: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    /// The counters of this thread's last run that ended without a crash.
    static LAST_STATS: std::cell::Cell<Option<SharedWalStats>> = const { std::cell::Cell::new(None) };
}

fn options(faults: &FaultInjector) -> SharedWalOptions {
    let options = SharedWalOptions::new().segment_size(SEGMENT).fault_injector(faults.clone());
    match MAX_RECORD.get() {
        Some(max) => options.max_record_size(max),
        None => options,
    }
}

/// Runs `calls` until the injected crash; returns, per group, the states
/// it may recover to.
fn run_until_crash(dir: &Path, faults: &FaultInjector, calls: &[Call]) -> BTreeMap<GroupId, Vec<Option<Image>>> {
    let ids: Vec<GroupId> =
        calls.iter().filter_map(|c| if let Call::Create(id) = c { Some(*id) } else { None }).collect();
    let mut m = models(&ids);
    let done = |m: BTreeMap<GroupId, Model>| m.into_iter().map(|(id, g)| (id, g.ok)).collect();
    let wal = match SharedWal::open_with(dir, options(faults)) {
        Ok(wal) => wal,
        Err(e) => {
            assert!(faults.has_crashed(), "open failed without a crash: {e}");
            return done(m);
        }
    };
    let mut logs: BTreeMap<GroupId, GroupLog> = BTreeMap::new();
    let mut tokens: BTreeMap<GroupId, WriteToken> = BTreeMap::new();
    let mut unflushed = std::collections::BTreeSet::new();
    for (seq, call) in (1..).zip(calls) {
        // Model first.
        // `persisted` flushes only when the group's token is still staged.
        let flushes = match call {
            Call::Flush | Call::Checkpoint | Call::Sync(_) | Call::Remove(_) => true,
            Call::Persisted(id) => unflushed.contains(id),
            _ => false,
        };
        match call {
            Call::Submit(id) => {
                unflushed.insert(*id);
            }
            _ if flushes => unflushed.clear(),
            _ => {}
        }
        match call {
            Call::Create(id) => {
                let g = m.get_mut(id).unwrap();
                g.log = Some(MemoryLog::new());
                g.pending = Some(Some(image(&MemoryLog::new())));
            }
            Call::Remove(id) => m.get_mut(id).unwrap().pending = Some(None),
            Call::On(id, on) => apply(m.get_mut(id).unwrap().log.as_mut().unwrap(), on).unwrap(),
            Call::Submit(id) | Call::Sync(id) => {
                let g = m.get_mut(id).unwrap();
                g.pending = Some(Some(image(g.log.as_ref().unwrap())));
            }
            Call::Flush | Call::Checkpoint | Call::Persisted(_) => {}
        }
        // Then the log.
        let result = match call {
            Call::Create(id) => wal.create_group(*id).map(|g| {
                logs.insert(*id, g);
            }),
            Call::Remove(id) => {
                logs.remove(id);
                wal.remove_group(*id)
            }
            Call::On(id, on) => apply(logs.get_mut(id).unwrap(), on),
            Call::Submit(id) => {
                tokens.insert(*id, WriteToken::new(1, seq));
                logs.get_mut(id).unwrap().submit(WriteToken::new(1, seq)).map(drop)
            }
            Call::Sync(id) => logs.get_mut(id).unwrap().sync(),
            Call::Persisted(id) => logs.get_mut(id).unwrap().persisted(tokens[id]),
            Call::Flush => wal.flush().map(drop),
            Call::Checkpoint => wal.checkpoint(),
        };
        match result {
            Ok(()) if flushes => {
                for g in m.values_mut() {
                    if let Some(target) = g.pending.take() {
                        g.ok = vec![target];
                    }
                }
            }
            Ok(()) => {}
            Err(e) => {
                assert!(faults.has_crashed(), "{call:?} failed without a crash: {e}");
                if flushes {
                    for g in m.values_mut() {
                        if let Some(target) = g.pending.take() {
                            g.ok.push(target);
                        }
                    }
                }
                return done(m);
            }
        }
        if let Call::Remove(id) = call {
            m.get_mut(id).unwrap().log = None;
        }
    }
    LAST_STATS.set(Some(wal.stats()));
    done(m)
}

/// Crashes a run of `calls` at operation `op`, then checks every group's
/// recovery at every tear point.
fn crash_and_check(calls: &[Call], op: u64) {
    let root = temp();
    let dir = root.path().join("log");
    let faults = FaultInjector::new();
    faults.crash_after(op);
    let ok = run_until_crash(&dir, &faults, calls);
    if !faults.has_crashed() {
        faults.crash_now();
    }
    let (synced, written) = faults.watermarks();
    let unsynced = written.saturating_sub(synced);
    for (n, keep) in keeps(unsynced).into_iter().enumerate() {
        let trial = root.path().join(format!("keep-{keep}"));
        copy_dir(&dir, &trial);
        if keep < unsynced && trial.join("wal").is_dir() {
            let store = SegmentedStore::open(trial.join("wal"), SEGMENT).unwrap();
            store.truncate(synced + keep).unwrap();
        }
        let at = format!("crash at op {op}, {keep} of {unsynced} unsynced bytes kept");
        let reopen = || {
            let options = SharedWalOptions::new().segment_size(SEGMENT);
            match MAX_RECORD.get() {
                Some(max) => options.max_record_size(max),
                None => options,
            }
        };
        let wal = SharedWal::open_with(&trial, reopen()).unwrap_or_else(|e| panic!("{at}: {e}"));
        let mut recovered = BTreeMap::new();
        for (id, want) in &ok {
            let got = if wal.contains(*id) { Some(image(&wal.group(*id).unwrap())) } else { None };
            assert!(want.contains(&got), "{at}: group {id}\n got {got:?}\n want one of {want:?}");
            recovered.insert(*id, got);
        }
        if n > 0 {
            continue;
        }
        let check = |wal: &SharedWal, when: &str| {
            for (id, got) in &recovered {
                let again = if wal.contains(*id) { Some(image(&wal.group(*id).unwrap())) } else { None };
                assert_eq!(&again, got, "{at}, {when}: group {id}");
            }
        };
        // What the crash left after the last intact record (such as a
        // checkpoint cut short between its parts) stays without effect
        // whatever follows it: a write, then a checkpoint (in parts, with a
        // small record limit), then a whole one (the default limit); every
        // group reads back as recovered each time.
        let id = 77;
        let mut g = wal.create_group(id).unwrap();
        g.append(&mut vec![Entry::normal(1, 1, Bytes::from_static(b"after"))]).unwrap();
        g.sync().unwrap();
        drop((g, wal));
        let wal = SharedWal::open_with(&trial, reopen()).unwrap_or_else(|e| panic!("{at}, after a write: {e}"));
        assert_eq!(wal.group(id).unwrap().last_index(), 1);
        check(&wal, "after a write");
        wal.checkpoint().unwrap_or_else(|e| panic!("{at}: checkpoint: {e}"));
        drop(wal);
        let wal = SharedWal::open(&trial).unwrap_or_else(|e| panic!("{at}, after a checkpoint: {e}"));
        check(&wal, "after a checkpoint");
        wal.checkpoint().unwrap_or_else(|e| panic!("{at}: whole checkpoint: {e}"));
        drop(wal);
        let wal = SharedWal::open(&trial).unwrap_or_else(|e| panic!("{at}, after a whole checkpoint: {e}"));
        check(&wal, "after a whole checkpoint");
        assert_eq!(wal.group(id).unwrap().last_index(), 1);
    }
}

fn snapshot_data(index: Index, term: Term) -> Bytes {
    Bytes::from(vec![(index ^ term) as u8; (index * 37 % 300) as usize + 1])
}

/// Three groups interleaved through every kind of operation, with records
/// spanning segments, a checkpoint (also one due by the amortized rule), a
/// removal and a re-creation of the same id.
fn scripted() -> Vec<Call> {
    use Call::*;
    vec![
        Create(1),
        Create(2),
        On(1, self::On::Identity(LogIdentity { cluster_id: 1, node_id: 2 })),
        On(1, self::On::Hard(HardState { term: 1, vote: Some(1), commit: 0 })),
        On(1, self::On::Append(entries(1, 1, 3, 10))),
        Submit(1),
        On(2, self::On::Append(entries(1, 1, 5, 40))),
        Submit(2),
        Flush,
        On(1, self::On::Append(entries(4, 1, 5, 40))),
        Sync(1),
        Create(3),
        On(3, self::On::Append(entries(1, 1, 2, 10))),
        Submit(3),
        On(2, self::On::Truncate(3)),
        On(2, self::On::Append(entries(3, 2, 2, 30))),
        On(2, self::On::Hard(HardState { term: 2, vote: Some(2), commit: 2 })),
        Submit(2),
        Flush,
        On(1, self::On::Snapshot(meta(5, 1), snapshot_data(5, 1))),
        Submit(1),
        On(3, self::On::Receive(meta(20, 3), snapshot_data(20, 3), 40)),
        Submit(3),
        Flush,
        Checkpoint,
        On(2, self::On::Append(entries(5, 2, 4, 70))),
        Submit(2),
        Remove(1),
        On(3, self::On::Append(entries(21, 3, 3, 5))),
        Submit(3),
        Persisted(3),
        On(2, self::On::Snapshot(meta(6, 2), Bytes::new())),
        Submit(2),
        Flush,
        Create(1),
        On(1, self::On::Append(entries(1, 4, 2, 20))),
        Sync(1),
        On(3, self::On::Hard(HardState { term: 4, vote: None, commit: 21 })),
        On(3, self::On::Truncate(22)),
        On(3, self::On::Append(entries(22, 4, 8, 60))),
        Submit(3),
        On(2, self::On::Append(entries(9, 2, 8, 60))),
        Submit(2),
        Flush,
        On(1, self::On::Append(entries(3, 4, 8, 60))),
        Submit(1),
        Persisted(1),
        On(1, self::On::Append(entries(11, 4, 1, 5))),
        Sync(1),
    ]
}

#[test]
fn every_crash_point_of_a_multi_group_run_keeps_every_group_s_durable_writes() {
    let calls = scripted();
    let total = {
        let root = temp();
        let faults = FaultInjector::new();
        let ok = run_until_crash(&root.path().join("log"), &faults, &calls);
        let wal = SharedWal::open(root.path().join("log")).unwrap();
        for (id, want) in &ok {
            let got = if wal.contains(*id) { Some(image(&wal.group(*id).unwrap())) } else { None };
            assert_eq!(vec![got], *want, "a clean run recovers group {id} exactly");
        }
        let stats = wal.stats();
        drop(wal);
        assert_eq!(stats.records, 0, "nothing written by the reopen");
        faults.operations()
    };
    assert!(total > 60, "{total} operations");
    for op in 0..total {
        crash_and_check(&calls, op);
    }
}

/// Records small enough that the checkpoints of [`many_small_groups`]
/// take several (each group's state, and every flush, still fits one).
const SMALL_RECORD: u32 = 600;

/// Eight groups of small steps, flushed two at a time, checkpointed
/// twice (the second after a removal) and written to after each.
fn many_small_groups() -> Vec<Call> {
    use Call::*;
    let ids: Vec<GroupId> = (1..=8).collect();
    let mut calls: Vec<Call> = ids.iter().map(|&id| Create(id)).collect();
    let mut next: BTreeMap<GroupId, Index> = ids.iter().map(|&id| (id, 1)).collect();
    let mut round = |calls: &mut Vec<Call>, groups: &[GroupId], n: u64| {
        for pair in groups.chunks(2) {
            for &id in pair {
                let first = next[&id];
                calls.push(On(id, self::On::Append(entries(first, 1, n, 40))));
                calls.push(Submit(id));
                next.insert(id, first + n);
            }
            calls.push(Flush);
        }
    };
    for _ in 0..3 {
        round(&mut calls, &ids, 3);
    }
    calls.push(Checkpoint);
    round(&mut calls, &ids[..4], 2);
    calls.push(Remove(8));
    calls.push(Checkpoint);
    round(&mut calls, &ids[4..7], 1);
    calls
}

/// The scripted run with checkpoints written in parts, crashed at every
/// durable operation (between parts, and tearing one): every group keeps
/// what it was told is durable, and a checkpoint cut short is ignored.
#[test]
fn every_crash_point_of_a_run_with_checkpoints_in_parts_keeps_every_group_s_durable_writes() {
    MAX_RECORD.set(Some(SMALL_RECORD));
    let calls = many_small_groups();
    let total = {
        let root = temp();
        let faults = FaultInjector::new();
        let ok = run_until_crash(&root.path().join("log"), &faults, &calls);
        let stats = LAST_STATS.take().expect("a clean run");
        assert!(stats.checkpoint_parts >= 4, "checkpoints in parts: {stats:?}");
        assert!(stats.compactions >= 2, "{stats:?}");
        let wal = SharedWal::open(root.path().join("log")).unwrap();
        for (id, want) in &ok {
            let got = if wal.contains(*id) { Some(image(&wal.group(*id).unwrap())) } else { None };
            assert_eq!(vec![got], *want, "a clean run recovers group {id} exactly");
        }
        faults.operations()
    };
    for op in 0..total {
        crash_and_check(&calls, op);
    }
}

/// The scripted run really exercises compaction by the amortized rule
/// (not only the explicit checkpoint) and spans many segments.
#[test]
fn the_scripted_run_checkpoints_and_compacts() {
    let root = temp();
    let faults = FaultInjector::new();
    run_until_crash(&root.path().join("log"), &faults, &scripted());
    let wal = SharedWal::open(root.path().join("log")).unwrap();
    assert!(wal.recovery_report().records >= 2);
    let head = crate::log::wal::meta::Meta::decode_as(
        &fs::read(root.path().join("log").join(super::inner::SHARED_META.name)).unwrap(),
        super::inner::SHARED_META,
    )
    .unwrap()
    .0
    .head;
    assert!(head > 2 * SEGMENT, "the WAL was compacted (head {head})");
}

/// A random call, resolved against the model into a valid [`Call`].
#[derive(Clone, Debug)]
enum Gen {
    Log(LogGen),
    Submit,
    Sync,
    Persisted,
    Flush,
    Checkpoint,
    Remove,
}

fn gen_call() -> impl proptest::strategy::Strategy<Value = (GroupId, Gen)> {
    use proptest::prelude::*;
    let kind = prop_oneof![
        5 => (1u8..6, any::<bool>(), 0u8..80).prop_map(|(n, bump, len)| Gen::Log(LogGen::Append { n, bump, len })),
        1 => (0u8..6).prop_map(|back| Gen::Log(LogGen::Truncate { back })),
        1 => (0u8..8, any::<bool>()).prop_map(|(ahead, matching)| Gen::Log(LogGen::Snapshot { ahead, matching })),
        1 => (0u8..12, 1u8..100).prop_map(|(ahead, chunk)| Gen::Log(LogGen::Receive { ahead, chunk })),
        1 => proptest::option::of(1u64..4).prop_map(|vote| Gen::Log(LogGen::Hard { vote })),
        4 => Just(Gen::Submit),
        1 => Just(Gen::Sync),
        1 => Just(Gen::Persisted),
        3 => Just(Gen::Flush),
        1 => Just(Gen::Checkpoint),
        1 => Just(Gen::Remove),
    ];
    (1u64..4, kind)
}

/// Resolves random calls into a valid script: a call on a group that does
/// not exist creates it instead; `Persisted` follows a `Submit`.
fn resolve_all(gens: &[(GroupId, Gen)]) -> Vec<Call> {
    let mut logs: BTreeMap<GroupId, MemoryLog> = BTreeMap::new();
    let mut submitted: BTreeMap<GroupId, bool> = BTreeMap::new();
    let mut calls = Vec::new();
    for (id, g) in gens {
        let id = *id;
        match g {
            Gen::Flush => {
                calls.push(Call::Flush);
                continue;
            }
            Gen::Checkpoint => {
                calls.push(Call::Checkpoint);
                continue;
            }
            _ => {}
        }
        let Some(log) = logs.get_mut(&id) else {
            logs.insert(id, MemoryLog::new());
            calls.push(Call::Create(id));
            continue;
        };
        let on = match g {
            Gen::Log(g) => resolve(&*log, g, snapshot_data),
            Gen::Submit => {
                submitted.insert(id, true);
                calls.push(Call::Submit(id));
                continue;
            }
            Gen::Persisted if submitted.get(&id) == Some(&true) => {
                calls.push(Call::Persisted(id));
                continue;
            }
            Gen::Sync | Gen::Persisted => {
                calls.push(Call::Sync(id));
                continue;
            }
            Gen::Remove => {
                logs.remove(&id);
                submitted.remove(&id);
                calls.push(Call::Remove(id));
                continue;
            }
            Gen::Flush | Gen::Checkpoint => continue,
        };
        apply(log, &on).unwrap();
        calls.push(Call::On(id, on));
    }
    calls
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if soak() { 1000 } else { 24 },
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Random multi-group runs crashed at a random durable operation, torn
    /// four ways: every group recovers a state it may have.
    #[test]
    fn random_multi_group_runs_keep_every_group_s_durable_writes(
        gens in proptest::collection::vec(gen_call(), 1..50),
        op in 0u64..300,
    ) {
        crash_and_check(&resolve_all(&gens), op);
    }
}
