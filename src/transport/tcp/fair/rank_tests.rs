//! The rankings' tests: they choose the victims a search of every class
//! chooses (the reference, [`FairQueue::victim_by_scan`]), and a full queue
//! does not visit every class per victim.

use super::*;

impl<T> FairQueue<T> {
    /// The queue finding its victims by the rankings, with its express
    /// lane or not.
    fn by_rank(express: bool) -> Self {
        Self { use_express: express, ..Self::default() }
    }

    /// The queue finding its victims by visiting every class: the
    /// reference the rankings are checked against.
    fn by_scan(express: bool) -> Self {
        Self { use_express: express, reference_scan: true, ..Self::default() }
    }

    /// Classes and ranking entries looked at to choose victims.
    fn visits(&self) -> u64 {
        self.visits.get() + self.by_bytes.visits + self.by_items.visits
    }
}

/// A full queue of many classes, each just over its share once a
/// newcomer counts: every admission evicts one item, each time from
/// another class (the one last evicted from is within its share again).
/// Choosing the victim must not visit every class each time: counted,
/// not timed. A search of every class per item visits `CLASSES` per
/// admission (2.5 million in all); the ranking is built once (`CLASSES`
/// visits), then looks at a couple of entries per victim.
#[test]
fn a_full_queue_does_not_search_every_class_for_each_victim() {
    const CLASSES: u64 = 2000;
    const NEWCOMERS: u64 = 1000;
    // In bytes: two items of 10 bytes per class, the budget full.
    let mut q = FairQueue::default();
    let max_bytes = 20 * CLASSES as usize;
    for class in 0..CLASSES {
        for _ in 0..2 {
            assert_eq!(q.push(class, class, 10, usize::MAX, max_bytes), Admit::Queued { evicted: 0 });
        }
    }
    for newcomer in CLASSES..CLASSES + NEWCOMERS {
        assert_eq!(q.push(newcomer, newcomer, 10, usize::MAX, max_bytes), Admit::Queued { evicted: 1 });
    }
    let visits = q.visits();
    assert!(visits <= 4 * (CLASSES + NEWCOMERS), "{visits} visits for {NEWCOMERS} victims among {CLASSES} classes");
    // The lowest classes lost one item each, the others none.
    let mut out = Vec::new();
    q.take_items(&mut out, usize::MAX);
    for class in 0..CLASSES {
        let kept = out.iter().filter(|&&c| c == class).count();
        assert_eq!(kept, if class < NEWCOMERS { 1 } else { 2 }, "class {class}");
    }
    // In items: three items per class, the item budget full.
    let mut q = FairQueue::default();
    let max_items = 3 * CLASSES as usize;
    for class in 0..CLASSES {
        for _ in 0..3 {
            assert_eq!(q.push(class, class, 1, max_items, usize::MAX), Admit::Queued { evicted: 0 });
        }
    }
    for newcomer in CLASSES..CLASSES + NEWCOMERS {
        assert_eq!(q.push(newcomer, newcomer, 1, max_items, usize::MAX), Admit::Queued { evicted: 1 });
    }
    let visits = q.visits();
    assert!(visits <= 4 * (CLASSES + NEWCOMERS), "{visits} visits for {NEWCOMERS} victims among {CLASSES} classes");
}

/// One operation on a queue, for the rankings' property: sizes from a
/// few values, so that classes tie.
#[derive(Clone, Debug)]
enum RankOp {
    Push { class: u64, size: usize },
    Evict(u64),
    Take(usize),
    Pop,
    Clear,
}

fn rank_op() -> impl proptest::strategy::Strategy<Value = RankOp> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0u64..6, prop_oneof![Just(10usize), Just(20), 1usize..40])
            .prop_map(|(class, size)| RankOp::Push { class, size }),
        2 => (0u64..6).prop_map(RankOp::Evict),
        1 => (1usize..60).prop_map(RankOp::Take),
        1 => Just(RankOp::Pop),
        1 => Just(RankOp::Clear),
    ]
}
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if std::env::var_os("RAFT_IO_SOAK").is_some() { 5000 } else { 256 },
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// The rankings name the victim the search of every class names
    /// (the reference): whatever the queue went through, for every
    /// newcomer class, either budget and shares around the classes'
    /// sizes.
    #[test]
    fn the_rankings_choose_the_victim_the_search_of_every_class_chooses(
        ops in proptest::collection::vec(rank_op(), 1..200),
        max_items in 1usize..12,
        max_bytes in 20usize..200,
        express in proptest::bool::ANY,
    ) {
        let mut q = FairQueue::by_rank(express);
        for (seq, op) in ops.into_iter().enumerate() {
            match op {
                RankOp::Push { class, size } => {
                    q.push(class, seq as u64, size, max_items, max_bytes);
                }
                RankOp::Evict(class) => {
                    q.leave_express();
                    let _ = q.pop_newest(class);
                }
                RankOp::Take(max) => q.take(&mut Vec::new(), max),
                RankOp::Pop => {
                    q.pop();
                }
                RankOp::Clear => {
                    q.clear();
                }
            }
            for newcomer in 0..7 {
                for share in 0..4 {
                    proptest::prop_assert_eq!(
                        q.victim_by_rank(newcomer, true, share, 0),
                        q.victim_by_scan(newcomer, true, share, 0),
                        "items, newcomer {}, share {}", newcomer, share
                    );
                }
                for share in [0, 9, 10, 19, 20, 39, 40, 1000] {
                    proptest::prop_assert_eq!(
                        q.victim_by_rank(newcomer, false, 0, share),
                        q.victim_by_scan(newcomer, false, 0, share),
                        "bytes, newcomer {}, share {}", newcomer, share
                    );
                }
            }
            for ranking in [&q.by_bytes, &q.by_items] {
                proptest::prop_assert!(!ranking.outgrew(q.classes.len()), "a ranking outgrew its classes");
            }
        }
    }

    /// A queue choosing its victims by the rankings does exactly what
    /// one searching every class does: the same admissions, evicting as
    /// many, and the same items taken in the same order.
    #[test]
    fn a_ranked_queue_does_what_a_searching_one_does(
        ops in proptest::collection::vec(rank_op(), 1..300),
        max_items in 1usize..12,
        max_bytes in 20usize..200,
        express in proptest::bool::ANY,
    ) {
        let mut ranked = FairQueue::by_rank(express);
        let mut reference = FairQueue::by_scan(express);
        for (seq, op) in ops.into_iter().enumerate() {
            match op {
                RankOp::Push { class, size } => proptest::prop_assert_eq!(
                    ranked.push(class, seq, size, max_items, max_bytes),
                    reference.push(class, seq, size, max_items, max_bytes)
                ),
                RankOp::Evict(class) => {
                    ranked.leave_express();
                    reference.leave_express();
                    proptest::prop_assert_eq!(ranked.pop_newest(class), reference.pop_newest(class));
                }
                RankOp::Take(max) => {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    ranked.take(&mut a, max);
                    reference.take(&mut b, max);
                    proptest::prop_assert_eq!(a, b);
                }
                RankOp::Pop => proptest::prop_assert_eq!(ranked.pop(), reference.pop()),
                RankOp::Clear => proptest::prop_assert_eq!(ranked.clear(), reference.clear()),
            }
            proptest::prop_assert_eq!((ranked.len(), ranked.bytes), (reference.len(), reference.bytes));
        }
        proptest::prop_assert_eq!(ranked.visits.get(), 0, "the ranked queue searched every class");
    }
}
