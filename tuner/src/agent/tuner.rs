//! [`Agent`]: the policy as a [`Tuner`], behind its guardrails.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rheo_engine::{JobConfig, MetricsSnapshot};
use serde::Serialize;

use super::actions::{
    StageAction, ds2_parallelism, greedy_move, input_capacity, keep_input_buffer, masks,
    probability_of_outcome, proposal,
};
use super::checkpoint::{CheckpointError, CheckpointHeader, load_with_checksum};
use super::features::{FEATURE_NAMES, FEATURES, FeatureStats, History, Observation, observe};
use super::guard::{
    Controls, Fallback, GuardConfig, GuardState, Verdict, effective_bounds,
    lowering_within_utilisation,
};
use super::policy::{
    BUFFER_ACTIONS, OUTPUTS, PARALLELISM_ACTIONS, PolicyNet, argmax, masked_softmax, sample,
};
use super::ppo::{StageStep, Transition};
use super::trace::{DecisionTrace, TraceSlot};
use crate::action::clamp;
use crate::objective::EpochScore;
use crate::tuners::{Decision, TuneContext, Tuner};

/// A trained policy ready to act: the network and the statistics its inputs are normalised by.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The network (inference only).
    pub net: PolicyNet,
    /// Training statistics of the features.
    pub stats: FeatureStats,
    /// Where the network runs.
    pub device: Device,
    /// The CRC-32 the checkpoint file ends with (`None` for a policy not read from a file).
    pub checksum: Option<u32>,
    /// Trained with each workload's tuned DS2 as the base of its moves (see
    /// [`CheckpointHeader::tuned_ds2_base`]): it runs on the DS2 its operator would run.
    pub tuned_ds2_base: bool,
}

/// One stage's choice with its probabilities.
#[derive(Debug, Clone, Serialize)]
pub struct StageChoice {
    /// The stage.
    pub stage: String,
    /// The move chosen.
    pub action: StageAction,
    /// Its label.
    pub label: String,
    /// Probability of the parallelism move.
    pub p_parallelism: f32,
    /// Probability of the buffer move.
    pub p_buffer: f32,
    /// Every parallelism move's probability, in action order (keep, ds2−1, ds2, ds2+1, ds2+2;
    /// 0 where masked).
    pub parallelism_probabilities: [f32; PARALLELISM_ACTIONS],
    /// Every buffer move's probability, in action order (halve, keep, double; 0 where masked).
    pub buffer_probabilities: [f32; BUFFER_ACTIONS],
}

impl Policy {
    /// Loads a checkpoint onto the CPU.
    pub fn load(path: &Path) -> Result<(Policy, CheckpointHeader), CheckpointError> {
        let device = Device::flex();
        let (header, net, checksum) = load_with_checksum(path, &device)?;
        Ok((
            Policy {
                net,
                stats: header.stats.clone(),
                device,
                checksum: Some(checksum),
                tuned_ds2_base: header.tuned_ds2_base,
            },
            header,
        ))
    }

    /// A network (trained, not yet saved) with the statistics its inputs are normalised by,
    /// on the CPU.
    pub fn new(net: PolicyNet, stats: FeatureStats) -> Policy {
        Policy {
            net,
            stats,
            device: Device::flex(),
            checksum: None,
            tuned_ds2_base: false,
        }
    }

    /// A freshly initialised network on the CPU with empty statistics (for tests and
    /// benchmarks of the decision path before a policy is trained).
    pub fn untrained() -> Policy {
        Policy::new(PolicyNet::new(&Device::flex()), FeatureStats::default())
    }

    /// The rows of `obs` normalised, and the network's outputs for them.
    fn outputs(&self, obs: &Observation) -> (Vec<[f32; FEATURES]>, Vec<[f32; OUTPUTS]>) {
        let rows: Vec<[f32; FEATURES]> = obs.rows.iter().map(|r| self.stats.normalise(r)).collect();
        let outputs = self.net.infer(&rows, &self.device);
        (rows, outputs)
    }

    /// Runs the network once on every row count a pipeline can have, so the first decision of
    /// a run does not pay for the backend's first-use setup (measured at 0.6–1 ms, over the
    /// decision budget on six stages, where later decisions take tens of µs).
    pub fn warm_up(&self) {
        for rows in 1..=8 {
            self.net.infer(&vec![[0.0; FEATURES]; rows], &self.device);
        }
    }

    /// Per row of `obs`, its distance from the training statistics (see
    /// [`FeatureStats::distance`]).
    pub fn distances(&self, obs: &Observation) -> Vec<f64> {
        obs.rows.iter().map(|r| self.stats.distance(r)).collect()
    }

    /// A move per stage drawn from the policy, and the transition that records it.
    pub fn sampled(
        &self,
        obs: &Observation,
        snapshot: &MetricsSnapshot,
        rng: &mut SmallRng,
    ) -> (Vec<StageChoice>, Transition) {
        let (rows, outputs) = self.outputs(obs);
        choose(obs, &snapshot.config, rows, &outputs, |p| {
            sample(p, rng.random())
        })
    }

    /// The greedy move per stage: the most probable outcome, DS2's unless another is more
    /// probable by `tie_margin` (see [`greedy_move`]), and the most probable buffer move.
    pub fn greedy(
        &self,
        obs: &Observation,
        snapshot: &MetricsSnapshot,
        tie_margin: f32,
    ) -> Vec<StageChoice> {
        let (rows, outputs) = self.outputs(obs);
        let mut choices = choose(obs, &snapshot.config, rows, &outputs, argmax).0;
        for (i, c) in choices.iter_mut().enumerate() {
            let k = greedy_move(
                &c.parallelism_probabilities,
                obs.parallelism[i],
                ds2_parallelism(obs, i),
                tie_margin,
            );
            if k != c.action.parallelism {
                c.action.parallelism = k;
                c.p_parallelism = c.parallelism_probabilities[k];
                c.label = c.action.label();
            }
        }
        choices
    }
}

/// A move per stage from the network's `outputs` for `obs` (computed from `rows`, already
/// normalised): masks the moves the stage does not allow, turns each head into probabilities
/// and lets `pick` choose an index (parallelism head first, then buffer head, stage by stage).
/// Returns the choices and the transition recording them (rows, masks, moves, log-probability
/// and the value estimate) — the one place greedy acting, online learning and training rollouts
/// turn outputs into moves.
pub(crate) fn choose(
    obs: &Observation,
    config: &JobConfig,
    rows: Vec<[f32; FEATURES]>,
    outputs: &[[f32; OUTPUTS]],
    mut pick: impl FnMut(&[f32]) -> usize,
) -> (Vec<StageChoice>, Transition) {
    let n = outputs.len();
    let mut t = Transition {
        rows,
        par_masks: Vec::with_capacity(n),
        buf_masks: Vec::with_capacity(n),
        actions: Vec::with_capacity(n),
        logp: 0.0,
        value: outputs.iter().map(|o| o[OUTPUTS - 1]).sum::<f32>() / n.max(1) as f32,
        reward: 0.0,
        advantage: 0.0,
        ret: 0.0,
        stages: Vec::with_capacity(n),
    };
    let mut choices = Vec::with_capacity(n);
    for (i, out) in outputs.iter().enumerate() {
        let (pm, bm) = masks(obs, config, i);
        let pp = masked_softmax::<PARALLELISM_ACTIONS>(&out[..PARALLELISM_ACTIONS], &pm);
        let bp = masked_softmax::<BUFFER_ACTIONS>(
            &out[PARALLELISM_ACTIONS..PARALLELISM_ACTIONS + BUFFER_ACTIONS],
            &bm,
        );
        let parallelism = pick(&pp);
        let buffer = pick(&bp);
        let action = StageAction {
            parallelism,
            buffer,
        };
        let logp = pp[parallelism].max(1e-8).ln() + bp[buffer].max(1e-8).ln();
        t.logp += logp;
        t.stages.push(StageStep {
            logp,
            value: out[OUTPUTS - 1],
            ..StageStep::default()
        });
        t.par_masks.push(pm);
        t.buf_masks.push(bm);
        t.actions.push(action);
        choices.push(StageChoice {
            stage: obs.stages[i].clone(),
            label: action.label(),
            action,
            p_parallelism: pp[parallelism],
            p_buffer: bp[buffer],
            parallelism_probabilities: pp,
            buffer_probabilities: bp,
        });
    }
    (choices, t)
}

/// A stage handed to DS2 by the fallback, and why.
#[derive(Debug, Clone, Serialize)]
pub struct StageFallback {
    /// The stage's index in the observation.
    pub index: usize,
    /// The stage.
    pub stage: String,
    /// `uncertain` or `out of distribution`.
    pub reason: &'static str,
    /// The probability the policy gives the parallelism its chosen move leads to (moves with
    /// the same outcome pooled).
    pub probability: f32,
    /// The stage row's distance from the training statistics.
    pub distance: f64,
}

/// The stages of `obs` whose choice falls back to DS2 under `fallback`.
pub fn fallback_stages(
    policy: &Policy,
    obs: &Observation,
    choices: &[StageChoice],
    fallback: Fallback,
) -> Vec<StageFallback> {
    let distances = policy.distances(obs);
    choices
        .iter()
        .zip(distances)
        .enumerate()
        .filter_map(|(index, (c, distance))| {
            let probability = probability_of_outcome(
                obs,
                index,
                c.action.parallelism,
                &c.parallelism_probabilities,
            );
            let reason = if distance > fallback.max_distance {
                "out of distribution"
            } else if probability < fallback.min_probability {
                "uncertain"
            } else {
                return None;
            };
            Some(StageFallback {
                index,
                stage: c.stage.clone(),
                reason,
                probability,
                distance,
            })
        })
        .collect()
}

/// The agent as a tuner: observe, score, guard, act.
pub struct Agent {
    policy: Policy,
    history: History,
    guard: GuardConfig,
    state: GuardState,
    controls: Controls,
    checkpoint: String,
    learner: Option<Learner>,
    /// Where each decision's trace goes, once someone asked for traces.
    traces: Option<TraceSlot>,
    /// What the decision in progress leaves for its trace.
    pending: Option<PendingTrace>,
    /// The tunable stages' names, shared by every trace.
    trace_stages: Option<std::sync::Arc<[String]>>,
}

/// The parts of a trace known before the decision's end.
struct PendingTrace {
    rows: Vec<[f32; FEATURES]>,
    actions: Vec<StageAction>,
    parallelism_probabilities: Vec<[f32; PARALLELISM_ACTIONS]>,
    buffer_probabilities: Vec<[f32; BUFFER_ACTIONS]>,
    ds2: Vec<Option<usize>>,
    fallbacks: Vec<(usize, &'static str)>,
}

/// An epoch as the agent takes it in, before deciding.
struct EpochIntake {
    /// The epoch's score under the objective.
    score: EpochScore,
    /// The score without its latency and change terms (what rollback judges a change by).
    absorbed: f64,
    /// The context under the bounds in force now (guardrails and run-time controls).
    local: TuneContext,
    /// The observation the policy reads.
    obs: Observation,
}

/// Online learning: moves are sampled (exploration) and every decision is kept as a
/// transition, its reward filled in by the next epoch's objective.
struct Learner {
    rng: SmallRng,
    experience: Vec<Transition>,
}

impl Agent {
    /// An agent acting with `policy` under `guard`; `controls` stay with the caller.
    pub fn new(policy: Policy, guard: GuardConfig, controls: Controls, checkpoint: &str) -> Agent {
        policy.warm_up();
        Agent {
            policy,
            history: History::default(),
            guard,
            state: GuardState {
                since_change: usize::MAX / 2,
                ..GuardState::default()
            },
            controls,
            checkpoint: checkpoint.to_owned(),
            learner: None,
            traces: None,
            pending: None,
            trace_stages: None,
        }
    }

    /// Cuts back each lowering in `config` that would leave its stage busier than the guard
    /// allows at this epoch's rates, and says what it held back. A lowering no further than
    /// DS2's own suggestion passes: the guard stops the policy lowering past what the baseline
    /// would, and is never more cautious than the baseline itself (selective's `write`, 2 → 1
    /// at one worker's load as the rate falls, is DS2's move too).
    fn hold_saturating_lowerings(&self, obs: &Observation, config: &mut JobConfig) -> Vec<String> {
        let Some(max_utilisation) = self.guard.max_utilisation_after_lowering else {
            return Vec::new();
        };
        let mut held = Vec::new();
        for (i, stage) in obs.stages.iter().enumerate() {
            let (Some(to), Some(&pi_raw)) = (config.parallelism(stage), obs.ds2.raw.get(stage))
            else {
                continue;
            };
            let from = obs.parallelism[i];
            let ds2 = obs.ds2.parallelism(stage);
            let kept = lowering_within_utilisation(from, to, pi_raw, max_utilisation, ds2);
            if kept != to {
                config.set_parallelism(stage, kept);
                held.push(format!(
                    "{stage} {from}→{to} held at {kept} (busy {:.2} at {to})",
                    pi_raw / to as f64
                ));
            }
        }
        held
    }

    /// A copy of this agent that has seen `snapshot` and applied `applied` at it (whatever
    /// this agent would have chosen): its history, cooldown and rollback state carry on from
    /// there. Lookahead finishes a fork of a simulated run with it. No learner, no traces.
    pub(crate) fn fork_applying(
        &self,
        snapshot: &MetricsSnapshot,
        cx: &TuneContext,
        applied: &JobConfig,
    ) -> Agent {
        let mut fork = Agent {
            policy: self.policy.clone(),
            history: self.history.clone(),
            guard: self.guard.clone(),
            state: self.state.clone(),
            controls: self.controls.clone(),
            checkpoint: self.checkpoint.clone(),
            learner: None,
            traces: None,
            pending: None,
            trace_stages: None,
        };
        let EpochIntake {
            absorbed,
            local,
            obs,
            ..
        } = fork.take_in(snapshot, cx);
        fork.history.update_with(snapshot, &obs);
        // The fork's move is given; the check advances the cooldown, and the move counts as
        // a rollback when it is the one the guard called for.
        let rollback = matches!(
            fork.state.check(&fork.guard, absorbed),
            Verdict::Rollback(c) if clamp(&snapshot.config, &c, &local.bounds).config == *applied
        );
        if *applied != snapshot.config {
            fork.state
                .changed(snapshot.config.clone(), applied, absorbed, rollback);
        }
        fork
    }

    /// Learns online: samples moves instead of taking the most probable, and keeps every
    /// decision for [`Agent::take_experience`].
    pub fn learning(mut self, seed: u64) -> Agent {
        self.learner = Some(Learner {
            rng: SmallRng::seed_from_u64(seed),
            experience: Vec::new(),
        });
        self
    }

    /// The decisions made while learning, rewards filled in (the last, whose outcome was never
    /// observed, is left out), and the policy acted with.
    pub fn take_experience(&mut self) -> (Vec<Transition>, &Policy) {
        let mut experience = self
            .learner
            .as_mut()
            .map(|l| std::mem::take(&mut l.experience))
            .unwrap_or_default();
        experience.pop();
        (experience, &self.policy)
    }

    /// The mailbox every later decision leaves its [`DecisionTrace`] in (for a
    /// [`LiveExplainer`](crate::explain::LiveExplainer)); empty it after applying each decision.
    pub fn traces(&mut self) -> TraceSlot {
        self.traces.get_or_insert_with(TraceSlot::default).clone()
    }

    /// The policy it acts with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The user controls (thread budget, advisory mode, fixed configuration).
    pub fn controls(&self) -> &Controls {
        &self.controls
    }
}

impl Tuner for Agent {
    fn name(&self) -> &str {
        "agent"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "checkpoint": self.checkpoint,
            "checkpoint_crc32": self.policy.checksum.map(|c| format!("{c:08x}")),
            "features": FEATURE_NAMES,
            "cooldown_epochs": self.guard.cooldown_epochs,
            "rollback_drop": self.guard.rollback_drop,
            "pins": self.guard.pins,
            "limits": self.guard.limits,
            "fallback": self.guard.fallback,
            "ds2_tie_margin": self.guard.ds2_tie_margin,
            "max_utilisation_after_lowering": self.guard.max_utilisation_after_lowering,
        })
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> Decision {
        let decision = self.decide_with_policy(snapshot, cx);
        if let (Some(slot), Some(p)) = (&self.traces, self.pending.take()) {
            let stages = match &self.trace_stages {
                Some(s) if s.len() == p.rows.len() => s.clone(),
                _ => {
                    let s: std::sync::Arc<[String]> = cx
                        .bounds
                        .stages
                        .iter()
                        .map(|(name, _, _)| name.clone())
                        .collect();
                    self.trace_stages = Some(s.clone());
                    s
                }
            };
            let before = &snapshot.config;
            let after = &decision.config;
            slot.put(DecisionTrace {
                epoch: snapshot.epoch,
                parallelism: stages
                    .iter()
                    .map(|s| {
                        (
                            before.parallelism(s).unwrap_or(1),
                            after.parallelism(s).unwrap_or(1),
                        )
                    })
                    .collect(),
                buffers: stages
                    .iter()
                    .map(|s| (input_capacity(before, s), input_capacity(after, s)))
                    .collect(),
                stages,
                rows: p.rows,
                actions: p.actions,
                parallelism_probabilities: p.parallelism_probabilities,
                buffer_probabilities: p.buffer_probabilities,
                ds2: p.ds2,
                fallbacks: p.fallbacks,
                guardrail: decision.detail["guardrail"].as_str().map(str::to_owned),
            });
        }
        decision
    }
}

impl Agent {
    /// What the epoch of `snapshot` tells the agent before it decides (nothing is updated).
    fn take_in(&self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> EpochIntake {
        let changed = self
            .history
            .previous_config
            .as_ref()
            .is_some_and(|c| *c != snapshot.config);
        let score = cx.objective.score(snapshot, changed);
        // What rollback judges a change by: the objective without its latency and change
        // terms. A reconfiguration's drain makes latency spike for a few epochs whether or not
        // the change was right; a change that was wrong shows as events not absorbed.
        let absorbed = 1.0 - 2.0 * score.shortfall;
        let local = TuneContext {
            objective: cx.objective.clone(),
            bounds: effective_bounds(&cx.bounds, &self.guard, &self.controls),
            ds2_base: cx.ds2_base,
        };
        let obs = observe(snapshot, &local, &self.history);
        EpochIntake {
            score,
            absorbed,
            local,
            obs,
        }
    }

    fn decide_with_policy(&mut self, snapshot: &MetricsSnapshot, cx: &TuneContext) -> Decision {
        let started = Instant::now();
        let EpochIntake {
            score,
            absorbed,
            local,
            obs,
        } = self.take_in(snapshot, cx);
        let reward = score.reward;
        if let Some(last) = self.learner.as_mut().and_then(|l| l.experience.last_mut()) {
            // Each stage's own credit, for per-stage PPO.
            last.credit_stages(
                &cx.objective,
                &score,
                self.history.previous_config.as_ref(),
                &snapshot.config,
                &obs.stages,
            );
        }
        self.history.update_with(snapshot, &obs);
        // What "no change" means under the bounds in force now: a thread budget lowered or a
        // pin set at run time applies at once, cooldown or not.
        let enforced = clamp(&snapshot.config, &snapshot.config, &local.bounds);
        let keep = |reason: String, detail: serde_json::Value| {
            if enforced.config == snapshot.config || self.controls.advisory() {
                Decision {
                    config: snapshot.config.clone(),
                    reason,
                    detail,
                }
            } else {
                let mut detail = detail;
                detail["guardrail"] = "bounds changed at run time".into();
                Decision {
                    config: enforced.config.clone(),
                    reason: format!("within the new bounds: {}", enforced.notes.join("; ")),
                    detail,
                }
            }
        };
        if let Some(fixed) = self.controls.fixed() {
            return Decision {
                config: fixed,
                reason: "control handed back to a fixed configuration".into(),
                detail: serde_json::json!({
                    "guardrail": "fixed configuration (user control)",
                    "reward": reward,
                }),
            };
        }
        if let Some(last) = self.learner.as_mut().and_then(|l| l.experience.last_mut()) {
            last.reward = reward as f32;
        }
        let choices = match self.learner.as_mut() {
            Some(learner) => {
                let (choices, transition) = self.policy.sampled(&obs, snapshot, &mut learner.rng);
                learner.experience.push(transition);
                choices
            }
            None => self
                .policy
                .greedy(&obs, snapshot, self.guard.ds2_tie_margin),
        };
        let actions: Vec<StageAction> = choices.iter().map(|c| c.action).collect();
        let proposal_config = proposal(&obs, &snapshot.config, &actions);
        // The DS2 fallback replaces the moves of the stages the policy is unsure of or has not
        // been trained for; the proposal stays recorded as the policy's own.
        let fallbacks = match (self.guard.fallback, self.learner.is_some()) {
            (Some(fallback), false) => fallback_stages(&self.policy, &obs, &choices, fallback),
            _ => Vec::new(),
        };
        let mut chosen_config = proposal_config.clone();
        for f in &fallbacks {
            let stage = &obs.stages[f.index];
            chosen_config.set_parallelism(stage, ds2_parallelism(&obs, f.index));
            // DS2 never moves buffers: a stage handed to it keeps the input buffer it has.
            keep_input_buffer(&mut chosen_config, &snapshot.config, stage);
        }
        let fallback_changed = chosen_config != proposal_config;
        let saturating = self.hold_saturating_lowerings(&obs, &mut chosen_config);
        let clamped = clamp(&snapshot.config, &chosen_config, &local.bounds);
        if self.traces.is_some() {
            self.pending = Some(PendingTrace {
                rows: obs.rows.clone(),
                actions: choices.iter().map(|c| c.action).collect(),
                parallelism_probabilities: choices
                    .iter()
                    .map(|c| c.parallelism_probabilities)
                    .collect(),
                buffer_probabilities: choices.iter().map(|c| c.buffer_probabilities).collect(),
                ds2: obs.stages.iter().map(|s| obs.ds2.parallelism(s)).collect(),
                fallbacks: fallbacks.iter().map(|f| (f.index, f.reason)).collect(),
            });
        }
        // Per stage, the feature row in `FEATURE_NAMES` order (the names are in the run log's
        // header, through `settings`): naming every value on every decision cost more than the
        // policy's forward.
        let observation: serde_json::Map<String, serde_json::Value> = obs
            .stages
            .iter()
            .zip(&obs.rows)
            .map(|(stage, row)| (stage.clone(), serde_json::json!(row)))
            .collect();
        let mut detail = serde_json::json!({
            "observation": observation,
            "choices": choices,
            "proposal": proposal_config,
            "ds2": obs.ds2.config.stages,
            "clamped": clamped.notes,
            "reward": reward,
        });
        // Every guardrail that changed the proposal, in the order they act.
        let mut guards = Vec::new();
        if !fallbacks.is_empty() {
            detail["fallback"] = serde_json::json!(fallbacks);
            if fallback_changed {
                guards.push(format!("DS2 fallback ({})", fallbacks[0].reason));
            }
        }
        if !saturating.is_empty() {
            detail["utilisation_after_lowering"] = serde_json::json!(saturating);
            guards.push("utilisation after lowering".to_owned());
        }
        if !clamped.notes.is_empty() {
            guards.push("bounds and budgets (clamp)".to_owned());
        }
        detail["guardrail"] = if guards.is_empty() {
            serde_json::Value::Null
        } else {
            guards.join("; ").into()
        };
        let spent_us = started.elapsed().as_micros() as u64;
        detail["decision_us"] = spent_us.into();
        if spent_us > self.guard.decision_budget_us {
            // A decision that overran its budget would land late: drop it (and, when learning,
            // the transition that recorded it).
            if let Some(learner) = self.learner.as_mut() {
                learner.experience.pop();
            }
            detail["guardrail"] = "decision budget".into();
            let reason = format!(
                "decision took {spent_us} µs, over the budget of {} µs: dropped",
                self.guard.decision_budget_us
            );
            return keep(reason, detail);
        }
        let verdict = self.state.check(&self.guard, absorbed);
        let (config, reason, rollback) = match verdict {
            Verdict::Rollback(previous) => {
                detail["guardrail"] = "rollback".into();
                (
                    clamp(&snapshot.config, &previous, &local.bounds).config,
                    format!("rollback: the objective fell to {reward:.2} after the last change"),
                    true,
                )
            }
            Verdict::Cooldown => {
                detail["guardrail"] = "cooldown".into();
                return keep("cooldown after a change".into(), detail);
            }
            Verdict::Apply => {
                let moves: Vec<String> = choices
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| match fallbacks.iter().find(|f| f.index == i) {
                        Some(f) => Some(format!("{} ds2 (fallback: {})", c.stage, f.reason)),
                        None => (c.action != StageAction::KEEP)
                            .then(|| format!("{} {} (p={:.2})", c.stage, c.label, c.p_parallelism)),
                    })
                    .collect();
                let reason = match (clamped.config == snapshot.config, saturating.is_empty()) {
                    (true, true) => "no change".to_owned(),
                    (true, false) => saturating.join(", "),
                    (false, true) => moves.join(", "),
                    (false, false) => format!("{}; {}", moves.join(", "), saturating.join(", ")),
                };
                (clamped.config, reason, false)
            }
        };
        if config == snapshot.config {
            return keep(reason, detail);
        }
        if self.controls.advisory() {
            detail["guardrail"] = "advisory (dry run)".into();
            return keep(format!("advisory, would apply: {reason}"), detail);
        }
        self.state
            .changed(snapshot.config.clone(), &config, absorbed, rollback);
        Decision {
            config,
            reason,
            detail,
        }
    }
}
