//! What can go wrong reading a run log or building a report.

use std::path::PathBuf;

use crate::agent::checkpoint::CheckpointError;

/// An error of `rheo explain` and the report writer.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run log line is not what `rheo tune --run-log` writes.
    #[error("{path}, line {line}: {reason}")]
    RunLog {
        /// The run log.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The run's policy checkpoint could not be loaded.
    #[error("the run's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A simulated run for sampling observations failed.
    #[error("sampling observations: {0}")]
    Env(#[from] crate::env::EnvError),
    /// Distilling the decision tree failed.
    #[error("distilling the decision tree: {0}")]
    Tree(String),
    /// A plot could not be drawn.
    #[error("drawing {plot}: {reason}")]
    Plot {
        /// Which plot.
        plot: &'static str,
        /// Why.
        reason: String,
    },
}
