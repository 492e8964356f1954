//! Writing a backup file (`raft_io::recovery::Backup::encode`) as the
//! operator's tools do (`examples/backup`, `kv_node`'s `BACKUP`): a new
//! file, never one replaced, written through a temporary that is synced
//! before it takes the name, then the directory synced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to a new file at `path`; an existing file is refused.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if path.exists() {
        return Err(format!("{} exists (a backup never replaces a file)", path.display()));
    }
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".partial");
    // Only a file this call created is removed: one already there is
    // another writer's in progress, or one interrupted (for the operator).
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| {
        format!("create {}: {e} (another backup writing it, or one interrupted: remove it first)", tmp.display())
    })?;
    // A hard link refuses an existing name (two writers racing for it).
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::hard_link(&tmp, path));
    drop(file);
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("write {}: {e}", path.display())
    })?;
    let _ = std::fs::remove_file(&tmp);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent).and_then(|d| d.sync_all()).map_err(|e| format!("sync {}: {e}", parent.display()))?;
    }
    Ok(())
}
