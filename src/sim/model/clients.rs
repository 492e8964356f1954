//! [`RegisterClients`]: the clients of a model run, writing one-byte values
//! to a single register and reading it, recorded as a history for the
//! linearizability checker.
//!
//! Time is a counter of client events (invocations and completions) only:
//! whether a history is linearizable depends on nothing but the order of
//! those events, so two runs that interleave deliveries differently but
//! order their client events alike record the same history (which keeps a
//! model checker's states mergeable).

use bytes::Bytes;

use crate::sim::linearizability::{History, KvOp, NotLinearizable, Operation};
use crate::types::{Index, NodeId, ReadId, Term};

/// The one key of the register.
pub const KEY: &str = "x";

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Op {
    /// `Some(v)`: a write of `v`; `None`: a read.
    write: Option<u8>,
    /// What a completed read saw.
    seen: Option<u8>,
    invoked: u32,
    completed: Option<u32>,
    /// A write the proposing node may still apply: (node, index, term).
    /// A read not answered yet: (node, read id, 0).
    pending: Option<(NodeId, u64, Term)>,
}

/// Client bookkeeping for model runs: call its methods as the nodes act, and
/// [`check`](Self::check) the history.
///
/// A write is invoked when a node accepts its proposal, completes when that
/// node applies it (at the index and term it was appended at), and is known
/// to have failed when that node applies another entry there; a write whose
/// node crashed first stays unknown (it may or may not take effect). A read
/// completes with the value the node's register holds when the node
/// releases it; a read that fails, or whose node crashes, is left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegisterClients {
    ops: Vec<Op>,
    clock: u32,
}

impl RegisterClients {
    /// No operation yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&mut self) -> u32 {
        self.clock += 1;
        self.clock
    }

    /// A node accepted a write of `value`, appending it at `index` in `term`.
    pub fn proposed(&mut self, node: NodeId, value: u8, index: Index, term: Term) {
        let invoked = self.tick();
        self.ops.push(Op {
            write: Some(value),
            seen: None,
            invoked,
            completed: None,
            pending: Some((node, index, term)),
        });
    }

    /// A node applied the entry of `term` at `index`.
    pub fn applied(&mut self, node: NodeId, index: Index, term: Term) {
        let mine = |op: &Op| op.write.is_some() && matches!(op.pending, Some((n, i, _)) if n == node && i == index);
        let Some(pos) = self.ops.iter().position(mine) else { return };
        if self.ops[pos].pending.is_some_and(|(_, _, t)| t == term) {
            let done = self.tick();
            let op = &mut self.ops[pos];
            op.completed = Some(done);
            op.pending = None;
        } else {
            // Another entry took the index: this write never happens.
            self.ops.remove(pos);
        }
    }

    /// A client asked node `node` for a read with id `id`.
    pub fn read(&mut self, node: NodeId, id: ReadId) {
        let invoked = self.tick();
        self.ops.push(Op { write: None, seen: None, invoked, completed: None, pending: Some((node, id, 0)) });
    }

    fn read_pos(&self, node: NodeId, id: ReadId) -> Option<usize> {
        self.ops.iter().position(|op| op.write.is_none() && op.pending == Some((node, id, 0)))
    }

    /// Node `node` released read `id`; its register holds `value`.
    pub fn read_ready(&mut self, node: NodeId, id: ReadId, value: Option<u8>) {
        let Some(pos) = self.read_pos(node, id) else { return };
        let done = self.tick();
        let op = &mut self.ops[pos];
        op.seen = value;
        op.completed = Some(done);
        op.pending = None;
    }

    /// Node `node` failed read `id`.
    pub fn read_failed(&mut self, node: NodeId, id: ReadId) {
        if let Some(pos) = self.read_pos(node, id) {
            self.ops.remove(pos);
        }
    }

    /// Node `node` crashed: its pending writes become unknown, its pending
    /// reads are dropped.
    pub fn crashed(&mut self, node: NodeId) {
        self.ops.retain(|op| op.write.is_some() || !matches!(op.pending, Some((n, _, _)) if n == node));
        for op in &mut self.ops {
            if matches!(op.pending, Some((n, _, _)) if n == node) {
                op.pending = None;
            }
        }
    }

    /// Whether any read completed (only reads can expose a violation of a
    /// register whose writes all carry distinct values).
    pub fn has_reads(&self) -> bool {
        self.ops.iter().any(|op| op.write.is_none() && op.completed.is_some())
    }

    /// The history: every write (unknown ones without a completion) and
    /// every completed read.
    pub fn history(&self) -> History {
        let value = |v: u8| Bytes::copy_from_slice(&[v]);
        let mut history = History::new();
        for op in self.ops.iter().filter(|op| op.write.is_some() || op.completed.is_some()) {
            let kv = match op.write {
                Some(v) => KvOp::Put(value(v)),
                None => KvOp::Get(op.seen.map(value)),
            };
            history.push(Operation {
                key: KEY.into(),
                op: kv,
                invoked: u64::from(op.invoked),
                completed: op.completed.map(u64::from),
            });
        }
        history
    }

    /// Whether the history is linearizable.
    pub fn check(&self) -> Result<(), NotLinearizable> {
        self.history().check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let mut c = RegisterClients::new();
        c.proposed(1, 5, 2, 1);
        c.applied(1, 2, 1);
        c.read(2, 9);
        c.read_ready(2, 9, None);
        assert!(c.check().is_err());
    }

    #[test]
    fn lost_and_unknown_writes() {
        let mut c = RegisterClients::new();
        c.proposed(1, 5, 2, 1);
        c.applied(1, 2, 2); // another term took index 2: the write failed
        c.proposed(1, 6, 3, 2);
        c.crashed(1); // unknown: may show up later, or never
        c.read(2, 1);
        c.read_ready(2, 1, Some(6));
        c.read(3, 2);
        c.crashed(3);
        assert_eq!(c.history().len(), 2, "the lost write and the crashed read are left out");
        assert!(c.check().is_ok());
        c.read(2, 3);
        c.read_ready(2, 3, Some(5));
        assert!(c.check().is_err(), "5 was never written");
    }
}
