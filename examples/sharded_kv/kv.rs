//! The key-value state machine of one group, its commands, and how keys
//! are hashed to groups.

use std::collections::HashMap;

use bytes::Bytes;
use raft_io::multi::GroupId;
use raft_io::runtime::StateMachine;

/// A group's keys and values. A put's output is the value it replaced,
/// so every write is identifiable in what the group returns.
#[derive(Default)]
pub struct Kv {
    map: HashMap<Bytes, Bytes>,
}

impl Kv {
    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map.get(key).cloned()
    }
}

/// A put command: `key length (u16 LE) | key | value`.
pub fn put(key: &[u8], value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(2 + key.len() + value.len());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out.into()
}

/// What a put returns: the value it replaced (`None`: the key was new, or
/// the command was malformed and ignored).
pub type Output = Option<Bytes>;

impl StateMachine for Kv {
    type Output = Output;

    fn apply(&mut self, _index: u64, command: &Bytes) -> Output {
        if command.len() < 2 {
            return None;
        }
        let n = u16::from_le_bytes([command[0], command[1]]) as usize;
        if command.len() < 2 + n {
            return None;
        }
        let key = command.slice(2..2 + n);
        let value = command.slice(2 + n..);
        self.map.insert(key, value)
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for (k, v) in &self.map {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out.into()
    }

    fn restore(&mut self, data: &Bytes) {
        self.map.clear();
        let mut at = 0;
        let field = |at: &mut usize| -> Option<Bytes> {
            let len = data.get(*at..*at + 4)?;
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let start = *at + 4;
            let bytes = data.get(start..start + n).map(|_| data.slice(start..start + n))?;
            *at = start + n;
            Some(bytes)
        };
        while let (Some(k), Some(v)) = (field(&mut at), field(&mut at)) {
            self.map.insert(k, v);
        }
    }
}

/// The group of `key` among groups `1..=groups` (FNV-1a).
pub fn group_of(key: &[u8], groups: u64) -> GroupId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    1 + h % groups
}

/// The key a client writes in its slot `slot`.
pub fn key(client: usize, slot: usize) -> Vec<u8> {
    format!("c{client:03}-k{slot:04}").into_bytes()
}

/// The value of a client's `seq`-th write of a key (16 bytes).
pub fn value(seq: u64) -> Vec<u8> {
    format!("v{seq:015}").into_bytes()
}
