//! Explaining one decision: saliency, masking and permutation importance, the runner-up,
//! DS2's view and a sentence.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::agent::Policy;
use crate::agent::actions::StageAction;
use crate::agent::features::{FEATURE_NAMES, FEATURES, FeatureStats};
use crate::agent::policy::{
    BUFFER_ACTIONS, PARALLELISM_ACTIONS, PolicyNet, argmax, masked_softmax,
};

/// One stage's part of one decision, as the run log recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDecision {
    /// Epoch after which the decision was made.
    pub epoch: u64,
    /// The stage.
    pub stage: String,
    /// The stage's feature row (raw, before normalisation).
    pub row: Vec<f32>,
    /// Parallelism moves allowed (keep, ds2−1, ds2, ds2+1, ds2+2).
    pub parallelism_allowed: [bool; PARALLELISM_ACTIONS],
    /// Buffer moves allowed (halve, keep, double).
    pub buffer_allowed: [bool; BUFFER_ACTIONS],
    /// The policy's move.
    pub action: StageAction,
    /// The policy's parallelism-move probabilities as logged.
    pub probabilities: [f32; PARALLELISM_ACTIONS],
    /// The policy's buffer-move probabilities as logged (halve, keep, double; 0 where masked).
    #[serde(default)]
    pub buffer_probabilities: [f32; BUFFER_ACTIONS],
    /// Parallelism before the decision.
    pub from: usize,
    /// Parallelism applied.
    pub to: usize,
    /// Input buffer (batches) before and after.
    pub buffer: (usize, usize),
    /// DS2's suggestion at that moment.
    pub ds2: Option<usize>,
    /// Why the DS2 fallback took this stage's decision, if it did.
    pub fallback: Option<String>,
    /// The guardrail that changed the decision, if any.
    pub guardrail: Option<String>,
}

impl StageDecision {
    /// A decision to keep `stage` at 2 workers, every move allowed, for examples and tests.
    pub fn example(stage: &str, row: [f32; FEATURES]) -> StageDecision {
        StageDecision {
            epoch: 0,
            stage: stage.to_owned(),
            row: row.to_vec(),
            parallelism_allowed: [true; PARALLELISM_ACTIONS],
            buffer_allowed: [true; BUFFER_ACTIONS],
            action: StageAction::KEEP,
            probabilities: [0.2; PARALLELISM_ACTIONS],
            buffer_probabilities: [0.0, 1.0, 0.0],
            from: 2,
            to: 2,
            buffer: (8, 8),
            ds2: Some(2),
            fallback: None,
            guardrail: None,
        }
    }

    /// The row as a fixed array (zeros past a short row).
    pub fn features(&self) -> [f32; FEATURES] {
        let mut row = [0.0; FEATURES];
        for (dst, src) in row.iter_mut().zip(&self.row) {
            *dst = *src;
        }
        row
    }

    /// Whether the applied configuration changed this stage.
    pub fn changed(&self) -> bool {
        self.from != self.to || self.buffer.0 != self.buffer.1
    }
}

/// A feature with its value and importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedFeature {
    /// Index in [`FEATURE_NAMES`].
    pub feature: usize,
    /// Its name.
    pub name: String,
    /// Its raw value in the decision.
    pub value: f32,
    /// Its gradient saliency, normalised so the decision's most salient feature has 1.
    pub importance: f32,
}

/// Why one stage's decision came out as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Epoch.
    pub epoch: u64,
    /// Stage.
    pub stage: String,
    /// The policy's parallelism move.
    pub action: String,
    /// Its probability (recomputed from the policy).
    pub probability: f32,
    /// The runner-up move and its probability.
    pub runner_up: (String, f32),
    /// Per feature: gradient saliency, |∂ log p(move) / ∂ z| on the standardised feature z.
    pub saliency: Vec<f32>,
    /// Per feature: change in the move probabilities (total variation) when the feature is
    /// replaced by its training mean.
    pub masking: Vec<f32>,
    /// Per feature: mean change in the move probabilities when the feature takes values other
    /// decisions of the run saw.
    pub permutation: Vec<f32>,
    /// The top features: by masking importance (what replacing the feature by its training
    /// mean changes in the move probabilities), saliency breaking ties.
    pub top: Vec<RankedFeature>,
    /// Parallelism before and after.
    pub from: usize,
    /// Parallelism applied.
    pub to: usize,
    /// DS2's suggestion.
    pub ds2: Option<usize>,
    /// Whether the applied parallelism is DS2's.
    pub agreed_with_ds2: bool,
    /// Why the DS2 fallback decided, if it did.
    pub fallback: Option<String>,
    /// One line for people.
    pub sentence: String,
}

/// Explains decisions of one policy. Holds a copy of the network and its statistics; run it on
/// its own thread (the one that fine-tunes, never the decision thread).
pub struct Explainer {
    net: PolicyNet,
    stats: FeatureStats,
    device: Device,
    /// Standardised rows other decisions saw, sampled for permutation importance.
    background: Vec<[f32; FEATURES]>,
    rng: SmallRng,
    /// Samples per feature for permutation importance.
    permutations: usize,
    /// Features named in the top list and the sentence.
    top: usize,
}

/// Labels of the parallelism moves.
pub(crate) fn move_label(k: usize) -> String {
    StageAction {
        parallelism: k,
        buffer: 1,
    }
    .label()
}

fn total_variation(a: &[f32], b: &[f32]) -> f32 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>()
}

impl Explainer {
    /// An explainer for `policy`.
    pub fn new(policy: &Policy) -> Explainer {
        Explainer {
            net: policy.net.clone(),
            stats: policy.stats.clone(),
            device: policy.device.clone(),
            background: Vec::new(),
            rng: SmallRng::seed_from_u64(7),
            permutations: 8,
            top: 3,
        }
    }

    /// Raw rows (of the run being explained, typically) to draw permutation values from.
    pub fn with_background(mut self, rows: impl IntoIterator<Item = [f32; FEATURES]>) -> Self {
        self.background.clear();
        self.extend_background(rows);
        self
    }

    /// Adds raw rows to the permutation values (a live run's explainer adds each epoch's
    /// decisions as they come, rather than standardising the whole run again every epoch).
    pub fn extend_background(&mut self, rows: impl IntoIterator<Item = [f32; FEATURES]>) {
        let stats = &self.stats;
        self.background
            .extend(rows.into_iter().map(|r| stats.normalise(&r)));
    }

    /// Standardises a raw row the way the policy sees it.
    pub fn normalise(&self, row: &[f32; FEATURES]) -> [f32; FEATURES] {
        self.stats.normalise(row)
    }

    /// The parallelism-move probabilities of standardised `rows` under `mask`.
    pub fn probabilities(
        &self,
        rows: &[[f32; FEATURES]],
        mask: &[bool; PARALLELISM_ACTIONS],
    ) -> Vec<[f32; PARALLELISM_ACTIONS]> {
        self.net
            .infer(rows, &self.device)
            .iter()
            .map(|o| masked_softmax::<PARALLELISM_ACTIONS>(&o[..PARALLELISM_ACTIONS], mask))
            .collect()
    }

    /// Gradient saliency of standardised `rows`: per row and feature, |∂ log p(move) / ∂ z|
    /// for its `moves` under its `masks`, `z` the standardised feature. (Gradient × input
    /// reads better but fails the randomised-weights sanity check: its rankings keep the
    /// input's share, 0.62 Spearman between the shipped policy and random weights.) One
    /// forward and one backward for all rows.
    pub fn saliency(
        &self,
        rows: &[[f32; FEATURES]],
        masks: &[[bool; PARALLELISM_ACTIONS]],
        moves: &[usize],
    ) -> Vec<[f32; FEATURES]> {
        let n = rows.len();
        if n == 0 {
            return Vec::new();
        }
        let ad = self.device.clone().autodiff();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(flat, [n, FEATURES]), &ad).require_grad();
        let mut bias = Vec::with_capacity(n * PARALLELISM_ACTIONS);
        let mut hot = vec![0.0f32; n * PARALLELISM_ACTIONS];
        for (i, (mask, &m)) in masks.iter().zip(moves).enumerate() {
            bias.extend(mask.iter().map(|&a| if a { 0.0f32 } else { -1e4 }));
            hot[i * PARALLELISM_ACTIONS + m.min(PARALLELISM_ACTIONS - 1)] = 1.0;
        }
        let t =
            |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [n, PARALLELISM_ACTIONS]), &ad);
        let logits = self
            .net
            .forward(x.clone())
            .narrow(1, 0, PARALLELISM_ACTIONS)
            + t(bias);
        let chosen = (log_softmax(logits, 1) * t(hot)).sum();
        let grads = chosen.backward();
        let g: Vec<f32> = x
            .grad(&grads)
            .map(|g| g.into_data().try_into_vec::<f32>().unwrap_or_default())
            .unwrap_or_default();
        let mut out = vec![[0.0f32; FEATURES]; n];
        for (row, chunk) in out.iter_mut().zip(g.chunks_exact(FEATURES)) {
            for (dst, v) in row.iter_mut().zip(chunk) {
                *dst = v.abs();
            }
        }
        out
    }

    /// Masking importance (each feature replaced by its training mean, 0 once standardised)
    /// and permutation importance (by values from the background) of standardised `row`: the
    /// total-variation change of the move probabilities. One forward for every perturbation.
    pub fn occlusion(
        &mut self,
        row: &[f32; FEATURES],
        mask: &[bool; PARALLELISM_ACTIONS],
    ) -> (Vec<f32>, Vec<f32>) {
        let k = if self.background.is_empty() {
            0
        } else {
            self.permutations
        };
        let mut rows = Vec::with_capacity(1 + FEATURES * (1 + k));
        rows.push(*row);
        for f in 0..FEATURES {
            let mut masked = *row;
            masked[f] = 0.0;
            rows.push(masked);
            for _ in 0..k {
                let other = self.background[self.rng.random_range(0..self.background.len())];
                let mut permuted = *row;
                permuted[f] = other[f];
                rows.push(permuted);
            }
        }
        let p = self.probabilities(&rows, mask);
        let base = p[0];
        let mut masking = vec![0.0; FEATURES];
        let mut permutation = vec![0.0; FEATURES];
        for f in 0..FEATURES {
            let at = 1 + f * (1 + k);
            masking[f] = total_variation(&base, &p[at]);
            if k > 0 {
                permutation[f] = (1..=k)
                    .map(|j| total_variation(&base, &p[at + j]))
                    .sum::<f32>()
                    / k as f32;
            }
        }
        (masking, permutation)
    }

    /// Explains one stage's decision.
    pub fn explain(&mut self, d: &StageDecision) -> Explanation {
        self.explain_all(std::slice::from_ref(d)).remove(0)
    }

    /// Explains decisions, their saliency in one backward pass.
    pub fn explain_all(&mut self, decisions: &[StageDecision]) -> Vec<Explanation> {
        let rows: Vec<[f32; FEATURES]> = decisions
            .iter()
            .map(|d| self.stats.normalise(&d.features()))
            .collect();
        let masks: Vec<[bool; PARALLELISM_ACTIONS]> =
            decisions.iter().map(|d| d.parallelism_allowed).collect();
        let moves: Vec<usize> = decisions.iter().map(|d| d.action.parallelism).collect();
        let saliency = self.saliency(&rows, &masks, &moves);
        decisions
            .iter()
            .zip(rows.iter().zip(saliency))
            .map(|(d, (row, sal))| self.explanation(d, row, &sal))
            .collect()
    }

    fn explanation(
        &mut self,
        d: &StageDecision,
        row: &[f32; FEATURES],
        sal: &[f32; FEATURES],
    ) -> Explanation {
        let probs = self.probabilities(std::slice::from_ref(row), &d.parallelism_allowed)[0];
        let chosen = d.action.parallelism.min(PARALLELISM_ACTIONS - 1);
        let mut others = probs;
        others[chosen] = -1.0;
        let second = argmax(&others);
        let (masking, permutation) = self.occlusion(row, &d.parallelism_allowed);
        let raw = d.features();
        let top_value = sal.iter().copied().fold(0.0f32, f32::max).max(1e-12);
        // Ranked by what masking the feature would change in the decision, then by saliency:
        // a feature sitting at its training mean explains nothing, however steep the policy
        // is there.
        // (Lexicographic: a weighted sum let saliency outrank masking differences of a few
        // thousandths, which are all a sure policy shows.)
        let mut order: Vec<usize> = (0..FEATURES).collect();
        order.sort_by(|&a, &b| {
            masking[b]
                .total_cmp(&masking[a])
                .then(sal[b].total_cmp(&sal[a]))
        });
        let top: Vec<RankedFeature> = order
            .iter()
            .take(self.top)
            .map(|&f| RankedFeature {
                feature: f,
                name: FEATURE_NAMES[f].to_owned(),
                value: raw[f],
                importance: sal[f] / top_value,
            })
            .collect();
        let mut e = Explanation {
            epoch: d.epoch,
            stage: d.stage.clone(),
            action: move_label(chosen),
            probability: probs[chosen],
            runner_up: (move_label(second), probs[second].max(0.0)),
            saliency: sal.to_vec(),
            masking,
            permutation,
            top,
            from: d.from,
            to: d.to,
            ds2: d.ds2,
            agreed_with_ds2: d.ds2 == Some(d.to),
            fallback: d.fallback.clone(),
            sentence: String::new(),
        };
        e.sentence = super::sentence(&e, d);
        e
    }
}
