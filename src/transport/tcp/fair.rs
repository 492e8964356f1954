//! A peer's outbound queue, shared fairly between classes (the groups of a
//! batch connection; one class for a message connection).
//!
//! * **Budget.** The queue holds at most `max_items` items and `max_bytes`
//!   bytes, all classes together.
//! * **Fair share.** When an item does not fit, each class with something
//!   queued (the newcomer's included) is entitled to an equal share of the
//!   budget. If the newcomer's class would exceed its share, the newcomer
//!   is refused: the newest item of the class over its share. Otherwise the
//!   newest items of the class furthest over its share are evicted until
//!   the newcomer fits. A class within its share never loses an item to
//!   another class, so one group's burst cannot push out the heartbeats of
//!   the others.
//! * **Round-robin.** [`FairQueue::take`] takes one item per class in turn
//!   (the classes in the order they became non-empty), so an item waits for
//!   at most one item of each other class: a class with megabytes queued
//!   delays the others by one of its items, not by all of them.

use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
struct Class<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
}

/// What [`FairQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Queued, after evicting this many newer items of a class over its
    /// share.
    Queued { evicted: u64 },
    /// Refused: the budget is spent and the item's class is over its share.
    /// The items evicted before that turned out to be needed are counted.
    Refused { evicted: u64 },
}

/// Items of several classes under one budget; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct FairQueue<T> {
    classes: HashMap<u64, Class<T>>,
    /// The non-empty classes, each once, in round-robin order.
    order: VecDeque<u64>,
    items: usize,
    bytes: usize,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self { classes: HashMap::new(), order: VecDeque::new(), items: 0, bytes: 0 }
    }
}

impl<T> FairQueue<T> {
    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.items
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Queues `item` of `class`, taking `size` bytes of the budget, or
    /// refuses it (see the [module docs](self) for the rule).
    pub(crate) fn push(&mut self, class: u64, item: T, size: usize, max_items: usize, max_bytes: usize) -> Admit {
        let mut evicted = 0;
        loop {
            let items_over = self.items >= max_items;
            let bytes_over = self.bytes.saturating_add(size) > max_bytes;
            if !items_over && !bytes_over {
                break;
            }
            let mine = self.classes.get(&class);
            let active = self.classes.len() + usize::from(mine.is_none());
            let (share_items, share_bytes) = (max_items / active, max_bytes / active);
            let (my_items, my_bytes) = mine.map_or((0, 0), |c| (c.items.len(), c.bytes));
            if my_items + 1 > share_items.max(1) || my_bytes.saturating_add(size) > share_bytes {
                return Admit::Refused { evicted };
            }
            // Within its share while the whole is over budget: some other
            // class is over its own. Evict that class's newest item.
            let victim = self
                .classes
                .iter()
                .filter(|&(&c, _)| c != class)
                .max_by_key(|(_, c)| if items_over { (c.items.len(), c.bytes) } else { (c.bytes, c.items.len()) })
                .map(|(&c, _)| c);
            let Some(victim) = victim else { return Admit::Refused { evicted } };
            if self.pop_newest(victim).is_none() {
                return Admit::Refused { evicted };
            }
            evicted += 1;
        }
        let entry = self.classes.entry(class).or_insert_with(|| Class { items: VecDeque::new(), bytes: 0 });
        if entry.items.is_empty() {
            self.order.push_back(class);
        }
        entry.items.push_back((item, size));
        entry.bytes += size;
        self.items += 1;
        self.bytes += size;
        Admit::Queued { evicted }
    }

    fn pop_newest(&mut self, class: u64) -> Option<(T, usize)> {
        let c = self.classes.get_mut(&class)?;
        let (item, size) = c.items.pop_back()?;
        c.bytes -= size;
        self.items -= 1;
        self.bytes -= size;
        if c.items.is_empty() {
            self.classes.remove(&class);
            self.order.retain(|&k| k != class);
        }
        Some((item, size))
    }

    /// Moves items to `out` (with their sizes), one per class in turn,
    /// until `max_bytes` are taken (at least one item, if any is queued).
    pub(crate) fn take(&mut self, out: &mut Vec<(T, usize)>, max_bytes: usize) {
        let mut taken = 0usize;
        while taken < max_bytes || taken == 0 {
            let Some(class) = self.order.pop_front() else { break };
            let Some(c) = self.classes.get_mut(&class) else { continue };
            let Some((item, size)) = c.items.pop_front() else {
                self.classes.remove(&class);
                continue;
            };
            c.bytes -= size;
            if c.items.is_empty() {
                self.classes.remove(&class);
            } else {
                self.order.push_back(class);
            }
            self.items -= 1;
            self.bytes -= size;
            taken = taken.saturating_add(size.max(1));
            out.push((item, size));
        }
    }

    /// Takes the next item in round-robin order.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let mut out = Vec::with_capacity(1);
        self.take(&mut out, 1);
        out.pop().map(|(item, _)| item)
    }

    /// Drops everything; returns how many items that was.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.items as u64;
        self.classes.clear();
        self.order.clear();
        self.items = 0;
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(q: &mut FairQueue<&'static str>, max_bytes: usize) -> Vec<&'static str> {
        let mut out = Vec::new();
        q.take(&mut out, max_bytes);
        out.into_iter().map(|(i, _)| i).collect()
    }

    #[test]
    fn one_class_is_a_bounded_fifo() {
        let mut q = FairQueue::default();
        assert_eq!(q.push(0, "a", 10, 2, 100), Admit::Queued { evicted: 0 });
        assert_eq!(q.push(0, "b", 10, 2, 100), Admit::Queued { evicted: 0 });
        assert_eq!(q.push(0, "c", 10, 2, 100), Admit::Refused { evicted: 0 });
        assert_eq!(taken(&mut q, 1000), ["a", "b"]);
        assert!(q.is_empty());
        assert_eq!(q.push(0, "big", 101, 2, 100), Admit::Refused { evicted: 0 });
    }

    #[test]
    fn classes_take_turns() {
        let mut q = FairQueue::default();
        for item in ["a1", "a2", "a3"] {
            q.push(1, item, 50, 100, 1000);
        }
        q.push(2, "b1", 1, 100, 1000);
        q.push(3, "c1", 1, 100, 1000);
        assert_eq!(taken(&mut q, 1), ["a1"], "at least one item");
        assert_eq!(q.pop(), Some("b1"));
        assert_eq!(taken(&mut q, 1000), ["c1", "a2", "a3"]);
        assert_eq!(q.pop(), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_class_over_its_share_loses_its_newest_items_never_anothers() {
        let mut q = FairQueue::default();
        // Class 1 fills the budget alone.
        for _ in 0..10 {
            assert_eq!(q.push(1, "chunk", 100, 100, 1000), Admit::Queued { evicted: 0 });
        }
        assert_eq!(q.push(1, "chunk", 100, 100, 1000), Admit::Refused { evicted: 0 });
        // A small item of class 2 is within its share: class 1 makes room.
        assert_eq!(q.push(2, "heartbeat", 10, 100, 1000), Admit::Queued { evicted: 1 });
        assert_eq!(q.push(3, "heartbeat", 10, 100, 1000), Admit::Queued { evicted: 0 });
        // Class 1 is over its share (1000 / 3): refused, evicting nothing.
        assert_eq!(q.push(1, "chunk", 100, 100, 1000), Admit::Refused { evicted: 0 });
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX);
        let small = out.iter().filter(|(i, _)| *i == "heartbeat").count();
        assert_eq!(small, 2);
        assert_eq!(out.len(), 11);
    }

    #[test]
    fn the_item_budget_is_shared_too() {
        let mut q = FairQueue::default();
        for _ in 0..4 {
            q.push(1, "x", 1, 4, 1000);
        }
        assert_eq!(q.push(2, "y", 1, 4, 1000), Admit::Queued { evicted: 1 });
        assert_eq!(q.push(2, "y", 1, 4, 1000), Admit::Queued { evicted: 1 });
        assert_eq!(q.push(2, "y", 1, 4, 1000), Admit::Refused { evicted: 0 }, "2 of 4 is its share");
        assert_eq!(q.len(), 4);
        assert_eq!(q.clear(), 4);
    }
}
