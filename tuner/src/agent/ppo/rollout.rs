//! Rollouts: simulated runs stepped in lockstep, one batched policy forward per step.

use burn::tensor::Device;
use rand::Rng;
use rand::rngs::SmallRng;
use rayon::prelude::*;
use rheo_engine::{JobConfig, MetricsSnapshot};

use crate::action::clamp;
use crate::agent::actions::proposal;
use crate::agent::features::{FEATURES, FeatureStats, History, observe};
use crate::agent::policy::{OUTPUTS, PolicyNet, sample};
use crate::agent::tuner::choose;
use crate::env::{EnvError, Environment, SimEnv, SimParams};
use crate::scoreboard::context;
use crate::tuners::{Ds2, Ds2Knobs, TuneContext, Tuner};

use super::*;

/// The constants of `params` varied by up to `width` on a log scale.
pub fn randomised(params: &SimParams, width: f64, rng: &mut SmallRng) -> SimParams {
    let mut p = params.clone();
    let mut jitter = |x: &mut f64| *x *= (rng.random_range(-width..=width)).exp();
    p.rate_factor.iter_mut().for_each(&mut jitter);
    jitter(&mut p.latency_factor);
    jitter(&mut p.overhead_us);
    for a in &mut p.scaling {
        *a = (*a * (rng.random_range(-width..=width)).exp()).clamp(0.3, 1.0);
    }
    p.noise *= rng.random_range(0.5..1.5);
    p
}

/// One simulated run in progress.
pub(super) struct Episode {
    pub(super) env: SimEnv,
    pub(super) cx: TuneContext,
    pub(super) history: History,
    pub(super) previous: Option<JobConfig>,
    pub(super) rng: SmallRng,
    pub(super) steps: Vec<Transition>,
    pub(super) scores: Vec<f64>,
    /// The snapshot waiting for a decision.
    pub(super) current: Option<MetricsSnapshot>,
    /// The stages the last decision moved, in its order.
    pub(super) stage_names: Vec<String>,
    pub(super) done: bool,
    /// Tuned DS2's objective on the same run, when training holds the policy to it.
    pub(super) ds2_objective: Option<f64>,
}

impl Episode {
    /// Observes the next epoch: scores it, credits the previous step, keeps the snapshot.
    pub(super) fn observe(&mut self) -> Result<(), EnvError> {
        match self.env.observe()? {
            Some(snapshot) => {
                let changed = self
                    .previous
                    .as_ref()
                    .is_some_and(|p| *p != snapshot.config);
                let epoch = self.cx.objective.score(&snapshot, changed);
                let score = epoch.reward;
                self.scores.push(score);
                if let Some(last) = self.steps.last_mut() {
                    last.reward = score as f32;
                    last.credit_stages(
                        &self.cx.objective,
                        &epoch,
                        self.previous.as_ref(),
                        &snapshot.config,
                        &self.stage_names,
                    );
                }
                self.previous = Some(snapshot.config.clone());
                self.current = Some(snapshot);
            }
            None => {
                self.done = true;
                self.current = None;
            }
        }
        Ok(())
    }
}

/// Collects feature statistics from DS2-driven runs of every workload.
pub fn feature_stats(
    workloads: &[TrainingWorkload],
    seeds: &[u64],
) -> Result<FeatureStats, EnvError> {
    let mut stats = FeatureStats::default();
    for w in workloads {
        for &seed in seeds {
            let cx = context(&w.workload);
            let mut env = SimEnv::new(&w.workload, w.params.clone(), seed);
            let mut ds2 = Ds2::new(Ds2Knobs::default());
            let mut history = History::default();
            while let Some(snapshot) = env.observe()? {
                let obs = observe(&snapshot, &cx, &history);
                for row in &obs.rows {
                    stats.add(row);
                }
                history.update_with(&snapshot, &obs);
                env.apply(&ds2.decide(&snapshot, &cx).config)?;
            }
        }
    }
    Ok(stats)
}

/// Runs every episode to its end, sampling moves from the policy.
pub(super) fn rollout(
    episodes: &mut [Episode],
    net: &PolicyNet,
    device: &Device,
    stats: &FeatureStats,
) -> Result<(), EnvError> {
    loop {
        episodes
            .par_iter_mut()
            .filter(|e| !e.done)
            .try_for_each(|e| e.observe())?;
        let live: Vec<usize> = (0..episodes.len())
            .filter(|&i| episodes[i].current.is_some())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let mut observations = Vec::with_capacity(live.len());
        let mut rows = Vec::new();
        for &i in &live {
            let e = &episodes[i];
            let Some(snapshot) = &e.current else { continue };
            let obs = observe(snapshot, &e.cx, &e.history);
            let normalised: Vec<[f32; FEATURES]> =
                obs.rows.iter().map(|r| stats.normalise(r)).collect();
            rows.extend_from_slice(&normalised);
            observations.push((i, obs, normalised));
        }
        let outputs = net.infer(&rows, device);
        let mut at = 0;
        for (i, obs, normalised) in observations {
            let e = &mut episodes[i];
            let Some(snapshot) = e.current.take() else {
                continue;
            };
            let n = obs.stages.len();
            let out: &[[f32; OUTPUTS]] = &outputs[at..at + n];
            at += n;
            let rng = &mut e.rng;
            let (_, t) = choose(&obs, &snapshot.config, normalised, out, |p| {
                sample(p, rng.random())
            });
            let next = clamp(
                &snapshot.config,
                &proposal(&obs, &snapshot.config, &t.actions),
                &e.cx.bounds,
            );
            e.history.update_with(&snapshot, &obs);
            e.env.apply(&next.config)?;
            e.stage_names.clone_from(&obs.stages);
            e.steps.push(t);
        }
    }
}
