//! The key-value state machine of one group, its commands, and how keys
//! are hashed to groups.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use bytes::Bytes;
use raft_io::multi::GroupId;
use raft_io::runtime::StateMachine;

/// A group's keys and values. A put's output is the value it replaced,
/// so every write is identifiable in what the group returns.
///
/// Every node applies every write of its groups, so this map is on the
/// hot path three times per write. Three choices keep it cheap: a short
/// key is held in the map's own slot (comparing it follows no pointer into
/// an old command's buffer); so is a short value (a put neither counts a
/// reference to its command's buffer nor releases the old value's, a
/// buffer long out of the cache); and keys are hashed with a seeded
/// multiply-fold hash rather than SipHash (the seed is random per map, as
/// SipHash's keys are: iteration order differs between replicas either
/// way).
#[derive(Default)]
pub struct Kv {
    map: HashMap<Held, Held, KeyHashing>,
}

/// Keys and values of at most this many bytes are held inline.
const SHORT: usize = 22;

/// A key or a value: inline when short, else a slice of the command that
/// put it.
#[derive(Clone)]
pub enum Held {
    /// At most [`SHORT`] bytes, in place.
    Short { len: u8, bytes: [u8; SHORT] },
    /// Longer: a slice of the command.
    Long(Bytes),
}

impl Held {
    /// `data[range]` (a range the caller checked is within `data`): copied
    /// in when short, else sliced (no copy).
    fn of(data: &Bytes, range: std::ops::Range<usize>) -> Self {
        if range.len() > SHORT {
            return Held::Long(data.slice(range));
        }
        let mut bytes = [0; SHORT];
        bytes[..range.len()].copy_from_slice(&data[range.clone()]);
        Held::Short { len: range.len() as u8, bytes }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Held::Short { len, bytes } => &bytes[..usize::from(*len)],
            Held::Long(b) => b,
        }
    }
}

impl std::ops::Deref for Held {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl Borrow<[u8]> for Held {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Held {}

impl Hash for Held {
    // As `[u8]` hashes, so that a map keyed by `Held` can be searched by `&[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

/// Builds [`KeyHasher`]s with a seed drawn once per map.
#[derive(Clone)]
struct KeyHashing {
    seed: u64,
}

impl Default for KeyHashing {
    fn default() -> Self {
        Self { seed: RandomState::new().hash_one(0x5eed_u64) }
    }
}

impl BuildHasher for KeyHashing {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// Folds each 8-byte word into the state with a 64×64→128-bit multiply.
struct KeyHasher(u64);

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        let p = u128::from(self.0 ^ word) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Kv {
    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map.get(key).map(|v| match v {
            Held::Short { .. } => Bytes::copy_from_slice(v),
            Held::Long(b) => b.clone(),
        })
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
pub type Output = Option<Held>;

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
        let value = Held::of(command, 2 + n..command.len());
        if let Some(old) = self.map.get_mut(&command[2..2 + n]) {
            return Some(std::mem::replace(old, value));
        }
        self.map.insert(Held::of(command, 2..2 + n), value);
        None
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for (k, v) in &self.map {
            let k = k.as_slice();
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
        let field = |at: &mut usize| -> Option<Held> {
            let len = data.get(*at..*at + 4)?;
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let start = *at + 4;
            data.get(start..start + n)?;
            *at = start + n;
            Some(Held::of(data, start..start + n))
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

/// The value of a client's `seq`-th write of a key (16 bytes): `v` and
/// `seq` in 15 decimal digits (its last 15 digits, were it longer),
/// written without allocating (a client makes one per write).
pub fn value(seq: u64) -> [u8; 16] {
    let mut out = [b'0'; 16];
    out[0] = b'v';
    let mut n = seq;
    for d in out[1..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}
