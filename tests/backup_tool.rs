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
    // `--max-record-bytes` is the shared WAL's limit: one below the limit
    // it was written with (the default, 64 MiB) is refused, nothing added.
    let (code, said) = run(&[
        "restore",
        &path(&file),
        &path(&new),
        "--node",
        "2",
        "--cluster",
        "5",
        "--voters",
        "2",
        "--group",
        "8",
        "--max-record-bytes",
        "65536",
    ]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("65536"), "{said}");
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

/// Every file of `dir`, with its bytes (to see that nothing changed).
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// On a `WalLog`: `take` of a node's directory leaves it byte for byte as
/// it was, and is refused while a node holds it; `restore` keeps each
/// voter's address from the backup unless given, refuses the backup's own
/// cluster id, a bad `--voters` or a repeated flag (exit 2), and an
/// existing directory, creating nothing.
#[test]
fn take_changes_nothing_and_restore_keeps_the_addresses() {
    use raft_io::WalLog;
    use raft_io::log::WalOptions;
    let tmp = tempfile::tempdir().unwrap();
    let (old, file) = (tmp.path().join("old"), tmp.path().join("n1.backup"));
    {
        let config = RaftConfig::new(1, [1])
            .cluster_id(3)
            .max_message_bytes(64 << 10)
            .addresses([(1, Bytes::from_static(b"host-a:7001"))]);
        let log = WalLog::open_with(&old, WalOptions::new().max_record_size(1 << 20)).unwrap();
        let mut node = RaftNode::with_log(config, log).unwrap();
        node.step(Event::Campaign).unwrap();
        node.step(Event::Propose(Bytes::from_static(b"a"))).unwrap();
    }
    let before = contents(&old);
    {
        let _running = WalLog::open(&old).unwrap();
        let (code, said) = run(&["take", &path(&old), &path(&file)]);
        assert_eq!(code, Some(1), "{said}");
        assert!(said.to_lowercase().contains("lock"), "{said}");
    }
    let (code, said) = run(&["take", &path(&old), &path(&file)]);
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(contents(&old), before, "take changed the node's directory");
    // The node opens it again with its own, lower, record limit.
    drop(WalLog::open_with(&old, WalOptions::new().max_record_size(1 << 20)).unwrap());

    let new = tmp.path().join("new");
    let (file_arg, new_arg) = (path(&file), path(&new));
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", file_arg.as_str(), new_arg.as_str()];
        args.extend_from_slice(extra);
        run(&args)
    };
    for bad in [
        &["--node", "1", "--cluster", "4", "--voters", "1,x"][..],
        &["--node", "1", "--cluster", "4", "--voters", "1,1"],
        &["--node", "1", "--node", "2", "--cluster", "4", "--voters", "1"],
    ] {
        assert_eq!(restore(bad).0, Some(2), "{bad:?}");
    }
    let (code, said) = restore(&["--node", "1", "--cluster", "3", "--voters", "1"]);
    assert_eq!(code, Some(1), "the backup's own cluster: {said}");
    assert!(!new.exists(), "a refused restore creates nothing");
    std::fs::create_dir(&new).unwrap();
    assert_eq!(restore(&["--node", "1", "--cluster", "4", "--voters", "1"]).0, Some(1), "an existing directory");
    std::fs::remove_dir(&new).unwrap();
    let (code, said) = restore(&["--node", "1", "--cluster", "4", "--voters", "1,2=host-b:7002"]);
    assert_eq!(code, Some(0), "{said}");
    let m = recovery::inspect(&WalLog::open(&new).unwrap()).unwrap().membership;
    assert_eq!(m.voters(), [1, 2]);
    assert_eq!(m.address(1).map(|a| &a[..]), Some(&b"host-a:7001"[..]), "kept from the backup");
    assert_eq!(m.address(2).map(|a| &a[..]), Some(&b"host-b:7002"[..]), "given");
    assert!(!tmp.path().join("new.restoring").exists());
}

/// A `take` that finds `FILE.partial` (another backup writing to the same
/// name, or one interrupted) refuses, and leaves that file alone: it is not
/// its own.
#[test]
fn take_leaves_another_writers_partial_file_alone() {
    use raft_io::WalLog;
    let tmp = tempfile::tempdir().unwrap();
    let (old, file) = (tmp.path().join("old"), tmp.path().join("n1.backup"));
    {
        let mut node = RaftNode::with_log(RaftConfig::new(1, [1]), WalLog::open(&old).unwrap()).unwrap();
        node.step(Event::Campaign).unwrap();
        node.step(Event::Propose(Bytes::from_static(b"a"))).unwrap();
    }
    let partial = tmp.path().join("n1.backup.partial");
    std::fs::write(&partial, b"another writer's half").unwrap();
    let (code, said) = run(&["take", &path(&old), &path(&file)]);
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(std::fs::read(&partial).ok().as_deref(), Some(&b"another writer's half"[..]), "removed or changed");
    assert!(said.contains("partial"), "the refusal names the file in the way: {said}");
    assert!(!file.exists());
    // Once it is gone, the backup is taken.
    std::fs::remove_file(&partial).unwrap();
    let (code, said) = run(&["take", &path(&old), &path(&file)]);
    assert_eq!(code, Some(0), "{said}");
    assert!(!partial.exists());
}

/// `restore --max-record-bytes N` gives the new `WalLog` that record limit
/// (default 64 MiB): a backup holding an entry over it is refused naming
/// the entry, creating nothing; a limit above it restores the entry, and
/// the log keeps the limit given. A limit of 0, not a number, or over what
/// a `WalLog` takes (4 GiB - 1) is a command line that cannot be used.
#[test]
fn restore_gives_the_new_log_the_record_limit_asked_for() {
    use raft_io::log::WalOptions;
    use raft_io::{MemoryLog, StorageError, WalLog};
    let tmp = tempfile::tempdir().unwrap();
    let (file, new) = (tmp.path().join("big.backup"), tmp.path().join("new"));
    let big = Bytes::from(vec![7u8; 256 << 10]);
    {
        let mut node = RaftNode::with_log(RaftConfig::new(1, [1]), MemoryLog::new()).unwrap();
        node.step(Event::Campaign).unwrap();
        node.step(Event::Propose(big.clone())).unwrap();
        std::fs::write(&file, recovery::take_backup(node.log()).unwrap().encode()).unwrap();
    }
    let (file_arg, new_arg) = (path(&file), path(&new));
    let restore = |limit: &str| {
        run(&[
            "restore",
            &file_arg,
            &new_arg,
            "--node",
            "2",
            "--cluster",
            "5",
            "--voters",
            "2",
            "--max-record-bytes",
            limit,
        ])
    };
    for bad in ["0", "x", "-1", "4294967296"] {
        let (code, said) = restore(bad);
        assert_eq!(code, Some(2), "--max-record-bytes {bad}: {said}");
        assert!(said.contains("--max-record-bytes"), "the refusal names the flag: {said}");
    }
    let (code, said) = restore(&(64 << 10).to_string());
    assert_eq!(code, Some(1), "an entry of 256 KiB in records of 64 KiB: {said}");
    assert!(said.contains("the entry at index 2") && said.contains("does not fit"), "{said}");
    assert!(!new.exists() && !tmp.path().join("new.restoring").exists(), "a refused restore creates nothing");

    let (code, said) = restore(&(1 << 20).to_string());
    assert_eq!(code, Some(0), "{said}");
    // The log took the limit given, not the default: the node opens it with
    // its own limit of 1 MiB (a lower one than the log's is refused).
    let lowered = WalLog::open_with(&new, WalOptions::new().max_record_size(512 << 10));
    assert!(matches!(lowered, Err(StorageError::RecordLimitLowered { stored: 0x10_0000, .. })), "{lowered:?}");
    let log = WalLog::open_with(&new, WalOptions::new().max_record_size(1 << 20)).unwrap();
    let config = RaftConfig::new(2, [2]).cluster_id(5).max_message_bytes(512 << 10);
    let mut node = RaftNode::with_log(config, log).unwrap();
    let actions: Vec<_> = node.step(Event::Campaign).unwrap().collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Apply { index: 2, command, .. } if *command == big)));
}
