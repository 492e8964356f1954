//! What the golden-vector tests share: reading fixture files, listing a
//! fixture directory, and whether this run rewrites the fixtures
//! (`RAFT_IO_BLESS=1`).
#![allow(dead_code)]

use std::path::Path;

/// Whether this run rewrites the fixtures instead of checking them.
pub fn blessing() -> bool {
    std::env::var_os("RAFT_IO_BLESS").is_some_and(|v| v == "1")
}

/// The bytes of the file at `path` (the test fails, naming it, if it
/// cannot be read).
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of the regular files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}
