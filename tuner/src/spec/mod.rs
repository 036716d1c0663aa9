//! Workload specs (design.md §5): a synthetic pipeline the engine really runs and the
//! simulator models, read from TOML.
//!
//! ```toml
//! name = "three-stage-skewed"
//! duration_s = 60
//! [source]
//! rate = { profile = "step", values = [20000, 60000, 30000], period_s = 20 }
//! key_space = 10000
//! key_skew = 1.1
//! [[stage]]
//! name = "parse"
//! cpu_us = 8.0
//! partition = "rebalance"
//! [[stage]]
//! name = "enrich"
//! wait_us = 100.0
//! selectivity = 0.5
//! partition = "hash"
//! keyed_state = true
//! [objective]
//! latency_slo_ms = 100
//! max_threads = 32
//! ```
//!
//! Unknown fields, missing required fields and out-of-range values are [`SpecError`]s naming
//! the file, the field and the reason.

mod build;
mod error;
mod work;

use std::path::Path;

pub use build::{SINK, SOURCE, build_pipeline};
pub use error::SpecError;
use rheo_engine::Rescale;
use rheo_engine::partition::Partition;
use rheo_engine::source::RateProfile;
use serde::{Deserialize, Serialize};
pub use work::burn_cpu;

/// A workload: source, stages, objective and initial configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Name (used in reports).
    pub name: String,
    /// Length of a run, in seconds.
    pub duration_s: f64,
    /// Length of a tuning epoch, in seconds (default 1).
    #[serde(default = "one")]
    pub epoch_s: f64,
    /// The source.
    pub source: SourceSpec,
    /// The stages, in pipeline order (`[[stage]]` tables).
    #[serde(rename = "stage")]
    pub stages: Vec<StageSpec>,
    /// What runs are scored against.
    pub objective: ObjectiveSpec,
    /// The configuration a run starts from.
    #[serde(default)]
    pub initial: InitialSpec,
    /// How the engine applies a reconfiguration: `"drain"` (the default: queued records are
    /// processed by the old configuration first) or `"hand-over"` (they are handed to the new
    /// one; see [`Rescale`]). The simulator prices either: a drain pauses the source while the
    /// old configuration works off the queue, a hand-over while the slowest stage finishes its
    /// batch, the queue staying for the new configuration.
    #[serde(default)]
    pub rescale: Rescale,
}

/// The source of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Events per second over time.
    pub rate: RateProfile,
    /// Distinct keys (default 1000).
    #[serde(default = "thousand")]
    pub key_space: u64,
    /// Zipf exponent of key popularity; 0 is uniform (default 0).
    #[serde(default)]
    pub key_skew: f64,
}

/// One synthetic stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Stage name.
    pub name: String,
    /// CPU work per record, in µs (measured on the thread's own CPU clock).
    #[serde(default)]
    pub cpu_us: f64,
    /// Blocking wait per record, in µs (slept per batch: `wait_us` × records).
    #[serde(default)]
    pub wait_us: f64,
    /// Blocking wait per batch, in µs (a batched call).
    #[serde(default)]
    pub batch_wait_us: f64,
    /// Outputs per input (default 1).
    #[serde(default = "one")]
    pub selectivity: f64,
    /// How records reach the stage (default rebalance).
    #[serde(default = "rebalance")]
    pub partition: Partition,
    /// Keep a count per key in keyed state (requires `partition = "hash"`).
    #[serde(default)]
    pub keyed_state: bool,
    /// Parallelism ceiling (default `objective.max_threads`).
    pub max_parallelism: Option<usize>,
}

/// What a run is scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// p99 latency target, from each event's scheduled time, in ms.
    pub latency_slo_ms: f64,
    /// Thread budget over the workload's stages.
    pub max_threads: usize,
    /// Budget of records buffered on all edges (default 1 000 000).
    #[serde(default = "million")]
    pub max_buffered_records: u64,
}

/// The starting configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialSpec {
    /// Parallelism of every stage (default 1).
    #[serde(default = "one_usize")]
    pub parallelism: usize,
    /// Buffer capacity of every edge, in batches (default 64).
    #[serde(default = "sixty_four")]
    pub buffer: usize,
    /// Batch size of every edge (default 64).
    #[serde(default = "sixty_four")]
    pub batch_size: usize,
}

impl Default for InitialSpec {
    fn default() -> Self {
        InitialSpec {
            parallelism: 1,
            buffer: 64,
            batch_size: 64,
        }
    }
}

fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn sixty_four() -> usize {
    64
}
fn thousand() -> u64 {
    1000
}
fn million() -> u64 {
    1_000_000
}
fn rebalance() -> Partition {
    Partition::Rebalance
}

impl Workload {
    /// Reads and checks a spec file.
    pub fn load(path: impl AsRef<Path>) -> Result<Workload, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError::new(path, "", format!("cannot read the file: {e}")))?;
        Workload::parse(&text, path)
    }

    /// Parses and checks a spec; `file` names it in errors.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Result<Workload, SpecError> {
        let file = file.as_ref();
        let workload: Workload =
            toml::from_str(text).map_err(|e| SpecError::from_toml(file, text, &e))?;
        workload
            .validate()
            .map_err(|(field, reason)| SpecError::new(file, &field, reason))?;
        Ok(workload)
    }

    /// The stage names, in order.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.clone()).collect()
    }

    /// The parallelism ceiling of `stage`.
    pub fn max_parallelism(&self, stage: &StageSpec) -> usize {
        stage.max_parallelism.unwrap_or(self.objective.max_threads)
    }

    /// Number of epochs in a run.
    pub fn epochs(&self) -> usize {
        (self.duration_s / self.epoch_s).round().max(1.0) as usize
    }

    /// The objective every tuner is scored by on this workload.
    pub fn objective(&self) -> crate::objective::Objective {
        crate::objective::Objective {
            latency_slo_ms: self.objective.latency_slo_ms,
            max_threads: self.objective.max_threads,
            stages: self.stage_names(),
        }
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, reason: String| Err((field.to_owned(), reason));
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                err(field, format!("must be a finite number > 0 (got {v})"))
            }
        };
        let non_negative = |field: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                err(field, format!("must be a finite number >= 0 (got {v})"))
            }
        };
        if self.name.trim().is_empty() {
            return err("name", "must not be empty".into());
        }
        positive("duration_s", self.duration_s)?;
        positive("epoch_s", self.epoch_s)?;
        if self.epoch_s > self.duration_s {
            return err(
                "epoch_s",
                format!(
                    "must not exceed duration_s ({} > {})",
                    self.epoch_s, self.duration_s
                ),
            );
        }
        self.source
            .rate
            .validate()
            .map_err(|e| (format!("source.rate.{}", e.field), e.reason))?;
        if self.source.key_space == 0 {
            return err("source.key_space", "must be at least 1".into());
        }
        non_negative("source.key_skew", self.source.key_skew)?;
        positive("objective.latency_slo_ms", self.objective.latency_slo_ms)?;
        if self.objective.max_buffered_records == 0 {
            return err(
                "objective.max_buffered_records",
                "must be at least 1".into(),
            );
        }
        if self.stages.is_empty() {
            return err("stage", "a workload needs at least one [[stage]]".into());
        }
        if self.stages.len() > 8 {
            return err(
                "stage",
                format!("at most 8 stages are supported (got {})", self.stages.len()),
            );
        }
        if self.objective.max_threads < self.stages.len() {
            return err(
                "objective.max_threads",
                format!(
                    "must allow one thread per stage ({} < {} stages)",
                    self.objective.max_threads,
                    self.stages.len()
                ),
            );
        }
        for (i, s) in self.stages.iter().enumerate() {
            let f = |name: &str| format!("stage[{i}].{name}");
            if s.name.is_empty()
                || s.name.contains("->")
                || s.name.contains('#')
                || s.name == build::SOURCE
                || s.name == build::SINK
            {
                return err(
                    &f("name"),
                    format!(
                        "`{}` is not a usable stage name (empty, reserved, or containing `->` or `#`)",
                        s.name
                    ),
                );
            }
            if self.stages[..i].iter().any(|o| o.name == s.name) {
                return err(
                    &f("name"),
                    format!("`{}` is used by an earlier stage", s.name),
                );
            }
            non_negative(&f("cpu_us"), s.cpu_us)?;
            non_negative(&f("wait_us"), s.wait_us)?;
            non_negative(&f("batch_wait_us"), s.batch_wait_us)?;
            positive(&f("selectivity"), s.selectivity)?;
            if s.selectivity > 100.0 {
                return err(
                    &f("selectivity"),
                    format!("must be at most 100 (got {})", s.selectivity),
                );
            }
            if s.keyed_state && s.partition != Partition::Hash {
                return err(
                    &f("keyed_state"),
                    format!("needs partition = \"hash\" (got \"{}\")", s.partition),
                );
            }
            let max = self.max_parallelism(s);
            if max == 0 {
                return err(&f("max_parallelism"), "must be at least 1".into());
            }
            if self.initial.parallelism > max {
                return err(
                    "initial.parallelism",
                    format!(
                        "exceeds stage `{}`'s max_parallelism ({} > {max})",
                        s.name, self.initial.parallelism
                    ),
                );
            }
        }
        if self.initial.parallelism == 0 {
            return err("initial.parallelism", "must be at least 1".into());
        }
        if self.initial.parallelism * self.stages.len() > self.objective.max_threads {
            return err(
                "initial.parallelism",
                format!(
                    "{} stages × {} threads exceed objective.max_threads ({})",
                    self.stages.len(),
                    self.initial.parallelism,
                    self.objective.max_threads
                ),
            );
        }
        if self.initial.buffer == 0 {
            return err("initial.buffer", "must be at least 1 batch".into());
        }
        if self.initial.batch_size == 0 {
            return err("initial.batch_size", "must be at least 1 record".into());
        }
        Ok(())
    }
}
