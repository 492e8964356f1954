//! The operator's tool for a cluster that lost a quorum for good
//! (`raft_io::recovery`, docs/PROTOCOL.md §7.4), on a stopped node's
//! directory: a `WalLog`'s, or a shared WAL's (every group in it, or the
//! groups named):
//!
//! ```text
//! cargo run --features persistence --example force_voters -- DIR          # what the log holds
//! cargo run --features persistence --example force_voters -- DIR 1[,2..]  # make these the only voters
//! cargo run --features persistence --example force_voters -- DIR 1 --groups 3,7  # of these groups only
//! ```
//!
//! Look at every survivor first and recover the one with the highest last
//! term, then last index. Then restart it as usual: it leads alone. Every
//! other old node must be wiped and added back as a new node.
//!
//! `--groups` is for a many-groups node whose lost peers held only some
//! of its groups' quorums (groups placed on different sets of nodes): the
//! groups named are forced, the others are left as they are and go on
//! with their own members. Every group named must be in the WAL, and all
//! of them are checked before any is changed.

#[path = "support/log_dir.rs"]
mod log_dir;

use std::path::Path;
use std::process::ExitCode;

use raft_io::log::shared::SharedWal;
use raft_io::recovery::{self, LogSummary};
use raft_io::{NodeId, RaftLog, WalLog};

const USAGE: &str = "usage: force_voters DIR [ID,... [--groups G,...]]";

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
        recovery::check_voters(log, voters).map_err(|e| format!("{what}: {e} (no log changed)"))?;
    }
    Ok(())
}

/// Forces `voters` on `log` (checked before); returns where.
fn force(what: &str, log: &mut impl RaftLog, voters: &[NodeId]) -> Result<String, String> {
    let forced = recovery::force_voters(log, voters).map_err(|e| format!("{what}: {e}"))?;
    show(what, &recovery::inspect(log).map_err(|e| format!("{what}: {e}"))?);
    Ok(format!("at index {} in term {}", forced.index, forced.term))
}

/// Node or group ids, comma-separated.
fn parse_ids(list: &str, what: &str) -> Result<Vec<u64>, String> {
    list.split(',')
        .map(|id| id.trim().parse::<u64>().map_err(|_| format!("not a {what} id: {id:?}\n{USAGE}")))
        .collect()
}

fn run(dir: &Path, voters: Option<&str>, only: Option<&str>) -> Result<(), String> {
    // Opening makes a new log where there is none: only a directory that
    // holds one is opened, even to look.
    let shared = log_dir::is_shared(dir)?;
    let ids: Option<Vec<NodeId>> = voters.map(|v| parse_ids(v, "node")).transpose()?;
    let ids = ids.as_deref();
    let only: Option<Vec<u64>> = only.map(|g| parse_ids(g, "group")).transpose()?;
    if only.is_some() && !shared {
        return Err(format!("{}: --groups is for a shared WAL, and this is one log", dir.display()));
    }
    let done = if shared {
        // A many-groups node: every group (or every group named) lost the
        // same voters. Every group is shown, and every group to change is
        // checked before any is changed.
        let wal = SharedWal::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
        let mut groups = wal.groups();
        groups.sort_unstable();
        if let Some(missing) = only.iter().flatten().find(|g| groups.binary_search(g).is_err()) {
            return Err(format!("group {missing} is not in {} (no group changed)", dir.display()));
        }
        let chosen = |g: &u64| only.as_ref().is_none_or(|o| o.contains(g));
        let mut logs = Vec::with_capacity(groups.len());
        for &g in &groups {
            let log = wal.group(g).map_err(|e| format!("group {g}: {e}"))?;
            if chosen(&g) {
                check(&format!("group {g}"), &log, ids)?;
                logs.push((g, log));
            } else {
                check(&format!("group {g} (left as it is)"), &log, None)?;
            }
        }
        if let Some(ids) = ids {
            for (g, log) in &mut logs {
                force(&format!("group {g}"), log, ids)?;
            }
        }
        let forced = ids.map(|_| format!("in {} groups", logs.len()));
        drop(logs);
        wal.close().map_err(|e| format!("close {}: {e}", dir.display()))?;
        forced
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
    let (dir, voters, only) = match args.as_slice() {
        [dir] => (dir, None, None),
        [dir, voters] => (dir, Some(voters.as_str()), None),
        [dir, voters, flag, groups] if flag == "--groups" => (dir, Some(voters.as_str()), Some(groups.as_str())),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(dir), voters, only) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("force_voters: {e}");
            ExitCode::FAILURE
        }
    }
}
