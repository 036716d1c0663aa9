//! [`SimEnv`]: a queueing model of a workload's pipeline, epoch by epoch, producing the same
//! [`MetricsSnapshot`]s the engine does — thousands of epochs per second.
//!
//! The model, per stage `i` with `p` workers:
//! - a worker serves a record in `s = (cpu + wait + batch_wait / b_eff) / rate_factor +
//!   overhead` µs, where `b_eff` is the batch that actually forms (partial ones flushed after
//!   the flush timeout at low rates; batches grow past that, up to full ones, only behind a
//!   channel that is full — a stage with a per-batch cost that falls behind works at
//!   flush-sized batches until its channel fills);
//! - the stage absorbs at most `C = μ · (1 / share)^α` records/s, where `μ = 1e6 / s`, `share`
//!   is the input share of its busiest worker (`1/p` for round-robin edges; for hash edges the
//!   busiest worker's share of the Zipf key distribution, from the engine's own key-group
//!   assignment) and `α ≤ 1` captures sub-linear scaling;
//! - CPU work is limited by the machine's cores over all stages together;
//! - the source emits what its schedule offers plus backlog, up to the pipeline's capacity; the
//!   rest stays in the backlog, and latency counts the time events wait in it and in the
//!   buffers ahead of a bottleneck (what is still due or queued at the end of an epoch, over the
//!   rate it was offered at: Little's law), in a busy worker's queue (M/D/1), for batches to
//!   fill, and to be served.
//!
//! [`SimParams`] holds the constants calibrated from recorded engine snapshots
//! ([`crate::calibrate`]).

mod model;
mod params;

use std::f64::consts::TAU;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rheo_engine::config::{EdgeConfig, StageConfig};
use rheo_engine::metrics::{
    EdgeMetrics, HostMetrics, LatencyMetrics, ReconfigSummary, SourceMetrics, StageKind,
    StageMetrics,
};
use rheo_engine::partition::Partition;
use rheo_engine::source::RateProfile;
use rheo_engine::{JobConfig, MetricsSnapshot};

use super::{EnvError, Environment};
use crate::spec::{SINK, SOURCE, Workload};

pub use model::{Carry, EpochOutcome, Model, Reconfiguration};
pub use params::SimParams;

/// A simulated run of a workload (cloning it forks the run: the clone continues from the same
/// state with the same noise to come).
#[derive(Clone)]
pub struct SimEnv {
    model: Model,
    config: JobConfig,
    rng: SmallRng,
    epoch: usize,
    epochs: usize,
    carry: Carry,
    offered_total: f64,
    emitted_total: f64,
    generation: u64,
    /// How the next epoch starts with the change applied since the last one, if any.
    change: Option<Reconfiguration>,
    last_capacity: f64,
    rate_shift_s: f64,
}

impl SimEnv {
    /// A run of `workload` from its initial configuration; `seed` drives the noise.
    pub fn new(workload: &Workload, params: SimParams, seed: u64) -> SimEnv {
        SimEnv {
            config: initial_config(workload),
            model: Model::new(workload, params),
            rng: SmallRng::seed_from_u64(seed ^ 0x005e_ed0f_5111),
            epoch: 0,
            epochs: workload.epochs(),
            carry: Carry::default(),
            offered_total: 0.0,
            emitted_total: 0.0,
            generation: 0,
            change: None,
            last_capacity: f64::INFINITY,
            rate_shift_s: 0.0,
        }
    }

    /// The same run starting from `config` instead of the workload's initial configuration
    /// (training starts some runs from random configurations, so the policy also learns to
    /// lower stages that have too many workers).
    pub fn starting_from(mut self, config: JobConfig) -> SimEnv {
        self.config = config;
        self
    }

    /// The same run with the source's rate profile `shift_s` seconds ahead: the run starts
    /// where the profile is at `shift_s` (training shifts runs so the policy cannot learn a
    /// workload's schedule by the clock and must react to what it observes).
    pub fn with_rate_shift(mut self, shift_s: f64) -> SimEnv {
        self.rate_shift_s = shift_s.max(0.0);
        self
    }

    /// The same run with the source asking for `profile` instead of the spec's rate profile
    /// (training varies the shape of the load on each pipeline; the model's constants do not
    /// depend on it).
    pub fn with_rate_profile(mut self, profile: RateProfile) -> SimEnv {
        self.model.workload.source.rate = profile;
        self
    }

    /// The model behind the run.
    pub fn model(&self) -> &Model {
        &self.model
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = self.rng.random::<f64>().max(1e-12);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// The configuration a workload starts from, as the engine would build it.
pub fn initial_config(w: &Workload) -> JobConfig {
    let mut c = JobConfig::default();
    c.stages
        .insert(SOURCE.into(), StageConfig { parallelism: 1 });
    c.stages.insert(SINK.into(), StageConfig { parallelism: 1 });
    let edge = EdgeConfig {
        capacity: w.initial.buffer,
        batch_size: w.initial.batch_size,
    };
    let mut prev = SOURCE.to_owned();
    for s in &w.stages {
        c.stages.insert(
            s.name.clone(),
            StageConfig {
                parallelism: w.initial.parallelism,
            },
        );
        c.edges.insert(format!("{prev}->{}", s.name), edge);
        prev = s.name.clone();
    }
    c.edges.insert(format!("{prev}->{SINK}"), edge);
    c
}

impl Environment for SimEnv {
    fn backend(&self) -> &'static str {
        "sim"
    }

    fn observe(&mut self) -> Result<Option<MetricsSnapshot>, EnvError> {
        if self.epoch >= self.epochs {
            return Ok(None);
        }
        let w = self.model.workload.clone();
        let e = w.epoch_s;
        let (t0, t1) = (self.epoch as f64 * e, (self.epoch + 1) as f64 * e);
        let shift = self.rate_shift_s;
        let offered = w.source.rate.offered_at(t1 + shift) - w.source.rate.offered_at(t0 + shift);
        let sigma = self.model.params.noise;
        let noise: Vec<f64> = (0..w.stages.len())
            .map(|_| (sigma * self.normal()).exp())
            .collect();
        // Drawn only when stalls are modelled, so runs without them keep their noise.
        let stalled = match self.model.params.source_stall {
            mean if mean > 0.0 => {
                let u: f64 = self.rng.random::<f64>().max(1e-12);
                offered * (-mean * u.ln()).min(0.5)
            }
            _ => 0.0,
        };
        let due = offered - stalled;
        let mut out = match self.change.take() {
            Some(change) => {
                self.model
                    .epoch_after_change(&self.config, due, self.carry, &noise, change)
            }
            None => self.model.epoch(&self.config, due, self.carry, &noise),
        };
        out.backlog += stalled;
        self.last_capacity = out.capacity;
        self.carry = out.carry();
        self.offered_total += offered;
        self.emitted_total += out.emitted;
        let snapshot = self.snapshot(&out, offered, t1);
        self.epoch += 1;
        Ok(Some(snapshot))
    }

    fn apply(&mut self, config: &JobConfig) -> Result<(), EnvError> {
        if *config != self.config {
            // Priced now, while the old configuration and its last epoch's capacity are at
            // hand.
            let noise = vec![1.0; self.model.workload.stages.len()];
            let capacity = self.last_capacity;
            self.change = Some(
                self.model
                    .reconfiguration(&self.config, config, &noise, |_| capacity),
            );
            self.config = config.clone();
            self.generation += 1;
        }
        Ok(())
    }
}

impl SimEnv {
    fn snapshot(&self, out: &EpochOutcome, offered: f64, t_end: f64) -> MetricsSnapshot {
        let w = &self.model.workload;
        let e = w.epoch_s;
        let rate = out.processed / e;
        let emitted_rate = out.emitted / e;
        let par = |name: &str| self.config.parallelism(name).unwrap_or(1);
        let mut stages = Vec::with_capacity(w.stages.len() + 2);
        let mut source = StageMetrics::empty(SOURCE, StageKind::Source, 1);
        source.records_out = out.emitted as u64;
        source.observed_output_rate = emitted_rate;
        source.busy_fraction = (emitted_rate * self.model.params.source_overhead_us / 1e6).min(1.0);
        source.idle_fraction = 1.0 - source.busy_fraction;
        stages.push(source);
        let mut edges = Vec::new();
        for (i, s) in w.stages.iter().enumerate() {
            let p = par(&s.name);
            let input = rate * out.gain[i];
            let mut m = StageMetrics::empty(&s.name, StageKind::Operator, p);
            let u = out.busy[i];
            m.records_in = (input * e) as u64;
            m.records_out = (input * s.selectivity * e) as u64;
            m.mean_input_batch = out.batch[i];
            m.busy_fraction = u;
            m.max_worker_busy_fraction = out.hottest[i].max(u);
            m.blocked_fraction = out.waiting[i].0;
            m.idle_fraction = out.waiting[i].1;
            m.busy_s = u * p as f64 * e;
            m.blocked_s = m.blocked_fraction * p as f64 * e;
            m.idle_s = m.idle_fraction * p as f64 * e;
            m.cpu_s = input * out.cpu_us[i] / 1e6 * e;
            m.cpu_fraction = m.cpu_s / (e * p as f64);
            m.observed_input_rate = input;
            m.observed_output_rate = input * s.selectivity;
            if input > 0.0 {
                m.true_processing_rate = out.mu[i] * p as f64;
                m.true_output_rate = out.mu[i] * p as f64 * s.selectivity;
            }
            m.keyed_state_keys = if s.keyed_state {
                w.source.key_space.min(self.emitted_total as u64)
            } else {
                0
            };
            let name = self.model.edge_into(i);
            let ec = self.config.edges.get(&name).copied().unwrap_or(EdgeConfig {
                capacity: w.initial.buffer,
                batch_size: w.initial.batch_size,
            });
            m.input_capacity = ec.capacity * p;
            m.input_occupancy = out.occupancy[i];
            m.input_queue = out.occupancy[i] * (ec.capacity * p) as f64;
            let from = if i == 0 {
                SOURCE.to_owned()
            } else {
                w.stages[i - 1].name.clone()
            };
            edges.push(EdgeMetrics {
                name,
                from,
                to: s.name.clone(),
                partition: s.partition,
                capacity: ec.capacity,
                batch_size: ec.batch_size,
                channels: p,
                queue_mean: m.input_queue,
                queue_max: (out.occupancy[i] * ec.capacity as f64).ceil() as usize,
                occupancy: out.occupancy[i],
            });
            stages.push(m);
        }
        let sink_rate = rate * out.gain[w.stages.len()];
        let mut sink = StageMetrics::empty(SINK, StageKind::Sink, 1);
        sink.records_in = (sink_rate * e) as u64;
        sink.observed_input_rate = sink_rate;
        sink.idle_fraction = 1.0;
        stages.push(sink);
        let sink_edge = self.model.sink_edge();
        if let Some(ec) = self.config.edges.get(&sink_edge) {
            edges.push(EdgeMetrics {
                name: sink_edge,
                from: w
                    .stages
                    .last()
                    .map_or(SOURCE.to_owned(), |s| s.name.clone()),
                to: SINK.into(),
                partition: Partition::Forward,
                capacity: ec.capacity,
                batch_size: ec.batch_size,
                channels: 1,
                queue_mean: 0.0,
                queue_max: 0,
                occupancy: 0.0,
            });
        }
        // The rate in force just before the epoch ended (not the next step's).
        let target_rate = w.source.rate.rate_at(t_end + self.rate_shift_s - 1e-9);
        let records = (sink_rate * e) as u64;
        let p99 = out.p99_ms;
        MetricsSnapshot {
            epoch: self.epoch as u64,
            time_s: t_end,
            epoch_s: e,
            generation: self.generation,
            config: self.config.clone(),
            stages,
            edges,
            sources: vec![SourceMetrics {
                name: SOURCE.into(),
                offered: offered as u64,
                emitted: out.emitted as u64,
                backlog: out.backlog as u64,
                offered_rate: offered / e,
                emitted_rate,
                target_rate,
                offered_total: self.offered_total as u64,
                emitted_total: self.emitted_total as u64,
            }],
            latency: LatencyMetrics {
                count: records,
                p50_ms: p99 * 0.5,
                p95_ms: p99 * 0.85,
                p99_ms: p99,
                max_ms: p99 * 1.2,
                mean_ms: p99 * 0.55,
            },
            last_reconfiguration: (self.generation > 0).then_some(ReconfigSummary {
                generation: self.generation,
                pause_ms: out.pause_s * 1e3,
                drain_ms: (out.pause_s - 0.001).max(0.0) * 1e3,
            }),
            reconfigurations: self.generation,
            host: HostMetrics {
                cores: self.model.params.cores as usize,
                process_cpu_s: 0.0,
                process_cpu_fraction: 0.0,
            },
        }
    }
}
