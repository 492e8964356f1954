//! The operator's tool for a cluster that lost a quorum for good
//! (`raft_io::recovery`, docs/PROTOCOL.md §7.4), on a stopped node's
//! directory: a `WalLog`'s, or a shared WAL's (every group in it):
//!
//! ```text
//! cargo run --features persistence --example force_voters -- DIR          # what the log holds
//! cargo run --features persistence --example force_voters -- DIR 1[,2..]  # make these the only voters
//! ```
//!
//! Look at every survivor first and recover the one with the highest last
//! term, then last index. Then restart it as usual: it leads alone. Every
//! other old node must be wiped and added back as a new node.

use std::path::Path;
use std::process::ExitCode;

use raft_io::log::shared::SharedWal;
use raft_io::recovery::{self, LogSummary};
use raft_io::{NodeId, RaftLog, WalLog};

const USAGE: &str = "usage: force_voters DIR [ID,...]";

fn show(what: &str, s: &LogSummary) {
    let node = s.identity.map_or("no owner".to_owned(), |i| format!("node {} of cluster {}", i.node_id, i.cluster_id));
    println!(
        "{what}: {node}; last entry {} (term {}); term {}, commit {}; voters {:?}, learners {:?} (configuration at {})",
        s.last_index,
        s.last_term,
        s.hard_state.term,
        s.hard_state.commit,
        s.membership.voters(),
        s.membership.learners(),
        s.membership_index,
    );
}

/// Shows `log` and, given `voters`, checks that it can force them
/// (writing nothing).
fn check(what: &str, log: &impl RaftLog, voters: Option<&[NodeId]>) -> Result<(), String> {
    show(what, &recovery::inspect(log).map_err(|e| format!("{what}: {e}"))?);
    if let Some(voters) = voters {
        recovery::check_voters(log, voters).map_err(|e| format!("{what}: {e} (nothing written)"))?;
    }
    Ok(())
}

/// Forces `voters` on `log` (checked before); returns where.
fn force(what: &str, log: &mut impl RaftLog, voters: &[NodeId]) -> Result<String, String> {
    let forced = recovery::force_voters(log, voters).map_err(|e| format!("{what}: {e}"))?;
    show(what, &recovery::inspect(log).map_err(|e| format!("{what}: {e}"))?);
    Ok(format!("at index {} in term {}", forced.index, forced.term))
}

fn run(dir: &Path, voters: Option<&str>) -> Result<(), String> {
    // Opening makes a new log where there is none: only a directory that
    // holds one is opened, even to look.
    let shared = dir.join("sharedwal.meta").is_file();
    if !shared && !dir.join("raftlog.meta").is_file() {
        return Err(format!("{}: no log here (neither raftlog.meta nor sharedwal.meta)", dir.display()));
    }
    let ids = voters
        .map(|v| {
            v.split(',')
                .map(|id| id.trim().parse::<NodeId>().map_err(|_| format!("not a node id: {id:?}\n{USAGE}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let ids = ids.as_deref();
    let done = if shared {
        // A many-groups node: every group lost the same voters. Every
        // group is checked before any is changed.
        let wal = SharedWal::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
        let mut groups = wal.groups();
        groups.sort_unstable();
        let mut logs = Vec::with_capacity(groups.len());
        for &g in &groups {
            let log = wal.group(g).map_err(|e| format!("group {g}: {e}"))?;
            check(&format!("group {g}"), &log, ids)?;
            logs.push((g, log));
        }
        if let Some(ids) = ids {
            for (g, log) in &mut logs {
                force(&format!("group {g}"), log, ids)?;
            }
        }
        drop(logs);
        wal.close().map_err(|e| format!("close {}: {e}", dir.display()))?;
        ids.map(|_| format!("in {} groups", groups.len()))
    } else {
        // One log: `force_voters` checks before it writes anything.
        let mut log = WalLog::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
        check("log", &log, None)?;
        match ids {
            Some(ids) => Some(force("log", &mut log, ids)?),
            None => None,
        }
    };
    if let (Some(ids), Some(done)) = (ids, done) {
        println!("forced voters {ids:?} {done}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, voters) = match args.as_slice() {
        [dir] => (dir, None),
        [dir, voters] => (dir, Some(voters.as_str())),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(dir), voters) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("force_voters: {e}");
            ExitCode::FAILURE
        }
    }
}
