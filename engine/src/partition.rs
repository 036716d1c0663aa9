//! Partitioning: how the records one worker emits on an edge are spread over the workers of the
//! next stage — forward, rebalance, hash by key through key groups, broadcast.
//!
//! Keyed stages split their key space into a fixed number of **key groups** (256 by default).
//! A key belongs to group `key_group(key_hash(key))`; worker `i` of `p` owns the contiguous range
//! [`key_group_range`]`(i, p, groups)`, as in Flink's key-group range assignment. Reconfiguration
//! moves whole key groups between workers, never individual keys.

use std::hash::{Hash, Hasher};
use std::ops::Range;

/// Number of key groups a keyed stage gets unless its builder sets another.
pub const DEFAULT_KEY_GROUPS: u16 = 256;

/// How records move from one stage to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partition {
    /// Worker `i` sends to worker `i` when both stages have the same parallelism; otherwise
    /// batches go round-robin, as with [`Partition::Rebalance`].
    Forward,
    /// Whole batches go round-robin to the downstream workers.
    Rebalance,
    /// Each record goes to the worker owning its key's key group.
    Hash,
    /// Every batch goes to every downstream worker.
    Broadcast,
}

impl Partition {
    /// Whether a hand-over ([`Rescale::HandOver`](crate::Rescale)) may change the parallelism
    /// of a stage that reads an edge partitioned so: on a rebalanced edge nothing ties a queued
    /// record to a worker, and on a hash edge whose records' keys can be found again
    /// (`rekeyable`: built by a keyed stream) each goes to its key group's new owner. Forward
    /// and broadcast edges tie records to workers: such a change drains.
    pub fn hand_over_may_rescale(self, rekeyable: bool) -> bool {
        match self {
            Partition::Rebalance => true,
            Partition::Hash => rekeyable,
            Partition::Forward | Partition::Broadcast => false,
        }
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Partition::Forward => "forward",
            Partition::Rebalance => "rebalance",
            Partition::Hash => "hash",
            Partition::Broadcast => "broadcast",
        })
    }
}

/// The 64-bit hash the engine uses to place a key (FxHash, then a murmur3 finaliser so every bit
/// of the result depends on every bit of the key).
///
/// ```
/// use rheo_engine::partition::{key_group, key_hash};
/// let g = key_group(key_hash(&"apple"), 256);
/// assert!(g < 256);
/// assert_eq!(g, key_group(key_hash(&"apple"), 256));
/// ```
pub fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The key group (in `0..groups`) of a key with hash `hash`.
#[inline]
pub fn key_group(hash: u64, groups: u16) -> u16 {
    (((hash >> 32) * groups as u64) >> 32) as u16
}

/// The worker (of `parallelism`) that owns key group `group` (of `groups`).
#[inline]
pub fn worker_for_key_group(group: u16, groups: u16, parallelism: usize) -> usize {
    group as usize * parallelism / groups as usize
}

/// The contiguous key groups owned by worker `worker` of `parallelism`.
///
/// The ranges of all workers partition `0..groups`; worker `i` owns exactly the groups `g` with
/// `worker_for_key_group(g, groups, parallelism) == i`.
pub fn key_group_range(worker: usize, parallelism: usize, groups: u16) -> Range<u16> {
    let g = groups as usize;
    let start = (worker * g).div_ceil(parallelism);
    let end = ((worker + 1) * g).div_ceil(parallelism);
    start as u16..end as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_over_may_rescale_behind_rebalanced_and_rekeyable_hash_edges_only() {
        use Partition::*;
        for rekeyable in [false, true] {
            assert!(Rebalance.hand_over_may_rescale(rekeyable));
            assert!(!Forward.hand_over_may_rescale(rekeyable));
            assert!(!Broadcast.hand_over_may_rescale(rekeyable));
            assert_eq!(Hash.hand_over_may_rescale(rekeyable), rekeyable);
        }
    }

    #[test]
    fn ranges_cover_all_groups_once_and_agree_with_lookup() {
        for groups in [1u16, 7, 128, 256] {
            for p in 1..=groups.min(40) as usize {
                let mut next = 0u16;
                for w in 0..p {
                    let r = key_group_range(w, p, groups);
                    assert_eq!(r.start, next);
                    for g in r.clone() {
                        assert_eq!(worker_for_key_group(g, groups, p), w);
                    }
                    next = r.end;
                }
                assert_eq!(next, groups);
            }
        }
    }

    #[test]
    fn key_groups_spread_keys_evenly() {
        let mut counts = [0u32; 16];
        for k in 0..16_000u64 {
            counts[key_group(key_hash(&k), 16) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread: {counts:?}");
        }
    }
}
