//! The operator's backup tool (`examples/backup`, PROTOCOL.md §7.5) on a
//! shared WAL: one group backed up (`take --group`), restored as a group
//! of another node's shared WAL (`restore --group`), and a node started on
//! that group applies everything the backup held.

#[path = "support/example_binary.rs"]
mod example_binary;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use raft_io::log::shared::SharedWal;
use raft_io::{Action, Event, RaftConfig, RaftNode, recovery};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(example_binary::binary("backup")).args(args).output().expect("run backup");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_group_of_a_shared_wal_is_backed_up_and_restored_as_a_group_of_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new, file) = (tmp.path().join("old"), tmp.path().join("new"), tmp.path().join("g3.backup"));
    {
        let wal = SharedWal::open(&old).unwrap();
        // Group 3 commits three commands and compacts after the second;
        // group 4 is there too, and is left alone.
        let mut node = RaftNode::with_log(RaftConfig::new(1, [1]), wal.create_group(3).unwrap()).unwrap();
        node.step(Event::Campaign).unwrap();
        node.step(Event::Propose(Bytes::from_static(b"a"))).unwrap();
        node.step(Event::Propose(Bytes::from_static(b"b"))).unwrap();
        node.step(Event::Snapshot { index: 3, data: Bytes::from_static(b"a,b,") }).unwrap();
        node.step(Event::Propose(Bytes::from_static(b"c"))).unwrap();
        drop(node);
        drop(wal.create_group(4).unwrap());
        wal.close().unwrap();
    }
    assert_eq!(run(&["take", &path(&old), &path(&file)]).0, Some(1), "a shared WAL needs --group");
    assert_eq!(run(&["take", &path(&old), &path(&file), "--group", "9"]).0, Some(1), "no group 9");
    assert!(!file.exists());
    let (code, said) = run(&["take", &path(&old), &path(&file), "--group", "3"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("snapshot at 3 (term 1, 4 bytes), 1 committed entries after it; state through index 4"),
        "{said}"
    );

    let restore = |group: &str| {
        run(&["restore", &path(&file), &path(&new), "--node", "2", "--cluster", "5", "--voters", "2", "--group", group])
    };
    let (code, said) = restore("7");
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(restore("7").0, Some(1), "group 7 is there now");
    let wal = SharedWal::open(&new).unwrap();
    assert_eq!(wal.groups(), [7]);
    let log = wal.group(7).unwrap();
    let summary = recovery::inspect(&log).unwrap();
    assert_eq!((summary.snapshot_index, summary.last_index, summary.hard_state.commit), (3, 4, 4));
    assert_eq!(summary.membership.voters(), [2]);
    let mut node = RaftNode::with_log(RaftConfig::new(2, [2]).cluster_id(5), log).unwrap();
    let actions: Vec<_> = node.step(Event::Campaign).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::RestoreSnapshot { data, .. } if data == "a,b,")));
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 4, command, .. } if command == "c")));
    assert!(node.is_leader());
}
