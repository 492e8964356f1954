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
//! memory). It stops
//! after a budget of visited search states with [`Verdict::Unknown`]:
//! deciding linearizability is NP-complete in general, and a budget makes
//! that visible instead of hanging.

use std::collections::HashSet;
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
/// visiting at most `budget` search states.
pub fn check_calls<M: Model>(model: &M, calls: &[Call<M::Op, M::Output>], budget: u64) -> Verdict {
    let mut search =
        Search { model, calls, visited: HashSet::new(), budget, explored: 0, path: Vec::new(), deepest: Vec::new() };
    let done = vec![0u64; calls.len().div_ceil(64)];
    match search.run(done, model.init()) {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::NotLinearizable { deepest: search.deepest },
        None => Verdict::Unknown { explored: search.explored },
    }
}

struct Search<'a, M: Model> {
    model: &'a M,
    calls: &'a [Call<M::Op, M::Output>],
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
        let pending = |i: usize| !is_done(&done, i);
        if !(0..self.calls.len()).any(|i| pending(i) && self.calls[i].completed.is_some()) {
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
        let horizon = (0..self.calls.len())
            .filter(|&i| pending(i))
            .filter_map(|i| self.calls[i].completed)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.calls.len() {
            let call = &self.calls[i];
            if !pending(i) || call.invoked > horizon {
                continue;
            }
            let (next, output) = self.model.step(&state, &call.op);
            if call.output.as_ref().is_some_and(|o| *o != output) {
                continue;
            }
            let mut after = done.clone();
            after[i / 64] |= 1 << (i % 64);
            self.path.push(i);
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

    #[test]
    fn the_budget_gives_unknown() {
        // Forty concurrent transfers of 1 and a read that no order explains:
        // deciding it needs far more than 50 states.
        let mut calls: Vec<Call<Op, Out>> =
            (0..40).map(|i| Call::completed(Op::Move(0, 1, 1), Out::Done, i, 100)).collect();
        calls.push(Call::completed(Op::Read, Out::Balances([5, 5]), 200, 201));
        assert_eq!(check_calls(&Bank, &calls, 50), Verdict::Unknown { explored: 51 });
    }
}
