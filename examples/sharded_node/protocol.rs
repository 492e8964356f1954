//! The client protocol of `sharded_node`: one request per line, one reply
//! line per request, over TCP. Groups are numbered `1..=--groups`.
//!
//! | request | reply |
//! |---|---|
//! | `PUT <group> <key> <value>` | `OK` (the value is the rest of the line) |
//! | `GET <group> <key>` | `VALUE <value>` or `NOTFOUND` (a linearizable read of the group, served by any replica) |
//! | `LEADER <group>` | `LEADER <id>` (the group's leader as this node knows it) |
//! | `LEADS` | `LEADS <group> <group> ...` (the groups this node leads now; none: `LEADS`) |
//!
//! A `PUT` sent to a node that does not lead the group is answered
//! `REDIRECT <leader's node id>` (nothing changed). Every other failure is
//! `ERR <what happened>`: `ERR unknown group <n>` for a group this node
//! does not host, `ERR no leader known; retry` while the group elects,
//! `ERR outcome unknown: ...` when the write may still take effect. A
//! request line longer than `line_server::MAX_LINE` bytes closes the
//! connection after an `ERR`.

use raft_io::multi::GroupId;

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Put(GroupId, String, String),
    Get(GroupId, String),
    Leader(GroupId),
    Leads,
}

/// Parses one request line (without its newline, nor a `\r` before it).
/// The error is the reply.
pub fn parse(line: &str) -> Result<Request, String> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let words: Vec<&str> = rest.split_whitespace().collect();
    match (command, words.as_slice()) {
        ("PUT", [group, key, _, ..]) => {
            // The value is the rest of the line after the key.
            let (_, after_group) = first_word(rest);
            let (_, value) = first_word(after_group);
            Ok(Request::Put(group_id(group)?, (*key).to_owned(), value.trim().to_owned()))
        }
        ("GET", [group, key]) => Ok(Request::Get(group_id(group)?, (*key).to_owned())),
        ("LEADER", [group]) => Ok(Request::Leader(group_id(group)?)),
        ("LEADS", []) => Ok(Request::Leads),
        ("PUT", _) => Err("ERR malformed request: usage PUT <group> <key> <value>".into()),
        ("GET", _) => Err("ERR malformed request: usage GET <group> <key>".into()),
        ("LEADER", _) => Err("ERR malformed request: usage LEADER <group>".into()),
        ("LEADS", _) => Err("ERR malformed request: usage LEADS".into()),
        ("", _) => Err("ERR empty request".into()),
        (other, _) => Err(format!("ERR unknown command {other:?} (PUT, GET, LEADER, LEADS)")),
    }
}

/// The first word of `text` (after leading blanks) and what follows it.
fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    text.split_at(text.find(char::is_whitespace).unwrap_or(text.len()))
}

fn group_id(text: &str) -> Result<GroupId, String> {
    text.parse().map_err(|_| format!("ERR malformed request: group {text:?} is not a number"))
}
