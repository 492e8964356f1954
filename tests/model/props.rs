//! The properties judged on every state the model reaches. Each check runs
//! right after the step that could break it and records the first broken
//! property in the state (`State::broken`); the model's `always`
//! properties read that record, so a counterexample ends at the step that
//! broke the property.
//!
//! | property | how |
//! |---|---|
//! | Election Safety | the leader of each term (ghost), from roles and from leader-only messages sent |
//! | Leader Append-Only | a node leading one term across a step keeps its log as a prefix (less what it compacted) |
//! | Log Matching | any two logs that agree on an entry's term agree on every entry up to it |
//! | Leader Completeness | a leader of term T holds every entry committed in a term below T (ghost: the committed log, with the term each entry was first reported committed in); and, the inductive form the paper's proof rests on, every node that could win an election now (its log is at least as up to date as every log of some quorum of its configuration) holds every committed entry |
//! | State Machine Safety | every node's committed prefix agrees with the committed log; every applied entry matches the first applied at its index |
//! | Configuration rules | a leader appends a configuration entry only once an entry of its term committed; no log holds two configuration entries above the committed index |
//! | Apply Order | within a step, each command applied lies past the last one applied and a snapshot restored covers what was applied (`apply_order`, action by action), and the commands applied and configurations reported committed are exactly the command and configuration entries the applied index passed (`apply_complete`; ranges are read from the log first); across steps, a node's applied index never moves back while it runs |
//! | Linearizability | the clients' history, after every completed read |
//! | No unexpected error / No panic | a tick or message never fails, a refusal is one of the expected kinds, no step panics |

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use raft_io::{Action, Entry, EntryKind, Index, MemoryLog, NodeId, RaftLog, RaftNode, Role, Term};

use super::state::State;
use super::step::{Before, entries};

fn digest(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    (e.term, e.index, e.kind, &e.data).hash(&mut h);
    h.finish()
}

/// Election Safety: `node` led `term`.
pub fn led(s: &mut State, node: NodeId, term: Term) {
    match s.ghost.leaders.binary_search_by_key(&term, |(t, _)| *t) {
        Ok(at) if s.ghost.leaders[at].1 != node => {
            let other = s.ghost.leaders[at].1;
            s.break_with("Election Safety", format!("nodes {other} and {node} both lead term {term}"));
        }
        Ok(_) => {}
        Err(at) => s.ghost.leaders.insert(at, (term, node)),
    }
}

/// State Machine Safety on an applied command.
pub fn applied(s: &mut State, node: NodeId, index: Index, term: Term, command: &Bytes) {
    let d = {
        let mut h = DefaultHasher::new();
        command.hash(&mut h);
        h.finish()
    };
    let at = index as usize - 1;
    while s.ghost.applied.len() <= at {
        s.ghost.applied.push((0, 0));
    }
    match s.ghost.applied[at] {
        (0, 0) => s.ghost.applied[at] = (term, d),
        first if first != (term, d) => s.break_with(
            "State Machine Safety",
            format!("node {node} applied term {term} at index {index}, another node applied term {} there", first.0),
        ),
        _ => {}
    }
}

/// Apply Order within a step, action by action: each command `node`
/// applies lies past the last one it applied (`applied`, which this
/// advances), and a snapshot it restores covers at least that.
pub fn apply_order(s: &mut State, node: NodeId, applied: &mut Index, action: &Action) {
    let (index, restored) = match action {
        Action::Apply { index, .. } => (*index, false),
        Action::RestoreSnapshot { meta, .. } => (meta.index, true),
        _ => return,
    };
    if !restored && index <= *applied {
        s.break_with("Apply Order", format!("node {node} applied index {index} again (applied through {applied})"));
    } else if restored && index < *applied {
        s.break_with(
            "Apply Order",
            format!("node {node} restored a snapshot at index {index} after applying through {applied}"),
        );
    }
    *applied = index;
}

/// Apply Order's completeness after a step of `raft`: the indexes it
/// handed over in the step (commands applied, configurations reported
/// committed, in order, after the last snapshot restored) are exactly the
/// command and configuration entries between `from` (the applied index
/// before the step, or the snapshot restored) and its applied index now,
/// as far as its log still holds them.
pub fn apply_complete(s: &mut State, raft: &RaftNode<MemoryLog>, from: Index, handed: &[Index]) {
    let (id, applied) = (raft.id(), raft.last_applied());
    let lo = (from + 1).max(raft.log().first_index());
    let mut expected = Vec::new();
    if applied >= lo {
        let read = raft.log().visit_entries(lo, applied + 1, &mut |entries: &[Entry]| {
            expected.extend(entries.iter().filter(|e| e.kind != EntryKind::Noop).map(|e| e.index));
        });
        if let Err(e) = read {
            s.break_with("Apply Order", format!("node {id} applied through {applied}, unreadable from {lo}: {e}"));
            return;
        }
    }
    let done: Vec<Index> = handed.iter().copied().filter(|&i| i >= lo).collect();
    if done != expected {
        s.break_with(
            "Apply Order",
            format!(
                "node {id} took its applied index from {from} to {applied}; commands and configurations it \
                 skipped or added: handed over {done:?}, the log holds {expected:?}"
            ),
        );
    }
}

/// Every check that follows a step of node `i`.
pub fn after_step(s: &mut State, i: usize, before: &Before) {
    let raft = &s.nodes[i].raft;
    let (id, role, term, commit, applied, last) =
        (raft.id(), raft.role(), raft.term(), raft.commit_index(), raft.last_applied(), raft.last_index());
    // The term at the commit index, also when a snapshot covers it.
    let commit_term = raft.log().term(commit);
    let log = entries(raft);
    if role == Role::Leader {
        led(s, id, term);
    }
    // Leader Append-Only.
    if let (Some(old), true) =
        (&before.entries, before.role == Role::Leader && role == Role::Leader && before.term == term)
    {
        // Compaction removes a prefix the leader applied: what it still
        // holds of the old log must be unchanged, and nothing past it gone.
        let first = log.first().map_or(last + 1, |e| e.index);
        let kept: Vec<&raft_io::Entry> = old.iter().filter(|e| e.index >= first).collect();
        let changed = kept.len() > log.len() || kept.iter().zip(&log).any(|(o, n)| *o != n);
        if changed || last < before.last {
            s.break_with("Leader Append-Only", format!("leader {id} of term {term} changed or removed entries"));
        }
    }
    // Apply Order: a node's applied index never moves back while it runs
    // (a snapshot it restores covers at least what it applied).
    if applied < before.applied {
        s.break_with(
            "Apply Order",
            format!("node {id}'s applied index moved back from {} to {applied}", before.applied),
        );
        return;
    }
    committed(s, id, term, commit, &log);
    config_rules(s, id, before, (role, term, commit), commit_term, &log);
    log_matching(s, i, &log);
    leader_completeness(s);
    electable_complete(s);
}

/// Learns the committed log from a node and checks that node agrees with it.
fn committed(s: &mut State, id: NodeId, term: Term, commit: Index, log: &[Entry]) {
    for e in log.iter().take_while(|e| e.index <= commit) {
        let at = (e.index - 1) as usize;
        match s.ghost.committed.get(at) {
            Some(&(t, d, _)) if (t, d) != (e.term, digest(e)) => {
                s.break_with(
                    "State Machine Safety",
                    format!(
                        "node {id} committed term {} at index {}, the committed log has term {t} there",
                        e.term, e.index
                    ),
                );
                return;
            }
            Some(_) => {}
            None if at == s.ghost.committed.len() => s.ghost.committed.push((e.term, digest(e), term)),
            // A gap below this node's log (a snapshot): nothing to learn.
            None => return,
        }
    }
}

/// The configuration rules (see the module table).
fn config_rules(
    s: &mut State,
    id: NodeId,
    before: &Before,
    after: (Role, Term, Index),
    commit_term: Option<Term>,
    log: &[Entry],
) {
    let (role, term, commit) = after;
    let led_throughout = before.role == Role::Leader && role == Role::Leader && before.term == term;
    if led_throughout {
        let own_committed = commit_term == Some(term);
        let early = log.iter().find(|e| e.index > before.last && e.kind == EntryKind::Config && e.term == term);
        if let (Some(e), false) = (early, own_committed) {
            s.break_with(
                "Configuration rules",
                format!(
                    "leader {id} of term {term} appended a configuration entry at index {} before an entry of its \
                     term committed (its commit index is {commit})",
                    e.index
                ),
            );
        }
    }
    let committed = s.ghost.committed_index();
    let pending: Vec<Index> =
        log.iter().filter(|e| e.index > committed && e.kind == EntryKind::Config).map(|e| e.index).collect();
    if pending.len() > 1 {
        s.break_with(
            "Configuration rules",
            format!("node {id} holds configuration entries at {pending:?}, all above the commit index {committed}"),
        );
    }
}

/// Log Matching between node `i` and every other node.
fn log_matching(s: &mut State, i: usize, log: &[Entry]) {
    let id = s.nodes[i].id();
    for j in 0..s.nodes.len() {
        if j == i {
            continue;
        }
        let other = entries(&s.nodes[j].raft);
        let other_id = s.nodes[j].id();
        let term_at = |l: &[Entry], index: Index| l.iter().find(|e| e.index == index).map(|e| e.term);
        let top = log.last().map_or(0, |e| e.index).min(other.last().map_or(0, |e| e.index));
        let Some(agree) = (1..=top).rev().find(|&x| term_at(log, x).is_some() && term_at(log, x) == term_at(&other, x))
        else {
            continue;
        };
        let differs = log
            .iter()
            .take_while(|e| e.index <= agree)
            .find(|e| other.iter().find(|o| o.index == e.index).is_some_and(|o| o != *e));
        if let Some(e) = differs {
            s.break_with(
                "Log Matching",
                format!("nodes {id} and {other_id} agree on the term at index {agree} but differ at index {}", e.index),
            );
            return;
        }
    }
}

/// Leader Completeness for every leader.
fn leader_completeness(s: &mut State) {
    for n in &s.nodes {
        let raft = &n.raft;
        if !raft.is_leader() {
            continue;
        }
        let log = raft.log();
        for (at, &(t, _, reported)) in s.ghost.committed.iter().enumerate() {
            let index = at as Index + 1;
            if reported < raft.term() && index >= log.first_index() && log.term(index) != Some(t) {
                let detail = format!(
                    "node {} leads term {} without the entry of term {t} committed at index {index} in term {reported}",
                    raft.id(),
                    raft.term()
                );
                s.break_with("Leader Completeness", detail);
                return;
            }
        }
    }
}

/// Leader Completeness, inductive form: a node whose log is at least as up
/// to date as the logs of a quorum of its configuration could collect their
/// votes, so it must already hold every committed entry.
fn electable_complete(s: &mut State) {
    if s.ghost.committed.is_empty() {
        return;
    }
    let up = |raft: &raft_io::RaftNode<raft_io::MemoryLog>| {
        let last = raft.last_index();
        (raft.log().term(last).unwrap_or(0), last)
    };
    let logs: Vec<(NodeId, (Term, Index))> = s.nodes.iter().map(|n| (n.id(), up(&n.raft))).collect();
    for n in &s.nodes {
        let raft = &n.raft;
        let (id, config) = (raft.id(), raft.membership());
        if !config.is_voter(id) {
            continue;
        }
        let mine = up(raft);
        if !config.has_quorum(|v| logs.iter().any(|(x, theirs)| *x == v && mine >= *theirs)) {
            continue;
        }
        let log = raft.log();
        for (at, &(t, _, reported)) in s.ghost.committed.iter().enumerate() {
            let index = at as Index + 1;
            if index >= log.first_index() && log.term(index) != Some(t) {
                let detail = format!(
                    "node {id} could be elected (its log is as up to date as a quorum's) without the entry of term \
                     {t} committed at index {index} in term {reported}"
                );
                s.break_with("Leader Completeness", detail);
                return;
            }
        }
    }
}
