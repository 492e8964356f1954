//! A single node on a durable `WalLog`: write some commands, "crash" (drop
//! the node without closing its log), reopen the directory, look at what
//! was recovered, and carry on.
//!
//! Run: `cargo run --features persistence --example persistent_node [DIR]`
//!
//! Without `DIR` the log lives in a fresh temp dir that is removed at the
//! end; with `DIR` it is kept, so a second run recovers the first one's
//! log too.

use std::path::PathBuf;

use bytes::Bytes;
use raft_io::{Action, Event, RaftConfig, RaftLog, RaftNode, WalLog};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Ticks until the node leads, handing every action to `show`.
fn lead(node: &mut RaftNode<WalLog>) -> Result<()> {
    let mut ticks = 0;
    while !node.is_leader() {
        for action in node.step(Event::Tick)? {
            show(&action);
        }
        ticks += 1;
    }
    println!("leader of term {} after {ticks} ticks", node.term());
    Ok(())
}

fn show(action: &Action) {
    match action {
        Action::Apply { index, term, command } => {
            println!("  apply #{index} (term {term}): {}", String::from_utf8_lossy(command));
        }
        Action::RestoreSnapshot { meta, data } => {
            println!("  restore snapshot at {} ({} bytes)", meta.index, data.len());
        }
        _ => {}
    }
}

fn propose(node: &mut RaftNode<WalLog>, commands: &[&str]) -> Result<()> {
    let batch: Vec<Bytes> = commands.iter().map(|c| Bytes::copy_from_slice(c.as_bytes())).collect();
    // One step: one WAL record and one fdatasync for the whole batch.
    for action in node.step(Event::ProposeBatch(batch))? {
        show(&action);
    }
    Ok(())
}

fn print_log(node: &RaftNode<WalLog>) -> Result<()> {
    let log = node.log();
    let hs = log.hard_state();
    println!("hard state: term {}, vote {:?}, commit {}", hs.term, hs.vote, hs.commit);
    let snap = log.snapshot_meta();
    println!("snapshot: index {}, term {}, voters {:?}", snap.index, snap.term, snap.membership.voters());
    let mut entries = Vec::new();
    log.entries(log.first_index(), log.last_index() + 1, u64::MAX, &mut entries)?;
    for e in &entries {
        println!("  #{} term {} {:?}: {}", e.index, e.term, e.kind, String::from_utf8_lossy(&e.data));
    }
    Ok(())
}

fn main() -> Result<()> {
    let (dir, keep) = match std::env::args_os().nth(1) {
        Some(dir) => (PathBuf::from(dir), true),
        None => (std::env::temp_dir().join(format!("raft-io-persistent-node-{}", std::process::id())), false),
    };
    let config = RaftConfig::single(1);

    println!("== opening {}", dir.display());
    let log = WalLog::open(&dir)?;
    println!("opened: {:?}", log.recovery_report());
    let mut node = RaftNode::with_log(config.clone(), log)?;
    lead(&mut node)?;
    propose(&mut node, &["set x = 1", "set y = 2"])?;
    propose(&mut node, &["del x"])?;
    let (term, last) = (node.term(), node.last_index());
    println!("wrote through index {last}; {:?}", node.log().stats());

    // A crash: the node and its log are dropped without `close`. Every step
    // synced what it wrote, so nothing acknowledged is lost; only the
    // commit index of the last step (which is not worth an fsync) may come
    // back older.
    drop(node);

    println!("== after the crash");
    let log = WalLog::open(&dir)?;
    println!("opened: {:?}", log.recovery_report());
    let mut node = RaftNode::with_log(config, log)?;
    print_log(&node)?;
    assert_eq!(node.last_index(), last, "every synced entry is back");
    assert_eq!(node.term(), term, "and the term");
    assert!(!node.is_leader(), "a restarted node starts as a follower");

    // The first step re-applies the committed entries; then carry on.
    lead(&mut node)?;
    propose(&mut node, &["set z = 3"])?;
    println!("commit {}, applied {}", node.commit_index(), node.last_applied());

    // A clean shutdown writes the buffered commit index too.
    node.into_log().close()?;
    if !keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
