//! raft-io against raft-rs 0.7 and raft-io 1.0, on the same workloads, in
//! one process, interleaved; prints a table of medians.
//!
//! ```text
//! cargo run --release -- [--reps N] [--scale F] [--only W2,W3] [--profile | --alone SUBJECT]
//! ```
//!
//! `ab.sh REV` runs the same table with raft-io built from revision `REV`
//! in raft-rs's place: two builds of raft-io interleaved in one process.
//!
//! `--profile` runs raft-io alone (for `perf record`, callgrind or
//! cachegrind) and prints no ratios; `--alone raft-rs` or `--alone
//! raft-io-1.0` runs that subject alone, to profile it the same way
//! (`--alone raft-io` is `--profile`).
//!
//! The rules (docs/BENCHMARKS.md, "Against the peers"): one thread drives
//! every node; creating the nodes and electing a leader is untimed; the clock
//! runs from the first proposal until every node has applied every entry;
//! every command is a fresh buffer; messages are delivered one at a time, in
//! the order sent, until none is in flight, then the next round begins; no
//! ticks during the proposals (after the last round, every node is ticked
//! until the followers have applied everything, for libraries that tell
//! followers the commit index only on the next message); a fresh in-memory
//! log per run and no compaction; heartbeat 3 ticks, election timeout
//! 10..=20 ticks, at most 64 entries per message, check-quorum off.

mod alloc;
// Written by `ab.sh` (rustfmt is not to look for it elsewhere).
#[cfg(feature = "base")]
#[rustfmt::skip]
mod base;
mod faults;
mod old;
mod ours;
#[cfg_attr(feature = "base", allow(dead_code))]
mod raftrs;
mod workload;

use std::time::Duration;

use workload::{Stats, Subject, Workload};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

#[cfg(not(feature = "base"))]
const SUBJECTS: [&str; 3] = ["raft-io 0.8", "raft-rs 0.7", "raft-io 1.0"];
/// `ab.sh`: the second subject is this crate built from an earlier
/// revision (`src/base.rs`, which the script writes).
#[cfg(feature = "base")]
const SUBJECTS: [&str; 3] = ["raft-io 0.8", "base", "raft-io 1.0"];

fn run_one(subject: usize, w: &Workload) -> Stats {
    fn go<S: Subject>(w: &Workload) -> Stats {
        debug_assert!(!S::NAME.is_empty());
        let mut s = S::setup(w);
        // Read before and after the run, outside its timed region.
        let f0 = faults::minor();
        let mut stats = s.run(w);
        stats.faults = faults::minor().saturating_sub(f0);
        stats
    }
    match subject {
        0 => go::<ours::Ours>(w),
        #[cfg(not(feature = "base"))]
        1 => go::<raftrs::RaftRs>(w),
        #[cfg(feature = "base")]
        1 => go::<base::Base>(w),
        _ => go::<old::Old>(w),
    }
}

/// The median of the runs' page faults per 1 000 entries.
fn faults_per_1k(runs: &[Stats], w: &Workload) -> f64 {
    median(runs.iter().map(|st| st.faults as f64 * 1000.0 / w.entries as f64).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    let mut reps = 5usize;
    let mut scale = 1.0f64;
    let mut only: Option<Vec<String>> = None;
    // One subject alone (profiling), or all of them interleaved.
    let mut alone: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--scale" => scale = args.next().and_then(|v| v.parse().ok()).expect("--scale F"),
            "--profile" => alone = Some(0),
            "--alone" => {
                alone = Some(match args.next().as_deref() {
                    Some("raft-io") => 0,
                    Some("raft-rs") => 1,
                    Some("raft-io-1.0") => 2,
                    other => panic!("--alone raft-io|raft-rs|raft-io-1.0, not {other:?}"),
                })
            }
            "--only" => only = Some(args.next().expect("--only W1,W2").split(',').map(String::from).collect()),
            _ => panic!("unknown argument {a}"),
        }
    }
    let workloads: Vec<Workload> = workload::all(scale)
        .into_iter()
        .filter(|w| only.as_ref().is_none_or(|o| o.iter().any(|n| n == w.name)))
        .collect();
    // results[w][subject][rep]
    let mut results = vec![vec![Vec::<Stats>::new(); SUBJECTS.len()]; workloads.len()];
    for rep in 0..reps {
        for (wi, w) in workloads.iter().enumerate() {
            if let Some(s) = alone {
                results[wi][s].push(run_one(s, w));
                continue;
            }
            for k in 0..SUBJECTS.len() {
                let s = (k + rep) % SUBJECTS.len();
                results[wi][s].push(run_one(s, w));
            }
        }
        eprintln!("rep {}/{reps} done", rep + 1);
    }
    if let Some(s) = alone {
        for (wi, w) in workloads.iter().enumerate() {
            let rates = results[wi][s].iter().map(|st| w.entries as f64 / st.elapsed.as_secs_f64() / 1e6);
            // raft-io's own line keeps the form earlier figures quote.
            let name = if s == 0 { "raft-io" } else { SUBJECTS[s] };
            let faults = faults_per_1k(&results[wi][s], w);
            println!(
                "{} {name} alone: {:.3} M entries/s (median), {faults:.1} faults/1k entries",
                w.name,
                median(rates.collect())
            );
        }
        return;
    }
    println!(
        "{reps} interleaved repetitions; medians; ratios are medians of per-repetition ratios, \
         with the lowest and highest of them in brackets"
    );
    println!();
    println!(
        "| workload | entries | library | M entries/s | raft-io 0.8 / this | allocs/entry | faults/1k entries | messages/entry | tail ticks |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (wi, w) in workloads.iter().enumerate() {
        let rate = |st: &Stats| w.entries as f64 / st.elapsed.as_secs_f64() / 1e6;
        for (s, name) in SUBJECTS.iter().enumerate() {
            let runs = &results[wi][s];
            let m = median(runs.iter().map(rate).collect());
            let ratios: Vec<f64> = (0..reps).map(|r| rate(&results[wi][0][r]) / rate(&runs[r])).collect();
            let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let ratio = median(ratios);
            let allocs = median(runs.iter().map(|st| st.allocs as f64 / w.entries as f64).collect());
            let faults = faults_per_1k(runs, w);
            let msgs = median(runs.iter().map(|st| st.messages as f64 / w.entries as f64).collect());
            let ticks = median(runs.iter().map(|st| st.tail_ticks as f64).collect());
            let ratio = if s == 0 { "—".to_string() } else { format!("{ratio:.2}x ({lo:.2}–{hi:.2})") };
            println!(
                "| {} | {} | {name} | {m:.2} | {ratio} | {allocs:.3} | {faults:.1} | {msgs:.3} | {ticks} |",
                w.name, w.entries
            );
        }
    }
    let total: Duration = results.iter().flatten().flatten().map(|s| s.elapsed).sum();
    println!();
    println!("timed total {:.1} s", total.as_secs_f64());
}
