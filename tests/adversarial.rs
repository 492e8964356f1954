//! The combined adversarial suite (stable Rust): byte scripts drive a
//! simulated key-value cluster through every fault at once — partitions,
//! loss, crashes, snapshots, membership changes, reads and buggy peers
//! (replays, truncated appends, unknown senders, arbitrary decoded frames).
//! The simulator checks the five safety properties after every event; the
//! client history must be linearizable. This is the stable twin of the
//! `cluster` cargo-fuzz target (`fuzz/`).
//!
//! `PROPTEST_CASES=N` scales it (default 256).
#![cfg(feature = "sim")]

use proptest::prelude::*;
use raft_io::sim::ByteScript;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_script_is_safe_and_linearizable(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Safety was checked after every event (a violation panics).
        let (_cluster, history) = ByteScript::new(&bytes).run();
        if let Err(e) = history.check() {
            prop_assert!(false, "not linearizable:\n{}", e);
        }
    }
}

#[test]
fn the_committed_fuzz_corpus_is_safe() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cluster");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let (_cluster, history) = ByteScript::new(&bytes).run();
        assert!(history.check().is_ok(), "{}", entry.path().display());
    }
}
