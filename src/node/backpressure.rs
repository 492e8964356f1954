//! Backpressure on proposals (`docs/PROTOCOL.md` §4.5): the bytes a leader
//! appended in its term and has not applied yet, counted by append so that
//! applying a run of entries never has to read their sizes back.

use std::hash::{Hash, Hasher};

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
///
/// The appends counted are `appends[head..]`: an applied one only moves
/// `head`, and the vector drops the applied ones at once, when all are (the
/// common case: a leader applies what it proposed a round ago), or when
/// they are half of it (so a leader that never catches up entirely keeps
/// a bounded vector). A push and a step of `head` cost less than a ring's
/// wrapping, on a path every proposal takes.
#[derive(Clone, Debug, Default)]
pub(super) struct Uncommitted {
    bytes: u64,
    appends: Vec<(Index, u64)>,
    head: usize,
}

/// While some appends are still counted, the applied ones before them are
/// dropped once there are at least this many and they are at least half
/// of the vector (so each is moved at most once, on average).
const KEEP_APPLIED: usize = 64;

impl Uncommitted {
    /// The bytes counted.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The appends counted, oldest first.
    fn counted(&self) -> &[(Index, u64)] {
        &self.appends[self.head..]
    }

    /// Counts an append ending at `last` of `bytes` bytes.
    #[inline]
    pub(super) fn appended(&mut self, last: Index, bytes: u64) {
        debug_assert!(self.appends.last().is_none_or(|&(at, _)| at < last), "appends out of order");
        self.bytes += bytes;
        self.appends.push((last, bytes));
    }

    /// Drops the appends applied through `applied`.
    #[inline]
    pub(super) fn applied(&mut self, applied: Index) {
        while let Some(&(last, bytes)) = self.appends.get(self.head) {
            if last > applied {
                break;
            }
            self.bytes -= bytes;
            self.head += 1;
        }
        if self.head == self.appends.len() {
            self.appends.clear();
            self.head = 0;
        } else if self.head >= KEEP_APPLIED && 2 * self.head >= self.appends.len() {
            self.appends.drain(..self.head);
            self.head = 0;
        }
    }

    /// Forgets every append (a new term, or leadership lost).
    pub(super) fn clear(&mut self) {
        self.bytes = 0;
        self.appends.clear();
        self.head = 0;
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

// Two counts are the same when they count the same appends, whatever
// applied ones either still holds (the model checker compares states).
impl PartialEq for Uncommitted {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes && self.counted() == other.counted()
    }
}

impl Eq for Uncommitted {}

impl Hash for Uncommitted {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.bytes.hash(h);
        self.counted().hash(h);
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

    #[test]
    fn a_count_that_never_drains_keeps_a_bounded_vector() {
        let mut u = Uncommitted::default();
        for i in 1..=100_000u64 {
            u.appended(i, 10);
            // Applied lags five appends behind: never all applied.
            u.applied(i.saturating_sub(5));
            assert_eq!(u.bytes(), 10 * i.min(5), "after append {i}");
        }
        assert!(u.appends.len() <= 2 * super::KEEP_APPLIED + 10, "{} appends kept", u.appends.len());
    }

    #[test]
    fn counts_of_the_same_appends_are_equal_whatever_applied_ones_they_hold() {
        use std::hash::{BuildHasher, RandomState};
        let (mut a, mut b) = (Uncommitted::default(), Uncommitted::default());
        a.appended(1, 5);
        a.appended(2, 7);
        a.applied(1); // holds the applied append 1 until the next drop
        b.appended(2, 7);
        assert_eq!(a, b);
        let s = RandomState::new();
        assert_eq!(s.hash_one(&a), s.hash_one(&b));
        b.appended(3, 1);
        assert_ne!(a, b);
    }
}
