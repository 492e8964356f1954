//! The operator's tool for a cluster that lost a quorum for good
//! (`raft_io::recovery`, docs/PROTOCOL.md §7.4), on a stopped node's
//! `WalLog` directory:
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

use raft_io::recovery::{self, LogSummary};
use raft_io::{NodeId, WalLog};

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

fn run(dir: &Path, voters: Option<&str>) -> Result<(), String> {
    // `WalLog::open` makes a new log where there is none: refuse a typo.
    if !dir.is_dir() {
        return Err(format!("{}: no such directory", dir.display()));
    }
    let mut log = WalLog::open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    let before = recovery::inspect(&log).map_err(|e| e.to_string())?;
    show("before", &before);
    let Some(voters) = voters else { return Ok(()) };
    let ids = voters
        .split(',')
        .map(|id| id.trim().parse::<NodeId>().map_err(|_| format!("not a node id: {id:?}\n{USAGE}")))
        .collect::<Result<Vec<_>, _>>()?;
    let forced = recovery::force_voters(&mut log, &ids).map_err(|e| e.to_string())?;
    show("after", &recovery::inspect(&log).map_err(|e| e.to_string())?);
    println!("forced voters {:?} at index {} in term {}", forced.membership.voters(), forced.index, forced.term);
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
