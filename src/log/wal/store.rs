//! [`Store`]: the [`WalStore`] a `WalLog` hands to wal-db. It wraps a
//! [`SegmentedStore`] and adds what wal-db lacks:
//!
//! * **An authoritative head.** `head()` answers from our own meta file, not
//!   from wal-db's `head` marker, so a lost or torn marker can never make
//!   recovery start at offset 0 and cut every segment (pitfall 1).
//! * **No writes during open.** While the log is opening, a truncation of a
//!   torn tail requested by wal-db's recovery scan is only remembered; it is
//!   carried out after every other check passed, so a refused open leaves
//!   the files as they were.
//! * **Read-ahead during open**, so the two recovery passes (wal-db's scan
//!   and our replay) cost a few large reads instead of two small reads per
//!   record.
//! * **Fault injection** for crash tests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

use wal_db::{SegmentedStore, WalError, WalStore};

use super::faults::{FaultInjector, Hit};

/// The read-ahead window's size (smaller in unit tests, so that a record
/// longer than the window is cheap to build).
const READ_AHEAD: usize = if cfg!(test) { 256 << 10 } else { 4 << 20 };

/// State shared between the [`Store`] inside wal-db and the `WalLog`.
#[derive(Debug)]
pub(crate) struct Shared {
    head: AtomicU64,
    opening: AtomicBool,
    cut: Mutex<Option<u64>>,
    window: Mutex<Window>,
    pub(crate) faults: Option<FaultInjector>,
    /// Bytes read into the window during open (for tests of its bound).
    #[cfg(test)]
    pub(crate) refilled: AtomicU64,
}

#[derive(Debug, Default)]
struct Window {
    start: u64,
    data: Vec<u8>,
}

impl Shared {
    pub(crate) fn new(head: u64, faults: Option<FaultInjector>) -> Arc<Self> {
        Arc::new(Self {
            head: AtomicU64::new(head),
            opening: AtomicBool::new(true),
            cut: Mutex::new(None),
            window: Mutex::new(Window::default()),
            faults,
            #[cfg(test)]
            refilled: AtomicU64::new(0),
        })
    }

    /// Ends the open phase: reads go to the files again, and the tail cut
    /// wal-db asked for (if any) is returned for the caller to make.
    pub(crate) fn finish_open(&self) -> Option<u64> {
        self.opening.store(false, Ordering::Release);
        *lock(&self.window) = Window::default();
        lock(&self.cut).take()
    }

    /// Makes the WAL end at `offset` for the rest of the open (reads of
    /// the length see it), and has it cut there like a torn tail that
    /// wal-db found.
    pub(crate) fn cut_at(&self, offset: u64) {
        *lock(&self.cut) = Some(offset);
    }

    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Store {
    seg: Arc<SegmentedStore>,
    shared: Arc<Shared>,
}

impl Store {
    pub(crate) fn new(seg: Arc<SegmentedStore>, shared: Arc<Shared>) -> Self {
        Self { seg, shared }
    }

    fn fault(&self, sync: bool, what: &str) -> Result<(), Hit> {
        match &self.shared.faults {
            None => Ok(()),
            Some(f) if sync => f.hit_sync(what),
            Some(f) => f.hit(what),
        }
    }

    fn read_ahead(&self, offset: u64, buf: &mut [u8]) -> wal_db::Result<usize> {
        if buf.len() > READ_AHEAD / 2 {
            return self.seg.read_at(offset, buf);
        }
        let mut w = lock(&self.shared.window);
        let end = offset.saturating_add(buf.len() as u64);
        let covered = offset >= w.start && end <= w.start + w.data.len() as u64;
        if !covered && offset < w.start {
            // Behind the window: read directly. The window only moves
            // forward, by at least half its size per refill, so however a
            // scan jumps about (wal-db's checks a torn record's claimed end
            // far ahead of each candidate start, and a client's command can
            // hold a candidate every few bytes), refills read each byte of
            // the log at most twice and every other read is one small read.
            drop(w);
            return self.seg.read_at(offset, buf);
        }
        if !covered {
            w.data.resize(READ_AHEAD, 0);
            w.start = offset;
            let n = self.seg.read_at(offset, &mut w.data)?;
            w.data.truncate(n);
            #[cfg(test)]
            self.shared.refilled.fetch_add(n as u64, Ordering::Relaxed);
        }
        let from = (offset - w.start) as usize;
        let n = buf.len().min(w.data.len().saturating_sub(from));
        buf[..n].copy_from_slice(&w.data[from..from + n]);
        Ok(n)
    }
}

fn injected(hit: Hit, what: &'static str) -> WalError {
    WalError::Io { context: what, source: hit.error(what) }
}

impl WalStore for Store {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> wal_db::Result<()> {
        let hit = self.fault(false, "writing a record");
        if hit == Err(Hit::Fail) {
            return Err(injected(Hit::Fail, "writing a record"));
        }
        // At the crash point the write still lands in the page cache, so a
        // test can tear it at any byte afterwards.
        self.seg.write_at(offset, bytes)?;
        if let Some(f) = &self.shared.faults {
            f.wal_written(offset + bytes.len() as u64);
        }
        hit.map_err(|h| injected(h, "writing a record"))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> wal_db::Result<usize> {
        if self.shared.opening.load(Ordering::Acquire) {
            return self.read_ahead(offset, buf);
        }
        self.seg.read_at(offset, buf)
    }

    fn truncate(&self, len: u64) -> wal_db::Result<()> {
        if self.shared.opening.load(Ordering::Acquire) {
            *lock(&self.shared.cut) = Some(len);
            return Ok(());
        }
        self.fault(false, "truncating the log").map_err(|h| injected(h, "truncating the log"))?;
        self.seg.truncate(len)?;
        if let Some(f) = &self.shared.faults {
            f.wal_truncated(len);
        }
        Ok(())
    }

    fn sync(&self) -> wal_db::Result<()> {
        self.fault(true, "syncing the log").map_err(|h| injected(h, "syncing the log"))?;
        self.seg.sync()?;
        if let Some(f) = &self.shared.faults {
            f.wal_synced();
        }
        Ok(())
    }

    fn len(&self) -> wal_db::Result<u64> {
        let len = self.seg.len()?;
        Ok(match *lock(&self.shared.cut) {
            Some(cut) => len.min(cut),
            None => len,
        })
    }

    fn head(&self) -> wal_db::Result<u64> {
        Ok(self.shared.head())
    }

    fn truncate_before(&self, offset: u64) -> wal_db::Result<u64> {
        self.fault(false, "dropping the log prefix").map_err(|h| injected(h, "dropping the log prefix"))?;
        let head = self.seg.truncate_before(offset)?;
        self.shared.head.store(head, Ordering::Release);
        Ok(head)
    }
}
