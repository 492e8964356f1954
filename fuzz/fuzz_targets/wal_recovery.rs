//! WAL recovery from arbitrary bytes: the input describes a log directory
//! (meta file, head marker, segments, snapshot and temporary files; format
//! in `tests/support/wal_dir_input.rs`), which is written to a scratch
//! directory and opened with `WalLog::open`. The open must never panic; a
//! refusal must leave the directory as it was; a log that opens must be
//! self-consistent, reopen to the same state with nothing left to repair,
//! and take a write that survives another reopen.
#![no_main]

#[path = "../../tests/support/wal_dir_input.rs"]
mod wal_dir_input;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("raft-io-fuzz-wal-recovery-{}", std::process::id()));
    let dir = wal_dir_input::scratch(&base, 0);
    wal_dir_input::check(data, &dir);
    let _ = std::fs::remove_dir_all(&dir);
});
