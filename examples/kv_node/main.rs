//! One raft-io node per process: a replicated key-value store with a
//! line-based client protocol over TCP (see `protocol.rs`), its log on disk
//! (WalLog), its peers learned from the replicated configuration (each
//! member's raft address is in it: no peer list after bootstrap).
//!
//! Start a three-node cluster by hand (one terminal each):
//!
//! ```text
//! cargo run --example kv_node --features net,persistence -- --id 1 --raft 127.0.0.1:7001 --client 127.0.0.1:8001 --data /tmp/kv1 --bootstrap 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --example kv_node --features net,persistence -- --id 2 --raft 127.0.0.1:7002 --client 127.0.0.1:8002 --data /tmp/kv2 --bootstrap 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! cargo run --example kv_node --features net,persistence -- --id 3 --raft 127.0.0.1:7003 --client 127.0.0.1:8003 --data /tmp/kv3 --bootstrap 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//! ```
//!
//! (the `--bootstrap` addresses may be host names, `1=raft-1.example:7001`:
//! each is looked up again whenever its node is dialed), then talk to any
//! of them (`nc 127.0.0.1 8001`: `PUT greeting hello`,
//! `GET greeting`), add a fourth with `--join 127.0.0.1:8001` instead of
//! `--bootstrap`, and restart any node with the command that started it.
//! `--lease-reads` serves reads from the leader's lease (no round trip to
//! a quorum while it holds; docs/PROTOCOL.md §8) instead of by ReadIndex.
//! `--backup-dir DIR` turns on online backups: `BACKUP nightly` (to the
//! leader, which first confirms with a ReadIndex round that it still
//! leads) writes `DIR/nightly.backup`, everything acknowledged so far,
//! which `examples/backup restore` starts a new cluster from
//! (docs/PROTOCOL.md §7.5).
//! Clients are bounded: at most `--max-clients` at once (256; one more is
//! answered `ERR too many clients`), each closed after `--client-idle-ms`
//! of silence (30 000), so that clients cannot use up the descriptors the
//! log needs. A node whose runtime stops (a storage failure) exits with
//! status 1 and says why, for its supervisor to restart it.
//! `tests/kv_node_processes.rs` does all of this, with SIGKILL
//! (`tests/node_example_clients.rs` the bounds and the exit).

mod args;
#[path = "../support/backup_file.rs"]
mod backup_file;
#[path = "../support/exit_on_stop.rs"]
mod exit_on_stop;
#[path = "../support/line_server.rs"]
mod line_server;
#[path = "../support/node_args.rs"]
mod node_args;
mod protocol;
mod server;
mod store;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use raft_io::runtime::{Runtime, address_bytes};
use raft_io::transport::{PeerAddr, TcpConfig, TcpTransport};
use raft_io::{NodeId, RaftConfig, RaftNode, ReadKind, WalLog};

use crate::args::{Args, Start};
use crate::server::Server;
use crate::store::Store;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kv_node: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv_node {}: {e}", args.id);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let log = WalLog::open(&args.data).map_err(|e| format!("open the log in {}: {e}", args.data.display()))?;
    let config = match &args.start {
        Start::Bootstrap(peers) => RaftConfig::new(args.id, peers.iter().map(|(id, _)| *id))
            .addresses(peers.iter().map(|(id, a)| (*id, address_bytes(a.clone())))),
        Start::Join(_) => RaftConfig::joining(args.id),
    }
    .lease_reads(args.lease_reads)
    .cluster_id(args.cluster_id)
    .seed(args.id)
    .snapshot_entries(1000);
    let node = RaftNode::with_log(config, log).map_err(|e| format!("recover the node: {e}"))?;
    let transport = TcpTransport::bind(TcpConfig::new(args.id, args.raft).cluster_id(args.cluster_id))
        .map_err(|e| format!("listen on {}: {e}", args.raft))?;
    let clients = TcpListener::bind(args.client).map_err(|e| format!("listen on {}: {e}", args.client))?;
    if let Start::Join(via) = args.start {
        if node.membership().is_empty() {
            // Not a member yet: ask the cluster to add this node, then
            // accept its members (a node talks only to known peers).
            for (id, addr) in join(via, args.id, args.raft)? {
                transport.add_peer(id, addr).map_err(|e| format!("add peer {id}: {e}"))?;
            }
        }
    }
    let directory = Arc::new(Mutex::new(BTreeMap::new()));
    let handle = Runtime::new(node, transport, Store::new(Arc::clone(&directory)))
        .tick_interval(Duration::from_millis(10))
        .request_timeout(Duration::from_secs(5))
        .read_kind(if args.lease_reads { ReadKind::Lease } else { ReadKind::Index })
        .start()
        .map_err(|e| format!("start the runtime: {e}"))?;
    register_when_leading(handle.clone(), Arc::clone(&directory), args.id, args.client);
    let watched = handle.clone();
    exit_on_stop::exit_when_stopped("kv_node", args.id, move || watched.stop_reason().map(|r| format!("{r:?}")))?;
    println!("kv_node {} ready: raft {}, clients {}", args.id, args.raft, args.client);
    Server { handle, directory, backup_dir: args.backup_dir.clone() }.serve(clients, args.clients);
    Ok(())
}

/// While this node leads, makes sure the replicated directory holds its
/// client address (so followers can redirect clients here).
fn register_when_leading(
    handle: raft_io::runtime::RaftHandle<Store>,
    dir: store::Directory,
    id: NodeId,
    client: SocketAddr,
) {
    let client = client.to_string();
    std::thread::spawn(move || {
        while handle.is_running() {
            let known = dir.lock().unwrap_or_else(PoisonError::into_inner).get(&id) == Some(&client);
            if handle.is_leader() && !known {
                let _ = handle.propose(store::register(id, &client));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Sends `JOIN` to `via`, following redirects, until a leader adds this
/// node; returns the members' raft addresses. Gives up after two minutes.
fn join(mut via: SocketAddr, id: NodeId, raft: SocketAddr) -> Result<Vec<(NodeId, PeerAddr)>, String> {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        match ask(via, &format!("JOIN {id} {raft}")) {
            Ok(reply) if reply.starts_with("OK") => return members(&reply[2..]),
            Ok(reply) if reply.starts_with("REDIRECT ") => {
                let target = reply["REDIRECT ".len()..].split_whitespace().next().unwrap_or("");
                via = node_args::addr(target, "redirect")?;
                continue;
            }
            Ok(reply) if reply.contains("already a member") => return Err(format!("join refused: {reply}")),
            Ok(reply) => eprintln!("kv_node {id}: join through {via}: {reply}; retrying"),
            Err(e) => eprintln!("kv_node {id}: join through {via}: {e}; retrying"),
        }
        if Instant::now() > give_up {
            return Err(format!("could not join through {via}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One request, one reply line.
fn ask(addr: SocketAddr, request: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    writeln!(stream, "{request}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim_end().to_owned())
}

/// Parses `1=ip:port,2=host:port`.
fn members(list: &str) -> Result<Vec<(NodeId, PeerAddr)>, String> {
    let list = list.trim();
    if list.is_empty() {
        return Ok(Vec::new());
    }
    node_args::peers(list, "join reply")
}
