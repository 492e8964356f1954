//! The clients of [`MultiCluster`]: one register per group (a replica's
//! state machine), written and read (ReadIndex) by the simulator's clients,
//! and each group's history checked against the register model.

use super::MultiCluster;
use crate::multi::GroupId;
use crate::node::{Event, ReadKind};
use crate::rng::mix;
use crate::sim::linearizability::{Call, Model, Verdict, check_calls};
use crate::sim::{HashChain, StateMachine, Violation};
use crate::types::{Index, NodeId, ReadId, Term};

/// A group replica's state machine: a hash chain of every command (for
/// State Machine Safety) and the last command (a register).
#[derive(Clone, Debug, Default)]
pub(super) struct Register {
    chain: HashChain,
    pub(super) value: u64,
}

impl Register {
    pub(super) fn apply(&mut self, index: Index, command: &bytes::Bytes) {
        self.chain.apply(index, command);
        self.value = value_of(command);
    }

    pub(super) fn snapshot(&self) -> bytes::Bytes {
        let mut out = self.value.to_be_bytes().to_vec();
        out.extend_from_slice(&self.chain.snapshot());
        out.into()
    }

    pub(super) fn restore(&mut self, data: &bytes::Bytes) {
        let (head, rest) = data.split_at(data.len().min(8));
        self.value = head.try_into().map(u64::from_be_bytes).unwrap_or(0);
        self.chain.restore(&data.slice(data.len() - rest.len()..));
    }

    pub(super) fn digest(&self) -> u64 {
        mix(self.chain.digest(), self.value)
    }
}

/// The value a command writes: its 8 bytes (0 for anything else).
fn value_of(command: &[u8]) -> u64 {
    command.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// The register model of every group.
struct RegisterModel;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RegOp {
    Write(u64),
    Read,
}

impl Model for RegisterModel {
    type State = u64;
    type Op = RegOp;
    type Output = u64;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, state: &u64, op: &RegOp) -> (u64, u64) {
        match *op {
            RegOp::Write(v) => (v, v),
            RegOp::Read => (*state, *state),
        }
    }
}

/// A client operation not yet resolved.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub(super) group: GroupId,
    pub(super) op: RegOp,
    pub(super) invoked: u64,
    /// A write: the index and term it was appended at, once known.
    pub(super) at: Option<(Index, Term)>,
    /// A read: the node and read id it was issued as.
    pub(super) read: Option<(NodeId, ReadId)>,
}

impl MultiCluster {
    /// A client writes a fresh value to `group`'s register at its leader;
    /// false if it has none (or it refused). The write enters the group's
    /// history.
    pub fn write(&mut self, group: GroupId) -> Result<bool, Violation> {
        // A request to a paused host is lost (it is never proposed).
        let Some(leader) = self.leader(group).filter(|&l| !self.is_paused(l)) else { return Ok(false) };
        let Some(i) = self.slot(leader) else { return Ok(false) };
        self.next_value += 1;
        let value = self.next_value;
        let command = bytes::Bytes::copy_from_slice(&value.to_be_bytes());
        // Stamped before the step: a one-node group applies it inside.
        let invoked = self.stamps.next(self.now);
        let Some(host) = self.slots[i].host.as_mut() else { return Ok(false) };
        if host.step(group, Event::Propose(command)).is_err() {
            self.carry_out(i)?;
            return Ok(false);
        }
        // Where the step put it (its applies are carried out below).
        let at = host.group(group).and_then(|n| n.last_proposal()).map(|p| (p.first, p.term));
        self.pending.push(Pending { group, op: RegOp::Write(value), invoked, at, read: None });
        self.carry_out(i)?;
        Ok(true)
    }

    /// A client reads `group`'s register at its leader (a lease read where
    /// the run's seed gave the group lease reads, ReadIndex elsewhere);
    /// false if it has none (or it refused). A read that completes enters
    /// the history.
    pub fn read(&mut self, group: GroupId) -> Result<bool, Violation> {
        let Some(leader) = self.leader(group) else { return Ok(false) };
        self.read_at(group, leader)
    }

    /// A client reads `group`'s register at node `id`, whatever `id`
    /// believes about its role (a client that reaches a leader its
    /// followers can no longer hear); as [`read`](Self::read) otherwise.
    pub(super) fn read_at(&mut self, group: GroupId, id: NodeId) -> Result<bool, Violation> {
        // A request to a paused host is lost (it is never proposed).
        if self.is_paused(id) {
            return Ok(false);
        }
        let Some(i) = self.slot(id) else { return Ok(false) };
        self.next_read += 1;
        let read = self.next_read;
        let invoked = self.stamps.next(self.now);
        let Some(host) = self.slots[i].host.as_mut() else { return Ok(false) };
        let kind = if super::lease_reads(self.cfg.seed, group) { ReadKind::Lease } else { ReadKind::Index };
        let ok = host.step(group, Event::Read { id: read, kind }).is_ok();
        if ok {
            self.pending.push(Pending { group, op: RegOp::Read, invoked, at: None, read: Some((id, read)) });
        }
        self.carry_out(i)?;
        Ok(ok)
    }

    /// Every group's history, checked against the register model (the
    /// writes still unresolved may or may not have happened). Returns the
    /// operations checked and the groups the search budget left undecided.
    pub fn check_histories(&mut self) -> Result<(usize, usize), Violation> {
        let (mut operations, mut unknown) = (0, 0);
        for g in 1..=self.cfg.groups {
            let mut calls = self.histories.get(&g).cloned().unwrap_or_default();
            for p in self.pending.iter().filter(|p| p.group == g) {
                if let RegOp::Write(_) = p.op {
                    calls.push(Call::unknown(p.op, p.invoked));
                }
            }
            operations += calls.len();
            match check_calls(&RegisterModel, &calls, 200_000) {
                Verdict::Linearizable => {}
                Verdict::Unknown { .. } => unknown += 1,
                Verdict::NotLinearizable { deepest } => {
                    return Err(Violation::new(
                        "Linearizability",
                        format!(
                            "group {g}: no order of its {} operations fits a register (deepest valid prefix {deepest:?})",
                            calls.len()
                        ),
                    ));
                }
            }
        }
        Ok((operations, unknown))
    }

    /// A write proposed through [`write`](Self::write) was applied at
    /// `index` with `term` on some node: resolve it (or drop it, if another
    /// term's entry took its index: it never happened).
    pub(super) fn resolve_writes(&mut self, group: GroupId, index: Index, term: Term) {
        let mut k = 0;
        while k < self.pending.len() {
            let p = self.pending[k];
            if p.group == group && p.at.is_some_and(|(i, _)| i == index) {
                self.pending.swap_remove(k);
                if let (RegOp::Write(v), Some((_, t))) = (p.op, p.at) {
                    if t == term {
                        let completed = self.stamps.next(self.now);
                        self.histories.entry(group).or_default().push(Call::completed(p.op, v, p.invoked, completed));
                    }
                }
                continue;
            }
            k += 1;
        }
    }

    /// A read finished on `node`: with the value its register holds now, or
    /// failed (no effect, dropped).
    pub(super) fn resolve_read(&mut self, node: NodeId, group: GroupId, id: ReadId, value: Option<u64>) {
        let Some(k) = self.pending.iter().position(|p| p.read == Some((node, id)) && p.group == group) else { return };
        let p = self.pending.swap_remove(k);
        if let Some(v) = value {
            let completed = self.stamps.next(self.now);
            self.histories.entry(group).or_default().push(Call::completed(RegOp::Read, v, p.invoked, completed));
        }
    }
}
