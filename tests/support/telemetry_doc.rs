//! The series table of src/telemetry.rs's docs, for the tests that check
//! it against what an exporter renders (`tests/telemetry_publish.rs`,
//! `tests/multi_metrics.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;

/// The `| names | kind | meaning |` rows of src/telemetry.rs's docs: each
/// documented name and its kind (`counter` or `gauge`).
pub fn documented_kinds() -> BTreeMap<String, String> {
    let source = include_str!("../../src/telemetry.rs");
    let mut kinds = BTreeMap::new();
    for row in source.lines().filter_map(|l| l.strip_prefix("//! | `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let kind = cells[1].split_whitespace().next().unwrap_or_default().to_owned();
        for name in cells[0].split(", ") {
            kinds.insert(name.trim_matches('`').to_owned(), kind.clone());
        }
    }
    kinds
}

/// The `# TYPE` lines of a Prometheus text render: each name and its kind.
pub fn exported_kinds(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// Whether `name` is one of the many-groups runtime's host series.
pub fn is_multi(name: &str) -> bool {
    name.starts_with("raft_multi_")
}
