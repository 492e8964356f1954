//! The five safety properties of Raft (§5.2–5.4 of the Raft paper), each
//! checked by its own module after every simulated event:
//!
//! | property | module |
//! |---|---|
//! | Election Safety: at most one leader per term | `election_safety` |
//! | Leader Append-Only: a leader never overwrites or deletes its entries | `leader_append_only` |
//! | Log Matching: equal index and term imply equal prefixes | `log_matching` |
//! | Leader Completeness: a leader holds every committed entry | `leader_completeness` |
//! | State Machine Safety: no two nodes apply different entries (or reach different states) at one index | `state_machine_safety` |
//!
//! and two properties the paper states in passing, which a node can break
//! without breaking the five:
//!
//! | property | module |
//! |---|---|
//! | Apply Order: a running node applies entries in log order, each once, and never restores a snapshot behind what it applied | `apply_order` |
//! | Snapshot Integrity: a restored snapshot holds the bytes a state machine took at its index | `snapshot_integrity` |
//!
//! and two checks that need more than the stepped node's journal: the two
//! configuration rules of single-server changes (`config_rules`), which
//! read the stepped node's log above the commit index, and the inductive
//! form of Leader Completeness (`electable`), over every running node.
//!
//! Logs are followed incrementally through prefix hashes (`chain`), so a
//! check costs time proportional to what changed, not to the log length.

mod apply_order;
mod chain;
mod config_rules;
mod electable;
mod election_safety;
mod leader_append_only;
mod leader_completeness;
mod log_matching;
mod snapshot_integrity;
mod state_machine_safety;

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use super::log::{LogChange, SimLog};
use crate::types::{Index, NodeId, Role, Term};

use apply_order::ApplyOrder;
use chain::Chain;
use config_rules::{ConfigRules, StepView};
use election_safety::ElectionSafety;
use leader_append_only::LeaderAppendOnly;
use leader_completeness::LeaderCompleteness;
use log_matching::LogMatching;
use snapshot_integrity::SnapshotIntegrity;
use state_machine_safety::StateMachineSafety;

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property, as named in the Raft paper.
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.detail)
    }
}

impl Violation {
    /// The property of a user invariant ([`Cluster::set_invariant`](crate::sim::Cluster::set_invariant)).
    pub const USER_INVARIANT: &'static str = "User invariant";
    /// The property of a client history that the user's model cannot
    /// explain ([`Simulation`](crate::sim::Simulation) runs).
    pub const LINEARIZABILITY: &'static str = "Linearizability";
    /// The property of a cluster that did not recover after healing.
    pub const LIVENESS: &'static str = "Liveness";
    /// User code (state machine, generator, formatter or model) panicked
    /// during a [`Simulation`](crate::sim::Simulation) run.
    pub const USER_PANIC: &'static str = "User code panicked";
    /// The property of an [`Action::ApplyRange`](crate::Action::ApplyRange)
    /// the node could not lend when its step's actions were carried out.
    pub const APPLIED_RANGE: &'static str = "Applied range readable";

    /// A violation of `property`, with what was observed.
    pub fn new(property: &'static str, detail: impl Into<String>) -> Self {
        Self { property, detail: detail.into() }
    }
}

/// What the checkers see of one node after a step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeView {
    pub(crate) id: NodeId,
    pub(crate) role: Role,
    pub(crate) term: Term,
    pub(crate) commit: Index,
    pub(crate) applied: Index,
    pub(crate) digest: u64,
}

/// All the checkers and the per-node log chains they share.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    chains: BTreeMap<NodeId, Chain>,
    election: ElectionSafety,
    append_only: LeaderAppendOnly,
    matching: LogMatching,
    completeness: LeaderCompleteness,
    state_machine: StateMachineSafety,
    apply_order: ApplyOrder,
    snapshots: SnapshotIntegrity,
    rules: ConfigRules,
}

/// The committed commands `first..=last` of `node` (after its
/// [`Action::ApplyRange`](crate::Action::ApplyRange)), copied out to the
/// end of `range` (a buffer the caller reuses: the simulator allocates
/// nothing per range) so that the simulator can check each before applying
/// it; a range the node cannot lend is a violation of
/// [`Violation::APPLIED_RANGE`].
pub(crate) fn applied_range<L: crate::log::RaftLog>(
    node: &crate::node::RaftNode<L>,
    first: Index,
    last: Index,
    range: &mut Vec<(Index, Term, bytes::Bytes)>,
) -> Result<(), Violation> {
    node.visit_applied(first, last, |index, term, command| range.push((index, term, command.clone()))).map_err(|e| {
        Violation::new(Violation::APPLIED_RANGE, format!("the applied range {first}..={last} could not be read: {e}"))
    })
}

impl Checker {
    /// A node (re)started on `log` (what survived its crash): follow the log
    /// from scratch.
    pub(crate) fn restart(&mut self, id: NodeId, log: &SimLog) -> Result<(), Violation> {
        let chain = Chain::from_log(log, &mut self.matching)?;
        self.chains.insert(id, chain);
        self.apply_order.restart(id);
        Ok(())
    }

    /// Every check of one node's step that needs that node alone, in
    /// order: Apply Order's completeness (before the new applied index is
    /// recorded), the checks that follow the log through its journal
    /// (`after_step`), and the configuration rules, which read the log
    /// above the commit index. `before` is the node's role, term and last
    /// index before the step. Returns whether the log changed.
    pub(crate) fn node_stepped(
        &mut self,
        node: &mut crate::node::RaftNode<SimLog>,
        before: (Role, Term, Index),
        view: NodeView,
    ) -> Result<bool, Violation> {
        self.apply_order.check_complete(view.id, view.applied, node.log())?;
        let mut journaled = false;
        node.log_mut_for_sim().drain_journal(|changes, digests| {
            journaled = !changes.is_empty();
            self.after_step((before.0, before.1), view, changes, digests)
        })?;
        let step = StepView { id: view.id, before, role: view.role, term: view.term, commit: view.commit };
        self.rules.check(step, node.log())?;
        Ok(journaled)
    }

    /// Checks one node after a step: `before` is its role and term before
    /// the step, `changes` what happened to its log.
    fn after_step(
        &mut self,
        before: (Role, Term),
        view: NodeView,
        changes: &[LogChange],
        digests: &[(Index, Term, u64)],
    ) -> Result<(), Violation> {
        let chain = self.chains.entry(view.id).or_default();
        let last_before = chain.last();
        let mut digests = digests.iter();
        for &change in changes {
            chain.apply(change, &mut digests, &mut self.matching)?;
        }
        self.append_only.check(before, view, changes, last_before, chain.last())?;
        self.election.check(view)?;
        self.completeness.check(view, chain)?;
        self.state_machine.check_state(view)?;
        self.apply_order.check_state(view)?;
        Ok(())
    }

    /// The inductive form of Leader Completeness over `nodes` (the running
    /// nodes of one cluster or group, each already checked after its last
    /// step): every node that could be elected now holds the committed
    /// prefix (`electable`).
    pub(crate) fn electable<L: crate::log::RaftLog>(
        &self,
        nodes: &[&crate::node::RaftNode<L>],
    ) -> Result<(), Violation> {
        electable::check(nodes, &self.chains, &self.completeness)
    }

    /// A node sent a message only a leader of `term` sends (AppendEntries,
    /// a heartbeat, a snapshot chunk): it led `term`, even if it stepped
    /// down again within the same step.
    pub(crate) fn led(&mut self, node: NodeId, term: Term) -> Result<(), Violation> {
        self.election.check(NodeView { id: node, role: Role::Leader, term, commit: 0, applied: 0, digest: 0 })
    }

    /// Checks an entry a node hands to its state machine.
    pub(crate) fn applied(&mut self, node: NodeId, index: Index, term: Term, command: &Bytes) -> Result<(), Violation> {
        self.apply_order.check_apply(node, index)?;
        self.state_machine.check_apply(node, index, term, command)
    }

    /// Checks a configuration entry a node reports committed
    /// (`Action::MembershipCommitted`).
    pub(crate) fn membership_committed(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        self.apply_order.check_config(node, index)
    }

    /// A state machine took a snapshot `data` of its state at `index`.
    pub(crate) fn snapshot_taken(&mut self, index: Index, data: &[u8]) {
        self.snapshots.taken(index, data);
    }

    /// Checks a snapshot `data` a node restores at `index`, before the state
    /// machine sees it.
    pub(crate) fn restoring(&mut self, node: NodeId, index: Index, data: &[u8]) -> Result<(), Violation> {
        self.snapshots.check_restore(node, index, data)?;
        self.apply_order.check_restore(node, index)
    }

    /// Checks a node's state right after it restored a snapshot.
    pub(crate) fn restored(&mut self, node: NodeId, index: Index, digest: u64) -> Result<(), Violation> {
        self.state_machine.check_restore(node, index, digest)
    }
}
