//! The command line of `kv_node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;

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
            "--bootstrap" => start = Some(Start::Bootstrap(bootstrap(&value()?)?)),
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
        match peers.iter().find(|(id, _)| *id == args.id) {
            None => return Err(format!("--bootstrap does not list this node ({})", args.id)),
            Some((_, a)) if *a != args.raft => {
                return Err(format!("--bootstrap gives node {} the address {a}, --raft says {}", args.id, args.raft));
            }
            Some(_) => {}
        }
    }
    Ok(args)
}

fn node_id(text: &str, flag: &str) -> Result<NodeId, String> {
    match text.parse::<NodeId>() {
        Ok(0) => Err(format!("{flag}: node id 0 is reserved")),
        Ok(id) => Ok(id),
        Err(_) => Err(format!("{flag}: {text:?} is not a node id")),
    }
}

/// A socket address (`ip:port`); names are not resolved.
pub fn addr(text: &str, what: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("{what}: {text:?} is not an address of the form ip:port"))
}

fn bootstrap(text: &str) -> Result<Vec<(NodeId, SocketAddr)>, String> {
    let mut out: Vec<(NodeId, SocketAddr)> = Vec::new();
    for item in text.split(',') {
        let (id, a) = item.split_once('=').ok_or_else(|| format!("--bootstrap: {item:?} is not id=ip:port"))?;
        let id = node_id(id, "--bootstrap")?;
        if out.iter().any(|(known, _)| *known == id) {
            return Err(format!("--bootstrap: node {id} is listed twice"));
        }
        out.push((id, addr(a, "--bootstrap")?));
    }
    Ok(out)
}
