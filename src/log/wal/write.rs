//! The write path: one record and one sync per step, and compaction after
//! a checkpoint.

use super::meta::WAL_META;
use super::record;
use super::state::SnapData;
use super::{WalLog, fsio, snapshot_file, wal_error, wal_files};

/// A record appended to the WAL, and what must wait until it is durable.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// The WAL's end after the record.
    pub(super) end: u64,
    /// The record's LSN, when it is a checkpoint (the WAL prefix before it
    /// is dropped once it is durable).
    pub(super) checkpoint: Option<u64>,
    /// Whether the record started a new segment (the WAL directory must
    /// be synced with it).
    pub(super) rolled: bool,
    /// Snapshot files the record replaced, deleted once it is durable.
    pub(super) orphans: Vec<u64>,
}
use crate::error::StorageError;

impl WalLog {
    /// Whether the WAL holds so much more than the live entries (dead
    /// records left by truncations, hard-state records) that rewriting the
    /// live entries as a checkpoint pays off: past two segments plus eight
    /// times the live bytes, which keeps the rewrite cost amortized O(1)
    /// per byte written.
    pub(super) fn garbage_due(&self, span: u64) -> bool {
        let limit = self.meta.segment_size.saturating_mul(2).saturating_add(self.state.live_bytes.saturating_mul(8));
        span >= limit && span >= self.garbage_floor
    }

    /// Writes everything changed since the last sync as one record, syncs
    /// it, and compacts when the record is a checkpoint.
    pub(super) fn write_record(&mut self) -> Result<(), StorageError> {
        let written = self.append_record()?;
        self.sync_wal(written.rolled)?;
        self.after_durable(written)
    }

    /// Encodes everything changed since the last record as one record (a
    /// checkpoint when the snapshot advanced or the WAL holds too much
    /// garbage) and appends it to the WAL, unsynced. From here on the
    /// record is the base the next one is encoded against.
    pub(super) fn append_record(&mut self) -> Result<Written, StorageError> {
        let file = match &self.state.snap_data {
            SnapData::File(f) => *f,
            SnapData::Pending(data) => {
                let data = data.clone();
                let id = if data.is_empty() { 0 } else { self.alloc_snapshot_id() };
                let file = snapshot_file::write(&self.dir, id, &data, self.faults())?;
                self.state.snap_data = SnapData::File(file);
                file
            }
        };
        let max = u64::from(self.meta.max_record_size);
        let span = self.wal_bytes();
        let state = &self.state;
        let snapshot_advanced = state.snap_dirty && state.snap.index > self.checkpoint_snap;
        let mut checkpoint = false;
        if snapshot_advanced || self.garbage_due(span) {
            record::encode_checkpoint(
                &mut self.buf,
                state.identity,
                &state.hard,
                &state.snap,
                file,
                state.entries.iter(),
            );
            checkpoint = self.buf.len() as u64 <= max;
            if !checkpoint {
                // Too big to rewrite now: keep the history until the next
                // snapshot, and do not retry on every sync.
                self.checkpoint_snap = state.snap.index;
                self.garbage_floor = span.saturating_mul(2);
            }
        }
        if !checkpoint {
            let from = state.unstable_from();
            let skip = state.offset(from).min(state.entries.len());
            record::encode_step(
                &mut self.buf,
                (state.identity != state.durable_identity).then_some(state.identity).flatten(),
                (state.hard != state.durable_hard).then_some(&state.hard),
                state.snap_dirty.then_some((&state.snap, file)),
                state.entries_dirty.then(|| (from, state.entries.range(skip, state.entries.len()))),
            );
            if self.buf.len() as u64 > max {
                return Err(StorageError::InvalidWrite(format!(
                    "a step record of {} bytes exceeds max_record_size {max}",
                    self.buf.len()
                )));
            }
        }
        let lsn = self.wal.append(&self.buf).map_err(wal_error)?;
        self.stats.records += 1;
        let segment = self.wal.len().saturating_sub(1) / self.meta.segment_size;
        let rolled = segment > self.dir_synced_segment;
        if rolled {
            self.dir_synced_segment = segment;
        }

        let orphans = self.state.take_replaced(file);
        self.state.mark_written(file);
        if checkpoint {
            self.stats.checkpoints += 1;
            self.checkpoint_snap = self.state.snap.index;
            self.garbage_floor = 0;
        }
        Ok(Written { end: self.wal.len(), checkpoint: checkpoint.then(|| lsn.get()), rolled, orphans })
    }

    /// Makes every record appended so far durable: one wal-db sync, and a
    /// sync of the WAL directory when a record started a new segment
    /// (wal-db never fsyncs the directory after creating one).
    pub(super) fn sync_wal(&mut self, rolled: bool) -> Result<(), StorageError> {
        let end = self.wal.len();
        if end <= self.synced_to && !rolled {
            // Nothing appended since the last sync (a write with nothing
            // new, or one a later sync covered): no fsync to make.
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.wal.sync().map_err(wal_error)?;
        self.synced_to = end;
        self.stats.sync_time += started.elapsed();
        self.stats.syncs += 1;
        if rolled {
            fsio::fsync_dir(&self.wal_dir, self.faults())?;
        }
        Ok(())
    }

    /// What waits for a record to be durable: deleting the snapshot files
    /// it replaced, dropping the WAL prefix behind a checkpoint, recording
    /// the synced end after a new segment.
    pub(super) fn after_durable(&mut self, written: Written) -> Result<(), StorageError> {
        for id in written.orphans {
            // A leftover is harmless: the next open removes it.
            fsio::remove_file(&self.dir.join(snapshot_file::file_name(id)), self.faults())?;
        }
        if let Some(head) = written.checkpoint {
            self.compact(head, written.end)?;
        } else if written.rolled {
            // The new segment holds synced records now: record it, so that
            // its loss is told from a torn tail (a compaction records it too).
            self.record_synced_end(written.end)?;
        }
        Ok(())
    }

    /// Records in the meta file that the WAL is synced up to `end`, if it
    /// has grown since that was last recorded. Called only where the WAL is
    /// synced that far: after a record that started a new segment is
    /// durable, and when the log is closed.
    pub(super) fn record_synced_end(&mut self, end: u64) -> Result<(), StorageError> {
        let faults = self.shared.faults.clone();
        wal_files::record_synced_end(&self.dir, &mut self.meta, WAL_META, end, faults.as_ref())
    }

    /// Drops the WAL prefix before the durable checkpoint at `head`; the
    /// WAL is synced through `synced` (the checkpoint's end, or later).
    fn compact(&mut self, head: u64, synced: u64) -> Result<(), StorageError> {
        let faults = self.shared.faults.clone();
        wal_files::compact(
            &self.wal,
            &self.dir,
            &self.wal_dir,
            &mut self.meta,
            WAL_META,
            head,
            synced,
            faults.as_ref(),
        )?;
        self.stats.compactions += 1;
        Ok(())
    }
}
