//! Recycled entry vectors. Every AppendEntries carries a vector of
//! entries that its follower empties into its log and would free, while
//! every leader allocates one per message it sends. Nodes stepped by one
//! thread — a simulator, a benchmark, or a many-groups host whose groups
//! lead here and follow there — hand the emptied vectors to the next
//! append instead: one allocation and one free fewer per message.
//!
//! The pool is per thread (a `thread_local`): the node's behaviour does not
//! depend on it, only where an append's vector comes from. It holds at
//! most [`MAX_POOLED`] vectors of room for at most [`MAX_CAPACITY`]
//! entries each (at most 64 × 128 × 56 B, under half a MiB, per thread).

use std::cell::RefCell;

use crate::types::Entry;

/// Vectors a thread keeps at most.
const MAX_POOLED: usize = 64;
/// Entries a kept vector may have room for (larger ones are freed).
const MAX_CAPACITY: usize = 128;

thread_local! {
    static POOL: RefCell<Vec<Vec<Entry>>> = const { RefCell::new(Vec::new()) };
}

/// An empty vector with room for `n` entries: a recycled one when the
/// thread has one.
#[inline]
pub(super) fn take(n: usize) -> Vec<Entry> {
    let kept = POOL.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop())).ok().flatten();
    match kept {
        Some(mut v) => {
            v.reserve(n);
            v
        }
        None => Vec::with_capacity(n),
    }
}

/// Keeps `v` (emptied) for a later [`take`], unless the thread holds
/// enough already or `v` is large.
#[inline]
pub(super) fn give(mut v: Vec<Entry>) {
    if v.capacity() == 0 || v.capacity() > MAX_CAPACITY {
        return;
    }
    v.clear();
    let _ = POOL.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < MAX_POOLED {
                p.push(v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_vector_is_taken_again_empty_and_large_ones_are_not_kept() {
        let mut v = take(4);
        v.push(Entry::noop(1, 1));
        let at = v.as_ptr();
        give(v);
        let again = take(1);
        assert_eq!(again.as_ptr(), at, "the same allocation");
        assert!(again.is_empty());
        let kept = || POOL.with(|p| p.borrow().len());
        let before = kept();
        give(again);
        assert_eq!(kept(), before + 1);
        give(Vec::with_capacity(MAX_CAPACITY + 1));
        give(Vec::new());
        assert_eq!(kept(), before + 1, "a large vector, or one with no room, is not kept");
        for _ in 0..MAX_POOLED + 10 {
            give(Vec::with_capacity(1));
        }
        assert_eq!(POOL.with(|p| p.borrow().len()), MAX_POOLED);
    }
}
