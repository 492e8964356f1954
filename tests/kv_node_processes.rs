#![cfg(all(unix, feature = "net", feature = "persistence"))]
//! One process per node: three `kv_node` processes (examples/kv_node) on
//! loopback ports, a client writing through them, the leader killed with
//! SIGKILL and restarted from its directory, a fourth node added at run time
//! by address and another removed (the three first are addressed by host
//! name in the configuration and serve reads from the leader's lease, the
//! fourth is addressed by IP address and reads by ReadIndex); every acknowledged write must then be
//! read back, linearizably, from every member. Bad client input gets a
//! clear error and changes nothing. And a quorum lost for good is
//! recovered from the survivor with `examples/force_voters`, and a cluster
//! lost whole restored from a backup with `examples/backup`; an online
//! backup is refused where it could miss acknowledged writes.
//!
//! The example binary is the one `cargo test` builds next to this test
//! (`target/<profile>/examples/kv_node`); the test runs `cargo build
//! --example kv_node` with the same features first, so it is never stale
//! (a no-op when `cargo test` just built it).

#[path = "support/example_binary.rs"]
mod example_binary;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use process::{Conn, Process, ask_once, free_addr};

/// Generous: a loaded CI machine, debug builds, elections after a kill.
const DEADLINE: Duration = Duration::from_secs(90);

struct Node {
    id: u64,
    raft: SocketAddr,
    client: SocketAddr,
    dir: PathBuf,
    process: Process,
}

impl Node {
    fn new(id: u64, base: &Path) -> Self {
        let dir = base.join(format!("node-{id}"));
        let process = Process::new(Vec::new(), &dir.with_extension("log"));
        Node { id, raft: free_addr(), client: free_addr(), dir, process }
    }

    fn start(&mut self, bin: &Path, how: &[String]) {
        self.process.args = vec![
            "--id".into(),
            self.id.to_string(),
            "--raft".into(),
            self.raft.to_string(),
            "--client".into(),
            self.client.to_string(),
            "--data".into(),
            self.dir.display().to_string(),
        ];
        self.process.args.extend(how.iter().cloned());
        self.restart(bin);
    }

    fn restart(&mut self, bin: &Path) {
        self.process.start(bin);
    }

    fn kill(&mut self) {
        self.process.kill();
    }
}

/// Sends a leader-only request, following redirects and retrying errors
/// that leave nothing done, until `OK...`. `None` when the outcome is
/// unknown (the request may or may not have taken effect).
fn leader_request(nodes: &[SocketAddr], request: &str) -> Option<String> {
    let give_up = Instant::now() + DEADLINE;
    let mut at = nodes[0];
    let mut next = 0;
    while Instant::now() < give_up {
        match ask_once(at, request) {
            Ok(r) if r.starts_with("OK") => return Some(r),
            Ok(r) if r.starts_with("REDIRECT ") => {
                at = r["REDIRECT ".len()..].split_whitespace().next().and_then(|a| a.parse().ok()).unwrap_or(at);
                continue;
            }
            Ok(r) if r.starts_with("ERR outcome unknown") => return None,
            // A removal repeated after an unknown outcome: already done.
            Ok(r) if request.starts_with("REMOVE ") && r.contains("is not a member") => return Some(r),
            // Nothing done: no leader known, refused for now, node down.
            Ok(_) | Err(_) => {
                next = (next + 1) % nodes.len();
                at = nodes[next];
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{request:?}: no leader accepted it within {DEADLINE:?}");
}

/// Writes `count` distinct keys; returns those acknowledged.
fn write_keys(nodes: &[SocketAddr], phase: &str, count: usize, acked: &mut BTreeMap<String, Option<String>>) {
    for i in 0..count {
        let (k, v) = (format!("{phase}-{i:03}"), format!("value {phase} {i}"));
        if leader_request(nodes, &format!("PUT {k} {v}")).is_some() {
            acked.insert(k, Some(v));
        }
    }
}

fn leader_client(nodes: &[SocketAddr]) -> SocketAddr {
    let give_up = Instant::now() + DEADLINE;
    while Instant::now() < give_up {
        for &n in nodes {
            if let Ok(r) = ask_once(n, "LEADER") {
                let parts: Vec<&str> = r.split_whitespace().collect();
                if let ["LEADER", _, addr] = parts.as_slice() {
                    if let Ok(a) = addr.parse() {
                        return a;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader with a known client address within {DEADLINE:?}");
}

/// Every acknowledged write, read through `node` (a linearizable read).
fn check_all(node: &Node, acked: &BTreeMap<String, Option<String>>) {
    let give_up = Instant::now() + DEADLINE;
    let mut conn = None;
    for (k, v) in acked {
        loop {
            assert!(Instant::now() < give_up, "node {}: could not read {k}", node.id);
            if conn.is_none() {
                conn = Conn::open(node.client).ok();
            }
            let reply = match conn.as_mut().map(|c| c.ask(&format!("GET {k}"))) {
                Some(Ok(r)) => r,
                _ => {
                    conn = None;
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            match (reply.strip_prefix("VALUE "), reply.as_str(), v) {
                (Some(got), _, Some(want)) => {
                    assert_eq!(got, want, "node {}: key {k}", node.id);
                    break;
                }
                (None, "NOTFOUND", None) => break,
                (None, "NOTFOUND", Some(want)) => panic!("node {}: acknowledged {k}={want} not found", node.id),
                (Some(got), _, None) => panic!("node {}: deleted {k} reads {got:?}", node.id),
                // No leader known yet (a node that just joined): retry.
                (None, _, _) if reply.starts_with("ERR") => std::thread::sleep(Duration::from_millis(100)),
                _ => panic!("node {}: unexpected reply {reply:?}", node.id),
            }
        }
    }
}

/// The ids in the configuration in effect on the node at `client`.
fn members(client: SocketAddr) -> Vec<u64> {
    let reply = ask_once(client, "MEMBERS").expect("MEMBERS");
    let list = reply.strip_prefix("MEMBERS ").unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
    list.split(',').filter_map(|m| m.split_once('=')).map(|(id, _)| id.parse().expect("an id")).collect()
}

fn bad_input_changes_nothing(nodes: &[SocketAddr]) {
    let leader = leader_client(nodes);
    let follower = *nodes.iter().find(|&&n| n != leader).expect("a follower");
    let before = members(leader);
    assert_eq!(before, vec![1, 2, 3]);
    let mut c = Conn::open(leader).expect("connect");
    assert!(c.ask("FROB x").unwrap().starts_with("ERR unknown command"));
    assert!(c.ask("PUT lonely").unwrap().starts_with("ERR malformed request"));
    assert!(c.ask("").unwrap().starts_with("ERR empty request"));
    assert!(c.ask("JOIN 9 nowhere:port").unwrap().starts_with("ERR bad address"));
    assert_eq!(c.ask("GET lonely").unwrap(), "NOTFOUND");
    // A join sent to a follower: redirected, nothing changed.
    let r = ask_once(follower, &format!("JOIN 9 {}", free_addr())).unwrap();
    assert!(r.starts_with("REDIRECT ") || r.starts_with("ERR not the leader"), "{r}");
    // A client that disconnects mid-request: nothing done.
    let mut s = TcpStream::connect(leader).unwrap();
    s.write_all(b"PUT half-sent value").unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.ask("GET half-sent").unwrap(), "NOTFOUND");
    // The connection still serves after all of it, and no join took effect.
    assert!(c.ask("LEADER").unwrap().starts_with("LEADER "));
    assert_eq!(members(leader), before);
}

#[test]
fn three_processes_survive_sigkill_restart_and_membership_changes() {
    let bin = example_binary::binary("kv_node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::new(id, tmp.path())).collect();
    // The members' raft addresses are host names (`localhost:port`): every
    // node learns its peers from the configuration by name and looks each
    // up at every dial (the fourth node joins by IP address).
    let bootstrap = nodes.iter().map(|n| format!("{}=localhost:{}", n.id, n.raft.port())).collect::<Vec<_>>().join(",");
    // The founders serve reads from the leader's lease (a restarted one
    // after its SIGKILL too); the fourth reads by ReadIndex.
    for n in &mut nodes {
        n.start(&bin, &["--bootstrap".into(), bootstrap.clone(), "--lease-reads".into()]);
    }
    let clients =
        |nodes: &[Node]| nodes.iter().filter(|n| n.process.is_running()).map(|n| n.client).collect::<Vec<_>>();

    let mut acked = BTreeMap::new();
    write_keys(&clients(&nodes), "a", 20, &mut acked);
    bad_input_changes_nothing(&clients(&nodes));

    // SIGKILL the leader; writes go on through the other two.
    let leader = leader_client(&clients(&nodes));
    let killed = nodes.iter().position(|n| n.client == leader).expect("leader is one of ours");
    nodes[killed].kill();
    write_keys(&clients(&nodes), "b", 20, &mut acked);

    // Restart it from its directory, with the same command line.
    nodes[killed].restart(&bin);
    write_keys(&clients(&nodes), "c", 10, &mut acked);

    // A fourth node, added at run time by address through any member.
    let mut fourth = Node::new(4, tmp.path());
    fourth.start(&bin, &["--join".into(), nodes[0].client.to_string()]);
    nodes.push(fourth);
    write_keys(&clients(&nodes), "d", 10, &mut acked);
    // Its join runs in its own process: wait for it to take effect.
    let give_up = Instant::now() + DEADLINE;
    while members(leader_client(&clients(&nodes))) != vec![1, 2, 3, 4] {
        assert!(Instant::now() < give_up, "node 4 never joined");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Remove a node that is not the leader, then stop its process.
    let leader = leader_client(&clients(&nodes));
    let gone = nodes.iter().position(|n| n.client != leader && n.id != 4).expect("a follower");
    let gone_id = nodes[gone].id;
    // Repeated until known done (a timeout leaves the outcome unknown).
    while leader_request(&clients(&nodes), &format!("REMOVE {gone_id}")).is_none() {}
    nodes[gone].kill();
    nodes.remove(gone);
    let mut left: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    left.sort_unstable();
    assert_eq!(members(leader_client(&clients(&nodes))), left, "node {gone_id} removed");
    write_keys(&clients(&nodes), "e", 10, &mut acked);
    for k in ["a-000", "b-001", "e-002"] {
        match leader_request(&clients(&nodes), &format!("DEL {k}")) {
            Some(_) => acked.insert(k.to_owned(), None),
            // Outcome unknown: the key may or may not be there; not checked.
            None => acked.remove(k),
        };
    }
    assert!(acked.len() >= 40, "most writes acknowledged: {}", acked.len());

    for n in &nodes {
        check_all(n, &acked);
    }
    // The leader answered its share of those reads from its lease.
    let lease_reads: u64 = clients(&nodes)
        .iter()
        .filter_map(|&c| ask_once(c, "STATS").ok())
        .filter_map(|r| r.strip_prefix("STATS lease_reads=").and_then(|n| n.parse::<u64>().ok()))
        .sum();
    assert!(lease_reads > 0, "no read was served from a lease");
}

/// Nodes 1 to 3 of a new cluster, in directories under `base`, started
/// with `--bootstrap` and the flags `extra`.
fn founders(bin: &Path, base: &Path, extra: &[String]) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::new(id, base)).collect();
    let bootstrap = nodes.iter().map(|n| format!("{}={}", n.id, n.raft)).collect::<Vec<_>>().join(",");
    for n in &mut nodes {
        let mut how = vec!["--bootstrap".into(), bootstrap.clone()];
        how.extend_from_slice(extra);
        n.start(bin, &how);
    }
    nodes
}

/// Three founders, as [`founders`], taking online backups into the
/// directory `online` under `base` (returned).
fn founders_with_backups(bin: &Path, base: &Path) -> (Vec<Node>, PathBuf) {
    let online = base.join("online");
    std::fs::create_dir(&online).expect("the backup directory");
    let nodes = founders(bin, base, &["--backup-dir".into(), online.display().to_string()]);
    (nodes, online)
}

/// Node 4, new, joins the cluster whose only voter is `survivor` (node 1),
/// started with the flags `extra` too; returns once the configuration is
/// nodes 1 and 4.
fn join_the_survivor(bin: &Path, base: &Path, survivor: &Node, extra: &[String]) -> Node {
    let mut fourth = Node::new(4, base);
    let mut how = vec!["--join".into(), survivor.client.to_string()];
    how.extend_from_slice(extra);
    fourth.start(bin, &how);
    let give_up = Instant::now() + DEADLINE;
    while members(survivor.client) != vec![1, 4] {
        assert!(Instant::now() < give_up, "node 4 never joined");
        std::thread::sleep(Duration::from_millis(100));
    }
    fourth
}

/// A quorum lost for good (`raft_io::recovery`, PROTOCOL.md §7.4): all
/// three nodes SIGKILLed and two of their directories destroyed; the
/// operator's tool (`examples/force_voters`) makes the survivor the only
/// voter, and restarted with its usual command line it serves every
/// acknowledged write, takes new ones, and a new node joins it and
/// catches up.
#[test]
fn a_lost_quorum_is_recovered_from_the_survivor_with_the_operators_tool() {
    let bin = example_binary::binary("kv_node");
    let tool = example_binary::binary("force_voters");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nodes = founders(&bin, tmp.path(), &[]);
    let clients = |nodes: &[Node]| nodes.iter().map(|n| n.client).collect::<Vec<_>>();
    let mut acked = BTreeMap::new();
    write_keys(&clients(&nodes), "a", 20, &mut acked);
    for n in &mut nodes {
        n.kill();
    }
    for n in &nodes[1..] {
        std::fs::remove_dir_all(&n.dir).expect("destroy a node's directory");
    }
    let mut survivor = nodes.swap_remove(0);
    let run = |args: &[&str]| {
        let out = Command::new(&tool).args(args).output().expect("run force_voters");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let dir = survivor.dir.display().to_string();
    let (code, shown) = run(&[&dir]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("voters [1, 2, 3]"), "{shown}");
    assert_eq!(run(&[&dir, "2,3"]).0, Some(1), "the survivor must be a voter");
    assert_eq!(run(&[&dir, "1", "--groups", "1"]).0, Some(1), "--groups is for a shared WAL");
    assert_eq!(run(&[&dir, "1", "--frobnicate", "1"]).0, Some(2), "a bad command line");
    assert_eq!(run(&[&tmp.path().join("nowhere").display().to_string(), "1"]).0, Some(1));
    // A directory without a log is refused, even to look, and left empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("an empty directory");
    assert_eq!(run(&[&empty.display().to_string()]).0, Some(1));
    assert_eq!(std::fs::read_dir(&empty).expect("read it").count(), 0, "nothing created");
    let (code, shown) = run(&[&dir, "1"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.lines().last().is_some_and(|l| l.starts_with("forced voters [1] at index")), "{shown}");

    survivor.restart(&bin);
    let nodes = vec![survivor];
    check_all(&nodes[0], &acked);
    write_keys(&clients(&nodes), "b", 10, &mut acked);
    assert_eq!(members(nodes[0].client), vec![1]);
    let fourth = join_the_survivor(&bin, tmp.path(), &nodes[0], &[]);
    check_all(&fourth, &acked);
}

/// Every node lost (`raft_io::recovery`, PROTOCOL.md §7.5): an online
/// backup taken from the leader (`BACKUP`, `--backup-dir`); all three
/// nodes SIGKILLed; the operator's backup tool (`examples/backup`) takes a
/// backup from each directory (none holds more than the online one); the
/// directories are destroyed; the online backup is restored into a new
/// directory as the only voter of a new cluster, whose node, started on
/// it, serves every acknowledged write, takes new ones, and a new node
/// joins it.
#[test]
fn a_cluster_lost_whole_is_restored_from_a_backup_with_the_operators_tool() {
    let bin = example_binary::binary("kv_node");
    let tool = example_binary::binary("backup");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut nodes, online) = founders_with_backups(&bin, tmp.path());
    let clients = |nodes: &[Node]| nodes.iter().map(|n| n.client).collect::<Vec<_>>();
    let mut acked = BTreeMap::new();
    write_keys(&clients(&nodes), "a", 20, &mut acked);
    // One more write, acknowledged: its append carried the commit index of
    // every write before it to a majority's disks (a commit index alone is
    // not synced, PROTOCOL.md §5).
    let mut last = BTreeMap::new();
    write_keys(&clients(&nodes), "z", 1, &mut last);
    assert_eq!(last.len(), 1, "the last write was acknowledged");
    // An online backup, from the leader: everything acknowledged.
    let give_up = Instant::now() + DEADLINE;
    let leader: SocketAddr = loop {
        // `LEADER <id> <client address, or ? until the leader registered it>`
        let reply = ask_once(nodes[0].client, "LEADER").unwrap_or_default();
        if let Some(a) = reply.split_whitespace().nth(2).and_then(|a| a.parse().ok()) {
            break a;
        }
        assert!(Instant::now() < give_up, "no leader address: {reply}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reply = ask_once(leader, "BACKUP online-1").expect("BACKUP");
    let online_through: u64 = reply
        .strip_prefix("OK ")
        .and_then(|r| r.split("through index ").nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(online.join("online-1.backup").is_file(), "{reply}");
    let again = ask_once(leader, "BACKUP online-1").expect("BACKUP");
    assert!(again.starts_with("ERR") && again.contains("exists"), "a backup never replaces a file: {again}");
    assert!(ask_once(nodes[0].client, "BACKUP ../x").is_ok_and(|r| r.starts_with("ERR malformed")));
    for n in &mut nodes {
        n.kill();
    }
    let run = |args: &[&str]| {
        let out = Command::new(&tool).args(args).output().expect("run backup");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let path = |p: &Path| p.display().to_string();
    // A backup of each node; the operator keeps the one with the most.
    let mut best: Option<(u64, PathBuf)> = None;
    for n in &nodes {
        let file = tmp.path().join(format!("node-{}.backup", n.id));
        let (code, shown) = run(&["take", &path(&n.dir), &path(&file)]);
        assert_eq!(code, Some(0), "{shown}");
        let through: u64 = shown
            .split("state through index ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{shown}"));
        assert!(shown.contains(&format!("backup of node {} of cluster ", n.id)), "{shown}");
        if best.as_ref().is_none_or(|(b, _)| through > *b) {
            best = Some((through, file));
        }
    }
    let (best_offline, _) = best.expect("a backup");
    assert!(online_through >= best_offline, "the leader's backup holds the most: {online_through} < {best_offline}");
    // The online backup is the one restored.
    let backup = path(&online.join("online-1.backup"));
    assert_eq!(run(&["show", &backup]).0, Some(0));
    // Refusals: a second backup never replaces a file; no log, no backup
    // (and nothing created); a damaged file; a voter set without the node;
    // a directory in use; a bad command line.
    assert_eq!(run(&["take", &path(&nodes[0].dir), &backup]).0, Some(1), "the file exists");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("an empty directory");
    assert_eq!(run(&["take", &path(&empty), &path(&tmp.path().join("x"))]).0, Some(1));
    assert_eq!(std::fs::read_dir(&empty).expect("read it").count(), 0, "nothing created");
    let mut bytes = std::fs::read(&backup).expect("read the backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    let damaged = tmp.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).expect("write it");
    let (code, said) = run(&["show", &path(&damaged)]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("checksum"), "{said}");
    let new_dir = tmp.path().join("restored");
    let restore = |voters: &str, dir: &Path| {
        run(&["restore", &backup, &path(dir), "--node", "1", "--cluster", "9", "--voters", voters])
    };
    assert_eq!(restore("2", &new_dir).0, Some(1), "node 1 must be a voter");
    assert!(!new_dir.exists(), "a refused restore creates nothing");
    assert_eq!(restore("1", &nodes[1].dir).0, Some(1), "an existing directory");
    assert_eq!(
        run(&["restore", &backup, &path(&new_dir), "--node", "1"]).0,
        Some(2),
        "--cluster and --voters are required"
    );
    assert_eq!(run(&["frobnicate"]).0, Some(2));

    for n in &nodes {
        std::fs::remove_dir_all(&n.dir).expect("destroy a node's directory");
    }
    let mut first = nodes.swap_remove(0);
    let (code, said) = restore("1", &first.dir);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.lines().last().is_some_and(|l| l.starts_with("restored node 1 of cluster 9 with voters [1]")),
        "{said}"
    );
    first.start(&bin, &["--bootstrap".into(), format!("1={}", first.raft), "--cluster-id".into(), "9".into()]);
    let nodes = vec![first];
    check_all(&nodes[0], &acked);
    write_keys(&clients(&nodes), "b", 10, &mut acked);
    assert_eq!(members(nodes[0].client), vec![1]);
    let fourth = join_the_survivor(&bin, tmp.path(), &nodes[0], &["--cluster-id".into(), "9".into()]);
    check_all(&fourth, &acked);
}

/// `BACKUP` is taken only where it holds every acknowledged write: on the
/// leader, once a ReadIndex round has confirmed it still leads. A follower
/// refuses it, naming the leader, and so does a leader cut off from its
/// quorum (it may have been deposed, and writes acknowledged by its
/// successor be missing from its log); neither writes a file. Both used to
/// write a backup that could silently miss acknowledged writes.
#[test]
fn a_backup_is_refused_by_a_follower_and_by_a_leader_cut_off_from_its_quorum() {
    let bin = example_binary::binary("kv_node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut nodes, online) = founders_with_backups(&bin, tmp.path());
    let clients = |nodes: &[Node]| nodes.iter().map(|n| n.client).collect::<Vec<_>>();
    let mut acked = BTreeMap::new();
    write_keys(&clients(&nodes), "a", 3, &mut acked);
    let leader = leader_client(&clients(&nodes));
    let leader_id = nodes.iter().find(|n| n.client == leader).expect("leader is one of ours").id;
    let follower = *clients(&nodes).iter().find(|&&c| c != leader).expect("a follower");

    let reply = ask_once(follower, "BACKUP from-a-follower").expect("BACKUP");
    // `REDIRECT <client address> (node <id> leads)`, or `ERR not the
    // leader; node <id> leads` while its client address is not known here.
    assert!(reply.contains(&format!("node {leader_id} leads")), "a follower names the leader: {reply}");
    assert!(!online.join("from-a-follower.backup").exists(), "a follower wrote a backup: {reply}");

    // The leader alone: it cannot confirm that it still leads.
    for n in nodes.iter_mut().filter(|n| n.client != leader) {
        n.kill();
    }
    let reply = ask_once(leader, "BACKUP cut-off").expect("BACKUP");
    assert!(reply.starts_with("ERR"), "a leader cut off from its quorum took a backup: {reply}");
    assert!(!online.join("cut-off.backup").exists(), "a leader cut off from its quorum wrote a backup: {reply}");
}

/// A command line that cannot be used is refused before anything starts,
/// with the flag named and exit status 2.
#[test]
fn a_bad_command_line_is_refused_naming_the_flag() {
    let bin = example_binary::binary("kv_node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("never");
    let cases: [(&[&str], &str); 4] = [
        (&["--id", "1", "--raft", "nowhere", "--client", "127.0.0.1:1", "--join", "127.0.0.1:2"], "--raft"),
        (
            &["--id", "1", "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2", "--bootstrap", "1=127.0.0.1:1,2=x"],
            "--bootstrap",
        ),
        (&["--id", "0", "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2", "--join", "127.0.0.1:3"], "--id"),
        (&["--id", "1", "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2", "--frobnicate"], "--frobnicate"),
    ];
    for (args, named) in cases {
        let out = Command::new(&bin).args(args).arg("--data").arg(&data).output().expect("run kv_node");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
    }
    assert!(!data.exists(), "nothing was created");
}
