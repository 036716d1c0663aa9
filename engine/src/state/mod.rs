//! Stage state, partitioned by key group so reconfiguration can move it between workers.
//!
//! A worker of a keyed stage holds its state split by the key groups it owns: a
//! [`KeyedState`] (one hash map per key group) and, for operators acting on event time,
//! [`Timers`] (one timer queue per key group), or both as a tuple. When the stage's parallelism
//! changes, the engine takes the groups back from the old workers and hands each new worker the
//! groups of its new key-group range: moving state costs one move per key group, whatever the
//! number of keys.

mod keyed;
mod timers;
mod windowed;

use std::hash::Hash;
use std::ops::Range;

use crate::partition::{key_group, key_hash};

pub use keyed::KeyedState;
pub use timers::Timers;
pub use windowed::{Panes, WindowValues, WindowedGroup, WindowedState};

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

/// The index, within a worker's owned range, of `key`'s key group.
///
/// # Panics
/// When the worker does not own the group: the operator used a key other than the one its
/// input is partitioned by. The panic fails the job, naming the stage.
#[inline]
pub(crate) fn owned_slot<K: Hash + ?Sized>(key: &K, range: &Range<u16>, total: u16) -> usize {
    let group = key_group(key_hash(key), total);
    // One unsigned comparison covers both ends of the range.
    let slot = group.wrapping_sub(range.start);
    if slot >= range.end.wrapping_sub(range.start) {
        not_owned(group, range, total);
    }
    slot as usize
}

/// The panic of [`owned_slot`], kept out of line so the lookup stays small.
#[cold]
#[inline(never)]
fn not_owned(group: u16, range: &Range<u16>, total: u16) -> ! {
    panic!(
        "keyed state: key group {group} is not owned by this worker (it owns {range:?} of \
         {total}); the operator's state key must be the key its input is partitioned by"
    )
}

/// Two states of one stage (e.g. values and timers), split by the same key groups.
impl<A: StageState, B: StageState> StageState for (A, B) {
    type Group = (A::Group, B::Group);

    fn assemble(range: Range<u16>, total: u16, groups: Vec<Self::Group>) -> Self {
        let (a, b): (Vec<_>, Vec<_>) = groups.into_iter().unzip();
        (
            A::assemble(range.clone(), total, a),
            B::assemble(range, total, b),
        )
    }

    fn empty_group() -> Self::Group {
        (A::empty_group(), B::empty_group())
    }

    fn disassemble(self) -> (Range<u16>, Vec<Self::Group>) {
        let (range, a) = self.0.disassemble();
        let (_, b) = self.1.disassemble();
        (range, a.into_iter().zip(b).collect())
    }

    fn keys(&self) -> usize {
        self.0.keys() + self.1.keys()
    }

    fn group_keys(group: &Self::Group) -> usize {
        A::group_keys(&group.0) + B::group_keys(&group.1)
    }
}
