//! The command line of `sharded_node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;

use crate::node_args::{lists_self, parse_node, peers};

/// The most groups a node hosts (`--groups`).
pub const MAX_GROUPS: u64 = 10_000;

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    pub id: NodeId,
    pub raft: SocketAddr,
    pub client: SocketAddr,
    pub data: PathBuf,
    /// Every node (this one included) and its raft address: the voters of
    /// every group.
    pub peers: Vec<(NodeId, raft_io::transport::PeerAddr)>,
    /// The groups are `1..=groups`.
    pub groups: u64,
    pub cluster_id: u64,
    /// `--max-clients`, `--client-idle-ms`.
    pub clients: crate::line_server::ClientLimits,
}

pub const USAGE: &str = "usage: sharded_node --id <n> --raft <ip:port> --client <ip:port> --data <dir> \
--peers <id>=<ip:port or host:port>,... --groups <n> [--cluster-id <n>] [--max-clients <n>] [--client-idle-ms <ms>]";

/// Parses `args` (without the program name). Every error names the flag.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut list, mut groups) = (None, None);
    let node = parse_node(args, 0x7368_6172_6473, |flag, value| {
        match flag {
            "--peers" => list = Some(peers(&value()?, "--peers")?),
            "--groups" => {
                let v = value()?;
                match v.parse::<u64>() {
                    Ok(n @ 1..=MAX_GROUPS) => groups = Some(n),
                    _ => return Err(format!("--groups: {v:?} is not a number of groups from 1 to {MAX_GROUPS}")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let args = Args {
        id: node.id,
        raft: node.raft,
        client: node.client,
        data: node.data,
        peers: list.ok_or("--peers is required")?,
        groups: groups.ok_or("--groups is required")?,
        cluster_id: node.cluster_id,
        clients: node.clients,
    };
    lists_self(&args.peers, args.id, args.raft, "--peers")?;
    Ok(args)
}
