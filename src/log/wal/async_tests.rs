//! Unit tests of [`WalLog`] in the asynchronous modes (writes submitted,
//! made durable later, deferred or on a sync thread, then reported).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::tests::{append, temp};
use super::*;
use crate::log::conformance;

/// In the deferred asynchronous mode a submitted checkpoint waits for its
/// report before its compaction runs. A `sync` in between (the trait allows
/// it) writes a later checkpoint and compacts to it at once; the earlier
/// checkpoint's report must then not compact "back" to it. It did: the
/// meta file was rewritten with the earlier head, below the segments
/// already cut, the log halted, and the directory no longer opened.
#[test]
fn a_sync_after_an_unreported_checkpoint_does_not_move_the_head_back() {
    use crate::log::WriteToken;
    let snap = |index, term| super::crash_support::meta(index, term);
    let root = temp();
    let opts = || WalOptions::new().segment_size(256);
    let mut log = WalLog::open_with(root.path(), opts()).unwrap();
    append(&mut log, 1, 10);
    log.sync().unwrap();
    log.defer_syncs();
    // C1: a checkpoint, submitted, not reported yet.
    log.install_snapshot(snap(5, 1), Bytes::from_static(b"five")).unwrap();
    assert_eq!(log.submit(WriteToken::new(0, 1)).unwrap(), crate::log::Submitted::Pending);
    // More writes, so that C2 lies segments past C1.
    for _ in 0..10 {
        append(&mut log, 1, 3);
        assert_eq!(log.submit(WriteToken::new(0, 2)).unwrap(), crate::log::Submitted::Pending);
    }
    // C2: a checkpoint made durable (and compacted to) by a plain sync.
    log.install_snapshot(snap(30, 1), Bytes::from_static(b"thirty")).unwrap();
    log.sync().unwrap();
    let last = log.last_index();
    let persisted = log.persisted(WriteToken::new(0, 2));
    drop(log);

    let reopened = WalLog::open_with(root.path(), opts());
    assert!(
        persisted.is_ok() && reopened.is_ok(),
        "reporting the earlier writes durable: {persisted:?}; reopening: {:?}",
        reopened.as_ref().err()
    );
    let log = reopened.unwrap();
    assert_eq!((log.snapshot_meta().index, log.last_index()), (30, last));
}

#[test]
fn conforms_in_the_asynchronous_modes() {
    let root = temp();
    let n = AtomicU64::new(0);
    conformance::run_all(|| {
        let dir = root.path().join(n.fetch_add(1, Ordering::Relaxed).to_string());
        let mut log = WalLog::open(dir).unwrap();
        log.defer_syncs();
        log
    });
    conformance::run_all(|| {
        let dir = root.path().join(n.fetch_add(1, Ordering::Relaxed).to_string());
        let mut log = WalLog::open(dir).unwrap();
        log.start_sync_thread(|_| {}).unwrap();
        log
    });
}

/// Writes submitted to the sync thread faster than it syncs share fsyncs;
/// the notifier gets the latest token; everything reported survives.
#[test]
fn the_sync_thread_reports_writes_durable_and_shares_fsyncs() {
    use crate::log::WriteToken;
    use std::sync::mpsc;
    let root = temp();
    let dir = root.path().join("log");
    let mut log = WalLog::open(&dir).unwrap();
    let (tx, rx) = mpsc::channel::<WriteToken>();
    let tx = std::sync::Mutex::new(tx);
    log.start_sync_thread(move |t| {
        let _ = tx.lock().map(|tx| tx.send(t));
    })
    .unwrap();
    let syncs_before = log.stats().syncs;
    const N: u64 = 300;
    for seq in 1..=N {
        log.append(&mut vec![Entry::normal(1, seq, Bytes::from(vec![seq as u8; 16]))]).unwrap();
        assert_eq!(log.submit(WriteToken::new(0, seq)).unwrap(), crate::log::Submitted::Pending);
    }
    let mut latest = 0;
    let mut reports = 0;
    while latest < N {
        let t = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the sync thread reports");
        assert!(t.seq() > latest, "reports only move forward");
        latest = t.seq();
        reports += 1;
        log.persisted(t).unwrap();
    }
    let syncs = log.stats().syncs - syncs_before;
    println!("{N} writes: {syncs} fsyncs, {reports} reports");
    assert!(syncs <= N && reports as u64 == syncs.min(reports as u64));
    drop(log);
    let log = WalLog::open(&dir).unwrap();
    assert_eq!(log.last_index(), N);
}

/// A sync that fails on the sync thread halts the log when the failed
/// write is reported.
#[test]
fn a_failed_sync_on_the_sync_thread_halts_the_log() {
    use crate::log::WriteToken;
    use std::sync::mpsc;
    let root = temp();
    let faults = FaultInjector::new();
    let mut log = WalLog::open_with(root.path().join("log"), WalOptions::new().fault_injector(faults.clone())).unwrap();
    let (tx, rx) = mpsc::channel::<WriteToken>();
    let tx = std::sync::Mutex::new(tx);
    log.start_sync_thread(move |t| {
        let _ = tx.lock().map(|tx| tx.send(t));
    })
    .unwrap();
    faults.fail_next_sync();
    log.append(&mut vec![Entry::normal(1, 1, Bytes::from_static(b"x"))]).unwrap();
    let token = WriteToken::new(0, 1);
    log.submit(token).unwrap();
    let reported = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("reported even when it failed");
    assert_eq!(reported, token);
    let err = log.persisted(token).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(matches!(log.sync(), Err(StorageError::Halted { .. })));
}
