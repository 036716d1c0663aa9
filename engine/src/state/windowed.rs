//! [`WindowedState`]: per-key values of fixed event-time windows, one map per window per key
//! group.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::ops::Range;

use rustc_hash::FxHashMap;

use super::{StageState, owned_slot};
use crate::channel::Timestamp;

/// Per-key values of fixed (tumbling or hopping) event-time windows, for one worker of a keyed
/// stage: for every open window `[start, end)`, a map from key to value per owned key group.
///
/// Windows of one size close for every key at once, when the watermark reaches their end; so
/// state is kept per window rather than per key — a record costs one map lookup, a key needs
/// no timer of its own, and a closing window is read out whole. Split by key group like
/// [`KeyedState`](super::KeyedState), so a rescale moves it with its keys.
///
/// ```
/// use rheo_engine::state::{StageState, WindowedState};
/// // A worker owning all 16 key groups, as a stage of parallelism 1 would.
/// let mut counts: WindowedState<&str, u64> = WindowedState::assemble(0..16, 16, vec![Default::default(); 16]);
/// let watermark = 0;
/// *counts.get_or_insert_with(0, 10, "a", watermark, || 0).0 += 1;
/// *counts.get_or_insert_with(0, 10, "a", watermark, || 0).0 += 1;
/// *counts.get_or_insert_with(10, 20, "b", watermark, || 0).0 += 1;
/// let mut fired = Vec::new();
/// counts.fire(12, |start, end, key, n| fired.push((start, end, *key, *n)));
/// assert_eq!(fired, vec![(0, 10, "a", 2)]);
/// counts.close(12); // no allowed lateness: window [0, 10) is gone
/// assert_eq!(counts.len(), 1);
/// ```
#[derive(Debug)]
pub struct WindowedState<K, V> {
    windows: BTreeMap<Timestamp, OpenWindow<K, V>>,
    range: Range<u16>,
    total: u16,
    len: usize,
}

/// One open window on one worker: its end and its values per owned key group.
#[derive(Debug)]
struct OpenWindow<K, V> {
    end: Timestamp,
    groups: Vec<Panes<K, V>>,
}

/// The values of one window in one key group, and whether that window has fired there (a
/// worker's groups can disagree after a rescale merged groups from workers whose watermarks
/// differed). `end` travels with the group when it moves between workers.
#[derive(Debug, Clone)]
pub struct Panes<K, V> {
    end: Timestamp,
    fired: bool,
    values: FxHashMap<K, V>,
}

impl<K, V> Default for Panes<K, V> {
    fn default() -> Self {
        Panes {
            end: 0,
            fired: false,
            values: FxHashMap::default(),
        }
    }
}

/// One open window's values on one worker, from [`WindowedState::window`].
pub struct WindowValues<'a, K, V> {
    groups: &'a mut [Panes<K, V>],
    range: &'a Range<u16>,
    total: u16,
    len: &'a mut usize,
    closed: bool,
}

impl<'a, K: Hash + Eq, V> WindowValues<'a, K, V> {
    /// Whether the window has closed (`end ≤ watermark`): it does not fire again, so the
    /// caller emits updates itself.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The value of `key` in this window, inserting `init()` first if it is new.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        WindowValues {
            groups: &mut *self.groups,
            range: self.range,
            total: self.total,
            len: &mut *self.len,
            closed: self.closed,
        }
        .into_value(key, init)
    }

    #[inline]
    fn into_value(self, key: K, init: impl FnOnce() -> V) -> &'a mut V {
        let slot = owned_slot(&key, self.range, self.total);
        let panes = &mut self.groups[slot];
        panes.fired |= self.closed;
        match panes.values.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                *self.len += 1;
                e.insert(init())
            }
        }
    }
}

/// One key group's share of a [`WindowedState`]: its open windows by start.
pub type WindowedGroup<K, V> = BTreeMap<Timestamp, Panes<K, V>>;

impl<K: Hash + Eq, V> WindowedState<K, V> {
    /// The value of `key` in window `[start, end)`, inserting `init()` first if it is new, and
    /// whether the window has closed (`end ≤ watermark`): a closed window does not fire again
    /// for this key's group, so the caller emits the update itself (a late record within the
    /// allowed lateness). For many records of one window, [`WindowedState::window`] finds the
    /// window once.
    #[inline]
    pub fn get_or_insert_with(
        &mut self,
        start: Timestamp,
        end: Timestamp,
        key: K,
        watermark: Timestamp,
        init: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        let window = self.window(start, end, watermark);
        let closed = window.closed;
        (window.into_value(key, init), closed)
    }

    /// The values of window `[start, end)`, opening it if it is new (its maps sized like the
    /// oldest open window's, so a window that fills like the last one does not grow them key
    /// by key).
    pub fn window(
        &mut self,
        start: Timestamp,
        end: Timestamp,
        watermark: Timestamp,
    ) -> WindowValues<'_, K, V> {
        let oldest = self.windows.values().next();
        let sizes: Vec<usize> = match oldest {
            Some(w) if !self.windows.contains_key(&start) => {
                w.groups.iter().map(|p| p.values.len()).collect()
            }
            _ => Vec::new(),
        };
        let groups = self.range.len();
        let window = self.windows.entry(start).or_insert_with(|| OpenWindow {
            end,
            groups: (0..groups)
                .map(|slot| Panes {
                    values: FxHashMap::with_capacity_and_hasher(
                        sizes.get(slot).copied().unwrap_or(0),
                        Default::default(),
                    ),
                    ..Panes::default()
                })
                .collect(),
        });
        WindowValues {
            groups: &mut window.groups,
            range: &self.range,
            total: self.total,
            len: &mut self.len,
            closed: end <= watermark,
        }
    }

    /// Calls `emit(start, end, key, value)` for every key of every window that ends at or
    /// before `watermark` and has not fired yet, in window order, and marks those windows fired.
    pub fn fire(
        &mut self,
        watermark: Timestamp,
        mut emit: impl FnMut(Timestamp, Timestamp, &K, &V),
    ) {
        for (&start, window) in &mut self.windows {
            if window.end > watermark {
                // Windows are ordered by start; with one size, by end too. Hopping windows of
                // one size also end in start order.
                break;
            }
            for panes in window.groups.iter_mut().filter(|p| !p.fired) {
                panes.fired = true;
                for (key, value) in &panes.values {
                    emit(start, window.end, key, value);
                }
            }
        }
    }

    /// Drops every window that ends at or before `cutoff` (the watermark less the allowed
    /// lateness), fired or not.
    pub fn close(&mut self, cutoff: Timestamp) {
        while let Some(entry) = self.windows.first_entry() {
            if entry.get().end > cutoff {
                break;
            }
            let window = entry.remove();
            self.len -= window.groups.iter().map(|p| p.values.len()).sum::<usize>();
        }
    }

    /// (key, window) values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no window holds a value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<K: Send + 'static, V: Send + 'static> StageState for WindowedState<K, V> {
    type Group = WindowedGroup<K, V>;

    fn assemble(range: Range<u16>, total: u16, groups: Vec<Self::Group>) -> Self {
        debug_assert_eq!(groups.len(), range.len());
        let n = range.len();
        let mut windows: BTreeMap<Timestamp, OpenWindow<K, V>> = BTreeMap::new();
        let mut len = 0;
        for (slot, group) in groups.into_iter().enumerate() {
            for (start, panes) in group {
                len += panes.values.len();
                let window = windows.entry(start).or_insert_with(|| OpenWindow {
                    end: panes.end,
                    groups: (0..n).map(|_| Panes::default()).collect(),
                });
                window.groups[slot] = panes;
            }
        }
        WindowedState {
            windows,
            range,
            total,
            len,
        }
    }

    fn empty_group() -> Self::Group {
        BTreeMap::new()
    }

    fn disassemble(self) -> (Range<u16>, Vec<Self::Group>) {
        let mut groups: Vec<Self::Group> = (0..self.range.len()).map(|_| BTreeMap::new()).collect();
        for (start, window) in self.windows {
            for (slot, mut panes) in window.groups.into_iter().enumerate() {
                if !panes.values.is_empty() {
                    panes.end = window.end;
                    groups[slot].insert(start, panes);
                }
            }
        }
        (self.range, groups)
    }

    fn keys(&self) -> usize {
        self.len
    }

    fn group_keys(group: &Self::Group) -> usize {
        group.values().map(|p| p.values.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_survive_being_split_and_regrouped_with_their_fired_flags() {
        let mut state: WindowedState<u64, u64> =
            WindowedState::assemble(0..8, 8, (0..8).map(|_| BTreeMap::new()).collect());
        for key in 0..100 {
            *state.get_or_insert_with(0, 10, key, 0, || 0).0 += key;
            *state.get_or_insert_with(10, 20, key, 0, || 0).0 += 1;
        }
        let mut first = 0;
        state.fire(10, |_, _, _, v| first += v);
        assert_eq!(first, (0..100).sum::<u64>());
        // Split into two workers' halves and back: nothing lost, nothing fires twice.
        let (_, groups) = state.disassemble();
        let mut groups = groups.into_iter();
        let low = WindowedState::<u64, u64>::assemble(0..4, 8, groups.by_ref().take(4).collect());
        let high = WindowedState::<u64, u64>::assemble(4..8, 8, groups.collect());
        assert_eq!(low.len() + high.len(), 200);
        let (_, mut a) = low.disassemble();
        let (_, b) = high.disassemble();
        a.extend(b);
        let mut state = WindowedState::<u64, u64>::assemble(0..8, 8, a);
        let mut again = Vec::new();
        state.fire(20, |start, _, _, v| again.push((start, *v)));
        assert_eq!(again.len(), 100);
        assert!(again.iter().all(|&(start, v)| start == 10 && v == 1));
        // A late record for the fired window: the caller is told to emit it itself.
        let (value, closed) = state.get_or_insert_with(0, 10, 7, 20, || 0);
        assert!(closed);
        assert_eq!(*value, 7);
        let mut refired = 0;
        state.fire(20, |_, _, _, _| refired += 1);
        assert_eq!(refired, 0, "a closed window never fires twice");
        state.close(20);
        assert!(state.is_empty());
    }
}
