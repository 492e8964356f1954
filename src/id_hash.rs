//! A fast hash for the integer ids the many-groups path looks up on every
//! message (group ids, queue classes): one folded 64×64→128-bit multiply
//! per word, where `std`'s SipHash makes several rounds.
//!
//! Every input bit reaches the low bits a table indexes by, so ids in any
//! pattern (consecutive, multiples of a power of two) spread over the
//! table. Unseeded ([`IdHasher::default`]) where the keys are chosen
//! locally and iteration should be reproducible; seeded once per table
//! ([`SeededIds`]) where a peer chooses the keys that are inserted, so
//! that it cannot aim them at one slot.

#[cfg(feature = "net")]
use std::collections::hash_map::RandomState;
#[cfg(feature = "net")]
use std::hash::BuildHasher;
use std::hash::Hasher;

/// The hasher; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const K: u128 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, word: u64) {
        let p = u128::from(self.0 ^ word) * Self::K;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`IdHasher`]s from a seed drawn once, at random, per table.
#[cfg(feature = "net")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeededIds {
    seed: u64,
}

#[cfg(feature = "net")]
impl Default for SeededIds {
    fn default() -> Self {
        Self { seed: RandomState::new().hash_one(0x1d5_u64) }
    }
}

#[cfg(feature = "net")]
impl BuildHasher for SeededIds {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn slots(seed: u64, ids: impl Iterator<Item = u64>) -> usize {
        ids.map(|id| {
            let mut h = IdHasher(seed);
            h.write_u64(id);
            h.finish() & 1023
        })
        .collect::<BTreeSet<u64>>()
        .len()
    }

    #[test]
    fn ids_in_patterns_hash_apart() {
        // Ids that differ only in high bits, or only in low bits: the low
        // 10 bits of their hashes (a 1 024-slot table) must still vary.
        #[cfg(feature = "net")]
        let seeds = [0, SeededIds::default().seed];
        #[cfg(not(feature = "net"))]
        let seeds = [0, 0x5eed];
        for seed in seeds {
            assert!(slots(seed, (1..=1024).map(|i| i << 32)) > 500, "seed {seed}: high bits");
            assert!(slots(seed, 1..=1024) > 500, "seed {seed}: consecutive");
        }
    }

    #[test]
    fn bytes_hash_as_their_words() {
        let (mut a, mut b) = (IdHasher::default(), IdHasher::default());
        a.write(&7u64.to_le_bytes());
        b.write_u64(7);
        assert_eq!(a.finish(), b.finish());
        #[cfg(feature = "net")]
        assert_ne!(SeededIds::default().hash_one(7u64), SeededIds { seed: 1 }.hash_one(7u64));
    }
}
