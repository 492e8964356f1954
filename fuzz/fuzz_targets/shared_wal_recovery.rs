//! Shared WAL recovery from arbitrary bytes: the input describes a
//! `SharedWal` directory (meta file, head marker, segments, per-group
//! snapshot and temporary files; format in
//! `tests/support/shared_wal_input.rs`), which is written to a scratch
//! directory and opened with `SharedWal::open`. The open must never panic;
//! a refusal must leave the directory as it was; a log that opens must have
//! self-consistent groups, reopen to the same state with nothing left to
//! repair, and take writes that survive another reopen.
#![no_main]

#[path = "../../tests/support/shared_wal_input.rs"]
mod shared_wal_input;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("raft-io-fuzz-shared-wal-{}", std::process::id()));
    let dir = shared_wal_input::scratch(&base, 0);
    shared_wal_input::check(data, &dir);
    let _ = std::fs::remove_dir_all(&dir);
});
