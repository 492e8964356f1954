//! What the hand-rolled (non-criterion) benches share: where their temp
//! dirs go, and the median of their rounds.

use std::path::PathBuf;

/// `RAFT_IO_BENCH_DIR` if set, else the system temp dir: where benches
/// make their temp dirs (it must be on the disk meant to be measured, or
/// on a tmpfs to measure the CPU alone).
pub fn base_dir() -> PathBuf {
    std::env::var_os("RAFT_IO_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// The median of `v` (the upper one of an even count); `v` must not be
/// empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
