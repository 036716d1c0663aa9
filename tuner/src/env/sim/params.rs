//! The calibrated constants of the simulator.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::env::EnvError;
use crate::spec::Workload;

/// The calibrated constants of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimParams {
    /// Per stage: measured per-worker service rate ÷ the spec's nominal one.
    pub rate_factor: Vec<f64>,
    /// Per stage: scaling exponent `α` (1 = linear in parallelism).
    pub scaling: Vec<f64>,
    /// Engine CPU per record per stage, in µs.
    pub overhead_us: f64,
    /// Source CPU per event, in µs.
    pub source_overhead_us: f64,
    /// Cores available.
    pub cores: f64,
    /// Latency every record pays regardless (scheduling, hops), in ms.
    pub latency_floor_ms: f64,
    /// Measured p99 ÷ modelled latency.
    pub latency_factor: f64,
    /// Relative standard deviation of per-epoch service-rate noise.
    pub noise: f64,
    /// Mean share of an epoch the source loses to scheduling stalls (a starved CPU runs its
    /// thread late): the events due meanwhile join the backlog and go out once it runs again,
    /// so the epoch reads as a shortfall with empty queues. 0 (the nominal model) draws none.
    #[serde(default)]
    pub source_stall: f64,
    /// The engine's flush timeout for partial batches, in seconds.
    pub flush_timeout_s: f64,
}

impl SimParams {
    /// Nominal constants for `workload` on this machine: the spec's costs at face value.
    pub fn nominal(workload: &Workload) -> SimParams {
        let n = workload.stages.len();
        SimParams {
            rate_factor: vec![1.0; n],
            scaling: vec![1.0; n],
            overhead_us: 0.5,
            source_overhead_us: 0.5,
            cores: std::thread::available_parallelism().map_or(2.0, |c| c.get() as f64),
            latency_floor_ms: 2.0,
            latency_factor: 1.0,
            noise: 0.03,
            source_stall: 0.0,
            flush_timeout_s: 0.002,
        }
    }

    /// Records in a partial batch flushed on the timeout, for a buffer filling at
    /// `per_buffer` records/s: the record that starts the timer and what arrives before it runs
    /// out (the engine's batches measure so), at most `batch_size`.
    pub fn flush_batch(&self, per_buffer: f64, batch_size: f64) -> f64 {
        (1.0 + per_buffer * self.flush_timeout_s).min(batch_size)
    }

    /// Reads calibrated constants written by [`SimParams::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<SimParams, EnvError> {
        let path = path.as_ref();
        let fail = |reason: String| EnvError::Calibration {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
    }

    /// Writes the constants as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), EnvError> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| EnvError::Calibration {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
