//! The controller thread: starts a job, runs its epochs, commands and lifecycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::channel::Timestamp;
use crate::config::{JobConfig, JobOptions};
use crate::error::JobError;
use crate::metrics::collector::{Collector, EdgeInfo, StageInfo};
use crate::metrics::{JsonLinesWriter, ReconfigSummary, StageKind};
use crate::pipeline::Pipeline;
use crate::reconfig::ReconfigReport;
use crate::worker::{SourceCommand, WorkerEnv, WorkerEvent};

use super::*;

pub(super) struct SourceWorker {
    pub(super) stage: usize,
    pub(super) commands: Sender<SourceCommand>,
}

pub(crate) struct Controller {
    pub(crate) pipeline: Pipeline,
    pub(crate) options: JobOptions,
    pub(crate) env: Arc<WorkerEnv>,
    pub(crate) events: Receiver<WorkerEvent>,
    pub(crate) config: JobConfig,
    pub(crate) generation: u64,
    pub(crate) collector: Collector,
    pub(super) sources: Vec<SourceWorker>,
    pub(super) handles: Vec<JoinHandle<()>>,
    /// Operator workers of the current generation still running.
    pub(crate) live_operators: usize,
    /// Source workers still running.
    pub(super) live_sources: usize,
    pub(crate) exhausted: usize,
    /// Per stage: the input watermark its next generation starts from.
    pub(crate) watermarks: Vec<Timestamp>,
    pub(crate) reconfigurations: Vec<ReconfigReport>,
    pub(crate) last_reconfiguration: Option<ReconfigSummary>,
    pub(crate) failure: Option<JobError>,
    pub(super) finishing: bool,
    pub(super) aborted: bool,
    pub(super) dropped: u64,
    pub(super) detached: usize,
    pub(super) epochs: u64,
    /// When the current epoch ends and its snapshot is due.
    pub(crate) next_epoch: Instant,
    pub(super) jsonl: Option<JsonLinesWriter>,
    pub(super) shared: Arc<Shared>,
}

pub(crate) fn start(
    pipeline: Pipeline,
    config: JobConfig,
    options: JobOptions,
) -> Result<JobHandle, JobError> {
    let (events_tx, events) = crossbeam_channel::unbounded();
    let env = Arc::new(WorkerEnv {
        abort: AtomicBool::new(false),
        handing_over: AtomicBool::new(false),
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
        next_epoch: Instant::now(),
        jsonl,
        shared: shared.clone(),
    };
    let states = ctl.initial_states();
    let started = ctl
        .spawn_generation(states, Vec::new())
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
    pub(crate) fn source_workers(&self) -> usize {
        self.sources.len()
    }

    pub(crate) fn is_running(&self) -> bool {
        !self.finishing && !self.aborted && self.failure.is_none()
    }

    fn run(mut self, commands: Receiver<Command>) -> Result<JobReport, JobError> {
        let started = Instant::now();
        let sample = self.options.sample_interval.max(Duration::from_millis(1));
        self.next_epoch = started + self.epoch_length();
        let mut next_sample = started + sample;
        let mut commands = commands;
        let events = self.events.clone();
        while self.live_operators + self.live_sources > 0 && !self.aborted {
            let now = Instant::now();
            if now >= next_sample {
                self.collector.sample();
                next_sample = now + sample;
            }
            self.publish_snapshot_if_due(now);
            let timeout = next_sample
                .min(self.next_epoch)
                .saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(commands) -> cmd => match cmd {
                    Ok(Command::Reconfigure(cfg, reply)) => {
                        let result = self.reconfigure(cfg);
                        // Published before the reply, so a caller that reads the job's
                        // configuration once `reconfigure` returns sees the change.
                        *self.shared.config.lock() = self.config.clone();
                        let _ = reply.send(result);
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
            WorkerEvent::Retired { stage, worker, .. }
            | WorkerEvent::Paused { stage, worker, .. } => {
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

    /// The epoch's length (at least a millisecond).
    fn epoch_length(&self) -> Duration {
        self.options.epoch.max(Duration::from_millis(1))
    }

    /// Publishes the current epoch's snapshot if its end (`next_epoch`) has passed by `now`,
    /// and schedules the next one. Epochs keep their cadence (the shipped workloads change rate
    /// on boundaries), but a boundary less than half an epoch after a late publication (an
    /// epoch cut at a reconfiguration's resume) is skipped: such a sliver's few records would
    /// make rates of noise, so the next epoch runs to the boundary after it.
    pub(crate) fn publish_snapshot_if_due(&mut self, now: Instant) {
        if now < self.next_epoch {
            return;
        }
        self.publish_snapshot();
        let epoch = self.epoch_length();
        let published = Instant::now();
        while self.next_epoch < published + epoch / 2 {
            self.next_epoch += epoch;
        }
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
