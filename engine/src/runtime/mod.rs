//! A running job: the [`JobHandle`] an application holds, and the controller thread behind it.
//!
//! The controller owns the job's lifecycle. It spawns the workers of each generation, samples
//! queues, publishes a snapshot per epoch, runs reconfigurations (see [`crate::reconfig`]),
//! turns "all sources exhausted" or [`JobHandle::stop_drain`] into end-of-stream, and on abort
//! or failure stops every thread — giving up, after a grace period, on threads stuck in user
//! code rather than hanging.

mod controller;
mod spawn;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::JobConfig;
use crate::error::{JobError, ReconfigError};
use crate::metrics::{LatencyMetrics, MetricsSnapshot};
use crate::reconfig::ReconfigReport;
use crate::worker::WorkerEnv;

pub(crate) use controller::{Controller, start};

pub(crate) enum Command {
    Reconfigure(JobConfig, Sender<Result<ReconfigReport, ReconfigError>>),
    StopDrain,
    Abort,
}

/// State shared between the handle and the controller.
struct Shared {
    latest: Mutex<Option<Arc<MetricsSnapshot>>>,
    subscribers: Mutex<Vec<Sender<Arc<MetricsSnapshot>>>>,
    config: Mutex<JobConfig>,
    running: AtomicBool,
}

/// The handle of a running job: metrics, configuration, reconfiguration, stop.
///
/// Dropping the handle without [`JobHandle::join`] aborts the job: a job lives as long as its
/// handle.
pub struct JobHandle {
    commands: Sender<Command>,
    shared: Arc<Shared>,
    env: Arc<WorkerEnv>,
    controller: Option<JoinHandle<Result<JobReport, JobError>>>,
    bound: u64,
}

/// A stream of per-epoch snapshots; it ends when the job ends.
pub struct SnapshotStream {
    rx: Receiver<Arc<MetricsSnapshot>>,
}

impl SnapshotStream {
    /// Waits for the next snapshot (None once the job has ended and all were read).
    pub fn next_timeout(&self, timeout: Duration) -> Option<Arc<MetricsSnapshot>> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next snapshot if one is waiting.
    pub fn try_next(&self) -> Option<Arc<MetricsSnapshot>> {
        self.rx.try_recv().ok()
    }
}

impl Iterator for SnapshotStream {
    type Item = Arc<MetricsSnapshot>;

    fn next(&mut self) -> Option<Arc<MetricsSnapshot>> {
        self.rx.recv().ok()
    }
}

impl JobHandle {
    /// The latest epoch's snapshot (None before the first epoch ends).
    pub fn latest(&self) -> Option<Arc<MetricsSnapshot>> {
        self.shared.latest.lock().clone()
    }

    /// Subscribes to the snapshots of the epochs that end from now on.
    pub fn snapshots(&self) -> SnapshotStream {
        let (tx, rx) = crossbeam_channel::unbounded();
        if self.shared.running.load(Ordering::Acquire) {
            self.shared.subscribers.lock().push(tx);
        }
        SnapshotStream { rx }
    }

    /// The configuration in force.
    pub fn config(&self) -> JobConfig {
        self.shared.config.lock().clone()
    }

    /// The in-flight bound (see [`Pipeline::in_flight_bound`]) under the current configuration.
    pub fn in_flight_bound(&self) -> u64 {
        self.bound
    }

    /// Applies `config` while the job runs, through the barrier protocol, and reports the pause.
    /// Stages and edges the configuration leaves out keep their settings. An invalid
    /// configuration is rejected and the job keeps its old one.
    pub fn reconfigure(&self, config: JobConfig) -> Result<ReconfigReport, ReconfigError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands
            .send(Command::Reconfigure(config, tx))
            .map_err(|_| ReconfigError::JobNotRunning)?;
        rx.recv().map_err(|_| ReconfigError::JobNotRunning)?
    }

    /// Stops the sources and lets everything in flight drain; windows fire at end of stream.
    /// Returns at once; [`JobHandle::join`] waits for the end.
    pub fn stop_drain(&self) {
        let _ = self.commands.send(Command::StopDrain);
    }

    /// Stops every thread promptly, dropping data in flight (counted in the report).
    /// Returns at once; [`JobHandle::join`] waits for the end.
    pub fn abort(&self) {
        self.env.abort.store(true, Ordering::Relaxed);
        let _ = self.commands.send(Command::Abort);
    }

    /// True once the job has ended.
    pub fn is_finished(&self) -> bool {
        self.controller.as_ref().is_none_or(|c| c.is_finished())
    }

    /// Waits for the job to end: its final report, or why it failed.
    pub fn join(mut self) -> Result<JobReport, JobError> {
        self.join_controller()
    }

    fn join_controller(&mut self) -> Result<JobReport, JobError> {
        match self.controller.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(JobError::Internal("the controller thread panicked".into()))
            }),
            None => Err(JobError::Internal("the job was already joined".into())),
        }
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if self.controller.is_some() {
            self.abort();
            let _ = self.join_controller();
        }
    }
}

/// Totals of one stage over the whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage name.
    pub name: String,
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
}

/// Totals of one source over the whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// Stage name.
    pub name: String,
    /// Events its schedule made due.
    pub offered: u64,
    /// Events it emitted.
    pub emitted: u64,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// Wall-clock run time.
    pub duration: Duration,
    /// Epoch snapshots published (the last, partial epoch included).
    pub epochs: u64,
    /// Per stage, in build order.
    pub stages: Vec<StageReport>,
    /// Per source stage.
    pub sources: Vec<SourceReport>,
    /// Latency over the whole job.
    pub latency: LatencyMetrics,
    /// Every reconfiguration applied.
    pub reconfigurations: Vec<ReconfigReport>,
    /// The configuration at the end.
    pub final_config: JobConfig,
    /// True if the job was aborted.
    pub aborted: bool,
    /// Records in flight that an abort discarded.
    pub dropped_records: u64,
    /// Threads still stuck in user code after the abort grace period; they were left behind.
    pub detached_threads: usize,
}

impl JobReport {
    /// The totals of stage `name`.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }
}
