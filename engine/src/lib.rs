//! # rheo-engine
//!
//! The dataflow runtime of rheo: a job is a DAG of **stages**, each run by a pool of worker
//! threads, connected by bounded channels that carry batches of records and control markers
//! (watermarks, reconfiguration barriers, end of stream). A full channel blocks its sender, so
//! memory stays bounded ([`Pipeline::in_flight_bound`]).
//!
//! While a job runs, its [`JobHandle`] publishes a [`MetricsSnapshot`] per epoch (DS2-style
//! busy / blocked / idle times, true processing rates, queue occupancy, latency from each
//! event's scheduled time, source backlog) and accepts a new [`JobConfig`] — parallelism per
//! stage, buffer capacity and batch size per edge — which it applies live through a barrier,
//! moving keyed state between workers by key group, without losing or repeating a record.
//!
//! ```
//! use std::time::Duration;
//! use rheo_engine::{JobOptions, PipelineBuilder};
//! use rheo_engine::operator::{Context, Operator};
//! use rheo_engine::source::{RateProfile, RateSource};
//! use rheo_engine::state::KeyedState;
//!
//! /// Counts records per key; emits the final counts at the end of the stream.
//! struct Count;
//! impl Operator for Count {
//!     type In = u64;
//!     type Out = (u64, u64);
//!     type State = KeyedState<u64, u64>;
//!     fn on_batch(&mut self, batch: &mut Vec<u64>, cx: &mut Context<'_, (u64, u64), KeyedState<u64, u64>>) {
//!         for key in batch.drain(..) {
//!             *cx.state().get_or_insert_with(key, || 0) += 1;
//!         }
//!     }
//!     fn on_end(&mut self, cx: &mut Context<'_, (u64, u64), KeyedState<u64, u64>>) {
//!         let counts: Vec<_> = cx.state().drain().collect();
//!         cx.emit_all(counts);
//!     }
//! }
//!
//! let builder = PipelineBuilder::new();
//! let events = RateSource::new(RateProfile::Constant { value: 50_000.0 }, |seq: u64, _: Duration| seq % 10)
//!     .limit(20_000);
//! builder
//!     .source("events", events)
//!     .key_by(|k: &u64| *k)
//!     .unary("count", |_| Count)
//!     .parallelism(2)
//!     .sink_fn("print", |(key, n): (u64, u64)| assert_eq!(n, 2_000, "key {key}"));
//!
//! let job = builder.build()?.start(JobOptions::default().epoch(Duration::from_millis(100)))?;
//! let mut config = job.config();
//! config.set_parallelism("count", 3);
//! let change = job.reconfigure(config)?;
//! println!("paused {:?} to move {} key groups", change.pause, change.key_groups_moved());
//! let report = job.join()?;
//! assert_eq!(report.stage("print").map(|s| s.records_in), Some(10));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The code map: [`builder`] (typed pipeline API) → [`pipeline`] (a checked pipeline) →
//! `runtime` (the controller and [`JobHandle`]) → `worker` (the worker loops) over
//! [`channel`]s and [`partition`]s; [`state`] (keyed state), [`source`] (sources and rate
//! profiles), [`metrics`] (counters and snapshots), `reconfig` (the barrier protocol).

#![warn(missing_docs)]

pub mod builder;
pub mod channel;
pub mod config;
pub mod error;
mod graph;
pub mod metrics;
pub mod operator;
pub mod partition;
pub mod pipeline;
mod reconfig;
mod runtime;
pub mod source;
pub mod state;
mod worker;
mod writer;

pub use builder::{Either, KeyedStream, PipelineBuilder, StageRef, Stream};
pub use channel::Timestamp;
pub use config::{EdgeConfig, JobConfig, JobOptions, Rescale, StageConfig};
pub use error::{BuildError, JobError, ReconfigError};
pub use metrics::MetricsSnapshot;
pub use pipeline::Pipeline;
pub use reconfig::ReconfigReport;
pub use runtime::{JobHandle, JobReport, SnapshotStream, SourceReport, StageReport};
