//! Metrics with DS2-compatible definitions, snapshotted per epoch.
//!
//! Workers count records, busy / blocked / idle time and keyed-state size in per-worker
//! counters; the controller reads them at each epoch boundary (and samples queue lengths
//! within the epoch) and publishes a [`MetricsSnapshot`]. Thread CPU time is read from each
//! worker's own CPU clock, so CPU-bound and wait-bound stages can be told apart.

pub(crate) mod collector;
pub(crate) mod counters;
mod jsonl;
pub(crate) mod latency;
mod snapshot;

pub use counters::{own_thread_cpu_ns, process_cpu_ns};
pub use jsonl::{JsonLinesWriter, read_json_lines};
pub use latency::LatencyMetrics;
pub use snapshot::{
    EdgeMetrics, HostMetrics, MetricsSnapshot, ReconfigSummary, SourceMetrics, StageKind,
    StageMetrics, WorkerMetrics,
};
