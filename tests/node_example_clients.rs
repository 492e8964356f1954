#![cfg(all(unix, feature = "net", feature = "persistence"))]
//! The node examples' client server and command line against what clients
//! and operators hand them (`examples/support/line_server.rs`,
//! `node_args.rs`, `exit_on_stop.rs`; each found by review, red before its
//! fix): clients are bounded in number and closed when idle, so that they
//! cannot use up the node's file descriptors; a node whose runtime stopped
//! exits (status 1, with the reason) instead of answering every request
//! with an error; port 0, a flag given twice and a peer list giving two
//! ids one address are refused. Timeouts are hang detectors only.

#[path = "support/example_binary.rs"]
mod example_binary;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process::{Conn, ask_once, free_addr};

/// Hang detector only.
const DEADLINE: Duration = Duration::from_secs(60);

/// A single-node kv_node cluster, with `extra` flags.
struct OneNode {
    child: Child,
    client: SocketAddr,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for OneNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OneNode {
    fn start(extra: &[&str]) -> OneNode {
        let bin = example_binary::binary("kv_node");
        let dir = tempfile::tempdir().expect("tempdir");
        let (raft, client) = (free_addr(), free_addr());
        let log = dir.path().join("node-1.log");
        let mut args: Vec<String> = vec![
            "--id".into(),
            "1".into(),
            "--raft".into(),
            raft.to_string(),
            "--client".into(),
            client.to_string(),
            "--data".into(),
            dir.path().join("node-1").display().to_string(),
            "--bootstrap".into(),
            format!("1={raft}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(&bin)
            .args(&args)
            .stdout(Stdio::from(out.try_clone().expect("log")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start kv_node");
        let node = OneNode { child, client, log, dir };
        let give_up = Instant::now() + DEADLINE;
        while ask_once(node.client, "LEADER").ok() != Some(format!("LEADER 1 {}", node.client)) {
            assert!(Instant::now() < give_up, "the node never led: {}", node.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn read_line(s: &TcpStream) -> String {
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.trim_end().to_owned()
}

/// At most `--max-clients` connections at once: one more is answered
/// `ERR too many clients` and closed, and once one of the others leaves a
/// new client is served again.
#[test]
fn clients_beyond_the_limit_are_refused_and_served_again_once_one_leaves() {
    let node = OneNode::start(&["--max-clients", "3"]);
    // Three clients served (the connections of the start-up checks may
    // still count until their threads see them closed: retried).
    let served = || {
        let give_up = Instant::now() + DEADLINE;
        loop {
            let mut c = Conn::open(node.client).expect("connect");
            match c.ask("PUT a 1") {
                Ok(r) if r == "OK" => return c,
                _ => assert!(Instant::now() < give_up, "no room for a client: {}", node.log_text()),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut held: Vec<Conn> = (0..3).map(|_| served()).collect();
    let extra = TcpStream::connect(node.client).unwrap();
    extra.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(read_line(&extra).starts_with("ERR too many clients"), "{}", node.log_text());
    drop(held.pop());
    let give_up = Instant::now() + DEADLINE;
    loop {
        // The departed client's thread notices it went away; then there is room.
        if ask_once(node.client, "GET a").ok().as_deref() == Some("VALUE 1") {
            break;
        }
        assert!(Instant::now() < give_up, "no client served after one left");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client silent (here, mid-request) for `--client-idle-ms` is closed:
/// it used to hold its thread and two file descriptors for good.
#[test]
fn a_client_silent_mid_request_is_closed_after_the_idle_time() {
    let node = OneNode::start(&["--client-idle-ms", "200"]);
    let mut s = TcpStream::connect(node.client).unwrap();
    s.write_all(b"PUT half").unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("closed by the node, not timed out here");
    assert_eq!(n, 0, "the node closed the connection");
    assert!(node.log_text().contains("idle for"), "{}", node.log_text());
}

/// A node whose runtime halted (here its data directory is removed under
/// it, so its next snapshot file cannot be created) exits with status 1
/// and says why: left running, it answered every request with an error and
/// a supervisor never restarted it.
#[test]
fn a_node_whose_runtime_stopped_exits_with_the_reason() {
    let mut node = OneNode::start(&[]);
    let mut conn = Conn::open(node.client).expect("connect");
    std::fs::remove_dir_all(node.dir.path().join("node-1")).expect("remove the data directory");
    // More than `snapshot_entries(1000)`: the node writes a snapshot, into a
    // directory that is gone.
    for i in 0..1100 {
        if conn.ask(&format!("PUT key-{i} value-{i}")).map(|r| r != "OK").unwrap_or(true) {
            break;
        }
    }
    let give_up = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < give_up, "the node kept running after its runtime stopped: {}", node.log_text());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", node.log_text());
    assert!(node.log_text().contains("the runtime stopped"), "{}", node.log_text());
}

/// Port 0 is no address another node or a client can reach: `--raft`,
/// `--client` and the peer lists refuse it (status 2, the flag named).
#[test]
fn port_0_is_refused_on_the_command_line() {
    let refused = |bin: &str, args: &[&str]| {
        let out = Command::new(example_binary::binary(bin)).args(args).output().expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for (flag, args) in [
        ("--raft", ["--raft", "127.0.0.1:0", "--client", "127.0.0.1:7002", "--bootstrap", "1=127.0.0.1:0"]),
        ("--client", ["--raft", "127.0.0.1:7001", "--client", "127.0.0.1:0", "--bootstrap", "1=127.0.0.1:7001"]),
        (
            "--bootstrap",
            ["--raft", "127.0.0.1:7001", "--client", "127.0.0.1:7002", "--bootstrap", "1=127.0.0.1:7001,2=127.0.0.1:0"],
        ),
    ] {
        let mut all = vec!["--id", "1", "--data", &data];
        all.extend(args);
        let (code, said) = refused("kv_node", &all);
        assert_eq!(code, Some(2), "kv_node {flag}: {said}");
        assert!(said.contains(flag) && said.contains("port 0"), "kv_node {flag}: {said}");
    }
    let (code, said) = refused(
        "sharded_node",
        &[
            "--id",
            "1",
            "--data",
            &data,
            "--raft",
            "127.0.0.1:7001",
            "--client",
            "127.0.0.1:7002",
            "--peers",
            "1=127.0.0.1:0",
            "--groups",
            "1",
        ],
    );
    assert_eq!(code, Some(2), "sharded_node: {said}");
    assert!(said.contains("--peers") && said.contains("port 0"), "sharded_node: {said}");
}

/// A flag given twice is refused, not the last one taken, and so is a peer
/// list that gives two ids one address (two nodes cannot listen there):
/// status 2, the flag named. Both used to start a node; here its data
/// directory is a file, so one that starts fails at once (status 1).
#[test]
fn a_flag_given_twice_or_one_address_for_two_ids_is_refused_on_the_command_line() {
    let refused = |bin: &str, args: &[&str]| {
        let out = Command::new(example_binary::binary(bin)).args(args).output().expect("run");
        // The first line says why (the usage follows, naming every flag).
        let said = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default().to_owned();
        (out.status.code(), said)
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let data = file.display().to_string();
    let node = ["--raft", "127.0.0.1:7001", "--client", "127.0.0.1:7002", "--data", &data];
    let one = "1=127.0.0.1:7001";
    for (flag, said_too, extra) in [
        ("--bootstrap", "address of node 1", &["--id", "1", "--bootstrap", "1=127.0.0.1:7001,2=127.0.0.1:7001"][..]),
        ("--bootstrap", "address of node 2", &["--id", "1", "--bootstrap", "2=127.0.0.1:7001,1=127.0.0.1:7001"]),
        (
            "--bootstrap",
            "address of node 2",
            &["--id", "1", "--bootstrap", "1=127.0.0.1:7001,2=localhost:7003,3=LOCALHOST:7003"],
        ),
        ("--id", "twice", &["--id", "2", "--id", "1", "--bootstrap", one]),
        ("--raft", "twice", &["--id", "1", "--raft", "127.0.0.1:7001", "--bootstrap", one]),
        ("--data", "twice", &["--id", "1", "--data", &data, "--bootstrap", one]),
        ("--cluster-id", "twice", &["--id", "1", "--cluster-id", "4", "--cluster-id", "5", "--bootstrap", one]),
        ("--max-clients", "twice", &["--id", "1", "--max-clients", "4", "--max-clients", "5", "--bootstrap", one]),
        ("--backup-dir", "twice", &["--id", "1", "--backup-dir", "a", "--backup-dir", "b", "--bootstrap", one]),
        ("--lease-reads", "twice", &["--id", "1", "--lease-reads", "--lease-reads", "--bootstrap", one]),
    ] {
        let mut all = node.to_vec();
        all.extend(extra);
        let (code, said) = refused("kv_node", &all);
        assert_eq!(code, Some(2), "kv_node {extra:?}: {said}");
        assert!(said.contains(flag) && said.contains(said_too), "kv_node {extra:?}: {said}");
    }
    let peers = "1=127.0.0.1:7001,2=127.0.0.1:7005";
    for (flag, said_too, extra) in [
        ("--peers", "address of node 1", &["--peers", "1=127.0.0.1:7001,2=127.0.0.1:7001", "--groups", "1"][..]),
        ("--peers", "twice", &["--peers", peers, "--peers", peers, "--groups", "1"]),
        ("--groups", "twice", &["--peers", peers, "--groups", "2", "--groups", "1"]),
    ] {
        let mut all = vec!["--id", "1"];
        all.extend(node);
        all.extend(extra);
        let (code, said) = refused("sharded_node", &all);
        assert_eq!(code, Some(2), "sharded_node {extra:?}: {said}");
        assert!(said.contains(flag) && said.contains(said_too), "sharded_node {extra:?}: {said}");
    }
}
