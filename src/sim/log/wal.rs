//! [`SimWal`]: a simulated node's log on a real [`WalLog`] in a temporary
//! directory (the simulator's durable mode, features `sim` and
//! `persistence`).
//!
//! A crash drops the `WalLog` without closing it, throws away every WAL
//! byte it wrote but did not sync (keeping a random prefix of them, which
//! tears the last write at any byte), and reopens the directory: the node
//! restarts from exactly what recovery finds on disk. Between steps nothing
//! is unsynced (a step syncs what it wrote), so a torn write needs a crash
//! in the middle of a step; [`SimWal::arm_crash`] arranges one at one of
//! the node's next durable operations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StorageError;
use crate::log::WalOptions;
use crate::log::wal::{FaultInjector, WalLog};
use crate::rng::{Rng, mix};
use crate::types::NodeId;

/// WAL segment size in the simulator: small, so long runs rotate and
/// compact segments.
const SEGMENT: u64 = 64 << 10;

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulated node's [`WalLog`], its [`FaultInjector`] and its directory
/// (under [`std::env::temp_dir`], removed when the cluster is dropped).
#[derive(Debug)]
pub struct SimWal {
    log: WalLog,
    faults: FaultInjector,
    dir: TempDir,
    rng: Rng,
    node: NodeId,
    seed: u64,
    /// The operation an armed crash will hit.
    armed: Option<u64>,
    crashes: u64,
    torn_writes: u64,
    lost_bytes: u64,
}

impl SimWal {
    /// A fresh log for node `node` of the simulation seeded `seed`.
    pub(crate) fn create(seed: u64, node: NodeId) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("raft-io-sim-{}-{n}-n{node}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = TempDir(path);
        let faults = FaultInjector::new();
        let log = open(&dir.0, &faults).unwrap_or_else(|e| {
            panic!("raft-io simulator: cannot create node {node}'s WalLog in {}: {e}", dir.0.display())
        });
        Self {
            log,
            faults,
            dir,
            rng: Rng::new(mix(seed, 0x7761_6c00 ^ node)),
            node,
            seed,
            armed: None,
            crashes: 0,
            torn_writes: 0,
            lost_bytes: 0,
        }
    }

    /// The log.
    pub fn log(&self) -> &WalLog {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut WalLog {
        &mut self.log
    }

    /// The fault injector every durable operation of the log goes through.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Crashes this log went through.
    pub fn crashes(&self) -> u64 {
        self.crashes
    }

    /// Crashes that tore a write: some but not all of its unsynced bytes
    /// survived.
    pub fn torn_writes(&self) -> u64 {
        self.torn_writes
    }

    /// Unsynced WAL bytes lost in crashes.
    pub fn lost_bytes(&self) -> u64 {
        self.lost_bytes
    }

    /// Makes one of the next three durable operations the crash point: the
    /// WAL write of the node's next writing step, its sync, or the
    /// operation after (a compaction step, or the next step's write).
    pub(crate) fn arm_crash(&mut self) {
        let at = self.faults.operations() + self.rng.range(0, 3);
        self.faults.crash_after(at);
        self.armed = Some(at);
    }

    /// Whether a crash armed by [`Cluster::crash_mid_write`] has yet to
    /// happen (the node has not reached that durable operation).
    ///
    /// [`Cluster::crash_mid_write`]: crate::sim::Cluster::crash_mid_write
    pub fn crash_pending(&self) -> bool {
        self.armed.is_some_and(|at| self.faults.operations() <= at)
    }

    /// Whether an armed crash has happened (the node's step failed on it).
    pub(crate) fn crashed(&self) -> bool {
        self.faults.has_crashed()
    }

    /// What survives a crash now: the log is dropped without closing, the
    /// unsynced WAL bytes are lost except a random prefix, and the
    /// directory is reopened.
    pub(crate) fn crash(self) -> Self {
        let Self { log, faults, dir, mut rng, node, seed, armed: _, crashes, mut torn_writes, mut lost_bytes } = self;
        // A dead process runs no clean close: nothing reaches the disk at
        // the drop (`lose_unsynced` lifts the crash).
        faults.crash_now();
        drop(log);
        let unsynced = faults.unsynced_bytes();
        let keep = rng.range(0, unsynced + 1);
        let kept = faults.lose_unsynced(keep).unwrap_or_else(|e| {
            panic!("raft-io simulator: node {node}: cannot drop the unsynced WAL bytes: {e}\n  seed: {seed}")
        });
        torn_writes += u64::from(kept > 0 && kept < unsynced);
        lost_bytes += unsynced - kept;
        let log = open(&dir.0, &faults).unwrap_or_else(|e| {
            panic!(
                "raft-io simulator: node {node}'s WalLog failed to reopen after a crash \
                 ({kept} of {unsynced} unsynced bytes kept): {e}\n  seed: {seed} (replay: RAFT_IO_SEED={seed})"
            )
        });
        Self { log, faults, dir, rng, node, seed, armed: None, crashes: crashes + 1, torn_writes, lost_bytes }
    }
}

/// What [`SimWal::damage_snapshot`] found.
#[derive(Debug)]
pub(crate) enum Damage {
    /// The log has no snapshot file: nothing was damaged.
    NoFile(SimWal),
    /// A byte of the file was flipped and the reopened log accepted it.
    Accepted(SimWal),
    /// A byte of the file was flipped and the reopened log refused to open
    /// (the directory is gone with the dropped log).
    Refused(StorageError),
}

impl SimWal {
    /// A failing disk: flips one bit of the log's snapshot file (its length
    /// unchanged) while the node is down, then reopens the directory, as
    /// the node's restart would. A log that checks its snapshot refuses to
    /// open.
    pub(crate) fn damage_snapshot(self) -> Damage {
        let Some(path) = snapshot_file(&self.dir.0) else { return Damage::NoFile(self) };
        let Self { log, faults, dir, mut rng, node, seed, armed, crashes, torn_writes, lost_bytes } = self;
        faults.crash_now();
        drop(log);
        if let Err(e) = faults.lose_unsynced(0) {
            panic!("raft-io simulator: node {node}: cannot reset the fault injector: {e}\n  seed: {seed}");
        }
        let flipped = std::fs::read(&path).map(|mut data| {
            if !data.is_empty() {
                let at = rng.range(0, data.len() as u64) as usize;
                data[at] ^= 1 << rng.range(0, 8);
            }
            std::fs::write(&path, data)
        });
        if let Err(e) | Ok(Err(e)) = flipped {
            panic!("raft-io simulator: node {node}: cannot damage {}: {e}\n  seed: {seed}", path.display());
        }
        match open(&dir.0, &faults) {
            Ok(log) => {
                Damage::Accepted(Self { log, faults, dir, rng, node, seed, armed, crashes, torn_writes, lost_bytes })
            }
            Err(e) => Damage::Refused(e),
        }
    }
}

/// The newest snapshot file in `dir`, if any (`snapshot-<id>.snap`).
fn snapshot_file(dir: &Path) -> Option<PathBuf> {
    let names =
        std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned());
    let newest = names.filter(|n| n.starts_with("snapshot-") && n.ends_with(".snap")).max()?;
    Some(dir.join(newest))
}

fn open(dir: &Path, faults: &FaultInjector) -> Result<WalLog, StorageError> {
    WalLog::open_with(dir, WalOptions::new().segment_size(SEGMENT).fault_injector(faults.clone()))
}
