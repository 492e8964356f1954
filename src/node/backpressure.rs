//! Backpressure on proposals (`docs/PROTOCOL.md` §4.5): the bytes a leader
//! appended in its term and has not applied yet, counted by append so that
//! applying a run of entries never has to read their sizes back.

use std::collections::VecDeque;

use super::RaftNode;
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::types::Index;

/// A leader's uncommitted bytes: each append of its term not applied yet,
/// as its last index and its size (the sum of [`Entry::size`] over its
/// entries), oldest first, and their total.
///
/// An append leaves the count once its last entry is applied, so a batch
/// applied in part is still counted whole: the count never falls below the
/// bytes of the entries not applied (a limit is never passed because of
/// it), and a leader with nothing left to apply counts nothing.
///
/// [`Entry::size`]: crate::Entry::size
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Uncommitted {
    bytes: u64,
    appends: VecDeque<(Index, u64)>,
}

impl Uncommitted {
    /// The bytes counted.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Counts an append ending at `last` of `bytes` bytes.
    #[inline]
    pub(super) fn appended(&mut self, last: Index, bytes: u64) {
        debug_assert!(self.appends.back().is_none_or(|&(at, _)| at < last), "appends out of order");
        self.bytes += bytes;
        self.appends.push_back((last, bytes));
    }

    /// Drops the appends applied through `applied`.
    #[inline]
    pub(super) fn applied(&mut self, applied: Index) {
        while let Some(&(last, bytes)) = self.appends.front() {
            if last > applied {
                break;
            }
            self.bytes -= bytes;
            self.appends.pop_front();
        }
    }

    /// Forgets every append (a new term, or leadership lost).
    pub(super) fn clear(&mut self) {
        self.bytes = 0;
        self.appends.clear();
    }

    /// A new leader's count: its no-op at `index`, of `bytes` bytes, alone,
    /// with room for `room` appends (kept from term to term), so that a
    /// leader whose appends in flight stay within it never allocates here.
    pub(super) fn start_term(&mut self, index: Index, bytes: u64, room: usize) {
        self.clear();
        self.appends.reserve(room);
        self.appended(index, bytes);
    }
}

impl<L: RaftLog> RaftNode<L> {
    /// Backpressure: refuse `bytes` more if the uncommitted total would pass
    /// the limit. A leader with nothing uncommitted always accepts, so one
    /// large batch cannot wedge it.
    pub(super) fn check_uncommitted(&self, bytes: u64) -> Result<()> {
        let limit = self.cfg.max_uncommitted_bytes;
        let uncommitted = self.uncommitted.bytes();
        if uncommitted > 0 && uncommitted.saturating_add(bytes) > limit {
            return Err(Error::Busy { uncommitted, proposed: bytes, limit });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Uncommitted;

    #[test]
    fn an_append_leaves_the_count_once_its_last_entry_is_applied() {
        let mut u = Uncommitted::default();
        u.appended(3, 30);
        u.appended(5, 20);
        u.applied(2);
        assert_eq!(u.bytes(), 50, "nothing of the first append applied");
        u.applied(4);
        assert_eq!(u.bytes(), 20, "the second append, applied in part, counts whole");
        u.applied(5);
        assert_eq!(u.bytes(), 0);
        u.appended(6, 10);
        u.clear();
        assert_eq!(u.bytes(), 0);
        u.applied(9);
        assert_eq!(u.bytes(), 0);
        u.start_term(10, 24, 8);
        assert_eq!(u.bytes(), 24);
        assert!(u.appends.capacity() >= 8);
    }
}
