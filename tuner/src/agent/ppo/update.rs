//! The update: advantages, PPO's clipped objective (or imitation), global-norm clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::agent::features::FEATURES;
use crate::agent::policy::{BUFFER_ACTIONS, OUTPUTS, PARALLELISM_ACTIONS, PolicyNet};

use super::*;

/// Generalised advantage estimation over one run's steps (the run ends after the last): the
/// decisions', and each stage's over its credited reward (the decision's where none was
/// credited) against its own value.
pub fn advantages(steps: &mut [Transition], gamma: f64, lambda: f64) {
    gae(
        steps.iter_mut().rev().map(|t| {
            Some(GaeStep {
                reward: t.reward,
                value: t.value,
                advantage: &mut t.advantage,
                ret: &mut t.ret,
            })
        }),
        gamma,
        lambda,
    );
    let stages = steps.first().map_or(0, |t| t.stages.len());
    for s in 0..stages {
        gae(
            steps.iter_mut().rev().map(|t| {
                let reward = t.reward;
                t.stages.get_mut(s).map(|stage| GaeStep {
                    reward: stage.reward.unwrap_or(reward),
                    value: stage.value,
                    advantage: &mut stage.advantage,
                    ret: &mut stage.ret,
                })
            }),
            gamma,
            lambda,
        );
    }
}

/// One step of a GAE pass: what it got and was valued at, and where its results go.
struct GaeStep<'a> {
    reward: f32,
    value: f32,
    advantage: &'a mut f32,
    ret: &'a mut f32,
}

/// GAE over `steps` given last to first; a `None` ends the run there (a decision without this
/// stage).
fn gae<'a>(steps: impl Iterator<Item = Option<GaeStep<'a>>>, gamma: f64, lambda: f64) {
    let mut next_value = 0.0f64;
    let mut gae = 0.0f64;
    for step in steps {
        let Some(step) = step else {
            next_value = 0.0;
            gae = 0.0;
            continue;
        };
        let delta = step.reward as f64 + gamma * next_value - step.value as f64;
        gae = delta + gamma * lambda * gae;
        *step.advantage = gae as f32;
        *step.ret = (gae + step.value as f64) as f32;
        next_value = step.value as f64;
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
pub(super) fn update(
    mut model: PolicyNet,
    optim: &mut burn::optim::ModuleOptimizer,
    batch: &[Transition],
    cfg: &PpoConfig,
    device: &Device,
    rng: &mut SmallRng,
    imitate: bool,
) -> (PolicyNet, (f64, f64, f64)) {
    if batch.is_empty() {
        return (model, (0.0, 0.0, 0.0));
    }
    // Normalised advantages: the decisions', or every stage's under per-stage credit.
    let advantages: Vec<f64> = if cfg.stage_credit {
        batch
            .iter()
            .flat_map(|t| t.stages.iter().map(|s| s.advantage as f64))
            .collect()
    } else {
        batch.iter().map(|t| t.advantage as f64).collect()
    };
    let count = advantages.len().max(1) as f64;
    let mean = advantages.iter().sum::<f64>() / count;
    let var = advantages.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / count;
    let std = var.sqrt().max(1e-6);
    let mut order: Vec<usize> = (0..batch.len()).collect();
    let (mut sum_p, mut sum_v, mut sum_e, mut n) = (0.0, 0.0, 0.0, 0usize);
    for _ in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(cfg.minibatch.max(1)) {
            let steps: Vec<&Transition> = chunk.iter().map(|&i| &batch[i]).collect();
            let batch = Minibatch {
                steps: &steps,
                adv_mean: mean,
                adv_std: std,
                imitate,
            };
            let (next, losses) = minibatch(model, optim, batch, cfg, device);
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

/// One minibatch of steps and how to score them.
struct Minibatch<'a> {
    steps: &'a [&'a Transition],
    adv_mean: f64,
    adv_std: f64,
    /// Maximise the likelihood of the recorded moves (imitation) instead of PPO's objective.
    imitate: bool,
}

fn minibatch(
    model: PolicyNet,
    optim: &mut burn::optim::ModuleOptimizer,
    batch: Minibatch<'_>,
    cfg: &PpoConfig,
    device: &Device,
) -> (PolicyNet, (f64, f64, f64)) {
    let Minibatch {
        steps,
        adv_mean,
        adv_std,
        imitate,
    } = batch;
    let rows: usize = steps.iter().map(|t| t.rows.len()).sum();
    let b = steps.len();
    let mut x = Vec::with_capacity(rows * FEATURES);
    let mut par_mask = Vec::with_capacity(rows * PARALLELISM_ACTIONS);
    let mut buf_mask = Vec::with_capacity(rows * BUFFER_ACTIONS);
    let mut par_hot = vec![0.0f32; rows * PARALLELISM_ACTIONS];
    let mut regret = Vec::with_capacity(rows * PARALLELISM_ACTIONS);
    let mut buf_hot = vec![0.0f32; rows * BUFFER_ACTIONS];
    let mut buf_regret = Vec::with_capacity(rows * BUFFER_ACTIONS);
    let mut seg = vec![0.0f32; b * rows];
    let mut seg_mean = vec![0.0f32; b * rows];
    let (mut old, mut adv, mut ret) = (
        Vec::with_capacity(b),
        Vec::with_capacity(b),
        Vec::with_capacity(b),
    );
    // Per stage (row), for per-stage credit.
    let (mut row_old, mut row_adv, mut row_ret) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
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
            let stage = t.stages.get(s).copied().unwrap_or_default();
            regret.extend_from_slice(&stage.regret);
            buf_regret.extend_from_slice(&stage.buffer_regret);
            row_old.push(stage.logp);
            row_adv.push(((stage.advantage as f64 - adv_mean) / adv_std) as f32);
            row_ret.push(stage.ret);
            r += 1;
        }
        old.push(t.logp);
        adv.push(((t.advantage as f64 - adv_mean) / adv_std) as f32);
        ret.push(t.ret);
    }
    let t2 =
        |v: Vec<f32>, shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, shape), device);
    if imitate && cfg.lookahead_buffer_head_only {
        // Only the buffer labels' likelihood, through the output layer alone: the parallelism
        // and value outputs get no gradient, so Adam leaves their weights exactly as they are.
        let out = model.forward_heads_only(TensorData::new(x, [rows, FEATURES]), device);
        let buf_logits = out.narrow(1, PARALLELISM_ACTIONS, BUFFER_ACTIONS)
            + t2(buf_mask, [rows, BUFFER_ACTIONS]);
        let labels = || {
            (log_softmax(buf_logits.clone(), 1) * t2(buf_hot.clone(), [rows, BUFFER_ACTIONS]))
                .sum_dim(1)
                .mean()
                .neg()
        };
        let regret = || {
            (softmax(buf_logits.clone(), 1) * t2(buf_regret.clone(), [rows, BUFFER_ACTIONS]))
                .sum_dim(1)
                .mean()
        };
        let loss = match cfg.lookahead_buffer_loss {
            BufferLoss::Labels => labels(),
            BufferLoss::LabelsAndRegret => labels() + regret(),
            BufferLoss::Regret => regret(),
        };
        let policy_loss = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(cfg.learning_rate, model, grads);
        return (model, (policy_loss, 0.0, 0.0));
    }
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
    let par_probs = softmax(par_logits, 1);
    // Imitation's expected regret: the policy's probabilities times what each move loses.
    let row_regret = (par_probs.clone() * t2(regret, [rows, PARALLELISM_ACTIONS])).sum_dim(1);
    let row_entropy = (par_probs * par_logp).sum_dim(1).neg()
        + (softmax(buf_logits, 1) * buf_logp).sum_dim(1).neg();
    let seg = t2(seg, [b, rows]);
    let logp = seg.clone().matmul(row_logp.clone());
    let entropy = seg.clone().matmul(row_entropy).mean();
    let imitation = || logp.clone().mean().neg() + seg.clone().matmul(row_regret.clone()).mean();
    let clipped = |ratio: Tensor<2>, adv: Tensor<2>| {
        let surr1 = ratio.clone() * adv.clone();
        let surr2 = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip) * adv;
        surr1.min_pair(surr2)
    };
    // Imitation maximises the likelihood of the demonstrated moves instead.
    let (policy_loss, value_loss) = if cfg.stage_credit {
        // Each stage's clipped objective with its own ratio and advantage, summed over the
        // decision's stages; each row's value against its stage's return.
        let policy_loss = if imitate {
            imitation()
        } else {
            let ratio = (row_logp - t2(row_old, [rows, 1])).exp();
            seg.matmul(clipped(ratio, t2(row_adv, [rows, 1])))
                .mean()
                .neg()
        };
        let value_loss = (value_rows - t2(row_ret, [rows, 1]))
            .powf_scalar(2.0)
            .mean();
        (policy_loss, value_loss)
    } else {
        let value = t2(seg_mean, [b, rows]).matmul(value_rows);
        let policy_loss = if imitate {
            imitation()
        } else {
            let ratio = (logp - t2(old, [b, 1])).exp();
            clipped(ratio, t2(adv, [b, 1])).mean().neg()
        };
        let value_loss = (value - t2(ret, [b, 1])).powf_scalar(2.0).mean();
        (policy_loss, value_loss)
    };
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

/// More PPO passes for a trained network over logged experience (a live run's, or a replayed
/// experience log's), whose advantages are already computed.
pub fn fine_tune(
    net: &PolicyNet,
    experience: &[Transition],
    cfg: &PpoConfig,
) -> Result<(PolicyNet, (f64, f64, f64)), String> {
    let device = Device::flex().autodiff();
    let model = PolicyNet::new(&device)
        .try_load_record(net.clone().into_record())
        .map_err(|e| format!("loading the policy for training: {e:?}"))?;
    let mut optim = AdamConfig::new().init();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let (model, losses) = update(model, &mut optim, experience, cfg, &device, &mut rng, false);
    Ok((model.valid(), losses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ppo::StageStep;

    fn step(reward: f32, stages: Vec<Option<f32>>) -> Transition {
        Transition {
            rows: Vec::new(),
            par_masks: Vec::new(),
            buf_masks: Vec::new(),
            actions: Vec::new(),
            logp: 0.0,
            value: 0.0,
            reward,
            advantage: 0.0,
            ret: 0.0,
            stages: stages
                .into_iter()
                .map(|reward| StageStep {
                    reward,
                    ..StageStep::default()
                })
                .collect(),
        }
    }

    /// A one-stage decision on `row`, labelled with buffer move `label`, whose buffer moves
    /// lose `regret`.
    fn buffer_step(
        row: [f32; FEATURES],
        label: usize,
        regret: [f32; BUFFER_ACTIONS],
    ) -> Transition {
        Transition {
            rows: vec![row],
            par_masks: vec![[true; PARALLELISM_ACTIONS]],
            buf_masks: vec![[true; BUFFER_ACTIONS]],
            actions: vec![crate::agent::actions::StageAction {
                parallelism: 0,
                buffer: label,
            }],
            stages: vec![StageStep {
                buffer_regret: regret,
                ..StageStep::default()
            }],
            ..step(0.0, Vec::new())
        }
    }

    #[test]
    fn each_buffer_loss_moves_the_buffer_outputs_as_documented_and_nothing_else() {
        let costly: [f32; FEATURES] = std::array::from_fn(|f| (f % 3) as f32 - 1.0);
        let tied: [f32; FEATURES] = std::array::from_fn(|f| (f % 4) as f32 * 0.5 - 0.75);
        // Both labelled "keep"; doubling loses much on the first row, the moves tie on the
        // second.
        let steps = vec![
            buffer_step(costly, 1, [0.0, 0.0, 8.0]),
            buffer_step(tied, 1, [0.0; BUFFER_ACTIONS]),
        ];
        let rows = [costly, tied];
        let trained = |loss: BufferLoss| {
            let device = Device::flex().autodiff();
            device.seed(7);
            let start = PolicyNet::new(&device);
            let before = start.valid().infer(&rows, &Device::flex());
            let cfg = PpoConfig {
                epochs: 100,
                learning_rate: 1e-3,
                lookahead_buffer_head_only: true,
                lookahead_buffer_loss: loss,
                ..PpoConfig::default()
            };
            let mut optim = AdamConfig::new().init();
            let mut rng = SmallRng::seed_from_u64(1);
            let (net, _) = update(start, &mut optim, &steps, &cfg, &device, &mut rng, true);
            let after = net.valid().infer(&rows, &Device::flex());
            for (b, a) in before.iter().zip(&after) {
                assert_eq!(
                    b[..PARALLELISM_ACTIONS],
                    a[..PARALLELISM_ACTIONS],
                    "{loss:?}"
                );
                assert_eq!(b[OUTPUTS - 1], a[OUTPUTS - 1], "{loss:?}");
            }
            (before, after)
        };
        let probabilities = |out: &[f32; OUTPUTS]| {
            let logits = &out[PARALLELISM_ACTIONS..PARALLELISM_ACTIONS + BUFFER_ACTIONS];
            crate::agent::policy::masked_softmax::<BUFFER_ACTIONS>(logits, &[true; 3])
        };
        let (before, labels) = trained(BufferLoss::Labels);
        let (_, both) = trained(BufferLoss::LabelsAndRegret);
        let (_, regret) = trained(BufferLoss::Regret);
        let doubling = |out: &[[f32; OUTPUTS]]| probabilities(&out[0])[2];
        // The regret pulls doubling down where it costs much, beyond what the label does.
        assert!(doubling(&labels) < doubling(&before));
        assert!(doubling(&both) < doubling(&labels) - 0.01);
        assert!(doubling(&regret) < doubling(&before) - 0.1);
        // On the tie, the labels pull "keep" up; the regret alone leaves it near the start.
        let keep_gain =
            |out: &[[f32; OUTPUTS]]| probabilities(&out[1])[1] - probabilities(&before[1])[1];
        assert!(keep_gain(&labels) > 0.1, "{}", keep_gain(&labels));
        assert!(
            keep_gain(&regret).abs() < keep_gain(&labels) / 3.0,
            "{} against {}",
            keep_gain(&regret),
            keep_gain(&labels)
        );
    }

    #[test]
    fn each_stage_is_judged_by_its_own_reward() {
        // Stage 0 moved at the second decision (charged 0.1), stage 1 kept still, stage 2 has
        // no credit of its own and takes the decision's reward.
        let mut steps = vec![
            step(0.5, vec![Some(0.6), Some(0.6), None]),
            step(0.4, vec![Some(0.5), Some(0.6), None]),
        ];
        advantages(&mut steps, 0.5, 1.0);
        let last = &steps[1].stages;
        assert!((last[0].advantage - 0.5).abs() < 1e-6);
        assert!((last[1].advantage - 0.6).abs() < 1e-6);
        assert!((last[2].advantage - 0.4).abs() < 1e-6);
        // Values are 0, so each advantage is the stage's discounted return.
        let first = &steps[0].stages;
        assert!((first[0].advantage - (0.6 + 0.5 * 0.5)).abs() < 1e-6);
        assert!((first[1].advantage - (0.6 + 0.5 * 0.6)).abs() < 1e-6);
        assert!((first[2].advantage - steps[0].advantage).abs() < 1e-6);
        assert!((first[0].ret - first[0].advantage).abs() < 1e-6);
    }
}
