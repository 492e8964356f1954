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
mod tests;
