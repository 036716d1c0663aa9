//! [`Timers`]: event-time timers per key, one queue per key group.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::ops::Range;

use rustc_hash::FxHashSet;

use super::{StageState, owned_slot};
use crate::channel::Timestamp;

/// Event-time timers of one worker of a keyed stage: "call me back for `key` when the
/// watermark reaches `time`". Kept per key group, so they move with their keys when the stage
/// is rescaled. Use with a [`KeyedState`](super::KeyedState) as the tuple state
/// `(KeyedState<K, V>, Timers<K>)`.
///
/// ```
/// use rheo_engine::state::{StageState, Timers};
/// let mut timers: Timers<&str> = Timers::assemble(0..8, 8, vec![Default::default(); 8]);
/// timers.register("a", 20);
/// timers.register("b", 10);
/// timers.register("a", 20); // once per (key, time)
/// assert_eq!(timers.expired(15), vec![(10, "b")]);
/// assert_eq!(timers.expired(u64::MAX), vec![(20, "a")]);
/// assert!(timers.is_empty());
/// ```
#[derive(Debug)]
pub struct Timers<K> {
    // A set per time: a window stage registers one timer per key per window, often all at the
    // same time, and a Vec's duplicate check made that quadratic.
    groups: Vec<BTreeMap<Timestamp, FxHashSet<K>>>,
    range: Range<u16>,
    total: u16,
    len: usize,
}

impl<K: Hash + Eq + Clone> Timers<K> {
    /// Asks for a callback for `key` once the watermark reaches `time`; registering the same
    /// (key, time) twice keeps one timer.
    pub fn register(&mut self, key: K, time: Timestamp) {
        let slot = owned_slot(&key, &self.range, self.total);
        if self.groups[slot].entry(time).or_default().insert(key) {
            self.len += 1;
        }
    }

    /// Removes the timer of `key` at `time`, if any.
    pub fn cancel(&mut self, key: &K, time: Timestamp) {
        let slot = owned_slot(key, &self.range, self.total);
        if let Some(keys) = self.groups[slot].get_mut(&time)
            && keys.remove(key)
        {
            self.len -= 1;
            if keys.is_empty() {
                self.groups[slot].remove(&time);
            }
        }
    }

    /// Removes and returns every timer due at `watermark` (time ≤ watermark), in time order.
    pub fn expired(&mut self, watermark: Timestamp) -> Vec<(Timestamp, K)> {
        let mut due = Vec::new();
        for group in &mut self.groups {
            while let Some(entry) = group.first_entry() {
                if *entry.key() > watermark {
                    break;
                }
                let (time, keys) = entry.remove_entry();
                due.extend(keys.into_iter().map(|k| (time, k)));
            }
        }
        self.len -= due.len();
        due.sort_by_key(|(t, _)| *t);
        due
    }

    /// The earliest pending timer.
    pub fn next_time(&self) -> Option<Timestamp> {
        self.groups
            .iter()
            .filter_map(|g| g.keys().next().copied())
            .min()
    }
}

impl<K> Timers<K> {
    /// Pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<K: Send + 'static> StageState for Timers<K> {
    type Group = BTreeMap<Timestamp, FxHashSet<K>>;

    fn assemble(range: Range<u16>, total: u16, groups: Vec<Self::Group>) -> Self {
        let len = groups
            .iter()
            .flat_map(|g| g.values())
            .map(FxHashSet::len)
            .sum();
        Timers {
            groups,
            range,
            total,
            len,
        }
    }

    fn empty_group() -> Self::Group {
        BTreeMap::new()
    }

    fn disassemble(self) -> (Range<u16>, Vec<Self::Group>) {
        (self.range, self.groups)
    }

    /// Timers are not keys: a stage's key count comes from its keyed state.
    fn keys(&self) -> usize {
        0
    }

    fn group_keys(_: &Self::Group) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::KeyedState;

    fn full<S: StageState>(total: u16) -> S {
        S::assemble(
            0..total,
            total,
            (0..total).map(|_| S::empty_group()).collect(),
        )
    }

    #[test]
    fn cancel_removes_one_timer() {
        let mut t: Timers<u32> = full(16);
        t.register(1, 5);
        t.register(2, 5);
        t.cancel(&1, 5);
        t.cancel(&3, 5);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_time(), Some(5));
        assert_eq!(t.expired(5), vec![(5, 2)]);
    }

    #[test]
    fn state_and_timers_split_and_rejoin_by_key_group() {
        let mut both: (KeyedState<u32, u32>, Timers<u32>) = full(8);
        for k in 0..100 {
            both.0.insert(k, k * 10);
            both.1.register(k, u64::from(k));
        }
        let (range, groups) = both.disassemble();
        assert_eq!(range, 0..8);
        // Split over two workers, as a rescale would.
        let mut groups = groups.into_iter();
        let low: Vec<_> = groups.by_ref().take(4).collect();
        let high: Vec<_> = groups.collect();
        let a = <(KeyedState<u32, u32>, Timers<u32>)>::assemble(0..4, 8, low);
        let b = <(KeyedState<u32, u32>, Timers<u32>)>::assemble(4..8, 8, high);
        assert_eq!(a.0.len() + b.0.len(), 100);
        assert_eq!(a.1.len() + b.1.len(), 100);
        assert_eq!(a.keys() + b.keys(), 100);
        for (k, v) in a.0.iter().chain(b.0.iter()) {
            assert_eq!(*v, k * 10);
        }
    }
}
