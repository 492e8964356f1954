//! [`GroupMap`]: the map from [`GroupId`] to a group's state of the host,
//! the many-groups runtime and the shared WAL, with a constant-time lookup
//! and iteration in id order.
//!
//! A host turn looks its groups up many times per write (each message
//! delivered, each action carried out, each group settled), and with a
//! thousand groups their states are cold in the cache: a B-tree walks
//! three or four nodes per lookup where a hash table reads one slot. The
//! order of group ids is kept beside it, for the callers (and the
//! deterministic simulator) that go through the groups in order.
//!
//! Each state lives in an allocation of its own, the table holding only
//! ids and pointers: sixteen bytes a group, so a thousand groups' table
//! stays in the cache and a lookup's probe reads no line of a cold
//! group's state. The state is then where its type's alignment puts it (a
//! host's group starts on a cache line: its layout is written for that),
//! and growing the table moves pointers, not states.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasherDefault;

use super::GroupId;
use crate::id_hash::IdHasher;

/// Groups by id: looked up by hashing, iterated in id order.
#[derive(Debug)]
pub(crate) struct GroupMap<V> {
    slots: HashMap<GroupId, Box<V>, BuildHasherDefault<IdHasher>>,
    order: BTreeSet<GroupId>,
}

impl<V> Default for GroupMap<V> {
    fn default() -> Self {
        Self { slots: HashMap::default(), order: BTreeSet::new() }
    }
}

impl<V> GroupMap<V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Groups in the map.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether `group` is in the map.
    pub(crate) fn contains_key(&self, group: &GroupId) -> bool {
        self.slots.contains_key(group)
    }

    /// The state of `group`.
    pub(crate) fn get(&self, group: &GroupId) -> Option<&V> {
        self.slots.get(group).map(|v| &**v)
    }

    /// The state of `group`, to change.
    pub(crate) fn get_mut(&mut self, group: &GroupId) -> Option<&mut V> {
        self.slots.get_mut(group).map(|v| &mut **v)
    }

    /// Adds or replaces `group`'s state; returns the state it replaced.
    pub(crate) fn insert(&mut self, group: GroupId, value: V) -> Option<V> {
        self.order.insert(group);
        self.slots.insert(group, Box::new(value)).map(|v| *v)
    }

    /// Removes `group`; returns its state.
    pub(crate) fn remove(&mut self, group: &GroupId) -> Option<V> {
        self.order.remove(group);
        self.slots.remove(group).map(|v| *v)
    }

    /// The group ids, in increasing order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &GroupId> + '_ {
        self.order.iter()
    }

    /// The groups and their states, in increasing order of id.
    pub(crate) fn iter(&self) -> Iter<'_, V> {
        Iter { order: self.order.iter(), slots: &self.slots }
    }

    /// The states, in increasing order of group id.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The states, to change, in no particular order (the same order for
    /// the same history of inserts and removals: the hash has no seed).
    #[cfg(any(test, feature = "net"))]
    // Used by the many-groups runtime (feature `persistence`) and tests.
    #[cfg_attr(not(feature = "persistence"), allow(dead_code))]
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.slots.values_mut().map(|v| &mut **v)
    }
}

/// The groups of a [`GroupMap`] and their states, in increasing order of
/// id.
pub(crate) struct Iter<'a, V> {
    order: std::collections::btree_set::Iter<'a, GroupId>,
    slots: &'a HashMap<GroupId, Box<V>, BuildHasherDefault<IdHasher>>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a GroupId, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        // Every id in the order has a slot (insert and remove keep both).
        self.order.find_map(|id| Some((id, &**self.slots.get(id)?)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.order.size_hint().1)
    }
}

impl<'a, V> IntoIterator for &'a GroupMap<V> {
    type Item = (&'a GroupId, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V> FromIterator<(GroupId, V)> for GroupMap<V> {
    fn from_iter<I: IntoIterator<Item = (GroupId, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (id, v) in iter {
            map.insert(id, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_order_follow_inserts_and_removals() {
        let mut m = GroupMap::new();
        // Ids in patterns a table indexed by low bits would pile up.
        let ids: Vec<GroupId> = (1..=300).map(|i| i << 20).chain((1..=300).rev()).collect();
        for &id in &ids {
            assert_eq!(m.insert(id, id * 2), None);
        }
        assert_eq!(m.insert(5, 0), Some(10));
        assert_eq!(m.remove(&(7 << 20)), Some(14 << 20));
        assert_eq!(m.remove(&(7 << 20)), None);
        assert_eq!(m.len(), 599);
        assert!(m.contains_key(&5) && !m.contains_key(&(7 << 20)) && !m.contains_key(&0));
        let mut want: Vec<GroupId> = ids.iter().copied().filter(|&id| id != 7 << 20).collect();
        want.sort_unstable();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), want);
        assert_eq!(m.iter().map(|(&k, _)| k).collect::<Vec<_>>(), want);
        for (&k, &v) in m.iter() {
            assert_eq!(v, if k == 5 { 0 } else { k * 2 });
        }
        for v in m.values_mut() {
            *v += 1;
        }
        assert_eq!(m.get(&(3 << 20)), Some(&((6 << 20) + 1)));
        assert_eq!(m.values().count(), 599);
        let copy: GroupMap<u64> = m.iter().map(|(&k, &v)| (k, v)).collect();
        assert_eq!((&copy).into_iter().map(|(&k, _)| k).collect::<Vec<_>>(), want);
    }
}
