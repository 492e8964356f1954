//! Unit tests of the fair queue: budgets, eviction, the express lane.

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
