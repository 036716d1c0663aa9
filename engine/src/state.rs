//! Keyed state, partitioned by key group so reconfiguration can move it between workers.
//!
//! A worker of a keyed stage holds a [`KeyedState`] with one hash map per key group it owns.
//! When the stage's parallelism changes, the engine takes the maps back from the old workers and
//! hands each new worker the maps of its new key-group range: moving state costs one pointer move
//! per key group, whatever the number of keys.

use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::ops::Range;

use rustc_hash::FxHashMap;

use crate::partition::{key_group, key_hash};

/// State a stage's workers keep across reconfigurations, split into key groups.
///
/// Implemented by `()` (stateless stages) and [`KeyedState`]. The engine calls these methods
/// only at reconfiguration barriers.
pub trait StageState: Send + Sized + 'static {
    /// The state of one key group.
    type Group: Send + 'static;
    /// A state holding `groups`, which are exactly the key groups in `range` (of `total`).
    fn assemble(range: Range<u16>, total: u16, groups: Vec<Self::Group>) -> Self;
    /// An empty key group.
    fn empty_group() -> Self::Group;
    /// Gives back the key-group range and the groups, in range order.
    fn disassemble(self) -> (Range<u16>, Vec<Self::Group>);
    /// Number of keys held (0 for stateless stages).
    fn keys(&self) -> usize;
    /// Number of keys in one group.
    fn group_keys(group: &Self::Group) -> usize;
}

impl StageState for () {
    type Group = ();

    fn assemble(_: Range<u16>, _: u16, _: Vec<()>) -> Self {}

    fn empty_group() {}

    fn disassemble(self) -> (Range<u16>, Vec<()>) {
        (0..0, Vec::new())
    }

    fn keys(&self) -> usize {
        0
    }

    fn group_keys(_: &()) -> usize {
        0
    }
}

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
        let group = key_group(key_hash(key), self.total);
        if group < self.range.start || group >= self.range.end {
            panic!(
                "keyed state: key group {group} is not owned by this worker (it owns {:?} of {}); \
                 the operator's state key must be the key its input is partitioned by",
                self.range, self.total
            );
        }
        (group - self.range.start) as usize
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
