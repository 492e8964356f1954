//! Crash tests on real files. A workload runs against a [`WalLog`] with a
//! [`FaultInjector`] and, call for call, against a [`MemoryLog`], whose
//! `durable()` is the model of what must survive. The injector crashes the
//! log at a chosen durable operation; the unsynced WAL bytes are then lost
//! except for a prefix of any length (a torn last write), and the reopened
//! log must equal the model as of the last successful sync — or, when the
//! crash hit the sync itself, as of that sync.
//!
//! `RAFT_IO_SOAK=1` tears at every byte and runs many more random cases.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;
use wal_db::{SegmentedStore, WalStore};

use super::crash_support::{self, Call, Image, LogGen, SEGMENT, apply, copy_dir, entries, image, keeps, meta, soak};
use super::tests::temp;
use super::*;
use crate::log::MemoryLog;

/// Snapshot data determined by its index and term (a snapshot is a
/// function of the log prefix it covers; `MemoryLog` compares snapshots by
/// their metadata).
fn snapshot_data(index: Index, term: Term) -> Bytes {
    Bytes::from(vec![(index ^ term) as u8; (index * 37 % 500) as usize])
}

fn options(faults: &FaultInjector) -> WalOptions {
    WalOptions::new().segment_size(SEGMENT).fault_injector(faults.clone())
}

/// Runs `calls` until the injected crash; returns the images the log may
/// recover to.
fn run_until_crash(dir: &Path, faults: &FaultInjector, calls: &[Call]) -> Vec<Image> {
    let mut model = MemoryLog::new();
    let mut log = match WalLog::open_with(dir, options(faults)) {
        Ok(log) => log,
        Err(e) => {
            assert!(faults.has_crashed(), "open failed without a crash: {e}");
            return vec![image(&model)];
        }
    };
    for call in calls {
        let before = image(&model.durable());
        apply(&mut model, call).unwrap();
        if let Err(e) = apply(&mut log, call) {
            assert!(faults.has_crashed(), "{call:?} failed without a crash: {e}");
            let mut ok = vec![before];
            if matches!(call, Call::Sync) {
                ok.push(image(&model.durable()));
            }
            return ok;
        }
    }
    vec![image(&model.durable())]
}

/// Crashes a run of `calls` at operation `op`, then checks recovery for
/// every tear point in `tears` (all of `keeps` when `None`).
fn crash_and_check(calls: &[Call], op: u64, tear: Option<u64>) {
    let root = temp();
    let dir = root.path().join("log");
    let faults = FaultInjector::new();
    faults.crash_after(op);
    let ok = run_until_crash(&dir, &faults, calls);
    let (synced, written) = faults.watermarks();
    let unsynced = written.saturating_sub(synced);
    let tears = match tear {
        Some(t) => vec![t.min(unsynced)],
        None => keeps(unsynced),
    };
    for (n, keep) in tears.into_iter().enumerate() {
        let trial = root.path().join(format!("keep-{keep}"));
        copy_dir(&dir, &trial);
        if keep < unsynced {
            let store = SegmentedStore::open(trial.join("wal"), SEGMENT).unwrap();
            store.truncate(synced + keep).unwrap();
        }
        let mut log = WalLog::open_with(&trial, WalOptions::new().segment_size(SEGMENT))
            .unwrap_or_else(|e| panic!("crash at op {op}, {keep} of {unsynced} unsynced bytes kept: {e}"));
        let got = image(&log);
        assert!(
            ok.contains(&got),
            "crash at op {op}, {keep} of {unsynced} unsynced bytes kept:\n got {got:?}\n want one of {ok:?}"
        );
        if n > 0 {
            continue;
        }
        // The recovered log takes writes and survives another reopen.
        let next = log.last_index() + 1;
        let term = log.term(log.last_index()).unwrap_or(0);
        log.append(&mut vec![Entry::normal(term, next, Bytes::from_static(b"after"))]).unwrap();
        log.sync().unwrap();
        drop(log);
        assert_eq!(WalLog::open(&trial).unwrap().last_index(), next);
    }
}

/// A run touching every kind of record: identity, hard state, appends,
/// truncation inside an earlier record, a snapshot with compaction, a
/// streamed snapshot beyond the log, an empty snapshot, records spanning
/// segments.
fn scripted() -> Vec<Call> {
    use Call::*;
    vec![
        Identity(LogIdentity { cluster_id: 1, node_id: 2 }),
        Hard(HardState { term: 1, vote: Some(1), commit: 0 }),
        Append(entries(1, 1, 3, 10)),
        Sync,
        Append(entries(4, 1, 5, 40)),
        Sync,
        Truncate(6),
        Append(entries(6, 2, 2, 10)),
        Hard(HardState { term: 2, vote: Some(2), commit: 5 }),
        Sync,
        Snapshot(meta(7, 2), snapshot_data(7, 2)),
        Sync,
        Append(entries(8, 2, 4, 70)),
        Sync,
        Receive(meta(20, 3), snapshot_data(20, 3), 40),
        Sync,
        Append(entries(21, 3, 3, 5)),
        Sync,
        Truncate(22),
        Append(entries(22, 4, 1, 5)),
        Hard(HardState { term: 4, vote: None, commit: 21 }),
        Sync,
        Snapshot(meta(21, 3), Bytes::new()),
        Sync,
        Append(entries(23, 4, 2, 5)),
        Sync,
    ]
}

#[test]
fn every_crash_point_of_a_scripted_run_recovers_every_synced_write() {
    let calls = scripted();
    let total = {
        let root = temp();
        let faults = FaultInjector::new();
        let ok = run_until_crash(&root.path().join("log"), &faults, &calls);
        let log = WalLog::open(root.path().join("log")).unwrap();
        assert_eq!(vec![image(&log)], ok, "a clean run recovers everything");
        faults.operations()
    };
    assert!(total > 60, "{total} operations");
    for op in 0..total {
        crash_and_check(&calls, op, None);
    }
}

/// A random call valid for `log`'s current state.
#[derive(Clone, Debug)]
enum Gen {
    Log(LogGen),
    Sync,
}

fn gen_call() -> impl Strategy<Value = Gen> {
    prop_oneof![
        4 => (1u8..8, any::<bool>(), 0u8..100).prop_map(|(n, bump, len)| Gen::Log(LogGen::Append { n, bump, len })),
        1 => (0u8..10).prop_map(|back| Gen::Log(LogGen::Truncate { back })),
        1 => (0u8..12, any::<bool>()).prop_map(|(ahead, matching)| Gen::Log(LogGen::Snapshot { ahead, matching })),
        1 => (0u8..20, 1u8..200).prop_map(|(ahead, chunk)| Gen::Log(LogGen::Receive { ahead, chunk })),
        1 => proptest::option::of(1u64..4).prop_map(|vote| Gen::Log(LogGen::Hard { vote })),
        4 => Just(Gen::Sync),
    ]
}

fn resolve(log: &MemoryLog, g: &Gen) -> Call {
    match g {
        Gen::Log(g) => crash_support::resolve(log, g, snapshot_data),
        Gen::Sync => Call::Sync,
    }
}

fn resolve_all(gens: &[Gen]) -> Vec<Call> {
    let mut model = MemoryLog::new();
    let mut calls = vec![Call::Identity(LogIdentity { cluster_id: 3, node_id: 1 })];
    apply(&mut model, &calls[0]).unwrap();
    for g in gens {
        let call = resolve(&model, g);
        apply(&mut model, &call).unwrap();
        calls.push(call);
    }
    calls
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if soak() { 2000 } else { 48 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random runs crashed at a random operation with a random tear
    /// recover exactly what the model says survived.
    #[test]
    fn random_runs_recover_the_durable_model(
        gens in proptest::collection::vec(gen_call(), 1..40),
        op in 0u64..400,
        tear in 0u64..2000,
    ) {
        crash_and_check(&resolve_all(&gens), op, Some(tear));
    }
}

/// A log a crashed process left: several segments behind a compaction, a
/// snapshot file, a torn last record and an orphaned snapshot file.
fn crashed_log(dir: &Path) {
    let mut log = WalLog::open_with(dir, WalOptions::new().segment_size(SEGMENT)).unwrap();
    for _ in 0..10 {
        log.append(&mut entries(log.last_index() + 1, 1, 4, 20)).unwrap();
        log.sync().unwrap();
    }
    let at = log.last_index() - 2;
    log.install_snapshot(meta(at, 1), snapshot_data(at, 1)).unwrap();
    log.sync().unwrap();
    for _ in 0..10 {
        log.append(&mut entries(log.last_index() + 1, 2, 4, 20)).unwrap();
        log.sync().unwrap();
    }
    drop(log);
    let store = SegmentedStore::open(dir.join("wal"), SEGMENT).unwrap();
    let end = store.len().unwrap();
    store.write_at(end, &[0xAB; 9]).unwrap();
    drop(store);
    fs::write(dir.join(snapshot_file::file_name(99)), b"orphan").unwrap();
}

/// Open first fsyncs every segment from the head's to the last, the
/// snapshot file and both directories — what the crashed process may have
/// left unsynced — and only then repairs anything (the torn-tail cut, the
/// removal of orphans).
#[test]
fn open_syncs_what_a_crashed_process_left_before_any_repair() {
    let root = temp();
    let dir = root.path();
    crashed_log(dir);
    let head = super::meta::Meta::decode(&fs::read(dir.join(super::meta::META_FILE)).unwrap()).unwrap().head;
    assert!(head >= 2 * SEGMENT, "the test needs a compacted WAL");
    let mut segments: Vec<(u64, std::path::PathBuf)> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse::<u64>().ok()?, p)))
        .filter(|(index, _)| *index >= head / SEGMENT)
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    let snapshot = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "snap") && !p.ends_with(snapshot_file::file_name(99)))
        .unwrap();

    let faults = FaultInjector::new();
    faults.record_operations();
    let log = WalLog::open_with(dir, options(&faults)).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(log.recovery_report().removed_files, vec![dir.join(snapshot_file::file_name(99))]);

    let ops = faults.recorded();
    let mut expected: Vec<String> = segments.iter().map(|(_, p)| format!("fsync of file {}", p.display())).collect();
    expected.push(format!("fsync of file {}", snapshot.display()));
    expected.push(format!("fsync of directory {}", dir.join("wal").display()));
    expected.push(format!("fsync of directory {}", dir.display()));
    assert_eq!(ops[..expected.len()], expected[..], "the first operations of the open: {ops:#?}");
    let cut = ops.iter().position(|op| op == "cut of a torn tail").unwrap();
    let unlink = ops.iter().position(|op| op.starts_with("unlink")).unwrap();
    assert!(cut >= expected.len() && unlink > cut, "{ops:#?}");
}

/// If those syncs fail (a crash at the first one), nothing is repaired.
#[test]
fn a_failed_sync_at_open_repairs_nothing() {
    let root = temp();
    let dir = root.path();
    crashed_log(dir);
    let before = super::tests::tree(dir);
    let faults = FaultInjector::new();
    faults.record_operations();
    faults.crash_after(0);
    let err = WalLog::open_with(dir, options(&faults)).expect_err("the sync failed");
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert_eq!(faults.recorded().len(), 1);
    assert!(faults.recorded()[0].starts_with("fsync of file"), "{:?}", faults.recorded());
    assert_eq!(super::tests::tree(dir), before, "no repair after a failed sync");
}

/// The asynchronous mode with deferred syncs: each `Sync` of a run is a
/// [`RaftLog::submit`], and every other one is reported at once
/// ([`RaftLog::persisted`]), so a crash finds writes in flight. Returns the
/// images the log may recover to: the last reported write's, or any later
/// submitted one's (their records may have reached the disk unsynced).
fn run_until_crash_async(dir: &Path, faults: &FaultInjector, calls: &[Call]) -> Vec<Image> {
    use crate::log::WriteToken;
    let mut model = MemoryLog::new();
    let mut ok = vec![image(&model)];
    let mut log = match WalLog::open_with(dir, options(faults)) {
        Ok(log) => log,
        Err(e) => {
            assert!(faults.has_crashed(), "open failed without a crash: {e}");
            return ok;
        }
    };
    log.defer_syncs();
    let mut seq = 0;
    for call in calls {
        apply(&mut model, call).unwrap();
        let result = match call {
            Call::Sync => {
                seq += 1;
                model.sync().unwrap();
                ok.push(image(&model.durable()));
                let token = WriteToken::new(0, seq);
                log.submit(token).and_then(|s| {
                    assert_eq!(s, crate::log::Submitted::Pending);
                    if seq % 2 == 0 {
                        log.persisted(token)?;
                        // Reported: nothing before it may be lost any more.
                        ok.drain(..ok.len() - 1);
                    }
                    Ok(())
                })
            }
            other => apply(&mut log, other),
        };
        if let Err(e) = result {
            assert!(faults.has_crashed(), "{call:?} failed without a crash: {e}");
            return ok;
        }
    }
    ok
}

/// [`crash_and_check`] for the asynchronous mode.
fn crash_and_check_async(calls: &[Call], op: u64, tear: u64) {
    let root = temp();
    let dir = root.path().join("log");
    let faults = FaultInjector::new();
    faults.crash_after(op);
    let ok = run_until_crash_async(&dir, &faults, calls);
    if !faults.has_crashed() {
        faults.crash_now();
    }
    let (synced, written) = faults.watermarks();
    let unsynced = written.saturating_sub(synced);
    let keep = tear.min(unsynced);
    let trial = root.path().join("trial");
    copy_dir(&dir, &trial);
    if keep < unsynced {
        let store = SegmentedStore::open(trial.join("wal"), SEGMENT).unwrap();
        store.truncate(synced + keep).unwrap();
    }
    let log = WalLog::open_with(&trial, WalOptions::new().segment_size(SEGMENT))
        .unwrap_or_else(|e| panic!("async: crash at op {op}, {keep} of {unsynced} unsynced bytes kept: {e}"));
    let got = image(&log);
    assert!(
        ok.contains(&got),
        "async: crash at op {op}, {keep} of {unsynced} unsynced bytes kept:\n got {got:?}\n want one of {ok:?}"
    );
}

#[test]
fn every_crash_point_of_a_scripted_run_in_async_mode_keeps_every_reported_write() {
    let calls = scripted();
    let total = {
        let root = temp();
        let faults = FaultInjector::new();
        run_until_crash_async(&root.path().join("log"), &faults, &calls);
        faults.operations()
    };
    assert!(total > 40, "{total} operations");
    for op in 0..total {
        for tear in [0, 5, 1 << 20] {
            crash_and_check_async(&calls, op, tear);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if soak() { 2000 } else { 48 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random runs in the asynchronous mode, crashed at a random operation
    /// with a random tear, recover a write at or after the last reported.
    #[test]
    fn random_async_runs_keep_every_reported_write(
        gens in proptest::collection::vec(gen_call(), 1..40),
        op in 0u64..400,
        tear in 0u64..2000,
    ) {
        crash_and_check_async(&resolve_all(&gens), op, tear);
    }
}
