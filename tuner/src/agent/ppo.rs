//! PPO on the simulator: many simulated workloads stepped in lockstep (in parallel with
//! rayon), one batched policy forward per step, generalised advantage estimation, the clipped
//! objective, a value loss, an entropy bonus, and global-norm gradient clipping.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::{Deserialize, Serialize};

use super::actions::{StageAction, masks, proposal};
use super::features::{FEATURES, FeatureStats, History, observe};
use super::policy::{
    BUFFER_ACTIONS, OUTPUTS, PARALLELISM_ACTIONS, PolicyNet, masked_softmax, sample,
};
use crate::action::clamp;
use crate::env::{EnvError, Environment, SimEnv, SimParams};
use crate::scoreboard::context;
use crate::spec::Workload;
use crate::tuners::{Ds2, Ds2Knobs, TuneContext, Tuner};

/// PPO's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoConfig {
    /// Training iterations (rollout + update).
    pub iterations: usize,
    /// Simulated runs per workload per iteration.
    pub envs_per_workload: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE's λ.
    pub lambda: f64,
    /// Ratio clip ε.
    pub clip: f64,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Steps per minibatch.
    pub minibatch: usize,
    /// Entropy bonus.
    pub entropy: f64,
    /// Value-loss weight.
    pub value_coef: f64,
    /// Global gradient-norm limit.
    pub max_grad_norm: f64,
    /// Domain randomisation: simulator constants vary by up to this factor (log scale).
    pub randomise: f64,
    /// Seed of everything random in training.
    pub seed: u64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            iterations: 60,
            envs_per_workload: 4,
            learning_rate: 3e-4,
            gamma: 0.95,
            lambda: 0.9,
            clip: 0.2,
            epochs: 4,
            minibatch: 128,
            entropy: 0.01,
            value_coef: 0.5,
            max_grad_norm: 0.5,
            randomise: 0.15,
            seed: 7,
        }
    }
}

/// A workload with its calibrated simulator.
#[derive(Debug, Clone)]
pub struct TrainingWorkload {
    /// The spec.
    pub workload: Workload,
    /// Its calibrated constants.
    pub params: SimParams,
}

/// One point of the learning curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Iteration.
    pub iteration: usize,
    /// Environment steps so far.
    pub steps: usize,
    /// Mean run objective of this iteration's rollouts (the scoreboard's measure).
    pub objective: f64,
    /// Mean policy loss of the update.
    pub policy_loss: f64,
    /// Mean value loss of the update.
    pub value_loss: f64,
    /// Mean entropy per step.
    pub entropy: f64,
    /// Seconds since training started.
    pub seconds: f64,
}

/// What training produces.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The network, for inference.
    pub net: PolicyNet,
    /// The feature statistics it was trained with.
    pub stats: FeatureStats,
    /// The learning curve.
    pub curve: Vec<CurvePoint>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Every transition, for offline replay.
    pub experience: Vec<Transition>,
}

/// One decision of one simulated run: what the policy saw, did and got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    /// Normalised feature rows, one per stage.
    pub rows: Vec<[f32; FEATURES]>,
    /// Allowed parallelism moves per stage.
    pub par_masks: Vec<[bool; PARALLELISM_ACTIONS]>,
    /// Allowed buffer moves per stage.
    pub buf_masks: Vec<[bool; BUFFER_ACTIONS]>,
    /// The moves taken.
    pub actions: Vec<StageAction>,
    /// Log-probability of the moves under the acting policy.
    pub logp: f32,
    /// The value estimate.
    pub value: f32,
    /// The objective of the epoch the moves led to.
    pub reward: f32,
    /// Advantage (GAE).
    pub advantage: f32,
    /// Discounted return target.
    pub ret: f32,
}

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
struct Episode {
    env: SimEnv,
    cx: TuneContext,
    history: History,
    previous: Option<JobConfig>,
    rng: SmallRng,
    steps: Vec<Transition>,
    scores: Vec<f64>,
    /// The snapshot waiting for a decision.
    current: Option<MetricsSnapshot>,
    done: bool,
}

impl Episode {
    /// Observes the next epoch: scores it, credits the previous step, keeps the snapshot.
    fn observe(&mut self) -> Result<(), EnvError> {
        match self.env.observe()? {
            Some(snapshot) => {
                let changed = self
                    .previous
                    .as_ref()
                    .is_some_and(|p| *p != snapshot.config);
                let score = self.cx.objective.score(&snapshot, changed).reward;
                self.scores.push(score);
                if let Some(last) = self.steps.last_mut() {
                    last.reward = score as f32;
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
                for row in &observe(&snapshot, &cx, &history).rows {
                    stats.add(row);
                }
                history.update(&snapshot);
                env.apply(&ds2.decide(&snapshot, &cx).config)?;
            }
        }
    }
    Ok(stats)
}

/// Trains a policy with PPO on `workloads`; `progress` sees each learning-curve point.
pub fn train(
    workloads: &[TrainingWorkload],
    cfg: &PpoConfig,
    mut progress: impl FnMut(&CurvePoint),
) -> Result<Trained, EnvError> {
    let started = Instant::now();
    let stats = feature_stats(workloads, &[0, 1])?;
    let device = Device::flex().autodiff();
    let mut model = PolicyNet::new(&device);
    let mut optim = AdamConfig::new().init();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let mut curve = Vec::new();
    let mut experience = Vec::new();
    let mut total_steps = 0;
    for iteration in 0..cfg.iterations {
        let infer = model.valid();
        let infer_device = Device::flex();
        let mut episodes = Vec::new();
        for w in workloads {
            for _ in 0..cfg.envs_per_workload {
                // Training seeds live far from the evaluation seeds (1000–1004).
                let seed = 1_000_000 + rng.random_range(0..1_000_000u64);
                let params = randomised(&w.params, cfg.randomise, &mut rng);
                episodes.push(Episode {
                    env: SimEnv::new(&w.workload, params, seed),
                    cx: context(&w.workload),
                    history: History::default(),
                    previous: None,
                    rng: SmallRng::seed_from_u64(seed),
                    steps: Vec::new(),
                    scores: Vec::new(),
                    current: None,
                    done: false,
                });
            }
        }
        rollout(&mut episodes, &infer, &infer_device, &stats)?;
        let objective = episodes
            .iter()
            .map(|e| e.scores.iter().sum::<f64>() / e.scores.len().max(1) as f64)
            .sum::<f64>()
            / episodes.len().max(1) as f64;
        let mut batch: Vec<Transition> = Vec::new();
        for e in &mut episodes {
            // The last decision of a run leads nowhere: drop it.
            e.steps.pop();
            advantages(&mut e.steps, cfg.gamma, cfg.lambda);
            batch.append(&mut e.steps);
        }
        total_steps += batch.len();
        let (model_next, losses) = update(model, &mut optim, &batch, cfg, &device, &mut rng);
        model = model_next;
        let point = CurvePoint {
            iteration,
            steps: total_steps,
            objective,
            policy_loss: losses.0,
            value_loss: losses.1,
            entropy: losses.2,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress(&point);
        curve.push(point);
        experience.extend(batch);
    }
    Ok(Trained {
        net: model.valid(),
        stats,
        curve,
        seconds: started.elapsed().as_secs_f64(),
        experience,
    })
}

/// Runs every episode to its end, sampling moves from the policy.
fn rollout(
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
            let mut t = Transition {
                rows: normalised,
                par_masks: Vec::with_capacity(n),
                buf_masks: Vec::with_capacity(n),
                actions: Vec::with_capacity(n),
                logp: 0.0,
                value: out.iter().map(|o| o[OUTPUTS - 1]).sum::<f32>() / n.max(1) as f32,
                reward: 0.0,
                advantage: 0.0,
                ret: 0.0,
            };
            for (s, o) in out.iter().enumerate() {
                let (pm, bm) = masks(&obs, &snapshot.config, s);
                let pp = masked_softmax::<PARALLELISM_ACTIONS>(&o[..PARALLELISM_ACTIONS], &pm);
                let bp = masked_softmax::<BUFFER_ACTIONS>(
                    &o[PARALLELISM_ACTIONS..PARALLELISM_ACTIONS + BUFFER_ACTIONS],
                    &bm,
                );
                let a = StageAction {
                    parallelism: sample(&pp, e.rng.random()),
                    buffer: sample(&bp, e.rng.random()),
                };
                t.logp += pp[a.parallelism].max(1e-8).ln() + bp[a.buffer].max(1e-8).ln();
                t.par_masks.push(pm);
                t.buf_masks.push(bm);
                t.actions.push(a);
            }
            let next = clamp(
                &snapshot.config,
                &proposal(&obs, &snapshot.config, &t.actions),
                &e.cx.bounds,
            );
            e.history.update(&snapshot);
            e.env.apply(&next.config)?;
            e.steps.push(t);
        }
    }
}

/// Generalised advantage estimation over one run's steps (the run ends after the last).
fn advantages(steps: &mut [Transition], gamma: f64, lambda: f64) {
    let mut next_value = 0.0f64;
    let mut gae = 0.0f64;
    for t in steps.iter_mut().rev() {
        let delta = t.reward as f64 + gamma * next_value - t.value as f64;
        gae = delta + gamma * lambda * gae;
        t.advantage = gae as f32;
        t.ret = (gae + t.value as f64) as f32;
        next_value = t.value as f64;
    }
}

/// Sums of squared gradients over the module's parameters.
struct GradNorm<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.sum += g.powf_scalar(2.0).sum().into_scalar::<f32>() as f64;
        }
    }
}

/// Scales every parameter gradient.
struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// PPO's update over `batch`: returns the model and the mean (policy, value, entropy) losses.
fn update(
    mut model: PolicyNet,
    optim: &mut burn::optim::ModuleOptimizer,
    batch: &[Transition],
    cfg: &PpoConfig,
    device: &Device,
    rng: &mut SmallRng,
) -> (PolicyNet, (f64, f64, f64)) {
    if batch.is_empty() {
        return (model, (0.0, 0.0, 0.0));
    }
    // Normalised advantages.
    let mean = batch.iter().map(|t| t.advantage as f64).sum::<f64>() / batch.len() as f64;
    let var = batch
        .iter()
        .map(|t| (t.advantage as f64 - mean).powi(2))
        .sum::<f64>()
        / batch.len() as f64;
    let std = var.sqrt().max(1e-6);
    let mut order: Vec<usize> = (0..batch.len()).collect();
    let (mut sum_p, mut sum_v, mut sum_e, mut n) = (0.0, 0.0, 0.0, 0usize);
    for _ in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(cfg.minibatch.max(1)) {
            let steps: Vec<&Transition> = chunk.iter().map(|&i| &batch[i]).collect();
            let (next, losses) = minibatch(model, optim, &steps, mean, std, cfg, device);
            model = next;
            sum_p += losses.0;
            sum_v += losses.1;
            sum_e += losses.2;
            n += 1;
        }
    }
    let n = n.max(1) as f64;
    (model, (sum_p / n, sum_v / n, sum_e / n))
}

fn minibatch(
    model: PolicyNet,
    optim: &mut burn::optim::ModuleOptimizer,
    steps: &[&Transition],
    adv_mean: f64,
    adv_std: f64,
    cfg: &PpoConfig,
    device: &Device,
) -> (PolicyNet, (f64, f64, f64)) {
    let rows: usize = steps.iter().map(|t| t.rows.len()).sum();
    let b = steps.len();
    let mut x = Vec::with_capacity(rows * FEATURES);
    let mut par_mask = Vec::with_capacity(rows * PARALLELISM_ACTIONS);
    let mut buf_mask = Vec::with_capacity(rows * BUFFER_ACTIONS);
    let mut par_hot = vec![0.0f32; rows * PARALLELISM_ACTIONS];
    let mut buf_hot = vec![0.0f32; rows * BUFFER_ACTIONS];
    let mut seg = vec![0.0f32; b * rows];
    let mut seg_mean = vec![0.0f32; b * rows];
    let (mut old, mut adv, mut ret) = (
        Vec::with_capacity(b),
        Vec::with_capacity(b),
        Vec::with_capacity(b),
    );
    let mut r = 0;
    for (j, t) in steps.iter().enumerate() {
        let n = t.rows.len();
        for s in 0..n {
            x.extend_from_slice(&t.rows[s]);
            par_mask.extend(
                t.par_masks[s]
                    .iter()
                    .map(|&m| if m { 0.0f32 } else { -1e4 }),
            );
            buf_mask.extend(
                t.buf_masks[s]
                    .iter()
                    .map(|&m| if m { 0.0f32 } else { -1e4 }),
            );
            par_hot[r * PARALLELISM_ACTIONS + t.actions[s].parallelism] = 1.0;
            buf_hot[r * BUFFER_ACTIONS + t.actions[s].buffer] = 1.0;
            seg[j * rows + r] = 1.0;
            seg_mean[j * rows + r] = 1.0 / n as f32;
            r += 1;
        }
        old.push(t.logp);
        adv.push(((t.advantage as f64 - adv_mean) / adv_std) as f32);
        ret.push(t.ret);
    }
    let t2 =
        |v: Vec<f32>, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), device);
    let out = model.forward(t2(x, [rows, FEATURES]));
    let par_logits =
        out.clone().narrow(1, 0, PARALLELISM_ACTIONS) + t2(par_mask, [rows, PARALLELISM_ACTIONS]);
    let buf_logits = out.clone().narrow(1, PARALLELISM_ACTIONS, BUFFER_ACTIONS)
        + t2(buf_mask, [rows, BUFFER_ACTIONS]);
    let value_rows = out.narrow(1, OUTPUTS - 1, 1);
    let par_logp = log_softmax(par_logits.clone(), 1);
    let buf_logp = log_softmax(buf_logits.clone(), 1);
    let row_logp = (par_logp.clone() * t2(par_hot, [rows, PARALLELISM_ACTIONS])).sum_dim(1)
        + (buf_logp.clone() * t2(buf_hot, [rows, BUFFER_ACTIONS])).sum_dim(1);
    let row_entropy = (softmax(par_logits, 1) * par_logp).sum_dim(1).neg()
        + (softmax(buf_logits, 1) * buf_logp).sum_dim(1).neg();
    let seg = t2(seg, [b, rows]);
    let logp = seg.clone().matmul(row_logp);
    let entropy = seg.matmul(row_entropy).mean();
    let value = t2(seg_mean, [b, rows]).matmul(value_rows);
    let ratio = (logp - t2(old, [b, 1])).exp();
    let adv = t2(adv, [b, 1]);
    let surr1 = ratio.clone() * adv.clone();
    let surr2 = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip) * adv;
    let policy_loss = surr1.min_pair(surr2).mean().neg();
    let value_loss = (value - t2(ret, [b, 1])).powf_scalar(2.0).mean();
    let loss = policy_loss.clone() + value_loss.clone().mul_scalar(cfg.value_coef)
        - entropy.clone().mul_scalar(cfg.entropy);
    let losses = (
        policy_loss.into_scalar::<f32>() as f64,
        value_loss.into_scalar::<f32>() as f64,
        entropy.into_scalar::<f32>() as f64,
    );
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut norm = GradNorm {
        grads: &grads,
        sum: 0.0,
    };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    if total > cfg.max_grad_norm {
        let mut scale = GradScale {
            grads: &mut grads,
            factor: (cfg.max_grad_norm / total) as f32,
        };
        model.visit(&mut scale);
    }
    let model = optim.step(cfg.learning_rate, model, grads);
    (model, losses)
}
