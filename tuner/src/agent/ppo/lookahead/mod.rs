//! Policy improvement over tuned DS2 by lookahead on the simulator.
//!
//! At every epoch of a simulated run, each stage's moves are tried on a fork of the run (same
//! state, same noise to come) and the run is finished by tuned DS2; a stage's label is the move
//! whose forked run scores best, DS2's own move unless another beats it by a margin. A policy
//! that picked those moves everywhere would do at least as well as tuned DS2 on the simulator
//! (the policy-improvement theorem, with DS2 as the base policy); the network learns the labels
//! by imitation. With `lookahead_buffers`, halving and doubling a stage's input buffer are tried
//! the same way (DS2 never moves buffers). Later rounds collect their states under the network
//! itself (so it learns what to do where its own moves lead, not only where DS2's do) and add
//! them to the earlier ones.

mod forks;
#[cfg(test)]
mod tests;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rheo_engine::JobConfig;

use crate::agent::actions::{StageAction, input_capacity, masks, move_input_buffer, outcomes};
use crate::agent::features::{FeatureStats, History, observe};
use crate::agent::guard::{Controls, GuardConfig, lowering_within_utilisation};
use crate::agent::{Agent, Policy};
use crate::env::{EnvError, Environment, SimEnv};
use crate::tuners::{Ds2, Tuner};

use super::*;
use crate::agent::policy::{BUFFER_ACTIONS, PARALLELISM_ACTIONS};
use forks::Forks;

/// Seeds of lookahead runs start here (far from the evaluation and selection seeds, and from
/// PPO's rollouts and the demonstrations).
const SEED_BASE: u64 = 3_000_000;

/// One lookahead round: the labelled decisions, and how the behaviour did on its runs.
pub(super) struct Round {
    /// Every decision of every run, labelled.
    pub(super) labels: Vec<Transition>,
    /// The behaviour's mean run objective over the round's runs.
    pub(super) objective: f64,
}

/// Labelled decisions from `cfg.lookahead_runs` simulated runs per workload, the states visited
/// by `behaviour` (tuned DS2 when `None`); `round` keeps each round's runs apart. With
/// `anchor`, a stage whose input buffer is the workload's own takes its buffer label from it
/// (`PpoConfig::lookahead_buffer_anchor`).
pub(super) fn lookahead_round(
    workloads: &[TrainingWorkload],
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    anchor: Option<&Policy>,
    round: u64,
) -> Result<Round, EnvError> {
    let jobs: Vec<(usize, u64)> = (0..workloads.len())
        .flat_map(|w| (0..cfg.lookahead_runs as u64).map(move |r| (w, r)))
        .collect();
    let runs = jobs
        .par_iter()
        .map(|&(w, r)| {
            let seed = SEED_BASE + round * 100_000 + w as u64 * 1_000 + r;
            labelled_run(&workloads[w], stats, cfg, behaviour, anchor, seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let objective = runs.iter().map(|r| r.1).sum::<f64>() / runs.len().max(1) as f64;
    Ok(Round {
        labels: runs.into_iter().flat_map(|r| r.0).collect(),
        objective,
    })
}

/// The settings lookahead round `round` labels with: `cfg`, without the held-only relief of
/// the keep margin before `cfg.lookahead_relief_from_round`.
pub(super) fn round_config(cfg: &PpoConfig, round: usize) -> PpoConfig {
    PpoConfig {
        lookahead_keep_margin_held_only: cfg.lookahead_keep_margin_held_only
            && round >= cfg.lookahead_relief_from_round,
        ..cfg.clone()
    }
}

/// One simulated run of `w` under `behaviour`, every decision labelled by lookahead (a stage's
/// buffer move by `anchor` instead while the stage's input buffer is the workload's own).
fn labelled_run(
    w: &TrainingWorkload,
    stats: &FeatureStats,
    cfg: &PpoConfig,
    behaviour: Option<&Policy>,
    anchor: Option<&Policy>,
    seed: u64,
) -> Result<(Vec<Transition>, f64), EnvError> {
    let mut rng = SmallRng::seed_from_u64(seed ^ cfg.seed.rotate_left(17));
    let cx = w.context();
    let params = randomised(&w.params, cfg, &mut rng);
    let mut env = SimEnv::new(&w.workload, params, seed);
    let mut start = rng
        .random_bool(cfg.random_start.clamp(0.0, 1.0))
        .then(|| random_start(&w.workload, &cx.bounds, &mut rng));
    // Drawn only when on, so runs without it reproduce the same labels.
    if cfg.random_buffer_start > 0.0 && rng.random_bool(cfg.random_buffer_start.min(1.0)) {
        let from = start.unwrap_or_else(|| initial_config(&w.workload));
        start = Some(random_buffers(&from, &cx.bounds, &mut rng));
    }
    if let Some(start) = start {
        env = env.starting_from(start);
    }
    // Drawn only when on, so runs without it reproduce the same labels.
    if cfg.rate_shift > 0.0 && rng.random_bool(cfg.rate_shift.min(1.0)) {
        env = env.with_rate_shift(rng.random_range(0.0..=w.workload.duration_s / 2.0));
    }
    if cfg.profile_swap > 0.0 && rng.random_bool(cfg.profile_swap.min(1.0)) {
        let duration_s = w.workload.duration_s;
        env = env.with_rate_profile(random_profile(
            &w.workload.source.rate,
            duration_s,
            &mut rng,
        ));
    }
    // DS2 as the base policy: it decides on every epoch, so its warm-up and activation state
    // is that of a DS2 that had been deciding all along (under the network, as if its own
    // moves had been made), and it finishes every forked run.
    let mut base = Ds2::new(w.ds2);
    let mut agent = behaviour.map(|policy| {
        Agent::new(
            policy.clone(),
            // The labels are for the policy's own moves.
            GuardConfig::training(),
            Controls::default(),
            "lookahead",
        )
    });
    // Drawn only when on. A sampling behaviour visits the states its less probable moves lead
    // to (where exploring runs and online learning go); its forks are still finished greedily.
    if cfg.lookahead_sampled > 0.0 && rng.random_bool(cfg.lookahead_sampled.min(1.0)) {
        agent = agent.map(|a| a.learning(seed));
    }
    let own = initial_config(&w.workload);
    let limit = GuardConfig::default().max_utilisation_after_lowering;
    let mut history = History::default();
    let mut previous: Option<JobConfig> = None;
    let mut run: Vec<Transition> = Vec::new();
    let mut total = 0.0;
    while let Some(snapshot) = env.observe()? {
        let changed = previous.as_ref().is_some_and(|p| *p != snapshot.config);
        let reward = cx.objective.score(&snapshot, changed).reward;
        total += reward;
        let score = reward as f32;
        if let Some(last) = run.last_mut() {
            last.reward = score;
        }
        let obs = observe(&snapshot, &cx, &history);
        let ds2 = base.decide(&snapshot, &cx).config;
        let forks = Forks {
            env: &env,
            base: &base,
            cx: &cx,
            current: &snapshot,
            hold: cfg.lookahead_hold,
            finisher: agent.as_ref().filter(|_| cfg.lookahead_policy_finish),
        };
        let q_base = forks.value(&ds2)?;
        let mut t = Transition::awaiting_labels(obs.rows.iter().map(|r| stats.normalise(r)));
        let anchored = anchor.map(|a| a.greedy(&obs, &snapshot, 0.0));
        for (i, stage) in obs.stages.iter().enumerate() {
            let (pm, bm) = masks(&obs, &snapshot.config, i);
            let now = obs.parallelism[i];
            let base_p = ds2.parallelism(stage).unwrap_or(now);
            let suggested = obs.ds2.parallelism(stage).unwrap_or(now);
            // Leaving the stage where it is may also be held until the load calls for a
            // change, rather than made up for by the finisher next epoch.
            let held = if cfg.lookahead_keep_hold {
                let mut config = ds2.clone();
                config.set_parallelism(stage, now);
                Some(forks.value_held(&config)?)
            } else {
                None
            };
            // What the live loop's utilisation limit makes of moving the stage to `p`.
            let limited = |p: usize| match limit {
                Some(limit) => lowering_within_utilisation(
                    now,
                    p,
                    obs.ds2.raw.get(stage).copied().unwrap_or(f64::NAN),
                    limit,
                    obs.ds2.parallelism(stage),
                ),
                None => p,
            };
            let guarded = |p: usize| {
                if cfg.lookahead_guarded_lowerings {
                    limited(p)
                } else {
                    p
                }
            };
            // Keeping the stage one epoch: its fork's value, and the parallelism the finisher
            // gives the stage on that fork's next decision. A lowering to just that is only
            // put off by the keep.
            let kept = if cfg.lookahead_held_only_postponed {
                let mut keep = ds2.clone();
                keep.set_parallelism(stage, now);
                Some(forks.value_and_next(&keep)?)
            } else {
                None
            };
            let kept_then = kept
                .as_ref()
                .and_then(|(_, next)| next.as_ref()?.parallelism(stage));
            // Each distinct parallelism's value on its fork; DS2's own gets the margin, so it
            // stays the label unless another beats it by that much.
            // Leaving the stage where it is gets the keep margin on top.
            let favour = |p: usize, value: f64| {
                let relieved = relieved_of_the_margin(cfg, p, kept_then, limited(p), base_p);
                keep_favour(cfg, p, now, value, held.filter(|_| relieved))
            };
            let mut values: Vec<(usize, f64)> = vec![(
                base_p,
                q_base + cfg.lookahead_margin + favour(base_p, q_base),
            )];
            let outcomes = outcomes(&obs, i);
            for (&p, &allowed) in outcomes.iter().zip(&pm) {
                if !allowed || values.iter().any(|&(v, _)| v == p) {
                    continue;
                }
                let q = match &kept {
                    // The keep's fork, valued above.
                    Some((value, _)) if guarded(p) == now => *value,
                    _ => {
                        let mut config = ds2.clone();
                        config.set_parallelism(stage, guarded(p));
                        forks.value(&config)?
                    }
                };
                values.push((p, q + favour(p, q)));
            }
            // DS2's margin stays DS2's.
            if let Some(held) = held
                && let Some(kept) = values.iter_mut().find(|v| v.0 == now)
            {
                let held = held + favour(now, held);
                let margin = if now == base_p {
                    cfg.lookahead_margin
                } else {
                    0.0
                };
                kept.1 = kept.1.max(held + margin);
            }
            let (mut best_p, mut best_q) =
                values
                    .iter()
                    .copied()
                    .fold(
                        (base_p, f64::NEG_INFINITY),
                        |b, v| if v.1 > b.1 { v } else { b },
                    );
            // Buffer moves, for the stage left where it is and at its best parallelism: a
            // parallelism's value is the better of its buffer moves (less the buffer margin).
            let mut buffer = 1;
            // Each candidate parallelism's value with each buffer move (keeping it included),
            // for the buffer regrets.
            let mut buffer_values: Vec<(usize, usize, f64)> = Vec::new();
            if cfg.lookahead_buffers {
                let candidates = if best_p == now {
                    vec![now]
                } else {
                    vec![now, best_p]
                };
                for p in candidates {
                    if let Some(v) = values.iter().find(|v| v.0 == p) {
                        buffer_values.push((p, 1, v.1));
                    }
                    for b in [0, 2].into_iter().filter(|&b| bm[b]) {
                        let mut config = ds2.clone();
                        config.set_parallelism(stage, guarded(p));
                        move_input_buffer(&mut config, stage, b);
                        let fork = forks.value(&config)?;
                        let mut q = fork + favour(p, fork);
                        if cfg.lookahead_keep_hold && p == now {
                            let held = forks.value_held(&config)?;
                            q = q.max(held + favour(now, held));
                        }
                        let q = q - cfg.lookahead_buffer_margin;
                        buffer_values.push((p, b, q));
                        if let Some(v) = values.iter_mut().find(|v| v.0 == p) {
                            v.1 = v.1.max(q);
                        }
                        if q > best_q {
                            (best_p, best_q, buffer) = (p, q, b);
                        }
                    }
                }
            }
            let value_of = |p: usize| values.iter().find(|v| v.0 == p).map_or(best_q, |v| v.1);
            t.stages[i].regret = std::array::from_fn(|k| {
                if pm[k] {
                    (best_q - value_of(outcomes[k])) as f32
                } else {
                    0.0
                }
            });
            // What each buffer move loses at the labelled parallelism (0 where not tried).
            t.stages[i].buffer_regret = std::array::from_fn(|b| {
                buffer_values
                    .iter()
                    .find(|v| v.0 == best_p && v.1 == b)
                    .map_or(0.0, |v| (best_q - v.2) as f32)
            });
            // Where the stage's buffer is still the workload's own, the anchor's move stands,
            // with no regret to pull it elsewhere.
            if let Some(anchored) = &anchored
                && input_capacity(&snapshot.config, stage) == input_capacity(&own, stage)
            {
                buffer = anchored[i].action.buffer;
                t.stages[i].buffer_regret = [0.0; BUFFER_ACTIONS];
            }
            let label = name_move(&outcomes, &pm, best_p, now, suggested);
            t.par_masks.push(pm);
            t.buf_masks.push(bm);
            t.actions.push(StageAction {
                parallelism: label,
                buffer,
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
    let objective = total / run.len().max(1) as f64;
    run.pop();
    monte_carlo_returns(&mut run, cfg.gamma);
    Ok((run, objective))
}

/// What moving a stage from `now` to parallelism `p`, valued `value` on its fork, is credited
/// on top of that value: the keep margin for leaving it where it is or, with
/// `lookahead_keep_lowers_only`, the keep margin taken from a move that lowers it (raises then
/// compete with leaving it on value alone). With `lookahead_keep_margin_held_only`, a lowering
/// that beats `held` (the value of holding the stage where it is) by the margin keeps its
/// value, less `lookahead_postpone_margin`: only putting it off rivals it then. (`held` is
/// `None` where that relief does not apply.)
fn keep_favour(cfg: &PpoConfig, p: usize, now: usize, value: f64, held: Option<f64>) -> f64 {
    use std::cmp::Ordering;
    match (cfg.lookahead_keep_lowers_only, p.cmp(&now)) {
        (false, Ordering::Equal) => cfg.lookahead_keep_margin,
        (true, Ordering::Less) => match held {
            Some(held)
                if cfg.lookahead_keep_margin_held_only
                    && value >= held + cfg.lookahead_keep_margin =>
            {
                -cfg.lookahead_postpone_margin
            }
            _ => -cfg.lookahead_keep_margin,
        },
        _ => 0.0,
    }
}

/// Whether a lowering to `p` may have the held-only relief of the keep margin: with
/// `lookahead_held_only_postponed`, only when keeping the stage one epoch leads the finisher
/// to `p` itself (`kept_then`); with `lookahead_held_only_within_limit`, only when the live
/// loop's utilisation limit leaves it at `p` (`limited`); with `lookahead_held_only_with_ds2`,
/// only when `p` is DS2's own move at this epoch (`ds2`).
fn relieved_of_the_margin(
    cfg: &PpoConfig,
    p: usize,
    kept_then: Option<usize>,
    limited: usize,
    ds2: usize,
) -> bool {
    (!cfg.lookahead_held_only_postponed || kept_then == Some(p))
        && (!cfg.lookahead_held_only_within_limit || limited == p)
        && (!cfg.lookahead_held_only_with_ds2 || ds2 == p)
}

/// The policy's name for moving a stage (whose moves lead to `outcomes`) to parallelism `p`,
/// as DS2's demonstrations name it: "keep" only when holding back from DS2's model
/// (`suggested`); otherwise the offset from the model that gives `p`, or the allowed move that
/// lands nearest it.
fn name_move(
    outcomes: &[usize; PARALLELISM_ACTIONS],
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
        // Ties go to a residual move over "keep".
        .min_by_key(|&k| (outcomes[k].abs_diff(p), usize::from(k == 0)))
        .unwrap_or(0)
}
