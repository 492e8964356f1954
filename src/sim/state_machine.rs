//! The application side of a simulated node: the crate's one
//! [`StateMachine`] trait (shared with the runtime), and [`HashChain`], a
//! state machine whose whole state is a digest of every command it applied.

use bytes::Bytes;

pub use crate::state_machine::StateMachine;
pub(crate) use crate::state_machine::fnv1a;
use crate::types::Index;

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
    type Output = ();

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
