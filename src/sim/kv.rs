//! [`KvStore`]: a small replicated key-value state machine for simulations,
//! examples and the linearizability tests.
//!
//! Commands are `put <key> <value>` and `cas <key> <expected> <new>` as UTF-8
//! text (see [`KvStore::put`] and [`KvStore::cas`] to build them). The store
//! keeps, per key, the value and the index of the entry that last wrote it.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::state_machine::{StateMachine, fnv1a};
use crate::types::Index;

/// A key-value store driven by committed commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    data: BTreeMap<String, (Bytes, Index)>,
    digest: u64,
    applied: Index,
}

impl KvStore {
    /// The command that sets `key` to `value`.
    pub fn put(key: &str, value: &[u8]) -> Bytes {
        let mut c = Vec::with_capacity(5 + key.len() + value.len());
        c.extend_from_slice(b"put ");
        c.extend_from_slice(key.as_bytes());
        c.push(b' ');
        c.extend_from_slice(value);
        c.into()
    }

    /// The command that sets `key` to `new` only if it currently holds
    /// `expected` (an empty `expected` means "absent").
    pub fn cas(key: &str, expected: &[u8], new: &[u8]) -> Bytes {
        let mut c = Vec::new();
        c.extend_from_slice(b"cas ");
        c.extend_from_slice(key.as_bytes());
        c.push(b' ');
        c.extend_from_slice(&(expected.len() as u32).to_le_bytes());
        c.extend_from_slice(expected);
        c.extend_from_slice(new);
        c.into()
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.data.get(key).map(|(v, _)| v)
    }

    /// The index of the entry that last wrote `key`.
    pub fn written_at(&self, key: &str) -> Option<Index> {
        self.data.get(key).map(|(_, i)| *i)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The highest index applied.
    pub fn applied(&self) -> Index {
        self.applied
    }

    fn parse(command: &[u8]) -> Option<(&[u8], &str, &[u8])> {
        let op = command.get(..4)?;
        let rest = command.get(4..)?;
        let space = rest.iter().position(|&b| b == b' ')?;
        let key = std::str::from_utf8(&rest[..space]).ok()?;
        Some((op, key, &rest[space + 1..]))
    }
}

impl StateMachine for KvStore {
    type Output = ();

    fn apply(&mut self, index: Index, command: &Bytes) {
        self.applied = index;
        self.digest = fnv1a(self.digest, command);
        let Some((op, key, arg)) = Self::parse(command) else { return };
        match op {
            b"put " => {
                self.data.insert(key.to_owned(), (command.slice_ref(arg), index));
            }
            b"cas " => {
                let Some(len) = arg.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) else {
                    return;
                };
                let len = len as usize;
                let (Some(expected), Some(new)) = (arg.get(4..4 + len), arg.get(4 + len..)) else { return };
                let current = self.data.get(key).map_or(&[][..], |(v, _)| &v[..]);
                if current == expected {
                    self.data.insert(key.to_owned(), (command.slice_ref(new), index));
                }
            }
            _ => {}
        }
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        out.extend_from_slice(&self.digest.to_le_bytes());
        out.extend_from_slice(&self.applied.to_le_bytes());
        for (k, (v, i)) in &self.data {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(&i.to_le_bytes());
        }
        out.into()
    }

    fn restore(&mut self, data: &Bytes) {
        *self = Self::default();
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = data.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let word = |b: Option<&[u8]>| b.and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let (Some(digest), Some(applied)) = (word(take(8)), word(take(8))) else { return };
        self.digest = digest;
        self.applied = applied;
        while let Some(klen) = take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) {
            let Some(key) = take(klen as usize).and_then(|k| std::str::from_utf8(k).ok()).map(str::to_owned) else {
                break;
            };
            let Some(vlen) = take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes) else { break };
            let Some(value) = take(vlen as usize).map(|v| data.slice_ref(v)) else { break };
            let Some(index) = word(take(8)) else { break };
            self.data.insert(key, (value, index));
        }
    }

    fn digest(&self) -> u64 {
        self.digest
    }

    /// The query is a key; the answer its value.
    fn query(&self, query: &[u8]) -> Option<Bytes> {
        std::str::from_utf8(query).ok().and_then(|k| self.get(k)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_cas_snapshot_restore() {
        let mut kv = KvStore::default();
        kv.apply(1, &KvStore::put("a", b"1"));
        kv.apply(2, &KvStore::cas("a", b"1", b"2"));
        kv.apply(3, &KvStore::cas("a", b"1", b"3"));
        kv.apply(4, &KvStore::cas("b", b"", b"new"));
        assert_eq!(kv.get("a").map(|v| &v[..]), Some(&b"2"[..]));
        assert_eq!(kv.written_at("a"), Some(2));
        assert_eq!(kv.get("b").map(|v| &v[..]), Some(&b"new"[..]));
        let mut other = KvStore::default();
        other.restore(&kv.snapshot());
        assert_eq!(other, kv);
        other.restore(&Bytes::from_static(b"garbage"));
        assert!(other.is_empty());
    }
}
