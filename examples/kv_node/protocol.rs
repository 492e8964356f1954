//! The client protocol of `kv_node`: one request per line, one reply line
//! per request, over TCP.
//!
//! | request | reply |
//! |---|---|
//! | `GET <key>` | `VALUE <value>` or `NOTFOUND` (a linearizable read, served by any member) |
//! | `PUT <key> <value>` | `OK` (the value is the rest of the line) |
//! | `DEL <key>` | `OK` |
//! | `JOIN <id> <raft ip:port>` | `OK <id>=<raft ip:port>,...` (the members and their raft addresses) |
//! | `REMOVE <id>` | `OK` |
//! | `LEADER` | `LEADER <id> <client ip:port or ?>` |
//! | `MEMBERS` | `MEMBERS <id>=<raft ip:port>,...` (the configuration in effect on this node) |
//! | `STATS` | `STATS lease_reads=<n>` (reads this node answered from its lease as leader) |
//! | `BACKUP <name>` | `OK <file> through index <n>`: an online backup holding every write acknowledged before the request, written to `<name>.backup` in its `--backup-dir` (a new file; the name is letters, digits, `-` and `_`). Leader only: it is taken once a ReadIndex round confirms the node still leads, and a leader that cannot confirm it (cut off from its quorum) answers `ERR` and writes nothing |
//!
//! A write, `JOIN`, `REMOVE` or `BACKUP` sent to a node that is not the
//! leader is answered `REDIRECT <leader's client ip:port>` (nothing
//! changed); every other failure is `ERR <what happened>`, and says when
//! the outcome is unknown (the request may still take effect). A request
//! line longer than `line_server::MAX_LINE` bytes closes the connection
//! after an `ERR`.

use std::net::SocketAddr;

use raft_io::NodeId;

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Get(String),
    Put(String, String),
    Del(String),
    Join(NodeId, SocketAddr),
    Remove(NodeId),
    Leader,
    Members,
    Stats,
    Backup(String),
}

/// Parses one request line (without its newline, nor a `\r` before it).
/// The error is the reply.
pub fn parse(line: &str) -> Result<Request, String> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let words: Vec<&str> = rest.split_whitespace().collect();
    match (command, words.as_slice()) {
        ("GET", [key]) => Ok(Request::Get((*key).to_owned())),
        ("PUT", [key, ..]) => {
            let value = rest.trim_start().strip_prefix(key).map(str::trim).unwrap_or("");
            if value.is_empty() {
                return Err("ERR malformed request: usage PUT <key> <value>".into());
            }
            Ok(Request::Put((*key).to_owned(), value.to_owned()))
        }
        ("DEL", [key]) => Ok(Request::Del((*key).to_owned())),
        ("JOIN", [id, addr]) => {
            let id = node_id(id)?;
            let addr = addr.parse().map_err(|_| format!("ERR bad address {addr:?}: expected ip:port"))?;
            Ok(Request::Join(id, addr))
        }
        ("REMOVE", [id]) => Ok(Request::Remove(node_id(id)?)),
        ("LEADER", []) => Ok(Request::Leader),
        ("MEMBERS", []) => Ok(Request::Members),
        ("STATS", []) => Ok(Request::Stats),
        ("BACKUP", [name])
            if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Request::Backup((*name).to_owned()))
        }
        ("GET" | "DEL", _) => Err(format!("ERR malformed request: usage {command} <key>")),
        ("PUT", _) => Err("ERR malformed request: usage PUT <key> <value>".into()),
        ("JOIN", _) => Err("ERR malformed request: usage JOIN <id> <ip:port>".into()),
        ("REMOVE", _) => Err("ERR malformed request: usage REMOVE <id>".into()),
        ("LEADER", _) => Err("ERR malformed request: usage LEADER".into()),
        ("MEMBERS", _) => Err("ERR malformed request: usage MEMBERS".into()),
        ("STATS", _) => Err("ERR malformed request: usage STATS".into()),
        ("BACKUP", _) => Err("ERR malformed request: usage BACKUP <name> (letters, digits, - and _)".into()),
        ("", _) => Err("ERR empty request".into()),
        (other, _) => {
            Err(format!("ERR unknown command {other:?} (GET, PUT, DEL, JOIN, REMOVE, LEADER, MEMBERS, STATS, BACKUP)"))
        }
    }
}

fn node_id(text: &str) -> Result<NodeId, String> {
    match text.parse::<NodeId>() {
        Ok(0) | Err(_) => Err(format!("ERR bad node id {text:?}")),
        Ok(id) => Ok(id),
    }
}
