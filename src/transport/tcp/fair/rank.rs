//! The classes of a full [`FairQueue`](super::FairQueue) ranked by what they
//! hold, so that finding the class furthest over its share looks at the top
//! of a heap instead of visiting every class.
//!
//! * **Order.** A ranking orders the classes by bytes, then items (or by
//!   items, then bytes), ties going to the lowest class: exactly the order
//!   the queue's eviction rule names. The class furthest over its share is
//!   then the top one, if it is over its share at all (being over grows
//!   with the first key), or the next one when the top is the newcomer's.
//! * **Lazy invalidation.** The ranking is a max-heap of entries. Every
//!   change of a class pushes its new entry; an entry that no longer
//!   matches its class (changed since, or gone) is dropped when it reaches
//!   the top, so each entry is looked at a bounded number of times. When
//!   entries outnumber `2 × classes + 16` the heap is rebuilt from the
//!   classes: a change costs amortized O(log classes), a search amortized
//!   O(log classes) too.
//! * **Only while needed.** A ranking is built, from every class, by the
//!   first search of a full queue and dropped when the queue empties, so a
//!   queue that never fills pays nothing for it, and a full one pays the
//!   build once per fill (against the pushes that filled it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Entries a dropped ranking keeps room for (24 bytes each): a queue that
/// fills again soon reuses them, and an emptied one holds little.
const KEPT_ROOM: usize = 1024;

/// Which of a class's two sizes comes first in a ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum By {
    /// Bytes, then items.
    Bytes,
    /// Items, then bytes.
    Items,
}

/// A class's place: its first size, its second, and its id reversed (of two
/// classes of equal sizes, the lower is ranked higher).
type Entry = (usize, usize, Reverse<u64>);

/// The classes ranked by one order; see the [module docs](self).
#[derive(Debug)]
pub(super) struct Ranking {
    by: By,
    heap: BinaryHeap<Entry>,
    /// Whether the ranking is kept up to date (else `heap` is empty).
    kept: bool,
    /// Entries looked at (pushed by a rebuild, or at the top by a search).
    #[cfg(test)]
    pub(super) visits: u64,
}

impl Ranking {
    /// An empty ranking, not kept until [`rebuild`](Self::rebuild).
    pub(super) fn new(by: By) -> Self {
        Self {
            by,
            heap: BinaryHeap::new(),
            kept: false,
            #[cfg(test)]
            visits: 0,
        }
    }

    fn entry(&self, class: u64, items: usize, bytes: usize) -> Entry {
        match self.by {
            By::Bytes => (bytes, items, Reverse(class)),
            By::Items => (items, bytes, Reverse(class)),
        }
    }

    /// Whether the ranking is kept up to date.
    pub(super) fn is_kept(&self) -> bool {
        self.kept
    }

    /// Records that `class` now holds `items` items of `bytes` bytes, if
    /// the ranking is kept. The caller rebuilds it when it
    /// [`outgrew`](Self::outgrew) its classes.
    pub(super) fn note(&mut self, class: u64, items: usize, bytes: usize) {
        if self.kept {
            let entry = self.entry(class, items, bytes);
            self.heap.push(entry);
        }
    }

    /// Whether stale entries outnumber the `live` classes: time to rebuild.
    pub(super) fn outgrew(&self, live: usize) -> bool {
        self.kept && self.heap.len() > 2 * live + 16
    }

    /// Ranks exactly `classes` (id, items, bytes), and keeps the ranking.
    pub(super) fn rebuild(&mut self, classes: impl Iterator<Item = (u64, usize, usize)>) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(classes.map(|(class, items, bytes)| self.entry(class, items, bytes)));
        #[cfg(test)]
        {
            self.visits += entries.len() as u64;
        }
        self.heap = BinaryHeap::from(entries);
        self.kept = true;
    }

    /// Stops keeping the ranking (its queue is empty).
    pub(super) fn drop_all(&mut self) {
        self.kept = false;
        self.heap.clear();
        self.heap.shrink_to(KEPT_ROOM);
    }

    /// The highest ranked class other than `except`, with `current` telling
    /// a class's items and bytes now (`None` for a class gone); stale
    /// entries met on the way are dropped.
    pub(super) fn top(&mut self, except: u64, current: impl Fn(u64) -> Option<(usize, usize)>) -> Option<u64> {
        // The entry of `except`, set aside while the next is looked for.
        let mut aside: Option<Entry> = None;
        let found = loop {
            let Some(&top) = self.heap.peek() else { break None };
            #[cfg(test)]
            {
                self.visits += 1;
            }
            let Reverse(class) = top.2;
            let live = current(class).is_some_and(|(items, bytes)| self.entry(class, items, bytes) == top);
            // A stale entry, or a copy of the one set aside (a class's live
            // entries are all alike: its sizes now), is dropped.
            if !live || aside == Some(top) {
                self.heap.pop();
                continue;
            }
            if class != except {
                break Some(class);
            }
            aside = self.heap.pop();
        };
        if let Some(entry) = aside {
            self.heap.push(entry);
        }
        found
    }
}
