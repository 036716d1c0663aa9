//! A running job: the [`JobHandle`] an application holds, and the controller thread behind it.
//!
//! The controller owns the job's lifecycle. It spawns the workers of each generation, samples
//! queues, publishes a snapshot per epoch, runs reconfigurations (see [`crate::reconfig`]),
//! turns "all sources exhausted" or [`JobHandle::stop_drain`] into end-of-stream, and on abort
//! or failure stops every thread — giving up, after a grace period, on threads stuck in user
//! code rather than hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::channel::Timestamp;
use crate::config::{JobConfig, JobOptions};
use crate::error::{JobError, ReconfigError};
use crate::graph::{AnyBox, Runner};
use crate::metrics::collector::{Collector, EdgeInfo, StageInfo};
use crate::metrics::counters::WorkerCounters;
use crate::metrics::{
    JsonLinesWriter, LatencyMetrics, MetricsSnapshot, ReconfigSummary, StageKind,
};
use crate::operator::WorkerInfo;
use crate::pipeline::Pipeline;
use crate::reconfig::ReconfigReport;
use crate::worker::{SourceCommand, SourceSetup, WorkerEnv, WorkerEvent, WorkerSetup};

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

struct SourceWorker {
    stage: usize,
    commands: Sender<SourceCommand>,
}

pub(crate) struct Controller {
    pub(crate) pipeline: Pipeline,
    options: JobOptions,
    pub(crate) env: Arc<WorkerEnv>,
    pub(crate) events: Receiver<WorkerEvent>,
    pub(crate) config: JobConfig,
    pub(crate) generation: u64,
    pub(crate) collector: Collector,
    sources: Vec<SourceWorker>,
    handles: Vec<JoinHandle<()>>,
    /// Operator workers of the current generation still running.
    pub(crate) live_operators: usize,
    /// Source workers still running.
    live_sources: usize,
    pub(crate) exhausted: usize,
    /// Per stage: the input watermark its next generation starts from.
    pub(crate) watermarks: Vec<Timestamp>,
    pub(crate) reconfigurations: Vec<ReconfigReport>,
    pub(crate) last_reconfiguration: Option<ReconfigSummary>,
    pub(crate) failure: Option<JobError>,
    finishing: bool,
    aborted: bool,
    dropped: u64,
    detached: usize,
    epochs: u64,
    jsonl: Option<JsonLinesWriter>,
    shared: Arc<Shared>,
}

pub(crate) fn start(
    pipeline: Pipeline,
    config: JobConfig,
    options: JobOptions,
) -> Result<JobHandle, JobError> {
    let (events_tx, events) = crossbeam_channel::unbounded();
    let env = Arc::new(WorkerEnv {
        abort: AtomicBool::new(false),
        start: Instant::now(),
        events: events_tx,
        flush_timeout_ns: options.flush_timeout.as_nanos() as u64,
        watermark_interval_ns: options.watermark_interval.as_nanos() as u64,
        timing: options.metrics,
    });
    let stage_info = pipeline
        .stages
        .iter()
        .map(|s| StageInfo {
            name: s.name.to_string(),
            kind: s.kind,
            inputs: s.inputs.clone(),
        })
        .collect();
    let edge_info = pipeline
        .edges
        .iter()
        .map(|e| EdgeInfo {
            name: e.name.clone(),
            from: pipeline.stages[e.from].name.to_string(),
            to: pipeline.stages[e.to].name.to_string(),
            partition: e.partition,
        })
        .collect();
    let jsonl = options
        .metrics_jsonl
        .as_ref()
        .map(JsonLinesWriter::create)
        .transpose()?;
    let shared = Arc::new(Shared {
        latest: Mutex::new(None),
        subscribers: Mutex::new(Vec::new()),
        config: Mutex::new(config.clone()),
        running: AtomicBool::new(true),
    });
    let bound = pipeline.in_flight_bound(&config);
    let n_stages = pipeline.stages.len();
    let mut ctl = Controller {
        pipeline,
        options,
        env: env.clone(),
        events,
        config,
        generation: 0,
        collector: Collector::new(stage_info, edge_info, 0),
        sources: Vec::new(),
        handles: Vec::new(),
        live_operators: 0,
        live_sources: 0,
        exhausted: 0,
        watermarks: vec![0; n_stages],
        reconfigurations: Vec::new(),
        last_reconfiguration: None,
        failure: None,
        finishing: false,
        aborted: false,
        dropped: 0,
        detached: 0,
        epochs: 0,
        jsonl,
        shared: shared.clone(),
    };
    let states = ctl.initial_states();
    let started = ctl
        .spawn_generation(states)
        .and_then(|outputs| ctl.spawn_sources(outputs));
    if let Err(e) = started {
        ctl.stop_all();
        return Err(e);
    }
    let (commands, command_rx) = crossbeam_channel::unbounded();
    let controller = std::thread::Builder::new()
        .name("rheo-controller".into())
        .spawn(move || ctl.run(command_rx))
        .map_err(|source| {
            env.abort.store(true, Ordering::Relaxed);
            JobError::Spawn {
                stage: "(controller)".into(),
                source,
            }
        })?;
    Ok(JobHandle {
        commands,
        shared,
        env,
        controller: Some(controller),
        bound,
    })
}

impl Controller {
    fn parallelism(&self, stage: usize) -> usize {
        let s = &self.pipeline.stages[stage];
        self.config.parallelism(&s.name).unwrap_or(s.parallelism)
    }

    fn initial_states(&self) -> Vec<Vec<AnyBox>> {
        self.pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| match &s.runner {
                Runner::Operator(r) => r.initial_states(self.parallelism(i), s.key_groups),
                Runner::Source(_) => Vec::new(),
            })
            .collect()
    }

    /// Builds the channels of a new generation and starts its operator workers with `states`
    /// (per stage, per worker). Returns the output writers of every source worker.
    pub(crate) fn spawn_generation(
        &mut self,
        states: Vec<Vec<AnyBox>>,
    ) -> Result<Vec<Vec<Vec<AnyBox>>>, JobError> {
        let internal = |what: &str| JobError::Internal(format!("building generation: {what}"));
        // Threads of earlier generations have exited; forget their handles.
        self.handles.retain(|h| !h.is_finished());
        let mut channels = Vec::with_capacity(self.pipeline.edges.len());
        let mut receivers: Vec<Vec<Option<AnyBox>>> = Vec::with_capacity(self.pipeline.edges.len());
        for (i, e) in self.pipeline.edges.iter().enumerate() {
            let cfg = self
                .config
                .edges
                .get(&e.name)
                .copied()
                .ok_or_else(|| internal("edge without configuration"))?;
            let p_to = self.parallelism(e.to);
            let mut ch = e.factory.channels(p_to, cfg.capacity);
            self.collector.install_probes(
                i,
                std::mem::take(&mut ch.probes),
                cfg.capacity,
                cfg.batch_size,
            );
            receivers.push(
                std::mem::take(&mut ch.receivers)
                    .into_iter()
                    .map(Some)
                    .collect(),
            );
            channels.push(ch);
        }
        let writers_for =
            |ctl: &Controller, stage: usize, worker: usize| -> Result<Vec<AnyBox>, JobError> {
                let s = &ctl.pipeline.stages[stage];
                let p = ctl.parallelism(stage);
                s.outputs
                    .iter()
                    .map(|&e| {
                        let edge = &ctl.pipeline.edges[e];
                        let cfg = ctl
                            .config
                            .edges
                            .get(&edge.name)
                            .copied()
                            .ok_or_else(|| internal("edge without configuration"))?;
                        let groups = ctl.pipeline.stages[edge.to].key_groups;
                        edge.factory
                            .writer(&channels[e], worker, p, cfg.batch_size, groups)
                            .ok_or_else(|| internal("edge writer of unexpected type"))
                    })
                    .collect()
            };
        let mut source_outputs = Vec::new();
        for (stage, stage_states) in states.into_iter().enumerate() {
            let p = self.parallelism(stage);
            let node = &self.pipeline.stages[stage];
            match &node.runner {
                Runner::Source(_) => {
                    let outputs = (0..p)
                        .map(|w| writers_for(self, stage, w))
                        .collect::<Result<Vec<_>, _>>()?;
                    source_outputs.push(outputs);
                }
                Runner::Operator(runner) => {
                    if stage_states.len() != p {
                        return Err(internal("state count differs from parallelism"));
                    }
                    let mut counters = Vec::with_capacity(p);
                    for (w, state) in stage_states.into_iter().enumerate() {
                        let inputs = node
                            .inputs
                            .iter()
                            .map(|&e| {
                                receivers[e][w]
                                    .take()
                                    .ok_or_else(|| internal("receiver taken twice"))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let upstream = node
                            .inputs
                            .iter()
                            .map(|&e| self.parallelism(self.pipeline.edges[e].from))
                            .collect();
                        let c = Arc::new(WorkerCounters::new(node.kind == StageKind::Sink));
                        counters.push(c.clone());
                        let setup = WorkerSetup {
                            stage,
                            info: WorkerInfo {
                                stage: node.name.clone(),
                                index: w,
                                parallelism: p,
                                generation: self.generation,
                            },
                            inputs,
                            upstream,
                            outputs: writers_for(self, stage, w)?,
                            state,
                            watermark: self.watermarks[stage],
                            counters: c,
                            env: self.env.clone(),
                            is_sink: node.kind == StageKind::Sink,
                        };
                        let handle = runner.spawn(setup).map_err(|source| JobError::Spawn {
                            stage: node.name.to_string(),
                            source,
                        })?;
                        self.handles.push(handle);
                        self.live_operators += 1;
                    }
                    self.collector.install_workers(stage, counters);
                }
            }
        }
        Ok(source_outputs)
    }

    /// Largest batch size of a stage's output edges: how many records a source polls at once.
    pub(crate) fn chunk(&self, stage: usize) -> usize {
        self.pipeline.stages[stage]
            .outputs
            .iter()
            .filter_map(|&e| self.config.edges.get(&self.pipeline.edges[e].name))
            .map(|c| c.batch_size)
            .max()
            .unwrap_or(1024)
    }

    fn spawn_sources(&mut self, outputs: Vec<Vec<Vec<AnyBox>>>) -> Result<(), JobError> {
        let source_stages: Vec<usize> = (0..self.pipeline.stages.len())
            .filter(|&s| matches!(self.pipeline.stages[s].runner, Runner::Source(_)))
            .collect();
        for (stage, stage_outputs) in source_stages.into_iter().zip(outputs) {
            let p = stage_outputs.len();
            let mut counters = Vec::with_capacity(p);
            for (w, outs) in stage_outputs.into_iter().enumerate() {
                let (tx, rx) = crossbeam_channel::unbounded();
                let c = Arc::new(WorkerCounters::new(false));
                counters.push(c.clone());
                let node = &self.pipeline.stages[stage];
                let setup = SourceSetup {
                    stage,
                    info: WorkerInfo {
                        stage: node.name.clone(),
                        index: w,
                        parallelism: p,
                        generation: 0,
                    },
                    outputs: outs,
                    chunk: self.chunk(stage),
                    counters: c,
                    env: self.env.clone(),
                    commands: rx,
                };
                let Runner::Source(runner) = &node.runner else {
                    return Err(JobError::Internal(
                        "source stage without a source runner".into(),
                    ));
                };
                let handle = runner.spawn(setup).map_err(|source| JobError::Spawn {
                    stage: node.name.to_string(),
                    source,
                })?;
                self.handles.push(handle);
                self.sources.push(SourceWorker {
                    stage,
                    commands: tx,
                });
                self.live_sources += 1;
            }
            self.collector.install_workers(stage, counters);
        }
        Ok(())
    }

    /// Sends a command to every source worker.
    pub(crate) fn tell_sources(&self, mut command: impl FnMut(usize, usize) -> SourceCommand) {
        let mut index = 0;
        let mut last_stage = usize::MAX;
        for s in &self.sources {
            if s.stage != last_stage {
                index = 0;
                last_stage = s.stage;
            }
            let _ = s.commands.send(command(s.stage, index));
            index += 1;
        }
    }

    pub(crate) fn source_workers(&self) -> usize {
        self.sources.len()
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.finishing && !self.aborted && self.failure.is_none()
    }

    fn run(mut self, commands: Receiver<Command>) -> Result<JobReport, JobError> {
        let started = Instant::now();
        let epoch = self.options.epoch.max(Duration::from_millis(1));
        let sample = self.options.sample_interval.max(Duration::from_millis(1));
        let mut next_epoch = started + epoch;
        let mut next_sample = started + sample;
        let mut commands = commands;
        let events = self.events.clone();
        while self.live_operators + self.live_sources > 0 && !self.aborted {
            let now = Instant::now();
            if now >= next_sample {
                self.collector.sample();
                next_sample = now + sample;
            }
            if now >= next_epoch {
                self.publish_snapshot();
                next_epoch += epoch;
                if next_epoch < now {
                    next_epoch = now + epoch;
                }
            }
            let timeout = next_sample
                .min(next_epoch)
                .saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(commands) -> cmd => match cmd {
                    Ok(Command::Reconfigure(cfg, reply)) => {
                        let result = self.reconfigure(cfg);
                        let _ = reply.send(result);
                        *self.shared.config.lock() = self.config.clone();
                        // Sources may have run out while the barrier was in flight.
                        self.finish_if_exhausted();
                    }
                    Ok(Command::StopDrain) => self.finish_sources(),
                    Ok(Command::Abort) | Err(_) => {
                        commands = crossbeam_channel::never();
                        self.abort();
                    }
                },
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.on_event(event);
                    }
                }
                default(timeout) => {}
            }
            if self.env.abort.load(Ordering::Relaxed) && !self.aborted {
                self.abort();
            }
        }
        self.publish_snapshot();
        self.finish_report(started)
    }

    fn on_event(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Exhausted { stage, worker } => {
                tracing::debug!(stage = %self.pipeline.stages[stage].name, worker, "source exhausted");
                self.exhausted += 1;
                self.finish_if_exhausted();
            }
            WorkerEvent::Finished { stage, worker } => {
                tracing::debug!(stage = %self.pipeline.stages[stage].name, worker, "worker finished");
                self.worker_ended(stage);
            }
            WorkerEvent::Aborted {
                stage,
                worker,
                dropped,
            } => {
                tracing::debug!(stage = %self.pipeline.stages[stage].name, worker, dropped, "worker aborted");
                self.dropped += dropped;
                self.worker_ended(stage);
            }
            WorkerEvent::Failed {
                stage,
                worker,
                message,
            } => {
                self.worker_ended(stage);
                self.fail(stage, worker, message);
            }
            WorkerEvent::Retired { stage, worker, .. } | WorkerEvent::Paused { stage, worker } => {
                // Only expected inside a reconfiguration.
                tracing::warn!(stage = %self.pipeline.stages[stage].name, worker, "unexpected barrier event outside a reconfiguration");
            }
        }
    }

    pub(crate) fn worker_ended(&mut self, stage: usize) {
        if self.pipeline.stages[stage].kind == StageKind::Source {
            self.live_sources = self.live_sources.saturating_sub(1);
        } else {
            self.live_operators = self.live_operators.saturating_sub(1);
        }
    }

    /// Records the first failure and stops the job.
    pub(crate) fn fail(&mut self, stage: usize, worker: usize, message: String) {
        if self.failure.is_none() {
            self.failure = Some(JobError::OperatorPanicked {
                stage: self.pipeline.stages[stage].name.to_string(),
                worker,
                message,
            });
        }
        self.abort();
    }

    /// Ends the stream once every source has run out.
    fn finish_if_exhausted(&mut self) {
        if self.exhausted == self.sources.len() && self.is_running() {
            self.finish_sources();
        }
    }

    fn finish_sources(&mut self) {
        if !self.finishing {
            self.finishing = true;
            self.tell_sources(|_, _| SourceCommand::Finish);
        }
    }

    /// Stops every thread; waits up to the abort grace for them, then leaves the stuck ones.
    pub(crate) fn abort(&mut self) {
        if self.aborted {
            return;
        }
        self.aborted = true;
        self.env.abort.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + self.options.abort_grace;
        while self.live_operators + self.live_sources > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.events.recv_timeout(left) {
                Ok(WorkerEvent::Aborted { stage, dropped, .. }) => {
                    self.dropped += dropped;
                    self.worker_ended(stage);
                }
                Ok(WorkerEvent::Failed { stage, .. })
                | Ok(WorkerEvent::Finished { stage, .. })
                | Ok(WorkerEvent::Retired { stage, .. }) => self.worker_ended(stage),
                Ok(WorkerEvent::Paused { .. }) | Ok(WorkerEvent::Exhausted { .. }) => {}
                Err(_) => break,
            }
        }
        self.detached = self.live_operators + self.live_sources;
        self.dropped += self.collector.drain_channels();
    }

    /// Stops the threads started so far (start-up failed).
    fn stop_all(&mut self) {
        self.abort();
        self.tell_sources(|_, _| SourceCommand::Finish);
    }

    fn publish_snapshot(&mut self) {
        let now = self.env.now();
        let snapshot = Arc::new(self.collector.snapshot(
            now,
            &self.config,
            self.generation,
            self.last_reconfiguration,
            self.reconfigurations.len() as u64,
        ));
        self.epochs += 1;
        if let Some(w) = &mut self.jsonl
            && let Err(e) = w.write(&snapshot)
        {
            tracing::error!("{e}; metrics log disabled");
            self.jsonl = None;
        }
        self.shared
            .subscribers
            .lock()
            .retain(|tx| tx.send(snapshot.clone()).is_ok());
        *self.shared.latest.lock() = Some(snapshot);
    }

    fn finish_report(mut self, started: Instant) -> Result<JobReport, JobError> {
        self.shared.running.store(false, Ordering::Release);
        self.shared.subscribers.lock().clear();
        // Join what has exited; threads stuck in user code are left behind (counted).
        for handle in self.handles.drain(..) {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let totals = self.collector.totals();
        let stages = self
            .pipeline
            .stages
            .iter()
            .zip(&totals)
            .map(|(s, t)| StageReport {
                name: s.name.to_string(),
                records_in: t.records_in,
                records_out: t.records_out,
            })
            .collect();
        let sources = self
            .pipeline
            .stages
            .iter()
            .zip(&totals)
            .filter(|(s, _)| s.kind == StageKind::Source)
            .map(|(s, t)| SourceReport {
                name: s.name.to_string(),
                offered: t.offered,
                emitted: t.records_out,
            })
            .collect();
        Ok(JobReport {
            duration: started.elapsed(),
            epochs: self.epochs,
            stages,
            sources,
            latency: self.collector.job_latency(),
            reconfigurations: std::mem::take(&mut self.reconfigurations),
            final_config: self.config.clone(),
            aborted: self.aborted,
            dropped_records: self.dropped,
            detached_threads: self.detached,
        })
    }
}
