//! The command line of `kv_node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;

use crate::node_args::{addr, lists_self, parse_node, peers};

/// How the node finds its cluster.
#[derive(Debug)]
pub enum Start {
    /// A founder of a new cluster: every founder's id and raft address.
    Bootstrap(Vec<(NodeId, raft_io::transport::PeerAddr)>),
    /// A new member: the client address of a running member to ask.
    Join(SocketAddr),
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    pub id: NodeId,
    pub raft: SocketAddr,
    pub client: SocketAddr,
    pub data: PathBuf,
    pub cluster_id: u64,
    /// `--max-clients`, `--client-idle-ms`.
    pub clients: crate::line_server::ClientLimits,
    pub start: Start,
    /// Serve reads from the leader's lease (`--lease-reads`) rather than by
    /// ReadIndex.
    pub lease_reads: bool,
    /// Where `BACKUP <name>` writes online backups (`--backup-dir`); off
    /// when not given.
    pub backup_dir: Option<PathBuf>,
}

pub const USAGE: &str = "usage: kv_node --id <n> --raft <ip:port> --client <ip:port> --data <dir> \
(--bootstrap <id>=<ip:port or host:port>,... | --join <client ip:port of a member>) [--cluster-id <n>] [--lease-reads] [--backup-dir <dir>] [--max-clients <n>] [--client-idle-ms <ms>]";

/// Parses `args` (without the program name). Every error names the flag.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut start = None;
    let mut lease_reads = false;
    let mut backup_dir = None;
    let node = parse_node(args, 0x6b76_6e6f_6465, |flag, value| {
        match flag {
            "--lease-reads" => lease_reads = true,
            "--backup-dir" => backup_dir = Some(PathBuf::from(value()?)),
            "--bootstrap" | "--join" if start.is_some() => {
                return Err("give one of --bootstrap and --join, not both".into());
            }
            "--bootstrap" => start = Some(Start::Bootstrap(peers(&value()?, "--bootstrap")?)),
            "--join" => start = Some(Start::Join(addr(&value()?, "--join")?)),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let args = Args {
        id: node.id,
        raft: node.raft,
        client: node.client,
        data: node.data,
        cluster_id: node.cluster_id,
        clients: node.clients,
        start: start.ok_or("one of --bootstrap and --join is required")?,
        lease_reads,
        backup_dir,
    };
    if let Start::Bootstrap(peers) = &args.start {
        lists_self(peers, args.id, args.raft, "--bootstrap")?;
    }
    Ok(args)
}
