//! A linearizability checker for key-value histories.
//!
//! A history is a list of operations on keys — puts, compare-and-sets and
//! reads — each with the time it was invoked and the time its outcome was
//! known. An operation whose outcome is **unknown** (a write whose client
//! never heard back: the node crashed, or lost leadership) may take effect at
//! any point after its invocation, or never. Failed operations (refused,
//! or known not to have been applied) are left out of the history.
//!
//! The history is linearizable when every key's operations can be put in a
//! single order that respects real time (an operation that completed before
//! another was invoked comes first) and in which each read returns the value
//! the register holds at that point. Linearizability is local, so each key
//! is checked on its own, as an instance of the checker for any sequential
//! model ([`Model`], [`check_calls`]) with a register as the model.
//!
//! For your own state machine, state its sequential behaviour as a
//! [`Model`] and check histories of [`Call`]s with [`check_calls`] (a search
//! budget turns an undecidable-in-practice history into
//! [`Verdict::Unknown`]), or let [`Simulation`](super::Simulation) record
//! and check them for you.

mod model;

pub use model::{Call, Model, Verdict, check_calls};

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bytes::Bytes;

/// What an operation did to, or saw of, one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Set the key to this value.
    Put(Bytes),
    /// Set the key to `new` if it holds `expected` (`None`: absent). The
    /// outcome is not observed.
    Cas {
        /// The value the key must hold.
        expected: Option<Bytes>,
        /// The value to set.
        new: Bytes,
    },
    /// A read that saw this value (`None`: absent).
    Get(Option<Bytes>),
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The key.
    pub key: String,
    /// What it did or saw.
    pub op: KvOp,
    /// When it was invoked.
    pub invoked: u64,
    /// When its outcome was known; `None` when it is unknown (a write that may
    /// or may not have taken effect).
    pub completed: Option<u64>,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLinearizable {
    /// The key whose operations admit no valid order.
    pub key: String,
    /// The key's operations, for the report.
    pub operations: Vec<Operation>,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?}: no linearization of its {} operations:", self.key, self.operations.len())?;
        for op in &self.operations {
            let done = op.completed.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            writeln!(f, "  [{} .. {}] {:?}", op.invoked, done, op.op)?;
        }
        Ok(())
    }
}

/// A key-value history under construction.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an operation.
    pub fn push(&mut self, op: Operation) {
        self.ops.push(op);
    }

    /// The operations recorded.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Decides linearizability, key by key.
    pub fn check(&self) -> Result<(), NotLinearizable> {
        let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
        for op in &self.ops {
            by_key.entry(&op.key).or_default().push(op);
        }
        for (key, mut ops) in by_key {
            prune_invisible_unknowns(&mut ops);
            let verdict = check_calls(&Register, &register_calls(&ops), u64::MAX);
            if matches!(verdict, Verdict::NotLinearizable { .. }) {
                return Err(NotLinearizable { key: key.to_owned(), operations: ops.into_iter().cloned().collect() });
            }
        }
        Ok(())
    }
}

/// Drops writes of unknown outcome that nothing could have observed: a
/// value that no read returned and no compare-and-set expected, written
/// after every compare-and-set on the key had completed. Leaving such a
/// write out is always allowed (an unknown write may never have happened),
/// so it cannot hide a violation; and it cannot invent one: no read saw its
/// value and no compare-and-set's outcome could depend on it, so any
/// linearization that includes it stays valid without it. Without this,
/// every unknown write doubles the search.
fn prune_invisible_unknowns(ops: &mut Vec<&Operation>) {
    let seen: Vec<Bytes> = ops
        .iter()
        .filter_map(|o| match &o.op {
            KvOp::Get(Some(v)) => Some(v.clone()),
            KvOp::Cas { expected: Some(v), .. } => Some(v.clone()),
            _ => None,
        })
        .collect();
    // The latest moment a compare-and-set on this key may take effect.
    let last_cas =
        ops.iter().filter(|o| matches!(o.op, KvOp::Cas { .. })).map(|o| o.completed.unwrap_or(u64::MAX)).max();
    ops.retain(|o| {
        let written = match &o.op {
            KvOp::Put(v) | KvOp::Cas { new: v, .. } => v,
            KvOp::Get(_) => return true,
        };
        let invisible = !seen.contains(written) && last_cas.is_none_or(|c| c < o.invoked);
        o.completed.is_some() || !invisible
    });
}

/// The register model of one key: the built-in instance of [`Model`].
/// Values are numbered (0: absent) so that the search hashes small states.
struct Register;

/// An operation on one key, as the register model sees it (values by
/// number).
enum RegisterOp {
    Put(u32),
    Cas(u32, u32),
    Get,
}

impl Model for Register {
    type State = u32;
    type Op = RegisterOp;
    /// The value a read saw (writes return 0).
    type Output = u32;

    fn init(&self) -> u32 {
        0
    }

    fn step(&self, &state: &u32, op: &RegisterOp) -> (u32, u32) {
        match *op {
            RegisterOp::Put(v) => (v, 0),
            RegisterOp::Cas(expected, new) if state == expected => (new, 0),
            RegisterOp::Cas(..) => (state, 0),
            RegisterOp::Get => (state, state),
        }
    }

    fn is_query(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Get)
    }
}

/// One key's operations as calls of the register model.
fn register_calls(ops: &[&Operation]) -> Vec<Call<RegisterOp, u32>> {
    let mut values: HashMap<Bytes, u32> = HashMap::new();
    let mut number = |v: &Option<Bytes>| match v {
        None => 0,
        Some(b) => {
            let next = values.len() as u32 + 1;
            *values.entry(b.clone()).or_insert(next)
        }
    };
    ops.iter()
        .map(|o| {
            let (op, output) = match &o.op {
                KvOp::Put(v) => (RegisterOp::Put(number(&Some(v.clone()))), 0),
                KvOp::Cas { expected, new } => (RegisterOp::Cas(number(expected), number(&Some(new.clone()))), 0),
                KvOp::Get(seen) => (RegisterOp::Get, number(seen)),
            };
            // A write's output is known (0) once it completed.
            let output = o.completed.map(|_| output);
            Call { op, output, invoked: o.invoked, completed: o.completed }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, op: KvOp, invoked: u64, completed: Option<u64>) -> Operation {
        Operation { key: key.into(), op, invoked, completed }
    }
    fn put(v: &'static str) -> KvOp {
        KvOp::Put(Bytes::from_static(v.as_bytes()))
    }
    fn get(v: Option<&'static str>) -> KvOp {
        KvOp::Get(v.map(|v| Bytes::from_static(v.as_bytes())))
    }
    fn history(ops: Vec<Operation>) -> History {
        let mut h = History::new();
        for o in ops {
            h.push(o);
        }
        h
    }

    #[test]
    fn sequential_histories() {
        let ok = history(vec![
            op("x", get(None), 0, Some(1)),
            op("x", put("a"), 2, Some(3)),
            op("x", get(Some("a")), 4, Some(5)),
        ]);
        assert!(ok.check().is_ok());
        let stale = history(vec![
            op("x", put("a"), 0, Some(1)),
            op("x", put("b"), 2, Some(3)),
            op("x", get(Some("a")), 4, Some(5)),
        ]);
        let err = stale.check().unwrap_err();
        assert_eq!(err.key, "x");
        assert!(err.to_string().contains("no linearization"));
    }

    #[test]
    fn concurrent_operations_may_take_either_order() {
        // The read overlaps the write: old or new value are both fine.
        for seen in [None, Some("a")] {
            let h = history(vec![op("x", put("a"), 0, Some(10)), op("x", get(seen), 5, Some(6))]);
            assert!(h.check().is_ok(), "{seen:?}");
        }
        // But two sequential reads may not go back in time.
        let h = history(vec![
            op("x", put("a"), 0, Some(10)),
            op("x", get(Some("a")), 1, Some(2)),
            op("x", get(None), 3, Some(4)),
        ]);
        assert!(h.check().is_err());
    }

    /// A write of the value the register already holds changes nothing
    /// now, but is no query: it may have to come after a concurrent write
    /// of another value (and an unknown one too).
    #[test]
    fn a_write_of_the_value_held_may_still_have_to_come_last() {
        for completed in [Some(20), None] {
            let h = history(vec![
                op("x", put("a"), 0, Some(1)),
                op("x", put("a"), 10, completed),
                op("x", put("b"), 10, Some(20)),
                op("x", get(Some("a")), 30, Some(31)),
            ]);
            assert!(h.check().is_ok(), "second write completed at {completed:?}");
        }
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        // A write whose outcome is unknown may show up much later ...
        let late = history(vec![
            op("x", put("a"), 0, None),
            op("x", get(None), 10, Some(11)),
            op("x", get(Some("a")), 20, Some(21)),
        ]);
        assert!(late.check().is_ok());
        // ... or never.
        let never = history(vec![op("x", put("a"), 0, None), op("x", get(None), 10, Some(11))]);
        assert!(never.check().is_ok());
        // But not before it was invoked.
        let early = history(vec![op("x", get(Some("a")), 0, Some(1)), op("x", put("a"), 5, None)]);
        assert!(early.check().is_err());
    }

    #[test]
    fn cas_follows_the_register() {
        let cas = |e: Option<&'static str>, n: &'static str| KvOp::Cas {
            expected: e.map(|v| Bytes::from_static(v.as_bytes())),
            new: Bytes::from_static(n.as_bytes()),
        };
        let ok = history(vec![
            op("x", put("a"), 0, Some(1)),
            op("x", cas(Some("a"), "b"), 2, Some(3)),
            op("x", cas(Some("a"), "c"), 4, Some(5)),
            op("x", get(Some("b")), 6, Some(7)),
        ]);
        assert!(ok.check().is_ok());
        let bad = history(vec![
            op("x", put("a"), 0, Some(1)),
            op("x", cas(Some("z"), "b"), 2, Some(3)),
            op("x", get(Some("b")), 4, Some(5)),
        ]);
        assert!(bad.check().is_err());
    }

    #[test]
    fn unknown_writes_nobody_saw_are_dropped_without_hiding_violations() {
        // Ten unknown writes nobody read: decided at once.
        let mut ops: Vec<Operation> =
            (0..10u64).map(|i| op("x", KvOp::Put(Bytes::from(format!("u{i}"))), i, None)).collect();
        ops.push(op("x", put("a"), 20, Some(21)));
        ops.push(op("x", get(Some("a")), 22, Some(23)));
        assert!(history(ops.clone()).check().is_ok());
        // A stale read is still caught with them around.
        ops.push(op("x", put("b"), 24, Some(25)));
        ops.push(op("x", get(Some("a")), 26, Some(27)));
        assert!(history(ops).check().is_err());
    }

    #[test]
    fn keys_are_independent() {
        let h = history(vec![
            op("x", put("1"), 0, Some(1)),
            op("y", get(None), 2, Some(3)),
            op("x", get(Some("1")), 2, Some(3)),
        ]);
        assert!(h.check().is_ok());
    }

    #[test]
    fn a_larger_concurrent_history_is_decided_quickly() {
        // 60 overlapping writes and reads on one key: the memoized search
        // must not blow up.
        let mut ops = Vec::new();
        for i in 0..30u64 {
            let v = Bytes::from(format!("v{i}"));
            ops.push(op("k", KvOp::Put(v.clone()), i * 10, Some(i * 10 + 15)));
            ops.push(op("k", KvOp::Get(Some(v)), i * 10 + 12, Some(i * 10 + 14)));
        }
        assert!(history(ops).check().is_ok());
    }
}
