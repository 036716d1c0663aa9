//! The knobs of a running job ([`JobConfig`]) and the settings fixed at start ([`JobOptions`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The configuration a tuner may change while a job runs: parallelism per stage, buffer capacity
/// and batch size per edge.
///
/// Stages are named as they were built; edges are named `"from->to"` (with `#n` appended when the
/// same two stages are connected more than once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JobConfig {
    /// Parallelism (worker threads) per stage.
    pub stages: BTreeMap<String, StageConfig>,
    /// Buffer capacity and batch size per edge.
    pub edges: BTreeMap<String, EdgeConfig>,
}

/// Per-stage knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageConfig {
    /// Number of worker threads running the stage.
    pub parallelism: usize,
}

/// Per-edge knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeConfig {
    /// Capacity of each downstream worker's input channel, in batches.
    pub capacity: usize,
    /// Records per batch; a partial batch is flushed after the job's flush timeout.
    pub batch_size: usize,
}

impl JobConfig {
    /// The parallelism of `stage`, if the stage exists.
    pub fn parallelism(&self, stage: &str) -> Option<usize> {
        self.stages.get(stage).map(|s| s.parallelism)
    }

    /// Sets the parallelism of `stage` (validated when the configuration is applied).
    pub fn set_parallelism(&mut self, stage: &str, parallelism: usize) -> &mut Self {
        self.stages
            .insert(stage.to_owned(), StageConfig { parallelism });
        self
    }

    /// Sets the buffer capacity (in batches) of `edge`, keeping its batch size.
    pub fn set_capacity(&mut self, edge: &str, capacity: usize) -> &mut Self {
        let entry = self.edges.entry(edge.to_owned()).or_insert(EdgeConfig {
            capacity,
            batch_size: 0,
        });
        entry.capacity = capacity;
        self
    }

    /// Sets the batch size (records per batch) of `edge`, keeping its capacity.
    pub fn set_batch_size(&mut self, edge: &str, batch_size: usize) -> &mut Self {
        let entry = self.edges.entry(edge.to_owned()).or_insert(EdgeConfig {
            capacity: 0,
            batch_size,
        });
        entry.batch_size = batch_size;
        self
    }

    /// Sets the capacity of every edge that ends at `stage` (a tuner's "buffer move").
    pub fn set_input_capacity(&mut self, stage: &str, capacity: usize) -> &mut Self {
        for (name, edge) in self.edges.iter_mut() {
            if edge_target(name) == Some(stage) {
                edge.capacity = capacity;
            }
        }
        self
    }

    /// Sum of the parallelism of the given stages (all stages when `stages` is `None`).
    pub fn threads(&self, stages: Option<&[&str]>) -> usize {
        match stages {
            None => self.stages.values().map(|s| s.parallelism).sum(),
            Some(names) => names.iter().filter_map(|n| self.parallelism(n)).sum(),
        }
    }
}

/// The stage an edge named `"from->to"` (or `"from->to#n"`) ends at.
pub fn edge_target(edge: &str) -> Option<&str> {
    let (_, to) = edge.split_once("->")?;
    Some(to.split('#').next().unwrap_or(to))
}

/// The stage an edge named `"from->to"` starts at.
pub fn edge_source(edge: &str) -> Option<&str> {
    edge.split_once("->").map(|(from, _)| from)
}

/// How a reconfiguration treats the records queued in channels when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rescale {
    /// The old configuration processes everything queued before the new one starts (an aligned
    /// barrier): the pause grows with the queued work and the old parallelism.
    #[default]
    Drain,
    /// Workers stop after the batch in hand and the queued records are handed to the new
    /// configuration, re-partitioned for it, so the pause does not wait for queued work. Used
    /// when every stage whose parallelism changes reads only rebalanced edges (dealt
    /// round-robin) or hash edges built by a keyed stream (re-partitioned by key group, each
    /// key keeping its order), and no source has ended; any other change drains. Edge
    /// capacities and batch sizes change either way.
    HandOver,
}

/// Settings fixed when a job starts.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Wall-clock length of a metrics epoch (default 1 s).
    pub epoch: Duration,
    /// How often queue lengths are sampled within an epoch (default 10 ms).
    pub sample_interval: Duration,
    /// A partial batch waits at most this long before it is sent (default 2 ms).
    pub flush_timeout: Duration,
    /// Sources send a watermark at most this often (default 10 ms); the final one always goes.
    pub watermark_interval: Duration,
    /// Collect timings (busy / blocked / idle) and latency (default true). Record counts,
    /// queue lengths and CPU time are collected either way.
    pub metrics: bool,
    /// Write every epoch's snapshot as one JSON line to this file.
    pub metrics_jsonl: Option<PathBuf>,
    /// After an abort (or a failure), how long to wait for threads stuck in user code before
    /// leaving them behind (counted as detached in the report). Default 1 s.
    pub abort_grace: Duration,
    /// Overrides of the pipeline's default configuration applied at start.
    pub config: Option<JobConfig>,
    /// What a reconfiguration does with queued records (default [`Rescale::Drain`]).
    pub rescale: Rescale,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            epoch: Duration::from_secs(1),
            sample_interval: Duration::from_millis(10),
            flush_timeout: Duration::from_millis(2),
            watermark_interval: Duration::from_millis(10),
            metrics: true,
            metrics_jsonl: None,
            abort_grace: Duration::from_secs(1),
            config: None,
            rescale: Rescale::Drain,
        }
    }
}

impl JobOptions {
    /// Sets the epoch length.
    pub fn epoch(mut self, epoch: Duration) -> Self {
        self.epoch = epoch;
        self
    }

    /// Sets the flush timeout of partial batches.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Turns timing and latency collection on or off.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Writes one JSON line per epoch snapshot to `path`.
    pub fn metrics_jsonl(mut self, path: impl Into<PathBuf>) -> Self {
        self.metrics_jsonl = Some(path.into());
        self
    }

    /// Starts the job with `config` instead of the pipeline's default configuration.
    pub fn config(mut self, config: JobConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets the watermark interval of sources.
    pub fn watermark_interval(mut self, interval: Duration) -> Self {
        self.watermark_interval = interval;
        self
    }

    /// Sets what a reconfiguration does with queued records.
    pub fn rescale(mut self, rescale: Rescale) -> Self {
        self.rescale = rescale;
        self
    }

    /// Sets how long an abort waits for threads stuck in user code.
    pub fn abort_grace(mut self, grace: Duration) -> Self {
        self.abort_grace = grace;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_names_split_into_stages() {
        assert_eq!(edge_target("a->b"), Some("b"));
        assert_eq!(edge_target("a->b#2"), Some("b"));
        assert_eq!(edge_source("a->b#2"), Some("a"));
        assert_eq!(edge_target("ab"), None);
    }

    #[test]
    fn input_capacity_touches_only_edges_into_the_stage() {
        let mut c = JobConfig::default();
        c.edges.insert(
            "src->map".into(),
            EdgeConfig {
                capacity: 4,
                batch_size: 8,
            },
        );
        c.edges.insert(
            "map->sink".into(),
            EdgeConfig {
                capacity: 4,
                batch_size: 8,
            },
        );
        c.set_input_capacity("map", 16);
        assert_eq!(c.edges["src->map"].capacity, 16);
        assert_eq!(c.edges["map->sink"].capacity, 4);
    }

    #[test]
    fn config_round_trips_through_json() {
        let mut c = JobConfig::default();
        c.set_parallelism("count", 3);
        let json = serde_json::to_string(&c).unwrap();
        let back: JobConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
