//! The final check: every acknowledged write (the last acknowledged value
//! of each key) read back through linearizable reads (`MultiHandle::read`,
//! ReadIndex) of every group, on every node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft_io::multi::GroupId;

use crate::clients::{KeyRecord, Report};
use crate::cluster::{Cluster, IDS};
use crate::kv::{self, Kv};

/// What the check found.
#[derive(Default)]
pub struct Outcome {
    pub keys_checked: u64,
    pub reads: u64,
    pub missing: u64,
    pub unreadable: u64,
    /// The first few problems, for the message.
    pub problems: Vec<String>,
}

type Expected = Vec<(Vec<u8>, KeyRecord)>;

/// Reads every group on every node (with `workers` threads).
pub fn check(cluster: &Cluster, reports: &[Report], workers: usize) -> Outcome {
    let mut by_group: BTreeMap<GroupId, Expected> = BTreeMap::new();
    for r in reports {
        for (slot, rec) in r.keys.iter().enumerate() {
            if rec.acked.is_some() || rec.unknown.is_some() {
                let key = kv::key(r.client, slot);
                by_group.entry(kv::group_of(&key, cluster.groups)).or_default().push((key, *rec));
            }
        }
    }
    let jobs: Vec<(GroupId, usize, Arc<Expected>)> = by_group
        .into_iter()
        .flat_map(|(g, e)| {
            let e = Arc::new(e);
            (0..IDS.len()).map(move |i| (g, i, Arc::clone(&e)))
        })
        .collect();
    let handles = cluster.handles();
    let next = AtomicUsize::new(0);
    let (checked, reads, missing, unreadable) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let problems = std::sync::Mutex::new(Vec::new());
    let note = |p: String| {
        let mut ps = problems.lock().unwrap_or_else(|e| e.into_inner());
        if ps.len() < 10 {
            ps.push(p);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Relaxed);
                    let Some((group, i, expected)) = jobs.get(k) else { break };
                    let Some(Some(h)) = handles.get(*i) else {
                        unreadable.fetch_add(1, Relaxed);
                        note(format!("node {} is down", IDS[*i]));
                        continue;
                    };
                    let keys: Vec<Vec<u8>> = expected.iter().map(|(k, _)| k.clone()).collect();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let values = loop {
                        let keys = keys.clone();
                        let read = h.read(*group, move |kv: &Kv| keys.iter().map(|k| kv.get(k)).collect::<Vec<_>>());
                        match read {
                            Ok(v) => break Some(v),
                            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(10))
                            }
                            Err(e) => {
                                note(format!("group {group} on node {}: read failed: {e}", IDS[*i]));
                                break None;
                            }
                        }
                    };
                    reads.fetch_add(1, Relaxed);
                    let Some(values) = values else {
                        unreadable.fetch_add(1, Relaxed);
                        continue;
                    };
                    for ((key, rec), got) in expected.iter().zip(values) {
                        checked.fetch_add(1, Relaxed);
                        if !present(rec, got.as_ref()) {
                            missing.fetch_add(1, Relaxed);
                            note(format!(
                                "group {group} on node {}: key {} holds {:?}, the last acknowledged write was {:?}",
                                IDS[*i],
                                String::from_utf8_lossy(key),
                                got.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                                rec.acked.map(|s| String::from_utf8_lossy(&kv::value(s)).into_owned()),
                            ));
                        }
                    }
                }
            });
        }
    });
    Outcome {
        keys_checked: checked.into_inner(),
        reads: reads.into_inner(),
        missing: missing.into_inner(),
        unreadable: unreadable.into_inner(),
        problems: problems.into_inner().unwrap_or_else(|e| e.into_inner()),
    }
}

/// Whether `got` is what the key's writes allow: its last acknowledged
/// value, or the one write after it whose outcome is unknown.
fn present(rec: &KeyRecord, got: Option<&Bytes>) -> bool {
    let is = |seq: Option<u64>| match (seq, got) {
        (Some(s), Some(v)) => v.as_ref() == kv::value(s),
        (None, None) => true,
        _ => false,
    };
    is(rec.acked) || (rec.unknown.is_some() && is(rec.unknown))
}
