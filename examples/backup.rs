//! The operator's backup tool (`raft_io::recovery`, docs/PROTOCOL.md §7.5),
//! on stopped nodes' directories — a `WalLog`'s, or one group of a shared
//! WAL's (`--group`):
//!
//! ```text
//! cargo run --features persistence --example backup -- take DIR FILE [--group G]
//! cargo run --features persistence --example backup -- show FILE
//! cargo run --features persistence --example backup -- restore FILE DIR --node N --cluster C --voters ID[=ADDR],... [--group G] [--max-record-bytes B]
//! ```
//!
//! `take` writes what the node's log holds committed — its snapshot and
//! the committed entries after it — to FILE (a new file, synced). Take it
//! from the node with the highest commit index for the most recent state
//! (or take an online backup from the leader: `RaftHandle::backup`). It
//! opens the log as the node's next start would (a torn tail is cut, as
//! the node would cut it; the record limit is left as it is); the
//! directory of a running node is locked, and refused.
//!
//! `restore` starts a new cluster from FILE when every node of the old one
//! is lost: it writes the backup into DIR, a new log (DIR must not exist)
//! of node N in cluster C — a new cluster id: the backup's own is refused
//! — with the voters given (N among them); each voter keeps the address
//! the backup's configuration gave it unless `=ADDR` sets one. The log is
//! built in `DIR.restoring` and renamed into place once complete, so a
//! refused or failed restore leaves no log behind. Start the node on DIR
//! with the new cluster id: it restores the snapshot, applies the entries
//! after it, and leads alone if it is the only voter. Never run an old
//! node again.
//!
//! `--max-record-bytes B` (1 to 4294967295) is the new log's maximum record
//! size, the most bytes one step writes (`WalOptions::max_record_size`;
//! not given, a new log's default of 64 MiB). A backup with an entry that
//! does not fit is refused, naming the entry: restore it with a larger
//! limit. Into a shared WAL (`--group`) it is the WAL's limit, for all its
//! groups: one above the WAL's own is recorded, one below it refused. The
//! node opens the log without a limit of its own (the log keeps the one
//! recorded) or with one at least as large (a lower one is refused).
//!
//! Exit status: 0 done, 1 refused (nothing written), 2 a command line
//! that cannot be used.

#[path = "support/backup_file.rs"]
mod backup_file;
#[path = "support/log_dir.rs"]
mod log_dir;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use raft_io::log::WalOptions;
use raft_io::log::shared::{SharedWal, SharedWalOptions};
use raft_io::recovery::{self, Backup};
use raft_io::{LogIdentity, Membership, MemoryLog, NodeId, WalLog};

const USAGE: &str = "usage: backup take DIR FILE [--group G]
       backup show FILE
       backup restore FILE DIR --node N --cluster C --voters ID[=ADDR],... [--group G] [--max-record-bytes B]
           B: the new log's maximum record size, 1 to 4294967295 (default 64 MiB)";

/// A command line that cannot be used (exit status 2).
struct Usage(String);

fn describe(b: &Backup) -> String {
    let from = b
        .source
        .map_or("a log with no owner".to_owned(), |i| format!("node {} of cluster {}", i.node_id, i.cluster_id));
    let voters = b.membership().map_or_else(|| "unreadable".to_owned(), |m| format!("{:?}", m.voters()));
    format!(
        "backup of {from}: snapshot at {} (term {}, {} bytes), {} committed entries after it; state through index {} (term {}); voters then {voters}",
        b.snapshot.index,
        b.snapshot.term,
        b.data.len(),
        b.entries.len(),
        b.last_index(),
        b.last_term(),
    )
}

fn take(dir: &Path, file: &Path, group: Option<u64>) -> Result<(), String> {
    let shared = log_dir::is_shared(dir)?;
    let backup = match (shared, group) {
        (true, Some(g)) => {
            let wal = SharedWal::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
            if !wal.contains(g) {
                return Err(format!("group {g} is not in {}", dir.display()));
            }
            let log = wal.group(g).map_err(|e| format!("group {g}: {e}"))?;
            let backup = recovery::take_backup(&log).map_err(|e| format!("group {g}: {e}"))?;
            drop(log);
            wal.close().map_err(|e| format!("close {}: {e}", dir.display()))?;
            backup
        }
        (true, None) => return Err(format!("{}: a shared WAL; name the group to back up (--group G)", dir.display())),
        (false, Some(_)) => return Err(format!("{}: --group is for a shared WAL, and this is one log", dir.display())),
        (false, None) => {
            let log = WalLog::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
            recovery::take_backup(&log).map_err(|e| format!("{}: {e}", dir.display()))?
        }
    };
    backup_file::write_new(file, &backup.encode())?;
    println!("{}", describe(&backup));
    println!("written to {}", file.display());
    Ok(())
}

fn read(file: &Path) -> Result<Backup, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("read {}: {e}", file.display()))?;
    Backup::decode(&bytes.into()).map_err(|e| format!("{}: {e}", file.display()))
}

/// The voters of `--voters ID[=ADDR],...`, each with the address given,
/// if any; checked as a configuration (no 0, no duplicate).
type Voters = Vec<(NodeId, Option<String>)>;

fn parse_voters(list: &str) -> Result<Voters, Usage> {
    let mut voters = Vec::new();
    for v in list.split(',') {
        let (id, addr) = match v.split_once('=') {
            Some((id, addr)) => (id, Some(addr.trim().to_owned())),
            None => (v, None),
        };
        let id: NodeId = id.trim().parse().map_err(|_| Usage(format!("--voters: not a node id: {id:?}")))?;
        voters.push((id, addr));
    }
    Membership::new(voters.iter().map(|(id, _)| *id), []).map_err(|e| Usage(format!("--voters: {e}")))?;
    Ok(voters)
}

/// The new configuration: the voters given, each with the address given
/// or the one the backup's configuration in effect gave it.
fn membership(backup: &Backup, voters: &Voters) -> Result<Membership, String> {
    let old = backup.membership();
    let mut m = Membership::new(voters.iter().map(|(id, _)| *id), []).map_err(|e| format!("--voters: {e}"))?;
    for (id, addr) in voters {
        let addr = match addr {
            Some(a) => Some(bytes::Bytes::copy_from_slice(a.as_bytes())),
            None => old.as_ref().and_then(|o| o.address(*id).cloned()),
        };
        if let Some(addr) = addr {
            m = m.with_address(*id, addr).map_err(|e| format!("--voters: {e}"))?;
        }
    }
    Ok(m)
}

/// Where `restore` writes: the group of a shared WAL (`--group`), or a
/// new `WalLog`; and the new log's record limit (`--max-record-bytes`).
struct Target {
    group: Option<u64>,
    max_record: Option<u32>,
}

fn restore(file: &Path, dir: &Path, identity: LogIdentity, voters: &Voters, target: Target) -> Result<(), String> {
    let backup = read(file)?;
    let members = membership(&backup, voters)?;
    let node = identity.node_id;
    // Every refusal first, on a log in memory: nothing is written for a
    // restore that would be refused.
    recovery::restore(&mut MemoryLog::new(), identity, &backup, members.clone())
        .map_err(|e| format!("{e} (nothing written)"))?;
    match target.group {
        Some(g) => {
            if log_dir::is_shared(dir) == Ok(false) {
                return Err(format!("{}: --group is for a shared WAL, and this is one log", dir.display()));
            }
            let options =
                target.max_record.map_or_else(SharedWalOptions::new, |b| SharedWalOptions::new().max_record_size(b));
            let wal = SharedWal::open_with(dir, options).map_err(|e| format!("open {}: {e}", dir.display()))?;
            if wal.contains(g) {
                return Err(format!("group {g} is already in {} (restore into a new group only)", dir.display()));
            }
            let mut log = wal.create_group(g).map_err(|e| format!("group {g}: {e}"))?;
            let restored = recovery::restore(&mut log, identity, &backup, members.clone());
            drop(log);
            if let Err(e) = restored {
                // A group restored part way must not be started: removed.
                let removed =
                    wal.remove_group(g).map_or_else(|r| format!("; removing it failed: {r}"), |()| String::new());
                return Err(format!("group {g}: {e}{removed}"));
            }
            wal.close().map_err(|e| format!("close {}: {e}", dir.display()))?;
        }
        None => {
            if dir.exists() {
                return Err(format!("{} exists (restore into a new directory only)", dir.display()));
            }
            // Restored next to its place, then renamed into it: a restore
            // that fails part way leaves no log a node could start on.
            let mut building = PathBuf::from(dir);
            building.as_mut_os_string().push(".restoring");
            if building.exists() {
                return Err(format!("{} exists (a restore cut short? remove it)", building.display()));
            }
            let options = target.max_record.map_or_else(WalOptions::new, |b| WalOptions::new().max_record_size(b));
            let restored = WalLog::open_with(&building, options)
                .map_err(|e| format!("open {}: {e}", building.display()))
                .and_then(|mut log| {
                    recovery::restore(&mut log, identity, &backup, members.clone())
                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                    log.close().map_err(|e| format!("close {}: {e}", building.display()))
                })
                .and_then(|()| {
                    std::fs::rename(&building, dir).map_err(|e| format!("rename into {}: {e}", dir.display()))
                });
            if let Err(e) = restored {
                let _ = std::fs::remove_dir_all(&building);
                return Err(e);
            }
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| format!("sync {}: {e}", parent.display()))?;
            }
        }
    }
    println!("{}", describe(&backup));
    println!(
        "restored node {node} of cluster {} with voters {:?}, state through index {} (term {})",
        identity.cluster_id,
        members.voters(),
        backup.last_index(),
        backup.last_term()
    );
    Ok(())
}

/// The value of each `--flag value` in `rest`, refusing any other word.
fn flags<'a>(rest: &'a [String], known: &[&str]) -> Result<Vec<(&'a str, &'a str)>, Usage> {
    let mut out = Vec::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if !known.contains(&flag.as_str()) {
            return Err(Usage(format!("unknown argument {flag:?}")));
        }
        let value = it.next().ok_or_else(|| Usage(format!("{flag} needs a value")))?;
        if out.iter().any(|(f, _)| f == flag) {
            return Err(Usage(format!("{flag} given twice")));
        }
        out.push((flag.as_str(), value.as_str()));
    }
    Ok(out)
}

fn number(flags: &[(&str, &str)], name: &str) -> Result<Option<u64>, Usage> {
    flags
        .iter()
        .find(|(f, _)| *f == name)
        .map(|(_, v)| v.parse::<u64>().map_err(|_| Usage(format!("{name}: not a number: {v:?}"))))
        .transpose()
}

/// `--max-record-bytes`: a record limit a `WalLog` takes (1 to `u32::MAX`).
fn record_limit(flags: &[(&str, &str)]) -> Result<Option<u32>, Usage> {
    const NAME: &str = "--max-record-bytes";
    let Some(bytes) = number(flags, NAME)? else { return Ok(None) };
    match u32::try_from(bytes) {
        Ok(0) => Err(Usage(format!("{NAME}: 0 bytes holds no record"))),
        Ok(b) => Ok(Some(b)),
        Err(_) => Err(Usage(format!("{NAME}: {bytes} is over the largest record limit, {}", u32::MAX))),
    }
}

fn run(args: &[String]) -> Result<Result<(), String>, Usage> {
    let path = |s: &String| PathBuf::from(s);
    match args {
        [cmd, dir, file, rest @ ..] if cmd == "take" => {
            let f = flags(rest, &["--group"])?;
            Ok(take(&path(dir), &path(file), number(&f, "--group")?))
        }
        [cmd, file] if cmd == "show" => Ok(read(&path(file)).map(|b| println!("{}", describe(&b)))),
        [cmd, file, dir, rest @ ..] if cmd == "restore" => {
            let f = flags(rest, &["--node", "--cluster", "--voters", "--group", "--max-record-bytes"])?;
            let node = number(&f, "--node")?.ok_or_else(|| Usage("--node is required".into()))?;
            let cluster = number(&f, "--cluster")?.ok_or_else(|| Usage("--cluster is required".into()))?;
            let voters =
                f.iter().find(|(n, _)| *n == "--voters").ok_or_else(|| Usage("--voters is required".into()))?.1;
            let voters = parse_voters(voters)?;
            let identity = LogIdentity { cluster_id: cluster, node_id: node };
            let target = Target { group: number(&f, "--group")?, max_record: record_limit(&f)? };
            Ok(restore(&path(file), &path(dir), identity, &voters, target))
        }
        _ => Err(Usage("no such command".into())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("backup: {e}");
            ExitCode::FAILURE
        }
        Err(Usage(why)) => {
            eprintln!("backup: {why}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
