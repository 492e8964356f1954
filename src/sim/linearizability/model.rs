//! Linearizability against any sequential model: the user states what one
//! operation does to the state and what it returns ([`Model`]), and
//! [`check_calls`] decides whether a concurrent history of [`Call`]s can be
//! explained by some order of those operations that respects real time.
//!
//! The search is depth-first over the operations that may come next (an
//! operation completed before another was invoked must come first),
//! memoizing (operations placed, model state) pairs, trying candidates in
//! the order the history lists them (the simulator's clients list an
//! operation when its outcome arrives, and operations still unknown at the
//! end last; sorting candidates by completion time instead made some
//! key-value histories that this order decides in milliseconds run out of
//! memory). An operation that leaves the state as it is (a read, a
//! refusal) and answers what it answered is placed as soon as it may come,
//! without trying the others first (if any order explains the rest, one
//! that places it first does); an operation of unknown outcome that would
//! change nothing is not placed at all. It stops
//! after a budget of visited search states with [`Verdict::Unknown`]:
//! deciding linearizability is NP-complete in general, and a budget makes
//! that visible instead of hanging.
//!
//! A model whose state is a product of independent parts (one per key, per
//! account) says which part each operation touches ([`Model::part`]); the
//! history is then checked part by part, each part's operations alone. A
//! history is linearizable exactly when each of its parts is (Herlihy and
//! Wing's locality), and a search over one part's operations is
//! exponentially smaller than one over all of them.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

/// A sequential specification: what one operation does to the state and
/// what it returns. Must be a pure function of its arguments.
///
/// ```
/// use raft_io::sim::linearizability::{Call, Model, Verdict, check_calls};
///
/// /// A counter with increments (returning the new value) and reads.
/// struct Counter;
/// #[derive(Clone, Debug)]
/// enum Op { Add(u64), Read }
///
/// impl Model for Counter {
///     type State = u64;
///     type Op = Op;
///     type Output = u64;
///     fn init(&self) -> u64 { 0 }
///     fn step(&self, state: &u64, op: &Op) -> (u64, u64) {
///         match op {
///             Op::Add(n) => (state + n, state + n),
///             Op::Read => (*state, *state),
///         }
///     }
/// }
///
/// let ok = [
///     Call::completed(Op::Add(2), 2, 0, 10),
///     Call::completed(Op::Read, 0, 1, 2),   // overlaps the add: may read before it
///     Call::completed(Op::Read, 2, 11, 12),
/// ];
/// assert_eq!(check_calls(&Counter, &ok, 10_000), Verdict::Linearizable);
/// let stale = [Call::completed(Op::Add(2), 2, 0, 1), Call::completed(Op::Read, 0, 5, 6)];
/// assert!(matches!(check_calls(&Counter, &stale, 10_000), Verdict::NotLinearizable { .. }));
/// ```
pub trait Model {
    /// The model's state (hashed to memoize the search).
    type State: Clone + Eq + Hash;
    /// An operation, as a client issues it.
    type Op;
    /// What an operation returns.
    type Output: PartialEq;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op` and what `op` returns.
    fn step(&self, state: &Self::State, op: &Self::Op) -> (Self::State, Self::Output);

    /// The independent part of the state `op` reads and changes (its key,
    /// its account), for a model that is a product of independent parts:
    /// what `op` does and returns must depend only on the operations of
    /// its own part, applied from [`init`](Self::init). [`check_calls`]
    /// then checks each part's operations on their own, with the budget
    /// for each part. `None` (the default, and for an operation that spans
    /// parts, such as a transfer between two accounts): the history is
    /// checked as a whole.
    fn part(&self, op: &Self::Op) -> Option<u64> {
        let _ = op;
        None
    }

    /// Whether `op` is a query: it leaves every state as it is (a read).
    /// [`check_calls`] places a query whose answer fits as soon as it may
    /// come, without trying other orders first: if any order explains the
    /// rest, one that places the query first does. So this must hold in
    /// every state, not only in some: a write of the value already held
    /// changes nothing there but is no query. Default: `false` (correct
    /// for every model, only slower on histories of many concurrent reads).
    fn is_query(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }
}

/// One operation of a client history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call<Op, Output> {
    /// The operation.
    pub op: Op,
    /// What it returned; `None`: not observed (any output fits).
    pub output: Option<Output>,
    /// When it was invoked.
    pub invoked: u64,
    /// When its outcome was known; `None`: unknown (it may take effect at
    /// any point after its invocation, or never — a write whose client
    /// never heard back).
    pub completed: Option<u64>,
}

impl<Op, Output> Call<Op, Output> {
    /// An operation invoked at `invoked` that returned `output` at
    /// `completed`.
    pub fn completed(op: Op, output: Output, invoked: u64, completed: u64) -> Self {
        Self { op, output: Some(output), invoked, completed: Some(completed) }
    }

    /// An operation invoked at `invoked` whose outcome is unknown.
    pub fn unknown(op: Op, invoked: u64) -> Self {
        Self { op, output: None, invoked, completed: None }
    }
}

/// The outcome of [`check_calls`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations respects real time and the model.
    Linearizable,
    /// No order does.
    NotLinearizable {
        /// The longest prefix of a valid order the search found (indexes
        /// into the history): the operation that cannot follow it is where
        /// to look.
        deepest: Vec<usize>,
    },
    /// The search visited `explored` states (its budget) without deciding.
    Unknown {
        /// Search states visited.
        explored: u64,
    },
}

/// Decides whether `calls` is linearizable with respect to `model`,
/// visiting at most `budget` search states (for each part, when every
/// operation names one: [`Model::part`]). Indexes in a verdict are indexes
/// into `calls`; for a partitioned history, the first part found not
/// linearizable is reported, and [`Verdict::Unknown`] (some part
/// undecided, none refuted) counts the states of every part.
pub fn check_calls<M: Model>(model: &M, calls: &[Call<M::Op, M::Output>], budget: u64) -> Verdict {
    let mut parts: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, call) in calls.iter().enumerate() {
        match model.part(&call.op) {
            Some(part) => parts.entry(part).or_default().push(i),
            None => return check_part(model, calls, (0..calls.len()).collect(), budget),
        }
    }
    let mut explored = None;
    for part in parts.into_values() {
        match check_part(model, calls, part, budget) {
            Verdict::Linearizable => {}
            refuted @ Verdict::NotLinearizable { .. } => return refuted,
            Verdict::Unknown { explored: n } => explored = Some(explored.unwrap_or(0) + n),
        }
    }
    match explored {
        None => Verdict::Linearizable,
        Some(explored) => Verdict::Unknown { explored },
    }
}

/// The search over the operations `calls[i]` for `i` in `part` (in
/// history order) alone.
fn check_part<M: Model>(model: &M, calls: &[Call<M::Op, M::Output>], part: Vec<usize>, budget: u64) -> Verdict {
    let mut search = Search {
        model,
        calls,
        part: &part,
        visited: HashSet::new(),
        budget,
        explored: 0,
        path: Vec::new(),
        deepest: Vec::new(),
    };
    let done = vec![0u64; part.len().div_ceil(64)];
    match search.run(done, model.init()) {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::NotLinearizable { deepest: search.deepest.iter().map(|&k| part[k]).collect() },
        None => Verdict::Unknown { explored: search.explored },
    }
}

struct Search<'a, M: Model> {
    model: &'a M,
    calls: &'a [Call<M::Op, M::Output>],
    /// The operations searched: indexes into `calls`. The search's own
    /// indexes (`done`, `path`) are positions in this list.
    part: &'a [usize],
    visited: HashSet<(Vec<u64>, M::State)>,
    budget: u64,
    explored: u64,
    path: Vec<usize>,
    deepest: Vec<usize>,
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

impl<M: Model> Search<'_, M> {
    /// `Some(found)`, or `None` when the budget ran out.
    fn run(&mut self, done: Vec<u64>, state: M::State) -> Option<bool> {
        if self.path.len() > self.deepest.len() {
            self.deepest = self.path.clone();
        }
        // Every operation with a known outcome placed: success (the unknown
        // ones may never have happened).
        let pending = |k: usize| !is_done(&done, k);
        let call = |k: usize| &self.calls[self.part[k]];
        let n = self.part.len();
        if !(0..n).any(|k| pending(k) && call(k).completed.is_some()) {
            return Some(true);
        }
        self.explored += 1;
        if self.explored > self.budget {
            return None;
        }
        if !self.visited.insert((done.clone(), state.clone())) {
            return Some(false);
        }
        // Nothing invoked after the earliest pending completion may come
        // before that operation.
        let horizon = (0..n).filter(|&k| pending(k)).filter_map(|k| call(k).completed).min().unwrap_or(u64::MAX);
        let mut candidates = Vec::new();
        for k in 0..n {
            let call = call(k);
            if !pending(k) || call.invoked > horizon {
                continue;
            }
            let (next, output) = self.model.step(&state, &call.op);
            if call.output.as_ref().is_some_and(|o| *o != output) {
                continue;
            }
            if next == state {
                if call.output.is_some() && self.model.is_query(&call.op) {
                    // A query that answers what it answered: if any order
                    // from here explains the rest, one that places it
                    // first does (moved to the front it sees this state,
                    // and, changing no state, leaves every other operation
                    // the state it saw; it may come now, so no order
                    // constraint breaks). Placed without trying the others.
                    candidates.clear();
                    candidates.push((k, next));
                    break;
                }
                if call.output.is_none() {
                    // An unknown outcome that changes nothing here: placed
                    // now, it only loses its later chances (an unknown
                    // operation need not be placed at all, and it stays
                    // available for a state it would change).
                    continue;
                }
            }
            candidates.push((k, next));
        }
        for (k, next) in candidates {
            let mut after = done.clone();
            after[k / 64] |= 1 << (k % 64);
            self.path.push(k);
            let found = self.run(after, next);
            self.path.pop();
            if found != Some(false) {
                return found;
            }
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bank of two accounts: transfers (refused without funds) and a read
    /// of both balances.
    struct Bank;
    #[derive(Clone, Debug)]
    enum Op {
        Move(usize, usize, i64),
        Read,
    }
    #[derive(Clone, Debug, PartialEq)]
    enum Out {
        Done,
        Refused,
        Balances([i64; 2]),
    }
    impl Model for Bank {
        type State = [i64; 2];
        type Op = Op;
        type Output = Out;
        fn init(&self) -> [i64; 2] {
            [10, 0]
        }
        fn step(&self, s: &[i64; 2], op: &Op) -> ([i64; 2], Out) {
            match *op {
                Op::Move(from, to, n) if s[from] >= n => {
                    let mut t = *s;
                    t[from] -= n;
                    t[to] += n;
                    (t, Out::Done)
                }
                Op::Move(..) => (*s, Out::Refused),
                Op::Read => (*s, Out::Balances(*s)),
            }
        }

        fn is_query(&self, op: &Op) -> bool {
            matches!(op, Op::Read)
        }
    }

    #[test]
    fn refusals_and_reads_follow_the_model() {
        let ok = [
            Call::completed(Op::Move(0, 1, 7), Out::Done, 0, 5),
            Call::completed(Op::Move(0, 1, 7), Out::Refused, 1, 6),
            Call::completed(Op::Read, Out::Balances([3, 7]), 10, 11),
        ];
        assert_eq!(check_calls(&Bank, &ok, 1_000), Verdict::Linearizable);
        // A refusal the model cannot explain: the funds were there.
        let wrong = [
            Call::completed(Op::Move(0, 1, 7), Out::Refused, 0, 5),
            Call::completed(Op::Read, Out::Balances([10, 0]), 10, 11),
        ];
        let Verdict::NotLinearizable { deepest } = check_calls(&Bank, &wrong, 1_000) else { panic!() };
        assert!(deepest.is_empty());
    }

    #[test]
    fn unknown_calls_may_apply_late_or_never() {
        let late = [
            Call::unknown(Op::Move(0, 1, 4), 0),
            Call::completed(Op::Read, Out::Balances([10, 0]), 5, 6),
            Call::completed(Op::Read, Out::Balances([6, 4]), 8, 9),
        ];
        assert_eq!(check_calls(&Bank, &late, 1_000), Verdict::Linearizable);
        let early = [Call::completed(Op::Read, Out::Balances([6, 4]), 0, 1), Call::unknown(Op::Move(0, 1, 4), 5)];
        assert!(matches!(check_calls(&Bank, &early, 1_000), Verdict::NotLinearizable { .. }));
    }

    /// Reads (and refusals) leave the state as it is: each is placed as
    /// soon as it can come, without trying the others first, and an
    /// unknown operation that would change nothing is not tried at all.
    /// Forty concurrent reads each side of a transfer, thirty unknown
    /// transfers that no balance allows: the plain search tries subsets of
    /// the reads (2^40 states), this one a state per operation.
    #[test]
    fn operations_that_change_nothing_are_placed_without_branching() {
        let history = |stale: bool| {
            let mut calls: Vec<Call<Op, Out>> = Vec::new();
            for i in 0..40 {
                calls.push(Call::completed(Op::Read, Out::Balances([10, 0]), i, 100 + i));
            }
            for i in 0..30 {
                calls.push(Call::unknown(Op::Move(0, 1, 100), i));
            }
            calls.push(Call::completed(Op::Move(0, 1, 3), Out::Done, 200, 210));
            for i in 0..40 {
                let seen = if stale && i == 39 { [10, 0] } else { [7, 3] };
                calls.push(Call::completed(Op::Read, Out::Balances(seen), 300 + i, 400 + i));
            }
            calls
        };
        match check_calls(&Bank, &history(false), 1_000) {
            Verdict::Linearizable => {}
            other => panic!("{other:?}"),
        }
        // A read after the transfer completed that does not see it.
        let Verdict::NotLinearizable { deepest } = check_calls(&Bank, &history(true), 1_000) else { panic!() };
        assert!(deepest.len() >= 80, "the explained prefix: {deepest:?}");
    }

    #[test]
    fn the_budget_gives_unknown() {
        // Forty concurrent transfers of 1 and a read that no order explains:
        // deciding it needs far more than 50 states.
        let mut calls: Vec<Call<Op, Out>> =
            (0..40).map(|i| Call::completed(Op::Move(0, 1, 1), Out::Done, i, 100)).collect();
        calls.push(Call::completed(Op::Read, Out::Balances([5, 5]), 200, 201));
        assert_eq!(check_calls(&Bank, &calls, 50), Verdict::Unknown { explored: 51 });
    }

    /// Registers, one per key: writes (returning nothing) and reads.
    struct Registers {
        partitioned: bool,
    }
    #[derive(Clone, Debug)]
    enum RegOp {
        Write(u64, u64),
        Read(u64),
        /// Reads every register at once: spans every part.
        ReadAll,
    }
    impl Model for Registers {
        type State = BTreeMap<u64, u64>;
        type Op = RegOp;
        type Output = Vec<u64>;
        fn init(&self) -> Self::State {
            BTreeMap::new()
        }
        fn step(&self, s: &Self::State, op: &RegOp) -> (Self::State, Vec<u64>) {
            match *op {
                RegOp::Write(k, v) => {
                    let mut t = s.clone();
                    t.insert(k, v);
                    (t, Vec::new())
                }
                RegOp::Read(k) => (s.clone(), vec![s.get(&k).copied().unwrap_or(0)]),
                RegOp::ReadAll => (s.clone(), s.values().copied().collect()),
            }
        }
        fn part(&self, op: &RegOp) -> Option<u64> {
            match *op {
                RegOp::Write(k, _) | RegOp::Read(k) if self.partitioned => Some(k),
                _ => None,
            }
        }
    }

    /// `keys` keys, each with five concurrent writes and then a read of
    /// the first value written (so only orders that end with that write
    /// explain it); every key's operations overlap every other key's.
    fn registers(keys: u64) -> Vec<Call<RegOp, Vec<u64>>> {
        let mut calls = Vec::new();
        for k in 0..keys {
            for v in 1..=5 {
                calls.push(Call::completed(RegOp::Write(k, v), Vec::new(), 0, 100));
            }
        }
        for k in 0..keys {
            calls.push(Call::completed(RegOp::Read(k), vec![1], 150, 200));
        }
        calls
    }

    #[test]
    fn a_partitioned_model_is_checked_part_by_part() {
        let (whole, parts) = (Registers { partitioned: false }, Registers { partitioned: true });
        let calls = registers(8);
        assert_eq!(check_calls(&parts, &calls, 20_000), Verdict::Linearizable);
        // The last key's read is one no order explains: searched whole, every
        // order of the other keys is tried before it is refuted.
        let mut stale = calls.clone();
        let last = stale.len() - 1;
        stale[last] = Call::completed(RegOp::Read(7), vec![0], 150, 200);
        let searched = check_calls(&whole, &stale, 20_000);
        assert!(matches!(searched, Verdict::Unknown { .. }), "the product of the keys' orders: {searched:?}");
        // Part by part: refuted, with indexes into the history, all of them
        // key 7's writes.
        let Verdict::NotLinearizable { deepest } = check_calls(&parts, &stale, 20_000) else {
            panic!("a stale read of key 7 must be refuted")
        };
        assert!(
            !deepest.is_empty() && deepest.iter().all(|&i| matches!(stale[i].op, RegOp::Write(7, _))),
            "{deepest:?}"
        );

        // An operation that spans parts: the history is checked whole.
        let mut spanning = registers(2);
        spanning.push(Call::completed(RegOp::ReadAll, vec![1, 1], 300, 301));
        assert_eq!(check_calls(&parts, &spanning, 1_000_000), Verdict::Linearizable);
        spanning.push(Call::completed(RegOp::ReadAll, vec![1, 2], 400, 401));
        assert!(matches!(check_calls(&parts, &spanning, 1_000_000), Verdict::NotLinearizable { .. }));
    }
}
