//! The bounds every configuration change must respect, and the one clamping function that
//! enforces them — used by DS2 and, as its guardrail, by the agent.

use std::collections::BTreeMap;

use rheo_engine::JobConfig;
use rheo_engine::config::edge_target;
use serde::{Deserialize, Serialize};

use crate::spec::Workload;

/// Per-stage parallelism bounds, the thread budget and the buffer-memory budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// The tunable stages in topological order, with their `(min, max)` parallelism.
    pub stages: Vec<(String, usize, usize)>,
    /// Most threads over the tunable stages.
    pub max_threads: usize,
    /// Most records buffered on all edges (capacity × batch size × channels).
    pub max_buffered_records: u64,
}

impl Bounds {
    /// The bounds a workload spec sets.
    pub fn from_workload(w: &Workload) -> Bounds {
        Bounds {
            stages: w
                .stages
                .iter()
                .map(|s| (s.name.clone(), 1, w.max_parallelism(s)))
                .collect(),
            max_threads: w.objective.max_threads,
            max_buffered_records: w.objective.max_buffered_records,
        }
    }

    /// Threads the tunable stages use under `config`.
    pub fn threads(&self, config: &JobConfig) -> usize {
        self.stages
            .iter()
            .map(|(s, _, _)| config.parallelism(s).unwrap_or(1))
            .sum()
    }
}

/// Records `config` may buffer on its edges: every channel full.
pub fn buffered_records(config: &JobConfig) -> u64 {
    config
        .edges
        .iter()
        .map(|(name, e)| {
            let channels = edge_target(name)
                .and_then(|t| config.parallelism(t))
                .unwrap_or(1);
            e.capacity as u64 * e.batch_size as u64 * channels as u64
        })
        .sum()
}

/// A clamped configuration and what the clamp changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clamped {
    /// The configuration to apply.
    pub config: JobConfig,
    /// One line per adjustment (empty when the proposal was within bounds).
    pub notes: Vec<String>,
}

/// Brings `proposed` within `bounds`, starting from `current`: each stage's parallelism is
/// clamped to its `(min, max)`; decreases always apply; increases are granted in topological
/// order while the thread budget remains; then, if the edges would buffer more records than the
/// budget allows, buffer and batch-size increases are undone from the last edge backwards, and
/// if that is not enough, capacities are halved from the largest down.
pub fn clamp(current: &JobConfig, proposed: &JobConfig, bounds: &Bounds) -> Clamped {
    let mut config = proposed.clone();
    let mut notes = Vec::new();
    let now = |s: &str| current.parallelism(s).unwrap_or(1);
    let mut targets: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, min, max) in &bounds.stages {
        let want = proposed.parallelism(name).unwrap_or_else(|| now(name));
        let bounded = want.clamp(*min, *max);
        if bounded != want {
            notes.push(format!(
                "{name}: {want} clamped to {bounded} (bounds {min}..={max})"
            ));
        }
        targets.insert(name, bounded);
    }
    // Decreases (and unchanged stages) first, then increases in order while budget remains.
    let mut threads: usize = bounds
        .stages
        .iter()
        .map(|(s, _, _)| targets[s.as_str()].min(now(s)))
        .sum();
    for (name, _, _) in &bounds.stages {
        let (from, to) = (now(name), targets[name.as_str()]);
        let granted = if to > from {
            let room = bounds.max_threads.saturating_sub(threads);
            let grant = (to - from).min(room);
            if grant < to - from {
                notes.push(format!(
                    "{name}: {from}→{to} limited to {} by the thread budget of {}",
                    from + grant,
                    bounds.max_threads
                ));
            }
            threads += grant;
            from + grant
        } else {
            to
        };
        config.set_parallelism(name, granted);
    }
    // A budget lowered below what already runs: take threads back, one at a time from the
    // stage with the most above its minimum (the last such stage on ties).
    while bounds.threads(&config) > bounds.max_threads {
        let Some((name, p)) = bounds
            .stages
            .iter()
            .map(|(s, min, _)| (s, config.parallelism(s).unwrap_or(1), *min))
            .filter(|(_, p, min)| p > min)
            .max_by_key(|(_, p, min)| p - min)
            .map(|(s, p, _)| (s.clone(), p))
        else {
            break;
        };
        config.set_parallelism(&name, p - 1);
        notes.push(format!(
            "{name}: {p}→{} by the thread budget of {}",
            p - 1,
            bounds.max_threads
        ));
    }
    // Buffer memory.
    if buffered_records(&config) > bounds.max_buffered_records {
        let names: Vec<String> = config.edges.keys().cloned().collect();
        for name in names.iter().rev() {
            if buffered_records(&config) <= bounds.max_buffered_records {
                break;
            }
            if let (Some(old), Some(new)) =
                (current.edges.get(name).copied(), config.edges.get_mut(name))
                && (new.capacity > old.capacity || new.batch_size > old.batch_size)
            {
                notes.push(format!(
                    "{name}: buffer increase undone by the buffer budget"
                ));
                new.capacity = new.capacity.min(old.capacity);
                new.batch_size = new.batch_size.min(old.batch_size);
            }
        }
        while buffered_records(&config) > bounds.max_buffered_records {
            let Some((name, largest)) = config
                .edges
                .iter_mut()
                .filter(|(_, e)| e.capacity > 1)
                .max_by_key(|(_, e)| e.capacity * e.batch_size)
            else {
                break;
            };
            largest.capacity /= 2;
            notes.push(format!(
                "{name}: capacity halved to {} by the buffer budget",
                largest.capacity
            ));
        }
    }
    Clamped { config, notes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rheo_engine::EdgeConfig;

    fn config(p: &[(&str, usize)]) -> JobConfig {
        let mut c = JobConfig::default();
        for (s, n) in p {
            c.set_parallelism(s, *n);
        }
        c
    }

    fn bounds(max_threads: usize) -> Bounds {
        Bounds {
            stages: vec![("a".into(), 1, 4), ("b".into(), 1, 8), ("c".into(), 1, 8)],
            max_threads,
            max_buffered_records: 1_000_000,
        }
    }

    #[test]
    fn increases_are_granted_in_order_within_the_budget() {
        let current = config(&[("a", 1), ("b", 1), ("c", 4)]);
        let proposed = config(&[("a", 6), ("b", 5), ("c", 2)]);
        let out = clamp(&current, &proposed, &bounds(9));
        // a: 6 → 4 by its bound; c: 4 → 2 applies; b gets what is left: 9 - 4 - 2 = 3.
        assert_eq!(out.config.parallelism("a"), Some(4));
        assert_eq!(out.config.parallelism("c"), Some(2));
        assert_eq!(out.config.parallelism("b"), Some(3));
        assert_eq!(out.notes.len(), 2, "{:?}", out.notes);
    }

    #[test]
    fn the_buffer_budget_undoes_increases_first() {
        let mut current = config(&[("a", 1), ("b", 2), ("c", 1)]);
        current.edges.insert(
            "a->b".into(),
            EdgeConfig {
                capacity: 8,
                batch_size: 10,
            },
        );
        let mut proposed = current.clone();
        proposed.edges.insert(
            "a->b".into(),
            EdgeConfig {
                capacity: 1000,
                batch_size: 10,
            },
        );
        let mut b = bounds(16);
        b.max_buffered_records = 1000;
        let out = clamp(&current, &proposed, &b);
        assert_eq!(out.config.edges["a->b"].capacity, 8);
        assert!(buffered_records(&out.config) <= 1000);
    }

    #[test]
    fn a_lowered_budget_takes_threads_back_from_a_kept_configuration() {
        let current = config(&[("a", 2), ("b", 6), ("c", 3)]);
        let out = clamp(&current, &current, &bounds(6));
        assert_eq!(bounds(6).threads(&out.config), 6);
        // Taken from the stages furthest above their minimum: b first, then b and c alike.
        assert_eq!(out.config.parallelism("a"), Some(2));
        assert!(out.config.parallelism("b").unwrap() <= 3, "{:?}", out.notes);
        assert_eq!(out.notes.len(), 5, "{:?}", out.notes);
    }
}
