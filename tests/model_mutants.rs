//! The model checker bites: each deliberate bug of `raft_io::mutants` listed
//! here is switched on in turn, the model configuration aimed at it is
//! explored breadth-first on one thread (so the first counterexample found
//! is a shortest one), and the test asserts that a property breaks, prints
//! the counterexample as a model script, and replays that script on real
//! nodes under the simulator's checkers, which must see a violation too.
//!
//! Needs a build with the mutants compiled in (release: the deepest
//! counterexample takes about a minute):
//! `RUSTFLAGS="--cfg raft_io_mutants" CARGO_TARGET_DIR=target/mutants cargo test --release --features sim --test model_mutants`

#![cfg(all(raft_io_mutants, feature = "sim"))]

mod model;

use std::sync::Mutex;

use model::{ChangePlan, Params, run};
use raft_io::mutants::{self, Mutant};
use raft_io::sim::model::{ModelScript, replay};

/// Three voters, elections by explicit timeouts, pre-vote and check-quorum
/// off (the defaults of `ModelCluster::new`).
fn three(name: &'static str, timeouts: u8) -> Params {
    let mut p = Params::new(name, [1, 2, 3]);
    p.timeouts = timeouts;
    p.cluster.max_entries = 4;
    p
}

/// The configuration aimed at each mutant, and the properties that may
/// catch it.
fn aimed_at(mutant: Mutant) -> (Params, &'static [&'static str]) {
    match mutant {
        Mutant::ForgetVoteOnRestart => {
            let mut p = three("forget-vote", 2);
            p.crashes = 1;
            (p, &["Election Safety"])
        }
        Mutant::VoteWithoutLogCheck => (three("vote-without-log-check", 2), &["Leader Completeness"]),
        Mutant::SkipConsistencyCheck => (three("skip-consistency-check", 3), &["Log Matching"]),
        Mutant::ReadIndexWithoutQuorum => {
            let mut p = three("read-index-without-quorum", 2);
            p.proposals = 1;
            p.reads = 1;
            // A network of four messages: the shortest stale read then
            // takes 14 steps (about 2 million states); with eight it lies
            // deeper than a CI run should go.
            p.cluster.capacity = 4;
            (p, &["Linearizability"])
        }
        Mutant::EarlyMembershipChange => {
            let mut p = three("early-membership-change", 1);
            p.change = Some(ChangePlan::Remove(3));
            (p, &["Configuration rules"])
        }
        Mutant::CommitPreviousTerm => {
            let mut p = three("commit-previous-term", 3);
            // One entry per append: the leader learns a match at an entry
            // of an earlier term before one at its own no-op.
            p.cluster.max_entries = 1;
            (p, &["Leader Completeness", "State Machine Safety"])
        }
        Mutant::HoldNothing => {
            // An acknowledgement (or a vote) sent before the write it
            // promises is durable, then a crash that loses the write.
            let mut p = three("hold-nothing", 2);
            p.cluster.async_storage = true;
            p.crashes = 1;
            (p, &["Election Safety", "Leader Completeness", "State Machine Safety"])
        }
        Mutant::CountUndurableSelf => {
            // A leader commits with its own unwritten entry, crashes and
            // loses it: a node without the entry can then win.
            let mut p = three("count-undurable-self", 2);
            p.cluster.async_storage = true;
            p.proposals = 1;
            p.crashes = 1;
            (p, &["Leader Completeness", "State Machine Safety"])
        }
        Mutant::JointIgnoresOutgoing => {
            // Voter 3 replaced by joining node 4: the joint entry commits
            // with nodes 1 and 4 alone, and 2 or 3 can then win without it.
            let mut p = three("joint-ignores-outgoing", 2);
            p.cluster.joining = vec![4];
            p.cluster.capacity = 4;
            p.change = Some(ChangePlan::Replace { out: 3, into: 4 });
            (p, &["Leader Completeness", "State Machine Safety", "Configuration rules"])
        }
        Mutant::SnapshotBackwards => {
            // A joining learner installs the leader's snapshot, commits
            // the entry after it, and then a copy of the snapshot arrives:
            // installed again, its applied index moves back. One voter, so
            // that the learner's part is all the model explores.
            let mut p = Params::new("snapshot-backwards", [1]);
            p.timeouts = 1;
            p.cluster.max_entries = 4;
            p.cluster.joining = vec![4];
            p.cluster.capacity = 4;
            p.proposals = 1;
            p.compactions = 1;
            p.duplicates = 1;
            p.change = Some(ChangePlan::AddLearner(4));
            (p, &["Apply Order", "State Machine Safety"])
        }
        Mutant::UntrackedConfigEntry => {
            // One voter adds a learner while handing commands over by
            // range: its configuration entry, applied in the step that
            // appends it, goes unreported.
            let mut p = Params::new("untracked-config-entry", [1]);
            p.timeouts = 1;
            p.cluster.joining = vec![4];
            p.cluster.apply_ranges = true;
            p.change = Some(ChangePlan::AddLearner(4));
            (p, &["Apply Order"])
        }
        Mutant::LeaseBeforeTermCommit => {
            // From a settled leader (the warm-up), a write commits and
            // leadership is transferred to the follower before it learns
            // the commit; one tick gives the new leader a heartbeat round,
            // answered before its no-op is: its lease holds while its
            // commit index still misses the write. Two voters, so that the
            // network of four messages has room for the round.
            let mut p = Params::new("lease-before-term-commit", [1, 2]);
            p.cluster.max_entries = 4;
            p.cluster.capacity = 4;
            p.cluster.pre_vote = true;
            p.cluster.check_quorum = true;
            p.cluster.lease_reads = true;
            p.cluster.election_timeout = (3, 4);
            p.cluster.lease_drift = 1;
            p.warm_start = true;
            p.ticks = 2;
            p.proposals = 1;
            p.transfers = 1;
            p.reads = 1;
            (p, &["Linearizability"])
        }
        other => panic!("no model configuration for {other:?}"),
    }
}

/// Mutants are switched on process-wide: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn bites(mutant: Mutant) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (mut params, expected) = aimed_at(mutant);
    // The search stops at the first violation, far below the estimate of
    // the whole space; RAFT_IO_MODEL_MAX_STATES still bounds it.
    params.limit = f64::INFINITY;
    mutants::set(Some(mutant));
    let outcome = run(params, 1);
    mutants::set(None);
    let outcome = outcome.unwrap_or_else(|e| panic!("{e}"));
    println!("{mutant:?}: {outcome}");
    let failure = outcome.failure.unwrap_or_else(|| panic!("mutant {mutant:?} survived the model checker"));
    assert!(expected.contains(&failure.property), "{mutant:?} broke {} ({})", failure.property, failure.detail);
    let text = failure.script.to_string();
    println!("counterexample ({} steps; replay with raft_io::sim::model::replay):\n{text}", failure.script.steps.len());
    let parsed: ModelScript = text.parse().expect("the printed script parses");
    assert_eq!(parsed, failure.script);
    mutants::set(Some(mutant));
    let report = replay(&parsed);
    mutants::set(None);
    let report = report.expect("the counterexample replays");
    let seen = report.failure.unwrap_or_else(|| panic!("the replay of the {mutant:?} counterexample broke nothing"));
    println!("replay: {seen}");
}

#[test]
fn snapshot_backwards() {
    bites(Mutant::SnapshotBackwards);
}

#[test]
fn forget_vote_on_restart() {
    bites(Mutant::ForgetVoteOnRestart);
}

#[test]
fn vote_without_log_check() {
    bites(Mutant::VoteWithoutLogCheck);
}

#[test]
fn skip_consistency_check() {
    bites(Mutant::SkipConsistencyCheck);
}

#[test]
fn read_index_without_quorum() {
    bites(Mutant::ReadIndexWithoutQuorum);
}

#[test]
fn early_membership_change() {
    bites(Mutant::EarlyMembershipChange);
}

#[test]
fn commit_previous_term() {
    bites(Mutant::CommitPreviousTerm);
}

#[test]
fn hold_nothing() {
    bites(Mutant::HoldNothing);
}

#[test]
fn count_undurable_self() {
    bites(Mutant::CountUndurableSelf);
}

#[test]
fn joint_ignores_outgoing() {
    bites(Mutant::JointIgnoresOutgoing);
}

#[test]
fn untracked_config_entry() {
    bites(Mutant::UntrackedConfigEntry);
}

#[test]
fn lease_before_term_commit() {
    bites(Mutant::LeaseBeforeTermCommit);
}
