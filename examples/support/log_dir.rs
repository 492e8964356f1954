//! What log a node's directory holds, for the operator's tools
//! (`examples/force_voters`, `examples/backup`): opening a log creates one
//! where there is none, so a tool looks before it opens.

use std::path::Path;

/// `Ok(true)` for a shared WAL's directory, `Ok(false)` for a `WalLog`'s,
/// and an error naming the directory when it holds neither.
pub fn is_shared(dir: &Path) -> Result<bool, String> {
    if dir.join("sharedwal.meta").is_file() {
        Ok(true)
    } else if dir.join("raftlog.meta").is_file() {
        Ok(false)
    } else {
        Err(format!("{}: no log here (neither raftlog.meta nor sharedwal.meta)", dir.display()))
    }
}
