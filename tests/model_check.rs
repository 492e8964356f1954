//! Exhaustive model checking of real nodes (see `tests/model/mod.rs` and
//! `docs/TESTING.md`, "Model checking").

#![cfg(feature = "sim")]

mod model;

use model::{Params, run};

fn explore(params: Params) -> model::Outcome {
    let outcome = run(params, 2).unwrap_or_else(|e| panic!("{e}"));
    println!("{outcome}");
    outcome
}

#[test]
fn probe() {
    let mut p = Params::new("probe", [1, 2, 3]);
    p.timeouts = std::env::var("T").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    p.proposals = std::env::var("P").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    p.limit = 1e12;
    let o = explore(p);
    if let Some(f) = &o.failure {
        println!("{}", f.script);
    }
}
