//! The command line of `kv_node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;

use crate::node_args::{addr, lists_self, node_id, peers};

/// How the node finds its cluster.
#[derive(Debug)]
pub enum Start {
    /// A founder of a new cluster: every founder's id and raft address.
    Bootstrap(Vec<(NodeId, SocketAddr)>),
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
    pub start: Start,
}

pub const USAGE: &str = "usage: kv_node --id <n> --raft <ip:port> --client <ip:port> --data <dir> \
(--bootstrap <id>=<ip:port>,... | --join <client ip:port of a member>) [--cluster-id <n>]";

/// Parses `args` (without the program name). Every error names the flag.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut it = args.into_iter();
    let (mut id, mut raft, mut client, mut data, mut start) = (None, None, None, None, None);
    let mut cluster_id = 0x6b76_6e6f_6465;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => id = Some(node_id(&value()?, "--id")?),
            "--raft" => raft = Some(addr(&value()?, "--raft")?),
            "--client" => client = Some(addr(&value()?, "--client")?),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--cluster-id" => {
                let v = value()?;
                cluster_id = v.parse().map_err(|_| format!("--cluster-id: {v:?} is not a number"))?;
            }
            "--bootstrap" | "--join" if start.is_some() => {
                return Err("give one of --bootstrap and --join, once".into());
            }
            "--bootstrap" => start = Some(Start::Bootstrap(peers(&value()?, "--bootstrap")?)),
            "--join" => start = Some(Start::Join(addr(&value()?, "--join")?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let args = Args {
        id: id.ok_or("--id is required")?,
        raft: raft.ok_or("--raft is required")?,
        client: client.ok_or("--client is required")?,
        data: data.ok_or("--data is required")?,
        cluster_id,
        start: start.ok_or("one of --bootstrap and --join is required")?,
    };
    if let Start::Bootstrap(peers) = &args.start {
        lists_self(peers, args.id, args.raft, "--bootstrap")?;
    }
    Ok(args)
}
