//! The per-epoch metrics snapshot: what tuners observe, what the JSON-lines log records.
//!
//! Definitions follow DS2 (Kalavri et al., OSDI 2018): a worker's **busy** time is time spent
//! processing, excluding time **blocked** on a full output channel and time **idle** waiting for
//! input. A worker's true processing rate is `records_in / busy_s`; a stage's is the sum over
//! its workers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::latency::LatencyMetrics;
use crate::config::JobConfig;
use crate::partition::Partition;

/// Everything measured during one epoch, plus the configuration in force at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Epoch number, from 0.
    pub epoch: u64,
    /// Job time at the end of the epoch, in seconds.
    pub time_s: f64,
    /// Length of this epoch in seconds (longer than configured if a reconfiguration ran).
    pub epoch_s: f64,
    /// Generation at the end of the epoch (+1 per reconfiguration).
    pub generation: u64,
    /// The configuration at the end of the epoch.
    pub config: JobConfig,
    /// Per stage, in build order.
    pub stages: Vec<StageMetrics>,
    /// Per edge, in build order.
    pub edges: Vec<EdgeMetrics>,
    /// Per source stage.
    pub sources: Vec<SourceMetrics>,
    /// End-to-end latency of the records that reached a sink during the epoch, from their
    /// scheduled time (ingestion time for sources without a schedule).
    pub latency: LatencyMetrics,
    /// The most recent reconfiguration, if any.
    pub last_reconfiguration: Option<ReconfigSummary>,
    /// Reconfigurations so far.
    pub reconfigurations: u64,
    /// The host.
    pub host: HostMetrics,
}

/// The role of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Brings records in.
    Source,
    /// Transforms records.
    Operator,
    /// Consumes records.
    Sink,
}

/// One stage during one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    /// Stage name.
    pub name: String,
    /// Role.
    pub kind: StageKind,
    /// Workers at the end of the epoch.
    pub parallelism: usize,
    /// Records received during the epoch.
    pub records_in: u64,
    /// Records emitted during the epoch.
    pub records_out: u64,
    /// Mean records per batch received during the epoch (0 without input).
    #[serde(default)]
    pub mean_input_batch: f64,
    /// Busy seconds, summed over workers.
    pub busy_s: f64,
    /// Seconds blocked on full output channels, summed over workers.
    pub blocked_s: f64,
    /// Seconds waiting for input, summed over workers.
    pub idle_s: f64,
    /// Thread CPU seconds, summed over workers.
    pub cpu_s: f64,
    /// Share of the workers' time spent busy.
    pub busy_fraction: f64,
    /// The busiest worker's share of its time spent busy: above [`Self::busy_fraction`] when
    /// the load is uneven (key skew on a hash-partitioned input), where the hottest worker
    /// saturates before the stage's mean says so.
    #[serde(default)]
    pub max_worker_busy_fraction: f64,
    /// Share of the workers' time spent blocked (backpressure).
    pub blocked_fraction: f64,
    /// Share of the workers' time spent idle.
    pub idle_fraction: f64,
    /// CPU seconds per worker-second of the epoch (about 1 for a CPU-bound worker with a core).
    pub cpu_fraction: f64,
    /// `records_in / epoch_s`.
    pub observed_input_rate: f64,
    /// `records_out / epoch_s`.
    pub observed_output_rate: f64,
    /// DS2 true processing rate: Σ over workers of `records_in / busy_s`.
    pub true_processing_rate: f64,
    /// DS2 true output rate: Σ over workers of `records_out / busy_s`.
    pub true_output_rate: f64,
    /// Keys held in keyed state at the end of the epoch.
    pub keyed_state_keys: u64,
    /// Mean queued batches over the stage's input channels (summed over channels).
    pub input_queue: f64,
    /// Total capacity of the stage's input channels, in batches.
    pub input_capacity: usize,
    /// Mean fill of the input channels, 0..1.
    pub input_occupancy: f64,
    /// Operator counters during the epoch (e.g. `late_records`).
    pub counters: BTreeMap<String, u64>,
    /// Per worker of the current generation.
    pub workers: Vec<WorkerMetrics>,
}

impl StageMetrics {
    /// A stage with nothing measured: every count, time, rate and queue zero — what a
    /// synthesized snapshot (the simulator's, a test's) fills in.
    pub fn empty(name: &str, kind: StageKind, parallelism: usize) -> StageMetrics {
        StageMetrics {
            name: name.into(),
            kind,
            parallelism,
            records_in: 0,
            records_out: 0,
            mean_input_batch: 0.0,
            busy_s: 0.0,
            blocked_s: 0.0,
            idle_s: 0.0,
            cpu_s: 0.0,
            busy_fraction: 0.0,
            max_worker_busy_fraction: 0.0,
            blocked_fraction: 0.0,
            idle_fraction: 0.0,
            cpu_fraction: 0.0,
            observed_input_rate: 0.0,
            observed_output_rate: 0.0,
            true_processing_rate: 0.0,
            true_output_rate: 0.0,
            keyed_state_keys: 0,
            input_queue: 0.0,
            input_capacity: 0,
            input_occupancy: 0.0,
            counters: BTreeMap::new(),
            workers: Vec::new(),
        }
    }
}

/// One worker during one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerMetrics {
    /// Index within the stage.
    pub index: usize,
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Busy seconds.
    pub busy_s: f64,
    /// Blocked seconds.
    pub blocked_s: f64,
    /// Idle seconds.
    pub idle_s: f64,
    /// Thread CPU seconds.
    pub cpu_s: f64,
    /// `records_in / busy_s` (0 without input).
    pub true_processing_rate: f64,
    /// Keys held.
    pub keyed_state_keys: u64,
}

/// One edge during one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeMetrics {
    /// Edge name (`from->to`).
    pub name: String,
    /// Upstream stage.
    pub from: String,
    /// Downstream stage.
    pub to: String,
    /// Partitioning.
    pub partition: Partition,
    /// Capacity per channel, in batches.
    pub capacity: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Channels (one per downstream worker).
    pub channels: usize,
    /// Mean queued batches, summed over channels.
    pub queue_mean: f64,
    /// Largest queue seen in one channel.
    pub queue_max: usize,
    /// Mean fill of the channels, 0..1.
    pub occupancy: f64,
}

/// One source stage during one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMetrics {
    /// Stage name.
    pub name: String,
    /// Events the schedule made due during the epoch. One due in the epoch's last 2 ms that the
    /// source has not emitted yet (it wakes a moment after its events fall due) counts in the
    /// next epoch instead, so that lag is not charged as a shortfall.
    pub offered: u64,
    /// Events emitted into the pipeline during the epoch.
    pub emitted: u64,
    /// Events due but not yet emitted, at the end of the epoch (as `offered` counts them).
    pub backlog: u64,
    /// `offered / epoch_s`.
    pub offered_rate: f64,
    /// `emitted / epoch_s`.
    pub emitted_rate: f64,
    /// The rate the schedule asks for at the end of the epoch (events/s).
    pub target_rate: f64,
    /// Events due since the start (as `offered` counts them).
    pub offered_total: u64,
    /// Events emitted since the start.
    pub emitted_total: u64,
}

/// Timing of a reconfiguration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReconfigSummary {
    /// Generation it started.
    pub generation: u64,
    /// Barrier injection to source resume, in ms.
    pub pause_ms: f64,
    /// Barrier injection to the last worker drained, in ms.
    pub drain_ms: f64,
}

/// The machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    /// Logical cores available to the process.
    pub cores: usize,
    /// Process CPU seconds during the epoch.
    pub process_cpu_s: f64,
    /// Process CPU use as a share of all cores, 0..1.
    pub process_cpu_fraction: f64,
}

impl MetricsSnapshot {
    /// The metrics of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StageMetrics> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The metrics of edge `name`.
    pub fn edge(&self, name: &str) -> Option<&EdgeMetrics> {
        self.edges.iter().find(|e| e.name == name)
    }

    /// Events offered during the epoch, over all sources.
    pub fn offered(&self) -> u64 {
        self.sources.iter().map(|s| s.offered).sum()
    }

    /// Events emitted during the epoch, over all sources.
    pub fn emitted(&self) -> u64 {
        self.sources.iter().map(|s| s.emitted).sum()
    }

    /// Backlog at the end of the epoch, over all sources.
    pub fn backlog(&self) -> u64 {
        self.sources.iter().map(|s| s.backlog).sum()
    }

    /// Records received by sinks during the epoch.
    pub fn sink_records(&self) -> u64 {
        self.stages
            .iter()
            .filter(|s| s.kind == StageKind::Sink)
            .map(|s| s.records_in)
            .sum()
    }

    /// Serialises the snapshot as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
