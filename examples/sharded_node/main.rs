//! One node of a sharded key-value store per process, on the many-groups
//! runtime (`raft_io::runtime::multi`): it hosts a replica of every group
//! `1..=--groups` (each a key-value state machine, `sharded_kv`'s), all of
//! their logs in one `SharedWal` directory (`--data`), their traffic on one
//! TCP port (`--raft`) to the nodes of `--peers`, which are the voters of
//! every group. Clients talk a line-based protocol over TCP (`--client`,
//! see `protocol.rs`) and name the group of each request.
//!
//! Start a three-node cluster of 6 groups by hand (one terminal each):
//!
//! ```text
//! cargo run --example sharded_node --features net,persistence -- --id 1 --raft 127.0.0.1:7101 --client 127.0.0.1:8101 --data /tmp/sharded1 --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --groups 6
//! cargo run --example sharded_node --features net,persistence -- --id 2 --raft 127.0.0.1:7102 --client 127.0.0.1:8102 --data /tmp/sharded2 --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --groups 6
//! cargo run --example sharded_node --features net,persistence -- --id 3 --raft 127.0.0.1:7103 --client 127.0.0.1:8103 --data /tmp/sharded3 --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --groups 6
//! ```
//!
//! then talk to any of them (`nc 127.0.0.1 8101`: `LEADS`, `LEADER 2`,
//! `PUT 2 greeting hello` on group 2's leader, `GET 2 greeting` anywhere),
//! and restart any node with the command that started it: every group
//! recovers from the directory. `tests/sharded_node_processes.rs` does
//! this with SIGKILL.

mod args;
#[path = "../support/exit_on_stop.rs"]
mod exit_on_stop;
#[allow(dead_code)] // the key and group helpers serve sharded_kv's clients
#[path = "../sharded_kv/kv.rs"]
mod kv;
#[path = "../support/line_server.rs"]
mod line_server;
#[path = "../support/node_args.rs"]
mod node_args;
mod protocol;
mod server;

use std::net::TcpListener;
use std::process::ExitCode;

use raft_io::RaftConfig;
use raft_io::log::shared::SharedWal;
use raft_io::multi::HostConfig;
use raft_io::runtime::multi::MultiRuntime;
use raft_io::transport::{TcpConfig, TcpGroupTransport};

use crate::args::Args;
use crate::kv::Kv;
use crate::server::Server;

/// Election timeouts in ticks (of 10 ms): a loaded machine running debug
/// builds must not see leaders fail while they are alive.
const ELECTION_TICKS: (u64, u64) = (30, 60);

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sharded_node: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sharded_node {}: {e}", args.id);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let wal = SharedWal::open(&args.data).map_err(|e| format!("open the WAL in {}: {e}", args.data.display()))?;
    let transport = TcpGroupTransport::bind(TcpConfig::new(args.id, args.raft).cluster_id(args.cluster_id))
        .map_err(|e| format!("listen on {}: {e}", args.raft))?;
    for (id, addr) in args.peers.iter().filter(|(id, _)| *id != args.id) {
        transport.add_peer(*id, addr.clone()).map_err(|e| format!("add peer {id}: {e}"))?;
    }
    let clients = TcpListener::bind(args.client).map_err(|e| format!("listen on {}: {e}", args.client))?;
    let voters: Vec<_> = args.peers.iter().map(|(id, _)| *id).collect();
    let host = HostConfig::new(args.id).peer_timeout(ELECTION_TICKS.0);
    // Every group of 1..=groups, recovered from the WAL if it is there.
    let runtime = (1..=args.groups).fold(MultiRuntime::new(host, wal, transport, |_| Kv::default()), |rt, g| {
        let config = RaftConfig::new(args.id, voters.iter().copied())
            .cluster_id(args.cluster_id)
            .election_timeout(ELECTION_TICKS.0, ELECTION_TICKS.1)
            .heartbeat_interval(5)
            .seed(g * 7 + args.id)
            .snapshot_entries(1000);
        rt.group(g, config)
    });
    let handle = runtime.start().map_err(|e| format!("start the runtime: {e}"))?;
    let watched = handle.clone();
    exit_on_stop::exit_when_stopped("sharded_node", args.id, move || watched.stop_reason().map(|r| format!("{r:?}")))?;
    println!("sharded_node {} ready: raft {}, clients {}, {} groups", args.id, args.raft, args.client, args.groups);
    Server { handle }.serve(clients, args.clients);
    Ok(())
}
