//! Applying committed entries: handing them to the state machine in
//! order, as `Action::Apply` clones or, with `RaftConfig::apply_ranges`, as
//! `Action::ApplyRange` runs the driver reads borrowed
//! (`docs/PROTOCOL.md` §4.6).

use bytes::Bytes;

use super::{Action, RaftNode, emit, observe};
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::types::{Entry, EntryKind, Index, Term};

impl<L: RaftLog> RaftNode<L> {
    /// Lends the committed commands at `first..=last` (after an
    /// [`Action::ApplyRange`], which names such a range) to `f`, in order,
    /// with each entry's index and term; the no-op and configuration entries
    /// in the range are skipped. Call it before the node's next step: a
    /// later step may compact the entries away, and the range is then
    /// refused with [`Error::NotHeld`]. A range past the applied index is
    /// refused with [`Error::NotApplied`]; an empty one (`first > last`)
    /// visits nothing. A refusal changes nothing.
    ///
    /// ```
    /// use raft_io::{Action, Event, RaftConfig, RaftNode};
    ///
    /// let mut node: RaftNode = RaftNode::new(RaftConfig::new(1, [1]).apply_ranges(true)).unwrap();
    /// node.step(Event::Campaign).unwrap();
    /// let mut actions = Vec::new();
    /// node.step_into(Event::ProposeBatch(vec!["a".into(), "b".into()]), &mut actions).unwrap();
    /// let mut applied = Vec::new();
    /// for action in actions.drain(..) {
    ///     if let Action::ApplyRange { first, last } = action {
    ///         node.visit_applied(first, last, |index, _term, command| applied.push((index, command.clone()))).unwrap();
    ///     }
    /// }
    /// assert_eq!(applied, [(2, "a".into()), (3, "b".into())]);
    /// ```
    #[inline]
    pub fn visit_applied(&self, first: Index, last: Index, mut f: impl FnMut(Index, Term, &Bytes)) -> Result<()> {
        // A run the log lends as one slice (most are: the run a step just
        // applied, at the log's end) is read here, inlined into the caller;
        // any other range, and every refusal, out of line.
        if first <= last && last <= self.applied {
            let end = if mutant!(ApplyRangeShort) { last } else { last + 1 };
            if let Some(run) = self.log.entry_run(first, end) {
                visit_commands(run, &mut f);
                return Ok(());
            }
        }
        self.visit_applied_apart(first, last, &mut f)
    }

    /// [`visit_applied`](Self::visit_applied) for a range the log does not
    /// lend as one slice, or refuses.
    #[inline(never)]
    fn visit_applied_apart(&self, first: Index, last: Index, f: &mut dyn FnMut(Index, Term, &Bytes)) -> Result<()> {
        if first > last {
            return Ok(());
        }
        if last > self.applied {
            return Err(Error::NotApplied { first, last, applied: self.applied });
        }
        let first_held = self.log.first_index();
        if first < first_held {
            return Err(Error::NotHeld { first, first_held });
        }
        let end = if mutant!(ApplyRangeShort) { last } else { last + 1 };
        self.log.visit_entries(first, end, &mut |entries: &[Entry]| visit_commands(entries, f))?;
        Ok(())
    }

    /// Turns [`RaftConfig::apply_ranges`](crate::RaftConfig::apply_ranges)
    /// on or off from the next step: for a driver that owns the node it
    /// was handed and carries out every step's actions before the next
    /// (the runtimes).
    #[cfg(feature = "net")]
    pub(crate) fn set_apply_ranges(&mut self, on: bool) {
        self.cfg.apply_ranges = on;
    }

    /// Hands committed entries to the state machine, in order.
    pub(super) fn apply_committed(&mut self) -> Result<()> {
        // A snapshot not restored yet (a restart's, or one received in the
        // asynchronous mode) is restored once it is durable, before any
        // entry after it; nothing below it applies meanwhile (the log no
        // longer holds those entries).
        if self.restore_pending {
            if self.apply_limit() < self.log.snapshot_meta().index {
                return Ok(());
            }
            self.restore_snapshot()?;
        }
        self.apply_entries()?;
        self.maybe_request_snapshot();
        Ok(())
    }

    /// Hands the entries `applied + 1..=apply_limit()` to the state
    /// machine, in order: one [`Action::Apply`] per command (a clone of
    /// it), or, with [`RaftConfig::apply_ranges`](crate::RaftConfig::apply_ranges),
    /// one [`Action::ApplyRange`] per run of commands, broken by
    /// configuration entries (no-ops do not break a run).
    ///
    /// A run known to hold commands only (nothing above `last_control`)
    /// is handed over without reading the log, when no snapshot policy
    /// counts applied bytes; otherwise the entries are read by reference.
    fn apply_entries(&mut self) -> Result<()> {
        let limit = self.apply_limit();
        if self.applied >= limit {
            return Ok(());
        }
        if self.cfg.apply_ranges && self.cfg.snapshot_bytes == 0 && self.last_control <= self.applied {
            let (first, last) = (self.applied + 1, limit);
            self.applied = limit;
            self.uncommitted.applied(limit);
            emit(&mut self.out, || Action::ApplyRange { first, last });
            return Ok(());
        }
        self.read_and_apply(limit)?;
        self.uncommitted.applied(self.applied);
        Ok(())
    }

    /// Applies through `limit`, reading each entry from the log by
    /// reference (`apply_entries`).
    fn read_and_apply(&mut self, limit: Index) -> Result<()> {
        // Bounds what a log lending clones (the trait's default) holds at once.
        const APPLY_CHUNK: u64 = 1024;
        let ranges = self.cfg.apply_ranges;
        // The run of commands not handed over yet, `run_first..=run_last`
        // (none while `run_first` is 0: no entry has index 0). Two plain
        // indexes, not an `Option` pair: the closure writes them one at a
        // time, and reading them back as one wider value would wait for
        // those writes to reach the cache (a store-forwarding stall).
        let (mut run_first, mut run_last): (Index, Index) = (0, 0);
        while self.applied < limit {
            let lo = self.applied + 1;
            let hi = limit.min(self.applied + APPLY_CHUNK) + 1;
            let (log, out) = (&self.log, &mut self.out);
            let (applied, applied_bytes) = (&mut self.applied, &mut self.applied_bytes);
            log.visit_entries(lo, hi, &mut |entries: &[Entry]| {
                for e in entries {
                    *applied = e.index;
                    *applied_bytes += e.size();
                    match e.kind {
                        EntryKind::Normal if ranges => {
                            if run_first == 0 {
                                run_first = e.index;
                            }
                            run_last = e.index;
                        }
                        EntryKind::Normal => {
                            out.push(Action::Apply { index: e.index, term: e.term, command: e.data.clone() });
                        }
                        EntryKind::Noop => {}
                        EntryKind::Config => {
                            if run_first != 0 {
                                let (first, last) = (std::mem::take(&mut run_first), run_last);
                                out.push(Action::ApplyRange { first, last });
                            }
                            if let Ok(membership) = Membership::decode(&e.data) {
                                observe!(
                                    tracing::Level::INFO,
                                    node = self.id,
                                    term = self.term,
                                    index = e.index,
                                    membership = ?membership,
                                    "membership committed"
                                );
                                out.push(Action::MembershipCommitted { index: e.index, membership });
                            }
                        }
                    }
                }
            })?;
            if self.applied < lo {
                // A log that lent nothing for a range it holds: an error,
                // not a loop.
                let last = self.log.last_index();
                return Err(crate::error::StorageError::Unavailable { index: lo, last }.into());
            }
        }
        if run_first != 0 {
            let (first, last) = (run_first, run_last);
            emit(&mut self.out, || Action::ApplyRange { first, last });
        }
        Ok(())
    }
}

/// Hands each command of `entries` to `f` (no-ops and configuration
/// entries are skipped): what [`RaftNode::visit_applied`] lends.
#[inline(always)]
fn visit_commands<F: FnMut(Index, Term, &Bytes) + ?Sized>(entries: &[Entry], f: &mut F) {
    for e in entries.iter().filter(|e| e.kind == EntryKind::Normal) {
        f(e.index, e.term, &e.data);
    }
}
