//! Command-line values the node examples share (`kv_node`,
//! `sharded_node`): node ids, socket addresses, peer lists. Every error
//! names the flag it came from.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use raft_io::NodeId;
use raft_io::transport::PeerAddr;

use crate::line_server::ClientLimits;

/// A node id (not 0, which is reserved).
pub fn node_id(text: &str, flag: &str) -> Result<NodeId, String> {
    match text.parse::<NodeId>() {
        Ok(0) => Err(format!("{flag}: node id 0 is reserved")),
        Ok(id) => Ok(id),
        Err(_) => Err(format!("{flag}: {text:?} is not a node id")),
    }
}

/// A socket address (`ip:port`, not port 0: a node's addresses are where
/// others reach it); names are not resolved.
pub fn addr(text: &str, what: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = text.parse().map_err(|_| format!("{what}: {text:?} is not an address of the form ip:port"))?;
    if a.port() == 0 {
        return Err(format!("{what}: {text:?}: port 0 is no address another node or a client can reach"));
    }
    Ok(a)
}

/// A list `id=ip:port,...` or `id=host:port,...` (a host name is looked up
/// at every dial), each id once and each address once: two nodes cannot
/// listen at one address, and a message for either would reach whichever
/// holds it. (Addresses are compared as written, a host name without
/// regard to case; one given as a name and as an IP address is not
/// caught.)
pub fn peers(text: &str, flag: &str) -> Result<Vec<(NodeId, PeerAddr)>, String> {
    let mut out: Vec<(NodeId, PeerAddr)> = Vec::new();
    for item in text.split(',') {
        let (id, a) = item.split_once('=').ok_or_else(|| format!("{flag}: {item:?} is not id=host:port"))?;
        let id = node_id(id, flag)?;
        if out.iter().any(|(known, _)| *known == id) {
            return Err(format!("{flag}: node {id} is listed twice"));
        }
        let a: PeerAddr = a.parse().map_err(|e| format!("{flag}: node {id}: {e}"))?;
        if a.port() == 0 {
            return Err(format!("{flag}: node {id}: port 0 is no address a node can be reached at"));
        }
        if let Some((other, _)) = out.iter().find(|(_, b)| b.to_string().eq_ignore_ascii_case(&a.to_string())) {
            return Err(format!("{flag}: node {id} is given {a}, the address of node {other}"));
        }
        out.push((id, a));
    }
    Ok(out)
}

/// Checks that `peers` (given with `flag`) lists node `id` at `raft`: that
/// address, or a host name with its port (the name is this node's to
/// give; it is not looked up here).
pub fn lists_self(peers: &[(NodeId, PeerAddr)], id: NodeId, raft: SocketAddr, flag: &str) -> Result<(), String> {
    match peers.iter().find(|(known, _)| *known == id) {
        None => Err(format!("{flag} does not list this node ({id})")),
        Some((_, a)) if a.host().is_some() && a.port() == raft.port() => Ok(()),
        Some((_, a)) if *a != raft => Err(format!("{flag} gives node {id} the address {a}, --raft says {raft}")),
        Some(_) => Ok(()),
    }
}

/// The flags every node example takes.
#[derive(Debug)]
pub struct NodeFlags {
    pub id: NodeId,
    pub raft: SocketAddr,
    pub client: SocketAddr,
    pub data: PathBuf,
    pub cluster_id: u64,
    /// `--max-clients` and `--client-idle-ms`.
    pub clients: ClientLimits,
}

/// Reads the next flag's value.
pub type Value<'a> = dyn FnMut() -> Result<String, String> + 'a;

/// Parses a node's command line (without the program name): `--id`,
/// `--raft`, `--client`, `--data` (required), `--cluster-id` (default
/// `cluster_id`), `--max-clients` and `--client-idle-ms` (defaults:
/// [`ClientLimits::default`]) here, every other flag through `other(flag, value)`, which
/// answers `Ok(false)` for a flag it does not know. Each flag is taken
/// once: one given twice is refused rather than the last one taken (a
/// command line edited in a hurry would otherwise start the node with a
/// value nobody meant). Every error names the flag.
pub fn parse_node(
    args: impl IntoIterator<Item = String>,
    cluster_id: u64,
    mut other: impl FnMut(&str, &mut Value<'_>) -> Result<bool, String>,
) -> Result<NodeFlags, String> {
    let mut it = args.into_iter();
    let (mut id, mut raft, mut client, mut data, mut cluster) = (None, None, None, None, cluster_id);
    let mut clients = ClientLimits::default();
    let positive = |flag: &str, v: String| match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: {v:?} is not a positive number")),
    };
    let mut given: Vec<String> = Vec::new();
    while let Some(flag) = it.next() {
        if given.contains(&flag) {
            return Err(format!("{flag} is given twice"));
        }
        given.push(flag.clone());
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => id = Some(node_id(&value()?, "--id")?),
            "--raft" => raft = Some(addr(&value()?, "--raft")?),
            "--client" => client = Some(addr(&value()?, "--client")?),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--cluster-id" => {
                let v = value()?;
                cluster = v.parse().map_err(|_| format!("--cluster-id: {v:?} is not a number"))?;
            }
            "--max-clients" => clients.max = positive("--max-clients", value()?)? as usize,
            "--client-idle-ms" => {
                clients.idle = std::time::Duration::from_millis(positive("--client-idle-ms", value()?)?);
            }
            known if other(known, &mut value)? => {}
            unknown => return Err(format!("unknown argument {unknown:?}")),
        }
    }
    Ok(NodeFlags {
        id: id.ok_or("--id is required")?,
        raft: raft.ok_or("--raft is required")?,
        client: client.ok_or("--client is required")?,
        data: data.ok_or("--data is required")?,
        cluster_id: cluster,
        clients,
    })
}
