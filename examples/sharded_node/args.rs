//! The command line of `sharded_node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;

use crate::node_args::{addr, lists_self, node_id, peers};

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
    pub peers: Vec<(NodeId, SocketAddr)>,
    /// The groups are `1..=groups`.
    pub groups: u64,
    pub cluster_id: u64,
}

pub const USAGE: &str = "usage: sharded_node --id <n> --raft <ip:port> --client <ip:port> --data <dir> \
--peers <id>=<ip:port>,... --groups <n> [--cluster-id <n>]";

/// Parses `args` (without the program name). Every error names the flag.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut it = args.into_iter();
    let (mut id, mut raft, mut client, mut data, mut list, mut groups) = (None, None, None, None, None, None);
    let mut cluster_id = 0x7368_6172_6473;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => id = Some(node_id(&value()?, "--id")?),
            "--raft" => raft = Some(addr(&value()?, "--raft")?),
            "--client" => client = Some(addr(&value()?, "--client")?),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--peers" => list = Some(peers(&value()?, "--peers")?),
            "--groups" => {
                let v = value()?;
                match v.parse::<u64>() {
                    Ok(n @ 1..=MAX_GROUPS) => groups = Some(n),
                    _ => return Err(format!("--groups: {v:?} is not a number of groups from 1 to {MAX_GROUPS}")),
                }
            }
            "--cluster-id" => {
                let v = value()?;
                cluster_id = v.parse().map_err(|_| format!("--cluster-id: {v:?} is not a number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let args = Args {
        id: id.ok_or("--id is required")?,
        raft: raft.ok_or("--raft is required")?,
        client: client.ok_or("--client is required")?,
        data: data.ok_or("--data is required")?,
        peers: list.ok_or("--peers is required")?,
        groups: groups.ok_or("--groups is required")?,
        cluster_id,
    };
    lists_self(&args.peers, args.id, args.raft, "--peers")?;
    Ok(args)
}
