//! Typed errors of the engine: building a pipeline, running a job, reconfiguring it.

use std::path::PathBuf;

/// A pipeline description that cannot be turned into a runnable job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two stages were given the same name; names identify stages in configurations and metrics.
    #[error("stage name `{0}` is used twice; every stage needs its own name")]
    DuplicateStage(String),
    /// A stage name is empty or contains characters reserved for edge names.
    #[error("stage name `{0}` is invalid: it must be non-empty and must not contain `->` or `#`")]
    InvalidName(String),
    /// A stage property (parallelism, key groups, ...) was out of range.
    #[error("stage `{stage}`: {field} = {value} is out of range ({reason})")]
    OutOfRange {
        /// The stage the property belongs to.
        stage: String,
        /// The property.
        field: &'static str,
        /// The value that was given.
        value: u64,
        /// Why it is out of range.
        reason: String,
    },
    /// A stage property was set on a stream that comes from several stages (a union).
    #[error("{0} was called on a union of streams; call it on the stream of a single stage")]
    AmbiguousStage(&'static str),
    /// The pipeline has no source stage.
    #[error("the pipeline has no source")]
    NoSource,
}

/// A reconfiguration that was rejected. The job keeps running with its old configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigError {
    /// The configuration names a stage the job does not have.
    #[error("unknown stage `{0}`")]
    UnknownStage(String),
    /// The configuration names an edge the job does not have.
    #[error("unknown edge `{0}`")]
    UnknownEdge(String),
    /// A parallelism outside `1..=max`.
    #[error("stage `{stage}`: parallelism {value} is out of range 1..={max}")]
    InvalidParallelism {
        /// The stage.
        stage: String,
        /// The requested parallelism.
        value: usize,
        /// The stage's maximum parallelism.
        max: usize,
    },
    /// Source stages keep the parallelism they were built with (their input split is fixed).
    #[error("stage `{stage}` is a source; its parallelism is fixed at {current}")]
    SourceParallelism {
        /// The source stage.
        stage: String,
        /// Its parallelism.
        current: usize,
    },
    /// A buffer capacity of zero batches.
    #[error("edge `{edge}`: buffer capacity must be at least 1 batch (got {value})")]
    InvalidCapacity {
        /// The edge.
        edge: String,
        /// The requested capacity.
        value: usize,
    },
    /// A batch size of zero records.
    #[error("edge `{edge}`: batch size must be at least 1 record (got {value})")]
    InvalidBatchSize {
        /// The edge.
        edge: String,
        /// The requested batch size.
        value: usize,
    },
    /// The job has finished, is draining, or was aborted.
    #[error("the job is no longer running")]
    JobNotRunning,
    /// The job failed while the reconfiguration was in progress.
    #[error("the job failed during the reconfiguration: {0}")]
    JobFailed(String),
}

/// Why a job ended without a final report, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An operator panicked; the job was stopped.
    #[error("stage `{stage}` (worker {worker}) panicked: {message}")]
    OperatorPanicked {
        /// The stage whose operator panicked.
        stage: String,
        /// The worker index within the stage.
        worker: usize,
        /// The panic message.
        message: String,
    },
    /// A worker thread could not be started.
    #[error("could not start a worker thread for stage `{stage}`: {source}")]
    Spawn {
        /// The stage.
        stage: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The metrics log could not be opened or written.
    #[error("metrics log `{path}`: {source}")]
    MetricsLog {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The initial configuration is invalid.
    #[error("invalid initial configuration: {0}")]
    Config(#[from] ReconfigError),
    /// The pipeline could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// An internal invariant broke; this is a bug in rheo.
    #[error("internal error in rheo (please report): {0}")]
    Internal(String),
}
