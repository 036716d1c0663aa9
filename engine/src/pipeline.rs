//! A built pipeline: its stages and edges, its default configuration, the in-flight bound it
//! guarantees, and how it starts.

use std::collections::BTreeMap;

use crate::config::{EdgeConfig, JobConfig, JobOptions, StageConfig};
use crate::error::{JobError, ReconfigError};
use crate::graph::{EdgeNode, StageNode};
use crate::metrics::StageKind;
use crate::partition::Partition;
use crate::runtime::{JobHandle, JobReport};

/// A checked pipeline, ready to start as a job.
pub struct Pipeline {
    pub(crate) stages: Vec<StageNode>,
    pub(crate) edges: Vec<EdgeNode>,
    default_config: JobConfig,
}

/// The static description of a stage (for tools and tuners).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageDescription {
    /// Stage name.
    pub name: String,
    /// Role.
    pub kind: StageKind,
    /// Largest parallelism a reconfiguration may set.
    pub max_parallelism: usize,
    /// Key groups (meaningful for keyed stages).
    pub key_groups: u16,
    /// Whether any input is hash-partitioned (the stage may hold keyed state).
    pub keyed: bool,
    /// Names of the input edges.
    pub inputs: Vec<String>,
    /// Names of the output edges.
    pub outputs: Vec<String>,
}

impl Pipeline {
    pub(crate) fn new(
        stages: Vec<StageNode>,
        edges: Vec<EdgeNode>,
        capacity: usize,
        batch_size: usize,
    ) -> Pipeline {
        let default_config = JobConfig {
            stages: stages
                .iter()
                .map(|s| {
                    (
                        s.name.to_string(),
                        StageConfig {
                            parallelism: s.parallelism,
                        },
                    )
                })
                .collect(),
            edges: edges
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        EdgeConfig {
                            capacity,
                            batch_size,
                        },
                    )
                })
                .collect(),
        };
        Pipeline {
            stages,
            edges,
            default_config,
        }
    }

    /// The configuration the job starts with unless [`JobOptions::config`] overrides it.
    pub fn default_config(&self) -> JobConfig {
        self.default_config.clone()
    }

    /// The stages, in build order.
    pub fn describe(&self) -> Vec<StageDescription> {
        self.stages
            .iter()
            .map(|s| StageDescription {
                name: s.name.to_string(),
                kind: s.kind,
                max_parallelism: s.max_parallelism,
                key_groups: s.key_groups,
                keyed: s
                    .inputs
                    .iter()
                    .any(|&e| self.edges[e].partition == Partition::Hash),
                inputs: s
                    .inputs
                    .iter()
                    .map(|&e| self.edges[e].name.clone())
                    .collect(),
                outputs: s
                    .outputs
                    .iter()
                    .map(|&e| self.edges[e].name.clone())
                    .collect(),
            })
            .collect()
    }

    /// Checks `requested` against the pipeline and returns `current` with it applied.
    /// Stages and edges `requested` leaves out keep their current settings.
    pub fn merge_config(
        &self,
        current: &JobConfig,
        requested: &JobConfig,
    ) -> Result<JobConfig, ReconfigError> {
        merge_config(&self.stages, &self.edges, current, requested)
    }

    /// The most records that can be between the sources and the sinks at once under `config`:
    /// queued in channels, waiting in partial batches, or in a worker's hands.
    ///
    /// Per edge: every downstream channel full (`capacity × batch_size` records each) plus, per
    /// upstream worker, its partial batches (one per downstream worker for hash edges, two
    /// batches for broadcast — the one being copied and the one being sent — and one
    /// otherwise). Per non-source worker: the input batch it is processing and what it emitted
    /// from it so far (both at most the largest input batch, for operators emitting at most one
    /// record per input). Per source worker: one poll (the largest output batch size).
    /// Records duplicated by fan-out or broadcast count once per copy.
    pub fn in_flight_bound(&self, config: &JobConfig) -> u64 {
        let par = |s: usize| {
            config
                .parallelism(&self.stages[s].name)
                .unwrap_or(self.stages[s].parallelism) as u64
        };
        let edge_cfg = |e: &EdgeNode| config.edges.get(&e.name).copied();
        let mut bound = 0u64;
        for e in &self.edges {
            let Some(c) = edge_cfg(e) else { continue };
            let (p_from, p_to) = (par(e.from), par(e.to));
            let batch = c.batch_size as u64;
            bound += p_to * c.capacity as u64 * batch;
            let pending_per_worker = match e.partition {
                Partition::Hash => p_to,
                Partition::Broadcast => 2,
                _ => 1,
            };
            bound += p_from * pending_per_worker * batch;
        }
        for (i, s) in self.stages.iter().enumerate() {
            let largest = |edges: &[usize]| {
                edges
                    .iter()
                    .filter_map(|&e| edge_cfg(&self.edges[e]))
                    .map(|c| c.batch_size as u64)
                    .max()
                    .unwrap_or(0)
            };
            bound += match s.kind {
                StageKind::Source => par(i) * largest(&s.outputs),
                _ => par(i) * 2 * largest(&s.inputs),
            };
        }
        bound
    }

    /// Starts the pipeline as a job.
    pub fn start(self, options: JobOptions) -> Result<JobHandle, JobError> {
        let config = match &options.config {
            Some(c) => self.merge_config(&self.default_config, c)?,
            None => self.default_config.clone(),
        };
        crate::runtime::start(self, config, options)
    }

    /// Starts the pipeline and waits for it to finish.
    pub fn run(self, options: JobOptions) -> Result<JobReport, JobError> {
        self.start(options)?.join()
    }
}

pub(crate) fn merge_config(
    stages: &[StageNode],
    edges: &[EdgeNode],
    current: &JobConfig,
    requested: &JobConfig,
) -> Result<JobConfig, ReconfigError> {
    let mut out = current.clone();
    for (name, sc) in &requested.stages {
        let stage = stages
            .iter()
            .find(|s| &*s.name == name)
            .ok_or_else(|| ReconfigError::UnknownStage(name.clone()))?;
        let now = current.parallelism(name).unwrap_or(stage.parallelism);
        if stage.kind == StageKind::Source && sc.parallelism != now {
            return Err(ReconfigError::SourceParallelism {
                stage: name.clone(),
                current: now,
            });
        }
        if sc.parallelism == 0 || sc.parallelism > stage.max_parallelism {
            return Err(ReconfigError::InvalidParallelism {
                stage: name.clone(),
                value: sc.parallelism,
                max: stage.max_parallelism,
            });
        }
        out.stages.insert(name.clone(), *sc);
    }
    let known: BTreeMap<&str, &EdgeNode> = edges.iter().map(|e| (e.name.as_str(), e)).collect();
    for (name, ec) in &requested.edges {
        if !known.contains_key(name.as_str()) {
            return Err(ReconfigError::UnknownEdge(name.clone()));
        }
        if ec.capacity == 0 {
            return Err(ReconfigError::InvalidCapacity {
                edge: name.clone(),
                value: 0,
            });
        }
        if ec.batch_size == 0 {
            return Err(ReconfigError::InvalidBatchSize {
                edge: name.clone(),
                value: 0,
            });
        }
        out.edges.insert(name.clone(), *ec);
    }
    Ok(out)
}
