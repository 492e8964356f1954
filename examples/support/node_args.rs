//! Command-line values the node examples share (`kv_node`,
//! `sharded_node`): node ids, socket addresses, peer lists. Every error
//! names the flag it came from.
#![allow(dead_code)]

use std::net::SocketAddr;

use raft_io::NodeId;

/// A node id (not 0, which is reserved).
pub fn node_id(text: &str, flag: &str) -> Result<NodeId, String> {
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

/// A list `id=ip:port,...`, each id once.
pub fn peers(text: &str, flag: &str) -> Result<Vec<(NodeId, SocketAddr)>, String> {
    let mut out: Vec<(NodeId, SocketAddr)> = Vec::new();
    for item in text.split(',') {
        let (id, a) = item.split_once('=').ok_or_else(|| format!("{flag}: {item:?} is not id=ip:port"))?;
        let id = node_id(id, flag)?;
        if out.iter().any(|(known, _)| *known == id) {
            return Err(format!("{flag}: node {id} is listed twice"));
        }
        out.push((id, addr(a, flag)?));
    }
    Ok(out)
}

/// Checks that `peers` (given with `flag`) lists node `id` at `raft`.
pub fn lists_self(peers: &[(NodeId, SocketAddr)], id: NodeId, raft: SocketAddr, flag: &str) -> Result<(), String> {
    match peers.iter().find(|(known, _)| *known == id) {
        None => Err(format!("{flag} does not list this node ({id})")),
        Some((_, a)) if *a != raft => Err(format!("{flag} gives node {id} the address {a}, --raft says {raft}")),
        Some(_) => Ok(()),
    }
}
