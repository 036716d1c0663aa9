//! Policy improvement over tuned DS2 by lookahead on the simulator.
//!
//! At every epoch of a simulated run, each stage's moves are tried on a fork of the run (same
//! state, same noise to come) and the run is finished by tuned DS2; a stage's label is the move
//! whose forked run scores best, DS2's own move unless another beats it by a margin. A policy
//! that picked those moves everywhere would do at least as well as tuned DS2 on the simulator
//! (the policy-improvement theorem, with DS2 as the base policy); the network learns the labels
//! by imitation. Later rounds collect their states under the network itself (so it learns what
//! to do where its own moves lead, not only where DS2's do) and add them to the earlier ones.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rheo_engine::{JobConfig, MetricsSnapshot};

use crate::action::clamp;
use crate::agent::actions::{StageAction, masks, target_parallelism};
use crate::agent::features::{FeatureStats, History, Observation, observe};
use crate::agent::guard::{Controls, GuardConfig};
use crate::agent::{Agent, Policy};
use crate::env::{EnvError, Environment, SimEnv};
use crate::scoreboard::context;
use crate::tuners::{Ds2, TuneContext, Tuner};

use super::*;
use crate::agent::policy::PARALLELISM_ACTIONS;

/// Seeds of lookahead runs start here (far from the evaluation and selection seeds, and from
/// PPO's rollouts and the demonstrations).
const SEED_BASE: u64 = 3_000_000;

/// Labelled decisions from `cfg.lookahead_runs` simulated runs per workload, the states visited
/// by `behaviour` (tuned DS2 when `None`); `round` keeps each round's runs apart.
pub(super) fn lookahead_labels(
    workloads: &[TrainingWorkload],
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    round: u64,
) -> Result<Vec<Transition>, EnvError> {
    let jobs: Vec<(usize, u64)> = (0..workloads.len())
        .flat_map(|w| (0..cfg.lookahead_runs as u64).map(move |r| (w, r)))
        .collect();
    let runs = jobs
        .par_iter()
        .map(|&(w, r)| {
            let seed = SEED_BASE + round * 100_000 + w as u64 * 1_000 + r;
            labelled_run(&workloads[w], stats, cfg, behaviour, seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(runs.into_iter().flatten().collect())
}

/// One simulated run of `w` under `behaviour`, every decision labelled by lookahead.
fn labelled_run(
    w: &TrainingWorkload,
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    seed: u64,
) -> Result<Vec<Transition>, EnvError> {
    let mut rng = SmallRng::seed_from_u64(seed ^ cfg.seed.rotate_left(17));
    let cx = context(&w.workload);
    let params = randomised(&w.params, cfg.randomise, &mut rng);
    let mut env = SimEnv::new(&w.workload, params, seed);
    if rng.random_bool(cfg.random_start.clamp(0.0, 1.0)) {
        env = env.starting_from(random_start(&w.workload, &cx.bounds, &mut rng));
    }
    // DS2 as the base policy: it decides on every epoch (so its warm-up and activation state
    // follows the run), and finishes every forked run.
    let mut base = Ds2::new(w.ds2);
    let mut agent = behaviour.map(|policy| {
        Agent::new(
            policy.clone(),
            GuardConfig {
                fallback: None,
                ..GuardConfig::default()
            },
            Controls::default(),
            "lookahead",
        )
    });
    let mut history = History::default();
    let mut previous: Option<JobConfig> = None;
    let mut run: Vec<Transition> = Vec::new();
    while let Some(snapshot) = env.observe()? {
        let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
        let score = cx.objective.score(&snapshot, changed).reward as f32;
        if let Some(last) = run.last_mut() {
            last.reward = score;
        }
        let obs = observe(&snapshot, &cx, &history);
        let ds2 = base.decide(&snapshot, &cx).config;
        let forks = Forks {
            env: &env,
            base: &base,
            cx: &cx,
            current: &snapshot.config,
        };
        let q_base = forks.value(&ds2)?;
        let n = obs.stages.len();
        let mut t = Transition {
            rows: obs.rows.iter().map(|r| stats.normalise(r)).collect(),
            par_masks: Vec::with_capacity(n),
            buf_masks: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            logp: 0.0,
            value: 0.0,
            reward: 0.0,
            advantage: 0.0,
            ret: 0.0,
            stages: vec![StageStep::default(); n],
        };
        for (i, stage) in obs.stages.iter().enumerate() {
            let (pm, bm) = masks(&obs, &snapshot.config, i);
            let now = obs.parallelism[i];
            let base_p = ds2.parallelism(stage).unwrap_or(now);
            let suggested = obs.ds2.parallelism(stage).unwrap_or(now);
            // Each distinct parallelism's value on its fork; DS2's own gets the margin, so it
            // stays the label unless another beats it by that much.
            let mut values: Vec<(usize, f64)> = vec![(base_p, q_base + cfg.lookahead_margin)];
            let mut outcomes = [now; PARALLELISM_ACTIONS];
            for (k, &allowed) in pm.iter().enumerate() {
                let p = if k == 0 { now } else { target(&obs, i, k, now) };
                outcomes[k] = p;
                if !allowed || values.iter().any(|&(v, _)| v == p) {
                    continue;
                }
                let mut config = ds2.clone();
                config.set_parallelism(stage, p);
                values.push((p, forks.value(&config)?));
            }
            let (best_p, best_q) = values
                .iter()
                .copied()
                .fold((base_p, f64::NEG_INFINITY), |b, v| if v.1 > b.1 { v } else { b });
            let value_of = |p: usize| values.iter().find(|v| v.0 == p).map_or(best_q, |v| v.1);
            t.stages[i].regret =
                std::array::from_fn(|k| if pm[k] { (best_q - value_of(outcomes[k])) as f32 } else { 0.0 });
            let label = name_move(&obs, i, &pm, best_p, now, suggested);
            if std::env::var_os("RHEO_LOOKAHEAD_DEBUG").is_some() {
                eprintln!(
                    "{} e{} {stage} now {now} ds2 {base_p} best {best_p} label {label} gain {:.3}",
                    w.workload.name,
                    run.len(),
                    best_q - q_base
                );
            }
            t.par_masks.push(pm);
            t.buf_masks.push(bm);
            t.actions.push(StageAction {
                parallelism: label,
                buffer: 1,
            });
        }
        let decision = match &mut agent {
            Some(agent) => agent.decide(&snapshot, &cx).config,
            None => ds2,
        };
        history.update_with(&snapshot, &obs);
        previous = Some(snapshot.config.clone());
        env.apply(&decision)?;
        run.push(t);
    }
    run.pop();
    let mut ret = 0.0f32;
    for t in run.iter_mut().rev() {
        ret = t.reward + cfg.gamma as f32 * ret;
        t.ret = ret;
        t.value = ret;
        for stage in &mut t.stages {
            stage.ret = ret;
            stage.value = ret;
        }
    }
    Ok(run)
}

/// The parallelism move `k` (1..=4) gives stage `i` (its current `now` where it gives none).
fn target(obs: &Observation, i: usize, k: usize, now: usize) -> usize {
    target_parallelism(obs, i, k).unwrap_or(now)
}

/// The policy's name for moving stage `i` to parallelism `p`, as DS2's demonstrations name
/// it: "keep" only when holding back from DS2's model (`suggested`); otherwise the offset from
/// the model that gives `p`, or the allowed move that lands nearest it.
fn name_move(
    obs: &Observation,
    i: usize,
    pm: &[bool],
    p: usize,
    now: usize,
    suggested: usize,
) -> usize {
    if p == now && suggested != now {
        return 0;
    }
    (0..pm.len())
        .filter(|&k| pm[k])
        .min_by_key(|&k| {
            let t = if k == 0 { now } else { target(obs, i, k, now) };
            // Ties go to a residual move over "keep".
            (t.abs_diff(p), usize::from(k == 0))
        })
        .unwrap_or(0)
}

/// Forks of a run at one epoch, each finished by the base policy.
struct Forks<'a> {
    env: &'a SimEnv,
    base: &'a Ds2,
    cx: &'a TuneContext,
    current: &'a JobConfig,
}

impl Forks<'_> {
    /// The sum of the rewards of the epochs to come if `proposed` is applied now and tuned
    /// DS2 decides from then on.
    fn value(&self, proposed: &JobConfig) -> Result<f64, EnvError> {
        let mut env = self.env.clone();
        let mut ds2 = self.base.clone();
        let mut previous = self.current.clone();
        env.apply(&clamp(self.current, proposed, &self.cx.bounds).config)?;
        let mut total = 0.0;
        while let Some(snapshot) = env.observe()? {
            let snapshot: MetricsSnapshot = snapshot;
            let changed = previous != snapshot.config;
            total += self.cx.objective.score(&snapshot, changed).reward;
            previous = snapshot.config.clone();
            env.apply(&ds2.decide(&snapshot, self.cx).config)?;
        }
        Ok(total)
    }
}
