//! A peer's outbound queue, shared fairly between classes (the groups of a
//! batch connection; one class for a message connection).
//!
//! * **Budget.** The queue holds at most `max_items` items and `max_bytes`
//!   bytes, all classes together.
//! * **Fair share.** When an item does not fit, each class with something
//!   queued (the newcomer's included) is entitled to an equal share of the
//!   budget. If the newcomer's class would exceed its share, the newcomer
//!   is refused: the newest item of the class over its share. Otherwise the
//!   newest items of a class over its share are evicted until the newcomer
//!   fits: the class last evicted from while it still is over, else the
//!   one furthest over, the lowest class of those equally far. The latter
//!   is found at the top of a ranking of the classes (a heap, kept from the
//!   first such search until the queue empties; see [`rank`]), not by visiting every class: a
//!   victim costs O(log classes), amortized, however many groups a peer
//!   fills the queue with. A class within its share never loses an item to
//!   another class, so one group's burst cannot push out the heartbeats of
//!   the others. With more classes than items a share is one item: then
//!   no class holding one is over, and a newcomer is refused (an inbox
//!   flooded with made-up group ids keeps the real groups' envelopes).
//! * **Round-robin.** [`FairQueue::take`] takes one item per class in turn
//!   (the classes in the order they became non-empty), so an item waits for
//!   at most one item of each other class: a class with megabytes queued
//!   delays the others by one of its items, not by all of them.
//! * **Express lane.** While the queue is small (at most
//!   [`EXPRESS_ITEMS`] items and [`EXPRESS_BYTES`] bytes) and within its
//!   budget, items wait in one FIFO, with no per-class bookkeeping: a
//!   take then moves all of them, so the order between classes cannot
//!   delay anyone, and each class's items keep their order. An item that
//!   would outgrow the lane, a take that could not move all of it, or a
//!   single `pop`, first moves the lane's items into their classes, in
//!   order: the queue is then exactly what pushing each item to its class
//!   would have made, and everything above applies. A loaded node's turn
//!   (hundreds of groups, one to three items each) thus costs a push and a
//!   pop per item, not a class started and retired per group.
//! * **No allocation per class.** A class's queue, emptied, is kept for the
//!   next class that starts (at most [`SPARE_QUEUES`] of them, each of at
//!   most [`SPARE_CAPACITY`] items): on a batch connection the classes are
//!   groups, hundreds of which start and empty again on every turn of a
//!   loaded node.

mod rank;
#[cfg(test)]
mod rank_tests;

use std::collections::{HashMap, VecDeque};

use self::rank::{By, Ranking};
use crate::id_hash::SeededIds;

/// Emptied class queues kept for reuse, at most.
pub(crate) const SPARE_QUEUES: usize = 1024;

/// A class queue with room for more items than this is not kept for reuse
/// (a burst's large queue is given back): the spares hold at most
/// `SPARE_QUEUES * SPARE_CAPACITY` items' room, about a megabyte of
/// envelopes. A group usually has one to three envelopes per peer in a turn.
pub(crate) const SPARE_CAPACITY: usize = 8;

/// Most items the express lane holds.
pub(crate) const EXPRESS_ITEMS: usize = 4096;

/// Most bytes the express lane holds: below a writer's take
/// (`writer::WRITE_BYTES`), so a take moves the whole lane.
pub(crate) const EXPRESS_BYTES: usize = 128 << 10;

#[derive(Debug)]
struct Class<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// Its entry in the round-robin order (an entry of an earlier life of
    /// the class, emptied and queued again since, is stale).
    turn: u64,
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
    /// Classes are group ids a peer chooses (an inbox's): seeded.
    classes: HashMap<u64, Class<T>, SeededIds>,
    /// The non-empty classes, each once, in round-robin order, with their
    /// `turn`; entries of classes emptied by eviction stay until reached
    /// (or compacted), so an eviction costs no search of the order.
    order: VecDeque<(u64, u64)>,
    next_turn: u64,
    items: usize,
    bytes: usize,
    /// The class last evicted from: tried first next time, while it is
    /// still over its share, so a full queue does not search every class
    /// for each item (a burst comes from one class, which keeps losing its
    /// newest items until it is back within its share).
    victim: Option<u64>,
    /// Emptied class queues, ready for the next class that starts.
    spare: Vec<VecDeque<(T, usize)>>,
    /// The classes ranked by bytes, then items, for a victim when the queue
    /// is over its byte budget (kept from the first such search until the
    /// queue empties).
    by_bytes: Ranking,
    /// The classes ranked by items, then bytes, for a victim when the queue
    /// is over its item budget.
    by_items: Ranking,
    /// The express lane (see the [module docs](self)): in use only while
    /// no class holds anything, so at most one of the two holds items.
    express: VecDeque<(u64, T, usize)>,
    /// Whether the express lane is used (always, but in tests of the
    /// classes' own bookkeeping and as the reference the lane is checked
    /// against).
    use_express: bool,
    /// Classes visited by [`victim_by_scan`](Self::victim_by_scan).
    #[cfg(test)]
    visits: std::cell::Cell<u64>,
    /// Whether victims are found by visiting every class (the reference
    /// queue of the rankings' property test).
    #[cfg(test)]
    reference_scan: bool,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self {
            classes: HashMap::default(),
            order: VecDeque::new(),
            next_turn: 0,
            items: 0,
            bytes: 0,
            victim: None,
            spare: Vec::new(),
            by_bytes: Ranking::new(By::Bytes),
            by_items: Ranking::new(By::Items),
            express: VecDeque::new(),
            use_express: true,
            #[cfg(test)]
            visits: std::cell::Cell::new(0),
            #[cfg(test)]
            reference_scan: false,
        }
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
        let bytes = self.bytes.saturating_add(size);
        // Within the budget, and the lane in use with room for it.
        let express = self.use_express && self.classes.is_empty() && self.express.len() < EXPRESS_ITEMS;
        if express && self.items < max_items && bytes <= max_bytes.min(EXPRESS_BYTES) {
            self.express.push_back((class, item, size));
            self.items += 1;
            self.bytes = bytes;
            return Admit::Queued { evicted: 0 };
        }
        self.leave_express();
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
            // Within its share while the whole is over budget: evict the
            // newest item of a class over its own share. With as many
            // classes as items, each holds one, its whole share: none is.
            if items_over && self.classes.len() >= max_items {
                return Admit::Refused { evicted };
            }
            let over = |c: &Class<T>| {
                if items_over { c.items.len() > share_items.max(1) } else { c.bytes > share_bytes }
            };
            let hinted = self.victim.filter(|&v| v != class && self.classes.get(&v).is_some_and(over));
            let victim = hinted.or_else(|| self.furthest_over(class, items_over, share_items, share_bytes));
            let Some(victim) = victim else { return Admit::Refused { evicted } };
            self.victim = Some(victim);
            if self.pop_newest(victim).is_none() {
                return Admit::Refused { evicted };
            }
            evicted += 1;
        }
        self.enqueue(class, item, size);
        self.items += 1;
        self.bytes += size;
        Admit::Queued { evicted }
    }

    /// The class furthest over its share (in items if `items_over`, else in
    /// bytes), `class` aside, the lowest of those equally far; `None` if no
    /// other class is over its share.
    fn furthest_over(&mut self, class: u64, items_over: bool, share_items: usize, share_bytes: usize) -> Option<u64> {
        #[cfg(test)]
        if self.reference_scan {
            return self.victim_by_scan(class, items_over, share_items, share_bytes);
        }
        self.victim_by_rank(class, items_over, share_items, share_bytes)
    }

    /// [`furthest_over`](Self::furthest_over) by visiting every class: the
    /// reference the rankings are checked against (what the queue did
    /// before them, once per victim).
    #[cfg(test)]
    fn victim_by_scan(&self, class: u64, items_over: bool, share_items: usize, share_bytes: usize) -> Option<u64> {
        let over = |c: &Class<T>| {
            if items_over { c.items.len() > share_items.max(1) } else { c.bytes > share_bytes }
        };
        self.classes
            .iter()
            .inspect(|_| self.visits.set(self.visits.get() + 1))
            .filter(|&(&c, k)| c != class && over(k))
            // Ties go to the lowest class: the choice depends on the
            // queue's contents alone, not on the map's order.
            .max_by_key(|&(&id, c)| {
                let lowest = std::cmp::Reverse(id);
                if items_over { (c.items.len(), c.bytes, lowest) } else { (c.bytes, c.items.len(), lowest) }
            })
            .map(|(&c, _)| c)
    }

    /// Appends `item` to its class (started if new, its turn last); the
    /// totals are the caller's.
    fn enqueue(&mut self, class: u64, item: T, size: usize) {
        let turn = self.next_turn;
        let spare = &mut self.spare;
        let entry = self.classes.entry(class).or_insert_with(|| Class {
            items: spare.pop().unwrap_or_default(),
            bytes: 0,
            turn,
        });
        if entry.turn == turn {
            // A new class: its turn comes last.
            self.next_turn += 1;
            self.order.push_back((class, turn));
        }
        entry.items.push_back((item, size));
        entry.bytes += size;
        let (items, bytes) = (entry.items.len(), entry.bytes);
        self.rerank(class, items, bytes);
    }

    /// Records in the rankings kept that `class` now holds `items` items of
    /// `bytes` bytes, rebuilding a ranking that outgrew the classes.
    fn rerank(&mut self, class: u64, items: usize, bytes: usize) {
        for ranking in [&mut self.by_bytes, &mut self.by_items] {
            if !ranking.is_kept() {
                continue;
            }
            ranking.note(class, items, bytes);
            if ranking.outgrew(self.classes.len()) {
                ranking.rebuild(self.classes.iter().map(|(&id, c)| (id, c.items.len(), c.bytes)));
            }
        }
    }

    /// The class furthest over its share (in items if `items_over`, else in
    /// bytes), `class` aside, found at the top of a ranking (built first if
    /// not kept).
    fn victim_by_rank(&mut self, class: u64, items_over: bool, share_items: usize, share_bytes: usize) -> Option<u64> {
        let ranking = if items_over { &mut self.by_items } else { &mut self.by_bytes };
        let classes = &self.classes;
        if !ranking.is_kept() {
            ranking.rebuild(classes.iter().map(|(&id, c)| (id, c.items.len(), c.bytes)));
        }
        let top = ranking.top(class, |id| classes.get(&id).map(|c| (c.items.len(), c.bytes)))?;
        let c = classes.get(&top)?;
        let over = if items_over { c.items.len() > share_items.max(1) } else { c.bytes > share_bytes };
        over.then_some(top)
    }

    /// Moves the express lane's items into their classes, in order (the
    /// classes are empty while the lane holds anything).
    fn leave_express(&mut self) {
        while let Some((class, item, size)) = self.express.pop_front() {
            self.enqueue(class, item, size);
        }
    }

    /// Moves the whole express lane to `out` if it holds items and `fits`
    /// them (its length and bytes); returns whether it did.
    fn take_express(&mut self, fits: impl FnOnce(usize, usize) -> bool, mut out: impl FnMut(T, usize)) -> bool {
        if self.express.is_empty() || !fits(self.express.len(), self.bytes) {
            return false;
        }
        debug_assert!(self.classes.is_empty(), "the lane beside classes");
        for (_, item, size) in self.express.drain(..) {
            out(item, size);
        }
        self.items = 0;
        self.bytes = 0;
        true
    }

    fn pop_newest(&mut self, class: u64) -> Option<(T, usize)> {
        let c = self.classes.get_mut(&class)?;
        let (item, size) = c.items.pop_back()?;
        c.bytes -= size;
        let (items, bytes) = (c.items.len(), c.bytes);
        self.items -= 1;
        self.bytes -= size;
        if items > 0 {
            self.rerank(class, items, bytes);
        } else {
            self.retire(class);
            // Its order entry is stale now; stale entries never outnumber
            // the live ones for long.
            if self.order.len() > 2 * self.classes.len() + 16 {
                let classes = &self.classes;
                self.order.retain(|(k, t)| classes.get(k).is_some_and(|c| c.turn == *t));
            }
        }
        Some((item, size))
    }

    /// Removes an emptied class, keeping its queue for reuse.
    fn retire(&mut self, class: u64) {
        let Some(c) = self.classes.remove(&class) else { return };
        debug_assert!(c.items.is_empty());
        if self.classes.is_empty() {
            self.by_bytes.drop_all();
            self.by_items.drop_all();
        }
        if self.spare.len() < SPARE_QUEUES && c.items.capacity() <= SPARE_CAPACITY {
            self.spare.push(c.items);
        }
    }

    /// Moves items out one per class in turn, handing each (with its size)
    /// to `out`, until `out` answers `false` or the queue is empty: the one
    /// mechanism behind [`take`](Self::take), [`take_items`](Self::take_items)
    /// and [`pop`](Self::pop).
    fn drain_fair(&mut self, mut out: impl FnMut(T, usize) -> bool) {
        debug_assert!(self.express.is_empty() || self.classes.is_empty(), "the lane beside classes");
        self.leave_express();
        while let Some((class, turn)) = self.order.pop_front() {
            let Some(c) = self.classes.get_mut(&class).filter(|c| c.turn == turn) else { continue };
            let Some((item, size)) = c.items.pop_front() else {
                self.retire(class);
                continue;
            };
            c.bytes -= size;
            let (items, bytes) = (c.items.len(), c.bytes);
            if items == 0 {
                self.retire(class);
            } else {
                self.order.push_back((class, turn));
                self.rerank(class, items, bytes);
            }
            self.items -= 1;
            self.bytes -= size;
            if !out(item, size) {
                break;
            }
        }
    }

    /// Moves items to `out` (with their sizes), one per class in turn,
    /// until `max_bytes` are taken (at least one item, if any is queued);
    /// an express lane within `max_bytes` goes whole, in its order.
    pub(crate) fn take(&mut self, out: &mut Vec<(T, usize)>, max_bytes: usize) {
        if self.take_express(|_, bytes| bytes <= max_bytes, |item, size| out.push((item, size))) {
            return;
        }
        let mut taken = 0usize;
        self.drain_fair(|item, size| {
            taken = taken.saturating_add(size.max(1));
            out.push((item, size));
            taken < max_bytes
        });
    }

    /// Moves up to `max` items to `out`, one per class in turn (an express
    /// lane of at most `max` items whole, in its order).
    pub(crate) fn take_items(&mut self, out: &mut Vec<T>, max: usize) {
        if max == 0 || self.take_express(|n, _| n <= max, |item, _| out.push(item)) {
            return;
        }
        let mut taken = 0;
        self.drain_fair(|item, _| {
            out.push(item);
            taken += 1;
            taken < max
        });
    }

    /// Takes the next item in round-robin order.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let mut next = None;
        self.drain_fair(|item, _| {
            next = Some(item);
            false
        });
        next
    }

    /// Drops everything; returns how many items that was.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.items as u64;
        self.express.clear();
        self.classes.clear();
        self.order.clear();
        self.by_bytes.drop_all();
        self.by_items.drop_all();
        self.victim = None;
        self.items = 0;
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<T> FairQueue<T> {
        /// The queue without its express lane: the classes' own
        /// bookkeeping, and the reference the lane is checked against.
        fn classes_only() -> Self {
            Self { use_express: false, ..Self::default() }
        }

        fn take_all_items(&mut self) -> usize {
            let mut out = Vec::new();
            self.take_items(&mut out, usize::MAX);
            out.len()
        }
    }

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
    fn a_class_emptied_by_eviction_and_queued_again_gets_one_turn_per_round() {
        let mut q = FairQueue::default();
        assert_eq!(q.push(1, "big", 100, 10, 100), Admit::Queued { evicted: 0 });
        // Class 2 is within its share (50 bytes): class 1's only item goes.
        assert_eq!(q.push(2, "b1", 10, 10, 100), Admit::Queued { evicted: 1 });
        q.push(1, "a1", 10, 10, 100);
        q.push(1, "a2", 10, 10, 100);
        q.push(2, "b2", 10, 10, 100);
        q.push(3, "c1", 10, 10, 100);
        // One item per class in turn; the stale entry of class 1's first
        // life gives it no extra turn.
        assert_eq!(taken(&mut q, 1000), ["b1", "a1", "c1", "b2", "a2"]);
        assert!(q.is_empty());
    }

    #[test]
    fn evicting_from_many_classes_keeps_the_order_bounded() {
        let mut q = FairQueue::default();
        for round in 0..1000u64 {
            // A big item of a fresh class fills the budget; a small one of
            // the next evicts it: each eviction empties a class.
            let big = 10_000 - q.bytes;
            assert_eq!(q.push(round * 2, "big", big, 10_000, 10_000), Admit::Queued { evicted: 0 });
            assert_eq!(q.push(round * 2 + 1, "small", 1, 10_000, 10_000), Admit::Queued { evicted: 1 });
            // Every third small one goes too (as a newer item would evict it).
            if round % 3 == 0 {
                assert!(q.pop_newest(round * 2 + 1).is_some());
            }
        }
        assert!(q.order.len() <= 2 * q.classes.len() + 16, "{} entries for {} classes", q.order.len(), q.classes.len());
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX);
        assert_eq!(out.len(), 666, "every small item left, each class once");
        assert!(q.is_empty());
    }

    #[test]
    fn the_class_last_evicted_from_loses_no_more_once_within_its_share() {
        let mut q = FairQueue::default();
        for size in [10, 10, 70] {
            q.push(1, "a", size, 100, 100);
        }
        // Class 2 is within its share (50): class 1's newest item goes,
        // and class 1 (20 bytes) is within its share again.
        assert_eq!(q.push(2, "b", 20, 100, 100), Admit::Queued { evicted: 1 });
        q.push(3, "c", 50, 100, 100);
        q.push(3, "c", 10, 100, 100);
        // Class 4 is within its share (25): the class over its share now
        // is 3 (60 of 25), not 1, the last evicted from (20 of 25).
        assert_eq!(q.push(4, "d", 10, 100, 100), Admit::Queued { evicted: 1 });
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX);
        assert_eq!(out.iter().filter(|(i, _)| *i == "a").count(), 2, "class 1 kept both its items");
        assert_eq!(out.iter().filter(|(i, _)| *i == "c").count(), 1, "class 3 lost its newest");
    }

    #[test]
    fn take_items_takes_at_most_that_many_in_turn() {
        let mut q = FairQueue::default();
        for (class, item) in [(1, "a1"), (1, "a2"), (2, "b1"), (3, "c1")] {
            q.push(class, item, 10, 100, 1000);
        }
        let mut out = Vec::new();
        q.take_items(&mut out, 0);
        assert!(out.is_empty());
        q.take_items(&mut out, 3);
        assert_eq!(out, ["a1", "b1", "c1"]);
        q.take_items(&mut out, 3);
        assert_eq!(out, ["a1", "b1", "c1", "a2"]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_emptied_class_queue_serves_the_next_class() {
        let mut q = FairQueue::classes_only();
        for item in ["a1", "a2", "a3"] {
            q.push(1, item, 1, 100, 1000);
        }
        assert_eq!(taken(&mut q, 1000), ["a1", "a2", "a3"]);
        assert_eq!(q.spare.len(), 1, "class 1's queue is kept");
        let room = q.spare[0].capacity();
        assert!(room >= 3);
        q.push(2, "b1", 1, 100, 1000);
        assert!(q.spare.is_empty(), "class 2 took it");
        assert_eq!(q.classes[&2].items.capacity(), room);
        // An eviction that empties a class keeps its queue too.
        q.push(3, "c1", 80, 100, 100);
        assert_eq!(q.push(2, "b2", 20, 100, 100), Admit::Queued { evicted: 1 });
        assert_eq!(q.spare.len(), 1);
        // A burst's large queue is given back, and the spares are bounded.
        let mut q = FairQueue::classes_only();
        for _ in 0..=SPARE_CAPACITY {
            q.push(1, "x", 1, 1000, 100_000);
        }
        assert_eq!(q.take_all_items(), SPARE_CAPACITY + 1);
        assert!(q.spare.is_empty(), "a queue of {} items is not kept", SPARE_CAPACITY + 1);
        for class in 0..(SPARE_QUEUES as u64 + 10) {
            q.push(class, "x", 1, 100_000, 100_000);
        }
        q.take_all_items();
        assert_eq!(q.spare.len(), SPARE_QUEUES);
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

    /// Found by the express lane's property test: two classes equally far
    /// over their share were told apart by the hash map's order, which
    /// differs between two queues of the same contents (each map is seeded
    /// anew, so many queues are tried).
    #[test]
    fn of_classes_equally_far_over_the_lowest_loses_its_item() {
        for (first, second) in [(4, 0), (0, 4)].into_iter().cycle().take(64) {
            let mut q = FairQueue::classes_only();
            // Two items each where the newcomer makes the share one.
            for _ in 0..2 {
                q.push(first, "x", 33, 4, 1000);
                q.push(second, "y", 33, 4, 1000);
            }
            assert_eq!(q.push(1, "z", 27, 4, 1000), Admit::Queued { evicted: 1 });
            let mut out = Vec::new();
            q.take(&mut out, usize::MAX);
            let kept: Vec<_> = out.into_iter().map(|(i, _)| i).collect();
            let four = if first == 4 { "x" } else { "y" };
            assert_eq!(kept.iter().filter(|&&i| i == four).count(), 2, "class 4 kept its items: {kept:?}");
        }
    }

    #[test]
    fn a_small_queue_is_one_fifo_taken_whole() {
        let mut q = FairQueue::default();
        for (class, item) in [(1, "a1"), (2, "b1"), (1, "a2"), (3, "c1"), (2, "b2")] {
            assert_eq!(q.push(class, item, 10, 100, 1000), Admit::Queued { evicted: 0 });
        }
        assert!(q.classes.is_empty() && q.express.len() == 5, "no class started");
        assert_eq!(q.len(), 5);
        assert_eq!(taken(&mut q, 50), ["a1", "b1", "a2", "c1", "b2"], "all of it, as it came");
        assert!(q.is_empty());
        // A take that cannot move the whole lane takes in turn.
        for (class, item) in [(1, "a1"), (1, "a2"), (2, "b1")] {
            q.push(class, item, 10, 100, 1000);
        }
        assert_eq!(taken(&mut q, 20), ["a1", "b1"]);
        assert!(q.express.is_empty(), "the lane went into its classes");
        assert_eq!(taken(&mut q, 20), ["a2"]);
        // An item the lane cannot hold sends it into the classes.
        let mut q = FairQueue::default();
        q.push(1, "a1", 10, 100, 1 << 20);
        q.push(2, "chunk", EXPRESS_BYTES, 100, 1 << 20);
        q.push(1, "a2", 10, 100, 1 << 20);
        assert!(q.express.is_empty());
        assert_eq!(taken(&mut q, 1), ["a1"]);
        assert_eq!(q.pop(), Some("chunk"));
        assert_eq!(q.pop(), Some("a2"));
    }

    /// With more classes than the item budget each class's share is one
    /// item: a newcomer is refused, and a class holding one item never
    /// loses it, whatever its id (on an inbox, a peer flooding made-up
    /// group ids must not push out the real groups' envelopes).
    #[test]
    fn a_class_holding_its_one_item_share_never_loses_it() {
        let mut q = FairQueue::default();
        for class in 1..=4u64 {
            assert_eq!(q.push(class, class, 1, 4, 1000), Admit::Queued { evicted: 0 });
        }
        for newcomer in [100, 0] {
            assert_eq!(q.push(newcomer, newcomer, 1, 4, 1000), Admit::Refused { evicted: 0 });
        }
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX);
        assert_eq!(out.into_iter().map(|(i, _)| i).collect::<Vec<_>>(), [1, 2, 3, 4]);
        // The classes-only queue (the property test's reference) alike.
        let mut q = FairQueue::classes_only();
        for class in [5, 6] {
            q.push(class, class, 1, 2, 1000);
        }
        assert_eq!(q.push(1, 1, 1, 2, 1000), Admit::Refused { evicted: 0 });
    }

    /// One operation on a queue, for the equivalence property.
    #[derive(Clone, Debug)]
    enum Op {
        Push { class: u64, size: usize },
        Take(usize),
        TakeItems(usize),
        Pop,
        Clear,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0u64..6, prop_oneof![1usize..64, 1usize..(EXPRESS_BYTES / 2)])
                .prop_map(|(class, size)| Op::Push { class, size }),
            1 => prop_oneof![1usize..200, Just(usize::MAX)].prop_map(Op::Take),
            1 => (0usize..12).prop_map(Op::TakeItems),
            1 => Just(Op::Pop),
            1 => Just(Op::Clear),
        ]
    }

    /// What a take moved: the same items in both queues, and each class's
    /// in the same order (only the order between classes may differ, when
    /// the lane is taken whole).
    fn same_take(lane: &[u64], reference: &[u64]) -> bool {
        let by_class = |taken: &[u64]| {
            let mut m = std::collections::BTreeMap::<u64, Vec<u64>>::new();
            for id in taken {
                m.entry(id >> 32).or_default().push(*id);
            }
            m
        };
        by_class(lane) == by_class(reference)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if std::env::var_os("RAFT_IO_SOAK").is_some() { 5000 } else { 256 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The express lane changes nothing the queue promises: every push
        /// is admitted or refused, evicting as many, as without it; takes
        /// move the same items, each class's in order; and the counts agree.
        #[test]
        fn the_express_lane_keeps_every_promise_of_the_classes(
            ops in proptest::collection::vec(op(), 1..300),
            max_items in 1usize..40,
            max_bytes in 64usize..(EXPRESS_BYTES * 2),
        ) {
            let (mut lane, mut reference) = (FairQueue::default(), FairQueue::classes_only());
            for (seq, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push { class, size } => {
                        // Item ids carry their class, for `same_take`.
                        let id = (class << 32) | seq as u64;
                        proptest::prop_assert_eq!(
                            lane.push(class, id, size, max_items, max_bytes),
                            reference.push(class, id, size, max_items, max_bytes)
                        );
                    }
                    Op::Take(max) => {
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        lane.take(&mut a, max);
                        reference.take(&mut b, max);
                        let ids = |v: Vec<(u64, usize)>| v.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
                        let (a, b) = (ids(a), ids(b));
                        proptest::prop_assert!(same_take(&a, &b), "{:?} against {:?}", a, b);
                    }
                    Op::TakeItems(max) => {
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        lane.take_items(&mut a, max);
                        reference.take_items(&mut b, max);
                        proptest::prop_assert!(same_take(&a, &b), "{:?} against {:?}", a, b);
                    }
                    Op::Pop => proptest::prop_assert_eq!(lane.pop(), reference.pop()),
                    Op::Clear => proptest::prop_assert_eq!(lane.clear(), reference.clear()),
                }
                proptest::prop_assert_eq!((lane.len(), lane.bytes), (reference.len(), reference.bytes));
            }
        }
    }
}
