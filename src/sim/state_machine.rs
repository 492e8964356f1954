//! The application side of a simulated node: the [`StateMachine`] trait the
//! simulator drives, and [`HashChain`], a state machine whose whole state is
//! a digest of every command it applied.

use bytes::Bytes;

use crate::types::Index;

/// An application state machine under test. The simulator applies committed
/// commands in order, takes snapshots when the node asks for them, restores
/// snapshots the node receives, and compares [`digest`](Self::digest)s
/// across nodes at equal applied indexes (State Machine Safety on
/// application state).
pub trait StateMachine {
    /// Applies the command committed at `index`.
    fn apply(&mut self, index: Index, command: &Bytes);

    /// Serializes the whole state.
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with a snapshot taken by
    /// [`snapshot`](Self::snapshot) (possibly on another node).
    fn restore(&mut self, data: &Bytes);

    /// A digest of the state: equal states must have equal digests.
    fn digest(&self) -> u64;

    /// Answers an application query against the current state, for reads
    /// issued with [`Cluster::read_query`](super::Cluster::read_query). The
    /// default answers nothing.
    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        None
    }
}

/// A state machine whose state is a running hash of the commands applied,
/// so any divergence in content or order shows in its digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashChain {
    digest: u64,
    applied: u64,
}

impl HashChain {
    /// Commands applied so far (including those covered by a restored
    /// snapshot).
    pub fn applied(&self) -> u64 {
        self.applied
    }
}

impl StateMachine for HashChain {
    fn apply(&mut self, _index: Index, command: &Bytes) {
        self.digest = fnv1a(self.digest, command);
        self.applied += 1;
    }

    fn snapshot(&self) -> Bytes {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.digest.to_le_bytes());
        b.extend_from_slice(&self.applied.to_le_bytes());
        b.into()
    }

    fn restore(&mut self, data: &Bytes) {
        let word = |i: usize| data.get(i..i + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes);
        self.digest = word(0);
        self.applied = word(8);
    }

    fn digest(&self) -> u64 {
        self.digest
    }
}

/// FNV-1a over `bytes`, continuing from `seed`.
pub(crate) fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_order_and_snapshot_round_trips() {
        let (mut a, mut b) = (HashChain::default(), HashChain::default());
        a.apply(1, &Bytes::from_static(b"x"));
        a.apply(2, &Bytes::from_static(b"y"));
        b.apply(1, &Bytes::from_static(b"y"));
        b.apply(2, &Bytes::from_static(b"x"));
        assert_ne!(a.digest(), b.digest());
        let mut c = HashChain::default();
        c.restore(&a.snapshot());
        assert_eq!(c, a);
    }
}
