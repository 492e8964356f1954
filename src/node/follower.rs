//! Log replication, the follower's side: an AppendEntries checked, fitted
//! to what the step can still write, matched against the log (the
//! entries through the commit index skipped, the first conflict
//! truncated) and answered, with the conflict hint on a refusal.

use super::{RaftNode, entry_pool, observe};
use crate::error::Result;
use crate::log::RaftLog;
use crate::message::{AppendEntries, AppendResponse, MessageBody};
use crate::types::{Entry, Index, NodeId, Term};

/// What of an append's entries a follower's step takes (`fit_step`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Every entry.
    All,
    /// A prefix: the step's room ran out.
    Prefix,
    /// None, ever: the first is larger than any one step of the log.
    Never,
}

impl<L: RaftLog> RaftNode<L> {
    /// The follower's side of AppendEntries.
    pub(super) fn on_append(&mut self, from: NodeId, a: AppendEntries) -> Result<()> {
        if !self.valid_append(&a) {
            self.drop_message();
            return Ok(());
        }
        if self.configs.unknown_at(a.prev_log_index) {
            // A joining node that knows no configuration yet: it needs the
            // leader's snapshot, which carries the configuration at its
            // index, before any entry (PROTOCOL.md, "Joining").
            self.reply_append(from, false, a.prev_log_index, 0, 0);
            return Ok(());
        }
        let AppendEntries { prev_log_index, prev_log_term, leader_commit, mut entries } = a;
        let result = self.append_entries(from, prev_log_index, prev_log_term, leader_commit, &mut entries);
        // Emptied into the log (or refused): the next append sent from
        // this thread takes it.
        entry_pool::give(entries);
        // A fresh `Ok` rather than `result` moved whole: reading the whole
        // result back right after the callee wrote only its tag would stall
        // the step (a load the store buffer cannot forward).
        result?;
        Ok(())
    }

    /// The checked AppendEntries's entries, from `on_append`.
    fn append_entries(
        &mut self,
        from: NodeId,
        mut prev_log_index: Index,
        prev_log_term: Term,
        leader_commit: Index,
        entries: &mut Vec<Entry>,
    ) -> Result<()> {
        let fit = self.fit_step(entries);
        if fit == Fit::Never {
            self.refuse_oversized_entry(from, entries);
            return Ok(());
        }
        let last_new = prev_log_index + entries.len() as u64;
        // A prefix only: the leader is asked for the rest at once.
        let resume = |held: Index| if fit == Fit::Prefix { held + 1 } else { 0 };
        if prev_log_index < self.commit {
            // Entries through our commit index are committed, so they match
            // the leader's: skip them. A message that disagrees with a
            // committed entry we still hold comes from a node that does not
            // hold the committed log: drop it whole.
            let overlap = (self.commit - prev_log_index).min(entries.len() as u64) as usize;
            let disagrees = |index: Index, term: Term| self.log.term(index).is_some_and(|t| t != term);
            if disagrees(prev_log_index, prev_log_term) || entries[..overlap].iter().any(|e| disagrees(e.index, e.term))
            {
                self.drop_message();
                return Ok(());
            }
            if last_new <= self.commit {
                let commit = self.commit;
                self.reply_append(from, true, commit, 0, resume(commit));
                return Ok(());
            }
            entries.drain(..(self.commit - prev_log_index) as usize);
            prev_log_index = self.commit;
        } else if self.log.term(prev_log_index) != Some(prev_log_term)
            && !(mutant!(SkipConsistencyCheck) && prev_log_index <= self.log.last_index())
        {
            self.reject_append(from, prev_log_index);
            return Ok(());
        }
        debug_assert!(entries.first().is_none_or(|e| e.index == prev_log_index + 1));
        // Skip what we already hold; truncate from the first conflict.
        // Entries past our last index are new: no term to look up.
        let last = self.log.last_index();
        let same = entries.iter().take_while(|e| e.index <= last && self.log.term(e.index) == Some(e.term)).count();
        if same < entries.len() {
            let conflict = entries[same].index;
            if conflict <= self.commit {
                self.drop_message();
                return Ok(());
            }
            if conflict <= self.log.last_index() {
                self.truncate_log(conflict)?;
            }
            if same > 0 {
                entries.drain(..same);
            }
            self.append_log(entries)?;
        }
        if leader_commit > self.commit {
            self.commit = leader_commit.min(last_new);
        }
        self.reply_append(from, true, last_new, 0, resume(last_new));
        Ok(())
    }

    /// An append whose first new entry is larger than anything this node's
    /// log writes in one step (`RaftLog::max_step_bytes`): the leader's
    /// `max_message_bytes` is above this node's log limit (members
    /// configured apart). No step can take it, and acknowledging what this
    /// node holds would only have it sent again: dropped and counted, and
    /// reported (feature `tracing`), until the limits agree.
    #[cold]
    fn refuse_oversized_entry(&mut self, from: NodeId, entries: &[Entry]) {
        self.drop_message();
        let (index, bytes) = entries.first().map_or((0, 0), |e| (e.index, e.size()));
        observe!(
            tracing::Level::WARN,
            node = self.id,
            term = self.term,
            leader = from,
            index,
            bytes,
            max_step_bytes = self.log.max_step_bytes(),
            "entry larger than one write of this node's log: refused (max_message_bytes above the log's limit?)"
        );
        let _ = (from, index, bytes);
    }

    /// Keeps the longest prefix of `entries` the step can still append
    /// (the leader is asked for the rest at once). Entries this node
    /// already holds are counted too: a conservative bound, except that a
    /// first entry it holds — or committed, even if compacted since — is
    /// always kept (it costs no write). A first entry it does not hold and
    /// that no step could take is refused whole. So a prefix is empty only
    /// in a step that appended already, and the leader's resend of the
    /// rest, in a step of its own, makes progress.
    fn fit_step(&self, entries: &mut Vec<Entry>) -> Fit {
        let max = self.log.max_step_bytes();
        if max == u64::MAX {
            return Fit::All;
        }
        let room = self.step_room();
        let mut bytes = 0u64;
        let mut keep = entries
            .iter()
            .position(|e| {
                bytes = bytes.saturating_add(e.size());
                bytes > room
            })
            .unwrap_or(entries.len());
        if keep == 0 {
            match entries.first() {
                // Held (committed ones perhaps compacted away): no write.
                Some(e) if e.index <= self.commit || self.log.term(e.index) == Some(e.term) => keep = 1,
                Some(e) if e.size() > max => return Fit::Never,
                _ => {}
            }
        }
        if keep == entries.len() {
            return Fit::All;
        }
        entries.truncate(keep);
        Fit::Prefix
    }

    /// Shape checks on an AppendEntries from outside: contiguous indexes
    /// after `prev_log_index`, terms non-decreasing and within the sender's
    /// term, known kinds, decodable configurations.
    fn valid_append(&self, a: &AppendEntries) -> bool {
        crate::log::check_run(a.prev_log_index, a.prev_log_term, self.term, &a.entries).is_ok()
            && a.prev_log_term <= self.term
            && (a.prev_log_term > 0 || a.prev_log_index == 0)
    }

    fn reject_append(&mut self, from: NodeId, prev: Index) {
        let last = self.log.last_index();
        let (hint_term, hint_index) = if prev > last {
            (0, last + 1)
        } else {
            // prev >= commit >= snapshot index, so its term is known.
            let t = self.log.term(prev).unwrap_or(0);
            let first_of_term = self.first_index_of_term(t, prev);
            (t, first_of_term.max(self.commit + 1))
        };
        self.reply_append(from, false, prev, hint_term, hint_index);
    }

    /// The first index of the run of `term` that ends at `at`.
    fn first_index_of_term(&self, term: Term, at: Index) -> Index {
        let floor = self.log.first_index();
        // Binary search for the smallest index in [floor, at] with term(i) >= term.
        let (mut lo, mut hi) = (floor, at);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.log.term(mid).is_some_and(|t| t >= term) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    fn reply_append(&mut self, to: NodeId, success: bool, index: Index, hint_term: Term, hint_index: Index) {
        self.send_built(to, self.term, || {
            MessageBody::AppendResponse(AppendResponse { success, index, hint_term, hint_index })
        });
    }
}
