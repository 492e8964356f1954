//! The process's minor page faults, read from `/proc/self/stat` (Linux).
//!
//! A run that touches memory the process has not used yet (or gave back
//! to the system) pays a page fault per 4 KiB page: on a virtual machine
//! that is microseconds each, enough to move a workload's rate. The count
//! is read outside the timed region.

/// Minor faults so far (field 10 of `/proc/self/stat`), or 0 where it
/// cannot be read.
pub fn minor() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may hold spaces:
    // the fields after it are counted from its closing parenthesis.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    // After ')': state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt (10).
    rest.split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0)
}
