//! Exhaustive model checking of real nodes: every configuration below is
//! explored breadth-first to the end of its bounded state space, and every
//! property of `tests/model/props.rs` must hold in every state (see
//! `docs/TESTING.md`, "Model checking", for the figures).
//!
//! `cargo test --all-features` (debug) runs the smallest configuration; the
//! others run in release in CI:
//! `cargo test --release --features sim --test model_check -- --test-threads 1`.
//! The deep run:
//! `cargo test --release --features sim --test model_check deep -- --ignored --nocapture`.

#![cfg(feature = "sim")]

mod model;

use model::{ChangePlan, Params, ParamsError, run, run_depth_first};

fn explore(params: Params) -> model::Outcome {
    let outcome = run(params, 2).unwrap_or_else(|e| panic!("{e}"));
    println!("{outcome}");
    if let Some(f) = &outcome.failure {
        panic!("{} violated: {}\ncounterexample:\n{}", f.property, f.detail, f.script);
    }
    assert!(outcome.exhaustive, "{outcome}");
    // Every state the configuration is meant to reach was reached: a
    // model that never gets there checks nothing there.
    assert!(outcome.missing.is_empty(), "{outcome}: never reached: {:?}", outcome.missing);
    outcome
}

/// Three voters, four entries per append, a network of four messages.
fn three(name: &'static str) -> Params {
    let mut p = Params::new(name, [1, 2, 3]);
    p.cluster.max_entries = 4;
    p.cluster.capacity = 4;
    p
}

/// `p` with committed commands handed over by range
/// (`RaftConfig::apply_ranges`), named `name`.
fn by_ranges(mut p: Params, name: &'static str) -> Params {
    p.name = name;
    p.cluster.apply_ranges = true;
    p
}

/// `p` in the asynchronous storage mode, named `name`.
fn asynchronous(mut p: Params, name: &'static str) -> Params {
    p.name = name;
    p.cluster.async_storage = true;
    p
}

/// The configurations, by name.
fn config(name: &str) -> Params {
    match name {
        // One election and a write.
        "write" => {
            let mut p = three("write").commit_notices();
            p.timeouts = 1;
            p.proposals = 1;
            p
        }
        // One election and two writes: a follower learns a commit from
        // the next write's append, or from the leader's tick.
        "two-writes" => {
            let mut p = three("two-writes").commit_notices();
            p.timeouts = 1;
            p.proposals = 2;
            p
        }
        // One election and a read (ReadIndex, at any node).
        "read" => {
            let mut p = three("read");
            p.timeouts = 1;
            p.reads = 1;
            p
        }
        // One election, a write and a read: the linearizability check
        // has something to judge.
        "write-read" => {
            let mut p = three("write-read").commit_notices();
            p.timeouts = 1;
            p.proposals = 1;
            p.reads = 1;
            p
        }
        // Two elections.
        "elections" => {
            let mut p = three("elections");
            p.timeouts = 2;
            p
        }
        // Two elections with pre-vote.
        "pre-vote" => {
            let mut p = three("pre-vote");
            p.timeouts = 2;
            p.cluster.pre_vote = true;
            p
        }
        // An election, a write, a crash-restart.
        "crash" => {
            let mut p = three("crash").commit_notices();
            p.timeouts = 1;
            p.proposals = 1;
            p.crashes = 1;
            p
        }
        // An election and a write, with a lost and a duplicated message.
        "faults" => {
            let mut p = three("faults").commit_notices();
            p.timeouts = 1;
            p.proposals = 1;
            p.drops = 1;
            p.duplicates = 1;
            p
        }
        // Real time: ticks drive elections and heartbeats, with pre-vote,
        // check-quorum and lease reads.
        "timed" => {
            let mut p = three("timed");
            p.ticks = 6;
            p.cluster.pre_vote = true;
            p.cluster.check_quorum = true;
            p.cluster.lease_reads = true;
            p.cluster.election_timeout = (3, 4);
            p.cluster.lease_drift = 1;
            p.reads = 1;
            p
        }
        // Lease reads around a leadership transfer: from a settled leader
        // (the warm-up), a write, a transfer to the follower and a read
        // (lease or ReadIndex, at either node), with two ticks, fewer than
        // the shortest election timeout: no election but the transfer's,
        // so the clocks' drift cannot matter. The new leader's commit
        // index may miss the write its predecessor committed until its own
        // no-op commits; a lease read served before that (a round
        // answered, the lease valid) would be stale. Two voters: with
        // three, the new leader's heartbeat round finds the network of
        // four messages full, and a larger network or a second follower
        // takes the space past 8 million states.
        "lease-transfer" => {
            let mut p = Params::new("lease-transfer", [1, 2]);
            p.cluster.max_entries = 4;
            p.cluster.capacity = 4;
            p.warm_start = true;
            p.cluster.pre_vote = true;
            p.cluster.check_quorum = true;
            p.cluster.lease_reads = true;
            p.cluster.election_timeout = (3, 4);
            p.cluster.lease_drift = 1;
            p.ticks = 2;
            p.proposals = 1;
            p.transfers = 1;
            p.reads = 1;
            p
        }
        // A joining node added as a learner, then promoted.
        "add" => {
            let mut p = three("add").commit_notices();
            p.cluster.joining = vec![4];
            p.timeouts = 1;
            p.change = Some(ChangePlan::AddAndPromote(4));
            p
        }
        // Voter 3 replaced by joining node 4 in one change: through the
        // joint configuration and out of it.
        "replace" => {
            let mut p = three("replace").commit_notices();
            p.cluster.joining = vec![4];
            p.timeouts = 1;
            p.change = Some(ChangePlan::Replace { out: 3, into: 4 });
            p
        }
        // Commands handed over by range, read from the log: two writes
        // (runs of commands handed over without a read), and a voter
        // replaced through a joint configuration (configuration entries
        // that end a run, or come alone).
        "two-writes-ranges" => by_ranges(config("two-writes"), "two-writes-ranges"),
        "replace-ranges" => by_ranges(config("replace"), "replace-ranges"),
        // A joining node added as a learner while any node may compact
        // its log at its applied index: the leader streams its snapshot
        // (or the initial, empty one) to the joiner, in every order
        // against the write and the compaction.
        "compact" => {
            let mut p = three("compact");
            p.cluster.joining = vec![4];
            p.timeouts = 1;
            p.proposals = 1;
            p.compactions = 1;
            p.change = Some(ChangePlan::AddLearner(4));
            p
        }
        // A voter that misses an append (one lost message) after the
        // leader compacted is sent the leader's snapshot.
        "compact-behind" => {
            let mut p = three("compact-behind");
            p.timeouts = 1;
            p.proposals = 2;
            p.compactions = 1;
            p.drops = 1;
            p
        }
        // Two compactions (the same node twice, or two nodes) around two
        // writes and a lost append: a follower behind two snapshots, a
        // snapshot sent while a newer one is taken. Explored depth-first
        // (its breadth-first frontier would take gigabytes).
        "compact-twice" => {
            let mut p = config("compact-behind");
            p.name = "compact-twice";
            p.compactions = 2;
            // The estimate (6e7) counts each compaction tenfold; the
            // space is 2.7 million distinct states.
            p.limit = 1e8;
            p
        }
        // A voter removed, then a second election.
        "remove" => {
            let mut p = three("remove").commit_notices();
            p.timeouts = 2;
            p.change = Some(ChangePlan::Remove(3));
            p
        }
        // Asynchronous storage: an election and a write, every write of
        // every node finishing at any point after its step (or never).
        "async-write" => asynchronous(config("write"), "async-write"),
        // The deep run: two writes in the asynchronous mode (writes of one
        // node in flight together, finishing in order, against the
        // messages).
        "deep-async-two-writes" => asynchronous(config("two-writes"), "deep-async-two-writes"),
        // Asynchronous storage with a crash: the writes in flight are lost.
        "async-crash" => asynchronous(config("crash"), "async-crash"),
        // Asynchronous storage, two elections and a crash: votes and terms
        // that were not durable when a node crashed.
        "async-elections" => {
            let mut p = asynchronous(config("elections"), "async-elections");
            p.crashes = 1;
            p
        }
        // One election and a leadership transfer to any other voter, at
        // any point (the new leader's no-op commits in its term).
        "transfer" => {
            let mut p = three("transfer").commit_notices();
            p.timeouts = 1;
            p.transfers = 1;
            p
        }
        // The same with a write, which the transfer may overtake.
        "transfer-write" => {
            let mut p = config("transfer");
            p.name = "transfer-write";
            p.proposals = 1;
            p
        }
        // Bounded liveness from every state: a leader after healing.
        "liveness" => {
            let mut p = three("liveness");
            p.timeouts = 1;
            p.crashes = 1;
            p.drops = 1;
            p.liveness = true;
            p
        }
        // The deep run: three elections; nine ticks of real time.
        "deep-elections" => {
            let mut p = three("deep-elections");
            p.timeouts = 3;
            p
        }
        "deep-timed" => {
            let mut p = config("timed");
            p.name = "deep-timed";
            p.ticks = 9;
            p
        }
        other => panic!("no configuration {other}"),
    }
}

/// Runs the named configurations, release only.
fn release(names: &[&str]) {
    for name in names {
        explore(config(name));
    }
}

#[test]
fn small_configurations() {
    // Cheap enough for debug builds (`cargo test --all-features`).
    let o = explore(config("liveness"));
    assert!(o.examples.contains(&"a leader is elected"), "{:?}", o.examples);
    let o = explore(config("write"));
    assert!(o.examples.contains(&"a write is applied"), "{:?}", o.examples);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn elections_and_faults() {
    release(&["read", "elections", "pre-vote", "crash", "faults"]);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn two_writes() {
    let o = explore(config("two-writes"));
    assert!(o.examples.contains(&"every follower applies a write"), "{:?}", o.examples);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn timed_with_pre_vote_check_quorum_and_leases() {
    release(&["timed"]);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn membership_changes() {
    release(&["add", "remove"]);
    let o = explore(config("replace"));
    assert!(o.examples.contains(&"the joint configuration is left"), "{:?}", o.examples);
}

/// Committed commands handed over by range: what the state machines see
/// and the configurations reported are those of applying one by one.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn applying_by_range() {
    let o = explore(config("two-writes-ranges"));
    assert!(o.examples.contains(&"every follower applies a write"), "{:?}", o.examples);
    let o = explore(config("replace-ranges"));
    assert!(o.examples.contains(&"the joint configuration is left"), "{:?}", o.examples);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn writes_and_reads_are_linearizable() {
    let o = explore(config("write-read"));
    assert!(o.examples.contains(&"a read completes"), "{:?}", o.examples);
}

/// Lease reads around a leadership transfer, from a settled leader (the
/// warm-up): the old leader's lease ends with its `TimeoutNow`, and the
/// new leader serves no lease read before its no-op commits (its commit
/// index may miss what its predecessor committed). The target must come
/// to lead and a read must complete.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn lease_reads_around_a_transfer() {
    let o = explore(config("lease-transfer"));
    for reached in ["leadership is transferred", "a read completes", "every follower applies a write"] {
        assert!(o.examples.contains(&reached), "{reached}: {:?}", o.examples);
    }
}

/// Leadership transfers, with and without a write in flight: the target
/// must come to lead (a `sometimes` property), and every property holds on
/// the way.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn leadership_transfers() {
    for name in ["transfer", "transfer-write"] {
        let o = explore(config(name));
        assert!(o.examples.contains(&"leadership is transferred"), "{name}: {:?}", o.examples);
    }
}

/// The asynchronous storage mode: writes finish when the model says, in
/// every order against the messages, and a crash loses those in flight.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn asynchronous_storage() {
    let o = explore(config("async-write"));
    assert!(o.examples.contains(&"every follower applies a write"), "{:?}", o.examples);
    release(&["async-crash", "async-elections"]);
}

/// Application snapshots: any node may compact its log at its applied
/// index; a joining node is sent the leader's snapshot (with the write's
/// value in it when the leader compacted after applying it), and so is a
/// voter that missed an append the leader then compacted.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn compaction_and_snapshots() {
    let o = explore(config("compact"));
    for reached in ["a snapshot is sent", "a snapshot is installed", "a joining node restores a snapshot"] {
        assert!(o.examples.contains(&reached), "{reached}: {:?}", o.examples);
    }
    let o = explore(config("compact-behind"));
    for reached in ["a snapshot is sent", "a snapshot is installed"] {
        assert!(o.examples.contains(&reached), "{reached}: {:?}", o.examples);
    }
}

/// Two compactions, exhaustively, depth-first (memory holds fingerprints
/// and the path, not the frontier): every property holds, and both
/// compactions are taken with snapshots sent on the way.
#[test]
#[cfg_attr(debug_assertions, ignore = "release only: .ci/run runs it")]
fn two_compactions() {
    let outcome = run_depth_first(config("compact-twice"), 2).unwrap_or_else(|e| panic!("{e}"));
    println!("{outcome}");
    if let Some(f) = &outcome.failure {
        panic!("{} violated: {}\ncounterexample:\n{}", f.property, f.detail, f.script);
    }
    assert!(outcome.exhaustive, "{outcome}");
    assert!(outcome.missing.is_empty(), "{outcome}: never reached: {:?}", outcome.missing);
    for reached in ["a snapshot is sent", "two compactions are taken"] {
        assert!(outcome.examples.contains(&reached), "{reached}: {:?}", outcome.examples);
    }
}

/// The deep run (`docs/TESTING.md`): larger budgets, explored depth-first
/// (the breadth-first frontier of these spaces outgrows the memory).
#[test]
#[ignore = "deep run: minutes to hours, see docs/TESTING.md"]
fn deep() {
    let only = std::env::var("RAFT_IO_MODEL_DEEP").ok();
    for name in ["deep-elections", "deep-timed", "deep-async-two-writes"] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut p = config(name);
        p.limit = f64::INFINITY;
        let outcome = run_depth_first(p, 2).unwrap_or_else(|e| panic!("{e}"));
        println!("{outcome}; reached {:?}, never reached {:?}", outcome.examples, outcome.missing);
        if let Some(f) = &outcome.failure {
            panic!("{} violated: {}\ncounterexample:\n{}", f.property, f.detail, f.script);
        }
        assert!(outcome.exhaustive, "{outcome}");
    }
}

#[test]
fn parameters_that_would_explode_are_refused_with_an_estimate() {
    let mut p = config("write-read");
    p.timeouts = 3;
    p.crashes = 2;
    let err = run(p, 1).unwrap_err();
    assert!(matches!(err, ParamsError::TooLarge { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("would explore about") && text.contains("states"), "{text}");
    let mut p = config("write");
    p.ticks = 2;
    assert!(matches!(run(p, 1).unwrap_err(), ParamsError::Invalid(_)));
    let mut p = config("write");
    p.change = Some(ChangePlan::Remove(7));
    assert!(run(p, 1).unwrap_err().to_string().contains("not a voter"));
    let mut p = config("write");
    p.cluster.capacity = 0;
    assert!(matches!(run(p, 1).unwrap_err(), ParamsError::Invalid(_)));
    let mut p = config("write");
    p.cluster.heartbeat = 9;
    assert!(run(p, 1).unwrap_err().to_string().contains("heartbeat"));
}

#[test]
fn replays_of_correct_runs_break_nothing_and_bad_scripts_are_refused() {
    use raft_io::sim::model::{ModelScript, ModelStep, ReplayError, replay};
    // A path the model explores: an election, a write, its replication.
    let mut script = ModelScript { cluster: config("write").cluster, steps: vec![ModelStep::Timeout(1)] };
    let report = replay(&script).unwrap();
    assert!(report.failure.is_none());
    script.steps.push(ModelStep::Tick(9));
    assert!(matches!(replay(&script), Err(ReplayError::Step { step: 2, .. })));
    // The asynchronous mode: the candidate's vote is a write in flight
    // until a step reports it; a report of a write not in flight is refused.
    let mut script = ModelScript { cluster: config("async-write").cluster, steps: vec![ModelStep::Timeout(1)] };
    script.steps.push(ModelStep::Persist(1));
    assert!(replay(&script).unwrap().failure.is_none());
    script.steps.push(ModelStep::Persist(1));
    let err = replay(&script).unwrap_err();
    assert!(err.to_string().contains("no write in flight"), "{err}");
}

#[test]
#[ignore = "measurement helper: MODEL=<name>"]
fn probe() {
    let name = std::env::var("MODEL").unwrap_or_else(|_| "write".into());
    let mut p = config(&name);
    p.limit = f64::INFINITY;
    let o = run(p, 2).unwrap();
    println!("{o} estimate {:.1e}", config(&name).estimate());
}
