//! [`KeyedState`]: one hash map per key group a worker owns.

use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::ops::Range;

use rustc_hash::FxHashMap;

use super::{StageState, owned_slot};

/// Per-key state of one worker of a keyed stage: a map from key to value for every key group
/// the worker owns.
///
/// Keys must be the keys the stage's input is partitioned by (`key_by`); a key whose group the
/// worker does not own means the operator used a different key, and accessing it panics with a
/// message that says so (the job then fails naming the stage).
///
/// ```
/// use rheo_engine::state::{KeyedState, StageState};
/// // A worker owning all 16 key groups, as a stage of parallelism 1 would.
/// let mut counts: KeyedState<&str, u64> = KeyedState::assemble(0..16, 16, vec![Default::default(); 16]);
/// *counts.get_or_insert_with("apple", || 0) += 1;
/// *counts.get_or_insert_with("apple", || 0) += 1;
/// assert_eq!(counts.get(&"apple"), Some(&2));
/// assert_eq!(counts.len(), 1);
/// ```
#[derive(Debug)]
pub struct KeyedState<K, V> {
    groups: Vec<FxHashMap<K, V>>,
    range: Range<u16>,
    total: u16,
    len: usize,
}

impl<K: Hash + Eq, V> KeyedState<K, V> {
    #[inline]
    fn slot(&self, key: &K) -> usize {
        owned_slot(key, &self.range, self.total)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.groups[self.slot(key)].get(key)
    }

    /// The value of `key`, mutably, if any.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = self.slot(key);
        self.groups[slot].get_mut(key)
    }

    /// The value of `key`, inserting `init()` first if the key is new.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        let slot = self.slot(&key);
        match self.groups[slot].entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.len += 1;
                e.insert(init())
            }
        }
    }

    /// The value of `key`, inserting `init(&key)` first if the key is new.
    #[inline]
    pub fn get_or_insert_with_key(&mut self, key: K, init: impl FnOnce(&K) -> V) -> &mut V {
        let slot = self.slot(&key);
        match self.groups[slot].entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.len += 1;
                let value = init(e.key());
                e.insert(value)
            }
        }
    }

    /// Sets the value of `key`, returning the previous one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let slot = self.slot(&key);
        let old = self.groups[slot].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.slot(key);
        let old = self.groups[slot].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for map in &mut self.groups {
            map.retain(|k, v| keep(k, v));
        }
        self.len = self.groups.iter().map(|m| m.len()).sum();
    }

    /// Removes and returns every entry.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.len = 0;
        self.groups.iter_mut().flat_map(|m| m.drain())
    }
}

impl<K, V> KeyedState<K, V> {
    /// Number of keys held by this worker.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when this worker holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key groups this worker owns.
    pub fn key_groups(&self) -> Range<u16> {
        self.range.clone()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.groups.iter().flat_map(|m| m.iter())
    }

    /// Every entry, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.groups.iter_mut().flat_map(|m| m.iter_mut())
    }
}

impl<K: Send + 'static, V: Send + 'static> StageState for KeyedState<K, V> {
    type Group = FxHashMap<K, V>;

    fn assemble(range: Range<u16>, total: u16, groups: Vec<Self::Group>) -> Self {
        debug_assert_eq!(groups.len(), range.len());
        let len = groups.iter().map(|m| m.len()).sum();
        KeyedState {
            groups,
            range,
            total,
            len,
        }
    }

    fn empty_group() -> Self::Group {
        FxHashMap::default()
    }

    fn disassemble(self) -> (Range<u16>, Vec<Self::Group>) {
        (self.range, self.groups)
    }

    fn keys(&self) -> usize {
        self.len
    }

    fn group_keys(group: &Self::Group) -> usize {
        group.len()
    }
}
