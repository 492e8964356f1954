//! One copy of each configuration for the many groups of a host.
//!
//! A [`Membership`] is a pointer to its member lists, so asking whether a
//! node is a voter reads two more cache lines: the lists' header and the
//! ids. A host with a thousand groups on the same three nodes holds a
//! thousand equal configurations, each in its own allocation; stepping a
//! group whose state is cold then misses on both lines for every message
//! it checks. [`SharedConfigs`] makes equal configurations one allocation,
//! which stays in the cache because every group reads it.

use super::Membership;

/// At most this many distinct configurations are remembered; a newer one
/// replaces the oldest (groups sharing the oldest keep it).
const REMEMBERED: usize = 16;

/// The distinct configurations a host's groups hold, each once.
#[derive(Debug, Default)]
pub(crate) struct SharedConfigs {
    known: Vec<Membership>,
    /// Where the next configuration goes once `known` is full.
    next: usize,
}

impl SharedConfigs {
    /// Makes `m` the remembered copy of its configuration, remembering it
    /// if no equal one is known.
    pub(crate) fn share(&mut self, m: &mut Membership) {
        // `==` on the shared lists compares pointers first, so a
        // configuration already shared costs one comparison.
        if let Some(known) = self.known.iter().find(|k| **k == *m) {
            if !known.same_lists(m) {
                *m = known.clone();
            }
            return;
        }
        if self.known.len() < REMEMBERED {
            self.known.push(m.clone());
        } else {
            self.known[self.next] = m.clone();
            self.next = (self.next + 1) % REMEMBERED;
        }
    }

    /// How many distinct configurations are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::tests::m;

    #[test]
    fn equal_configurations_become_one_and_distinct_ones_stay_apart() {
        let mut pool = SharedConfigs::default();
        let (mut a, mut b, mut c) = (m(&[1, 2, 3], &[]), m(&[1, 2, 3], &[]), m(&[1, 2, 4], &[]));
        assert!(!a.same_lists(&b));
        pool.share(&mut a);
        pool.share(&mut b);
        pool.share(&mut c);
        assert!(a.same_lists(&b), "equal configurations share one copy");
        assert!(!a.same_lists(&c));
        assert_eq!(c, m(&[1, 2, 4], &[]), "a configuration is never replaced by a different one");
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn the_pool_is_bounded_and_forgets_the_oldest() {
        let mut pool = SharedConfigs::default();
        for n in 0..(REMEMBERED as u64 + 5) {
            pool.share(&mut m(&[1, 2, 10 + n], &[]));
        }
        assert_eq!(pool.len(), REMEMBERED);
        let (mut newest, mut again) = (m(&[1, 2, 10 + REMEMBERED as u64 + 4], &[]), m(&[1, 2, 14], &[]));
        let (before_newest, before_again) = (newest.clone(), again.clone());
        pool.share(&mut newest);
        pool.share(&mut again);
        assert!(!newest.same_lists(&before_newest), "the newest is remembered");
        assert!(again.same_lists(&before_again), "the oldest were forgotten");
    }
}
