//! The replicated state machine of `kv_node`: a map of keys to values, and
//! every node's client address (so any node can redirect a client to the
//! leader's).
//!
//! Commands are text lines: `P <key> <value>` puts, `D <key>` deletes,
//! `C <id> <client address>` records a node's client address.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use raft_io::NodeId;
use raft_io::runtime::StateMachine;

/// Client addresses by node id, shared with the client server (read for
/// redirects; a hint, not a linearizable read).
pub type Directory = Arc<Mutex<BTreeMap<NodeId, String>>>;

/// The key-value map and the directory.
pub struct Store {
    pub map: BTreeMap<String, String>,
    pub directory: Directory,
}

impl Store {
    pub fn new(directory: Directory) -> Self {
        Self { map: BTreeMap::new(), directory }
    }
}

pub fn put(key: &str, value: &str) -> Bytes {
    format!("P {key} {value}").into()
}

pub fn delete(key: &str) -> Bytes {
    format!("D {key}").into()
}

pub fn register(id: NodeId, client: &str) -> Bytes {
    format!("C {id} {client}").into()
}

impl StateMachine for Store {
    /// Whether the command changed anything.
    type Output = bool;

    fn apply(&mut self, _index: u64, command: &Bytes) -> bool {
        // Commands come from this program only; anything else changes
        // nothing (a replicated log never holds it, but apply is total).
        let Ok(text) = std::str::from_utf8(command) else { return false };
        let mut parts = text.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("P"), Some(k), Some(v)) => self.map.insert(k.to_owned(), v.to_owned()).as_deref() != Some(v),
            (Some("D"), Some(k), None) => self.map.remove(k).is_some(),
            (Some("C"), Some(id), Some(addr)) => match id.parse() {
                Ok(id) => {
                    let mut dir = self.directory.lock().unwrap_or_else(PoisonError::into_inner);
                    dir.insert(id, addr.to_owned()).as_deref() != Some(addr)
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    fn snapshot(&self) -> Bytes {
        let dir = self.directory.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (id, addr) in dir.iter() {
            out.push_str(&format!("C {id} {addr}\n"));
        }
        for (k, v) in &self.map {
            out.push_str(&format!("P {k} {v}\n"));
        }
        out.into()
    }

    fn restore(&mut self, data: &Bytes) {
        self.map.clear();
        self.directory.lock().unwrap_or_else(PoisonError::into_inner).clear();
        for line in String::from_utf8_lossy(data).lines() {
            self.apply(0, &Bytes::copy_from_slice(line.as_bytes()));
        }
    }
}
