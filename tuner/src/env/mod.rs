//! Environments a tuner acts on, one epoch at a time: the live engine ([`EngineEnv`]) and a
//! queueing model of the same pipeline ([`SimEnv`]). Both speak in engine
//! [`MetricsSnapshot`]s, so a tuner cannot tell them apart.

mod engine;
pub mod sim;

pub use engine::EngineEnv;
use rheo_engine::{JobConfig, JobError, MetricsSnapshot, ReconfigError};
pub use sim::{SimEnv, SimParams};

use crate::spec::SpecError;

/// What went wrong in an environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The workload spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The pipeline could not be built.
    #[error("building the workload pipeline: {0}")]
    Build(#[from] rheo_engine::BuildError),
    /// The job failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A configuration was rejected.
    #[error(transparent)]
    Reconfig(#[from] ReconfigError),
    /// A policy checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] crate::agent::checkpoint::CheckpointError),
    /// A calibration file could not be read or written.
    #[error("calibration {path}: {reason}")]
    Calibration {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// One pipeline a tuner steps through, epoch by epoch.
pub trait Environment {
    /// `engine` or `sim`.
    fn backend(&self) -> &'static str;
    /// The snapshot of the next epoch, or `None` once the run is over.
    fn observe(&mut self) -> Result<Option<MetricsSnapshot>, EnvError>;
    /// Runs the coming epochs with `config`.
    fn apply(&mut self, config: &JobConfig) -> Result<(), EnvError>;
}
