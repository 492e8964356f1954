//! Every persistence decision of the node, in one place: which mutations
//! make the step dirty, and the single sync at the end of a step.
//!
//! Rules:
//! * appends, truncations and snapshot installs make the step dirty;
//! * a change of term or vote makes the step dirty (both must be durable
//!   before any message that depends on them leaves the node);
//! * a change of the commit index alone is written to the log but does not
//!   force a sync (losing it in a crash only delays re-applying);
//! * a step appends at most [`RaftLog::max_step_bytes`] of entries, so
//!   its writes always fit what one sync can make durable;
//! * a dirty step calls [`RaftLog::sync`] exactly once, after handling its
//!   event and before returning any action; a clean step never calls it;
//! * in the asynchronous mode a dirty step calls [`RaftLog::submit`]
//!   instead, and durability.rs holds back what must wait for the write.

use bytes::Bytes;

use super::{Action, RaftNode};
use crate::error::Result;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::types::{Entry, EntryKind, HardState, Index, SnapshotMeta};

impl<L: RaftLog> RaftNode<L> {
    /// Appends entries (draining `entries`), tracking configuration entries.
    pub(super) fn append_log(&mut self, entries: &mut Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One pass over the control entries (no-ops and configurations):
        // the last one's index, and each configuration into the history
        // (marked before the first goes in).
        let mut before = None;
        for e in entries.iter().filter(|e| e.kind != EntryKind::Normal) {
            let config = e.kind == EntryKind::Config;
            if !(config && mutant!(UntrackedConfigEntry)) {
                self.last_control = e.index;
            }
            if config {
                before.get_or_insert_with(|| self.config_mark());
                // Validated by the caller (leader-built or checked on receipt).
                if let Ok(m) = Membership::decode(&e.data) {
                    self.configs.push(e.index, m);
                }
            }
        }
        if self.log.max_step_bytes() != u64::MAX {
            self.step_bytes += entries.iter().map(Entry::size).sum::<u64>();
        }
        self.log.append(entries)?;
        self.must_sync = true;
        if let Some(before) = before {
            self.on_config_maybe_changed(before);
        }
        Ok(())
    }

    /// Appends one command entry (a proposal of one): what
    /// [`append_log`](Self::append_log) does for it, through
    /// [`RaftLog::append_one`].
    #[inline]
    pub(super) fn append_command_entry(&mut self, entry: Entry) -> Result<()> {
        debug_assert_eq!(entry.kind, EntryKind::Normal);
        if self.log.max_step_bytes() != u64::MAX {
            self.step_bytes += entry.size();
        }
        self.log.append_one(entry, &mut self.scratch)?;
        self.must_sync = true;
        Ok(())
    }

    /// Entry bytes this step may still append within the log's
    /// [`RaftLog::max_step_bytes`].
    pub(super) fn step_room(&self) -> u64 {
        self.log.max_step_bytes().saturating_sub(self.step_bytes)
    }

    /// Removes the log suffix from `from`, rolling back any configuration
    /// entry in it.
    pub(super) fn truncate_log(&mut self, from: Index) -> Result<()> {
        debug_assert!(from > self.commit, "never truncate committed entries");
        let before = self.config_mark();
        self.log.truncate(from)?;
        self.last_control = self.last_control.min(from - 1);
        self.durability.cap(from - 1);
        self.configs.truncate(from);
        self.must_sync = true;
        self.on_config_maybe_changed(before);
        Ok(())
    }

    /// Installs a snapshot in the log (compaction or a snapshot received
    /// from the leader) and recomputes the configuration.
    pub(super) fn install_snapshot_log(&mut self, meta: SnapshotMeta, data: Option<Bytes>) -> Result<()> {
        let before = self.config_mark();
        // Entries the snapshot drops may have been durable; what matches
        // the committed history (through the commit index) stays so.
        if self.log.term(meta.index) != Some(meta.term) {
            self.durability.cap(self.commit);
        }
        match data {
            Some(data) => self.log.install_snapshot(meta.clone(), data)?,
            None => self.log.finish_snapshot_receive()?,
        }
        self.configs.install_snapshot(&meta, self.log.last_index());
        self.last_control = self.last_control.min(self.log.last_index());
        self.must_sync = true;
        self.on_config_maybe_changed(before);
        Ok(())
    }

    /// What identifies the configuration in effect: its index and contents
    /// (a snapshot can replace a configuration entry by another at the same
    /// index).
    fn config_mark(&self) -> (Index, Membership) {
        (self.configs.effective_index(), self.configs.effective().clone())
    }

    fn on_config_maybe_changed(&mut self, before: (Index, Membership)) {
        if self.configs.effective_index() == before.0 && *self.configs.effective() == before.1 {
            return;
        }
        self.out.push(Action::MembershipChanged {
            index: self.configs.effective_index(),
            membership: self.configs.effective().clone(),
        });
        self.on_membership_changed();
    }

    /// The end of every step: write the hard state if it changed and sync
    /// once if anything durable changed.
    #[inline(always)]
    pub(super) fn persist(&mut self) -> Result<()> {
        let hs = HardState { term: self.term, vote: self.vote, commit: self.commit };
        let old = self.log.hard_state();
        if hs != old {
            if hs.term != old.term || hs.vote != old.vote {
                self.must_sync = true;
            }
            self.log.set_hard_state(hs)?;
        }
        if self.must_sync {
            self.counters.log_syncs += 1;
            if self.cfg.async_storage {
                self.submit_write()?;
            } else {
                self.log.sync()?;
            }
            self.must_sync = false;
        }
        Ok(())
    }
}
